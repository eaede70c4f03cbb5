//! The eigendecomposition of a real symmetric matrix (cyclic Jacobi rotations), for the
//! null spaces that constant bases are built from. Eigenvectors of repeated eigenvalues are
//! any orthonormal basis of their space: callers use projectors, which do not depend on it.

use super::linalg::Matrix;
use crate::{Error, Result};

/// The eigenvalues (ascending) and eigenvectors (the columns of the returned matrix, in the
/// same order) of the symmetric matrix `a`, as `torch.linalg.eigh` gives them up to the
/// choice of basis within repeated eigenvalues.
///
/// Errors: [`Error::ShapeMismatch`] for a matrix that is not square;
/// [`Error::InvalidArgument`] for one that is not symmetric (to 1e-12 of its largest entry)
/// or not finite.
///
/// ```
/// use equivariant_core::math::{Matrix, eigh};
/// let a = Matrix::new(2, 2, vec![2.0, 1.0, 1.0, 2.0])?;
/// let (values, vectors) = eigh(&a)?;
/// assert!((values[0] - 1.0).abs() < 1e-14 && (values[1] - 3.0).abs() < 1e-14);
/// let h = std::f64::consts::FRAC_1_SQRT_2;
/// assert!((vectors.get(0, 1).abs() - h).abs() < 1e-14);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn eigh(a: &Matrix) -> Result<(Vec<f64>, Matrix)> {
    let n = a.rows();
    if a.cols() != n {
        return Err(Error::ShapeMismatch {
            what: "eigh: a square matrix (columns = rows)",
            expected: n,
            got: a.cols(),
        });
    }
    let scale = a.data().iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if !scale.is_finite() {
        return Err(Error::InvalidArgument {
            name: "eigh",
            reason: "the matrix is not finite".into(),
        });
    }
    for i in 0..n {
        for j in 0..i {
            if (a.get(i, j) - a.get(j, i)).abs() > 1e-12 * scale.max(1.0) {
                return Err(Error::InvalidArgument {
                    name: "eigh",
                    reason: format!("the matrix is not symmetric at ({i}, {j})"),
                });
            }
        }
    }
    let mut m: Vec<f64> = a.data().to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    // Sweeps of rotations zeroing each off-diagonal pair, until the off-diagonal part is
    // negligible against the matrix (quadratic convergence: a few sweeps).
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        if off.sqrt() <= 1e-15 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (m[p * n + p], m[q * n + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].total_cmp(&m[j * n + j]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (col, &i) in order.iter().enumerate() {
        for k in 0..n {
            vectors[k * n + col] = v[k * n + i];
        }
    }
    Ok((values, Matrix::new(n, n, vectors)?))
}
