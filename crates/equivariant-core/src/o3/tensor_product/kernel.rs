//! CPU kernels of [`TensorProductPlan`]: forward, and the backward to both inputs and the
//! weights, over batches of rows, parallel over fixed chunks of rows (deterministic for
//! any thread count).
//!
//! Every path runs over the nonzeros of its Clebsch-Gordan list only. For one multiplicity
//! pair `(u, v)` of a path, the forward is `t[k] = sum c x1[u, i] x2[v, j]` followed by
//! `out[o] += W t`. The backward uses the same contraction with operands permuted:
//! with `h[k] = sum_o W g[o, k]`, `g1[u, i] += sum c x2[v, j] h[k]` and
//! `g2[v, j] += sum c x1[u, i] h[k]` (the lists `backward1`, `backward2` are `C` with its
//! indices permuted), and `gW = t . g[o]`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::Isa;
use super::instruction::ConnectionMode;
use super::lanes::{L, LaneBuffers, lanes_to_rows, rows_to_lanes};
use super::tensor_product::{Contraction, PathPlan, Targets, TensorProductPlan};
use crate::{Error, Real, Result};

/// Rows per parallel task. Fixed, so the order of every floating-point sum (including the
/// sum of shared-weight gradients over chunks) does not depend on the number of threads.
const CHUNK: usize = 32;

/// Where [`TensorProductPlan::backward`] writes the gradients; `None` skips that gradient.
///
/// ```
/// use equivariant_core::o3::tensor_product::TensorProductGradients;
/// let mut g1 = vec![0.0f64; 3];
/// let grads = TensorProductGradients { x1: Some(&mut g1), x2: None, weight: None };
/// assert!(grads.x2.is_none());
/// ```
pub struct TensorProductGradients<'a, T> {
    /// `d L / d x1`, `[batch, irreps_in1.dim]`.
    pub x1: Option<&'a mut [T]>,
    /// `d L / d x2`, `[batch, irreps_in2.dim]`.
    pub x2: Option<&'a mut [T]>,
    /// `d L / d weight`, the weight's shape.
    pub weight: Option<&'a mut [T]>,
}

/// A path's coefficients cast to the data type.
pub(super) struct Coefficients<T> {
    pub(super) forward: Vec<T>,
    pub(super) backward1: Vec<T>,
    pub(super) backward2: Vec<T>,
}

fn cast<T: Real>(c: &Contraction) -> Vec<T> {
    c.coef.iter().map(|&x| T::from_f64(x)).collect()
}

/// `out[r] += c a[p] b[q]` over a sparse Clebsch-Gordan list.
#[inline(always)]
pub(super) fn contract<T: Real>(c: &Contraction, coef: &[T], a: &[T], b: &[T], out: &mut [T]) {
    for (idx, &cv) in c.idx.iter().zip(coef) {
        out[idx[2] as usize] += cv * a[idx[0] as usize] * b[idx[1] as usize];
    }
}

impl TensorProductPlan {
    pub(super) fn coefficients<T: Real>(&self) -> Vec<Coefficients<T>> {
        self.paths
            .iter()
            .map(|p| Coefficients {
                forward: cast(&p.forward),
                backward1: cast(&p.backward1),
                backward2: cast(&p.backward2),
            })
            .collect()
    }

    /// The batch size implied by the buffers, checking every length.
    fn batch_size<T>(&self, x1: &[T], x2: &[T], weight: &[T], out_len: usize) -> Result<usize> {
        let dims = [
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        ];
        let lens = [x1.len(), x2.len(), out_len];
        let batch = dims
            .iter()
            .zip(&lens)
            .find(|(d, _)| **d > 0)
            .map(|(d, l)| l / d)
            .unwrap_or(0);
        let names = [
            "x1 [batch, irreps_in1.dim]",
            "x2 [batch, irreps_in2.dim]",
            "out [batch, irreps_out.dim]",
        ];
        for ((d, l), what) in dims.iter().zip(lens).zip(names) {
            if d * batch != l {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: d * batch,
                    got: l,
                });
            }
        }
        let expected = if self.shared_weights {
            self.weight_numel
        } else {
            batch * self.weight_numel
        };
        if weight.len() != expected {
            return Err(Error::ShapeMismatch {
                what: if self.shared_weights {
                    "weight [weight_numel]"
                } else {
                    "weight [batch, weight_numel]"
                },
                expected,
                got: weight.len(),
            });
        }
        Ok(batch)
    }

    /// The weight vector of row `z`.
    #[inline]
    fn row_weight<'a, T>(&self, weight: &'a [T], z: usize) -> &'a [T] {
        if self.shared_weights {
            weight
        } else {
            &weight[z * self.weight_numel..(z + 1) * self.weight_numel]
        }
    }

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
        (T::kernels().forward)(self, x1, x2, weight, as_uninit(out), Isa::detect())
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
        (T::kernels().forward)(self, x1, x2, weight, &mut out, Isa::detect())?;
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

    /// [`forward`](TensorProductPlan::forward) into a possibly uninitialized buffer, with the
    /// kernels' instantiation for `isa`: every row is written, so all of `out` is
    /// initialized on success.
    pub(super) fn forward_uninit<T: Real>(
        &self,
        x1: &[T],
        x2: &[T],
        weight: &[T],
        out: &mut [MaybeUninit<T>],
        isa: Isa,
    ) -> Result<()> {
        let batch = self.batch_size(x1, x2, weight, out.len())?;
        let d_out = self.irreps_out.dim();
        if batch == 0 || d_out == 0 {
            return Ok(());
        }
        let coefs = self.coefficients::<T>();
        out.par_chunks_mut(CHUNK * d_out).enumerate().for_each_init(
            || self.workspace(weight, false, batch),
            |ws, (chunk, out)| {
                let a = (&coefs[..], x1, x2, weight);
                #[cfg(target_arch = "x86_64")]
                if isa == Isa::Avx2Fma {
                    // SAFETY: `Isa::Avx2Fma` is only detected on CPUs with AVX2 and FMA.
                    return unsafe { self.forward_chunk_avx2(a, chunk * CHUNK, out, ws) };
                }
                let _ = isa;
                self.forward_chunk::<T, false>(a, chunk * CHUNK, out, ws)
            },
        );
        Ok(())
    }

    /// Rows `first..` of the forward into `out`: groups of eight rows lane-major
    /// ([`Self::forward_lanes`]), the last `< 8` rows one by one.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn forward_chunk<T: Real, const FMA: bool>(
        &self,
        (coefs, x1, x2, weight): (&[Coefficients<T>], &[T], &[T], &[T]),
        first: usize,
        out: &mut [MaybeUninit<T>],
        (b, s): &mut Workspace<T>,
    ) {
        let (d1, d2, d_out, numel) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
        );
        let groups = out.len() / d_out / L;
        let (grouped, rest) = out.split_at_mut(groups * L * d_out);
        if groups > 0 {
            for (g, out) in grouped.chunks_exact_mut(L * d_out).enumerate() {
                let z = first + g * L;
                rows_to_lanes::<T, FMA>(&x1[z * d1..], d1, &mut b.x1);
                rows_to_lanes::<T, FMA>(&x2[z * d2..], d2, &mut b.x2);
                if !self.shared_weights {
                    rows_to_lanes::<T, FMA>(&weight[z * numel..], numel, &mut b.w);
                }
                self.forward_lanes::<T, FMA>(coefs, b);
                lanes_to_rows::<T, FMA>(&b.out, d_out, out);
            }
        }
        for (r, out) in rest.chunks_exact_mut(d_out).enumerate() {
            let z = first + groups * L + r;
            let out = zeroed_uninit(out);
            let (x1, x2) = (&x1[z * d1..(z + 1) * d1], &x2[z * d2..(z + 1) * d2]);
            self.forward_row(coefs, x1, x2, self.row_weight(weight, z), out, s);
        }
    }

    /// [`Self::forward_chunk`] compiled for AVX2 (the row kernels, inlined here, then run on
    /// 256-bit vectors; the arithmetic and its order are the same).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::type_complexity)]
    fn forward_chunk_avx2<T: Real>(
        &self,
        a: (&[Coefficients<T>], &[T], &[T], &[T]),
        first: usize,
        out: &mut [MaybeUninit<T>],
        ws: &mut Workspace<T>,
    ) {
        self.forward_chunk::<T, true>(a, first, out, ws)
    }

    /// One row of the forward pass, added to `out`.
    #[inline(always)]
    pub(super) fn forward_row<T: Real>(
        &self,
        coefs: &[Coefficients<T>],
        x1: &[T],
        x2: &[T],
        w: &[T],
        out: &mut [T],
        s: &mut Scratch<T>,
    ) {
        s.outt.fill(T::zero());
        for (p, c) in self.paths.iter().zip(coefs) {
            match p.mode {
                ConnectionMode::Uvu => {
                    for v in 0..p.m2 {
                        contract_x2(
                            p,
                            &c.forward,
                            &x2[p.in2 + v * p.d2..p.in2 + (v + 1) * p.d2],
                            &mut s.y,
                        );
                        dispatch_dims!(p.d1, p.d3, uvu_forward, (p, &s.y, x1, w, v, out));
                    }
                }
                ConnectionMode::Uvw => {
                    for v in 0..p.m2 {
                        contract_x2(
                            p,
                            &c.forward,
                            &x2[p.in2 + v * p.d2..p.in2 + (v + 1) * p.d2],
                            &mut s.y,
                        );
                        dispatch_dims!(p.d1, p.d3, uvw_forward, (p, &s.y, x1, w, v, &mut s.outt));
                    }
                }
                _ => forward_path(p, c, x1, x2, w, out, &mut s.t),
            }
        }
        for &(offset, mo, d3, at) in &self.uvw_blocks {
            for (o, row) in out[offset..offset + mo * d3]
                .chunks_exact_mut(d3)
                .enumerate()
            {
                for (k, y) in row.iter_mut().enumerate() {
                    *y += s.outt[at + k * mo + o];
                }
            }
        }
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
        let TensorProductGradients {
            x1: g1,
            x2: g2,
            weight: gw,
        } = grads;
        let grads = [g1.map(as_uninit), g2.map(as_uninit), gw.map(as_uninit)];
        (T::kernels().backward)(self, x1, x2, weight, grad_out, grads, Isa::detect())
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
        (T::kernels().backward)(self, x1, x2, weight, grad_out, grads, Isa::detect())?;
        // SAFETY: `backward_uninit` succeeded, so it wrote every element of each buffer.
        Ok(buffers.map(|b| b.map(|b| unsafe { assume_init_vec(b) })))
    }

    /// [`backward`](TensorProductPlan::backward) into possibly uninitialized buffers `[x1, x2,
    /// weight]`, with the kernels' instantiation for `isa`: every row (and a shared weight
    /// gradient) is written.
    pub(super) fn backward_uninit<T: Real>(
        &self,
        x1: &[T],
        x2: &[T],
        weight: &[T],
        grad_out: &[T],
        [g1, g2, gw]: [Option<&mut [MaybeUninit<T>]>; 3],
        isa: Isa,
    ) -> Result<()> {
        let batch = self.batch_size(x1, x2, weight, grad_out.len())?;
        let (d1, d2) = (self.irreps_in1.dim(), self.irreps_in2.dim());
        let check = |g: &Option<&mut [MaybeUninit<T>]>, expected: usize, what: &'static str| match g
        {
            Some(g) if g.len() != expected => Err(Error::ShapeMismatch {
                what,
                expected,
                got: g.len(),
            }),
            _ => Ok(()),
        };
        check(&g1, batch * d1, "grad x1 [batch, irreps_in1.dim]")?;
        check(&g2, batch * d2, "grad x2 [batch, irreps_in2.dim]")?;
        check(&gw, weight.len(), "grad weight (the weight's shape)")?;
        let want_gw = gw.is_some();
        let (shared_gw, gw) = if self.shared_weights {
            (gw.map(zeroed_uninit), None)
        } else {
            (None, gw)
        };
        if batch == 0 {
            return Ok(());
        }
        let coefs = self.coefficients::<T>();
        let numel = self.weight_numel;

        let chunks = batch.div_ceil(CHUNK);
        // Each chunk owns its rows of g1, g2 (and of per-row gW); shared gW is summed over
        // chunks afterwards, in chunk order.
        let mut g1_chunks = split(g1, CHUNK * d1, chunks);
        let mut g2_chunks = split(g2, CHUNK * d2, chunks);
        let per_row_gw = want_gw && !self.shared_weights;
        let mut gw_chunks = if per_row_gw {
            split(gw, CHUNK * numel, chunks)
        } else {
            (0..chunks).map(|_| None).collect()
        };
        let shared_partials: Vec<Vec<T>> = g1_chunks
            .par_iter_mut()
            .zip(g2_chunks.par_iter_mut())
            .zip(gw_chunks.par_iter_mut())
            .enumerate()
            .map_init(
                || self.workspace(weight, true, batch),
                |ws, (chunk, ((g1, g2), gw_rows))| {
                    let a = (&coefs[..], x1, x2, weight, grad_out);
                    let rows = (chunk * CHUNK, CHUNK.min(batch - chunk * CHUNK));
                    let grads = [g1.as_deref_mut(), g2.as_deref_mut(), gw_rows.as_deref_mut()];
                    #[cfg(target_arch = "x86_64")]
                    if isa == Isa::Avx2Fma {
                        // SAFETY: `Isa::Avx2Fma` is only detected on CPUs with AVX2 and FMA.
                        return unsafe { self.backward_chunk_avx2(a, rows, grads, want_gw, ws) };
                    }
                    let _ = isa;
                    self.backward_chunk::<T, false>(a, rows, grads, want_gw, ws)
                },
            )
            .collect();
        if let Some(gw) = shared_gw {
            for partial in shared_partials {
                gw.iter_mut().zip(partial).for_each(|(a, b)| *a += b);
            }
        }
        Ok(())
    }

    /// Rows `first..first + count` of the backward: per-row gradients into the chunk's
    /// rows of `[g1, g2, gw]` (each row written once, while in cache), groups of eight rows
    /// lane-major ([`Self::backward_lanes`]), the last `< 8` rows one by one; returns the
    /// chunk's partial shared-weight gradient (empty unless shared and wanted).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn backward_chunk<T: Real, const FMA: bool>(
        &self,
        (coefs, x1, x2, weight, grad_out): (&[Coefficients<T>], &[T], &[T], &[T], &[T]),
        (first, count): (usize, usize),
        [g1, g2, gw_rows]: [Option<&mut [MaybeUninit<T>]>; 3],
        want_gw: bool,
        (b, s): &mut Workspace<T>,
    ) -> Vec<T> {
        let (d1, d2, d_out, numel) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
        );
        let (mut g1, mut g2, mut gw_rows) = (g1, g2, gw_rows);
        let shared_len = if want_gw && self.shared_weights {
            numel
        } else {
            0
        };
        let mut shared = vec![T::zero(); shared_len];
        let groups = count / L;
        if groups > 0 {
            let want = [g1.is_some(), g2.is_some(), want_gw];
            for g in 0..groups {
                let (r, z) = (g * L, first + g * L);
                rows_to_lanes::<T, FMA>(&x1[z * d1..], d1, &mut b.x1);
                rows_to_lanes::<T, FMA>(&x2[z * d2..], d2, &mut b.x2);
                rows_to_lanes::<T, FMA>(&grad_out[z * d_out..], d_out, &mut b.out);
                if !self.shared_weights {
                    rows_to_lanes::<T, FMA>(&weight[z * numel..], numel, &mut b.w);
                }
                self.backward_lanes::<T, FMA>(coefs, b, want);
                if let Some(g1) = g1.as_deref_mut() {
                    lanes_to_rows::<T, FMA>(&b.g1, d1, &mut g1[r * d1..]);
                }
                if let Some(g2) = g2.as_deref_mut() {
                    lanes_to_rows::<T, FMA>(&b.g2, d2, &mut g2[r * d2..]);
                }
                if let Some(gw) = gw_rows.as_deref_mut() {
                    lanes_to_rows::<T, FMA>(&b.gw, numel, &mut gw[r * numel..]);
                }
                for (s, lanes) in shared.iter_mut().zip(&b.gw) {
                    *s += lanes.iter().fold(T::zero(), |a, &x| a + x);
                }
            }
        }
        for r in groups * L..count {
            let z = first + r;
            let (x1, x2) = (&x1[z * d1..(z + 1) * d1], &x2[z * d2..(z + 1) * d2]);
            let g = &grad_out[z * d_out..(z + 1) * d_out];
            let g1_row = g1
                .as_deref_mut()
                .map(|g| zeroed_uninit(&mut g[r * d1..(r + 1) * d1]));
            let g2_row = g2
                .as_deref_mut()
                .map(|g| zeroed_uninit(&mut g[r * d2..(r + 1) * d2]));
            let gw_row: Option<&mut [T]> = if self.shared_weights {
                want_gw.then_some(&mut shared[..])
            } else {
                gw_rows
                    .as_deref_mut()
                    .map(|g| zeroed_uninit(&mut g[r * numel..(r + 1) * numel]))
            };
            let w = self.row_weight(weight, z);
            self.backward_row(coefs, x1, x2, w, g, g1_row, g2_row, gw_row, s);
        }
        shared
    }

    /// [`Self::backward_chunk`] compiled for AVX2, as [`Self::forward_chunk_avx2`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::type_complexity)]
    fn backward_chunk_avx2<T: Real>(
        &self,
        a: (&[Coefficients<T>], &[T], &[T], &[T], &[T]),
        rows: (usize, usize),
        grads: [Option<&mut [MaybeUninit<T>]>; 3],
        want_gw: bool,
        ws: &mut Workspace<T>,
    ) -> Vec<T> {
        self.backward_chunk::<T, true>(a, rows, grads, want_gw, ws)
    }

    /// One row of the backward pass, accumulating into the gradients (zeroed by the caller).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn backward_row<T: Real>(
        &self,
        coefs: &[Coefficients<T>],
        x1: &[T],
        x2: &[T],
        w: &[T],
        g: &[T],
        mut g1: Option<&mut [T]>,
        mut g2: Option<&mut [T]>,
        mut gw: Option<&mut [T]>,
        s: &mut Scratch<T>,
    ) {
        for &(offset, mo, d3, at) in &self.uvw_blocks {
            for (o, row) in g[offset..offset + mo * d3].chunks_exact(d3).enumerate() {
                for (k, &y) in row.iter().enumerate() {
                    s.outt[at + k * mo + o] = y;
                }
            }
        }
        for (p, c) in self.paths.iter().zip(coefs) {
            match p.mode {
                ConnectionMode::Uvu => {
                    for v in 0..p.m2 {
                        let (start, end) = (p.in2 + v * p.d2, p.in2 + (v + 1) * p.d2);
                        contract_x2(p, &c.forward, &x2[start..end], &mut s.y);
                        let grads = (g1.as_deref_mut(), gw.as_deref_mut(), &mut s.dots);
                        dispatch_dims!(p.d1, p.d3, uvu_backward, (p, &s.y, x1, w, g, v, grads));
                        if let Some(g2) = g2.as_deref_mut() {
                            // g2[v, j] += sum c D[i, k], D[i, k] = sum_u x1[u, i] h_u[k].
                            let g2v = &mut g2[start..end];
                            for (idx, &cv) in p.forward.idx.iter().zip(&c.forward) {
                                g2v[idx[1] as usize] +=
                                    cv * s.dots[idx[0] as usize * p.d3 + idx[2] as usize];
                            }
                        }
                    }
                }
                ConnectionMode::Uvw => {
                    for v in 0..p.m2 {
                        let (start, end) = (p.in2 + v * p.d2, p.in2 + (v + 1) * p.d2);
                        contract_x2(p, &c.forward, &x2[start..end], &mut s.y);
                        let grads = (g1.as_deref_mut(), gw.as_deref_mut(), &mut s.dots);
                        dispatch_dims!(
                            p.d1,
                            p.d3,
                            uvw_backward,
                            (p, &s.y, x1, w, &s.outt, v, grads)
                        );
                        if let Some(g2) = g2.as_deref_mut() {
                            scatter_dots(p, &c.forward, &s.dots, &mut g2[start..end]);
                        }
                    }
                }
                _ => backward_path(
                    p,
                    c,
                    x1,
                    x2,
                    w,
                    g,
                    g1.as_deref_mut(),
                    g2.as_deref_mut(),
                    gw.as_deref_mut(),
                    &mut s.t,
                    &mut s.h,
                ),
            }
        }
    }
}

/// A worker's buffers, made once per rayon job and reused by its tasks: the lane
/// kernels' (with shared weights splatted across the lanes) and the row kernels'.
type Workspace<T> = (LaneBuffers<T>, Scratch<T>);

impl TensorProductPlan {
    /// A [`Workspace`] for the forward (or, when `backward`, the backward) of `batch` rows
    /// with `weight`. A batch of fewer than eight rows runs on the row kernels alone, so
    /// its lane buffers stay empty (nothing to allocate or splat per call).
    fn workspace<T: Real>(&self, weight: &[T], backward: bool, batch: usize) -> Workspace<T> {
        let mut b = if batch >= L {
            LaneBuffers::new(self, backward)
        } else {
            LaneBuffers::default()
        };
        if self.shared_weights {
            b.splat_weights(weight);
        }
        (b, Scratch::new(self))
    }
}

/// Buffers of the row kernels, reused from row to row.
pub(super) struct Scratch<T> {
    outt: Vec<T>,
    t: Vec<T>,
    h: Vec<T>,
    y: Vec<T>,
    dots: Vec<T>,
}

impl<T: Real> Scratch<T> {
    pub(super) fn new(tp: &TensorProductPlan) -> Self {
        let max = |f: &dyn Fn(&PathPlan) -> usize| tp.paths.iter().map(f).max().unwrap_or(0);
        let (d3, d13) = (max(&|p| p.d3), max(&|p| p.d1 * p.d3));
        let z = T::zero();
        Scratch {
            outt: vec![z; tp.uvw_scratch],
            t: vec![z; d3],
            h: vec![z; d3],
            y: vec![z; d13],
            dots: vec![z; d13],
        }
    }
}

/// Calls `f::<T, D1, D3>` (or `f::<G.., D1, D3>` with the leading generic arguments `[G..,]`
/// given) with the irrep dimensions as constants for `l <= 3` (the compiler then unrolls
/// the small matrix products), and `f::<.., 0, 0>` (run-time sizes) otherwise.
macro_rules! dispatch_dims {
    ($d1:expr, $d3:expr, $f:ident, ($($arg:expr),*)) => {
        dispatch_dims!($d1, $d3, $f[T,], ($($arg),*))
    };
    ($d1:expr, $d3:expr, $f:ident[$($g:tt)*], ($($arg:expr),*)) => {
        match ($d1, $d3) {
            (1, 1) => $f::<$($g)* 1, 1>($($arg),*),
            (1, 3) => $f::<$($g)* 1, 3>($($arg),*),
            (1, 5) => $f::<$($g)* 1, 5>($($arg),*),
            (1, 7) => $f::<$($g)* 1, 7>($($arg),*),
            (3, 1) => $f::<$($g)* 3, 1>($($arg),*),
            (3, 3) => $f::<$($g)* 3, 3>($($arg),*),
            (3, 5) => $f::<$($g)* 3, 5>($($arg),*),
            (3, 7) => $f::<$($g)* 3, 7>($($arg),*),
            (5, 1) => $f::<$($g)* 5, 1>($($arg),*),
            (5, 3) => $f::<$($g)* 5, 3>($($arg),*),
            (5, 5) => $f::<$($g)* 5, 5>($($arg),*),
            (5, 7) => $f::<$($g)* 5, 7>($($arg),*),
            (7, 1) => $f::<$($g)* 7, 1>($($arg),*),
            (7, 3) => $f::<$($g)* 7, 3>($($arg),*),
            (7, 5) => $f::<$($g)* 7, 5>($($arg),*),
            (7, 7) => $f::<$($g)* 7, 7>($($arg),*),
            _ => $f::<$($g)* 0, 0>($($arg),*),
        }
    };
}
pub(super) use dispatch_dims;

/// `y[k, i] = sum_j c x2[v, j]` over the path's nonzeros (stored `[d3][d1]`, so each
/// output component is a contiguous dot with `x1[u]`): the `x2` half of a path.
#[inline(always)]
pub(super) fn contract_x2<T: Real>(p: &PathPlan, coef: &[T], x2v: &[T], y: &mut [T]) {
    let y = &mut y[..p.d1 * p.d3];
    y.fill(T::zero());
    for (idx, &c) in p.forward.idx.iter().zip(coef) {
        y[idx[2] as usize * p.d1 + idx[0] as usize] += c * x2v[idx[1] as usize];
    }
}

/// `D1` and `D3` as constants (`0` means the run-time `d1`, `d3`).
#[inline(always)]
pub(super) fn dims<const D1: usize, const D3: usize>(p: &PathPlan) -> (usize, usize) {
    if D1 == 0 { (p.d1, p.d3) } else { (D1, D3) }
}

/// `uvu` for one `v`: `out[u, k] += W[u, v] sum_i x1[u, i] y[i, k]`, a `(1 x d1)(d1 x d3)`
/// product per channel `u`, with `y` in registers when the sizes are constants.
#[inline(always)]
fn uvu_forward<T: Real, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    v: usize,
    out: &mut [T],
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2) = (p.m1, p.m2);
    let y = &y[..d1 * d3];
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let out = &mut out[p.out..p.out + m1 * d3];
    let mut acc = [T::zero(); 8];
    for (u, (xu, ou)) in x1
        .chunks_exact(d1)
        .zip(out.chunks_exact_mut(d3))
        .enumerate()
    {
        if D3 == 0 {
            for (k, o) in ou.iter_mut().enumerate() {
                let a = dot(xu, &y[k * d1..(k + 1) * d1]);
                *o += a * if p.has_weight {
                    w[p.weight_offset + u * m2 + v]
                } else {
                    T::one()
                };
            }
            continue;
        }
        acc[..d3].fill(T::zero());
        for i in 0..d1 {
            let xi = xu[i];
            for k in 0..d3 {
                acc[k] += xi * y[k * d1 + i];
            }
        }
        let s = if p.has_weight {
            w[p.weight_offset + u * m2 + v]
        } else {
            T::one()
        };
        for k in 0..d3 {
            ou[k] += s * acc[k];
        }
    }
}

/// The backward of [`uvu_forward`]: with `h = W[u, v] g[u]`, `g1[u, i] += sum_k y[i, k] h[k]`,
/// `gW[u, v] += g[u] . (x1[u] y)`, and `dots[i, k] = sum_u x1[u, i] h[k]` for the caller's
/// `g2`.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn uvu_backward<T: Real, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    g: &[T],
    v: usize,
    grads: (Option<&mut [T]>, Option<&mut [T]>, &mut Vec<T>),
) {
    let (g1, mut gw, dots) = grads;
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2) = (p.m1, p.m2);
    let y = &y[..d1 * d3];
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let g = &g[p.out..p.out + m1 * d3];
    let dots = &mut dots[..d1 * d3];
    dots.fill(T::zero());
    let mut g1 = g1.map(|g1| &mut g1[p.in1..p.in1 + m1 * d1]);
    let weighted = p.has_weight;
    for (u, (xu, gu)) in x1.chunks_exact(d1).zip(g.chunks_exact(d3)).enumerate() {
        let wi = p.weight_offset + u * m2 + v;
        let s = if weighted { w[wi] } else { T::one() };
        if let (Some(gw), true) = (gw.as_deref_mut(), weighted) {
            let mut total = T::zero();
            for k in 0..d3 {
                let a = dot(xu, &y[k * d1..(k + 1) * d1]);
                total += a * gu[k];
            }
            gw[wi] += total;
        }
        if let Some(g1) = g1.as_deref_mut() {
            let g1u = &mut g1[u * d1..(u + 1) * d1];
            for (k, &g) in gu.iter().enumerate() {
                axpy(g1u, s * g, &y[k * d1..(k + 1) * d1]);
            }
        }
        for i in 0..d1 {
            let xs = xu[i] * s;
            for k in 0..d3 {
                dots[i * d3 + k] += xs * gu[k];
            }
        }
    }
}

/// `uvw` for one `v`: `t_u = x1[u] y` (a `(1 x d1)(d1 x d3)` product, `y` from
/// [`contract_x2`]), then `outT[k][w] += t_u[k] W[u, v, w]`: every weight row is read once,
/// as contiguous axpys over `w`.
#[inline(always)]
fn uvw_forward<T: Real, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    v: usize,
    outt: &mut [T],
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2, mo) = (p.m1, p.m2, p.mo);
    let y = &y[..d1 * d3];
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let ot = &mut outt[p.outt..p.outt + d3 * mo];
    let mut t = [T::zero(); 8];
    let mut t_dyn = vec![T::zero(); if D3 == 0 { d3 } else { 0 }];
    for (u, xu) in x1.chunks_exact(d1).enumerate() {
        let t = if D3 == 0 {
            &mut t_dyn[..]
        } else {
            &mut t[..d3]
        };
        for (k, tk) in t.iter_mut().enumerate() {
            *tk = dot(xu, &y[k * d1..(k + 1) * d1]);
        }
        let at = p.weight_offset + (u * m2 + v) * mo;
        let wrow = &w[at..at + mo];
        for (otk, &tk) in ot.chunks_exact_mut(mo).zip(t.iter()) {
            axpy(otk, tk, wrow);
        }
    }
}

/// `y += a x`.
#[inline(always)]
pub(super) fn axpy<T: Real>(y: &mut [T], a: T, x: &[T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
}

#[inline(always)]
pub(super) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

/// The backward of [`uvw_forward`] for one `v`, with the output gradient transposed
/// (`gT[k][w]`): `h_u[k] = W[u, v, :] . gT[k]`, `g1[u, i] += sum_k y[i, k] h_u[k]`,
/// `gW[u, v, :] += t_u[k] gT[k]`, and `dots[i, k] = sum_u x1[u, i] h_u[k]` for the caller's
/// `g2`.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn uvw_backward<T: Real, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    gt: &[T],
    v: usize,
    grads: (Option<&mut [T]>, Option<&mut [T]>, &mut Vec<T>),
) {
    let (g1, mut gw, dots) = grads;
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2, mo) = (p.m1, p.m2, p.mo);
    let y = &y[..d1 * d3];
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let gt = &gt[p.outt..p.outt + d3 * mo];
    let dots = &mut dots[..d1 * d3];
    dots.fill(T::zero());
    let mut g1 = g1.map(|g1| &mut g1[p.in1..p.in1 + m1 * d1]);
    let (mut h, mut t) = ([T::zero(); 8], [T::zero(); 8]);
    let (mut h_dyn, mut t_dyn) = (
        vec![T::zero(); if D3 == 0 { d3 } else { 0 }],
        vec![T::zero(); if D3 == 0 { d3 } else { 0 }],
    );
    for (u, xu) in x1.chunks_exact(d1).enumerate() {
        let (h, t) = if D3 == 0 {
            (&mut h_dyn[..], &mut t_dyn[..])
        } else {
            (&mut h[..d3], &mut t[..d3])
        };
        let at = p.weight_offset + (u * m2 + v) * mo;
        let wrow = &w[at..at + mo];
        for (hk, gtk) in h.iter_mut().zip(gt.chunks_exact(mo)) {
            *hk = dot(wrow, gtk);
        }
        if let Some(gw) = gw.as_deref_mut() {
            for (k, tk) in t.iter_mut().enumerate() {
                *tk = dot(xu, &y[k * d1..(k + 1) * d1]);
            }
            let gw_row = &mut gw[at..at + mo];
            for (&tk, gtk) in t.iter().zip(gt.chunks_exact(mo)) {
                axpy(gw_row, tk, gtk);
            }
        }
        if let Some(g1) = g1.as_deref_mut() {
            let g1u = &mut g1[u * d1..(u + 1) * d1];
            for (k, &hk) in h.iter().enumerate() {
                axpy(g1u, hk, &y[k * d1..(k + 1) * d1]);
            }
        }
        for (i, &x) in xu.iter().enumerate() {
            for (k, &hk) in h.iter().enumerate() {
                dots[i * d3 + k] += x * hk;
            }
        }
    }
}

/// `g2[v, j] += sum_{(i, j, k)} c dots[i, k]`: the `x2` gradient of a `uvu` or `uvw` path
/// from the per-`(i, k)` sums over channels.
#[inline(always)]
fn scatter_dots<T: Real>(p: &PathPlan, coef: &[T], dots: &[T], g2v: &mut [T]) {
    for (idx, &cv) in p.forward.idx.iter().zip(coef) {
        g2v[idx[1] as usize] += cv * dots[idx[0] as usize * p.d3 + idx[2] as usize];
    }
}

/// `g`, zeroed.
#[inline(always)]
pub(super) fn zeroed<T: Real>(g: &mut [T]) -> &mut [T] {
    g.fill(T::zero());
    g
}

/// `g` zeroed, as an initialized slice.
pub(super) fn zeroed_uninit<T: Real>(g: &mut [MaybeUninit<T>]) -> &mut [T] {
    g.fill(MaybeUninit::new(T::zero()));
    // SAFETY: every element was just written.
    unsafe { &mut *(g as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// An initialized buffer viewed as possibly uninitialized, for the kernels that write every
/// element before reading it.
pub(super) fn as_uninit<T>(g: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout; the kernels only ever store initialized
    // values through this view, so `g` stays initialized.
    unsafe { &mut *(g as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// A buffer of `len` uninitialized elements.
fn uninit_vec<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` needs no initialization; the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// The buffer as initialized values.
///
/// # Safety
///
/// Every element of `v` must have been written.
unsafe fn assume_init_vec<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: same layout, length and capacity; the caller guarantees initialization.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) }
}

/// Splits an optional buffer into `chunks` consecutive pieces of `size` (the last shorter).
fn split<T>(buffer: Option<&mut [T]>, size: usize, chunks: usize) -> Vec<Option<&mut [T]>> {
    match buffer {
        Some(b) if size > 0 => b.chunks_mut(size).map(Some).collect(),
        _ => (0..chunks).map(|_| None).collect(),
    }
}

/// One path, one row: `out += path(x1, x2; w)`.
#[inline]
fn forward_path<T: Real>(
    p: &PathPlan,
    c: &Coefficients<T>,
    x1: &[T],
    x2: &[T],
    w: &[T],
    out: &mut [T],
    t: &mut [T],
) {
    let (d1, d2, d3) = (p.d1, p.d2, p.d3);
    let w = &w[p.weight_offset..];
    let out = &mut out[p.out..p.out + p.mo * d3];
    let t = &mut t[..d3];
    for &(u, v, target) in &p.pairs {
        let (u, v) = (u as usize, v as usize);
        t.fill(T::zero());
        let a = &x1[p.in1 + u * d1..p.in1 + (u + 1) * d1];
        let b = &x2[p.in2 + v * d2..p.in2 + (v + 1) * d2];
        contract(&p.forward, &c.forward, a, b, t);
        match target {
            Targets::One { o, w: wi } => {
                let s = wi.map_or(T::one(), |wi| w[wi as usize]);
                let o = o as usize;
                out[o * d3..(o + 1) * d3]
                    .iter_mut()
                    .zip(t.iter())
                    .for_each(|(y, &x)| *y += s * x);
            }
            Targets::All { w_base } => {
                let ws = &w[w_base as usize..w_base as usize + p.mo];
                for (y, &s) in out.chunks_exact_mut(d3).zip(ws) {
                    y.iter_mut().zip(t.iter()).for_each(|(y, &x)| *y += s * x);
                }
            }
        }
    }
}

/// One path, one row: accumulate the gradients of `<g, path(x1, x2; w)>`.
#[inline]
#[allow(clippy::too_many_arguments)]
fn backward_path<T: Real>(
    p: &PathPlan,
    c: &Coefficients<T>,
    x1: &[T],
    x2: &[T],
    w: &[T],
    g: &[T],
    mut g1: Option<&mut [T]>,
    mut g2: Option<&mut [T]>,
    mut gw: Option<&mut [T]>,
    t: &mut [T],
    h: &mut [T],
) {
    let (d1, d2, d3) = (p.d1, p.d2, p.d3);
    let w = &w[p.weight_offset..];
    let g = &g[p.out..p.out + p.mo * d3];
    let (t, h) = (&mut t[..d3], &mut h[..d3]);
    for &(u, v, target) in &p.pairs {
        let (u, v) = (u as usize, v as usize);
        let a = &x1[p.in1 + u * d1..p.in1 + (u + 1) * d1];
        let b = &x2[p.in2 + v * d2..p.in2 + (v + 1) * d2];
        // h = sum_o W g[o], and the weight gradient t . g[o].
        h.fill(T::zero());
        let weighted = !matches!(target, Targets::One { w: None, .. });
        if let (Some(gw), true) = (gw.as_deref_mut(), weighted) {
            t.fill(T::zero());
            contract(&p.forward, &c.forward, a, b, t);
            match target {
                Targets::One { o, w: Some(wi) } => {
                    let o = o as usize;
                    gw[p.weight_offset + wi as usize] += dot(t, &g[o * d3..(o + 1) * d3]);
                }
                Targets::All { w_base } => {
                    for (o, go) in g.chunks_exact(d3).enumerate() {
                        gw[p.weight_offset + w_base as usize + o] += dot(t, go);
                    }
                }
                Targets::One { w: None, .. } => {}
            }
        }
        if g1.is_none() && g2.is_none() {
            continue;
        }
        match target {
            Targets::One { o, w: wi } => {
                let s = wi.map_or(T::one(), |wi| w[wi as usize]);
                let o = o as usize;
                h.iter_mut()
                    .zip(&g[o * d3..(o + 1) * d3])
                    .for_each(|(h, &x)| *h = s * x);
            }
            Targets::All { w_base } => {
                let ws = &w[w_base as usize..w_base as usize + p.mo];
                for (go, &s) in g.chunks_exact(d3).zip(ws) {
                    h.iter_mut().zip(go).for_each(|(h, &x)| *h += s * x);
                }
            }
        }
        if let Some(g1) = g1.as_deref_mut() {
            contract(
                &p.backward1,
                &c.backward1,
                b,
                h,
                &mut g1[p.in1 + u * d1..p.in1 + (u + 1) * d1],
            );
        }
        if let Some(g2) = g2.as_deref_mut() {
            contract(
                &p.backward2,
                &c.backward2,
                a,
                h,
                &mut g2[p.in2 + v * d2..p.in2 + (v + 1) * d2],
            );
        }
    }
}
