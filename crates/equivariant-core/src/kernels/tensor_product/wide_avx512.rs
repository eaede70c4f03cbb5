//! The [`wide`](super::wide) row kernels in `f32` on AVX-512: a [`wide_uvu`] path's forward
//! for one `x2` block, with its `d1` sixteen-wide rows of `yT` made and held in registers.
//!
//! The portable kernel, compiled for AVX-512, reloads `yT` from memory for every block of
//! four channels, spends as many instructions on indices and bounds as on multiply-adds,
//! and packs each block's outputs through a buffer whose reloads wait on its overlapping
//! stores (`perf`). Here `yT` is made in `d1 <= 15` registers and stays there (`d1` a
//! constant per instance), and eight channels run at once, each a chain of `d1`
//! multiply-adds whose `x1` value is a broadcast from memory within the instruction; a
//! channel's `d3 <= 16` outputs are added through a lane mask, so that no store reaches a
//! neighbouring channel. roofline-l5's forward on 256 rows in cache, one thread: 376-419
//! against 215-241 us (three alternated rounds); roofline-l7's 484-510 against 299-327 us.
//!
//! The arithmetic and its order are the portable kernel's (each sum from zero over `i` in
//! order, fused; then `out += s sum`, the product rounded first), so the results are the
//! same bits.
//!
//! [`wide_uvu`]: super::wide::wide_uvu

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
};

use crate::kernels::simd::Avx512;

/// Channels per block: eight independent chains of multiply-adds, enough to cover the
/// latency of each at one 512-bit multiply-add per cycle.
const C: usize = 8;

/// `out[u][..d3] += s_u sum_i x1[u, i] yT[i][..d3]` for every channel `u` of the path's
/// block of the row (`x1`: `[m1][d1]`, `out`: `[m1][d3]`), with `yT` the contraction of the
/// dense list (`[d2][d1][16]`, [`dense`](super::wide::dense)) with one `x2` block, `x2v`
/// (as [`contract_x2`](super::wide::contract_x2) makes it), and `s_u =
/// ws[u m2]`, or one for `None`. Returns `false`, having done nothing, for a `d1` with no
/// instance (an even one, or over fifteen: no irrep has those with `d3 <= 16`).
#[allow(clippy::too_many_arguments)]
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
    // SAFETY: `token` proves that the CPU has AVX-512 F, VL, BW and DQ (each call).
    unsafe {
        match d1 {
            1 => forward_d1::<1>(token, a, out),
            3 => forward_d1::<3>(token, a, out),
            5 => forward_d1::<5>(token, a, out),
            7 => forward_d1::<7>(token, a, out),
            9 => forward_d1::<9>(token, a, out),
            11 => forward_d1::<11>(token, a, out),
            13 => forward_d1::<13>(token, a, out),
            15 => forward_d1::<15>(token, a, out),
            _ => return false,
        }
    }
    true
}

/// [`forward`] for `d1 = D1`.
///
/// # Safety
///
/// The CPU must have AVX-512 F, VL, BW and DQ (which the token proves).
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
#[allow(clippy::type_complexity)]
unsafe fn forward_d1<const D1: usize>(
    _: Avx512,
    ((dense, x2v), x1, ws, m2, d3): ((&[f32], &[f32]), &[f32], Option<&[f32]>, usize, usize),
    out: &mut [f32],
) {
    let m1 = x1.len() / D1;
    assert!(dense.len() == x2v.len() * 16 * D1 && d3 <= 16 && out.len() >= m1 * d3);
    // `yT[i] = sum_j x2[v, j] C[j][i]`, from zero over `j` in order, each product rounded
    // before its sum: `contract_x2`'s arithmetic, in registers.
    let mut y = [_mm512_setzero_ps(); D1];
    for (&x, cj) in x2v.iter().zip(dense.chunks_exact(16 * D1)) {
        let x = _mm512_set1_ps(x);
        for (i, y) in y.iter_mut().enumerate() {
            // SAFETY: `cj` holds `16 D1` values (asserted).
            let c = unsafe { _mm512_loadu_ps(cj.as_ptr().add(16 * i)) };
            *y = _mm512_add_ps(*y, _mm512_mul_ps(x, c));
        }
    }
    let mask: __mmask16 = ((1u32 << d3) - 1) as u16;
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
        let mut acc = [_mm512_setzero_ps(); C];
        for (i, y) in y.iter().enumerate() {
            for (c, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(xs[c * D1 + i]), *y, *acc);
            }
        }
        if (b + 1) * C < blocked {
            next = load(b + 1);
        }
        for (c, (acc, old)) in acc.into_iter().zip(old).enumerate() {
            let u = b * C + c;
            let s = ws.map_or(1.0, |ws| ws[u * m2]);
            let sum = _mm512_add_ps(old, _mm512_mul_ps(_mm512_set1_ps(s), acc));
            // SAFETY: channel `u < m1` holds the `d3` values of `out` from `u d3` that the
            // mask's lanes reach (asserted above).
            unsafe { _mm512_mask_storeu_ps(base.add(u * d3), mask, sum) };
        }
    }
    for u in blocked..m1 {
        let mut acc = _mm512_setzero_ps();
        for (i, y) in y.iter().enumerate() {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(x1[u * D1 + i]), *y, acc);
        }
        // SAFETY: as in the blocks.
        unsafe { add_scaled(acc, ws, (u, m2), base.add(u * d3), mask) };
    }
}

/// The `C` channels' outputs from `at` (channel `c` at `c d3`), through `mask`.
///
/// # Safety
///
/// `at` points to `C d3` values; the CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn load_block(at: *const f32, d3: usize, mask: __mmask16) -> [__m512; C] {
    let mut old = [_mm512_setzero_ps(); C];
    for (c, old) in old.iter_mut().enumerate() {
        // SAFETY: the masked lanes of channel `c` are within the block (the contract).
        *old = unsafe { _mm512_maskz_loadu_ps(mask, at.add(c * d3)) };
    }
    old
}

/// `at[..d] += s acc[..d]`, `s = ws[u m2]` or one, through `mask` (its lanes `0..d`): the
/// product rounded, then the sum, as the portable kernel does.
///
/// # Safety
///
/// `at` points to at least as many values as `mask` has lanes set, which are its first
/// ones; the CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn add_scaled(
    acc: __m512,
    ws: Option<&[f32]>,
    (u, m2): (usize, usize),
    at: *mut f32,
    mask: __mmask16,
) {
    let s = ws.map_or(1.0, |ws| ws[u * m2]);
    let p = _mm512_mul_ps(_mm512_set1_ps(s), acc);
    // SAFETY: the masked lanes are within the channel's values (the caller's contract); the
    // others are neither read nor written, and cannot fault.
    unsafe {
        let old = _mm512_maskz_loadu_ps(mask, at);
        _mm512_mask_storeu_ps(at, mask, _mm512_add_ps(old, p));
    }
}
