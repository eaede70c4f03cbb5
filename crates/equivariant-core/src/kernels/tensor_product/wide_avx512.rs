//! The [`wide`](super::wide) row kernels in `f32` on AVX-512: a [`wide_uvu`] path's forward
//! and backward for one `x2` block, with the contraction of its dense list with that block
//! (`yT`, `[d1][16]`, or `y`, `[d3][16]`) made and held in registers.
//!
//! The portable kernel, compiled for AVX-512, reloads `yT` from memory for every block of
//! four channels, spends as many instructions on indices and bounds as on multiply-adds,
//! and packs each block's outputs through a buffer whose reloads wait on its overlapping
//! stores (`perf`). Here `yT` is made in `d1 <= 15` registers and stays there (`d1` a
//! constant per instance), and eight channels run at once, each a chain of `d1`
//! multiply-adds whose `x1` value is a broadcast from memory within the instruction; a
//! channel's `d3 <= 16` outputs are added through a lane mask, so that no store reaches a
//! neighbouring channel.
//!
//! The backward runs the same way in two passes over the channels: `q_u = sum_k g[u, k]
//! y[k]` with `y` in registers (then `x1`'s gradient through masks, the weight's as a dot
//! in the portable kernel's tree, a block's dots reduced together by [`dots_q`]), and the
//! `d1` sums for `x2`'s gradient in registers, one multiply-add each per channel, contracted
//! with the list there.
//!
//! `bench tp --config roofline-l5|roofline-l7 --isa avx2|avx512 --batch 64 --reps 201
//! --warmup 20 --threads 1` (in cache), three alternated rounds, ms, AVX2 against these:
//! roofline-l5 forward 0.142-0.149 against 0.084-0.093, forward+backward 0.492-0.536
//! against 0.289-0.295; roofline-l7 0.169-0.253 against 0.054-0.107 and 0.615-0.656
//! against 0.348-0.360.
//!
//! The arithmetic and its order are the portable kernel's, so the results are the same
//! bits: the contractions with `x2` and with the sums for `x2`'s gradient from zero in
//! order, each product rounded before its sum; the channels' sums from zero in order,
//! fused; `out += s sum` (and `x1`'s gradient) with the product rounded first; the weight
//! gradient's dots as the portable kernel's tree of rounded products, or its serial sum
//! where sixteen values from the channel's start run off `x1`.
//!
//! [`wide_uvu`]: super::wide::wide_uvu

use std::arch::x86_64::{
    __m512, __mmask16, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
    _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm512_add_ps,
    _mm512_castps512_ps256, _mm512_extractf32x8_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_maskz_mul_ps, _mm512_mul_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps, _mm512_storeu_ps,
};

use crate::kernels::gemm::dot;
use crate::kernels::simd::Avx512;

/// `Some(f::<D>(args))` for `D = d` where `d` is one of the odd sizes `1..=15` (an irrep's
/// `2l + 1` for `l <= 7`), the instances of each kernel; `None` for any other `d`.
macro_rules! by_odd_size {
    ($d:expr, $f:ident($($a:expr),*)) => {
        match $d {
            1 => Some($f::<1>($($a),*)),
            3 => Some($f::<3>($($a),*)),
            5 => Some($f::<5>($($a),*)),
            7 => Some($f::<7>($($a),*)),
            9 => Some($f::<9>($($a),*)),
            11 => Some($f::<11>($($a),*)),
            13 => Some($f::<13>($($a),*)),
            15 => Some($f::<15>($($a),*)),
            _ => None,
        }
    };
}

/// Channels per block: eight independent chains of multiply-adds, enough to cover the
/// latency of each at one 512-bit multiply-add per cycle.
const C: usize = 8;

/// `out[u][..d3] += s_u sum_i x1[u, i] yT[i][..d3]` for every channel `u` of the path's
/// block of the row (`x1`: `[m1][d1]`, `out`: `[m1][d3]`), with `yT` the contraction of the
/// dense list (`[d2][d1][16]`, [`dense`](super::wide::dense)) with one `x2` block, `x2v`
/// (as [`contract_x2`](super::wide::contract_x2) makes it), and `s_u =
/// ws[u m2]`, or one for `None`. Returns `false`, having done nothing, for a `d1` with no
/// instance (an even one, or over fifteen: no irrep has those with `d3 <= 16`).
pub(super) fn forward(
    token: Avx512,
    (dense, x2v): (&[f32], &[f32]),
    x1: &[f32],
    ws: Option<&[f32]>,
    m2: usize,
    (d1, d3): (usize, usize),
    out: &mut [f32],
) -> bool {
    let a = ((dense, x2v), x1, ws, m2, d3);
    // SAFETY: `token` proves that the CPU has AVX-512 F, VL, BW and DQ, AVX2 and FMA.
    unsafe { by_odd_size!(d1, forward_d1(token, a, out)) }.is_some()
}

/// [`forward`] for `d1 = D1`.
///
/// # Safety
///
/// The CPU must have AVX-512 F, VL, BW and DQ, AVX2 and FMA (which the token proves).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[allow(clippy::type_complexity)]
unsafe fn forward_d1<const D1: usize>(
    _: Avx512,
    ((dense, x2v), x1, ws, m2, d3): ((&[f32], &[f32]), &[f32], Option<&[f32]>, usize, usize),
    out: &mut [f32],
) {
    let m1 = x1.len() / D1;
    assert!(d3 <= 16 && out.len() >= m1 * d3);
    let y = contract_x2::<D1>(dense, x2v);
    let mask = first_lanes(d3);
    let blocked = m1 / C * C;
    // The old outputs of block `b`, read before the stores of block `b - 1`: each masked
    // store spans sixteen lanes, past its channel's `d3`, and a load over a store still in
    // flight waits for it (`perf`: a quarter of the kernel's samples where each block read
    // its outputs after the block before had written).
    let base = out.as_mut_ptr();
    // SAFETY: block `b < blocked / C` holds `C d3` values of `out` (asserted above).
    let load = |b: usize| unsafe { load_block(base.add(b * C * d3), d3, mask) };
    let mut next = if blocked > 0 {
        load(0)
    } else {
        [_mm512_setzero_ps(); C]
    };
    for (b, xs) in x1[..blocked * D1].chunks_exact(C * D1).enumerate() {
        let old = next;
        let acc = block_sums(&y, xs);
        if (b + 1) * C < blocked {
            next = load(b + 1);
        }
        // SAFETY: channels `b C..(b + 1) C` lie below `m1`, and `out` holds `m1 d3` values
        // (asserted above).
        unsafe { store_block(acc, old, ws, (b * C, m2), (base, d3), mask) };
    }
    for u in blocked..m1 {
        let acc = channel_sum(&y, &x1[u * D1..(u + 1) * D1]);
        // SAFETY: as in the blocks.
        unsafe { add_scaled(acc, ws, (u, m2), base.add(u * d3), mask) };
    }
}

/// `y[i] = sum_j x2v[j] C[j][i]` for `i < D` (`dense`: `[d2][D][16]`), from zero over `j` in
/// order, each product rounded before its sum: `contract_x2`'s arithmetic, in registers.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn contract_x2<const D: usize>(dense: &[f32], x2v: &[f32]) -> [__m512; D] {
    assert!(dense.len() == x2v.len() * 16 * D);
    let mut y = [_mm512_setzero_ps(); D];
    for (&x, cj) in x2v.iter().zip(dense.chunks_exact(16 * D)) {
        let x = _mm512_set1_ps(x);
        for (i, y) in y.iter_mut().enumerate() {
            // SAFETY: `cj` holds `16 D` values (asserted).
            let c = unsafe { _mm512_loadu_ps(cj.as_ptr().add(16 * i)) };
            *y = _mm512_add_ps(*y, _mm512_mul_ps(x, c));
        }
    }
    y
}

/// `acc[c] = sum_i xs[c D + i] y[i]` for the block's `C` channels (`xs`: `[C][D]`), each a
/// chain of fused multiply-adds from zero over `i` in order (`sums16`'s arithmetic), the
/// `C` chains side by side.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn block_sums<const D: usize>(y: &[__m512; D], xs: &[f32]) -> [__m512; C] {
    let xs = &xs[..C * D];
    let mut acc = [_mm512_setzero_ps(); C];
    for (i, y) in y.iter().enumerate() {
        for (c, acc) in acc.iter_mut().enumerate() {
            *acc = _mm512_fmadd_ps(_mm512_set1_ps(xs[c * D + i]), *y, *acc);
        }
    }
    acc
}

/// [`block_sums`] for one channel (`xs`: `[D]`).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn channel_sum<const D: usize>(y: &[__m512; D], xs: &[f32]) -> __m512 {
    let xs = &xs[..D];
    let mut acc = _mm512_setzero_ps();
    for (y, &x) in y.iter().zip(xs) {
        acc = _mm512_fmadd_ps(_mm512_set1_ps(x), *y, acc);
    }
    acc
}

/// [`store_scaled`] for the block's channels `u = first + c`: `at[u d..][..d] = old[c] +
/// s_u acc[c]`.
///
/// # Safety
///
/// `at` points to at least `(first + C) d` values; `mask` has lanes `0..d` set, at most;
/// the CPU has what an `Avx512` token proves.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn store_block(
    acc: [__m512; C],
    old: [__m512; C],
    ws: Option<&[f32]>,
    (first, m2): (usize, usize),
    (at, d): (*mut f32, usize),
    mask: __mmask16,
) {
    for (c, (acc, old)) in acc.into_iter().zip(old).enumerate() {
        let u = first + c;
        // SAFETY: channel `u` holds the `d` values from `u d` that the mask's lanes reach
        // (the contract).
        unsafe { store_scaled(acc, old, ws, (u, m2), at.add(u * d), mask) };
    }
}

/// The `C` channels' values from `at` (channel `c` at `c d`), through `mask`.
///
/// # Safety
///
/// `at` points to `C d` values; the CPU has what an `Avx512` token proves.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn load_block(at: *const f32, d: usize, mask: __mmask16) -> [__m512; C] {
    let mut old = [_mm512_setzero_ps(); C];
    for (c, old) in old.iter_mut().enumerate() {
        // SAFETY: the masked lanes of channel `c` are within the block (the contract).
        *old = unsafe { _mm512_maskz_loadu_ps(mask, at.add(c * d)) };
    }
    old
}

/// `at[..d] += s acc[..d]`, `s = ws[u m2]` or one, through `mask` (its lanes `0..d`): the
/// old values read, then [`store_scaled`].
///
/// # Safety
///
/// As [`store_scaled`]'s.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn add_scaled(
    acc: __m512,
    ws: Option<&[f32]>,
    (u, m2): (usize, usize),
    at: *mut f32,
    mask: __mmask16,
) {
    // SAFETY: the masked lanes are within the channel's values (the caller's contract); the
    // others are neither read nor written, and cannot fault.
    unsafe {
        let old = _mm512_maskz_loadu_ps(mask, at);
        store_scaled(acc, old, ws, (u, m2), at, mask);
    }
}

/// `at[..d] = old + s acc`, `s = ws[u m2]` or one, through `mask` (its lanes `0..d`): the
/// product rounded, then the sum, as the portable kernel adds.
///
/// # Safety
///
/// `at` points to at least as many values as `mask` has lanes set, which are its first
/// ones; the CPU has what an `Avx512` token proves.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn store_scaled(
    acc: __m512,
    old: __m512,
    ws: Option<&[f32]>,
    (u, m2): (usize, usize),
    at: *mut f32,
    mask: __mmask16,
) {
    let s = ws.map_or(1.0, |ws| ws[u * m2]);
    let sum = _mm512_add_ps(old, _mm512_mul_ps(_mm512_set1_ps(s), acc));
    // SAFETY: the masked lanes are within the values (the caller's contract); the others
    // are not written, and cannot fault.
    unsafe { _mm512_mask_storeu_ps(at, mask, sum) };
}

/// The mask of lanes `0..d` (`d <= 16`).
#[inline]
fn first_lanes(d: usize) -> __mmask16 {
    assert!(d <= 16);
    ((1u32 << d) - 1) as u16
}

/// The gradients of one `v` of a wide path's backward: `g1` (the path's block of `x1`'s
/// gradient, `[m1][d1]`), `gw` (the weight gradient from `W[0, v]`, `W[u, v]` at `u m2`) and
/// `g2` (the path's dense list, `[d2][d1][16]`, with `x2`'s gradient of block `v`), each
/// `None` where not wanted.
pub(super) type WideGrads<'a> = (
    Option<&'a mut [f32]>,
    Option<&'a mut [f32]>,
    Option<(&'a [f32], &'a mut [f32])>,
);

/// The backward of one `v`, as [`wide::backward`](super::wide::backward) computes it, the same
/// bits: with `y[k] = sum_j x2[v, j] C[j]^T[k]` (`[d3][16]`, from the transposed dense list
/// and `x2v`) and `g` the path's block of the output gradient (`[m1][d3]`),
/// - `q_u = sum_k g[u, k] y[k]`, then `g1[u] += s_u q_u` and `gw[u m2] += x1[u] . q_u`;
/// - `dots[i] = sum_u x1[u, i] s_u g[u]`, then `g2[v, j] += C[j] : dots`.
///
/// Returns `false`, having done nothing, for sizes with no instance.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    token: Avx512,
    (dense, x2v): (&[f32], &[f32]),
    x1: &[f32],
    ws: Option<&[f32]>,
    m2: usize,
    (d1, d3): (usize, usize),
    g: &[f32],
    (g1, gw, g2): WideGrads<'_>,
) -> bool {
    if !(d1 % 2 == 1 && d1 <= 15 && d3 % 2 == 1 && d3 <= 15) {
        return false;
    }
    if g1.is_some() || gw.is_some() {
        let a = ((dense, x2v), x1, ws, m2, d1, g);
        // SAFETY: `token` proves that the CPU has AVX-512 F, VL, BW and DQ, AVX2 and FMA.
        unsafe { by_odd_size!(d3, backward_q(token, a, g1, gw)) };
    }
    if let Some(g2) = g2 {
        let a = (x1, ws, m2, d3, g);
        // SAFETY: as above.
        unsafe { by_odd_size!(d1, backward_x2(token, a, g2)) };
    }
    true
}

/// The `q_u` half of [`backward`] for `d3 = D3`: `y` in registers, eight channels at a
/// time, `g1` through lane masks (each block's old values read before the block before is
/// stored, as in the forward).
///
/// # Safety
///
/// The CPU must have AVX-512 F, VL, BW and DQ, AVX2 and FMA (which the token proves).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[allow(clippy::type_complexity)]
unsafe fn backward_q<const D3: usize>(
    _: Avx512,
    ((dense, x2v), x1, ws, m2, d1, g): (
        (&[f32], &[f32]),
        &[f32],
        Option<&[f32]>,
        usize,
        usize,
        &[f32],
    ),
    g1: Option<&mut [f32]>,
    mut gw: Option<&mut [f32]>,
) {
    let m1 = g.len() / D3;
    assert!(d1 <= 16 && x1.len() == m1 * d1);
    assert!(g1.as_ref().is_none_or(|g1| g1.len() >= m1 * d1));
    let y = contract_x2::<D3>(dense, x2v);
    let mask = first_lanes(d1);
    let g1p = g1.map(|g1| g1.as_mut_ptr());
    // SAFETY: block `b < blocked / C` holds `C d1` values of `g1` (asserted above).
    let load = |b: usize| g1p.map(|p| unsafe { load_block(p.add(b * C * d1), d1, mask) });
    let blocked = m1 / C * C;
    let mut next = if blocked > 0 { load(0) } else { None };
    for (b, gs) in g[..blocked * D3].chunks_exact(C * D3).enumerate() {
        let old = next;
        let q = block_sums(&y, gs);
        if (b + 1) * C < blocked {
            next = load(b + 1);
        }
        let first = b * C;
        if let Some(gw) = gw.as_deref_mut() {
            if (first + C - 1) * d1 + 16 <= x1.len() {
                // SAFETY: sixteen values from each channel's start lie in `x1` (checked).
                let r = unsafe { dots_q(x1, first, d1, &q, mask) };
                for (c, r) in r.into_iter().enumerate() {
                    gw[(first + c) * m2] += r;
                }
            } else {
                for (c, &q) in q.iter().enumerate() {
                    gw[(first + c) * m2] += dot_q(x1, first + c, d1, q, mask);
                }
            }
        }
        if let (Some(p), Some(old)) = (g1p, old) {
            // SAFETY: channels `first..first + C` lie below `m1`, and `g1` holds `m1 d1`
            // values (asserted above).
            unsafe { store_block(q, old, ws, (first, m2), (p, d1), mask) };
        }
    }
    for u in blocked..m1 {
        let q = channel_sum(&y, &g[u * D3..(u + 1) * D3]);
        if let Some(gw) = gw.as_deref_mut() {
            gw[u * m2] += dot_q(x1, u, d1, q, mask);
        }
        if let Some(p) = g1p {
            // SAFETY: as in the blocks.
            unsafe { add_scaled(q, ws, (u, m2), p.add(u * d1), mask) };
        }
    }
}

/// `sum_l p[l]` as the portable kernels' `sum16` sums sixteen lanes: `a[l] = p[l] + p[l +
/// 8]`, `h[l] = a[l] + a[l + 4]`, then `(h0 + h2) + (h1 + h3)`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn tree_sum(p: __m512) -> f32 {
    let a = _mm256_add_ps(_mm512_castps512_ps256(p), _mm512_extractf32x8_ps::<1>(p));
    let h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let t = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps::<0b01>(t, t)))
}

/// [`dot_q`] for the `C` channels from `first` at once, the same sums: the `C` trees run
/// side by side, their levels formed by shuffles of whole vectors (about two instructions
/// per channel where one tree takes eight, each waiting on the one before).
///
/// # Safety
///
/// Sixteen values from each channel's start, `(first + C - 1) d1 + 16`, lie in `x1`; the
/// CPU has what an `Avx512` token proves.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn dots_q(
    x1: &[f32],
    first: usize,
    d1: usize,
    q: &[__m512; C],
    mask: __mmask16,
) -> [f32; C] {
    let mut p = [_mm512_setzero_ps(); C];
    for (c, (p, &q)) in p.iter_mut().zip(q).enumerate() {
        // SAFETY: the sixteen values lie in `x1` (the contract).
        let x = unsafe { _mm512_loadu_ps(x1.as_ptr().add((first + c) * d1)) };
        *p = _mm512_maskz_mul_ps(mask, x, q);
    }
    // Quarters of sixteen lanes: `a = p[0..8] + p[8..16]` of channels `2k`, `2k + 1` in one
    // vector, `[a.lo, a.hi]` each.
    let mut a = [_mm512_setzero_ps(); C / 2];
    for (k, a) in a.iter_mut().enumerate() {
        let (e, o) = (p[2 * k], p[2 * k + 1]);
        let lo = _mm512_shuffle_f32x4::<0x44>(e, o);
        let hi = _mm512_shuffle_f32x4::<0xEE>(e, o);
        *a = _mm512_add_ps(lo, hi);
    }
    // `h = a.lo + a.hi`: channels 0-3, then 4-7, a quarter each.
    let h = [0, 1].map(|k| {
        let (e, o) = (a[2 * k], a[2 * k + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(e, o),
            _mm512_shuffle_f32x4::<0xDD>(e, o),
        )
    });
    // `t = [h0 + h2, h1 + h3]`, then `t0 + t1`: quarter `l` ends with channel `l` in its
    // lane 0 and channel `l + 4` in its lane 1.
    let t = _mm512_add_ps(
        _mm512_shuffle_ps::<0x44>(h[0], h[1]),
        _mm512_shuffle_ps::<0xEE>(h[0], h[1]),
    );
    let r = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(t, t),
        _mm512_shuffle_ps::<0xDD>(t, t),
    );
    let mut lanes = [0.0f32; 16];
    // SAFETY: `lanes` holds sixteen values.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), r) };
    std::array::from_fn(|c| lanes[4 * (c % 4) + c / 4])
}

/// `x1[u] . q[..d1]` in the portable kernel's order: where sixteen values from `x1[u]`'s
/// start lie in `x1`, the sixteen products (lanes from `d1` on zero) summed as a tree (the
/// halves, then the quarters of the lower half, then pairs); otherwise a serial sum.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn dot_q(x1: &[f32], u: usize, d1: usize, q: __m512, mask: __mmask16) -> f32 {
    let at = u * d1;
    match x1[at..].first_chunk::<16>() {
        Some(x) => {
            // SAFETY: `x` holds sixteen values.
            let x = unsafe { _mm512_loadu_ps(x.as_ptr()) };
            tree_sum(_mm512_maskz_mul_ps(mask, x, q))
        }
        None => {
            let mut lanes = [0.0f32; 16];
            // SAFETY: `lanes` holds sixteen values.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), q) };
            dot(&x1[at..at + d1], &lanes[..d1])
        }
    }
}

/// The `x2` half of [`backward`] for `d1 = D1`: the `D1` sums `dots[i]` in registers over
/// the channels in order, each channel's `h_u = s_u g[u]` read through a lane mask; then
/// `g2[v, j] += C[j] : dots`, each a sixteen-lane sum over `i` in order, reduced as a tree
/// ([`tree_sum`]), as `contract_dots` does.
///
/// # Safety
///
/// The CPU must have AVX-512 F, VL, BW and DQ, AVX2 and FMA (which the token proves).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[allow(clippy::type_complexity)]
unsafe fn backward_x2<const D1: usize>(
    _: Avx512,
    (x1, ws, m2, d3, g): (&[f32], Option<&[f32]>, usize, usize, &[f32]),
    (dense, g2v): (&[f32], &mut [f32]),
) {
    let m1 = x1.len() / D1;
    assert!(d3 <= 16 && g.len() == m1 * d3 && dense.len() == g2v.len() * 16 * D1);
    let mask = first_lanes(d3);
    let mut dots = [_mm512_setzero_ps(); D1];
    for (u, xu) in x1.chunks_exact(D1).enumerate() {
        let s = _mm512_set1_ps(ws.map_or(1.0, |ws| ws[u * m2]));
        // SAFETY: channel `u < m1` holds the `d3` values of `g` the mask's lanes reach.
        let gu = unsafe { _mm512_maskz_loadu_ps(mask, g.as_ptr().add(u * d3)) };
        let h = _mm512_maskz_mul_ps(mask, s, gu);
        for (i, dots) in dots.iter_mut().enumerate() {
            *dots = _mm512_fmadd_ps(_mm512_set1_ps(xu[i]), h, *dots);
        }
    }
    for (g2, cj) in g2v.iter_mut().zip(dense.chunks_exact(16 * D1)) {
        let mut acc = _mm512_setzero_ps();
        for (i, &dots) in dots.iter().enumerate() {
            // SAFETY: `cj` holds `16 D1` values (asserted).
            let c = unsafe { _mm512_loadu_ps(cj.as_ptr().add(16 * i)) };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(c, dots));
        }
        *g2 += tree_sum(acc);
    }
}
