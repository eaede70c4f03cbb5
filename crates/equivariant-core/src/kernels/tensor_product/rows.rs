//! The row kernels of a [`TensorProductPlan`]: one row at a time (the last `< 8` rows of a
//! chunk, and every edge of the per-edge convolution), over each path's Clebsch-Gordan
//! nonzeros.
//!
//! A `uvu` or `uvw` path contracts its list with one `x2` block first (`y`, [`contract_x2`])
//! and then runs small dense products with every `x1` channel, by the instance its plan
//! chose ([`PathKernel`], from the tables of [`RowKernels`]: dimensions as constants for
//! `l <= 3`; `uvu` of degree 4 to 7 by the kernels of [`wide`]); the other modes go pair by
//! pair.

use super::wide::{self, wide_uvu};
#[cfg(target_arch = "x86_64")]
use super::wide_avx512;
use super::{ContractedKernels, KernelTables};
use crate::Real;
use crate::kernels::gemm::{axpy, dot, madd};
use crate::kernels::simd::Simd;
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{Avx512, as_f32, as_f32_mut};
use crate::o3::tensor_product::{Contraction, PathKernel, PathPlan, Targets, TensorProductPlan};

/// The gradients a contracted row kernel accumulates: `x1`'s, the weights', and the
/// `dots[i, k]` from which the caller forms `x2`'s.
type RowGrads<'a, T> = (Option<&'a mut [T]>, Option<&'a mut [T]>, &'a mut Vec<T>);

/// One `v` of a contracted path's forward on one row: `(path, y, x1, w, v, t, out)`, `t` a
/// scratch of `m1 d3` values.
type RowForward<T> = unsafe fn(&PathPlan, &[T], &[T], &[T], usize, &mut [T], &mut [T]);

/// One `v` of a contracted path's backward on one row: `(path, y, x1, w, g, v, t, grads)`,
/// `t` a scratch of `16 m1` values.
type RowBackward<T> =
    unsafe fn(&PathPlan, &[T], &[T], &[T], &[T], usize, &mut [T], RowGrads<'_, T>);

/// The contracted row kernels of one instruction set.
type RowKernels<T> = ContractedKernels<RowForward<T>, RowBackward<T>>;

impl<T: Real> KernelTables for RowKernels<T> {
    const PORTABLE: &'static Self = &ContractedKernels {
        uvu_forward: dims_table!(portable::uvu_forward[T,]),
        uvw_forward: dims_table!(portable::uvw_forward[T,]),
        uvu_backward: dims_table!(portable::uvu_backward[T,]),
        uvw_backward: dims_table!(portable::uvw_backward[T,]),
    };

    #[cfg(target_arch = "x86_64")]
    const AVX2: &'static Self = &ContractedKernels {
        uvu_forward: dims_table!(avx2::uvu_forward[T,]),
        uvw_forward: dims_table!(avx2::uvw_forward[T,]),
        uvu_backward: dims_table!(avx2::uvu_backward[T,]),
        uvw_backward: dims_table!(avx2::uvw_backward[T,]),
    };

    // `uvu` instances for AVX-512, `uvw` ones for AVX2 (see `KernelTables::AVX512`).
    #[cfg(target_arch = "x86_64")]
    const AVX512: &'static Self = &ContractedKernels {
        uvu_forward: dims_table!(avx512::uvu_forward[T,]),
        uvw_forward: dims_table!(avx2::uvw_forward[T,]),
        uvu_backward: dims_table!(avx512::uvu_backward[T,]),
        uvw_backward: dims_table!(avx2::uvw_backward[T,]),
    };
}

simd_instances! {
    portable {
        uvu_forward[false,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], v: usize, t: &mut [T], out: &mut [T]);
        uvw_forward[false,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], v: usize, t: &mut [T], outt: &mut [T]);
        uvu_backward[false,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], g: &[T], v: usize, t: &mut [T], grads: RowGrads<'_, T>);
        uvw_backward[](p: &PathPlan, y: &[T], x1: &[T], w: &[T], gt: &[T], v: usize, t: &mut [T], grads: RowGrads<'_, T>);
    }
}

simd_instances! {
    avx2("avx2,fma", "Avx2Fma") {
        uvu_forward[true,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], v: usize, t: &mut [T], out: &mut [T]);
        uvw_forward[true,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], v: usize, t: &mut [T], outt: &mut [T]);
        uvu_backward[true,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], g: &[T], v: usize, t: &mut [T], grads: RowGrads<'_, T>);
        uvw_backward[](p: &PathPlan, y: &[T], x1: &[T], w: &[T], gt: &[T], v: usize, t: &mut [T], grads: RowGrads<'_, T>);
    }
}

simd_instances! {
    avx512("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma", "Avx512") {
        uvu_forward[true,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], v: usize, t: &mut [T], out: &mut [T]);
        uvu_backward[true,](p: &PathPlan, y: &[T], x1: &[T], w: &[T], g: &[T], v: usize, t: &mut [T], grads: RowGrads<'_, T>);
    }
}

/// A path's coefficients cast to the data type.
pub(crate) struct Coefficients<T> {
    pub(crate) forward: Vec<T>,
    /// For a [`wide_uvu`] path, the forward list dense, `[d2][d1][16]` (`k` padded to 16):
    /// `yT = sum_j x2[v, j] C[j]` is then sixteen-wide vector work.
    forward_wide: Vec<T>,
    /// For a [`wide_uvu`] path, the forward list dense and transposed, `[d2][d3][16]` (`i`
    /// padded to 16): the backward's `y = sum_j x2[v, j] C[j]^T`.
    backward_wide: Vec<T>,
    pub(crate) backward1: Vec<T>,
    pub(crate) backward2: Vec<T>,
}

fn cast<T: Real>(c: &Contraction) -> Vec<T> {
    c.coef.iter().map(|&x| T::from_f64(x)).collect()
}

/// `out[r] += c a[p] b[q]` over a sparse Clebsch-Gordan list.
#[inline(always)]
pub(crate) fn contract<T: Real>(c: &Contraction, coef: &[T], a: &[T], b: &[T], out: &mut [T]) {
    for (idx, &cv) in c.idx.iter().zip(coef) {
        out[idx[2] as usize] += cv * a[idx[0] as usize] * b[idx[1] as usize];
    }
}

impl TensorProductPlan {
    pub(crate) fn coefficients<T: Real>(&self) -> Vec<Coefficients<T>> {
        self.paths
            .iter()
            .map(|p| Coefficients {
                forward: cast(&p.forward),
                forward_wide: wide::dense(p, false),
                backward_wide: wide::dense(p, true),
                backward1: cast(&p.backward1),
                backward2: cast(&p.backward2),
            })
            .collect()
    }

    /// One row of the forward pass, added to `out`, with the contracted kernels of `isa`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_row<T: Real>(
        &self,
        isa: Simd,
        coefs: &[Coefficients<T>],
        x1: &[T],
        x2: &[T],
        w: &[T],
        out: &mut [T],
        s: &mut Scratch<T>,
    ) {
        let kernels = RowKernels::<T>::of(isa);
        s.outt.fill(T::zero());
        for (p, c) in self.paths.iter().zip(coefs) {
            let Some(kernel) = kernels.forward(p.kernel) else {
                forward_path(p, c, x1, x2, w, out, &mut s.t);
                continue;
            };
            // `uvw` paths accumulate into the transposed scratch, `uvu` ones into `out`.
            let out = if matches!(p.kernel, PathKernel::Uvw(_)) {
                &mut s.outt[..]
            } else {
                &mut *out
            };
            for v in 0..p.m2 {
                let x2v = &x2[p.in2 + v * p.d2..p.in2 + (v + 1) * p.d2];
                if c.forward_wide.is_empty() {
                    contract_x2(p, &c.forward, x2v, &mut s.y);
                } else {
                    #[cfg(target_arch = "x86_64")]
                    if let Simd::Avx512(token) = isa
                        && forward_wide_avx512(token, p, (&c.forward_wide, x2v), x1, w, v, out)
                    {
                        continue;
                    }
                    wide::contract_x2(&c.forward_wide, x2v, &mut s.y);
                }
                // SAFETY: `kernel` is from the table of `isa`, whose entries run on this CPU
                // (AVX2 instances only with a token).
                unsafe { kernel(p, &s.y, x1, w, v, &mut s.t, out) };
            }
        }
        for &(offset, mo, d3, at) in &self.uvw_blocks {
            let out = &mut out[offset..offset + mo * d3];
            if d3 == 1 {
                // Scalars: `outT` is `out`'s own layout.
                out.iter_mut()
                    .zip(&s.outt[at..at + mo])
                    .for_each(|(y, &x)| *y += x);
                continue;
            }
            for (o, row) in out.chunks_exact_mut(d3).enumerate() {
                for (k, y) in row.iter_mut().enumerate() {
                    *y += s.outt[at + k * mo + o];
                }
            }
        }
    }

    /// One row of the backward pass, accumulating into the gradients (zeroed by the caller),
    /// with the contracted kernels of `isa`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn backward_row<T: Real>(
        &self,
        isa: Simd,
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
        let kernels = RowKernels::<T>::of(isa);
        for (p, c) in self.paths.iter().zip(coefs) {
            match kernels.backward(p.kernel) {
                Some(kernel) => {
                    // `uvw` paths read the output gradient transposed, from the scratch.
                    let g = if matches!(p.kernel, PathKernel::Uvw(_)) {
                        &s.outt[..]
                    } else {
                        g
                    };
                    // A `wide_uvu` path takes `y` transposed and padded (`[d3][16]`) and
                    // leaves `dots` padded (`[d1][16]`), both for sixteen-wide vector work.
                    let wide = !c.backward_wide.is_empty();
                    for v in 0..p.m2 {
                        let (start, end) = (p.in2 + v * p.d2, p.in2 + (v + 1) * p.d2);
                        let x2v = &x2[start..end];
                        // In `f32` on AVX-512 a wide path runs its own kernel for all three
                        // gradients, which makes `y` in registers; elsewhere `y` and the
                        // sums for `x2`'s gradient go through the scratch.
                        #[cfg(target_arch = "x86_64")]
                        if let Simd::Avx512(token) = isa
                            && wide
                            && backward_wide_avx512(
                                token,
                                p,
                                ((&c.backward_wide, x2v), x1, w, g, v),
                                (g1.as_deref_mut(), gw.as_deref_mut()),
                                (
                                    &c.forward_wide,
                                    g2.as_deref_mut().map(|g2| &mut g2[start..end]),
                                ),
                            )
                        {
                            continue;
                        }
                        if wide {
                            wide::contract_x2(&c.backward_wide, x2v, &mut s.y);
                        } else {
                            contract_x2(p, &c.forward, x2v, &mut s.y);
                        }
                        let grads = (g1.as_deref_mut(), gw.as_deref_mut(), &mut s.dots);
                        // SAFETY: as in `forward_row`, `kernel` runs on this CPU.
                        unsafe { kernel(p, &s.y, x1, w, g, v, &mut s.t, grads) };
                        let Some(g2) = g2.as_deref_mut() else {
                            continue;
                        };
                        if wide {
                            wide::contract_dots(&c.forward_wide, &s.dots, &mut g2[start..end]);
                        } else {
                            scatter_dots(p, &c.forward, &s.dots, &mut g2[start..end]);
                        }
                    }
                }
                None => backward_path(
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

/// One `v` of a [`wide_uvu`] path's forward in `f32` on AVX-512 ([`wide_avx512::forward`]),
/// from its dense list and `x2`'s block; `false`, having done nothing, for `f64` or sizes
/// with no instance.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn forward_wide_avx512<T: Real>(
    token: Avx512,
    p: &PathPlan,
    (dense, x2v): (&[T], &[T]),
    x1: &[T],
    w: &[T],
    v: usize,
    out: &mut [T],
) -> bool {
    let (Some(dense), Some(x2v), Some(x1), Some(w), Some(out)) = (
        as_f32(dense),
        as_f32(x2v),
        as_f32(x1),
        as_f32(w),
        as_f32_mut(out),
    ) else {
        return false;
    };
    let (m1, d1, d3) = (p.m1, p.d1, p.d3);
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let out = &mut out[p.out..p.out + m1 * d3];
    let ws = p.has_weight.then(|| &w[p.weight_offset + v..]);
    wide_avx512::forward(token, (dense, x2v), x1, ws, p.m2, (d1, d3), out)
}

/// One `v` of a [`wide_uvu`] path's backward in `f32` on AVX-512 ([`wide_avx512::backward`]):
/// `x1`'s, the weights' and `x2`'s (block `v`, with the path's dense list) gradients
/// accumulated where given; `false`, having done nothing, for `f64` or sizes with no
/// instance.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::type_complexity)]
fn backward_wide_avx512<T: Real>(
    token: Avx512,
    p: &PathPlan,
    ((dense, x2v), x1, w, g, v): ((&[T], &[T]), &[T], &[T], &[T], usize),
    (g1, gw): (Option<&mut [T]>, Option<&mut [T]>),
    (forward_dense, g2v): (&[T], Option<&mut [T]>),
) -> bool {
    let (Some(dense), Some(x2v), Some(x1), Some(w), Some(g), Some(forward_dense)) = (
        as_f32(dense),
        as_f32(x2v),
        as_f32(x1),
        as_f32(w),
        as_f32(g),
        as_f32(forward_dense),
    ) else {
        return false;
    };
    let (m1, d1, d3) = (p.m1, p.d1, p.d3);
    let at = p.weight_offset + v;
    let ws = p.has_weight.then(|| &w[at..]);
    let grads = (
        g1.and_then(as_f32_mut)
            .map(|g1| &mut g1[p.in1..p.in1 + m1 * d1]),
        gw.filter(|_| p.has_weight)
            .and_then(as_f32_mut)
            .map(|gw| &mut gw[at..]),
        g2v.and_then(as_f32_mut).map(|g2v| (forward_dense, g2v)),
    );
    let (x1, g) = (&x1[p.in1..p.in1 + m1 * d1], &g[p.out..p.out + m1 * d3]);
    wide_avx512::backward(token, (dense, x2v), x1, ws, p.m2, (d1, d3), g, grads)
}

/// Buffers of the row kernels, reused from row to row.
pub(crate) struct Scratch<T> {
    outt: Vec<T>,
    t: Vec<T>,
    h: Vec<T>,
    y: Vec<T>,
    dots: Vec<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            outt: Vec::new(),
            t: Vec::new(),
            h: Vec::new(),
            y: Vec::new(),
            dots: Vec::new(),
        }
    }
}

impl<T: Real> Scratch<T> {
    pub(crate) fn new(tp: &TensorProductPlan) -> Self {
        let mut s = Scratch::default();
        s.fit(tp);
        s
    }

    /// Every buffer resized (and zeroed) for `tp`, as [`Scratch::new`] makes them, in the
    /// allocations it already has.
    pub(crate) fn fit(&mut self, tp: &TensorProductPlan) {
        let max = |f: &dyn Fn(&PathPlan) -> usize| tp.paths.iter().map(f).max().unwrap_or(0);
        let (d3, d13) = (max(&|p| p.d3), max(&|p| p.d1 * p.d3));
        let wide = |f: &dyn Fn(&PathPlan) -> usize| max(&|p| if wide_uvu(p) { f(p) } else { 0 });
        // `y` holds `y[k][i]`, or of a `wide_uvu` path the padded `yT[i][k]` (forward) or
        // `y[k][i]` (backward); `dots` of a `wide_uvu` path are padded too.
        let y = d13.max(wide(&|p| 16 * p.d1.max(p.d3)));
        let dots = d13.max(wide(&|p| 16 * p.d1));
        // `t` holds `t[u][k]` of a whole `uvw` path (its forward), one `t[k]`, or the
        // padded `W[u, v] g[u]` of a `wide_uvu` path (its backward).
        let t = max(&|p| p.m1 * p.d3).max(d3).max(wide(&|p| 16 * p.m1));
        let sizes = [
            (&mut self.outt, tp.uvw_scratch),
            (&mut self.t, t),
            (&mut self.h, d3),
            (&mut self.y, y),
            (&mut self.dots, dots),
        ];
        for (v, n) in sizes {
            v.clear();
            v.resize(n, T::zero());
        }
    }
}

/// `y[k, i] = sum_j c x2[v, j]` over the path's nonzeros (stored `[d3][d1]`, so each
/// output component is a contiguous dot with `x1[u]`): the `x2` half of a path.
#[inline(always)]
pub(crate) fn contract_x2<T: Real>(p: &PathPlan, coef: &[T], x2v: &[T], y: &mut [T]) {
    let y = &mut y[..p.d1 * p.d3];
    y.fill(T::zero());
    // The list is sorted by `(k, i, j)`, so each entry's terms are one run: summed in a
    // register and stored once (the same sum, in the same order, as adding each term into
    // `y`, where every term would wait on the store of the one before).
    let mut run = (usize::MAX, T::zero());
    for (idx, &c) in p.forward.idx.iter().zip(coef) {
        let at = idx[2] as usize * p.d1 + idx[0] as usize;
        if at != run.0 {
            if let Some(y) = y.get_mut(run.0) {
                *y = run.1;
            }
            run = (at, T::zero());
        }
        run.1 += c * x2v[idx[1] as usize];
    }
    if let Some(y) = y.get_mut(run.0) {
        *y = run.1;
    }
}

/// `D1` and `D3` as constants (`0` means the run-time `d1`, `d3`).
#[inline(always)]
pub(crate) fn dims<const D1: usize, const D3: usize>(p: &PathPlan) -> (usize, usize) {
    if D1 == 0 { (p.d1, p.d3) } else { (D1, D3) }
}

/// `uvu` for one `v`: `out[u, k] += W[u, v] sum_i x1[u, i] y[i, k]`, a `(1 x d1)(d1 x d3)`
/// product per channel `u`, with `y` in registers when the sizes are constants; a
/// [`wide_uvu`] path (whose `y` is `yT`) runs [`wide::forward`].
#[inline(always)]
fn uvu_forward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    v: usize,
    _t: &mut [T],
    out: &mut [T],
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2) = (p.m1, p.m2);
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let out = &mut out[p.out..p.out + m1 * d3];
    if D1 == 0 && wide_uvu(p) {
        // `y` is `yT` here (`wide::contract_x2`).
        let ws = p.has_weight.then(|| &w[p.weight_offset + v..]);
        wide::forward::<T, FMA>((y, x1, ws, m2, d1, d3), out);
        return;
    }
    let y = &y[..d1 * d3];
    // With constant sizes, eight channels at a time in vector lanes (the same sums per
    // channel as below): the row kernel the plan runs for small `uvu` products
    // (`forward_by_rows`). The channels left over, one by one.
    let blocked = if D3 != 0 { m1 / 8 * 8 } else { 0 };
    let (x1b, x1r) = x1.split_at(blocked * d1);
    let (outb, outr) = out.split_at_mut(blocked * d3);
    for (c, (xs, os)) in x1b
        .chunks_exact(8 * D1.max(1))
        .zip(outb.chunks_exact_mut(8 * D3.max(1)))
        .enumerate()
    {
        let mut acc = [[T::zero(); 8]; 8];
        for i in 0..D1 {
            let xi: [T; 8] = std::array::from_fn(|l| xs[l * D1 + i]);
            for k in 0..D3 {
                let yk = y[k * D1 + i];
                for l in 0..8 {
                    acc[k][l] += xi[l] * yk;
                }
            }
        }
        let s: [T; 8] = std::array::from_fn(|l| {
            if p.has_weight {
                w[p.weight_offset + (c * 8 + l) * m2 + v]
            } else {
                T::one()
            }
        });
        for l in 0..8 {
            for k in 0..D3 {
                os[l * D3 + k] += s[l] * acc[k][l];
            }
        }
    }
    let mut acc = [T::zero(); 8];
    for (u, (xu, ou)) in x1r
        .chunks_exact(d1)
        .zip(outr.chunks_exact_mut(d3))
        .enumerate()
    {
        let u = u + blocked;
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
/// `g2`; a [`wide_uvu`] path (whose `y` is `[d3][16]`) runs [`wide::backward`].
#[inline(always)]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn uvu_backward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    g: &[T],
    v: usize,
    t: &mut [T],
    grads: RowGrads<'_, T>,
) {
    let (g1, mut gw, dots) = grads;
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2) = (p.m1, p.m2);
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let g = &g[p.out..p.out + m1 * d3];
    if D1 == 0 && wide_uvu(p) {
        let at = p.weight_offset + v;
        let ws = p.has_weight.then(|| &w[at..]);
        let gw = gw.filter(|_| p.has_weight).map(|gw| &mut gw[at..]);
        let g1 = g1.map(|g1| &mut g1[p.in1..p.in1 + m1 * d1]);
        wide::backward::<T, FMA>((y, x1, ws, m2, d1, d3), g, (g1, gw, dots), t);
        return;
    }
    let y = &y[..d1 * d3];
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
                axpy::<T, false>(g1u, s * g, &y[k * d1..(k + 1) * d1]);
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

/// `uvw` for one `v`: `t[u] = x1[u] y` for every `u` (a `(1 x d1)(d1 x d3)` product, `y`
/// from [`contract_x2`], into the scratch `t`), then `outT[k][w] += sum_u t[u][k] W[u, v, w]`
/// over blocks of output channels whose `d3` sums stay in vector registers while `u` runs:
/// every weight row (contiguous over `w`) is read once, and `outT` once per block, where an
/// axpy per `(u, k)` would load and store it `m1` times.
#[inline(always)]
fn uvw_forward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    v: usize,
    t: &mut [T],
    outt: &mut [T],
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2, mo) = (p.m1, p.m2, p.mo);
    let y = &y[..d1 * d3];
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let t = &mut t[..m1 * d3];
    for (xu, tu) in x1.chunks_exact(d1).zip(t.chunks_exact_mut(d3)) {
        for (k, tk) in tu.iter_mut().enumerate() {
            *tk = dot(xu, &y[k * d1..(k + 1) * d1]);
        }
    }
    let t = &t[..];
    let ot = &mut outt[p.outt..p.outt + d3 * mo];
    // W[u, v, o] sits at `(u m2 + v) mo + o`.
    let wv = &w[p.weight_offset + v * mo..];
    let stride = m2 * mo;
    if D3 == 0 {
        for o in 0..mo {
            for k in 0..d3 {
                let mut acc = T::zero();
                for u in 0..m1 {
                    acc = madd::<T, FMA>(acc, t[u * d3 + k], wv[u * stride + o]);
                }
                ot[k * mo + o] += acc;
            }
        }
        return;
    }
    // Blocks of `OB` vectors of eight channels while they fill about twelve 256-bit
    // registers with `D3` sums each, then one vector (with two or four more channels in the
    // same pass where ten or twelve are left), then the last `< 8` channels.
    let vectors = 12 * 32 / (8 * std::mem::size_of::<T>()) / D3;
    let mut o0 = 0;
    while o0 < mo {
        let a = (t, wv, stride, m1, o0);
        o0 += match (vectors, mo - o0) {
            (12.., 96..) => uvw_out_block::<T, FMA, D3, 12, 8, 0>(a, ot, mo),
            (10.., 80..) => uvw_out_block::<T, FMA, D3, 10, 8, 0>(a, ot, mo),
            (8.., 64..) => uvw_out_block::<T, FMA, D3, 8, 8, 0>(a, ot, mo),
            (6.., 48..) => uvw_out_block::<T, FMA, D3, 6, 8, 0>(a, ot, mo),
            (4.., 32..) => uvw_out_block::<T, FMA, D3, 4, 8, 0>(a, ot, mo),
            (2.., 16..) => uvw_out_block::<T, FMA, D3, 2, 8, 0>(a, ot, mo),
            (_, 10) => uvw_out_block::<T, FMA, D3, 1, 8, 2>(a, ot, mo),
            (_, 12) => uvw_out_block::<T, FMA, D3, 1, 8, 4>(a, ot, mo),
            (_, 8..) => uvw_out_block::<T, FMA, D3, 1, 8, 0>(a, ot, mo),
            (_, 4..) => uvw_out_block::<T, FMA, D3, 1, 4, 0>(a, ot, mo),
            (_, 2..) => uvw_out_block::<T, FMA, D3, 1, 2, 0>(a, ot, mo),
            _ => uvw_out_block::<T, FMA, D3, 1, 1, 0>(a, ot, mo),
        };
    }
}

/// `outT[k][o] += sum_u t[u][k] W[u, v, o]` for the `OB W + W2` channels `o` from `o0`, the
/// sums in `D3 x OB` vectors of `W` lanes and, where `W2 > 0`, `D3` more of `W2` lanes that
/// share each `u`'s weight row and `t[u]` (the last ten or twelve channels in one pass);
/// returns `OB W + W2`.
#[inline(always)]
fn uvw_out_block<
    T: Real,
    const FMA: bool,
    const D3: usize,
    const OB: usize,
    const W: usize,
    const W2: usize,
>(
    (t, wv, stride, m1, o0): (&[T], &[T], usize, usize, usize),
    ot: &mut [T],
    mo: usize,
) -> usize {
    let n = OB * W + W2;
    let (mut acc, mut tail) = ([[[T::zero(); W]; OB]; D3], [[T::zero(); W2]; D3]);
    for u in 0..m1 {
        let tu = &t[u * D3..(u + 1) * D3];
        let wu = &wv[u * stride + o0..u * stride + o0 + n];
        for k in 0..D3 {
            for b in 0..OB {
                for l in 0..W {
                    acc[k][b][l] = madd::<T, FMA>(acc[k][b][l], tu[k], wu[b * W + l]);
                }
            }
            for l in 0..W2 {
                tail[k][l] = madd::<T, FMA>(tail[k][l], tu[k], wu[OB * W + l]);
            }
        }
    }
    for k in 0..D3 {
        let row = &mut ot[k * mo + o0..k * mo + o0 + n];
        // The sums read by constant indices only (an iterator over them measured slower:
        // it kept them in memory in the loop above).
        for b in 0..OB {
            for l in 0..W {
                row[b * W + l] += acc[k][b][l];
            }
        }
        for l in 0..W2 {
            row[OB * W + l] += tail[k][l];
        }
    }
    n
}

/// The backward of [`uvw_forward`] for one `v`, with the output gradient transposed
/// (`gT[k][w]`): `h_u[k] = W[u, v, :] . gT[k]`, `g1[u, i] += sum_k y[i, k] h_u[k]`,
/// `gW[u, v, :] += t_u[k] gT[k]`, and `dots[i, k] = sum_u x1[u, i] h_u[k]` for the caller's
/// `g2`.
#[inline(always)]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn uvw_backward<T: Real, const D1: usize, const D3: usize>(
    p: &PathPlan,
    y: &[T],
    x1: &[T],
    w: &[T],
    gt: &[T],
    v: usize,
    _t: &mut [T],
    grads: RowGrads<'_, T>,
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
                axpy::<T, false>(gw_row, tk, gtk);
            }
        }
        if let Some(g1) = g1.as_deref_mut() {
            let g1u = &mut g1[u * d1..(u + 1) * d1];
            for (k, &hk) in h.iter().enumerate() {
                axpy::<T, false>(g1u, hk, &y[k * d1..(k + 1) * d1]);
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
