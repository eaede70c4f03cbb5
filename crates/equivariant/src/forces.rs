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
//! backward gives the force term's parameter gradient for `v = dL/dF`;
//! [`training_surrogate`] puts the energy and force terms together.

use burn::tensor::Tensor;

use crate::graph::EdgeIndex;
use crate::ops::{gather, index_tensor, scatter_sum};
use crate::shape::check_finite;
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
    let (n, e) = (edges.num_nodes(), edges.num_edges());
    let [rows, cols] = edge_vec.dims();
    if [rows, cols] != [e, 3] {
        return Err(Error::ShapeMismatch {
            what: "edge_vec [E, 3]",
            expected: e * 3,
            got: rows * cols,
        });
    }
    check_finite("edge_vec", &edge_vec)?;
    let r = edge_vec.without_autodiff();
    let leaf = r.clone().autodiff().require_grad();
    let total = energy(leaf.clone())?.sum();
    // An energy that does not depend on the edge vectors (no edges, only per-atom terms)
    // has no gradient to take: its forces and virial are zero.
    let grads = total.is_tracked().then(|| total.backward());
    let total = total.without_autodiff();
    check_finite("energy", &total)?;
    let device = r.device();
    let g = match grads.and_then(|grads| leaf.grad(&grads)) {
        Some(g) => g.without_autodiff(),
        None => Tensor::zeros([e, 3], (&device, r.dtype())),
    };
    let (src, dst): (Vec<usize>, Vec<usize>) = (0..e).map(|k| (edges.src(k), edges.dst(k))).unzip();
    let forces = scatter_sum(g.clone(), index_tensor(&src, &device), n).sub(scatter_sum(
        g.clone(),
        index_tensor(&dst, &device),
        n,
    ));
    let virial = r.transpose().matmul(g).neg();
    Ok(EnergyForces {
        energy: total,
        forces,
        virial,
    })
}

/// A scalar whose gradient with respect to the parameters is that of a loss `L(E, F)` of
/// the energy and the forces (`F = -dE/dpos`): the forward-over-reverse route to training
/// on forces, a second derivative burn cannot take itself.
///
/// With `a = dL/dE` and `v = dL/dF` (`[n, 3]`) taken at the current parameters (from
/// [`energy_forces`] and the loss), `dL/dtheta = a dE/dtheta - d/dtheta (v . grad_pos E)`,
/// and `v . grad_pos E` is the tangent of `E` along the edge-vector direction
/// `t_e = v[dst_e] - v[src_e]`. `energy_tangent(r, t)` returns `(E, dE)`, the energy (any
/// shape, summed) and its tangent along `t` (e.g. from
/// [`Convolution::forward_edges_tangent`](crate::nn::Convolution::forward_edges_tangent)),
/// tracked in the parameters; the result is `a E - dE`, `[1]`, and its `backward()` gives
/// `dL/dtheta` (its value is not `L`).
///
/// Errors: [`Error::ShapeMismatch`] if `edge_vec` is not `[E, 3]` or `dl_dforces` not
/// `[n, 3]`; [`Error::NonFinite`] for a NaN or infinite entry in either, or a `dl_denergy`
/// that is not finite; and the errors of `energy_tangent`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::forces::training_surrogate;
/// use equivariant::graph::EdgeIndex;
/// // E = k |r|^2 / 2 over two directed edges: F_0 = 2 k r, and L = F_0x gives dL/dk = 2 r_x.
/// let device = Device::flex().autodiff();
/// let k = Tensor::<1>::from_floats([3.0], &device).require_grad();
/// let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2)?;
/// let r = Tensor::<2>::from_floats([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]], &device);
/// let dl_df = Tensor::<2>::from_floats([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
/// let s = training_surrogate(&edges, r, 0.0, dl_df, |r, t| {
///     let energy = r.clone().powi_scalar(2).sum().mul(k.clone()).mul_scalar(0.5);
///     let tangent = r.mul(t).sum().mul(k.clone());
///     Ok((energy, tangent))
/// })?;
/// let grads = s.backward();
/// assert_eq!(k.grad(&grads).unwrap().into_scalar::<f32>(), 3.0);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn training_surrogate<const D: usize>(
    edges: &EdgeIndex,
    edge_vec: Tensor<2>,
    dl_denergy: f64,
    dl_dforces: Tensor<2>,
    energy_tangent: impl FnOnce(Tensor<2>, Tensor<2>) -> Result<(Tensor<D>, Tensor<D>)>,
) -> Result<Tensor<1>> {
    let (n, e) = (edges.num_nodes(), edges.num_edges());
    for (what, x, rows) in [
        ("edge_vec [E, 3]", &edge_vec, e),
        ("dl_dforces [n, 3]", &dl_dforces, n),
    ] {
        let [r, c] = x.dims();
        if [r, c] != [rows, 3] {
            return Err(Error::ShapeMismatch {
                what,
                expected: rows * 3,
                got: r * c,
            });
        }
    }
    check_finite("edge_vec", &edge_vec)?;
    check_finite("dl_dforces", &dl_dforces)?;
    if !dl_denergy.is_finite() {
        return Err(Error::NonFinite {
            what: "dl_denergy",
            index: 0,
        });
    }
    let device = edge_vec.device();
    let (src, dst): (Vec<usize>, Vec<usize>) = (0..e).map(|k| (edges.src(k), edges.dst(k))).unzip();
    let v = dl_dforces.detach();
    let t =
        gather(v.clone(), index_tensor(&dst, &device)).sub(gather(v, index_tensor(&src, &device)));
    let (energy, tangent) = energy_tangent(edge_vec.detach(), t)?;
    Ok(energy.sum().mul_scalar(dl_denergy).sub(tangent.sum()))
}
