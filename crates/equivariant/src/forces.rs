//! Energy, forces and virial of a potential in one call.
//!
//! A potential built from this crate's modules sees the atoms only through its edge vectors
//! `r_e = pos[dst_e] - pos[src_e] (+ the periodic shift of the edge)`, so its energy is a
//! function `E(r)` of them. One backward pass gives `g_e = dE/dr_e`, and from it
//!
//! - the forces `F_i = -dE/dpos_i = sum_{e : src_e = i} g_e - sum_{e : dst_e = i} g_e`,
//! - the virial `W = -sum_e r_e (x) g_e` (`W_ab = -sum_e r_ea g_eb`), the derivative
//!   `W_ba = -dE/d eps_ab` of the energy under the strain `r -> (1 + eps) r` (symmetric for
//!   an energy invariant under rotations); the stress is `-W / V` for a cell of volume `V`
//!   ([`EnergyForces::stress`]).
//!
//! Periodic systems need nothing more: the shifts are constants added to the edge vectors,
//! and the strain moves the cell with the atoms. Each part of `E` runs on this crate's ops
//! (on Flex, the fused convolution and its backward kernel).
//!
//! Training on forces needs the gradient of a loss of these forces with respect to the
//! parameters (a second derivative), which this first-order pass does not give: the forces
//! come back as plain tensors, without autodiff. Its building block is the tangent pass
//! ([`Convolution::forward_edges_tangent`](crate::nn::Convolution::forward_edges_tangent)):
//! `v . grad_pos E` is the tangent of `E` along `t_e = v[dst_e] - v[src_e]`, and its
//! backward gives the force term's parameter gradient for `v = dL/dF`
//! ([`force_surrogate`]); [`training_gradients`] puts the energy and force terms together.

use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

use crate::graph::EdgeIndex;
use crate::ops::edge_vectors;
use crate::ops::edge_vectors::edge_vectors_backward;
use crate::shape::{check_dtype, check_finite, check_shape};
use crate::{Error, Result};

/// The energy of a configuration and its derivatives, as an MD engine or ASE needs them. The
/// tensors are on the device of the edge vectors, without autodiff.
#[derive(Debug, Clone)]
pub struct EnergyForces {
    /// The total energy (the sum of every element the energy function returned), `[1]`.
    pub energy: Tensor<1>,
    /// `F = -dE/dpos`, `[n, 3]`.
    pub forces: Tensor<2>,
    /// `W = -sum_e r_e (x) dE/dr_e`, `[3, 3]`: symmetric for an energy invariant under
    /// rotations.
    pub virial: Tensor<2>,
}

impl EnergyForces {
    /// The stress `sigma = -W / V` (ASE's sign: positive under tension), `[3, 3]`, for a cell
    /// of volume `volume` (`|det cell|`). Errors: [`Error::InvalidArgument`] for a volume that
    /// is not finite and positive.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::forces::EnergyForces;
    /// let device = Device::flex();
    /// let result = EnergyForces {
    ///     energy: Tensor::<1>::zeros([1], &device),
    ///     forces: Tensor::<2>::zeros([1, 3], &device),
    ///     virial: Tensor::<2>::from_floats([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]], &device),
    /// };
    /// let stress = result.stress(4.0)?.into_data().try_into_vec::<f32>().unwrap();
    /// assert_eq!(stress[0], -0.5);
    /// assert!(result.stress(0.0).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn stress(&self, volume: f64) -> Result<Tensor<2>> {
        if !(volume.is_finite() && volume > 0.0) {
            return Err(Error::InvalidArgument {
                name: "volume",
                reason: format!("{volume}: a cell's volume is finite and positive"),
            });
        }
        Ok(self.virial.clone().mul_scalar(-1.0 / volume))
    }
}

/// The energy `E(r)` that `energy` computes from the edge vectors `edge_vec` of the graph
/// `edges` (`[E, 3]`, edge `e` from `src_e` to `dst_e`, periodic shifts included), with its
/// forces and virial (see the [module docs](self)), f32 or f64 as `edge_vec`.
///
/// `energy` receives the edge vectors as a leaf that requires its gradient and returns
/// anything whose sum is the energy (per-atom energies `[n, 1]`, or a total `[1]`). The model
/// may live on a device without autodiff (its parameters are then constants) or with it.
///
/// Errors: [`Error::ShapeMismatch`] if `edge_vec` is not `[edges.num_edges(), 3]`;
/// [`Error::NonFinite`] for a NaN or infinite edge vector, or an energy that is not
/// finite; and the errors of `energy`. An energy that does not depend on the edge vectors
/// (a graph without edges) has zero forces and virial.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::energy_forces;
/// use equivariant::graph::EdgeIndex;
/// // Two atoms and a harmonic bond, E = |r|^2 / 2 over both directed edges: F = -dE/dpos.
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let device = Device::flex();
/// let edge_vec = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let result = energy_forces(&edges, edge_vec, |r| Ok(r.powf_scalar(2.0).sum().mul_scalar(0.5)))?;
/// let forces = result.forces.into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(forces, [3.0, 0.0, 0.0, -3.0, 0.0, 0.0]); // atom 0 pulled toward atom 1
/// assert_eq!(result.energy.into_scalar::<f32>(), 2.25);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn energy_forces<const D: usize>(
    edges: &EdgeIndex,
    edge_vec: Tensor<2>,
    energy: impl FnOnce(Tensor<2>) -> Result<Tensor<D>>,
) -> Result<EnergyForces> {
    Ok(energy_forces_and_gradients(&Arc::new(edges.clone()), edge_vec, energy)?.0)
}

/// [`energy_forces`], with the gradients of its backward pass (those of the energy with
/// respect to every tracked parameter; `None` for an energy that does not depend on the edge
/// vectors).
fn energy_forces_and_gradients<const D: usize>(
    edges: &Arc<EdgeIndex>,
    edge_vec: Tensor<2>,
    energy: impl FnOnce(Tensor<2>) -> Result<Tensor<D>>,
) -> Result<(EnergyForces, Option<Gradients>)> {
    let e = edges.num_edges();
    check_edge_rows(&edge_vec, e)?;
    check_finite("edge_vec", &edge_vec)?;
    let r = edge_vec.without_autodiff();
    let leaf = r.clone().autodiff().require_grad();
    let total = energy(leaf.clone())?.sum();
    // An energy that does not depend on the edge vectors (no edges, only per-atom terms)
    // has no gradient to take: its forces and virial are zero.
    let mut grads = total.is_tracked().then(|| total.backward());
    let total = total.without_autodiff();
    check_finite("energy", &total)?;
    let device = r.device();
    let g = match grads.as_mut().and_then(|grads| leaf.grad_remove(grads)) {
        Some(g) => g.without_autodiff(),
        None => Tensor::zeros([e, 3], (&device, r.dtype())),
    };
    let forces = edge_vectors_backward(edges, g.clone()).neg();
    let virial = r.transpose().matmul(g).neg();
    let result = EnergyForces {
        energy: total,
        forces,
        virial,
    };
    Ok((result, grads))
}

/// The derivatives of a training loss `L(E, F, W)` in the energy, the forces and the virial,
/// at the current parameters: what [`training_gradients`] needs from the loss. For a loss of
/// the stress `sigma = -W / V`, `dL/dW = -dL/dsigma / V`.
#[derive(Debug, Clone)]
pub struct LossDerivatives {
    /// `dL/dE`.
    pub energy: f64,
    /// `dL/dF`, `[n, 3]`.
    pub forces: Tensor<2>,
    /// `dL/dW`, `[3, 3]` (`None`: the loss does not depend on the virial).
    pub virial: Option<Tensor<2>>,
}

/// What [`training_gradients`] returns.
pub struct TrainingGradients {
    /// The first pass's energy, forces and virial.
    pub energy_forces: EnergyForces,
    /// `dL/dtheta` for every parameter the loss reaches (the energy term is added for the
    /// parameters of `model`; read one with
    /// `param.grad(&gradients)`; hand them to an optimizer through
    /// `GradientsParams::from_grads(gradients, &model)`).
    pub gradients: Gradients,
    /// `dL/dpos`, `[n, 3]`, when asked for (without autodiff).
    pub positions: Option<Tensor<2>>,
}

impl std::fmt::Debug for TrainingGradients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // burn's `Gradients` has no `Debug`.
        f.debug_struct("TrainingGradients")
            .field("energy_forces", &self.energy_forces)
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

/// The gradient with respect to every parameter of `model` (and, if `positions`, to the
/// positions) of a training loss `L(E, F, W)` of the energy, the forces and the virial: the
/// forward-over-reverse route to training on forces (a second derivative, which burn cannot
/// take itself).
///
/// 1. [`energy_forces`] with `energy`: `E`, `F`, `W`, and in the same backward pass
///    `dE/dtheta`.
/// 2. `loss` gives `a = dL/dE`, `v = dL/dF` and `U = dL/dW` from them (computing and
///    recording the loss's value is up to it).
/// 3. `dL/dtheta = a dE/dtheta + d/dtheta (v . F + U : W)`, and the second term is
///    `-d/dtheta` of the energy's tangent along the edge-vector direction `s_e` of
///    [`force_surrogate`]: `energy_tangent(r, s)` returns that tangent (any shape, summed),
///    tracked in the parameters, e.g. from
///    [`Convolution::forward_edges_tangent`](crate::nn::Convolution::forward_edges_tangent);
///    its backward gives the second term.
/// 4. With `positions`, the same backward also differentiates the tangent in the edge
///    vectors (`r` is then tracked: the tangent pass must be differentiable in `r` and `s`,
///    as the modules' are), and `dL/dpos = -a F + sum over edges of those gradients`
///    (`+` at `dst`, `-` at `src`). It costs the tangent pass's gradients in the edge
///    vectors; leave it off to train.
///
/// A parameter the loss does not reach has no gradient, as with burn's own backward; give
/// as `model` the module (or tuple of modules) holding every parameter of `energy`, whose
/// `dE/dtheta` term is added parameter by parameter.
///
/// Errors: those of [`energy_forces`], [`force_surrogate`] and the closures;
/// [`Error::NonFinite`] for a `dL/dE` that is not finite.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::{training_gradients, LossDerivatives};
/// use equivariant::graph::EdgeIndex;
/// // E = k |r|^2 / 2 over two directed edges: F_0 = 2 k r, and L = F_0x gives dL/dk = 2 r_x
/// // and dL/dpos = (-2k, 0, 0) on atom 0, (2k, 0, 0) on atom 1.
/// #[derive(Module, Debug)]
/// struct Spring {
///     k: Param<Tensor<1>>,
/// }
/// let device = Device::flex().autodiff();
/// let spring = Spring { k: Param::from_tensor(Tensor::from_floats([3.0], &device)) };
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let r = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let step = training_gradients(
///     &spring,
///     &edges,
///     r,
///     |r| Ok(r.powi_scalar(2).sum().mul(spring.k.val()).mul_scalar(0.5)),
///     |result| {
///         assert_eq!(result.forces.clone().into_data().try_into_vec::<f32>().unwrap()[0], 9.0);
///         let v = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
///         Ok(LossDerivatives { energy: 0.0, forces: v, virial: None })
///     },
///     |r, s| Ok(r.mul(s).sum().mul(spring.k.val())),
///     true,
/// )?;
/// assert_eq!(spring.k.val().grad(&step.gradients).unwrap().into_scalar::<f32>(), 3.0);
/// let positions = step.positions.unwrap().into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(positions, [-6.0, 0.0, 0.0, 6.0, 0.0, 0.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn training_gradients<M: Module, const D: usize, const DT: usize>(
    model: &M,
    edges: &EdgeIndex,
    edge_vec: Tensor<2>,
    energy: impl FnOnce(Tensor<2>) -> Result<Tensor<D>>,
    loss: impl FnOnce(&EnergyForces) -> Result<LossDerivatives>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<Tensor<DT>>,
    positions: bool,
) -> Result<TrainingGradients> {
    let edges = Arc::new(edges.clone());
    let (result, energy_grads) = energy_forces_and_gradients(&edges, edge_vec.clone(), energy)?;
    let derivatives = loss(&result)?;
    if !derivatives.energy.is_finite() {
        return Err(Error::NonFinite {
            what: "dL/dE",
            index: 0,
        });
    }
    // A fresh leaf on an autodiff device (the edge vectors may come without autodiff).
    let r = edge_vec.without_autodiff().autodiff();
    let r = if positions { r.require_grad() } else { r };
    let surrogate = surrogate(
        &edges,
        r.clone(),
        derivatives.forces,
        derivatives.virial,
        energy_tangent,
    )?;
    // A tangent that reaches no tracked tensor (a model without parameters) still gets its
    // (empty) gradients: burn's backward needs a tracked root, which a zero term anchors.
    let anchor = Tensor::<1>::zeros([1], (&r.device(), r.dtype()))
        .autodiff()
        .require_grad();
    let mut grads = surrogate.add(anchor.mul_scalar(0.0)).backward();
    if let Some(mut energy_grads) = energy_grads {
        model.visit(&mut AddScaled {
            from: &mut energy_grads,
            scale: derivatives.energy,
            into: &mut grads,
        });
    }
    let positions = positions.then(|| {
        let dr = match r.grad_remove(&mut grads) {
            Some(g) => g.without_autodiff(),
            None => Tensor::zeros(r.dims(), (&r.device(), r.dtype())),
        };
        let through_tangent = edge_vectors_backward(&edges, dr);
        result
            .forces
            .clone()
            .mul_scalar(-derivatives.energy)
            .add(through_tangent)
    });
    Ok(TrainingGradients {
        energy_forces: result,
        gradients: grads,
        positions,
    })
}

/// Adds `scale` times each parameter's gradient in `from` to its gradient in `into`.
struct AddScaled<'a> {
    from: &'a mut Gradients,
    scale: f64,
    into: &'a mut Gradients,
}

impl ModuleVisitor for AddScaled<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let param = param.val();
        let Some(g) = param.grad_remove(self.from) else {
            return;
        };
        let g = g.mul_scalar(self.scale);
        let sum = match param.grad_remove(self.into) {
            Some(other) => other.add(g),
            None => g,
        };
        param.grad_replace(self.into, sum);
    }
}

/// A scalar whose gradient with respect to the parameters is that of `v . F + U : W`, the
/// force and virial terms of a loss's gradient (`v = dL/dF`, `[n, 3]`; `U = dL/dW`, `[3, 3]`,
/// or `None`), held fixed: the second-order part of [`training_gradients`]. Where
/// `edge_vec` is tracked (and `energy_tangent` differentiable in it), its gradient is that
/// of `v . F + U : W` in the edge vectors.
///
/// With `g_e = dE/dr_e`, `v . F = -sum_e g_e . (v[dst_e] - v[src_e])` and
/// `U : W = -sum_e g_e . (U^T r_e)`, so both are minus the energy's tangent along
/// `s_e = v[dst_e] - v[src_e] + U^T r_e`. `energy_tangent(r, s)` returns that tangent
/// (any shape, summed), tracked in the parameters; the result is its negative sum, `[1]`.
///
/// Errors: [`Error::ShapeMismatch`] if `edge_vec` is not `[E, 3]`, `dl_dforces` not
/// `[n, 3]` or `dl_dvirial` not `[3, 3]`; [`Error::NonFinite`] for a NaN or infinite entry
/// in any of them; [`Error::InvalidArgument`] for a derivative of another dtype than
/// `edge_vec`; and the errors of `energy_tangent`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::force_surrogate;
/// use equivariant::graph::EdgeIndex;
/// // E = k |r|^2 / 2 over two directed edges: F_0 = 2 k r, and L = F_0x gives dL/dk = 2 r_x.
/// let device = Device::flex().autodiff();
/// let k = Tensor::<1>::from_floats([3.0], &device).require_grad();
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let r = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let dl_df = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
/// let s = force_surrogate(&edges, r, dl_df, None, |r, s| Ok(r.mul(s).sum().mul(k.clone())))?;
/// let grads = s.backward();
/// assert_eq!(k.grad(&grads).unwrap().into_scalar::<f32>(), 3.0);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn force_surrogate<const D: usize>(
    edges: &EdgeIndex,
    edge_vec: Tensor<2>,
    dl_dforces: Tensor<2>,
    dl_dvirial: Option<Tensor<2>>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<Tensor<D>>,
) -> Result<Tensor<1>> {
    let edges = Arc::new(edges.clone());
    surrogate(&edges, edge_vec, dl_dforces, dl_dvirial, energy_tangent)
}

/// [`force_surrogate`] on shared edges.
fn surrogate<const D: usize>(
    edges: &Arc<EdgeIndex>,
    edge_vec: Tensor<2>,
    dl_dforces: Tensor<2>,
    dl_dvirial: Option<Tensor<2>>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<Tensor<D>>,
) -> Result<Tensor<1>> {
    let (n, e) = (edges.num_nodes(), edges.num_edges());
    check_edge_rows(&edge_vec, e)?;
    check_shape("dl_dforces [n, 3]", &dl_dforces, [n, 3])?;
    check_finite("edge_vec", &edge_vec)?;
    check_finite("dl_dforces", &dl_dforces)?;
    check_dtype("dl_dforces", &dl_dforces, &edge_vec)?;
    let r = edge_vec;
    let mut s = edge_vectors(edges, dl_dforces.detach());
    if let Some(u) = dl_dvirial {
        check_shape("dl_dvirial [3, 3]", &u, [3, 3])?;
        check_finite("dl_dvirial", &u)?;
        check_dtype("dl_dvirial", &u, &r)?;
        // Row e of `r U` is `U^T r_e`.
        s = s.add(r.clone().matmul(u.detach()));
    }
    Ok(energy_tangent(r, s)?.sum().neg())
}

/// [`Error::ShapeMismatch`] unless `edge_vec` is `[num_edges, 3]`.
fn check_edge_rows(edge_vec: &Tensor<2>, num_edges: usize) -> Result<()> {
    check_shape("edge_vec [E, 3]", edge_vec, [num_edges, 3])
}
