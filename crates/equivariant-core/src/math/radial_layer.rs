//! The radial embedding of edge vectors fused with the first layer of a radial MLP:
//!
//! `h[e, k] = c act(s sum_b B_b(|v_e|) W[b, k])`
//!
//! with `B_b = basis_scale f_b` a [`SoftOneHotLinspace`] basis (the guide's
//! `soft_one_hot_linspace(|v|, ...) * sqrt(num_basis)`), `W` `[num_basis, width]` the layer's
//! weight, `s` its scale (e3nn's `1 / sqrt(fan_in)`), and an optional activation `act` with
//! its output factor `c` (the `normalize2mom` constant). It is e3nn's
//! `FullyConnectedNet` first layer applied to the guide's `edge_length_embedded`, in one pass
//! over the edges: neither the `[E, num_basis]` embedding nor the `[E, width]`
//! pre-activation is stored, and only the basis functions that are nonzero at `|v_e|` (two of
//! ten for `smooth_finite` at the guide's settings) touch `W`. For `smooth_finite` only those
//! (at most three per edge) are evaluated, eight edges at a time in vector lanes, with f32's
//! exponential as a polynomial; each chunk of edges runs compiled for AVX2 and FMA where the
//! CPU has them (chosen by measurement: the guide's forward at 1000 nodes 2.76-2.93 ->
//! 2.26-2.30 ms, 2 threads, alternated).

use rayon::prelude::*;

use super::soft_one_hot_linspace::{Tables, Window};
use super::{ActivationFunction, Basis, SoftOneHotLinspace};
use crate::error::first_non_finite;
use crate::kernels::gemm::{LANES, axpy, lane_sum};
use crate::kernels::simd::Avx2Fma;
use crate::{Error, Real, Result};

/// Edges per parallel task (fixed: the weight gradient sums in a fixed order).
const EDGE_CHUNK: usize = 1024;

/// The fused radial embedding and first MLP layer (see the module docs).
///
/// ```
/// use equivariant_core::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
/// let basis = SoftOneHotLinspace::new(0.0, 2.0, 3, Basis::Gaussian, false)?;
/// let layer = RadialLayer::new(basis, 1.0, 1.0, None);
/// // One edge of length 1, a [3, 1] weight of ones: the sum of the three basis values.
/// let mut h = [0.0f64];
/// layer.forward(&[0.0, 1.0, 0.0], &[1.0, 1.0, 1.0], &mut h)?;
/// assert!(h[0] > 1.0);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RadialLayer {
    basis: SoftOneHotLinspace,
    basis_scale: f64,
    weight_scale: f64,
    activation: Option<(ActivationFunction, f64)>,
}

/// Shapes of one call: edges and layer width.
struct Shape {
    edges: usize,
    width: usize,
}

impl RadialLayer {
    /// `h = c act(weight_scale * (basis_scale basis(|v|)) W)`, with `activation` the pair
    /// `(act, c)` or `None` for a linear layer.
    ///
    /// ```
    /// use equivariant_core::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, true)?;
    /// let relu = ActivationFunction::Relu;
    /// let layer = RadialLayer::new(basis, 10f64.sqrt(), 1.0 / 10f64.sqrt(), Some((relu, relu.normalize2mom_constant())));
    /// assert_eq!(layer.num_basis(), 10);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        basis: SoftOneHotLinspace,
        basis_scale: f64,
        weight_scale: f64,
        activation: Option<(ActivationFunction, f64)>,
    ) -> Self {
        RadialLayer {
            basis,
            basis_scale,
            weight_scale,
            activation,
        }
    }

    /// The basis `f`.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis.clone(), 1.0, 1.0, None).basis(), &basis);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn basis(&self) -> &SoftOneHotLinspace {
        &self.basis
    }

    /// The factor on the basis values (`sqrt(num_basis)` in the guide).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis, 2.0, 0.5, None).basis_scale(), 2.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn basis_scale(&self) -> f64 {
        self.basis_scale
    }

    /// The factor on `W` (`1 / sqrt(fan_in)`).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis, 2.0, 0.5, None).weight_scale(), 0.5);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn weight_scale(&self) -> f64 {
        self.weight_scale
    }

    /// The activation and its output factor, `None` for a linear layer.
    ///
    /// ```
    /// use equivariant_core::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// let layer = RadialLayer::new(basis, 1.0, 1.0, Some((ActivationFunction::Silu, 1.5)));
    /// assert_eq!(layer.activation(), Some((ActivationFunction::Silu, 1.5)));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn activation(&self) -> Option<(ActivationFunction, f64)> {
        self.activation
    }

    /// The number of basis functions (the rows of `W`).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis, 1.0, 1.0, None).num_basis(), 4);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_basis(&self) -> usize {
        self.basis.number()
    }

    fn shape(
        &self,
        vectors: usize,
        weight: usize,
        what: &'static str,
        out: usize,
    ) -> Result<Shape> {
        let nb = self.num_basis();
        if !vectors.is_multiple_of(3) {
            return Err(Error::ShapeMismatch {
                what: "vectors [E, 3]",
                expected: vectors / 3 * 3,
                got: vectors,
            });
        }
        let (edges, width) = (vectors / 3, weight / nb);
        if weight != nb * width {
            return Err(Error::ShapeMismatch {
                what: "weight [num_basis, width]",
                expected: nb * width,
                got: weight,
            });
        }
        if out != edges * width {
            return Err(Error::ShapeMismatch {
                what,
                expected: edges * width,
                got: out,
            });
        }
        Ok(Shape { edges, width })
    }

    /// `h` `[E, width]` from the edge vectors `[E, 3]` and `W` `[num_basis, width]`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for inconsistent lengths; [`Error::NonFinite`] for a
    /// NaN or infinite component of a vector, or a vector whose length overflows.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let layer = RadialLayer::new(SoftOneHotLinspace::new(0.0, 1.0, 2, Basis::Cosine, true)?, 1.0, 1.0, None);
    /// let mut h = [0.0f32; 2];
    /// assert!(layer.forward(&[0.0, 0.0, f32::NAN], &[1.0, 1.0], &mut h[..1]).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward<T: Real>(&self, vectors: &[T], weight: &[T], out: &mut [T]) -> Result<()> {
        let sh = self.shape(vectors.len(), weight.len(), "out [E, width]", out.len())?;
        if sh.width == 0 {
            return Ok(());
        }
        let scale = T::from_f64(self.basis_scale * self.weight_scale);
        let tables = self.basis.tables::<T>();
        // Detected once, on the calling thread (which `with_instruction_set` limits).
        let avx2 = Avx2Fma::detect();
        out.par_chunks_mut(EDGE_CHUNK * sh.width)
            .zip(vectors.par_chunks(EDGE_CHUNK * 3))
            .enumerate()
            .try_for_each(|(chunk, (out, v))| {
                let args = ChunkArgs {
                    avx2,
                    tables: &tables,
                    weight,
                    scale,
                    vectors: v,
                    offset: chunk * EDGE_CHUNK * 3,
                };
                self.forward_chunk(args, out)
            })
    }

    /// The gradients with respect to the vectors (`[E, 3]`) and `W` (`[num_basis, width]`)
    /// given `grad_out` `[E, width]`; `None` skips one. Buffers are overwritten. A vector of
    /// length zero gets gradient zero (as torch's `norm`).
    ///
    /// Errors: as [`forward`](RadialLayer::forward), and [`Error::ShapeMismatch`] for a
    /// gradient buffer of the wrong length.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let layer = RadialLayer::new(SoftOneHotLinspace::new(0.0, 2.0, 2, Basis::Gaussian, false)?, 1.0, 1.0, None);
    /// let (mut gv, mut gw) = ([0.0f64; 3], [0.0f64; 2]);
    /// layer.backward(&[0.0, 0.0, 0.5], &[1.0, 1.0], &[1.0], Some(&mut gv), Some(&mut gw))?;
    /// assert!(gv[0] == 0.0 && gv[2] != 0.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(
        &self,
        vectors: &[T],
        weight: &[T],
        grad_out: &[T],
        grad_vectors: Option<&mut [T]>,
        grad_weight: Option<&mut [T]>,
    ) -> Result<()> {
        let sh = self.shape(
            vectors.len(),
            weight.len(),
            "grad_out [E, width]",
            grad_out.len(),
        )?;
        if let Some(g) = &grad_vectors
            && g.len() != vectors.len()
        {
            return Err(Error::ShapeMismatch {
                what: "grad_vectors [E, 3]",
                expected: vectors.len(),
                got: g.len(),
            });
        }
        if let Some(g) = &grad_weight
            && g.len() != weight.len()
        {
            return Err(Error::ShapeMismatch {
                what: "grad_weight [num_basis, width]",
                expected: weight.len(),
                got: g.len(),
            });
        }
        let (w, scale) = (sh.width, T::from_f64(self.basis_scale * self.weight_scale));
        let want_weight = grad_weight.is_some();
        let tables = self.basis.tables::<T>();
        // Detected once, on the calling thread (which `with_instruction_set` limits).
        let avx2 = Avx2Fma::detect();
        let chunks = sh.edges.div_ceil(EDGE_CHUNK);
        let mut gv_chunks: Vec<Option<&mut [T]>> = match grad_vectors {
            Some(g) => g.chunks_mut(EDGE_CHUNK * 3).map(Some).collect(),
            None => Vec::new(),
        };
        gv_chunks.resize_with(chunks, || None);
        let partials: Vec<Vec<T>> = gv_chunks
            .into_par_iter()
            .enumerate()
            .map(|(chunk, gv)| {
                let edges = chunk * EDGE_CHUNK..((chunk + 1) * EDGE_CHUNK).min(sh.edges);
                let args = ChunkArgs {
                    avx2,
                    tables: &tables,
                    weight,
                    scale,
                    vectors: &vectors[edges.start * 3..edges.end * 3],
                    offset: edges.start * 3,
                };
                let go = &grad_out[edges.start * w..edges.end * w];
                self.backward_chunk(args, go, gv, want_weight)
            })
            .collect::<Result<_>>()?;
        if let Some(gw) = grad_weight {
            gw.fill(T::zero());
            for p in partials {
                gw.iter_mut().zip(p).for_each(|(y, x)| *y += x);
            }
        }
        Ok(())
    }
}

impl RadialLayer {
    /// One chunk of [`forward`](Self::forward) into `out` (`[n, width]`), compiled for AVX2
    /// and FMA where the CPU has them.
    fn forward_chunk<T: Real>(&self, args: ChunkArgs<T>, out: &mut [T]) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = args.avx2 {
            // SAFETY: `token` proves the CPU has the AVX2 and FMA the twin is compiled for.
            return unsafe { self.forward_chunk_avx2(token, args, out) };
        }
        self.forward_chunk_on(args, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_chunk_avx2<T: Real>(
        &self,
        _token: Avx2Fma,
        args: ChunkArgs<T>,
        out: &mut [T],
    ) -> Result<()> {
        self.forward_chunk_on(args, out)
    }

    #[inline(always)]
    fn forward_chunk_on<T: Real>(&self, args: ChunkArgs<T>, out: &mut [T]) -> Result<()> {
        let ChunkArgs {
            avx2,
            tables,
            weight,
            scale,
            vectors,
            offset,
        } = args;
        let lens = lengths(vectors, offset)?;
        let basis = ChunkBasis::<T, false>::new(&self.basis, avx2, tables, &lens);
        match self.activation {
            Some((act, c)) => {
                let mut pre = vec![T::zero(); out.len()];
                basis.pre_activations(weight, scale, &mut pre);
                act.forward_slice(T::from_f64(c), &pre, out)
            }
            None => {
                basis.pre_activations(weight, scale, out);
                Ok(())
            }
        }
    }

    /// One chunk of [`backward`](Self::backward) given its `grad_out` (`go`, `[n, width]`):
    /// the vectors' gradient into `gv` where given, and the chunk's part of the weight's
    /// (empty unless `want_weight`), compiled for AVX2 and FMA where the CPU has them.
    fn backward_chunk<T: Real>(
        &self,
        args: ChunkArgs<T>,
        go: &[T],
        gv: Option<&mut [T]>,
        want_weight: bool,
    ) -> Result<Vec<T>> {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = args.avx2 {
            // SAFETY: `token` proves the CPU has the AVX2 and FMA the twin is compiled for.
            return unsafe { self.backward_chunk_avx2(token, args, go, gv, want_weight) };
        }
        self.backward_chunk_on(args, go, gv, want_weight)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn backward_chunk_avx2<T: Real>(
        &self,
        _token: Avx2Fma,
        args: ChunkArgs<T>,
        go: &[T],
        gv: Option<&mut [T]>,
        want_weight: bool,
    ) -> Result<Vec<T>> {
        self.backward_chunk_on(args, go, gv, want_weight)
    }

    #[inline(always)]
    fn backward_chunk_on<T: Real>(
        &self,
        args: ChunkArgs<T>,
        go: &[T],
        mut gv: Option<&mut [T]>,
        want_weight: bool,
    ) -> Result<Vec<T>> {
        let ChunkArgs {
            avx2,
            tables,
            weight,
            scale,
            vectors: v,
            offset,
        } = args;
        let nb = self.num_basis();
        let w = weight.len() / nb;
        let lens = lengths(v, offset)?;
        let basis = ChunkBasis::<T, true>::new(&self.basis, avx2, tables, &lens);
        let mut partial = vec![T::zero(); if want_weight { nb * w } else { 0 }];
        // dL/dpre = grad_out c act'(pre) for the whole chunk: the pre-activations, then their
        // slopes in the activation kernels' vector loops (per edge and element, the
        // activation's derivative was a call each: a tenth of the guide's forward+backward
        // at 100 nodes went to this function).
        let mut dpre_all = vec![T::zero(); go.len()];
        match self.activation {
            Some((act, c)) => {
                basis.pre_activations(weight, scale, &mut dpre_all);
                let (mut values, mut slopes) =
                    (vec![T::zero(); go.len()], vec![T::zero(); go.len()]);
                act.forward_with_derivative_slice(
                    T::from_f64(c),
                    &dpre_all,
                    &mut values,
                    &mut slopes,
                )?;
                for ((d, &g), &s) in dpre_all.iter_mut().zip(go).zip(&slopes) {
                    *d = g * s;
                }
            }
            None => dpre_all.copy_from_slice(go),
        }
        let mut u = vec![T::zero(); w];
        for (n, &len) in lens.iter().enumerate() {
            let (first, f, df) = basis.edge(n);
            let dpre = &dpre_all[n * w..(n + 1) * w];
            if want_weight {
                for (j, &fk) in f.iter().enumerate() {
                    let k = first + j;
                    axpy::<T, false>(&mut partial[k * w..(k + 1) * w], scale * fk, dpre);
                }
            }
            if let Some(gv) = gv.as_deref_mut() {
                // dL/d|v| = dpre . sum_k s f_k'(|v|) W[k], then along v / |v|.
                u.fill(T::zero());
                for (j, &dfk) in df.iter().enumerate() {
                    let k = first + j;
                    axpy::<T, false>(&mut u, scale * dfk, &weight[k * w..(k + 1) * w]);
                }
                // One division per edge, not one per component.
                let along = if len > T::zero() {
                    dot(&u, dpre) / len
                } else {
                    T::zero()
                };
                let row = &mut gv[n * 3..(n + 1) * 3];
                for (g, &x) in row.iter_mut().zip(&v[n * 3..(n + 1) * 3]) {
                    *g = along * x;
                }
            }
        }
        Ok(partial)
    }
}

/// What a chunk of the forward or backward reads.
#[derive(Clone, Copy)]
struct ChunkArgs<'a, T> {
    /// The instruction set the chunk may use, detected by the caller.
    avx2: Option<Avx2Fma>,
    tables: &'a Tables<T>,
    weight: &'a [T],
    /// `basis_scale * weight_scale`.
    scale: T,
    /// The chunk's vectors, `[n, 3]`, at `offset` in the caller's.
    vectors: &'a [T],
    offset: usize,
}

/// `|v|` of one vector.
pub(super) fn length<T: Real>(v: &[T]) -> T {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

/// The lengths of the vectors `v` (`[n, 3]`); [`Error::NonFinite`] names the first NaN or
/// infinite component, or the first component of a vector whose length overflows, counting
/// from `offset` (where `v` starts in the caller's vectors).
fn lengths<T: Real>(v: &[T], offset: usize) -> Result<Vec<T>> {
    if let Some(i) = first_non_finite(v) {
        return Err(Error::NonFinite {
            what: "vectors",
            index: offset + i,
        });
    }
    let lens: Vec<T> = v.chunks_exact(3).map(length).collect();
    if let Some(n) = first_non_finite(&lens) {
        return Err(Error::NonFinite {
            what: "vectors (their length)",
            index: offset + 3 * n,
        });
    }
    Ok(lens)
}

/// The basis at one chunk's lengths: for smooth_finite the (at most three) functions that
/// may be nonzero at each, from [`SoftOneHotLinspace::smooth_finite_windows`]; for every
/// other basis (nonzero anywhere) the whole rows, with their derivatives when `D`.
struct ChunkBasis<T, const D: bool> {
    /// smooth_finite: per length, the first function, the count, values and derivatives.
    windows: Vec<Window<T>>,
    /// Other bases: `[n, N]` values and derivatives.
    rows: Vec<T>,
    slopes: Vec<T>,
    nb: usize,
}

impl<T: Real, const D: bool> ChunkBasis<T, D> {
    #[inline(always)]
    fn new(
        basis: &SoftOneHotLinspace,
        avx2: Option<Avx2Fma>,
        tables: &Tables<T>,
        lens: &[T],
    ) -> Self {
        let nb = basis.number();
        let mut this = ChunkBasis {
            windows: Vec::new(),
            rows: Vec::new(),
            slopes: Vec::new(),
            nb,
        };
        if basis.basis() == Basis::SmoothFinite {
            this.windows = basis.smooth_finite_windows::<T, D>(avx2, tables, lens);
            return this;
        }
        // The basis's own rows on the layer's tables and instruction set (the lengths are
        // checked finite): what `compute` runs, without its checks, tables and detection again
        // per chunk.
        this.rows = vec![T::zero(); lens.len() * nb];
        this.slopes = vec![T::zero(); if D { lens.len() * nb } else { 0 }];
        basis.rows::<T, D>(avx2, tables, lens, &mut this.rows, &mut this.slopes);
        this
    }

    /// `pre[n] = scale sum_k f_k(|v_n|) W[k]` for every length `n` of the chunk (`[n,
    /// width]`), over the functions that may be nonzero: the pre-activations the forward
    /// applies the activation to and the backward takes its slopes at.
    #[inline(always)]
    fn pre_activations(&self, weight: &[T], scale: T, pre: &mut [T]) {
        let width = weight.len() / self.nb.max(1);
        for (n, h) in pre.chunks_exact_mut(width).enumerate() {
            let (first, f, _) = self.edge(n);
            pre_activation(f, first, weight, scale, h);
        }
    }

    /// Length `n`'s functions that may be nonzero, `first..first + f.len()`: `(first, f,
    /// df)` (`df` empty unless `D`).
    #[inline(always)]
    fn edge(&self, n: usize) -> (usize, &[T], &[T]) {
        if let Some((first, count, f, df)) = self.windows.get(n) {
            return (*first, &f[..*count], if D { &df[..*count] } else { &[] });
        }
        let row = n * self.nb..(n + 1) * self.nb;
        let df = if D {
            &self.slopes[row.clone()]
        } else {
            &[][..]
        };
        (0, &self.rows[row], df)
    }
}

/// `a . b` in [`LANES`] interleaved partial sums (a vector's lanes), then [`lane_sum`]'s
/// fixed tree.
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    lane_sum(&acc) + tail
}

/// `h = scale sum_k b_k W[k]` over the basis functions that may be nonzero, `b[j]` being
/// that of function `first + j`.
#[inline(always)]
fn pre_activation<T: Real>(b: &[T], first: usize, weight: &[T], scale: T, h: &mut [T]) {
    let w = h.len();
    h.fill(T::zero());
    for (j, &bk) in b.iter().enumerate() {
        let k = first + j;
        axpy::<T, false>(h, scale * bk, &weight[k * w..(k + 1) * w]);
    }
}
