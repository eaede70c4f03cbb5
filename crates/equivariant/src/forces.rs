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
//! A batch of structures is one graph whose nodes a [`Batch`] assigns to structures: the
//! energy is then one value per structure, and the virial one `[3, 3]` per structure (the
//! sum over the edges of that structure, each edge belonging to the structure of its atoms).
//!
//! Training on forces needs the gradient of a loss of these forces with respect to the
//! parameters (a second derivative), which this first-order pass does not give: the forces
//! come back as plain tensors, without autodiff. Its building block is the tangent pass
//! ([`Convolution::forward_edges_tangent`](crate::nn::Convolution::forward_edges_tangent)):
//! `v . grad_pos E` is the tangent of `E` along `t_e = v[dst_e] - v[src_e]`, and its
//! backward gives the force term's parameter gradient for `v = dL/dF`
//! ([`force_surrogate`]); [`training_gradients`] adds the energy term and takes one backward
//! pass for both.

use std::sync::Arc;

use burn::tensor::{DType, Device, Element, Gradients, Tensor, TensorData};
use equivariant_core::Real;
use rayon::prelude::*;

use crate::graph::{Batch, EdgeIndex};
use crate::ops::edge_vectors::edge_vectors_backward;
use crate::ops::{edge_vectors, index_tensor, scatter_sum};
use crate::shape::{check_dtype, check_finite, check_shape, mismatch};
use crate::{Error, Result};

/// The energy of each structure of a batch and its derivatives, as an MD engine or ASE needs
/// them. The tensors are on the device of the edge vectors, without autodiff.
#[derive(Debug, Clone)]
pub struct EnergyForces {
    /// The energy of each structure, `[G]` (`[1]` for a single structure).
    pub energy: Tensor<1>,
    /// `F = -dE/dpos`, `[n, 3]`.
    pub forces: Tensor<2>,
    /// `W = -sum_e r_e (x) dE/dr_e` over the edges of each structure, `[G, 3, 3]`: symmetric
    /// for an energy invariant under rotations.
    pub virial: Tensor<3>,
    /// `g_e = dE/dr_e`, `[E, 3]`: what per-atom virials (or a heat flux) are made of.
    pub edge_gradient: Tensor<2>,
}

impl EnergyForces {
    /// The stress `sigma = -W / V` (ASE's sign: positive under tension) of each structure,
    /// `[G, 3, 3]`, for cells of volumes `volumes` (`|det cell|`, one per structure).
    ///
    /// Errors: [`Error::ShapeMismatch`] for a volume count other than `G`;
    /// [`Error::InvalidArgument`] for a volume that is not finite and positive.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::forces::EnergyForces;
    /// let device = Device::flex();
    /// let result = EnergyForces {
    ///     energy: Tensor::<1>::zeros([1], &device),
    ///     forces: Tensor::<2>::zeros([1, 3], &device),
    ///     edge_gradient: Tensor::<2>::zeros([0, 3], &device),
    ///     virial: Tensor::<3>::from_floats([[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]], &device),
    /// };
    /// let stress = result.stress(&[4.0])?.into_data().try_into_vec::<f32>().unwrap();
    /// assert_eq!(stress[0], -0.5);
    /// assert!(result.stress(&[0.0]).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn stress(&self, volumes: &[f64]) -> Result<Tensor<3>> {
        let [g, _, _] = self.virial.dims();
        if volumes.len() != g {
            return Err(Error::ShapeMismatch {
                what: "volumes (one per structure)",
                expected: g,
                got: volumes.len(),
            });
        }
        if let Some(volume) = volumes.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(Error::InvalidArgument {
                name: "volume",
                reason: format!("{volume}: a cell's volume is finite and positive"),
            });
        }
        let device = self.virial.device();
        let scale: Vec<f64> = volumes.iter().map(|v| -1.0 / v).collect();
        let scale = Tensor::<1>::from_data(
            burn::tensor::TensorData::new(scale, [g]),
            (&device, self.virial.dtype()),
        );
        Ok(self.virial.clone().mul(scale.reshape([g, 1, 1])))
    }
}

/// The energies `E(r)` that `energy` computes from the edge vectors `edge_vec` of the graph
/// `edges` (`[E, 3]`, edge `e` from `src_e` to `dst_e`, periodic shifts included), one per
/// structure of `batch`, with the forces and the virials (see the [module docs](self)), f32
/// or f64 as `edge_vec`.
///
/// `energy` receives the edge vectors as a leaf that requires its gradient and returns the
/// energy of each structure, `[G]` (for one structure, e.g. `per_atom.sum()`). The model
/// may live on a device without autodiff (its parameters are then constants) or with it.
/// An edge belongs to the structure of its `dst` atom; edges across structures are an error.
///
/// Errors: [`Error::ShapeMismatch`] if `edge_vec` is not `[edges.num_edges(), 3]`, `batch`
/// does not have a node per node of `edges`, or the energy is not `[G]`;
/// [`Error::InvalidArgument`] for an edge between two structures; [`Error::NonFinite`] for
/// a NaN or infinite edge vector, or an energy that is not finite; and the errors of
/// `energy`. An energy that does not depend on the edge vectors (a graph without edges) has
/// zero forces and virials.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::energy_forces;
/// use equivariant::graph::{Batch, EdgeIndex};
/// // Two atoms and a harmonic bond, E = |r|^2 / 2 over both directed edges: F = -dE/dpos.
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let device = Device::flex();
/// let edge_vec = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let result = energy_forces(&edges, &Batch::single(2), edge_vec, |r| Ok(r.powf_scalar(2.0).sum().mul_scalar(0.5)))?;
/// let forces = result.forces.into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(forces, [3.0, 0.0, 0.0, -3.0, 0.0, 0.0]); // atom 0 pulled toward atom 1
/// assert_eq!(result.energy.into_scalar::<f32>(), 2.25);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn energy_forces(
    edges: &EdgeIndex,
    batch: &Batch,
    edge_vec: Tensor<2>,
    energy: impl FnOnce(Tensor<2>) -> Result<Tensor<1>>,
) -> Result<EnergyForces> {
    let structures = Structures::new(edges, batch)?;
    energy_pass(&Arc::new(edges.clone()), &structures, edge_vec, energy)
}

/// The structure of each edge of a batch, checked (`edge_graph[e] = batch[dst_e]`, the same
/// as `batch[src_e]`).
struct Structures {
    edge_graph: Vec<usize>,
    num_graphs: usize,
}

impl Structures {
    fn new(edges: &EdgeIndex, batch: &Batch) -> Result<Self> {
        let n = edges.num_nodes();
        if batch.num_nodes() != n {
            return Err(Error::ShapeMismatch {
                what: "batch (one graph index per node of the edges)",
                expected: n,
                got: batch.num_nodes(),
            });
        }
        if batch.num_graphs() == 1 {
            // Every node is in structure 0: no edge can join two.
            return Ok(Structures {
                edge_graph: vec![0; edges.num_edges()],
                num_graphs: 1,
            });
        }
        let index = batch.index();
        let mut edge_graph = Vec::with_capacity(edges.num_edges());
        for e in 0..edges.num_edges() {
            let (src, dst) = (edges.src(e), edges.dst(e));
            if index[src] != index[dst] {
                return Err(Error::InvalidArgument {
                    name: "edges",
                    reason: format!(
                        "edge {e} joins node {src} of structure {} to node {dst} of structure {}",
                        index[src], index[dst]
                    ),
                });
            }
            edge_graph.push(index[dst]);
        }
        Ok(Structures {
            edge_graph,
            num_graphs: batch.num_graphs(),
        })
    }

    /// The rows of `x` (`[E, d]`) summed per structure, `[G, d]`.
    fn sum(&self, x: Tensor<2>) -> Tensor<2> {
        let index = index_tensor(&self.edge_graph, &x.device());
        scatter_sum(x, index, self.num_graphs)
    }

    /// The virials `W_g = -sum_{e in g} r_e (x) g_e` (`[G, 3, 3]`) of the edge vectors `r`
    /// and gradients `grad` (`[E, 3]`, both in `T` on the same device) on their values
    /// ([`Self::virial_values`]); `None` where the values are not `T`. The outer products as
    /// tensors cost a step of MD an `[E, 9]` product and a scatter (3% of it at 1000 atoms).
    fn virial<T: Real + Element>(&self, r: &Tensor<2>, grad: &Tensor<2>) -> Option<Tensor<3>> {
        let (r_data, g_data) = (r.to_data(), grad.to_data());
        let (r_values, g_values) = (r_data.as_slice::<T>().ok()?, g_data.as_slice::<T>().ok()?);
        let w = self.virial_values(r_values, g_values);
        Some(Tensor::from_data(
            TensorData::new(w, [self.num_graphs, 3, 3]),
            (&r.device(), r.dtype()),
        ))
    }

    /// The virials `W_g = -sum_{e in g} r_e (x) g_e`, `[G, 3, 3]`, of the edge vectors `r`
    /// and gradients `grad` (`[E, 3]` each): in parallel blocks of edges, each summed in
    /// edge order, then the blocks in order (the same sums for any number of threads).
    fn virial_values<T: Real>(&self, r: &[T], grad: &[T]) -> Vec<T> {
        const BLOCK: usize = 4096;
        let g = self.num_graphs;
        // Each block's sums over the structures its edges belong to (`first..=last`: a
        // batch's edges come structure by structure), not a `[G, 9]` buffer per block.
        let blocks: Vec<(usize, Vec<T>)> = (r.par_chunks(3 * BLOCK))
            .zip(grad.par_chunks(3 * BLOCK))
            .zip(self.edge_graph.par_chunks(BLOCK))
            .map(|((r, d), graphs)| {
                let first = graphs.iter().copied().min().unwrap_or(0);
                let last = graphs.iter().copied().max().unwrap_or(0);
                let mut w = vec![T::zero(); 9 * (last + 1 - first)];
                // A run of edges of one structure sums in registers: a sum kept in memory
                // waits on its own store at every edge.
                let mut start = 0;
                while start < graphs.len() {
                    let s = graphs[start];
                    let len = graphs[start..].iter().take_while(|&&t| t == s).count();
                    // Carried on from the structure's sums so far (its edges may come in
                    // several runs): the same subtractions, in edge order, as into `w`.
                    let slot = &mut w[9 * (s - first)..9 * (s - first + 1)];
                    let mut sum: [T; 9] = std::array::from_fn(|k| slot[k]);
                    let edges = (r[3 * start..3 * (start + len)].chunks_exact(3))
                        .zip(d[3 * start..3 * (start + len)].chunks_exact(3));
                    for (r, d) in edges {
                        for a in 0..3 {
                            for c in 0..3 {
                                sum[3 * a + c] -= r[a] * d[c];
                            }
                        }
                    }
                    slot.copy_from_slice(&sum);
                    start += len;
                }
                (first, w)
            })
            .collect();
        let mut w = vec![T::zero(); 9 * g];
        for (first, block) in blocks {
            (w[9 * first..].iter_mut())
                .zip(block)
                .for_each(|(w, b)| *w += b);
        }
        w
    }

    /// Row `edge_graph[e]` of `x` (`[G, d]`) for each edge, `[E, d]`.
    fn per_edge(&self, x: Tensor<2>) -> Tensor<2> {
        let index = index_tensor(&self.edge_graph, &x.device());
        x.select(0, index)
    }
}

/// [`energy_forces`] on checked structures.
fn energy_pass(
    edges: &Arc<EdgeIndex>,
    structures: &Structures,
    edge_vec: Tensor<2>,
    energy: impl FnOnce(Tensor<2>) -> Result<Tensor<1>>,
) -> Result<EnergyForces> {
    let (e, g) = (edges.num_edges(), structures.num_graphs);
    check_edge_rows(&edge_vec, e)?;
    check_finite("edge_vec", &edge_vec)?;
    let r = edge_vec.without_autodiff();
    let leaf = r.clone().autodiff().require_grad();
    let energies = energy(leaf.clone())?;
    check_shape("energy [G] (one per structure)", &energies, [g])?;
    // An energy that does not depend on the edge vectors (no edges, only per-atom terms)
    // has no gradient to take: its forces and virial are zero.
    let total = energies.clone().sum();
    let mut grads = total.is_tracked().then(|| total.backward());
    let energies = energies.without_autodiff();
    let device = r.device();
    let grad = match grads.as_mut().and_then(|grads| leaf.grad_remove(grads)) {
        Some(grad) => grad.without_autodiff(),
        None => Tensor::zeros([e, 3], (&device, r.dtype())),
    };
    assemble(edges, structures, r, energies, grad)
}

/// [`EnergyForces`] of a graph from the values of its edge vectors `edge_vec` (`[E, 3]`),
/// the energies `[G]` and `g_e = dE/dr_e` (`[E, 3]`) computed without autodiff, in `T`, for a
/// model with its own backward ([`Nequip`](crate::nn::models::nequip::Nequip)'s): the
/// forces and virials as [`energy_forces`] forms them, summed on the values, with the
/// tensors made on `device` (the energies and `g_e` moved into theirs, not copied).
///
/// Errors: as [`energy_forces`], for the edges, `batch`, the lengths of `edge_vec`,
/// `energies` and `edge_gradient`, and the energies' values (the caller checks the edge
/// vectors' values: it computed from them).
pub(crate) fn energy_forces_from_gradient<T: Real + Element>(
    edges: &EdgeIndex,
    batch: &Batch,
    edge_vec: &[T],
    energies: Vec<T>,
    edge_gradient: Vec<T>,
    device: &Device,
) -> Result<EnergyForces> {
    let structures = Structures::new(edges, batch)?;
    let (n, e, g) = (edges.num_nodes(), edges.num_edges(), structures.num_graphs);
    mismatch("edge_vec [E, 3]", 3 * e, edge_vec.len())?;
    mismatch("energy [G] (one per structure)", g, energies.len())?;
    mismatch("edge_gradient [E, 3]", 3 * e, edge_gradient.len())?;
    if let Some(index) = energies.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "energy",
            index,
        });
    }
    // F = -dE/dpos.
    let mut forces = vec![T::zero(); 3 * n];
    edges.edge_vectors_backward(&edge_gradient, &mut forces)?;
    forces.iter_mut().for_each(|f| *f = -*f);
    let virial = structures.virial_values(edge_vec, &edge_gradient);
    Ok(EnergyForces {
        energy: values_tensor(energies, [g], device),
        forces: values_tensor(forces, [n, 3], device),
        virial: values_tensor(virial, [g, 3, 3], device),
        edge_gradient: values_tensor(edge_gradient, [e, 3], device),
    })
}

/// The tensor of `values` (moved, not copied) in their float type, of shape `shape`.
pub(crate) fn values_tensor<T: Element, const D: usize>(
    values: Vec<T>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, T::dtype()))
}

/// The forces and virials from `g_e = dE/dr_e`, with the energies checked finite.
fn assemble(
    edges: &Arc<EdgeIndex>,
    structures: &Structures,
    r: Tensor<2>,
    energies: Tensor<1>,
    grad: Tensor<2>,
) -> Result<EnergyForces> {
    check_finite("energy", &energies)?;
    let (e, g) = (edges.num_edges(), structures.num_graphs);
    let forces = edge_vectors_backward(edges, grad.clone()).neg();
    let virial = match (r.dtype(), grad.dtype()) {
        (DType::F32, DType::F32) => structures.virial::<f32>(&r, &grad),
        (DType::F64, DType::F64) => structures.virial::<f64>(&r, &grad),
        _ => None,
    };
    // W_ab = -sum_e r_ea g_eb per structure, from the outer products [E, 9].
    let virial = virial.unwrap_or_else(|| {
        let outer = r
            .reshape([e, 3, 1])
            .mul(grad.clone().reshape([e, 1, 3]))
            .reshape([e, 9]);
        structures.sum(outer).neg().reshape([g, 3, 3])
    });
    Ok(EnergyForces {
        energy: energies,
        forces,
        virial,
        edge_gradient: grad,
    })
}

/// The derivatives of a training loss `L(E, F, W)` in the energies, the forces and the
/// virials, at the current parameters: what [`training_gradients`] needs from the loss. For
/// a loss of the stress `sigma = -W / V`, `dL/dW = -dL/dsigma / V`.
#[derive(Debug, Clone)]
pub struct LossDerivatives {
    /// `dL/dE_g`, one per structure.
    pub energy: Vec<f64>,
    /// `dL/dF`, `[n, 3]`.
    pub forces: Tensor<2>,
    /// `dL/dW_g`, `[G, 3, 3]` (`None`: the loss does not depend on the virials).
    pub virial: Option<Tensor<3>>,
}

/// What [`training_gradients`] returns.
pub struct TrainingGradients {
    /// The first pass's energies, forces and virials.
    pub energy_forces: EnergyForces,
    /// `dL/dtheta` for every parameter the loss reaches (read one with
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

/// The gradient with respect to every parameter (and, if `positions`, to the positions) of
/// a training loss `L(E, F, W)` of the energies, the forces and the virials of a batch of
/// structures: the forward-over-reverse route to training on forces (a second derivative,
/// which burn cannot take itself).
///
/// 1. [`energy_forces`] with `energy`: `E_g`, `F`, `W_g`.
/// 2. `loss` gives `a_g = dL/dE_g`, `v = dL/dF` and `U_g = dL/dW_g` from them (computing
///    and recording the loss's value is up to it).
/// 3. `dL/dtheta = sum_g a_g dE_g/dtheta + d/dtheta (v . F + sum_g U_g : W_g)`, and the
///    second term is `-d/dtheta` of the energy's tangent along the edge-vector direction
///    `s_e` of [`force_surrogate`]. `energy_tangent(r, s)` returns the energies `[G]` and
///    that tangent (any shape, summed), both tracked in the parameters, e.g. from
///    [`Convolution::forward_edges_tangent`](crate::nn::Convolution::forward_edges_tangent);
///    one backward pass of `sum_g a_g E_g - sum tangent` gives both terms.
/// 4. With `positions`, the same backward also differentiates in the edge vectors (`r` is
///    then tracked: the tangent pass must be differentiable in `r` and `s`, as the modules'
///    are), and `dL/dpos` is the sum over edges of those gradients (`+` at `dst`, `-` at
///    `src`). It costs the tangent pass's gradients in the edge vectors; leave it off to
///    train.
///
/// A parameter the loss does not reach has no gradient, as with burn's own backward.
///
/// Errors: those of [`energy_forces`], [`force_surrogate`] and the closures;
/// [`Error::ShapeMismatch`] for a `dL/dE` or a tangent pass's energies not one per
/// structure; [`Error::NonFinite`] for a `dL/dE` that is not finite.
///
/// ```
/// use burn::module::{Module, Param};
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::{training_gradients, LossDerivatives};
/// use equivariant::graph::{Batch, EdgeIndex};
/// // E = k |r|^2 / 2 over two directed edges: F_0 = 2 k r, and L = F_0x gives dL/dk = 2 r_x
/// // and dL/dpos = (-2k, 0, 0) on atom 0, (2k, 0, 0) on atom 1.
/// let device = Device::flex().autodiff();
/// let k = Param::from_tensor(Tensor::<1>::from_floats([3.0], &device));
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let r = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let energy = |r: Tensor<2>| r.powi_scalar(2).sum().mul(k.val()).mul_scalar(0.5);
/// let step = training_gradients(
///     &edges,
///     &Batch::single(2),
///     r,
///     |r| Ok(energy(r)),
///     |result| {
///         assert_eq!(result.forces.clone().into_data().try_into_vec::<f32>().unwrap()[0], 9.0);
///         let v = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
///         Ok(LossDerivatives { energy: vec![0.0], forces: v, virial: None })
///     },
///     |r, s| Ok((energy(r.clone()), r.mul(s).sum().mul(k.val()))),
///     true,
/// )?;
/// assert_eq!(k.val().grad(&step.gradients).unwrap().into_scalar::<f32>(), 3.0);
/// let positions = step.positions.unwrap().into_data().try_into_vec::<f32>().unwrap();
/// assert_eq!(positions, [-6.0, 0.0, 0.0, 6.0, 0.0, 0.0]);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn training_gradients<const DT: usize>(
    edges: &EdgeIndex,
    batch: &Batch,
    edge_vec: Tensor<2>,
    energy: impl FnOnce(Tensor<2>) -> Result<Tensor<1>>,
    loss: impl FnOnce(&EnergyForces) -> Result<LossDerivatives>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<(Tensor<1>, Tensor<DT>)>,
    positions: bool,
) -> Result<TrainingGradients> {
    let structures = Structures::new(edges, batch)?;
    let g = structures.num_graphs;
    let edges = Arc::new(edges.clone());
    let result = energy_pass(&edges, &structures, edge_vec.clone(), energy)?;
    let derivatives = loss(&result)?;
    if derivatives.energy.len() != g {
        return Err(Error::ShapeMismatch {
            what: "dL/dE (one per structure)",
            expected: g,
            got: derivatives.energy.len(),
        });
    }
    if let Some(index) = derivatives.energy.iter().position(|a| !a.is_finite()) {
        return Err(Error::NonFinite {
            what: "dL/dE",
            index,
        });
    }
    // A fresh leaf on an autodiff device (the edge vectors may come without autodiff).
    let r = edge_vec.without_autodiff().autodiff();
    let r = if positions { r.require_grad() } else { r };
    let mut energies = None;
    let force_term = surrogate(
        &edges,
        &structures,
        r.clone(),
        derivatives.forces,
        derivatives.virial,
        |r, s| {
            let (e, tangent) = energy_tangent(r, s)?;
            check_shape("the tangent pass's energy [G]", &e, [g])?;
            energies = Some(e);
            Ok(tangent)
        },
    )?;
    let energies = energies.expect("the surrogate ran the tangent pass");
    let device = r.device();
    let a = Tensor::<1>::from_data(
        burn::tensor::TensorData::new(derivatives.energy, [g]),
        (&device, r.dtype()),
    );
    // A loss that reaches no tracked tensor (a model without parameters) still gets its
    // (empty) gradients: burn's backward needs a tracked root, which a zero term anchors.
    let anchor = Tensor::<1>::zeros([1], (&device, r.dtype()))
        .autodiff()
        .require_grad();
    let objective = energies
        .mul(a)
        .sum()
        .add(force_term)
        .add(anchor.mul_scalar(0.0));
    let mut grads = objective.backward();
    let positions = positions.then(|| {
        let dr = match r.grad_remove(&mut grads) {
            Some(grad) => grad.without_autodiff(),
            None => Tensor::zeros(r.dims(), (&device, r.dtype())),
        };
        edge_vectors_backward(&edges, dr)
    });
    Ok(TrainingGradients {
        energy_forces: result,
        gradients: grads,
        positions,
    })
}

/// A scalar whose gradient with respect to the parameters is that of
/// `v . F + sum_g U_g : W_g`, the force and virial terms of a loss's gradient
/// (`v = dL/dF`, `[n, 3]`; `U = dL/dW`, `[G, 3, 3]`, or `None`), held fixed: the
/// second-order part of [`training_gradients`]. Where `edge_vec` is tracked (and
/// `energy_tangent` differentiable in it), its gradient is that of `v . F + U : W` in the
/// edge vectors.
///
/// With `g_e = dE/dr_e`, `v . F = -sum_e g_e . (v[dst_e] - v[src_e])` and
/// `U : W = -sum_e g_e . (U_{g(e)}^T r_e)`, so both are minus the energy's tangent along
/// `s_e = v[dst_e] - v[src_e] + U_{g(e)}^T r_e` (`g(e)` the structure of edge `e`).
/// `energy_tangent(r, s)` returns that tangent (any shape, summed), tracked in the
/// parameters; the result is its negative sum, `[1]`.
///
/// Errors: [`Error::ShapeMismatch`] if `edge_vec` is not `[E, 3]`, `dl_dforces` not
/// `[n, 3]` or `dl_dvirial` not `[G, 3, 3]`, or `batch` not one index per node;
/// [`Error::InvalidArgument`] for an edge between structures or a derivative of another
/// dtype than `edge_vec`; [`Error::NonFinite`] for a NaN or infinite entry in any of them;
/// and the errors of `energy_tangent`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::force_surrogate;
/// use equivariant::graph::{Batch, EdgeIndex};
/// // E = k |r|^2 / 2 over two directed edges: F_0 = 2 k r, and L = F_0x gives dL/dk = 2 r_x.
/// let device = Device::flex().autodiff();
/// let k = Tensor::<1>::from_floats([3.0], &device).require_grad();
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let r = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let dl_df = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
/// let s = force_surrogate(&edges, &Batch::single(2), r, dl_df, None, |r, s| Ok(r.mul(s).sum().mul(k.clone())))?;
/// let grads = s.backward();
/// assert_eq!(k.grad(&grads).unwrap().into_scalar::<f32>(), 3.0);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn force_surrogate<const D: usize>(
    edges: &EdgeIndex,
    batch: &Batch,
    edge_vec: Tensor<2>,
    dl_dforces: Tensor<2>,
    dl_dvirial: Option<Tensor<3>>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<Tensor<D>>,
) -> Result<Tensor<1>> {
    let structures = Structures::new(edges, batch)?;
    let edges = Arc::new(edges.clone());
    surrogate(
        &edges,
        &structures,
        edge_vec,
        dl_dforces,
        dl_dvirial,
        energy_tangent,
    )
}

/// [`force_surrogate`] on shared edges and checked structures.
fn surrogate<const D: usize>(
    edges: &Arc<EdgeIndex>,
    structures: &Structures,
    edge_vec: Tensor<2>,
    dl_dforces: Tensor<2>,
    dl_dvirial: Option<Tensor<3>>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<Tensor<D>>,
) -> Result<Tensor<1>> {
    let (n, e, g) = (edges.num_nodes(), edges.num_edges(), structures.num_graphs);
    check_edge_rows(&edge_vec, e)?;
    check_shape("dl_dforces [n, 3]", &dl_dforces, [n, 3])?;
    check_finite("edge_vec", &edge_vec)?;
    check_finite("dl_dforces", &dl_dforces)?;
    check_dtype("dl_dforces", &dl_dforces, &edge_vec)?;
    let r = edge_vec;
    let mut s = edge_vectors(edges, dl_dforces.detach());
    if let Some(u) = dl_dvirial {
        check_shape("dl_dvirial [G, 3, 3]", &u, [g, 3, 3])?;
        check_finite("dl_dvirial", &u)?;
        check_dtype("dl_dvirial", &u, &r)?;
        // (U^T r_e)_b = sum_a r_ea U_ab, with the U of the edge's structure.
        let u_edge = structures
            .per_edge(u.detach().reshape([g, 9]))
            .reshape([e, 3, 3]);
        let rotated = r.clone().reshape([e, 3, 1]).mul(u_edge).sum_dim(1);
        s = s.add(rotated.reshape([e, 3]));
    }
    Ok(energy_tangent(r, s)?.sum().neg())
}

/// [`Error::ShapeMismatch`] unless `edge_vec` is `[num_edges, 3]`.
fn check_edge_rows(edge_vec: &Tensor<2>, num_edges: usize) -> Result<()> {
    check_shape("edge_vec [E, 3]", edge_vec, [num_edges, 3])
}
