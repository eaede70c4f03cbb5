//! The o3 linear map of `f32` rows in AVX2 registers, a row at a time and without
//! transposes: each block-to-block map `dst[t d + m] += sum_s c_m W[s][t] src[s d + m]` (one
//! irrep of dimension `d <= 8`, `s` and `t` the channels) runs over the destination block in
//! its own layout, eight lanes `q = t d + m` at a time. A lane reads source component
//! `q mod d`: each source channel's `d` components are loaded once and permuted into that
//! pattern (at most seven distinct permutations, the period of `q mod d` in steps of eight),
//! then multiplied by the lanes' coefficients `c_m W[s][t]`, laid out in the same pattern
//! when the map is built. The general tensor-product route runs eight rows in the lanes,
//! transposed in and out, and contracts each row with the ones before the weights.

use crate::kernels::gemm::LANES;
use crate::kernels::simd::Avx2Fma;
use std::arch::x86_64::*;

/// Destination vectors summed together in registers over the source channels.
const GROUP: usize = 4;

/// One block-to-block map of a linear map, built for a call's weights.
pub(super) struct BlockMap {
    /// Offsets of the source and destination blocks in their rows.
    src: usize,
    dst: usize,
    /// The irrep's dimension (`<= 8`).
    d: usize,
    /// Source channels.
    src_mul: usize,
    /// Destination lanes, `dst_mul d`.
    len: usize,
    /// `[src_mul][8 nv]`: the coefficient of `src[s d + q mod d]` in `dst[q]`,
    /// `c_m W[s][t]` for `q = t d + m`, zero past `len` (`nv` vectors cover the block).
    coefs: Vec<f32>,
    /// Lane `l` of vector `v` reads source component `(8 v + l) mod d`: the patterns of
    /// `v = 0..period`.
    patterns: Vec<[i32; LANES]>,
}

impl BlockMap {
    /// The map from the block of `src_mul` channels at `src` to the block of `dst_mul`
    /// channels at `dst`, irrep dimension `d = coef.len()` (`1..=8`), with coefficient
    /// `coef[m]` for component `m` and the path's weights `weight`: `W[s][t] =
    /// weight[s dst_mul + t]`, or, `transposed`, `weight[t src_mul + s]` (the backward of a
    /// path, from its output block to its input).
    pub(super) fn new(
        (src, src_mul): (usize, usize),
        (dst, dst_mul): (usize, usize),
        coef: &[f32],
        weight: &[f32],
        transposed: bool,
    ) -> Self {
        let d = coef.len();
        debug_assert!((1..=LANES).contains(&d) && weight.len() >= src_mul * dst_mul);
        let len = dst_mul * d;
        let stride = LANES * len.div_ceil(LANES);
        let mut coefs = vec![0.0; src_mul * stride];
        for (s, row) in coefs.chunks_exact_mut(stride).enumerate() {
            for (q, c) in row[..len].iter_mut().enumerate() {
                let (t, m) = (q / d, q % d);
                let w = if transposed {
                    weight[t * src_mul + s]
                } else {
                    weight[s * dst_mul + t]
                };
                *c = coef[m] * w;
            }
        }
        let period = d / gcd(LANES, d);
        let patterns = (0..period)
            .map(|v| std::array::from_fn(|l| ((LANES * v + l) % d) as i32))
            .collect();
        BlockMap {
            src,
            dst,
            d,
            src_mul,
            len,
            coefs,
            patterns,
        }
    }

    /// Whether the blocks lie inside rows of `src_dim` and `dst_dim` values.
    pub(super) fn fits(&self, src_dim: usize, dst_dim: usize) -> bool {
        self.src + self.src_mul * self.d <= src_dim && self.dst + self.len <= dst_dim
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `dst += maps(src)` row by row: `src` `[rows, src_dim]`, `dst` `[rows, dst_dim]`; every
/// map must [fit](BlockMap::fits) the rows (checked).
pub(super) fn apply(
    token: Avx2Fma,
    maps: &[BlockMap],
    src: &[f32],
    src_dim: usize,
    dst: &mut [f32],
    dst_dim: usize,
) {
    assert!(
        maps.iter().all(|m| m.fits(src_dim, dst_dim)),
        "a block map outside its rows"
    );
    // SAFETY: `token` proves the CPU has the AVX2 and FMA `apply_avx2` is compiled for.
    unsafe { apply_avx2(token, maps, src, src_dim, dst, dst_dim) }
}

#[target_feature(enable = "avx2,fma")]
fn apply_avx2(
    _: Avx2Fma,
    maps: &[BlockMap],
    src: &[f32],
    src_dim: usize,
    dst: &mut [f32],
    dst_dim: usize,
) {
    if src_dim == 0 || dst_dim == 0 {
        return;
    }
    // Map by map over all rows, each map's constants loaded once (the same sums per row
    // in the same order as row by row).
    for map in maps {
        let nv = map.len.div_ceil(LANES);
        for v0 in (0..nv).step_by(GROUP) {
            let (src, dst) = ((src, src_dim), (&mut *dst, dst_dim));
            match nv - v0 {
                1 => group::<1>(map, v0, src, dst),
                2 => group::<2>(map, v0, src, dst),
                3 => group::<3>(map, v0, src, dst),
                _ => group::<GROUP>(map, v0, src, dst),
            }
        }
    }
}

/// The lanes `l < n` set (all ones), the others clear.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn lane_mask(n: usize) -> __m256i {
    let m: [i32; LANES] = std::array::from_fn(|l| if l < n { -1 } else { 0 });
    // SAFETY: `m` is eight `i32`, the 32 bytes the unaligned load reads.
    unsafe { _mm256_loadu_si256(m.as_ptr().cast()) }
}

/// Vectors `v0..v0 + N` of one map's destination block on every row (whole rows the map
/// [fits](BlockMap::fits)), [`ROW_BLOCK`] rows at a time, whose sums are independent chains of
/// multiply-adds (one row's `N` chains wait on each multiply-add's latency).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn group<const N: usize>(
    map: &BlockMap,
    v0: usize,
    (src, src_dim): (&[f32], usize),
    (dst, dst_dim): (&mut [f32], usize),
) {
    let period = map.patterns.len();
    let mut idx = [_mm256_setzero_si256(); N];
    for (j, idx) in idx.iter_mut().enumerate() {
        // SAFETY: a pattern is eight `i32`, the 32 bytes the unaligned load reads.
        *idx = unsafe { _mm256_loadu_si256(map.patterns[(v0 + j) % period].as_ptr().cast()) };
    }
    let mask = lane_mask(map.d);
    let mut s_rows = src.chunks_exact(ROW_BLOCK * src_dim);
    let mut d_rows = dst.chunks_exact_mut(ROW_BLOCK * dst_dim);
    for (s, d) in (&mut s_rows).zip(&mut d_rows) {
        rows::<N, ROW_BLOCK>(map, v0, &idx, mask, (s, src_dim), (d, dst_dim));
    }
    let rest = s_rows.remainder().chunks_exact(src_dim);
    for (s, d) in rest.zip(d_rows.into_remainder().chunks_exact_mut(dst_dim)) {
        rows::<N, 1>(map, v0, &idx, mask, (s, src_dim), (d, dst_dim));
    }
}

/// Rows at a time in [`group`].
const ROW_BLOCK: usize = 3;

/// [`group`] on `R` rows (`src` `[R, src_dim]`, `dst` `[R, dst_dim]`): `src` component `m`
/// of channel `s` loaded (a one-component irrep: broadcast) and permuted into vector `j`'s
/// pattern `idx[j]` (`mask`: lanes `0..d`), times the coefficients, summed per row.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn rows<const N: usize, const R: usize>(
    map: &BlockMap,
    v0: usize,
    idx: &[__m256i; N],
    mask: __m256i,
    (src, src_dim): (&[f32], usize),
    (dst, dst_dim): (&mut [f32], usize),
) {
    let (d, len) = (map.d, map.len);
    let stride = LANES * len.div_ceil(LANES);
    let mut acc = [[_mm256_setzero_ps(); N]; R];
    for (s, coefs) in map.coefs.chunks_exact(stride).enumerate() {
        let coefs = &coefs[LANES * v0..LANES * (v0 + N)];
        let mut c = [_mm256_setzero_ps(); N];
        for (j, c) in c.iter_mut().enumerate() {
            // SAFETY: `coefs[8 j..8 j + 8]` is inside `coefs` (`j < N`).
            *c = unsafe { _mm256_loadu_ps(coefs[LANES * j..].as_ptr()) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let at = r * src_dim + map.src + s * d;
            let x = &src[at..at + d];
            if d == 1 {
                let x = _mm256_set1_ps(x[0]);
                for j in 0..N {
                    acc[j] = _mm256_fmadd_ps(x, c[j], acc[j]);
                }
            } else {
                // SAFETY: the masked load reads lanes `0..d` only, `x`.
                let xs = unsafe { _mm256_maskload_ps(x.as_ptr(), mask) };
                for j in 0..N {
                    let x = _mm256_permutevar8x32_ps(xs, idx[j]);
                    acc[j] = _mm256_fmadd_ps(x, c[j], acc[j]);
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let at = r * dst_dim + map.dst;
        let dst = &mut dst[at..at + len];
        for (j, &acc) in acc.iter().enumerate() {
            let out = &mut dst[LANES * (v0 + j)..];
            if out.len() >= LANES {
                // SAFETY: `out[..8]` is inside `dst`.
                unsafe {
                    let y = _mm256_add_ps(_mm256_loadu_ps(out.as_ptr()), acc);
                    _mm256_storeu_ps(out.as_mut_ptr(), y);
                }
            } else {
                let mut lanes = [0.0f32; LANES];
                // SAFETY: `lanes` is eight `f32`, the 32 bytes the unaligned store writes.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
                for (y, a) in out.iter_mut().zip(lanes) {
                    *y += a;
                }
            }
        }
    }
}
