//! Lane-major kernels of [`TensorProductPlan`]: eight rows at once, row `r` of the group in
//! vector lane `r` of every operand.
//!
//! A row of a tensor product is hundreds of tiny loops (a `uvw` path is, per `u`, a
//! `(1 x d1)(d1 x d3)` product and `d3` axpys of length `mo`), each too short to fill a
//! vector register, so the row kernels spend their time on loop control and remainders.
//! Here the inputs of eight rows are transposed into `[dim][8]` buffers
//! ([`rows_to_lanes`]), every operation is an eight-wide multiply-add over rows, and
//! every loop length is a property of the path, not of the vector width: the same
//! arithmetic as the row kernels (same sums, per row), with no remainders.
//!
//! Shared weights are splatted across the lanes once per task; per-row weights are
//! transposed with the inputs. The weight gradient is per lane, transposed back (per-row
//! weights) or summed over the lanes (shared weights).

use std::mem::MaybeUninit;

use super::rows::{Coefficients, dims};
use super::{ContractedKernels, KernelTables};
use crate::Real;
use crate::kernels::gemm::{LANES, madd};
use crate::kernels::simd::{Avx2Fma, Simd};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{is_f32, prefetch_line};
use crate::o3::tensor_product::{Contraction, PathPlan, Targets, TensorProductPlan};

/// The inputs of a contracted lane kernel for one `v`: `(x1, w, y, v)`.
type ForwardInputs<'a, T> = (Lanes<'a, T>, Lanes<'a, T>, Lanes<'a, T>, usize);

/// The inputs of a contracted lane kernel's backward for one `v`: `(x1, w, g, y, v)`.
type BackwardInputs<'a, T> = (
    Lanes<'a, T>,
    Lanes<'a, T>,
    Lanes<'a, T>,
    Lanes<'a, T>,
    usize,
);

/// One `v` of a contracted path's forward on a group: `(path, inputs, t, out)`.
type LaneForward<T> = unsafe fn(&PathPlan, ForwardInputs<'_, T>, &mut [Lane<T>], &mut [Lane<T>]);

/// One `v` of a contracted path's backward on a group: `(path, inputs, want, grads)`.
type LaneBackward<T> = unsafe fn(&PathPlan, BackwardInputs<'_, T>, Wanted, LaneGrads<'_, T>);

/// The contracted lane kernels of one instruction set (the AVX2 ones with fused
/// multiply-adds).
type LaneKernels<T> = ContractedKernels<LaneForward<T>, LaneBackward<T>>;

impl<T: Real> KernelTables for LaneKernels<T> {
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
        uvu_forward[false,](p: &PathPlan, a: ForwardInputs<'_, T>, t: &mut [Lane<T>], out: &mut [Lane<T>]);
        uvw_forward[false,](p: &PathPlan, a: ForwardInputs<'_, T>, t: &mut [Lane<T>], out: &mut [Lane<T>]);
        uvu_backward[false,](p: &PathPlan, a: BackwardInputs<'_, T>, want: Wanted, grads: LaneGrads<'_, T>);
        uvw_backward[false,](p: &PathPlan, a: BackwardInputs<'_, T>, want: Wanted, grads: LaneGrads<'_, T>);
    }
}

simd_instances! {
    avx2("avx2,fma", "Avx2Fma") {
        uvu_forward[true,](p: &PathPlan, a: ForwardInputs<'_, T>, t: &mut [Lane<T>], out: &mut [Lane<T>]);
        uvw_forward[true,](p: &PathPlan, a: ForwardInputs<'_, T>, t: &mut [Lane<T>], out: &mut [Lane<T>]);
        uvu_backward[true,](p: &PathPlan, a: BackwardInputs<'_, T>, want: Wanted, grads: LaneGrads<'_, T>);
        uvw_backward[true,](p: &PathPlan, a: BackwardInputs<'_, T>, want: Wanted, grads: LaneGrads<'_, T>);
    }
}

simd_instances! {
    avx512("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma", "Avx512") {
        uvu_forward[true,](p: &PathPlan, a: ForwardInputs<'_, T>, t: &mut [Lane<T>], out: &mut [Lane<T>]);
        uvu_backward[true,](p: &PathPlan, a: BackwardInputs<'_, T>, want: Wanted, grads: LaneGrads<'_, T>);
    }
}

/// Rows per group: one per vector lane.
pub(super) const L: usize = LANES;

/// One value of each of the eight rows of a group.
pub(super) type Lane<T> = [T; L];

/// A buffer of lanes, `[dim][8]`.
type Lanes<'a, T> = &'a [Lane<T>];
type LanesMut<'a, T> = &'a mut [Lane<T>];

/// `acc[r] += a[r] b[r]`.
#[inline(always)]
fn madd_lanes<T: Real, const FMA: bool>(acc: &mut Lane<T>, a: &Lane<T>, b: &Lane<T>) {
    for r in 0..L {
        acc[r] = madd::<T, FMA>(acc[r], a[r], b[r]);
    }
}

/// `acc[r] += a b[r]`.
#[inline(always)]
fn madd_scalar<T: Real, const FMA: bool>(acc: &mut Lane<T>, a: T, b: &Lane<T>) {
    for r in 0..L {
        acc[r] = madd::<T, FMA>(acc[r], a, b[r]);
    }
}

/// `acc[r] += a[r]`.
#[inline(always)]
fn add_lanes<T: Real>(acc: &mut Lane<T>, a: &Lane<T>) {
    for r in 0..L {
        acc[r] += a[r];
    }
}

/// `sum_i a[i] . b[i]`, lane by lane.
#[inline(always)]
fn dot_lanes<T: Real, const FMA: bool>(a: &[Lane<T>], b: &[Lane<T>]) -> Lane<T> {
    let mut acc = [T::zero(); L];
    for (a, b) in a.iter().zip(b) {
        madd_lanes::<T, FMA>(&mut acc, a, b);
    }
    acc
}

/// `dst[j][r] = src[r d + j]`: eight rows of `d` values into lanes. With `avx2` (the caller
/// is an `avx2` function), f32 data moves as 8 x 8 blocks through registers.
#[inline(always)]
pub(super) fn rows_to_lanes<T: Real>(
    avx2: Option<Avx2Fma>,
    src: &[T],
    d: usize,
    dst: &mut [Lane<T>],
) {
    let (src, dst) = (&src[..L * d], &mut dst[..d]);
    // Advanced by the AVX2 blocks (x86-64 only).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut j0 = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = avx2
        && is_f32::<T>()
    {
        while j0 + L <= d {
            // SAFETY: `T` is `f32`; rows `r < 8` of `src` hold `d >= j0 + 8` values and
            // `dst` has `d` lanes of eight; `token` proves the CPU has AVX2.
            unsafe {
                let block = std::array::from_fn(|r| src.as_ptr().add(r * d + j0) as *const f32);
                if j0 % 16 == 0 {
                    // The rows are streamed from memory, eight runs at a time, which the
                    // hardware prefetcher does not follow well; so each run fetches a cache
                    // line `AHEAD` values on, then carries on into the next group's row.
                    let ahead = if j0 + AHEAD < d {
                        AHEAD
                    } else {
                        AHEAD + (L - 1) * d
                    };
                    for p in block {
                        prefetch_line(p.wrapping_add(ahead));
                    }
                }
                transpose8x8(token, block, dst.as_mut_ptr().add(j0) as *mut f32, L);
            }
            j0 += L;
        }
    }
    let _ = avx2;
    for j in j0..d {
        dst[j] = std::array::from_fn(|r| src[r * d + j]);
    }
}

/// `dst[r d + j] = src[j][r]`: lanes back into eight rows of `d` values.
#[inline(always)]
pub(super) fn lanes_to_rows<T: Real>(
    avx2: Option<Avx2Fma>,
    src: &[Lane<T>],
    d: usize,
    dst: &mut [MaybeUninit<T>],
) {
    let (src, dst) = (&src[..d], &mut dst[..L * d]);
    // Advanced by the AVX2 blocks (x86-64 only).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut j0 = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(token) = avx2
        && is_f32::<T>()
    {
        while j0 + L <= d {
            // SAFETY: as in `rows_to_lanes`, with the roles of the buffers exchanged.
            unsafe {
                let block = std::array::from_fn(|c| src.as_ptr().add(j0 + c) as *const f32);
                transpose8x8(token, block, dst.as_mut_ptr().add(j0) as *mut f32, d);
            }
            j0 += L;
        }
    }
    let _ = avx2;
    for j in j0..d {
        for r in 0..L {
            dst[r * d + j] = MaybeUninit::new(src[j][r]);
        }
    }
}

/// How far ahead of the transpose [`rows_to_lanes`] prefetches each row, in values.
#[cfg(target_arch = "x86_64")]
const AHEAD: usize = 512;

/// Writes the transpose of the 8 x 8 block whose row `r` is `rows[r][..8]`: its column `c`
/// to `out[c stride..c stride + 8]`.
///
/// The token proves the CPU has AVX2.
///
/// # Safety
///
/// Each `rows[r]` is readable for 8 values and `out` writable at `c stride + 0..8` for
/// `c < 8`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose8x8(_token: Avx2Fma, rows: [*const f32; 8], out: *mut f32, stride: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the CPU has AVX2 (`_token`); the pointers as the caller's contract says.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(rows[i]));
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let s = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for c in 0..4 {
            _mm256_storeu_ps(
                out.add(c * stride),
                _mm256_permute2f128_ps::<0x20>(s[c], s[c + 4]),
            );
            _mm256_storeu_ps(
                out.add((c + 4) * stride),
                _mm256_permute2f128_ps::<0x31>(s[c], s[c + 4]),
            );
        }
    }
}

/// The group's operands and results, `[dim][8]` each.
#[derive(Default)]
pub(super) struct LaneBuffers<T> {
    /// Inputs: `x1` `[irreps_in1.dim]`, `x2` `[irreps_in2.dim]`, weights `[weight_numel]`.
    pub(super) x1: Vec<Lane<T>>,
    pub(super) x2: Vec<Lane<T>>,
    pub(super) w: Vec<Lane<T>>,
    /// The output (forward) or its gradient (backward), `[irreps_out.dim]`.
    pub(super) out: Vec<Lane<T>>,
    /// Gradients (backward), shaped as the inputs.
    pub(super) g1: Vec<Lane<T>>,
    pub(super) g2: Vec<Lane<T>>,
    pub(super) gw: Vec<Lane<T>>,
    /// `y[k][i]`: a path's Clebsch-Gordan list contracted with one `x2` block.
    y: Vec<Lane<T>>,
    /// `t[u][k]`: `x1[u] y` for every `u` of a path (the forward's `uvw`), or one `t[k]`.
    t: Vec<Lane<T>>,
    /// `h[k]`: the gradient reaching one pair's product.
    h: Vec<Lane<T>>,
    /// `dots[i][k] = sum_u x1[u, i] h_u[k]`, for the `x2` gradient.
    dots: Vec<Lane<T>>,
}

impl<T: Real> LaneBuffers<T> {
    /// Every buffer resized (and zeroed) for `tp`, in the allocations it already has; the
    /// gradients only when `backward`.
    pub(super) fn fit(&mut self, tp: &TensorProductPlan, backward: bool) {
        let max = |f: &dyn Fn(&PathPlan) -> usize| tp.paths.iter().map(f).max().unwrap_or(0);
        let (d1, d2) = (tp.irreps_in1.dim(), tp.irreps_in2.dim());
        let grad = |n: usize| if backward { n } else { 0 };
        let sizes = [
            (&mut self.x1, d1),
            (&mut self.x2, d2),
            (&mut self.w, tp.weight_numel),
            (&mut self.out, tp.irreps_out.dim()),
            (&mut self.g1, grad(d1)),
            (&mut self.g2, grad(d2)),
            (&mut self.gw, grad(tp.weight_numel)),
            (&mut self.y, max(&|p| p.d1 * p.d3)),
            (&mut self.t, max(&|p| p.m1.max(1) * p.d3)),
            (&mut self.h, max(&|p| p.d3)),
            (&mut self.dots, max(&|p| p.d1 * p.d3)),
        ];
        for (v, n) in sizes {
            v.clear();
            v.resize(n, [T::zero(); L]);
        }
    }

    /// Shared weights, the same in every lane.
    pub(super) fn splat_weights(&mut self, weight: &[T]) {
        for (lane, &w) in self.w.iter_mut().zip(weight) {
            *lane = [w; L];
        }
    }
}

/// `y[k][i] = sum_j c x2[v, j]` over the path's nonzeros: the `x2` half of a path, once per
/// `v` for all `u`.
#[inline(always)]
fn contract_x2<T: Real, const FMA: bool>(
    p: &PathPlan,
    coef: &[T],
    x2v: &[Lane<T>],
    y: &mut [Lane<T>],
) {
    let y = &mut y[..p.d1 * p.d3];
    y.fill([T::zero(); L]);
    // Each entry's terms are one run of the sorted list, summed in registers and stored
    // once (as `rows::contract_x2`).
    let mut run = (usize::MAX, [T::zero(); L]);
    for (idx, &c) in p.forward.idx.iter().zip(coef) {
        let at = idx[2] as usize * p.d1 + idx[0] as usize;
        if at != run.0 {
            if let Some(y) = y.get_mut(run.0) {
                *y = run.1;
            }
            run = (at, [T::zero(); L]);
        }
        madd_scalar::<T, FMA>(&mut run.1, c, &x2v[idx[1] as usize]);
    }
    if let Some(y) = y.get_mut(run.0) {
        *y = run.1;
    }
}

/// `out[r] += c a[p] b[q]` over a sparse Clebsch-Gordan list.
#[inline(always)]
fn contract<T: Real, const FMA: bool>(
    c: &Contraction,
    coef: &[T],
    a: &[Lane<T>],
    b: &[Lane<T>],
    out: &mut [Lane<T>],
) {
    for (idx, &cv) in c.idx.iter().zip(coef) {
        let mut ca = [T::zero(); L];
        madd_scalar::<T, FMA>(&mut ca, cv, &a[idx[0] as usize]);
        madd_lanes::<T, FMA>(&mut out[idx[2] as usize], &ca, &b[idx[1] as usize]);
    }
}

/// `t[k] = sum_i x1u[i] y[k][i]`, four `k` at a time: four independent sums, each over `i`
/// in order (the same sums as one `k` at a time), so that with run-time sizes (degree 4 and
/// up) each multiply-add does not wait on the one before.
#[inline(always)]
fn x1_times_y<T: Real, const FMA: bool>(
    x1u: &[Lane<T>],
    y: &[Lane<T>],
    d1: usize,
    t: &mut [Lane<T>],
) {
    let x1u = &x1u[..d1];
    let done = t.len() / 4 * 4;
    let mut blocks = t.chunks_exact_mut(4);
    for (b, tb) in (&mut blocks).enumerate() {
        let yb = &y[4 * b * d1..4 * (b + 1) * d1];
        let mut acc = [[T::zero(); L]; 4];
        for (i, x) in x1u.iter().enumerate() {
            for (j, acc) in acc.iter_mut().enumerate() {
                madd_lanes::<T, FMA>(acc, x, &yb[j * d1 + i]);
            }
        }
        tb.copy_from_slice(&acc);
    }
    for (k, tk) in blocks.into_remainder().iter_mut().enumerate() {
        let k = done + k;
        *tk = dot_lanes::<T, FMA>(x1u, &y[k * d1..(k + 1) * d1]);
    }
}

/// `uvw` for one `v`: `t[u] = x1[u] y` for every `u`, then, per output channel `w`,
/// `out[w, k] += sum_u t[u][k] W[u, v, w]` with the `d3` sums in registers.
#[inline(always)]
fn uvw_forward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    (x1, w, y, v): ForwardInputs<'_, T>,
    t: &mut [Lane<T>],
    out: &mut [Lane<T>],
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2, mo) = (p.m1, p.m2, p.mo);
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let t = &mut t[..m1 * d3];
    for (xu, tu) in x1.chunks_exact(d1).zip(t.chunks_exact_mut(d3)) {
        x1_times_y::<T, FMA>(xu, y, d1, tu);
    }
    let t = &t[..];
    let out = &mut out[p.out..p.out + mo * d3];
    // W[u, v, o] sits at `(u m2 + v) mo + o`.
    let wv = &w[p.weight_offset + v * mo..];
    let stride = m2 * mo;
    if D3 == 0 {
        for (o, out_o) in out.chunks_exact_mut(d3).enumerate() {
            for (k, out_k) in out_o.iter_mut().enumerate() {
                let mut acc = [T::zero(); L];
                for u in 0..m1 {
                    madd_lanes::<T, FMA>(&mut acc, &t[u * d3 + k], &wv[u * stride + o]);
                }
                add_lanes(out_k, &acc);
            }
        }
        return;
    }
    // Blocks of `OB` output channels: `OB D3` independent sums in registers (about twelve
    // 256-bit ones), and each `u` reads `OB` adjacent weights.
    let vectors = OB_REGISTERS * 32 / (L * std::mem::size_of::<T>()) / D3;
    let mut o0 = 0;
    while o0 < mo {
        let a = (t, wv, stride, m1, o0);
        o0 += match (vectors, mo - o0) {
            (8.., 8..) => uvw_out_block::<T, FMA, D3, 8>(a, out),
            (4.., 4..) => uvw_out_block::<T, FMA, D3, 4>(a, out),
            (2.., 2..) => uvw_out_block::<T, FMA, D3, 2>(a, out),
            _ => uvw_out_block::<T, FMA, D3, 1>(a, out),
        };
    }
}

/// Vector registers the forward's output blocks may hold.
const OB_REGISTERS: usize = 12;

/// `out[o, k] += sum_u t[u][k] W[u, v, o]` for `o` in `o0..o0 + OB`; returns `OB`.
#[inline(always)]
fn uvw_out_block<T: Real, const FMA: bool, const D3: usize, const OB: usize>(
    (t, wv, stride, m1, o0): (Lanes<'_, T>, Lanes<'_, T>, usize, usize, usize),
    out: &mut [Lane<T>],
) -> usize {
    let mut acc = [[[T::zero(); L]; D3]; OB];
    for u in 0..m1 {
        let tu = &t[u * D3..(u + 1) * D3];
        let wu = &wv[u * stride + o0..u * stride + o0 + OB];
        for b in 0..OB {
            for k in 0..D3 {
                madd_lanes::<T, FMA>(&mut acc[b][k], &tu[k], &wu[b]);
            }
        }
    }
    for (b, acc) in acc.iter().enumerate() {
        for (k, acc) in acc.iter().enumerate() {
            add_lanes(&mut out[(o0 + b) * D3 + k], acc);
        }
    }
    OB
}

/// `uvu` for one `v`: `out[u, k] += W[u, v] (x1[u] y)[k]`.
#[inline(always)]
fn uvu_forward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    (x1, w, y, v): ForwardInputs<'_, T>,
    t: &mut [Lane<T>],
    out: &mut [Lane<T>],
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let x1 = &x1[p.in1..p.in1 + p.m1 * d1];
    let out = &mut out[p.out..p.out + p.m1 * d3];
    let t = &mut t[..d3];
    for (u, (xu, ou)) in x1
        .chunks_exact(d1)
        .zip(out.chunks_exact_mut(d3))
        .enumerate()
    {
        x1_times_y::<T, FMA>(xu, y, d1, t);
        if p.has_weight {
            let s = &w[p.weight_offset + u * p.m2 + v];
            for (o, tk) in ou.iter_mut().zip(t.iter()) {
                madd_lanes::<T, FMA>(o, tk, s);
            }
        } else {
            for (o, tk) in ou.iter_mut().zip(t.iter()) {
                add_lanes(o, tk);
            }
        }
    }
}

/// Any other mode, pair by pair: `t = x1[u] (x) x2[v]` over the nonzeros, then into the
/// pair's targets.
#[inline(always)]
fn pairs_forward<T: Real, const FMA: bool>(
    p: &PathPlan,
    c: &Coefficients<T>,
    (x1, x2, w): (Lanes<'_, T>, Lanes<'_, T>, Lanes<'_, T>),
    t: &mut [Lane<T>],
    out: &mut [Lane<T>],
) {
    let (d1, d2, d3) = (p.d1, p.d2, p.d3);
    let w = &w[p.weight_offset..];
    let out = &mut out[p.out..p.out + p.mo * d3];
    let t = &mut t[..d3];
    for &(u, v, target) in &p.pairs {
        let (u, v) = (u as usize, v as usize);
        t.fill([T::zero(); L]);
        let a = &x1[p.in1 + u * d1..p.in1 + (u + 1) * d1];
        let b = &x2[p.in2 + v * d2..p.in2 + (v + 1) * d2];
        contract::<T, FMA>(&p.forward, &c.forward, a, b, t);
        match target {
            Targets::One { o, w: wi } => {
                let o = o as usize;
                for (y, x) in out[o * d3..(o + 1) * d3].iter_mut().zip(t.iter()) {
                    match wi {
                        Some(wi) => madd_lanes::<T, FMA>(y, x, &w[wi as usize]),
                        None => add_lanes(y, x),
                    }
                }
            }
            Targets::All { w_base } => {
                let ws = &w[w_base as usize..w_base as usize + p.mo];
                for (y, s) in out.chunks_exact_mut(d3).zip(ws) {
                    for (y, x) in y.iter_mut().zip(t.iter()) {
                        madd_lanes::<T, FMA>(y, x, s);
                    }
                }
            }
        }
    }
}

/// Which gradients the backward computes: `[x1, x2, weight]`.
pub(super) type Wanted = [bool; 3];

/// The backward of [`uvw_forward`] for one `v`: per `u`, `h[k] = sum_w W[u, v, w] g[w, k]`,
/// `gW[u, v, w] += (x1[u] y) . g[w]`, `g1[u, i] += sum_k y[k][i] h[k]` and
/// `dots[i][k] += x1[u, i] h[k]` (for the caller's `x2` gradient).
#[inline(always)]
fn uvw_backward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    (x1, w, g, y, v): BackwardInputs<'_, T>,
    want: Wanted,
    (g1, gw, t, h, dots): LaneGrads<'_, T>,
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let (m1, m2, mo) = (p.m1, p.m2, p.mo);
    let x1 = &x1[p.in1..p.in1 + m1 * d1];
    let g = &g[p.out..p.out + mo * d3];
    let (t, h, dots) = (&mut t[..d3], &mut h[..d3], &mut dots[..d1 * d3]);
    let want_h = want[0] || want[1];
    for (u, xu) in x1.chunks_exact(d1).enumerate() {
        let at = p.weight_offset + (u * m2 + v) * mo;
        let wu = &w[at..at + mo];
        if want[2] {
            x1_times_y::<T, FMA>(xu, y, d1, t);
            let gwu = &mut gw[at..at + mo];
            for (gw_o, g_o) in gwu.iter_mut().zip(g.chunks_exact(d3)) {
                let mut acc = *gw_o;
                for (tk, gk) in t.iter().zip(g_o) {
                    madd_lanes::<T, FMA>(&mut acc, tk, gk);
                }
                *gw_o = acc;
            }
        }
        if !want_h {
            continue;
        }
        if D3 == 0 {
            for (k, hk) in h.iter_mut().enumerate() {
                let mut acc = [T::zero(); L];
                for (w_o, g_o) in wu.iter().zip(g.chunks_exact(d3)) {
                    madd_lanes::<T, FMA>(&mut acc, w_o, &g_o[k]);
                }
                *hk = acc;
            }
        } else {
            let mut acc = [[T::zero(); L]; D3];
            for (w_o, g_o) in wu.iter().zip(g.chunks_exact(D3)) {
                for k in 0..D3 {
                    madd_lanes::<T, FMA>(&mut acc[k], w_o, &g_o[k]);
                }
            }
            h.copy_from_slice(&acc[..]);
        }
        input_grads::<T, FMA>(xu, y, h, d1, &mut g1[p.in1 + u * d1..], dots, want);
    }
}

/// `g1u[i] += sum_k y[k][i] h[k]` and `dots[i][k] += x1u[i] h[k]`, as wanted.
#[inline(always)]
fn input_grads<T: Real, const FMA: bool>(
    xu: &[Lane<T>],
    y: &[Lane<T>],
    h: &[Lane<T>],
    d1: usize,
    g1u: &mut [Lane<T>],
    dots: &mut [Lane<T>],
    want: Wanted,
) {
    let d3 = h.len();
    if want[0] {
        for (k, hk) in h.iter().enumerate() {
            for (g, yk) in g1u[..d1].iter_mut().zip(&y[k * d1..(k + 1) * d1]) {
                madd_lanes::<T, FMA>(g, yk, hk);
            }
        }
    }
    if want[1] {
        for (x, dots_i) in xu.iter().zip(dots.chunks_exact_mut(d3)) {
            for (d, hk) in dots_i.iter_mut().zip(h) {
                madd_lanes::<T, FMA>(d, x, hk);
            }
        }
    }
}

/// The backward of [`uvu_forward`] for one `v`: with `h = W[u, v] g[u]`,
/// `gW[u, v] += (x1[u] y) . g[u]` and the input gradients as [`uvw_backward`].
#[inline(always)]
fn uvu_backward<T: Real, const FMA: bool, const D1: usize, const D3: usize>(
    p: &PathPlan,
    (x1, w, g, y, v): BackwardInputs<'_, T>,
    want: Wanted,
    (g1, gw, t, h, dots): LaneGrads<'_, T>,
) {
    let (d1, d3) = dims::<D1, D3>(p);
    let x1 = &x1[p.in1..p.in1 + p.m1 * d1];
    let g = &g[p.out..p.out + p.m1 * d3];
    let (t, h, dots) = (&mut t[..d3], &mut h[..d3], &mut dots[..d1 * d3]);
    for (u, (xu, gu)) in x1.chunks_exact(d1).zip(g.chunks_exact(d3)).enumerate() {
        let wi = p.weight_offset + u * p.m2 + v;
        if want[2] && p.has_weight {
            x1_times_y::<T, FMA>(xu, y, d1, t);
            madd_dot::<T, FMA>(&mut gw[wi], t, gu);
        }
        if !(want[0] || want[1]) {
            continue;
        }
        if p.has_weight {
            for (hk, gk) in h.iter_mut().zip(gu) {
                *hk = [T::zero(); L];
                madd_lanes::<T, FMA>(hk, gk, &w[wi]);
            }
        } else {
            h.copy_from_slice(gu);
        }
        input_grads::<T, FMA>(xu, y, h, d1, &mut g1[p.in1 + u * d1..], dots, want);
    }
}

/// `acc += a . b`, lane by lane.
#[inline(always)]
fn madd_dot<T: Real, const FMA: bool>(acc: &mut Lane<T>, a: &[Lane<T>], b: &[Lane<T>]) {
    let mut s = *acc;
    for (a, b) in a.iter().zip(b) {
        madd_lanes::<T, FMA>(&mut s, a, b);
    }
    *acc = s;
}

/// The backward of [`pairs_forward`]: per pair, the weight gradient `t . g[o]`, then
/// `h = sum_o W g[o]` into both inputs through the permuted lists.
#[inline(always)]
fn pairs_backward<T: Real, const FMA: bool>(
    p: &PathPlan,
    c: &Coefficients<T>,
    (x1, x2, w, g): (Lanes<'_, T>, Lanes<'_, T>, Lanes<'_, T>, Lanes<'_, T>),
    want: Wanted,
    (g1, g2, gw, t, h): LaneGrads<'_, T>,
) {
    let (d1, d2, d3) = (p.d1, p.d2, p.d3);
    let w = &w[p.weight_offset..];
    let gw = &mut gw[p.weight_offset..];
    let g = &g[p.out..p.out + p.mo * d3];
    let (t, h) = (&mut t[..d3], &mut h[..d3]);
    for &(u, v, target) in &p.pairs {
        let (u, v) = (u as usize, v as usize);
        let a = &x1[p.in1 + u * d1..p.in1 + (u + 1) * d1];
        let b = &x2[p.in2 + v * d2..p.in2 + (v + 1) * d2];
        let weighted = !matches!(target, Targets::One { w: None, .. });
        if want[2] && weighted {
            t.fill([T::zero(); L]);
            contract::<T, FMA>(&p.forward, &c.forward, a, b, t);
            match target {
                Targets::One { o, w: Some(wi) } => {
                    let o = o as usize;
                    madd_dot::<T, FMA>(&mut gw[wi as usize], t, &g[o * d3..(o + 1) * d3]);
                }
                Targets::All { w_base } => {
                    for (o, go) in g.chunks_exact(d3).enumerate() {
                        madd_dot::<T, FMA>(&mut gw[w_base as usize + o], t, go);
                    }
                }
                Targets::One { w: None, .. } => {}
            }
        }
        if !(want[0] || want[1]) {
            continue;
        }
        h.fill([T::zero(); L]);
        match target {
            Targets::One { o, w: wi } => {
                let o = o as usize;
                for (hk, gk) in h.iter_mut().zip(&g[o * d3..(o + 1) * d3]) {
                    match wi {
                        Some(wi) => madd_lanes::<T, FMA>(hk, gk, &w[wi as usize]),
                        None => *hk = *gk,
                    }
                }
            }
            Targets::All { w_base } => {
                let ws = &w[w_base as usize..w_base as usize + p.mo];
                for (go, s) in g.chunks_exact(d3).zip(ws) {
                    for (hk, gk) in h.iter_mut().zip(go) {
                        madd_lanes::<T, FMA>(hk, gk, s);
                    }
                }
            }
        }
        if want[0] {
            let g1u = &mut g1[p.in1 + u * d1..p.in1 + (u + 1) * d1];
            contract::<T, FMA>(&p.backward1, &c.backward1, b, h, g1u);
        }
        if want[1] {
            let g2v = &mut g2[p.in2 + v * d2..p.in2 + (v + 1) * d2];
            contract::<T, FMA>(&p.backward2, &c.backward2, a, h, g2v);
        }
    }
}

/// The mutable buffers of a backward: gradients, then scratch (`(g1, gw, t, h, dots)` for
/// `uvw` / `uvu`, `(g1, g2, gw, t, h)` for the other modes).
type LaneGrads<'a, T> = (
    LanesMut<'a, T>,
    LanesMut<'a, T>,
    LanesMut<'a, T>,
    LanesMut<'a, T>,
    LanesMut<'a, T>,
);

impl TensorProductPlan {
    /// The forward of the group in `b`: `b.out = x1 (x) x2` from `b.x1`, `b.x2`, `b.w`, with
    /// the contracted kernels of `isa` (`FMA`: the caller is compiled for AVX2 and FMA).
    #[inline(always)]
    pub(super) fn forward_lanes<T: Real, const FMA: bool>(
        &self,
        isa: Simd,
        coefs: &[Coefficients<T>],
        b: &mut LaneBuffers<T>,
    ) {
        let LaneBuffers {
            x1,
            x2,
            w,
            out,
            y,
            t,
            ..
        } = b;
        let kernels = LaneKernels::<T>::of(isa);
        out.fill([T::zero(); L]);
        for (p, c) in self.paths.iter().zip(coefs) {
            let Some(kernel) = kernels.forward(p.kernel) else {
                pairs_forward::<T, FMA>(p, c, (x1, x2, w), t, out);
                continue;
            };
            for v in 0..p.m2 {
                let x2v = &x2[p.in2 + v * p.d2..p.in2 + (v + 1) * p.d2];
                contract_x2::<T, FMA>(p, &c.forward, x2v, y);
                // SAFETY: `kernel` is from the table of `isa`, whose entries run on this CPU
                // (AVX2 instances only with a token).
                unsafe { kernel(p, (&x1[..], &w[..], &y[..], v), t, out) };
            }
        }
    }

    /// The backward of the group in `b`, from `b.out` holding the output's gradient: the
    /// wanted gradients `[x1, x2, weight]` into `b.g1`, `b.g2`, `b.gw` (overwritten), with
    /// the contracted kernels of `isa` (as [`Self::forward_lanes`]).
    #[inline(always)]
    pub(super) fn backward_lanes<T: Real, const FMA: bool>(
        &self,
        isa: Simd,
        coefs: &[Coefficients<T>],
        b: &mut LaneBuffers<T>,
        want: Wanted,
    ) {
        let LaneBuffers {
            x1,
            x2,
            w,
            out: g,
            g1,
            g2,
            gw,
            y,
            t,
            h,
            dots,
        } = b;
        let zero = [T::zero(); L];
        for (buffer, wanted) in [
            (&mut *g1, want[0]),
            (&mut *g2, want[1]),
            (&mut *gw, want[2]),
        ] {
            if wanted {
                buffer.fill(zero);
            }
        }
        let kernels = LaneKernels::<T>::of(isa);
        for (p, c) in self.paths.iter().zip(coefs) {
            match kernels.backward(p.kernel) {
                Some(kernel) => {
                    for v in 0..p.m2 {
                        let (start, end) = (p.in2 + v * p.d2, p.in2 + (v + 1) * p.d2);
                        contract_x2::<T, FMA>(p, &c.forward, &x2[start..end], y);
                        dots[..p.d1 * p.d3].fill(zero);
                        let a = (&x1[..], &w[..], &g[..], &y[..], v);
                        let grads = (
                            &mut g1[..],
                            &mut gw[..],
                            &mut t[..],
                            &mut h[..],
                            &mut dots[..],
                        );
                        // SAFETY: as in `forward_lanes`, `kernel` runs on this CPU.
                        unsafe { kernel(p, a, want, grads) };
                        if want[1] {
                            // g2[v, j] += sum c dots[i][k] over the nonzeros.
                            let g2v = &mut g2[start..end];
                            for (idx, &cv) in p.forward.idx.iter().zip(&c.forward) {
                                let d = &dots[idx[0] as usize * p.d3 + idx[2] as usize];
                                madd_scalar::<T, FMA>(&mut g2v[idx[1] as usize], cv, d);
                            }
                        }
                    }
                }
                None => pairs_backward::<T, FMA>(
                    p,
                    c,
                    (x1, x2, w, g),
                    want,
                    (
                        &mut g1[..],
                        &mut g2[..],
                        &mut gw[..],
                        &mut t[..],
                        &mut h[..],
                    ),
                ),
            }
        }
    }
}
