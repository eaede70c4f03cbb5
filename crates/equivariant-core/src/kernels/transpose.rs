//! Matrix transposes, for kernels whose products run along one axis while their callers'
//! data lies along another (the sphere grids, the harmonics' stores, a convolution's edges
//! in vector lanes): of strided rows ([`transpose`]) or of rows gathered from anywhere
//! ([`transpose_rows`]). f32 moves 8 x 8 blocks (4 x 4 where a side is under 8) and f64
//! 4 x 4 blocks through AVX2 registers (an [`Avx2Fma`] token proves the CPU has them); the
//! rest, element by element.

use super::simd::Avx2Fma;
#[cfg(target_arch = "x86_64")]
use super::simd::{as_f32, as_f32_mut, as_f64, as_f64_mut};
use crate::Real;

/// Where each row of a transpose's source starts: `i stride` ([`Stride`]), or listed
/// (`&[usize]`: rows gathered from anywhere in the source).
trait RowStart: Copy {
    /// Where row `i` starts.
    fn at(self, i: usize) -> usize;

    /// Whether each of the `rows` rows holds `cols` values inside a source of `len` (no
    /// sum overflows): what the block kernels' loads rely on.
    fn within(self, rows: usize, cols: usize, len: usize) -> bool;
}

/// Rows `stride` apart.
#[derive(Clone, Copy)]
struct Stride(usize);

impl RowStart for Stride {
    #[inline(always)]
    fn at(self, i: usize) -> usize {
        i * self.0
    }

    fn within(self, rows: usize, cols: usize, len: usize) -> bool {
        let last = (rows.saturating_sub(1)).checked_mul(self.0);
        last.and_then(|s| s.checked_add(cols))
            .is_some_and(|end| end <= len)
    }
}

impl RowStart for &[usize] {
    #[inline(always)]
    fn at(self, i: usize) -> usize {
        self[i]
    }

    fn within(self, rows: usize, cols: usize, len: usize) -> bool {
        self.len() == rows
            && (self.iter()).all(|s| s.checked_add(cols).is_some_and(|end| end <= len))
    }
}

/// `dst[j * dst_stride + i] = src[i * src_stride + j]` for `i < rows`, `j < cols`.
///
/// # Panics
///
/// When a slice is too short for its strides.
pub(crate) fn transpose<T: Real>(
    avx2: Option<Avx2Fma>,
    (rows, cols): (usize, usize),
    src: &[T],
    src_stride: usize,
    dst: &mut [T],
    dst_stride: usize,
) {
    transpose_from(avx2, (rows, cols), src, Stride(src_stride), dst, dst_stride);
}

/// `dst[j * dst_stride + i] = src[starts[i] + j]` for `i < starts.len()`, `j < cols`: rows
/// gathered from anywhere in `src` into the columns of `dst` (a kernel's edges' rows of
/// node features into its lanes, without copying them into a block first: a call to
/// `memcpy` each).
///
/// # Panics
///
/// When a row runs past `src`, or `dst` is too short.
pub(crate) fn transpose_rows<T: Real>(
    avx2: Option<Avx2Fma>,
    cols: usize,
    src: &[T],
    starts: &[usize],
    dst: &mut [T],
    dst_stride: usize,
) {
    transpose_from(avx2, (starts.len(), cols), src, starts, dst, dst_stride);
}

/// [`transpose`] and [`transpose_rows`]: `dst[j * dst_stride + i] = src[starts.at(i) + j]`,
/// every row checked inside `src` and every column inside `dst` first (panics otherwise).
#[inline(always)]
fn transpose_from<T: Real, S: RowStart>(
    avx2: Option<Avx2Fma>,
    (rows, cols): (usize, usize),
    src: &[T],
    starts: S,
    dst: &mut [T],
    dst_stride: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        starts.within(rows, cols, src.len()),
        "transpose: a row past src"
    );
    let dst_end = ((cols - 1).checked_mul(dst_stride)).and_then(|s| s.checked_add(rows));
    assert!(
        dst_end.is_some_and(|end| end <= dst.len()),
        "transpose: dst too short"
    );
    // Set by the AVX2 blocks (x86-64 only).
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let (mut row_blocks, mut col_blocks) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if let (Some(token), Some(s), Some(d)) = (avx2, as_f32(src), as_f32_mut(dst)) {
        if rows >= 8 && cols >= 8 {
            (row_blocks, col_blocks) = (rows / 8 * 8, cols / 8 * 8);
            // SAFETY: `token` proves the CPU has the AVX2 `blocks_avx2` is compiled for;
            // the blocks it moves lie inside the rows and `dst`, checked above.
            unsafe { blocks_avx2(token, (row_blocks, col_blocks), s, starts, d, dst_stride) };
        } else {
            // A side under 8 (a kernel's 16 edges of 4 values, and back): 4 x 4 blocks
            // (element by element, such a transpose was 5% of an MD step).
            (row_blocks, col_blocks) = (rows / 4 * 4, cols / 4 * 4);
            // SAFETY: as above, for `blocks4_avx2`.
            unsafe { blocks4_avx2(token, (row_blocks, col_blocks), s, starts, d, dst_stride) };
        }
    }
    #[cfg(target_arch = "x86_64")]
    if let (Some(token), Some(s), Some(d)) = (avx2, as_f64(src), as_f64_mut(dst)) {
        (row_blocks, col_blocks) = (rows / 4 * 4, cols / 4 * 4);
        // SAFETY: as for f32, with 4 x 4 blocks.
        unsafe { blocks_avx2_f64(token, (row_blocks, col_blocks), s, starts, d, dst_stride) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    // What the blocks left: the last columns of every row, and the last rows (none at all
    // where the blocks cover the matrix: a loop over its rows that moved nothing was a
    // twentieth of a radial convolution, whose blocks' transposes are 16 rows each).
    let rows_left = if col_blocks < cols { 0 } else { row_blocks };
    for i in rows_left..rows {
        let first = if i < row_blocks { col_blocks } else { 0 };
        let row = &src[starts.at(i)..starts.at(i) + cols];
        for (j, &v) in row.iter().enumerate().skip(first) {
            dst[j * dst_stride + i] = v;
        }
    }
}

/// `a [rows, cols]` (row-major) transposed into a new `[cols, rows]` buffer.
pub(crate) fn transposed<T: Real>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = vec![T::zero(); a.len()];
    transpose(None, (rows, cols), a, cols, &mut t, rows);
    t
}

/// `block(i, j)` for the top-left corner of each `size x size` block of a `rows x cols`
/// matrix (multiples of `size`), row of blocks by row of blocks.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn each_block((rows, cols): (usize, usize), size: usize, mut block: impl FnMut(usize, usize)) {
    for i in (0..rows).step_by(size) {
        for j in (0..cols).step_by(size) {
            block(i, j);
        }
    }
}

/// The 8 x 8 blocks of [`transpose`] for `i < rows`, `j < cols` (multiples of 8), each
/// loaded as eight rows, transposed in registers and stored as eight rows.
///
/// # Safety
///
/// Each row `i < rows` of `src` must hold `cols` values from `starts.at(i)`, and `dst`
/// `(cols - 1) dst_stride + rows` (the callers assert it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blocks_avx2<S: RowStart>(
    _token: Avx2Fma,
    (rows, cols): (usize, usize),
    src: &[f32],
    starts: S,
    dst: &mut [f32],
    dst_stride: usize,
) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    each_block((rows, cols), 8, |i, j| {
        // SAFETY: rows i..i+8 and columns j..j+8 of `src` (and the transposed block of
        // `dst`) are inside the slices: i + 8 <= rows, j + 8 <= cols (the caller's
        // contract).
        unsafe {
            let r = |k: usize| _mm256_loadu_ps(s.add(starts.at(i + k) + j));
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            let (r4, r5, r6, r7) = (r(4), r(5), r(6), r(7));
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            // Columns c (low lanes) and c + 4 (high lanes) of rows 0-3 and of 4-7.
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let w = |k: usize, v: __m256| _mm256_storeu_ps(d.add((j + k) * dst_stride + i), v);
            w(0, _mm256_permute2f128_ps::<0x20>(u0, u4));
            w(1, _mm256_permute2f128_ps::<0x20>(u1, u5));
            w(2, _mm256_permute2f128_ps::<0x20>(u2, u6));
            w(3, _mm256_permute2f128_ps::<0x20>(u3, u7));
            w(4, _mm256_permute2f128_ps::<0x31>(u0, u4));
            w(5, _mm256_permute2f128_ps::<0x31>(u1, u5));
            w(6, _mm256_permute2f128_ps::<0x31>(u2, u6));
            w(7, _mm256_permute2f128_ps::<0x31>(u3, u7));
        }
    });
}

/// [`blocks_avx2`] with 4 x 4 blocks of `f32` (`rows` and `cols` multiples of 4), for
/// matrices with a side under 8.
///
/// # Safety
///
/// As [`blocks_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blocks4_avx2<S: RowStart>(
    _token: Avx2Fma,
    (rows, cols): (usize, usize),
    src: &[f32],
    starts: S,
    dst: &mut [f32],
    dst_stride: usize,
) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    each_block((rows, cols), 4, |i, j| {
        // SAFETY: rows i..i+4 and columns j..j+4 of `src` (and the transposed block of
        // `dst`) are inside the slices: i + 4 <= rows, j + 4 <= cols (the caller's
        // contract).
        unsafe {
            let r = |k: usize| _mm_loadu_ps(s.add(starts.at(i + k) + j));
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            // Columns 0-1 and 2-3 of rows 0-1 and of rows 2-3, interleaved.
            let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm_unpacklo_ps(r2, r3), _mm_unpackhi_ps(r2, r3));
            let w = |k: usize, v: __m128| _mm_storeu_ps(d.add((j + k) * dst_stride + i), v);
            w(0, _mm_movelh_ps(t0, t2));
            w(1, _mm_movehl_ps(t2, t0));
            w(2, _mm_movelh_ps(t1, t3));
            w(3, _mm_movehl_ps(t3, t1));
        }
    });
}

/// The 4 x 4 blocks of [`transpose`] in f64 for `i < rows`, `j < cols` (multiples of 4),
/// as [`blocks_avx2`].
///
/// # Safety
///
/// As [`blocks_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blocks_avx2_f64<S: RowStart>(
    _token: Avx2Fma,
    (rows, cols): (usize, usize),
    src: &[f64],
    starts: S,
    dst: &mut [f64],
    dst_stride: usize,
) {
    use std::arch::x86_64::*;
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    each_block((rows, cols), 4, |i, j| {
        // SAFETY: rows i..i+4 and columns j..j+4 of `src` (and the transposed block of
        // `dst`) are inside the slices: i + 4 <= rows, j + 4 <= cols (the caller's
        // contract).
        unsafe {
            let r = |k: usize| _mm256_loadu_pd(s.add(starts.at(i + k) + j));
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            // Columns c (low lane) and c + 2 (high lane) of rows 0-1 and of 2-3.
            let (t0, t1) = (_mm256_unpacklo_pd(r0, r1), _mm256_unpackhi_pd(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_pd(r2, r3), _mm256_unpackhi_pd(r2, r3));
            let w = |k: usize, v: __m256d| _mm256_storeu_pd(d.add((j + k) * dst_stride + i), v);
            w(0, _mm256_permute2f128_pd::<0x20>(t0, t2));
            w(1, _mm256_permute2f128_pd::<0x20>(t1, t3));
            w(2, _mm256_permute2f128_pd::<0x31>(t0, t2));
            w(3, _mm256_permute2f128_pd::<0x31>(t1, t3));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Real>(avx2: Option<Avx2Fma>) {
        for (rows, cols, src_stride, dst_stride) in [
            (17, 256, 256, 306),
            (256, 17, 306, 256),
            (9, 8, 11, 13),
            (3, 5, 5, 3),
            (8, 8, 8, 8),
            (16, 4, 4, 16),
            (4, 16, 16, 4),
            (6, 7, 9, 8),
            (13, 5, 6, 14),
        ] {
            let src: Vec<T> = (0..(rows - 1) * src_stride + cols)
                .map(|k| T::from_f64(k as f64))
                .collect();
            let mut dst = vec![T::from_f64(-1.0); (cols - 1) * dst_stride + rows];
            transpose(avx2, (rows, cols), &src, src_stride, &mut dst, dst_stride);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(
                        dst[j * dst_stride + i],
                        src[i * src_stride + j],
                        "{rows}x{cols} ({i}, {j})"
                    );
                }
            }
        }
    }

    /// Rows gathered from anywhere (repeated, out of order, overlapping) transpose as if
    /// copied into a block first, on every path: 8 x 8 and 4 x 4 blocks, and the rest.
    fn check_rows<T: Real>(avx2: Option<Avx2Fma>) {
        let src: Vec<T> = (0..200).map(|k| T::from_f64(k as f64)).collect();
        for (starts, cols) in [
            (
                vec![40, 3, 40, 97, 0, 150, 7, 8, 9, 120, 60, 61, 62, 33, 1, 2],
                32,
            ),
            (
                vec![5, 90, 13, 0, 77, 31, 4, 8, 100, 64, 65, 22, 23, 150, 11, 3],
                4,
            ),
            (vec![160, 2, 9], 7),
            (
                vec![5, 90, 13, 0, 77, 31, 4, 8, 100, 64, 65, 22, 23, 150, 11, 3],
                5,
            ),
            (vec![1, 50, 99, 3, 140, 7], 8),
        ] {
            let rows = starts.len();
            let mut dst = vec![T::from_f64(-1.0); cols * rows];
            transpose_rows(avx2, cols, &src, &starts, &mut dst, rows);
            for (i, &start) in starts.iter().enumerate() {
                for j in 0..cols {
                    assert_eq!(
                        dst[j * rows + i],
                        src[start + j],
                        "{rows}x{cols} ({i}, {j})"
                    );
                }
            }
        }
    }

    #[test]
    fn gathered_rows_transpose_as_a_block() {
        check_rows::<f32>(Avx2Fma::detect());
        check_rows::<f32>(None);
        check_rows::<f64>(Avx2Fma::detect());
        check_rows::<f64>(None);
    }

    #[test]
    fn transposes_equal_the_definition_on_every_path() {
        check::<f32>(Avx2Fma::detect());
        check::<f32>(None);
        check::<f64>(Avx2Fma::detect());
        check::<f64>(None);
    }
}
