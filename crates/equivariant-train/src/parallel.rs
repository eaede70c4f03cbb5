//! A step's structures in parts that train at once: the batch splits into at most [`PARTS`]
//! graphs of about equal size ([`balanced_parts`]), each part runs its energy, force and
//! backward passes as one task of rayon's pool on its own leaves of the parameters, and the
//! parts' losses and gradients are summed in part order.
//!
//! Why parts: a batch of a few small structures is a graph of a few hundred atoms, on which
//! each parallel kernel of a step hands out too little work to pay for waking a second
//! thread (at 2 threads, the step ran 1.4x faster than at one). Two independent parts keep
//! both threads busy from the step's start to its end, each kernel call inside a part still
//! free to split further where a thread is idle.
//!
//! Why own leaves: burn's autodiff keeps the graphs that share a tracked tensor under one
//! lock, held through a whole backward pass, so two parts on the same parameter leaves would
//! take turns. Each part reads fresh leaves of the same values under the same ids: its graph
//! is its own, and its gradients, by id, add up to the batch's.
//!
//! The parts depend only on the batch, not on the number of threads, so a run's losses do
//! not either.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Gradients, Tensor};
use rayon::prelude::*;

use crate::Result;
use crate::gradients::ParamGradients;
use crate::model::relifted;

/// The most parts a batch splits into.
pub const PARTS: usize = 2;

/// The items of sizes `sizes` (atoms per structure) in at most [`PARTS`] parts of about
/// equal total size, none empty: each part the indices of its items, in order. The parts
/// run at once, so the step waits for the largest: the items go, largest first (the first
/// of equal ones first), to the part with the least so far (the first of equal ones).
///
/// ```
/// use equivariant_train::parallel::balanced_parts;
/// // Two large and two small structures: one of each per part, not the two large ones
/// // together.
/// assert_eq!(balanced_parts(&[108, 107, 36, 36]), [vec![0, 3], vec![1, 2]]);
/// assert_eq!(balanced_parts(&[36, 108, 36, 36]), [vec![1], vec![0, 2, 3]]);
/// assert_eq!(balanced_parts(&[5]), [vec![0]]);
/// assert!(balanced_parts(&[]).is_empty());
/// ```
pub fn balanced_parts(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut parts: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); sizes.len().min(PARTS)];
    for i in order {
        // The first part of the least total (`min_by_key` keeps the first of equal ones).
        if let Some(part) = parts.iter_mut().min_by_key(|(total, _)| *total) {
            part.0 += sizes[i];
            part.1.push(i);
        }
    }
    parts
        .into_iter()
        .map(|(_, mut items)| {
            items.sort_unstable();
            items
        })
        .collect()
}

/// `model` with each float parameter a fresh leaf of the same value, id and trainability:
/// what a part's graph starts from.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// use equivariant_train::parallel::own_leaves;
/// #[derive(Module, Debug)]
/// struct Scale { w: Param<Tensor<1>> }
/// let device = Device::flex().autodiff();
/// let model = Scale { w: Param::from_tensor(Tensor::from_floats([2.0], &device)) };
/// let copy = own_leaves(&model);
/// assert_eq!((copy.w.id, copy.w.val().into_scalar::<f32>()), (model.w.id, 2.0));
/// // The copy's gradient is its own: the model's leaf has none in it.
/// let grads = copy.w.val().mul_scalar(3.0).sum().backward();
/// assert!(copy.w.val().grad(&grads).is_some() && model.w.val().grad(&grads).is_none());
/// ```
pub fn own_leaves<M: Module>(model: &M) -> M {
    model.clone().map(&mut OwnLeaves)
}

/// Rewraps each float parameter as a new leaf.
struct OwnLeaves;

impl ModuleMapper for OwnLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        relifted(param, |value| value)
    }
}

/// The summed loss and parameter gradients of `parts`, each part's from `part_step(model,
/// part)` (its loss and burn's gradients of a backward pass on `model`), the parts run at
/// once on the current rayon pool, each on [`own_leaves`] of `model`.
///
/// Errors: the first part's error, in part order.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// use equivariant_train::parallel::summed_gradients;
/// #[derive(Module, Debug)]
/// struct Scale { w: Param<Tensor<1>> }
/// let device = Device::flex().autodiff();
/// let model = Scale { w: Param::from_tensor(Tensor::from_floats([2.0], &device)) };
/// // Each part's loss is `x w`: the sum's gradient is the sum of the parts' `x`.
/// let (loss, grads) = summed_gradients(&model, &[1.0, 3.0], |m: &Scale, &x: &f64| {
///     let loss = m.w.val().mul_scalar(x).sum();
///     Ok((loss.clone().into_scalar::<f64>(), loss.backward()))
/// })?;
/// assert_eq!(loss, 8.0);
/// assert_eq!(grads.get(model.w.id).unwrap().clone().into_scalar::<f32>(), 4.0);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub fn summed_gradients<M, P>(
    model: &M,
    parts: &[P],
    part_step: impl Fn(&M, &P) -> Result<(f64, Gradients)> + Sync,
) -> Result<(f64, ParamGradients)>
where
    M: Module + Sync,
    P: Sync,
{
    let results: Vec<Result<(f64, ParamGradients)>> = parts
        .par_iter()
        .map(|part| {
            let own = own_leaves(model);
            let (loss, grads) = part_step(&own, part)?;
            Ok((loss, ParamGradients::new(&own, &grads)))
        })
        .collect();
    let mut total = (0.0, ParamGradients::default());
    for result in results {
        let (loss, grads) = result?;
        total = (total.0 + loss, total.1 + grads);
    }
    Ok(total)
}
