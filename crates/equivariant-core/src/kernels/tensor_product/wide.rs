//! The row kernels of `uvu` paths with run-time sizes and at most sixteen components in `x1`
//! and the output ([`wide_uvu`]: irreps of degree 4 to 7), forward and backward.
//!
//! Every per-channel vector is sixteen lanes wide, its components padded with zeros: the
//! Clebsch-Gordan list contracted with one `x2` block is dense (`yT[i]`, `[d1][16]`, for the
//! forward; `y[k]`, `[d3][16]`, for the backward), and a block of `C` channels or
//! components is `C` independent sixteen-wide sums over the rows ([`sums16`]). A channel's
//! own `d <= 16` values go in and out of the lanes one by one, or packed per block of
//! channels.

use crate::Real;
use crate::kernels::gemm::{dot, lane_sum, madd};
use crate::kernels::simd::{as_f32_mut, as_f64_mut};
use crate::o3::tensor_product::{PathKernel, PathPlan};

/// Whether a path runs these kernels: `uvu` with run-time sizes (an irrep of degree 4 or
/// more) and at most sixteen components in `x1` and the output (degree 7 or less).
pub(crate) fn wide_uvu(p: &PathPlan) -> bool {
    matches!(p.kernel, PathKernel::Uvu(dims) if dims.index() == 0) && p.d1 <= 16 && p.d3 <= 16
}

/// The forward list of a [`wide_uvu`] path dense, `[d2][d1][16]` (`C[j][i][k]`, `k` padded),
/// or when `transposed` `[d2][d3][16]` (`C[j][k][i]`, `i` padded); empty for other paths.
pub(super) fn dense<T: Real>(p: &PathPlan, transposed: bool) -> Vec<T> {
    if !wide_uvu(p) {
        return Vec::new();
    }
    let rows = if transposed { p.d3 } else { p.d1 };
    let mut dense = vec![T::zero(); p.d2 * rows * 16];
    for (idx, &c) in p.forward.idx.iter().zip(&p.forward.coef) {
        let [i, j, k] = idx.map(|x| x as usize);
        let (r, l) = if transposed { (k, i) } else { (i, k) };
        dense[(j * rows + r) * 16 + l] += T::from_f64(c);
    }
    dense
}

/// The contraction with one `x2` block, dense and padded: `yT[i][k] = sum_j x2[v, j]
/// C[j][i][k]` (`[d1][16]`) from [`dense`], or its transpose `y[k][i]` (`[d3][16]`) from the
/// transposed list, the padding zero.
#[inline(always)]
pub(super) fn contract_x2<T: Real>(dense: &[T], x2v: &[T], yt: &mut [T]) {
    let n = dense.len() / x2v.len();
    let yt = &mut yt[..n];
    yt.fill(T::zero());
    for (&x, c) in x2v.iter().zip(dense.chunks_exact(n)) {
        yt.iter_mut().zip(c).for_each(|(y, &c)| *y += x * c);
    }
}

/// `g2[v, j] += C[j] : dots` over the padded `[d1][16]` blocks of [`backward`]'s `dots`, from
/// the (untransposed) [`dense`] list, in sixteen lanes.
#[inline(always)]
pub(super) fn contract_dots<T: Real>(dense: &[T], dots: &[T], g2v: &mut [T]) {
    let n = dense.len() / g2v.len();
    let dots = &dots[..n];
    for (g, cj) in g2v.iter_mut().zip(dense.chunks_exact(n)) {
        let mut acc = [T::zero(); 16];
        for (c, d) in cj.chunks_exact(16).zip(dots.chunks_exact(16)) {
            acc.iter_mut()
                .zip(c.iter().zip(d))
                .for_each(|(a, (&c, &d))| *a += c * d);
        }
        *g += sum16(&acc);
    }
}

/// `acc[c] = sum_r xs[c cs + r rs] rows[r]` for `c < C`: `C` combinations of sixteen-wide
/// rows at once, in `C` independent vector sums (each over `r` in order). The sums are read
/// by constant indices only, which keeps them in registers.
#[inline(always)]
fn sums16<T: Real, const FMA: bool, const C: usize>(
    rows: &[[T; 16]],
    xs: &[T],
    (cs, rs): (usize, usize),
) -> [[T; 16]; C] {
    let mut acc = [[T::zero(); 16]; C];
    for (r, row) in rows.iter().enumerate() {
        let x: [T; C] = std::array::from_fn(|c| xs[c * cs + r * rs]);
        for c in 0..C {
            for l in 0..16 {
                acc[c][l] = madd::<T, FMA>(acc[c][l], x[c], row[l]);
            }
        }
    }
    acc
}

/// The blocks `(first, width)` that cover `0..n`: of `C` items, then of one (the widths
/// [`sums16`] takes as constants).
#[inline(always)]
fn blocks<const C: usize>(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let blocked = n / C * C;
    (0..blocked)
        .step_by(C)
        .map(|first| (first, C))
        .chain((blocked..n).map(|first| (first, 1)))
}

/// Channels (or components) per block: four sums of sixteen `f32` (eight AVX2 registers),
/// two of sixteen `f64` (eight too).
const fn block<T>() -> usize {
    if std::mem::size_of::<T>() == 4 { 4 } else { 2 }
}

/// The forward of one `v`: `t_u = sum_i x1[u, i] yT[i]` ([`sums16`], [`block`] channels at
/// a time), then `out[u] += W[u, v] t_u`. `ws`: the path's weights from `v` (`W[u, v]` at
/// `u m2`), `None` for none; `x1`, `out`: the path's blocks of the row.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn forward<T: Real, const FMA: bool>(
    (yt, x1, ws, m2, d1, d3): (&[T], &[T], Option<&[T]>, usize, usize, usize),
    out: &mut [T],
) {
    if block::<T>() == 4 {
        forward_blocks::<T, FMA, 4>((yt, x1, ws, m2, d1, d3), out);
    } else {
        forward_blocks::<T, FMA, 2>((yt, x1, ws, m2, d1, d3), out);
    }
}

/// [`forward`] in blocks of `C` channels.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn forward_blocks<T: Real, const FMA: bool, const C: usize>(
    (yt, x1, ws, m2, d1, d3): (&[T], &[T], Option<&[T]>, usize, usize, usize),
    out: &mut [T],
) {
    let (yt, _) = yt[..16 * d1].as_chunks::<16>();
    for (first, width) in blocks::<C>(x1.len() / d1) {
        let xs = &x1[first * d1..];
        let out = &mut out[first * d3..];
        let ws = ws.map(|ws| &ws[first * m2..]);
        if width == C {
            let acc = sums16::<T, FMA, C>(yt, xs, (d1, 1));
            add_scaled(&acc, ws, m2, out, d3);
        } else {
            let acc = sums16::<T, FMA, 1>(yt, xs, (d1, 1));
            add_scaled(&acc, ws, m2, out, d3);
        }
    }
}

/// The backward of one `v`, from `y[k][i]` (`[d3][16]`, [`contract_x2`]), [`block`]
/// channels or components at a time ([`sums16`]):
/// - `q_u = sum_k g[u, k] y[k]`, then `g1[u] += W[u, v] q_u` and `gW[u, v] += x1[u] . q_u`;
/// - `dots[i] = sum_u x1[u, i] h_u` (`[d1][16]`, for [`contract_dots`]), with
///   `h_u = W[u, v] g[u]` padded with zeros into the scratch `hs` (`[m1][16]`).
///
/// `ws`: the path's weights from `v` (`W[u, v]` at `u m2`), `None` for none; `gw` the
/// weight gradient from the same place; `x1`, `g`, `g1`: the path's blocks of the row.
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(super) fn backward<T: Real, const FMA: bool>(
    a: (&[T], &[T], Option<&[T]>, usize, usize, usize),
    g: &[T],
    grads: (Option<&mut [T]>, Option<&mut [T]>, &mut [T]),
    hs: &mut [T],
) {
    if block::<T>() == 4 {
        backward_blocks::<T, FMA, 4>(a, g, grads, hs);
    } else {
        backward_blocks::<T, FMA, 2>(a, g, grads, hs);
    }
}

/// [`backward`] in blocks of `C`.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn backward_blocks<T: Real, const FMA: bool, const C: usize>(
    (y, x1, ws, m2, d1, d3): (&[T], &[T], Option<&[T]>, usize, usize, usize),
    g: &[T],
    (mut g1, mut gw, dots): (Option<&mut [T]>, Option<&mut [T]>, &mut [T]),
    hs: &mut [T],
) {
    let (y, _) = y[..16 * d3].as_chunks::<16>();
    let m1 = x1.len() / d1;
    if g1.is_some() || gw.is_some() {
        for (first, width) in blocks::<C>(m1) {
            let (gs, xs) = (&g[first * d3..], &x1[first * d1..]);
            let ws = ws.map(|ws| &ws[first * m2..]);
            let (g1, gw) = (
                g1.as_deref_mut().map(|g1| &mut g1[first * d1..]),
                gw.as_deref_mut().map(|gw| &mut gw[first * m2..]),
            );
            // The same two updates for a block of `C` and of one (different types).
            if width == C {
                let q = sums16::<T, FMA, C>(y, gs, (d3, 1));
                if let Some(gw) = gw {
                    add_dots(&q, xs, d1, gw, m2);
                }
                if let Some(g1) = g1 {
                    add_scaled(&q, ws, m2, g1, d1);
                }
            } else {
                let q = sums16::<T, FMA, 1>(y, gs, (d3, 1));
                if let Some(gw) = gw {
                    add_dots(&q, xs, d1, gw, m2);
                }
                if let Some(g1) = g1 {
                    add_scaled(&q, ws, m2, g1, d1);
                }
            }
        }
    }
    let (hs, _) = hs[..16 * m1].as_chunks_mut::<16>();
    for (u, h) in hs.iter_mut().enumerate() {
        let s = ws.map_or(T::one(), |ws| ws[u * m2]);
        // Sixteen values from `g[u]` on (the next channels' past `d3`, then masked), or,
        // where they run off `g`, `g[u]`'s own.
        *h = match g[u * d3..].first_chunk::<16>() {
            Some(gu) => {
                let mut h = [T::zero(); 16];
                for l in 0..16 {
                    h[l] = s * gu[l];
                }
                zero_from(h, d3)
            }
            None => {
                let mut h = [T::zero(); 16];
                for (h, &g) in h.iter_mut().zip(&g[u * d3..(u + 1) * d3]) {
                    *h = s * g;
                }
                h
            }
        };
    }
    let (dots, _) = dots[..16 * d1].as_chunks_mut::<16>();
    if d1 >= C {
        // Blocks of `C` only, the last one overlapping the one before (its sums come out
        // the same, and are written, not added): one chain per item, as in the others,
        // would wait on the multiply-add latency.
        for first in (0..d1).step_by(C).map(|first| first.min(d1 - C)) {
            let acc = sums16::<T, FMA, C>(hs, &x1[first..], (1, d1));
            dots[first..first + C].copy_from_slice(&acc);
        }
    } else {
        for (first, dots) in dots.iter_mut().enumerate() {
            *dots = sums16::<T, FMA, 1>(hs, &x1[first..], (1, d1))[0];
        }
    }
}

/// `out[c][..d] += s_c acc[c][..d]` for each block row `c` (`out[c]` at `c d`), with
/// `s_c = ws[c m2]`, or one for `None`.
///
/// In `f32` the block's rows are packed first, `C d` values in a row as they lie in `out`:
/// row `c` stored sixteen lanes wide at `c d`, in order, so that each row's lanes past `d`
/// are overwritten by the next row's; then one contiguous add, where an add per row of `d`
/// values runs a short loop and its remainder for every channel (roofline-l5's forward,
/// 32 rows in cache, one thread: 28.4 -> 32.4 GFLOP/s; in `f64`, with two rows per block,
/// packing measured 5% slower). AVX2 masked stores, which write no further than `d`
/// either, run as microcode on AMD's CPUs: with them that forward took 1.7 times as long.
#[inline(always)]
fn add_scaled<T: Real, const C: usize>(
    acc: &[[T; 16]; C],
    ws: Option<&[T]>,
    m2: usize,
    out: &mut [T],
    d: usize,
) {
    let scale = |c: usize| ws.map_or(T::one(), |ws| ws[c * m2]);
    if std::mem::size_of::<T>() != 4 {
        for (c, acc) in acc.iter().enumerate() {
            let s = scale(c);
            for (y, &a) in out[c * d..(c + 1) * d].iter_mut().zip(acc) {
                *y += s * a;
            }
        }
        return;
    }
    let mut packed = [[T::zero(); 16]; C];
    let flat = packed.as_flattened_mut();
    for (c, acc) in acc.iter().enumerate() {
        let s = scale(c);
        // `(C - 1) d + 16 <= 16 C` for `d <= 16`.
        let row = flat[c * d..].first_chunk_mut::<16>().expect("d <= 16");
        for (y, &a) in row.iter_mut().zip(acc) {
            *y = s * a;
        }
    }
    for (y, &p) in out[..C * d].iter_mut().zip(packed.as_flattened()) {
        *y += p;
    }
}

/// `gw[c m2] += x1[c] . q[c][..d1]` for each block row `c` (`x1[c]` at `c d1`): a
/// sixteen-lane product, the lanes from `d1` on set to zero, summed as a tree ([`sum16`]),
/// not a serial chain of `d1` adds; where sixteen values from `x1[c]` on run off `x1`, a
/// plain dot.
#[inline(always)]
fn add_dots<T: Real, const C: usize>(
    q: &[[T; 16]; C],
    x1: &[T],
    d1: usize,
    gw: &mut [T],
    m2: usize,
) {
    for (c, q) in q.iter().enumerate() {
        let at = c * d1;
        gw[c * m2] += match x1[at..].first_chunk::<16>() {
            Some(x) => {
                // A loop, not `array::from_fn`, whose closure is not inlined here.
                let mut p = [T::zero(); 16];
                for l in 0..16 {
                    p[l] = x[l] * q[l];
                }
                sum16(&zero_from(p, d1))
            }
            None => dot(&x1[at..at + d1], &q[..d1]),
        };
    }
}

/// `v` with its lanes from `d` on set to `+0`, whatever they held (in `f32` and `f64` by
/// masking the bits, which compiles to vector ands where a select per lane compiles to a
/// branch per lane).
#[inline(always)]
fn zero_from<T: Real>(mut v: [T; 16], d: usize) -> [T; 16] {
    if let Some(f) = as_f32_mut(&mut v[..]) {
        for (l, x) in f.iter_mut().enumerate() {
            let keep = if l < d { u32::MAX } else { 0 };
            *x = f32::from_bits(x.to_bits() & keep);
        }
    } else if let Some(f) = as_f64_mut(&mut v[..]) {
        for (l, x) in f.iter_mut().enumerate() {
            let keep = if l < d { u64::MAX } else { 0 };
            *x = f64::from_bits(x.to_bits() & keep);
        }
    } else {
        v[d..].fill(T::zero());
    }
    v
}

/// `sum_l v[l]` as a tree (the halves added as vectors, then [`lane_sum`]).
#[inline(always)]
fn sum16<T: Real>(v: &[T; 16]) -> T {
    lane_sum(&std::array::from_fn(|l| v[l] + v[l + 8]))
}
