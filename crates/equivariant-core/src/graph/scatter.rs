//! Edge <-> node reductions with torch_scatter semantics: [`scatter_sum`], [`scatter_mean`]
//! and their adjoint [`gather`] (`x[index]`).
//!
//! All buffers are row-major: `[E, d]` per edge, `[N, d]` per node. Every output row is
//! accumulated in edge order by one thread, so results are bitwise identical for any number
//! of threads.

use rayon::prelude::*;

use crate::{Error, Real, Result};

/// Below this many values (`E * d`) the kernels run sequentially.
const PAR_THRESHOLD: usize = 1 << 15;
/// Output rows per parallel task.
const ROWS_PER_TASK: usize = 256;

/// Checks `d >= 1`, `src.len() == index.len() * d` and `index[e] < dim_size`.
fn check_scatter<T>(src: &[T], index: &[usize], dim_size: usize, d: usize) -> Result<()> {
    if d == 0 {
        return Err(Error::InvalidArgument {
            name: "d",
            reason: "the row width must be at least 1".into(),
        });
    }
    let expected = index.len().checked_mul(d).ok_or(Error::InvalidArgument {
        name: "d",
        reason: format!("{} edges times d = {d} overflows usize", index.len()),
    })?;
    if src.len() != expected {
        return Err(Error::ShapeMismatch {
            what: "src ([E, d] with E = index.len())",
            expected,
            got: src.len(),
        });
    }
    check_index(index, dim_size)
}

fn check_index(index: &[usize], dim_size: usize) -> Result<()> {
    match index.iter().position(|&i| i >= dim_size) {
        Some(e) => Err(Error::InvalidArgument {
            name: "index",
            reason: format!(
                "index[{e}] = {} is out of range for {dim_size} rows",
                index[e]
            ),
        }),
        None => Ok(()),
    }
}

/// Rows sorted by index: `edges[start[i]..start[i + 1]]` are the edges with `index[e] == i`, in
/// edge order (`None` for `edges` when `index` is already sorted: then edge `e` is at `e`).
struct Csr {
    start: Vec<usize>,
    edges: Option<Vec<usize>>,
}

impl Csr {
    fn new(index: &[usize], dim_size: usize) -> Self {
        let mut start = vec![0usize; dim_size + 1];
        for &i in index {
            start[i + 1] += 1;
        }
        for i in 0..dim_size {
            start[i + 1] += start[i];
        }
        let edges = if index.windows(2).all(|w| w[0] <= w[1]) {
            None
        } else {
            let mut next = start.clone();
            let mut edges = vec![0usize; index.len()];
            for (e, &i) in index.iter().enumerate() {
                edges[next[i]] = e;
                next[i] += 1;
            }
            Some(edges)
        };
        Self { start, edges }
    }
}

/// Sums rows into `out` (`[dim_size, d]`, zero on entry). Sequential for small inputs, else
/// parallel over output rows; the same additions in the same order either way.
fn scatter_sum_into<T: Real>(out: &mut [T], src: &[T], index: &[usize], dim_size: usize, d: usize) {
    if src.len() < PAR_THRESHOLD {
        for (e, &i) in index.iter().enumerate() {
            for (o, &x) in out[i * d..(i + 1) * d]
                .iter_mut()
                .zip(&src[e * d..(e + 1) * d])
            {
                *o += x;
            }
        }
        return;
    }
    let csr = Csr::new(index, dim_size);
    out.par_chunks_mut(d * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, rows)| {
            for (r, row) in rows.chunks_mut(d).enumerate() {
                let i = task * ROWS_PER_TASK + r;
                for slot in csr.start[i]..csr.start[i + 1] {
                    let e = csr.edges.as_ref().map_or(slot, |edges| edges[slot]);
                    for (o, &x) in row.iter_mut().zip(&src[e * d..(e + 1) * d]) {
                        *o += x;
                    }
                }
            }
        });
}

/// Sum of the rows of `src` that share an index: torch_scatter's
/// `scatter(src, index, dim=0, dim_size, reduce="sum")`,
///
/// `out[i, k] = Σ_{e : index[e] = i} src[e, k]`.
///
/// Rows no edge points to are zero. Each row is summed in edge order (deterministic, the same
/// for any number of threads). Non-finite values propagate.
///
/// # Shapes
/// `src`: `[E, d]` row-major; `index`: `[E]`; returns `[dim_size, d]`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `d == 0` or some `index[e] >= dim_size`;
/// [`Error::ShapeMismatch`] if `src.len() != index.len() * d`.
///
/// ```
/// use equivariant_core::graph::scatter_sum;
/// let src = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 edges, d = 2
/// let out = scatter_sum(&src, &[2, 0, 2], 4, 2)?;
/// assert_eq!(out, vec![3.0, 4.0, 0.0, 0.0, 6.0, 8.0, 0.0, 0.0]);
/// assert!(scatter_sum(&src, &[2, 0, 4], 4, 2).is_err()); // index 4 out of range
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn scatter_sum<T: Real>(
    src: &[T],
    index: &[usize],
    dim_size: usize,
    d: usize,
) -> Result<Vec<T>> {
    check_scatter(src, index, dim_size, d)?;
    let mut out = vec![T::zero(); dim_size * d];
    scatter_sum_into(&mut out, src, index, dim_size, d);
    Ok(out)
}

/// Mean of the rows of `src` that share an index: torch_scatter's
/// `scatter(src, index, dim=0, dim_size, reduce="mean")`,
///
/// `out[i, k] = (Σ_{e : index[e] = i} src[e, k]) / |{e : index[e] = i}|`,
///
/// and zero for rows no edge points to. The sum is [`scatter_sum`]'s, then divided by the
/// count (rounded to `T`).
///
/// # Shapes
/// `src`: `[E, d]` row-major; `index`: `[E]`; returns `[dim_size, d]`.
///
/// # Errors
/// As [`scatter_sum`].
///
/// ```
/// use equivariant_core::graph::scatter_mean;
/// let src = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 edges, d = 2
/// let out = scatter_mean(&src, &[2, 0, 2], 3, 2)?;
/// assert_eq!(out, vec![3.0, 4.0, 0.0, 0.0, 3.0, 4.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn scatter_mean<T: Real>(
    src: &[T],
    index: &[usize],
    dim_size: usize,
    d: usize,
) -> Result<Vec<T>> {
    let mut out = scatter_sum(src, index, dim_size, d)?;
    let mut count = vec![0usize; dim_size];
    for &i in index {
        count[i] += 1;
    }
    let divide = |(row, &c): (&mut [T], &usize)| {
        if c > 1 {
            let c = T::from_f64(c as f64);
            row.iter_mut().for_each(|x| *x = *x / c);
        }
    };
    if out.len() < PAR_THRESHOLD {
        out.chunks_mut(d).zip(&count).for_each(divide);
    } else {
        out.par_chunks_mut(d)
            .zip(count.par_iter())
            .with_min_len(ROWS_PER_TASK)
            .for_each(divide);
    }
    Ok(out)
}

/// Rows of `src` picked by `index`: `out[e, k] = src[index[e], k]`, PyTorch's `src[index]`
/// (the guide's `f_in[edge_src]`).
///
/// `gather` is the adjoint of [`scatter_sum`]: for `x` of shape `[E, d]` and `y` of shape
/// `[N, d]`, `<scatter_sum(x, index, N), y> = <x, gather(y, index)>`; the gradient of a
/// scatter is a gather and vice versa.
///
/// # Shapes
/// `src`: `[N, d]` row-major with `N = src.len() / d`; `index`: `[E]`; returns `[E, d]`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `d == 0` or some `index[e] >= N`;
/// [`Error::ShapeMismatch`] if `src.len()` is not a multiple of `d`.
///
/// ```
/// use equivariant_core::graph::gather;
/// let src = [1u8, 2, 3, 4, 5, 6]; // N = 3, d = 2
/// assert_eq!(gather(&src, &[2, 2, 0], 2)?, vec![5, 6, 5, 6, 1, 2]);
/// assert!(gather(&src, &[3], 2).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn gather<T: Copy + Send + Sync>(src: &[T], index: &[usize], d: usize) -> Result<Vec<T>> {
    if d == 0 {
        return Err(Error::InvalidArgument {
            name: "d",
            reason: "the row width must be at least 1".into(),
        });
    }
    if !src.len().is_multiple_of(d) {
        return Err(Error::ShapeMismatch {
            what: "src ([N, d] row-major, length a multiple of d)",
            expected: src.len() - src.len() % d,
            got: src.len(),
        });
    }
    check_index(index, src.len() / d)?;
    if index.len().saturating_mul(d) < PAR_THRESHOLD {
        let mut out = Vec::with_capacity(index.len() * d);
        for &i in index {
            out.extend_from_slice(&src[i * d..(i + 1) * d]);
        }
        return Ok(out);
    }
    let len = index.len().checked_mul(d).ok_or(Error::InvalidArgument {
        name: "d",
        reason: format!("{} rows times d = {d} overflows usize", index.len()),
    })?;
    // index is non-empty and valid here, so src has a row to copy.
    let mut out = vec![src[0]; len];
    out.par_chunks_mut(d)
        .zip(index.par_iter())
        .with_min_len(ROWS_PER_TASK)
        .for_each(|(row, &i)| row.copy_from_slice(&src[i * d..(i + 1) * d]));
    Ok(out)
}
