//! A dense layer's products over many rows (a radial MLP's layer over every edge), in
//! parallel over fixed blocks of rows: `y = x w` ([`dense`]) and the weight gradient `x^T g`
//! ([`dense_weight_gradient`]), whose blocks' partial sums are added in block order, so
//! both give the same bits for any number of threads.

use rayon::prelude::*;

use super::gemm::{matmul, matmul_tn};
use crate::error::check_len;
use crate::{Real, Result};

/// Rows per parallel task (fixed: see the module docs).
const ROWS: usize = 1024;

/// `out = x w`: `x` `[m, k]`, `w` `[k, n]`, `out` `[m, n]`, row-major, [`matmul`] on blocks
/// of rows in parallel. Wrong lengths give [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
///
/// ```
/// use equivariant_core::kernels::dense;
/// let (x, w) = ([1.0f64, 2.0, 0.5, -1.0], [3.0, 4.0]);
/// let mut y = [0.0; 2];
/// dense(&x, &w, &mut y, (2, 1, 2))?;
/// assert_eq!(y, [11.0, -2.5]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn dense<T: Real>(
    x: &[T],
    w: &[T],
    out: &mut [T],
    (m, n, k): (usize, usize, usize),
) -> Result<()> {
    check_len("x [m, k]", m * k, x.len())?;
    check_len("w [k, n]", k * n, w.len())?;
    check_len("out [m, n]", m * n, out.len())?;
    if n == 0 {
        return Ok(());
    }
    out.par_chunks_mut(ROWS * n)
        .enumerate()
        .try_for_each(|(b, out)| {
            let rows = out.len() / n;
            let x = &x[b * ROWS * k..(b * ROWS + rows) * k];
            matmul(x, w, out, (rows, n, k), false)
        })
}

/// `out = x^T g`, the gradient of [`dense`]'s `w` given `g = dL/dy`: `x` `[m, k]`, `g` `[m,
/// n]`, `out` `[k, n]`, row-major; each block of rows' [`matmul_tn`] in parallel, summed in
/// block order. Wrong lengths give [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
///
/// ```
/// use equivariant_core::kernels::dense_weight_gradient;
/// let (x, g) = ([1.0f64, 2.0, 0.5, -1.0], [1.0, 1.0]);
/// let mut gw = [0.0; 2];
/// dense_weight_gradient(&x, &g, &mut gw, (2, 1, 2))?;
/// assert_eq!(gw, [1.5, 1.0]); // the column sums of x
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn dense_weight_gradient<T: Real>(
    x: &[T],
    g: &[T],
    out: &mut [T],
    (m, n, k): (usize, usize, usize),
) -> Result<()> {
    check_len("x [m, k]", m * k, x.len())?;
    check_len("g [m, n]", m * n, g.len())?;
    check_len("out [k, n]", k * n, out.len())?;
    let partials: Vec<Vec<T>> = (0..m.div_ceil(ROWS))
        .into_par_iter()
        .map(|b| {
            let rows = b * ROWS..((b + 1) * ROWS).min(m);
            let (xb, gb) = (
                &x[rows.start * k..rows.end * k],
                &g[rows.start * n..rows.end * n],
            );
            let mut c = vec![T::zero(); k * n];
            matmul_tn(xb, gb, &mut c, (k, n, rows.len()), false).map(|()| c)
        })
        .collect::<Result<_>>()?;
    out.fill(T::zero());
    for c in partials {
        out.iter_mut().zip(c).for_each(|(y, x)| *y += x);
    }
    Ok(())
}
