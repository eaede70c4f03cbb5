//! NequIP's energy and forces without autodiff: the forward on plain slices, keeping what
//! the backward needs, then the backward written out, from the per-atom energies to the
//! edge vectors (`g_e = dE/dr_e`). The same function as the model's burn ops, each step a
//! core kernel (the o3 linear maps, the activations, the harmonics and the Bessel
//! encoding as the burn ops run them on Flex; the radial MLP and the convolution in one
//! kernel, [`TensorProductPlan::conv_forward_radial`], which forms each edge's weights
//! inside the convolution, sixteen edges to a vector, and its backward, which reads the
//! weights and slopes the forward kept or forms them again; the dense MLP and the
//! convolution with [`EdgeWeights::Linear`] where forming each edge's weights costs more),
//! with none of autodiff's per-op bookkeeping and allocations: what an MD step, an ASE call
//! or an evaluation needs, where nothing asks for parameter gradients.
//!
//! Per layer (`x` the node features, `a` the species one-hots, `Y_e` the edge harmonics,
//! `b_e` the edge embedding, `s = 1 / sqrt(avg_num_neighbors)`):
//!
//! `h_e = mlp(b_e)`, `x1 = linear_1(x)`, `m_i = s sum_{e -> i} x1_src (x) Y_e` weighted by
//! `h_e W`, `u = linear_2(m) + sc(x, a)`, `x' = gate(u) (+ x with resnet)`;
//!
//! the backward runs the same steps in reverse with their input gradients only, summing
//! the gradients of every layer's `Y` and `b`, then `dE/dr` through the harmonics' and the
//! encoding's derivatives. On a domain's graph each layer reads and writes the prefixes of
//! its [`Shell`](crate::potential::Shell), as the burn ops do; the energy seeds only the
//! counted atoms. `Nequip::atomic_energy_forces` (and so `energy_forces`) runs it; autodiff
//! through the burn ops remains for what it does not run ([`atomic_energy_forces`]).

use std::cell::RefCell;
use std::ops::Range;

use burn::tensor::{DType, Element, Tensor};
use equivariant_core::error::first_non_finite;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::kernels::dense;
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::LinearPlan;
use equivariant_core::o3::tensor_product::{
    ConvGradients, EdgeWeights, MlpLayer, RadialConvGradients, RadialSaved, RadialWeights,
    TensorProductGradients, TensorProductPlan,
};
use equivariant_core::{Error, Real, Result};
use rayon::prelude::*;

use super::{ConvNetLayer, Nequip};
use crate::forces::{energy_forces_from_gradient, values_tensor};
use crate::nn::{Activation, FullyConnectedNet, Gate};
use crate::o3::{Linear, TensorProduct};
use crate::ops::activation::ScalarFunction;
use crate::potential::{AtomicEnergyForces, AtomicGraph, check_counted};

/// The float types the slices run in, each with its threads' [`Pool`]s.
trait Float: Real + Element {
    /// This thread's pool, taken (an empty one in a nested call on the same thread).
    fn take_pool() -> Pool<Self>;
    /// The pool given back to this thread for its next call.
    fn keep_pool(pool: Pool<Self>);
}

thread_local! {
    static POOL_F32: RefCell<Pool<f32>> = const { RefCell::new(Pool { free: Vec::new(), taken: 0, radial: Vec::new() }) };
    static POOL_F64: RefCell<Pool<f64>> = const { RefCell::new(Pool { free: Vec::new(), taken: 0, radial: Vec::new() }) };
}

impl Float for f32 {
    fn take_pool() -> Pool<Self> {
        POOL_F32.take()
    }
    fn keep_pool(pool: Pool<Self>) {
        POOL_F32.set(pool);
    }
}

impl Float for f64 {
    fn take_pool() -> Pool<Self> {
        POOL_F64.take()
    }
    fn keep_pool(pool: Pool<Self>) {
        POOL_F64.set(pool);
    }
}

/// The per-edge buffers of a call, kept on its thread for the next: an MD run calls with
/// about the same sizes step after step (the edges within the cutoff change by a few), and
/// fresh buffers cost a zero-fill each, and page faults where the heap grows (a tenth of a
/// step at 4000 atoms, `perf`).
#[derive(Default)]
struct Pool<T> {
    free: Vec<Vec<T>>,
    /// Buffers taken since the last [`trim`](Pool::trim).
    taken: usize,
    /// What each layer's radial convolution keeps for its backward.
    radial: Vec<RadialSaved<T>>,
}

impl<T: Float> Pool<T> {
    /// A buffer of `len` values whose contents are left from an earlier use (zeros past
    /// its earlier length): for a kernel that overwrites all of it. The smallest kept
    /// buffer that holds `len` values, or a new one.
    fn take(&mut self, len: usize) -> Vec<T> {
        self.taken += 1;
        let fit = (self.free.iter().enumerate())
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        let mut b = match fit {
            Some(i) => self.free.swap_remove(i),
            // Room for an eighth more: the next call's edges may be a few more.
            None => Vec::with_capacity(len + len / 8),
        };
        b.resize(len, T::zero());
        b
    }

    /// A buffer of `len` zeros, for sums.
    fn zeros(&mut self, len: usize) -> Vec<T> {
        let mut b = self.take(len);
        b.fill(T::zero());
        b
    }

    /// Keeps `buffer` for a later [`take`](Self::take).
    fn give(&mut self, buffer: Vec<T>) {
        if buffer.capacity() > 0 {
            self.free.push(buffer);
        }
    }

    /// At the end of a call: keeps as many buffers as it took (the largest), so the pool
    /// holds no more than one call's buffers however the sizes vary from call to call.
    fn trim(&mut self) {
        if self.free.len() > self.taken {
            self.free.sort_by_key(|b| std::cmp::Reverse(b.capacity()));
            self.free.truncate(self.taken);
        }
        self.taken = 0;
    }
}

/// `model`'s per-atom energies, and the energies of the `counted` atoms (`None`: all) of
/// each structure with their forces and virials, by the written-out backward, without
/// autodiff; `None` where it does not apply (an activation that is not built in, a radial
/// MLP whose last layer is not linear, edge vectors of another dtype than the model's or
/// other than f32 and f64), for the caller to run the burn ops.
///
/// Errors: [`Error::ShapeMismatch`] for a `counted` that is not one per atom;
/// [`Error::InvalidArgument`] for a species the model does not know or a domain's graph
/// cut for another number of layers; [`Error::NonFinite`] for an edge vector or an energy
/// that is not finite; those of the kernels for inconsistent shapes.
pub(super) fn atomic_energy_forces(
    model: &Nequip,
    graph: &AtomicGraph,
    counted: Option<&[bool]>,
) -> Result<Option<AtomicEnergyForces>> {
    check_counted(graph, counted)?;
    model.check_graph(graph)?;
    let dtype = graph.edge_vec().dtype();
    if model.per_type_scales.val().dtype() != dtype {
        return Ok(None);
    }
    match dtype {
        DType::F32 => run::<f32>(model, graph, counted),
        DType::F64 => run::<f64>(model, graph, counted),
        _ => Ok(None),
    }
}

/// For each layer of `model`, whether the written-out backward runs its radial MLP inside
/// the convolution ([`TensorProductPlan::conv_forward_radial`]) rather than on its own;
/// `None` where the written-out backward does not run on `graph` (the tests assert which
/// models take which path).
pub(super) fn radial_layers(model: &Nequip, graph: &AtomicGraph) -> Result<Option<Vec<bool>>> {
    if atomic_energy_forces(model, graph, None)?.is_none() {
        return Ok(None);
    }
    Ok(Weights::<f64>::new(model)?.map(|w| w.layers.iter().map(|l| l.radial).collect()))
}

/// The values of the tensor `what` in `T`.
fn values<T: Float, const D: usize>(what: &'static str, t: Tensor<D>) -> Result<Vec<T>> {
    t.into_data()
        .convert::<T>()
        .try_into_vec::<T>()
        .map_err(|e| Error::InvalidArgument {
            name: what,
            reason: format!("cannot be read as floats: {e:?}"),
        })
}

/// [`atomic_energy_forces`] in `T`.
fn run<T: Float>(
    model: &Nequip,
    graph: &AtomicGraph,
    counted: Option<&[bool]>,
) -> Result<Option<AtomicEnergyForces>> {
    let Some(weights) = Weights::<T>::new(model)? else {
        return Ok(None);
    };
    let steps = match graph.shells() {
        Some(shells) => shells
            .iter()
            .map(|s| (&*s.edges, s.inputs, s.outputs))
            .collect(),
        None => {
            let n = graph.species().len();
            vec![(&**graph.edges(), n, n); model.layers.len()]
        }
    };
    let edge_vec = values::<T, 2>("edge_vec", graph.edge_vec().clone())?;
    if let Some(index) = first_non_finite(&edge_vec) {
        return Err(Error::NonFinite {
            what: "edge_vec",
            index,
        });
    }
    let mut pool = T::take_pool();
    let [atomic, energies, gradient] = run_with(
        model, graph, &weights, &steps, &edge_vec, counted, &mut pool,
    )?;
    pool.trim();
    T::keep_pool(pool);
    let device = graph.edge_vec().device().without_autodiff();
    let energy_forces = energy_forces_from_gradient(
        graph.edges(),
        graph.batch(),
        &edge_vec,
        energies,
        gradient,
        &device,
    )?;
    let atoms = atomic.len();
    Ok(Some(AtomicEnergyForces {
        energy_forces,
        atomic: values_tensor(atomic, [atoms], &device),
    }))
}

/// What one layer computes: its edges, and how many atoms (the first ones) it reads and
/// writes (all of them on a whole structure's graph, see [`Shell`](crate::potential::Shell)).
type Step<'a> = (&'a EdgeIndex, usize, usize);

/// [`run`] with checked species, steps and edge vectors (`[E, 3]`), its per-edge buffers
/// from `pool` and given back to it: the energy of each atom (`[N]`), of each structure's
/// counted atoms (`[G]`) and `dE/dr_e` (`[E, 3]`).
fn run_with<T: Float>(
    model: &Nequip,
    graph: &AtomicGraph,
    weights: &Weights<T>,
    steps: &[Step],
    edge_vec: &[T],
    counted: Option<&[bool]>,
    pool: &mut Pool<T>,
) -> Result<[Vec<T>; 3]> {
    let species = graph.species();
    let (n, k) = (species.len(), model.config.num_types);
    let e = graph.edges().num_edges();
    // NequIP's edge vectors point from the centre (dst) to the neighbour (src).
    debug_assert_eq!(edge_vec.len(), 3 * e, "the graph's edge vectors, [E, 3]");
    let mut r = pool.take(e * 3);
    r.iter_mut().zip(edge_vec).for_each(|(r, &v)| *r = -v);
    let sh = &model.sh;
    let dim_sh = sh.dim();
    // The harmonics' gradients are not kept: their backward forms them at the end, a
    // parallel task's rows at a time.
    let mut y = pool.take(e * dim_sh);
    sh.compute(&r, &mut y)?;
    let encoding = model.radial.plan();
    let num_basis = encoding.num_basis();
    let (mut emb, mut d_emb) = (pool.take(e * num_basis), pool.take(e * num_basis));
    encoding.compute(&r, &mut emb, Some(&mut d_emb))?;
    let mut onehot = vec![T::zero(); n * k];
    for (i, &t) in species.iter().enumerate() {
        onehot[i * k + t] = T::one();
    }

    // Forward. Layer k reads the first `inputs` atoms' features over its edges and writes
    // the first `outputs` atoms'.
    let mut x = weights.embedding.forward(&onehot, n)?;
    let mut saved = Vec::with_capacity(weights.layers.len());
    let mut radial_saved = std::mem::take(&mut pool.radial);
    radial_saved.resize_with(weights.layers.len(), RadialSaved::default);
    for ((layer, &(edges, inputs, outputs)), kept) in
        (weights.layers.iter().zip(steps)).zip(&mut radial_saved)
    {
        let ek = edges.num_edges();
        let d_in = layer.linear_1.map.irreps_in().dim();
        let x1 = layer.linear_1.forward(&x, inputs)?;
        let mid = layer.tp.irreps_out().dim();
        let mut m = vec![T::zero(); inputs * mid];
        let (b, y_k) = (&emb[..ek * num_basis], &y[..ek * dim_sh]);
        // The hidden activations and slopes, where the MLP runs on its own.
        let (h, slopes) = if layer.radial {
            let hidden = layer.mlp.layers();
            let radial = layer.mlp.radial_weights(b, &hidden);
            let scale = layer.scale;
            let kept = if radial.worth_keeping(ek) {
                Some(kept)
            } else {
                // Its allocation is not held while unused.
                *kept = RadialSaved::default();
                None
            };
            (layer.tp).conv_forward_radial(edges, &x1, y_k, radial, scale, &mut m, kept)?;
            (Vec::new(), Vec::new())
        } else {
            let (h, slopes) = layer.mlp.forward(b, ek, pool)?;
            let linear = EdgeWeights::Linear {
                hidden: &h,
                linear: &layer.mlp.last,
            };
            (layer.tp).conv_forward(edges, &x1, y_k, linear, layer.scale, &mut m)?;
            (h, slopes)
        };
        let mut u = layer.linear_2.forward(&m[..outputs * mid], outputs)?;
        if let Some(sc) = &layer.sc {
            let out = sc.forward(&x[..outputs * d_in], &onehot[..outputs * k], outputs)?;
            u.iter_mut().zip(out).for_each(|(u, s)| *u += s);
        }
        let (mut next, gate) = layer.gate.forward(&u, outputs)?;
        if layer.resnet {
            next.iter_mut().zip(&x).for_each(|(y, &x)| *y += x);
        }
        let x_in = std::mem::replace(&mut x, next);
        // The next layers read the messages of the `outputs` atoms only.
        m.truncate(outputs * mid);
        saved.push(Saved {
            x: x_in,
            h,
            slopes,
            x1,
            m,
            u,
            gate,
        });
    }
    // The atoms the layers computed (on a domain's shells, the counted ones first); the
    // others get zero energy.
    let computed = steps.last().map_or(n, |s| s.2);
    let hidden = weights.readout[0].forward(&x, computed)?;
    let out = weights.readout[1].forward(&hidden, computed)?;
    let batch = graph.batch();
    let mut atomic = vec![T::zero(); n];
    let mut energies = vec![T::zero(); batch.num_graphs()];
    let counts = |i: usize| counted.is_none_or(|c| c[i]);
    for (i, &t) in species[..computed].iter().enumerate() {
        atomic[i] = out[i] * weights.scales[t] + weights.shifts[t];
        if counts(i) {
            energies[batch.index()[i]] += atomic[i];
        }
    }

    // Backward, from dE/d out_i = scale[t_i] for the counted atoms.
    let g_out: Vec<T> = (species[..computed].iter().enumerate())
        .map(|(i, &t)| {
            if counts(i) {
                weights.scales[t]
            } else {
                T::zero()
            }
        })
        .collect();
    let g_hidden = weights.readout[1].backward(&hidden, &g_out, computed)?;
    let mut g_x = weights.readout[0].backward(&x, &g_hidden, computed)?;
    let mut g_y = pool.zeros(e * dim_sh);
    let mut g_emb = pool.zeros(e * num_basis);
    let layers = (weights.layers.iter().zip(steps).zip(saved)).zip(&radial_saved);
    for (index, (((layer, &(edges, inputs, outputs)), s), kept)) in layers.enumerate().rev() {
        let ek = edges.num_edges();
        let (d_in, mid) = (
            layer.linear_1.map.irreps_in().dim(),
            layer.tp.irreps_out().dim(),
        );
        let g_u = layer.gate.backward(&s.u, &s.gate, &g_x, outputs)?;
        // The messages' gradient on the `inputs` atoms the convolution wrote, zero past
        // the `outputs` the layer kept.
        let mut g_m = layer.linear_2.backward(&s.m, &g_u, outputs)?;
        g_m.resize(inputs * mid, T::zero());
        // The first layer's input is the species embedding, which no edge vector moves: its
        // features' gradient is not needed.
        let mut g_x1 = if index == 0 {
            Vec::new()
        } else {
            vec![T::zero(); s.x1.len()]
        };
        let (b, y_k) = (&emb[..ek * num_basis], &y[..ek * dim_sh]);
        let g1 = (index > 0).then_some(&mut g_x1[..]);
        if layer.radial {
            let hidden = layer.mlp.layers();
            let radial = layer.mlp.radial_weights(b, &hidden);
            // Each layer's gradients of the harmonics and the embedding add into one buffer.
            let grads = RadialConvGradients {
                x1: g1,
                x2: Some(&mut g_y[..ek * dim_sh]),
                embedding: Some(&mut g_emb[..ek * num_basis]),
            };
            let scale = layer.scale;
            let tp = layer.tp;
            let kept = radial.worth_keeping(ek).then_some(kept);
            tp.conv_backward_radial(edges, &s.x1, y_k, radial, scale, &g_m, grads, kept)?;
        } else {
            let mut g_y_layer = pool.take(ek * dim_sh);
            let mut g_h = pool.take(ek * layer.mlp.width);
            let linear = EdgeWeights::Linear {
                hidden: &s.h,
                linear: &layer.mlp.last,
            };
            let grads = ConvGradients {
                x1: g1,
                x2: Some(&mut g_y_layer),
                weight: Some(&mut g_h),
                linear: None,
            };
            (layer.tp).conv_backward(edges, &s.x1, y_k, linear, layer.scale, &g_m, grads)?;
            g_y.iter_mut().zip(&g_y_layer).for_each(|(g, &d)| *g += d);
            pool.give(g_y_layer);
            let g_b = layer.mlp.backward(g_h, &s.slopes, ek, pool)?;
            g_emb.iter_mut().zip(&g_b).for_each(|(g, &d)| *g += d);
            pool.give(g_b);
            pool.give(s.h);
            s.slopes.into_iter().for_each(|b| pool.give(b));
        }
        if index == 0 {
            break;
        }
        let mut g_prev = layer.linear_1.backward(&s.x, &g_x1, inputs)?;
        if let Some(sc) = &layer.sc {
            let kept = &s.x[..outputs * d_in];
            let g_sc = sc.backward(kept, &onehot[..outputs * k], &g_u, outputs)?;
            g_prev.iter_mut().zip(g_sc).for_each(|(g, d)| *g += d);
        }
        if layer.resnet {
            g_prev.iter_mut().zip(&g_x).for_each(|(g, &d)| *g += d);
        }
        g_x = g_prev;
    }
    let mut g_r = pool.take(e * 3);
    sh.backward(&r, &g_y, &mut g_r)?;
    let mut gradient = vec![T::zero(); e * 3];
    encoding.vector_jacobian_product(&r, &d_emb, &g_emb, &mut gradient)?;
    // dE/d edge_vec = -dE/dr.
    gradient
        .iter_mut()
        .zip(&g_r)
        .for_each(|(g, &a)| *g = -(*g + a));
    for buffer in [r, y, emb, d_emb, g_y, g_emb, g_r] {
        pool.give(buffer);
    }
    pool.radial = radial_saved;
    Ok([atomic, energies, gradient])
}

/// What a layer's forward keeps for the backward (the layer reads `inputs` atoms over its
/// `ek` edges and writes `outputs` atoms).
struct Saved<T> {
    /// The layer's input features, `[inputs, irreps_in.dim]`.
    x: Vec<T>,
    /// The radial MLP's hidden activations, `[ek, width]`, where it runs on its own (empty
    /// where it runs inside the convolution).
    h: Vec<T>,
    /// Their hidden layers' slopes, `c f'(z)`, `[ek, hs[i + 1]]` each.
    slopes: Vec<Vec<T>>,
    /// `linear_1(x)`, `[inputs, irreps_in1.dim]`.
    x1: Vec<T>,
    /// The convolution's messages, `[outputs, irreps_mid.dim]`.
    m: Vec<T>,
    /// The gate's input, `[outputs, gate.irreps_in.dim]`.
    u: Vec<T>,
    /// The gate's activations and slopes.
    gate: GateSaved<T>,
}

/// The model's weights in `T`, with the plans that run them.
struct Weights<'a, T> {
    embedding: LinearMap<'a, T>,
    layers: Vec<LayerWeights<'a, T>>,
    readout: [LinearMap<'a, T>; 2],
    scales: Vec<T>,
    shifts: Vec<T>,
}

struct LayerWeights<'a, T> {
    mlp: Mlp<T>,
    linear_1: LinearMap<'a, T>,
    tp: &'a TensorProductPlan,
    linear_2: LinearMap<'a, T>,
    sc: Option<SelfConnection<'a, T>>,
    gate: GateRows<T>,
    resnet: bool,
    /// Whether the MLP runs inside the convolution ([`TensorProductPlan::conv_radial_applies`]
    /// and each edge's weights cost few multiply-adds, [`TensorProductPlan::conv_expands`],
    /// the case measured: at the larger widths the dense MLP and the factorized convolution
    /// form fewer).
    radial: bool,
    /// The convolution's normalization `1 / sqrt(avg_num_neighbors)`.
    scale: T,
}

impl<'a, T: Float> Weights<'a, T> {
    /// `None` for a layer this path does not run (see [`atomic_energy_forces`]).
    fn new(model: &'a Nequip) -> Result<Option<Self>> {
        let mut layers = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let Some(layer) = LayerWeights::new(layer)? else {
                return Ok(None);
            };
            layers.push(layer);
        }
        let (scales, shifts) = (
            values("per_type_scales", model.per_type_scales.val())?,
            values("per_type_shifts", model.per_type_shifts.val())?,
        );
        let k = model.config.num_types;
        for (what, got) in [
            ("per_type_scales", scales.len()),
            ("per_type_shifts", shifts.len()),
        ] {
            if got != k {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: k,
                    got,
                });
            }
        }
        Ok(Some(Weights {
            embedding: LinearMap::new(&model.chemical_embedding)?,
            layers,
            readout: [
                LinearMap::new(&model.conv_to_output_hidden)?,
                LinearMap::new(&model.output_hidden_to_scalar)?,
            ],
            scales,
            shifts,
        }))
    }
}

impl<'a, T: Float> LayerWeights<'a, T> {
    fn new(layer: &'a ConvNetLayer) -> Result<Option<Self>> {
        let conv = &layer.conv;
        let (Some(mlp), Some(gate)) = (
            Mlp::new(&conv.fc)?,
            GateRows::new(&layer.equivariant_nonlin),
        ) else {
            return Ok(None);
        };
        let tp = conv.tp.plan();
        let radial = tp.conv_radial_applies() && tp.conv_expands(mlp.width);
        Ok(Some(LayerWeights {
            radial,
            mlp,
            linear_1: LinearMap::new(&conv.linear_1)?,
            tp: conv.tp.plan(),
            linear_2: LinearMap::new(&conv.linear_2)?,
            sc: conv.sc.as_ref().map(SelfConnection::new).transpose()?,
            gate,
            resnet: layer.resnet,
            scale: T::from_f64(1.0 / conv.avg_num_neighbors.sqrt()),
        }))
    }
}

/// An o3 linear map with its weights and biases in `T`.
struct LinearMap<'a, T> {
    map: &'a LinearPlan,
    weight: Vec<T>,
    bias: Vec<T>,
}

impl<'a, T: Float> LinearMap<'a, T> {
    fn new(linear: &'a Linear) -> Result<Self> {
        let read = |p: &Option<burn::module::Param<Tensor<1>>>| -> Result<Vec<T>> {
            p.as_ref()
                .map(|p| values("linear weights", p.val()))
                .unwrap_or(Ok(Vec::new()))
        };
        Ok(LinearMap {
            map: linear.map(),
            weight: read(&linear.weight)?,
            bias: read(&linear.bias)?,
        })
    }

    /// The map of `x`, `[rows, irreps_in.dim] -> [rows, irreps_out.dim]`.
    fn forward(&self, x: &[T], rows: usize) -> Result<Vec<T>> {
        let mut out = vec![T::zero(); rows * self.map.irreps_out().dim()];
        self.map.forward(x, &self.weight, &self.bias, &mut out)?;
        Ok(out)
    }

    /// `dL/dx` from `dL/d out`.
    fn backward(&self, x: &[T], grad_out: &[T], rows: usize) -> Result<Vec<T>> {
        let mut grad = vec![T::zero(); rows * self.map.irreps_in().dim()];
        self.map
            .backward(x, &self.weight, grad_out, Some(&mut grad), None, None)?;
        Ok(grad)
    }
}

/// The self-connection, a product of the features with the species one-hots, and its
/// weights in `T`.
struct SelfConnection<'a, T> {
    plan: &'a TensorProductPlan,
    weight: Vec<T>,
}

impl<'a, T: Float> SelfConnection<'a, T> {
    fn new(tp: &'a TensorProduct) -> Result<Self> {
        let weight = match &tp.weight {
            Some(w) => values("sc.weight", w.val())?,
            None => Vec::new(),
        };
        Ok(SelfConnection {
            plan: tp.plan(),
            weight,
        })
    }

    fn forward(&self, x: &[T], attr: &[T], rows: usize) -> Result<Vec<T>> {
        let mut out = vec![T::zero(); rows * self.plan.irreps_out().dim()];
        self.plan.forward(x, attr, &self.weight, &mut out)?;
        Ok(out)
    }

    /// `dL/dx` from `dL/d out` (the one-hots are constants).
    fn backward(&self, x: &[T], attr: &[T], grad_out: &[T], rows: usize) -> Result<Vec<T>> {
        let mut grad = vec![T::zero(); rows * self.plan.irreps_in1().dim()];
        self.plan.backward(
            x,
            attr,
            &self.weight,
            grad_out,
            TensorProductGradients {
                x1: Some(&mut grad),
                x2: None,
                weight: None,
            },
        )?;
        Ok(grad)
    }
}

/// The radial MLP's hidden layers `a -> c f(a W)` (weights scaled as the module scales
/// them) and its last, linear layer's matrix: run edge by edge inside the convolution
/// ([`TensorProductPlan::conv_forward_radial`]) where forming each edge's weights is cheap,
/// else as dense layers whose hidden activations the convolution takes
/// ([`EdgeWeights::Linear`]).
struct Mlp<T> {
    hidden: Vec<HiddenLayer<T>>,
    /// `[width, weight_numel]`.
    last: Vec<T>,
    /// The width of the hidden activations the last layer reads (`hs[last - 1]`).
    width: usize,
}

/// A hidden layer's `W` (`[k, n]`, scaled), `W^T` (`[n, k]`, for the dense backward), its
/// widths and activation.
struct HiddenLayer<T> {
    weight: Vec<T>,
    transposed: Vec<T>,
    k: usize,
    n: usize,
    act: Option<(ActivationFunction, T)>,
}

impl<T: Float> Mlp<T> {
    /// `None` for an activation that is not built in or a last layer that is not linear.
    fn new(fc: &FullyConnectedNet) -> Result<Option<Self>> {
        let Some(last) = fc.last_linear() else {
            return Ok(None);
        };
        let hs = fc.hs();
        let mut hidden = Vec::new();
        for i in 0..fc.weights.len() - 1 {
            let (act, scale) = fc.layer_settings(i);
            let act = match act {
                Some(f) => match f.builtin() {
                    Some(b) => {
                        let c = f.normalize2mom_constant() * fc.output_variance(i).sqrt();
                        Some((b, T::from_f64(c)))
                    }
                    None => return Ok(None),
                },
                None => None,
            };
            let weight: Vec<T> = values("fc.weights", fc.weights[i].val().mul_scalar(scale))?;
            let (k, n) = (hs[i], hs[i + 1]);
            let mut transposed = vec![T::zero(); k * n];
            for a in 0..k {
                for b in 0..n {
                    transposed[b * k + a] = weight[a * n + b];
                }
            }
            hidden.push(HiddenLayer {
                weight,
                transposed,
                k,
                n,
                act,
            });
        }
        Ok(Some(Mlp {
            hidden,
            last: values("fc.weights", last)?,
            width: hs[hs.len() - 2],
        }))
    }

    /// The hidden activations of the `rows` inputs `b` (`[rows, hs[0]]`), and each hidden
    /// layer's slopes (empty for a layer without activation), in buffers from `pool`.
    fn forward(&self, b: &[T], rows: usize, pool: &mut Pool<T>) -> Result<(Vec<T>, Vec<Vec<T>>)> {
        let mut a: Option<Vec<T>> = None;
        let mut slopes = Vec::with_capacity(self.hidden.len());
        for layer in &self.hidden {
            let mut z = pool.take(rows * layer.n);
            dense(
                a.as_deref().unwrap_or(b),
                &layer.weight,
                &mut z,
                (rows, layer.n, layer.k),
            )?;
            let next = match layer.act {
                Some((f, c)) => {
                    let (mut y, mut slope) = (pool.take(z.len()), pool.take(z.len()));
                    f.forward_with_derivative_slice(c, &z, &mut y, &mut slope)?;
                    pool.give(z);
                    slopes.push(slope);
                    y
                }
                None => {
                    slopes.push(Vec::new());
                    z
                }
            };
            if let Some(old) = a.replace(next) {
                pool.give(old);
            }
        }
        let h = a.unwrap_or_else(|| {
            let mut h = pool.take(b.len());
            h.copy_from_slice(b);
            h
        });
        Ok((h, slopes))
    }

    /// `dL/db` from `dL/dh` (consumed), in a buffer from `pool`.
    fn backward(
        &self,
        grad_h: Vec<T>,
        slopes: &[Vec<T>],
        rows: usize,
        pool: &mut Pool<T>,
    ) -> Result<Vec<T>> {
        let mut g = grad_h;
        for (layer, slope) in self.hidden.iter().zip(slopes).rev() {
            if !slope.is_empty() {
                g.iter_mut().zip(slope).for_each(|(g, &s)| *g *= s);
            }
            let mut prev = pool.take(rows * layer.k);
            dense(&g, &layer.transposed, &mut prev, (rows, layer.k, layer.n))?;
            pool.give(std::mem::replace(&mut g, prev));
        }
        Ok(g)
    }

    /// The hidden layers as the convolution takes them.
    fn layers(&self) -> Vec<MlpLayer<'_, T>> {
        (self.hidden.iter())
            .map(|l| MlpLayer {
                weight: &l.weight,
                inputs: l.k,
                outputs: l.n,
                activation: l.act,
            })
            .collect()
    }

    /// The radial convolution's weights over the edges of `embedding` (`[ek, num_basis]`).
    fn radial_weights<'a>(
        &'a self,
        embedding: &'a [T],
        hidden: &'a [MlpLayer<'a, T>],
    ) -> RadialWeights<'a, T> {
        RadialWeights {
            embedding,
            hidden,
            last: &self.last,
        }
    }
}

/// The gate's rows per parallel task: the activations' exponentials are most of a row's
/// work, ~40 values at NequIP's widths.
const GATE_ROWS: usize = 64;

/// `buf` (`[rows, width]`) as `blocks` blocks of [`GATE_ROWS`] rows (the last shorter),
/// empty ones where `width` is zero.
fn row_blocks<T>(buf: &mut [T], width: usize, blocks: usize) -> Vec<&mut [T]> {
    let mut rest = buf;
    (0..blocks)
        .map(|_| {
            let at = (GATE_ROWS * width).min(rest.len());
            let (block, after) = std::mem::take(&mut rest).split_at_mut(at);
            rest = after;
            block
        })
        .collect()
}

/// A block of activated columns and its function `c f` (`None`: left as is).
type ActBlock<T> = (Range<usize>, Option<(ActivationFunction, T)>);

/// The gate on rows: which input columns are the scalars, the gates and the gated irreps,
/// with the activations of the first two.
struct GateRows<T> {
    dim_in: usize,
    /// The input column of each scalar (in output order), and of each gate.
    scalars: Vec<usize>,
    gates: Vec<usize>,
    /// The activation of each block of scalars, and of gates (their column ranges).
    scalar_acts: Vec<ActBlock<T>>,
    gate_acts: Vec<ActBlock<T>>,
    /// The input columns of each gated irrep instance, in output order.
    gated: Vec<Vec<usize>>,
}

/// What the gate's forward keeps: the activated gates and every slope.
struct GateSaved<T> {
    /// `[N, scalars]`.
    scalar_slopes: Vec<T>,
    /// `[N, gates]` each.
    gate_values: Vec<T>,
    gate_slopes: Vec<T>,
}

/// The activation blocks of `act` as column ranges, `None` for one not built in.
fn blocks<T: Float>(act: &Activation) -> Option<Vec<ActBlock<T>>> {
    act.blocks()
        .map(
            |(range, f): (Range<usize>, &Option<ScalarFunction>)| match f {
                Some(f) => f
                    .builtin()
                    .map(|b| (range, Some((b, T::from_f64(f.normalize2mom_constant()))))),
                None => Some((range, None)),
            },
        )
        .collect()
}

impl<T: Float> GateRows<T> {
    fn new(gate: &Gate) -> Option<Self> {
        let (extract, act_scalars, act_gates, irreps_gated) = gate.parts();
        let columns = |part: usize| -> Vec<usize> {
            extract.ranges()[part]
                .iter()
                .flat_map(|r| r.clone())
                .collect()
        };
        let gated_columns = columns(2);
        let mut gated = Vec::new();
        let mut at = 0;
        for entry in irreps_gated.iter() {
            let d = entry.ir.dim();
            for _ in 0..entry.mul {
                gated.push(gated_columns[at..at + d].to_vec());
                at += d;
            }
        }
        Some(GateRows {
            dim_in: gate.irreps_in().dim(),
            scalars: columns(0),
            gates: columns(1),
            scalar_acts: blocks(act_scalars)?,
            gate_acts: blocks(act_gates)?,
            gated,
        })
    }

    fn dim_out(&self) -> usize {
        self.scalars.len() + self.gated.iter().map(Vec::len).sum::<usize>()
    }

    /// The activation `acts` of the columns `columns` of `u` (`[rows, dim_in]`) into
    /// `values` and `slopes` (`[rows, columns.len()]` each).
    fn activate(
        &self,
        u: &[T],
        columns: &[usize],
        acts: &[ActBlock<T>],
        values: &mut [T],
        slopes: &mut [T],
    ) -> Result<()> {
        let (w, rows) = (columns.len(), u.len() / self.dim_in.max(1));
        for (range, act) in acts {
            let bw = range.len();
            let mut z = vec![T::zero(); rows * bw];
            for i in 0..rows {
                for (j, &c) in columns[range.clone()].iter().enumerate() {
                    z[i * bw + j] = u[i * self.dim_in + c];
                }
            }
            let (y, s) = match act {
                Some((f, c)) => {
                    let (mut y, mut s) = (vec![T::zero(); z.len()], vec![T::zero(); z.len()]);
                    f.forward_with_derivative_slice(*c, &z, &mut y, &mut s)?;
                    (y, s)
                }
                None => (z, vec![T::one(); rows * bw]),
            };
            for i in 0..rows {
                for j in 0..bw {
                    values[i * w + range.start + j] = y[i * bw + j];
                    slopes[i * w + range.start + j] = s[i * bw + j];
                }
            }
        }
        Ok(())
    }

    /// The gate of `u` (`[rows, dim_in]`), `[rows, dim_out]`, and what its backward needs;
    /// rows in parallel blocks of [`GATE_ROWS`].
    fn forward(&self, u: &[T], rows: usize) -> Result<(Vec<T>, GateSaved<T>)> {
        let (ds, k, dim_out) = (self.scalars.len(), self.gates.len(), self.dim_out());
        let mut out = vec![T::zero(); rows * dim_out];
        let mut saved = GateSaved {
            scalar_slopes: vec![T::one(); rows * ds],
            gate_values: vec![T::zero(); rows * k],
            gate_slopes: vec![T::one(); rows * k],
        };
        let mut scalar_values = vec![T::zero(); rows * ds];
        // Each buffer in the same blocks of rows (a buffer of no columns, e.g. the gates of
        // a layer of scalars only, in empty blocks).
        let blocks = rows.div_ceil(GATE_ROWS);
        let parts: Vec<_> = (row_blocks(&mut out, dim_out, blocks).into_iter())
            .zip(row_blocks(&mut scalar_values, ds, blocks))
            .zip(row_blocks(&mut saved.scalar_slopes, ds, blocks))
            .zip(row_blocks(&mut saved.gate_values, k, blocks))
            .zip(row_blocks(&mut saved.gate_slopes, k, blocks))
            .collect();
        let dim_in = self.dim_in;
        parts.into_par_iter().enumerate().try_for_each(
            |(b, ((((out, sv), ss), gv), gs))| -> Result<()> {
                let first = b * GATE_ROWS;
                let u = &u[first * dim_in..(first + GATE_ROWS).min(rows) * dim_in];
                self.activate(u, &self.scalars, &self.scalar_acts, sv, ss)?;
                self.activate(u, &self.gates, &self.gate_acts, gv, gs)?;
                for (i, row) in out.chunks_exact_mut(dim_out.max(1)).enumerate() {
                    let x = &u[i * dim_in..];
                    row[..ds].copy_from_slice(&sv[i * ds..(i + 1) * ds]);
                    let mut at = ds;
                    for (j, columns) in self.gated.iter().enumerate() {
                        let g = gv[i * k + j];
                        for &c in columns {
                            row[at] = x[c] * g;
                            at += 1;
                        }
                    }
                }
                Ok(())
            },
        )?;
        Ok((out, saved))
    }

    /// `dL/du` from `dL/d out`; rows in parallel blocks of [`GATE_ROWS`].
    fn backward(
        &self,
        u: &[T],
        saved: &GateSaved<T>,
        grad_out: &[T],
        rows: usize,
    ) -> Result<Vec<T>> {
        let (ds, k, dim_out) = (self.scalars.len(), self.gates.len(), self.dim_out());
        if grad_out.len() != rows * dim_out {
            return Err(Error::ShapeMismatch {
                what: "gate grad_out [N, irreps_out.dim]",
                expected: rows * dim_out,
                got: grad_out.len(),
            });
        }
        let mut grad = vec![T::zero(); rows * self.dim_in];
        let dim_in = self.dim_in;
        (grad.par_chunks_mut(GATE_ROWS * dim_in.max(1)))
            .enumerate()
            .for_each(|(b, grad)| {
                for (r, out) in grad.chunks_exact_mut(dim_in.max(1)).enumerate() {
                    let i = b * GATE_ROWS + r;
                    let g_row = &grad_out[i * dim_out..(i + 1) * dim_out];
                    let x = &u[i * dim_in..(i + 1) * dim_in];
                    for (j, &c) in self.scalars.iter().enumerate() {
                        out[c] = g_row[j] * saved.scalar_slopes[i * ds + j];
                    }
                    let mut at = ds;
                    for (j, columns) in self.gated.iter().enumerate() {
                        let gate = saved.gate_values[i * k + j];
                        let mut dot = T::zero();
                        for &c in columns {
                            out[c] = g_row[at] * gate;
                            dot += g_row[at] * x[c];
                            at += 1;
                        }
                        out[self.gates[j]] = dot * saved.gate_slopes[i * k + j];
                    }
                }
            });
        Ok(grad)
    }
}
