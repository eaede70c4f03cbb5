//! The CPU kernels that run the plans of [`o3`](crate::o3), and the public entry points of
//! the tensor product's compute: [`TensorProductPlan::forward`],
//! [`TensorProductPlan::backward`], [`TensorProductPlan::conv_forward`],
//! [`TensorProductPlan::conv_backward`], their `_radial` forms and the `_vec` variants.
//!
//! Inside, by what they compute:
//!
//! - `tensor_product`: the forward and backward over batches of rows, eight rows at a time
//!   lane-major (`lanes`) and single rows (`rows`; `wide` for `uvu` of degree 4 to 7),
//!   parallel over fixed chunks of rows;
//! - `convolution`: gather, tensor product and scatter fused over a graph's edges, with
//!   per-edge weights (`per_edge`), with weights from a linear layer, factorized
//!   (`linear`), or with weights formed edge by edge from a radial MLP (`radial`);
//! - `gemm`: the small register-blocked dense products and vector helpers they share
//!   ([`matmul`] runs one);
//! - `dense`: a dense layer's products over many rows ([`dense`], [`dense_weight_gradient`]),
//!   in parallel over fixed blocks of rows;
//! - `simd`: instruction-set detection: an AVX2 or AVX-512 path runs only with the token
//!   that proves the CPU has it; [`InstructionSet`] names the paths, [`with_instruction_set`]
//!   caps them for a closure and [`limit_instruction_set`] for the process;
//! - `vec8`: eight lanes in registers, for kernels written once over portable arrays and
//!   AVX2 `f32` registers;
//! - `buffers`: views of the output buffers (uninitialized outputs, rows owned per task);
//! - `activation`: e3nn's normalized activations over slices
//!   ([`ActivationFunction::forward_slice`](crate::math::ActivationFunction::forward_slice)
//!   and `forward_with_derivative_slice`);
//! - `linear`: [`LinearPlan::forward`](crate::o3::LinearPlan::forward) and `backward`, a
//!   tensor product with a constant second input plus the biases, or, in `f32` on AVX2,
//!   block to block by rows (the map and its input gradient).
//!
//! Every kernel sums in a fixed order whatever the number of threads (fixed chunks, no
//! atomics), so results are bit-identical across thread counts.
//!
//! The entry points are generic over [`Real`]. Were the kernels behind them generic too,
//! every crate that calls them (the burn crate, each test binary) would compile its own
//! copy: a dozen large functions per float type, one per instruction set, most of a CI
//! build's time. The entry points instead call through a table of function pointers per
//! float type, filled in this crate's statics, so only this crate compiles the kernels.

mod activation;
mod buffers;
mod convolution;
mod dense;
pub(crate) mod gemm;
mod linear;
mod pool;
pub(crate) mod simd;
mod tensor_product;
pub(crate) mod transpose;
mod vec8;

use std::mem::MaybeUninit;

#[cfg(doc)]
use crate::Error;
use crate::graph::EdgeIndex;
use crate::o3::tensor_product::{
    ConvGradients, ConvTangentGradients, ConvTangentInputs, EdgeWeights, RadialConvGradients,
    RadialSaved, RadialWeights, TensorProductGradients, TensorProductPlan,
};
use crate::{Real, Result};
use buffers::{as_uninit, assume_init_vec, uninit_gradients, uninit_vec};
use simd::Simd;

pub use dense::{dense, dense_weight_gradient};
pub use gemm::{matmul, matmul_tn};
pub use pool::on_pool;
pub use simd::{InstructionSet, limit_instruction_set, with_instruction_set};

/// [`TensorProductPlan::forward`] into a possibly uninitialized output, with the kernels'
/// instances of the token's instruction set.
type Forward<T> =
    fn(&TensorProductPlan, &[T], &[T], &[T], &mut [MaybeUninit<T>], Simd) -> Result<()>;

/// [`TensorProductPlan::backward`] into possibly uninitialized `[x1, x2, weight]` gradients.
type Backward<T> = fn(
    &TensorProductPlan,
    &[T],
    &[T],
    &[T],
    &[T],
    [Option<&mut [MaybeUninit<T>]>; 3],
    Simd,
) -> Result<()>;

/// [`TensorProductPlan::conv_forward`].
type ConvForward<T> =
    fn(&TensorProductPlan, &EdgeIndex, &[T], &[T], EdgeWeights<'_, T>, T, &mut [T]) -> Result<()>;

/// [`TensorProductPlan::conv_backward`].
type ConvBackward<T> = fn(
    &TensorProductPlan,
    &EdgeIndex,
    &[T],
    &[T],
    EdgeWeights<'_, T>,
    T,
    &[T],
    ConvGradients<'_, T>,
) -> Result<()>;

/// [`TensorProductPlan::conv_forward_radial`].
type ConvForwardRadial<T> = fn(
    &TensorProductPlan,
    &EdgeIndex,
    &[T],
    &[T],
    RadialWeights<'_, T>,
    T,
    &mut [T],
    Option<&mut RadialSaved<T>>,
) -> Result<()>;

/// [`TensorProductPlan::conv_backward_radial`].
type ConvBackwardRadial<T> = fn(
    &TensorProductPlan,
    &EdgeIndex,
    &[T],
    &[T],
    RadialWeights<'_, T>,
    T,
    &[T],
    RadialConvGradients<'_, T>,
    Option<&RadialSaved<T>>,
) -> Result<()>;

/// [`TensorProductPlan::conv_tangent_forward`].
type ConvTangentForward<T> = fn(
    &TensorProductPlan,
    &EdgeIndex,
    ConvTangentInputs<'_, T>,
    T,
    &mut [T],
    &mut [T],
    Option<&mut [T]>,
) -> Result<()>;

/// [`TensorProductPlan::conv_tangent_backward`].
type ConvTangentBackward<T> = fn(
    &TensorProductPlan,
    &EdgeIndex,
    ConvTangentInputs<'_, T>,
    T,
    &[T],
    &[T],
    Option<&[T]>,
    ConvTangentGradients<'_, T>,
) -> Result<()>;

/// The kernels for float type `T`, as function pointers instantiated in this crate
/// ([`F32`], [`F64`]); reached through [`kernels`].
struct Kernels<T: 'static> {
    forward: Forward<T>,
    backward: Backward<T>,
    conv_forward: ConvForward<T>,
    conv_backward: ConvBackward<T>,
    conv_forward_radial: ConvForwardRadial<T>,
    conv_backward_radial: ConvBackwardRadial<T>,
    conv_tangent_forward: ConvTangentForward<T>,
    conv_tangent_backward: ConvTangentBackward<T>,
}

impl<T: Real> Kernels<T> {
    /// The table for `T`. Evaluated in this crate's statics ([`F32`], [`F64`]), so naming
    /// the generic functions at `T` here is what compiles them in this crate.
    const fn new() -> Self {
        Kernels {
            forward: TensorProductPlan::forward_uninit::<T>,
            backward: TensorProductPlan::backward_uninit::<T>,
            conv_forward: TensorProductPlan::conv_forward_kernel::<T>,
            conv_backward: TensorProductPlan::conv_backward_kernel::<T>,
            conv_forward_radial: TensorProductPlan::conv_forward_radial_kernel::<T>,
            conv_backward_radial: TensorProductPlan::conv_backward_radial_kernel::<T>,
            conv_tangent_forward: TensorProductPlan::conv_tangent_forward_kernel::<T>,
            conv_tangent_backward: TensorProductPlan::conv_tangent_backward_kernel::<T>,
        }
    }
}

/// The f32 kernels.
#[cfg(not(test))]
static F32: Kernels<f32> = Kernels::new();

/// The f64 kernels.
#[cfg(not(test))]
static F64: Kernels<f64> = Kernels::new();

/// The table of `T`: [`F32`] or [`F64`], by type id ([`Real`] is sealed to these two). A
/// generic caller in another crate compiles this lookup only, not the kernels.
#[cfg(not(test))]
#[inline]
fn kernels<T: Real>() -> &'static Kernels<T> {
    let tables: [&'static dyn std::any::Any; 2] = [&F32, &F64];
    tables
        .into_iter()
        .find_map(|table| table.downcast_ref::<Kernels<T>>())
        .expect("Real is implemented for f32 and f64 only")
}

/// The table of `T` in this crate's unit-test build: a constant, compiled where a test
/// reaches it. Statics are always compiled, so [`F32`] and [`F64`] there would compile
/// every kernel a second time (the test binary of a crate is a build of its own) for the
/// few unit tests that reach none or some of them. The integration tests, doc tests and
/// every other crate use the statics.
#[cfg(test)]
#[inline]
fn kernels<T: Real>() -> &'static Kernels<T> {
    const { &Kernels::<T>::new() }
}

/// The compute entry points: checks, then the kernels of this crate for `T` and this CPU.
impl TensorProductPlan {
    /// The tensor product of each row: `out = x1 (x) x2` with `weight`, overwriting `out`.
    ///
    /// Shapes: `x1` `[batch, irreps_in1.dim]`, `x2` `[batch, irreps_in2.dim]`, `weight`
    /// `[weight_numel]` or `[batch, weight_numel]`, `out` `[batch, irreps_out.dim]`.
    /// Wrong lengths give [`Error::ShapeMismatch`].
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// let mut out = [0.0f32; 2];
    /// tp.forward(&[2.0, 3.0], &[5.0, 7.0], &[0.5], &mut out)?;
    /// assert_eq!(out, [5.0, 10.5]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward<T: Real>(&self, x1: &[T], x2: &[T], weight: &[T], out: &mut [T]) -> Result<()> {
        // SAFETY: the kernels store only initialized values (they write every row of `out`).
        let out = unsafe { as_uninit(out) };
        (kernels::<T>().forward)(self, x1, x2, weight, out, Simd::detect())
    }

    /// [`forward`](TensorProductPlan::forward) into a new buffer, `[batch, irreps_out.dim]`
    /// (`batch` from `x1`, or `x2` when `irreps_in1` is empty). The buffer is not zeroed
    /// first: each row is written once, while in cache, which saves a pass over memory when
    /// the output is large.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// assert_eq!(tp.forward_vec(&[2.0f32, 3.0], &[5.0, 7.0], &[0.5])?, [5.0, 10.5]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward_vec<T: Real>(&self, x1: &[T], x2: &[T], weight: &[T]) -> Result<Vec<T>> {
        let len = self.implied_batch(x1, x2) * self.irreps_out.dim();
        let mut out = uninit_vec(len);
        (kernels::<T>().forward)(self, x1, x2, weight, &mut out, Simd::detect())?;
        // SAFETY: `forward_uninit` succeeded, so it wrote every row of `out`.
        Ok(unsafe { assume_init_vec(out) })
    }

    /// The batch size the inputs imply (for the `_vec` variants, which have no output to
    /// read it from); the full check happens in the kernel.
    fn implied_batch<T>(&self, x1: &[T], x2: &[T]) -> usize {
        let (d1, d2) = (self.irreps_in1.dim(), self.irreps_in2.dim());
        (x1.len().checked_div(d1))
            .or(x2.len().checked_div(d2))
            .unwrap_or(0)
    }

    /// Gradients of `L` given `grad_out = dL/d out`, for the inputs of a [`forward`] call.
    /// Each requested gradient is overwritten; for shared weights the weight gradient sums
    /// over the batch.
    ///
    /// [`forward`]: TensorProductPlan::forward
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, TensorProductGradients};
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// let (mut g1, mut gw) = (vec![0.0f64; 1], vec![0.0f64; 1]);
    /// tp.backward(&[2.0], &[5.0], &[0.5], &[1.0],
    ///     TensorProductGradients { x1: Some(&mut g1), x2: None, weight: Some(&mut gw) })?;
    /// assert_eq!((g1[0], gw[0]), (2.5, 10.0));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(
        &self,
        x1: &[T],
        x2: &[T],
        weight: &[T],
        grad_out: &[T],
        grads: TensorProductGradients<'_, T>,
    ) -> Result<()> {
        // SAFETY: the kernels store only initialized values through these views.
        let grads = unsafe { uninit_gradients(grads) };
        (kernels::<T>().backward)(self, x1, x2, weight, grad_out, grads, Simd::detect())
    }

    /// [`backward`](TensorProductPlan::backward) into new buffers, `[x1, x2, weight]` with the
    /// shapes of the inputs, each computed when `mask` asks for it. Not zeroed first, as
    /// [`forward_vec`](TensorProductPlan::forward_vec).
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, Default::default())?;
    /// let [g1, g2, gw] = tp.backward_vec(&[2.0f64], &[5.0], &[0.5], &[1.0], [true, false, true])?;
    /// assert_eq!((g1.unwrap()[0], g2, gw.unwrap()[0]), (2.5, None, 10.0));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn backward_vec<T: Real>(
        &self,
        x1: &[T],
        x2: &[T],
        weight: &[T],
        grad_out: &[T],
        mask: [bool; 3],
    ) -> Result<[Option<Vec<T>>; 3]> {
        let batch = self.implied_batch(x1, x2);
        let lens = [
            batch * self.irreps_in1.dim(),
            batch * self.irreps_in2.dim(),
            weight.len(),
        ];
        let mut buffers = [0, 1, 2].map(|i| mask[i].then(|| uninit_vec::<T>(lens[i])));
        let [b1, b2, bw] = &mut buffers;
        let grads = [b1.as_deref_mut(), b2.as_deref_mut(), bw.as_deref_mut()];
        (kernels::<T>().backward)(self, x1, x2, weight, grad_out, grads, Simd::detect())?;
        // SAFETY: `backward_uninit` succeeded, so it wrote every element of each buffer.
        Ok(buffers.map(|b| b.map(|b| unsafe { assume_init_vec(b) })))
    }

    /// The fused convolution: `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e}
    /// x2[e]` for every node `i` (zero for a node without incoming edges), overwriting
    /// `out`.
    ///
    /// Shapes: `x1` `[N, irreps_in1.dim]` (node features), `x2` `[E, irreps_in2.dim]` (edge
    /// attributes, e.g. harmonics), `out` `[N, irreps_out.dim]`, weights as
    /// [`EdgeWeights`]. Errors: [`Error::ShapeMismatch`] for wrong lengths,
    /// [`Error::InvalidArgument`] for a plan with shared weights.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, EdgeWeights, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// // Edges 0 -> 1 and 2 -> 1; node 1 sums x1[0] x2[0] w0 + x1[2] x2[1] w1.
    /// let edges = EdgeIndex::new(&[0, 2], &[1, 1], 3)?;
    /// let mut out = [0.0f64; 3];
    /// tp.conv_forward(&edges, &[1.0, 5.0, 2.0], &[3.0, 4.0], EdgeWeights::PerEdge(&[1.0, 0.5]), 1.0, &mut out)?;
    /// assert_eq!(out, [0.0, 3.0 + 4.0, 0.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_forward<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        out: &mut [T],
    ) -> Result<()> {
        (kernels::<T>().conv_forward)(self, edges, x1, x2, weights, scale, out)
    }

    /// Gradients of `L` given `grad_out = dL/d out` for the inputs of a
    /// [`conv_forward`](TensorProductPlan::conv_forward) call; each requested gradient is
    /// overwritten.
    ///
    /// Errors: as [`conv_forward`](TensorProductPlan::conv_forward), and
    /// [`Error::ShapeMismatch`] for a gradient buffer of the wrong length;
    /// [`Error::InvalidArgument`] for `linear` with [`EdgeWeights::PerEdge`].
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, ConvGradients, EdgeWeights, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// let edges = EdgeIndex::new(&[0, 0], &[1, 1], 2)?; // two edges 0 -> 1
    /// let (mut g1, mut g2) = (vec![0.0f64; 2], vec![0.0f64; 2]);
    /// let grads = ConvGradients { x1: Some(&mut g1), x2: Some(&mut g2), weight: None, linear: None };
    /// tp.conv_backward(&edges, &[2.0, 0.0], &[3.0, 4.0], EdgeWeights::PerEdge(&[1.0, 1.0]), 1.0, &[0.0, 1.0], grads)?;
    /// assert_eq!((g1, g2), (vec![7.0, 0.0], vec![2.0, 2.0]));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv_backward<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        grad_out: &[T],
        grads: ConvGradients<'_, T>,
    ) -> Result<()> {
        (kernels::<T>().conv_backward)(self, edges, x1, x2, weights, scale, grad_out, grads)
    }

    /// The fused convolution with each edge's weights formed inside it by a radial MLP on
    /// the edge embedding ([`RadialWeights`]): `out[i] = scale sum_{e : dst[e] = i} x1[src[e]]
    /// (x)_{w_e} x2[e]`, `w_e = mlp(b_e)`, overwriting `out`; no per-edge weight or hidden
    /// activation is stored but, if `saved` is given, what the backward reads instead of
    /// forming the MLP again ([`RadialSaved`]). For products where
    /// [`conv_radial_applies`](TensorProductPlan::conv_radial_applies).
    ///
    /// Shapes: as [`conv_forward`](TensorProductPlan::conv_forward); the embedding `[E,
    /// num_basis]`. Errors: [`Error::ShapeMismatch`] for wrong lengths,
    /// [`Error::InvalidArgument`] for a product it does not run.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{sorted_uvu_tensor_product, MlpLayer, RadialWeights};
    /// let tp = sorted_uvu_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, false)?;
    /// let edges = EdgeIndex::new(&[0], &[1], 2)?; // 0 -> 1
    /// // One basis value 2, a hidden layer 2 x 0.5 through the identity, last 3: w = 3.
    /// let hidden = [MlpLayer { weight: &[0.5], inputs: 1, outputs: 1, activation: None }];
    /// let weights = RadialWeights { embedding: &[2.0f64], hidden: &hidden, last: &[3.0] };
    /// let mut out = [0.0; 2];
    /// tp.conv_forward_radial(&edges, &[5.0, 0.0], &[7.0], weights, 1.0, &mut out, None)?;
    /// assert_eq!(out, [0.0, 3.0 * 5.0 * 7.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv_forward_radial<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: RadialWeights<'_, T>,
        scale: T,
        out: &mut [T],
        saved: Option<&mut RadialSaved<T>>,
    ) -> Result<()> {
        (kernels::<T>().conv_forward_radial)(self, edges, x1, x2, weights, scale, out, saved)
    }

    /// The gradients of `L` given `grad_out = dL/d out` for the inputs of a
    /// [`conv_forward_radial`](TensorProductPlan::conv_forward_radial) call: `x1`'s
    /// overwritten, `x2`'s and the embedding's added to ([`RadialConvGradients`]); the
    /// MLP's weights are constants here. With `saved` it reads each edge's weights and the
    /// MLP's slopes there instead of forming them: `saved` must come from the forward of the
    /// same graph, embedding and MLP (`x1`, `x2` and `scale` are not in it).
    ///
    /// Errors: as [`conv_forward_radial`](TensorProductPlan::conv_forward_radial),
    /// [`Error::ShapeMismatch`] for a gradient buffer of the wrong length,
    /// [`Error::InvalidArgument`] for `saved` kept for a graph or MLP of another shape (the
    /// check sees the shapes only).
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{sorted_uvu_tensor_product, RadialConvGradients, RadialSaved, RadialWeights};
    /// let tp = sorted_uvu_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, false)?;
    /// let edges = EdgeIndex::new(&[0], &[1], 2)?; // 0 -> 1: out_1 = (b 3) x1_0 x2
    /// let weights = RadialWeights { embedding: &[2.0f64], hidden: &[], last: &[3.0] };
    /// let (x1, x2) = ([5.0, 0.0], [7.0]);
    /// let (mut out, mut saved) = ([0.0; 2], RadialSaved::default());
    /// tp.conv_forward_radial(&edges, &x1, &x2, weights, 1.0, &mut out, Some(&mut saved))?;
    /// let (mut g1, mut g2, mut gb) = (vec![0.0; 2], vec![1.0], vec![0.0]);
    /// let grads = RadialConvGradients { x1: Some(&mut g1), x2: Some(&mut g2), embedding: Some(&mut gb) };
    /// tp.conv_backward_radial(&edges, &x1, &x2, weights, 1.0, &[0.0, 1.0], grads, Some(&saved))?;
    /// // x2's gradient 6 * 5 is added to the 1 it held.
    /// assert_eq!((g1, g2, gb), (vec![42.0, 0.0], vec![31.0], vec![105.0]));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv_backward_radial<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: RadialWeights<'_, T>,
        scale: T,
        grad_out: &[T],
        grads: RadialConvGradients<'_, T>,
        saved: Option<&RadialSaved<T>>,
    ) -> Result<()> {
        let backward = kernels::<T>().conv_backward_radial;
        backward(self, edges, x1, x2, weights, scale, grad_out, grads, saved)
    }

    /// A fused convolution with weights from a linear layer
    /// ([`EdgeWeights::Linear`]) and its tangent in one pass: `out` as
    /// [`conv_forward`](TensorProductPlan::conv_forward), and
    ///
    /// `d_out = conv(dx1, x2, h) + conv(x1, dx2, h) + conv(x1, x2, dh)`,
    ///
    /// its derivative along the inputs' tangents (`None`: constant; `linear` fixed), both
    /// overwritten (`[N, irreps_out.dim]`). Each node gathers its edges once, and the
    /// output and its tangent share the work on the hidden activations.
    ///
    /// `sums`, if given (of [`conv_tangent_sums_len`](TensorProductPlan::conv_tangent_sums_len)),
    /// receives the per-node sums of hidden activations the output is contracted from, for
    /// a [`conv_tangent_backward`](TensorProductPlan::conv_tangent_backward) of the same
    /// inputs to read instead of forming them again.
    ///
    /// Errors: as [`conv_forward`](TensorProductPlan::conv_forward), and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for a tangent, `d_out` or
    /// `sums` of the wrong length.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, ConvTangentInputs, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// let edges = EdgeIndex::new(&[0], &[1], 2)?; // 0 -> 1
    /// // out_1 = x1_0 x2 h L = 2 * 3 * 5 * 1; along dx2 = 1: d out_1 = 2 * 1 * 5 * 1.
    /// let inputs = ConvTangentInputs { x1: &[2.0f64, 0.0], dx1: None, x2: &[3.0], dx2: Some(&[1.0]), hidden: &[5.0], dhidden: None, linear: &[1.0] };
    /// let (mut out, mut d_out) = ([0.0; 2], [0.0; 2]);
    /// tp.conv_tangent_forward(&edges, inputs, 1.0, &mut out, &mut d_out, None)?;
    /// assert_eq!((out, d_out), ([0.0, 30.0], [0.0, 10.0]));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_tangent_forward<T: Real>(
        &self,
        edges: &EdgeIndex,
        inputs: ConvTangentInputs<'_, T>,
        scale: T,
        out: &mut [T],
        d_out: &mut [T],
        sums: Option<&mut [T]>,
    ) -> Result<()> {
        (kernels::<T>().conv_tangent_forward)(self, edges, inputs, scale, out, d_out, sums)
    }

    /// The length of the sums a [`conv_tangent_forward`](TensorProductPlan::conv_tangent_forward)
    /// over `nodes` nodes with hidden activations of `width` saves: `2 nodes rows width`,
    /// `rows` the pair components of the paths whose pairs reach every output channel
    /// (uvw), rounded up to a multiple of 4 (zero for a plan of uvu paths alone, and for a
    /// product of weighted paths small enough to run expanded,
    /// [`conv_expands`](TensorProductPlan::conv_expands)).
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// // One pair component, padded to 4 rows; S and dS of 3 nodes, width 600 (factorized).
    /// assert_eq!(tp.conv_tangent_sums_len(3, 600), 2 * 3 * 4 * 600);
    /// // At width 2 the product runs expanded and keeps nothing.
    /// assert_eq!(tp.conv_tangent_sums_len(3, 2), 0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn conv_tangent_sums_len(&self, nodes: usize, width: usize) -> usize {
        self.tangent_sums_len(nodes, width)
    }

    /// Gradients of `L` given `grad_out = dL/d out` and `grad_d_out = dL/d(d_out)` for the
    /// inputs of a [`conv_tangent_forward`](TensorProductPlan::conv_tangent_forward) call and
    /// their tangents; each requested gradient is overwritten. `sums`: what that call saved,
    /// if it did (`None`: formed again where `dL/dlinear` needs them).
    ///
    /// Errors: as [`conv_tangent_forward`](TensorProductPlan::conv_tangent_forward), and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for a gradient buffer of the
    /// wrong length; [`Error::InvalidArgument`](crate::Error::InvalidArgument) for the
    /// gradient of a tangent that is `None`.
    ///
    /// ```
    /// use equivariant_core::graph::EdgeIndex;
    /// use equivariant_core::o3::tensor_product::{fully_connected_tensor_product, ConvTangentGradients, ConvTangentInputs, TensorProductOptions};
    /// let options = TensorProductOptions { shared_weights: false, ..Default::default() };
    /// let tp = fully_connected_tensor_product(&"0e".parse()?, &"0e".parse()?, &"0e".parse()?, options)?;
    /// let edges = EdgeIndex::new(&[0], &[1], 2)?;
    /// let inputs = ConvTangentInputs { x1: &[2.0f64, 0.0], dx1: None, x2: &[3.0], dx2: Some(&[1.0]), hidden: &[5.0], dhidden: None, linear: &[1.0] };
    /// // L = d_out_1 = x1_0 dx2 h L: dL/dh = x1_0 dx2 L = 2.
    /// let mut gh = vec![0.0; 1];
    /// let grads = ConvTangentGradients { hidden: Some(&mut gh), ..Default::default() };
    /// tp.conv_tangent_backward(&edges, inputs, 1.0, &[0.0, 0.0], &[0.0, 1.0], None, grads)?;
    /// assert_eq!(gh, [2.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv_tangent_backward<T: Real>(
        &self,
        edges: &EdgeIndex,
        inputs: ConvTangentInputs<'_, T>,
        scale: T,
        grad_out: &[T],
        grad_d_out: &[T],
        sums: Option<&[T]>,
        grads: ConvTangentGradients<'_, T>,
    ) -> Result<()> {
        (kernels::<T>().conv_tangent_backward)(
            self, edges, inputs, scale, grad_out, grad_d_out, sums, grads,
        )
    }
}
