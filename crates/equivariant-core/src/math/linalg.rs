//! e3nn's `e3nn.math` linear algebra: [`orthonormalize`] (Gram-Schmidt with e3nn's
//! thresholds and signs), [`complete_basis`] and [`direct_sum`], on a small row-major
//! [`Matrix`]. They build constant change-of-basis tensors (reduced tensor products,
//! Cartesian tensors, representations of permutations), so they run in f64 only.

use crate::{Error, Result};

/// A dense row-major matrix of f64, `[rows, cols]`.
///
/// ```
/// use equivariant_core::math::Matrix;
/// let m = Matrix::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// assert_eq!((m.rows(), m.cols(), m.get(1, 0)), (2, 3, 4.0));
/// assert_eq!(m.row(1), [4.0, 5.0, 6.0]);
/// assert!(Matrix::new(2, 2, vec![1.0]).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// The matrix of `data` (`rows * cols` values, row after row).
    ///
    /// Errors: [`Error::ShapeMismatch`] when `data` has another length.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::new(1, 2, vec![3.0, 4.0])?.data(), [3.0, 4.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::ShapeMismatch {
                what: "matrix data (rows x cols values)",
                expected: rows * cols,
                got: data.len(),
            });
        }
        Ok(Matrix { rows, cols, data })
    }

    /// The `rows x cols` matrix of zeros.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::zeros(2, 0).rows(), 2);
    /// ```
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// The `n x n` identity.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::identity(2).data(), [1.0, 0.0, 0.0, 1.0]);
    /// ```
    pub fn identity(n: usize) -> Self {
        let mut m = Matrix::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = 1.0;
        }
        m
    }

    /// The number of rows.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::zeros(3, 1).rows(), 3);
    /// ```
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::zeros(3, 1).cols(), 1);
    /// ```
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` (panics past the last row).
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::identity(2).row(1), [0.0, 1.0]);
    /// ```
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Entry `(i, j)` (panics outside the matrix).
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::identity(2).get(1, 1), 1.0);
    /// ```
    pub fn get(&self, i: usize, j: usize) -> f64 {
        assert!(
            j < self.cols,
            "column {j} of a matrix of {} columns",
            self.cols
        );
        self.data[i * self.cols + j]
    }

    /// The values, row after row.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// assert_eq!(Matrix::zeros(1, 2).data(), [0.0, 0.0]);
    /// ```
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The transpose.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// let m = Matrix::new(1, 2, vec![1.0, 2.0])?.transpose();
    /// assert_eq!((m.rows(), m.data()), (2, &[1.0, 2.0][..]));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn transpose(&self) -> Matrix {
        let mut t = Matrix::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                t.data[j * self.rows + i] = self.data[i * self.cols + j];
            }
        }
        t
    }

    /// The product `self @ other`.
    ///
    /// Errors: [`Error::ShapeMismatch`] unless `other` has `self.cols()` rows.
    ///
    /// ```
    /// use equivariant_core::math::Matrix;
    /// let a = Matrix::new(1, 2, vec![1.0, 2.0])?;
    /// assert_eq!(a.matmul(&a.transpose())?.data(), [5.0]);
    /// assert!(a.matmul(&a).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn matmul(&self, other: &Matrix) -> Result<Matrix> {
        if other.rows != self.cols {
            return Err(Error::ShapeMismatch {
                what: "matmul: rows of the right matrix (columns of the left)",
                expected: self.cols,
                got: other.rows,
            });
        }
        let mut out = Matrix::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            for k in 0..self.cols {
                let a = self.data[i * self.cols + k];
                for j in 0..other.cols {
                    out.data[i * other.cols + j] += a * other.data[k * other.cols + j];
                }
            }
        }
        Ok(out)
    }

    /// The matrix of `rows` (each `cols` long).
    fn from_rows(rows: Vec<Vec<f64>>, cols: usize) -> Matrix {
        let n = rows.len();
        Matrix {
            rows: n,
            cols,
            data: rows.into_iter().flatten().collect(),
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// e3nn's clean-up of a new unit vector: entries below `eps` in magnitude set to zero, then
/// the sign that makes the first nonzero entry positive (also applied to `companion`).
fn clean(x: &mut [f64], mut companion: Option<&mut [f64]>, eps: f64) {
    let zero_small = |v: &mut [f64]| {
        for a in v.iter_mut() {
            if a.abs() < eps {
                *a = 0.0;
            }
        }
    };
    zero_small(x);
    if let Some(c) = companion.as_deref_mut() {
        zero_small(c);
    }
    let sign = x.iter().find(|v| **v != 0.0).map_or(1.0, |v| v.signum());
    x.iter_mut().for_each(|v| *v *= sign);
    if let Some(c) = companion {
        c.iter_mut().for_each(|v| *v *= sign);
    }
}

fn check_finite(what: &'static str, m: &Matrix) -> Result<()> {
    match m.data.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// e3nn's `orthonormalize(original, eps)`: Gram-Schmidt over the rows of `original`
/// (`[n, dim]`), keeping a row only if what remains of it is longer than `2 eps`, its
/// entries below `eps` zeroed and its sign chosen so its first nonzero entry is positive.
/// Returns `(final, matrix)`: the orthonormal rows `[k, dim]` and `A` `[k, n]` with
/// `final = A original`.
///
/// Errors: [`Error::NonFinite`] for a NaN or infinite entry.
///
/// ```
/// use equivariant_core::math::{Matrix, orthonormalize};
/// // Two parallel rows and a third: the second adds nothing.
/// let x = Matrix::new(3, 2, vec![2.0, 0.0, 1.0, 0.0, 1.0, 1.0])?;
/// let (y, a) = orthonormalize(&x, 1e-9)?;
/// assert_eq!(y.data(), [1.0, 0.0, 0.0, 1.0]);
/// assert_eq!(a.matmul(&x)?, y);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn orthonormalize(original: &Matrix, eps: f64) -> Result<(Matrix, Matrix)> {
    check_finite("orthonormalize: original", original)?;
    let n = original.rows;
    let mut finals: Vec<Vec<f64>> = Vec::new();
    let mut matrix: Vec<Vec<f64>> = Vec::new();
    for i in 0..n {
        let mut x = original.row(i).to_vec();
        let mut cx = vec![0.0; n];
        cx[i] = 1.0;
        for (y, cy) in finals.iter().zip(&matrix) {
            let c = dot(&x, y);
            for (a, b) in x.iter_mut().zip(y) {
                *a -= c * b;
            }
            for (a, b) in cx.iter_mut().zip(cy) {
                *a -= c * b;
            }
        }
        if norm(&x) > 2.0 * eps {
            let c = 1.0 / norm(&x);
            x.iter_mut().for_each(|v| *v *= c);
            cx.iter_mut().for_each(|v| *v *= c);
            clean(&mut x, Some(&mut cx), eps);
            finals.push(x);
            matrix.push(cx);
        }
    }
    Ok((
        Matrix::from_rows(finals, original.cols),
        Matrix::from_rows(matrix, n),
    ))
}

/// e3nn's `complete_basis(vecs, eps)`: unit rows `[k, dim]` orthogonal to the rows of `vecs`
/// (`[m, dim]`, orthonormal up to their lengths) and to each other, completing them to a
/// basis: the standard basis vectors, each with its components along the rows so far
/// removed, kept when longer than `2 eps` (entries below `eps` zeroed, first nonzero entry
/// positive).
///
/// Errors: [`Error::NonFinite`] for a NaN or infinite entry; [`Error::InvalidArgument`] for
/// a zero row.
///
/// ```
/// use equivariant_core::math::{Matrix, complete_basis};
/// let x = Matrix::new(1, 2, vec![1.0, 1.0])?;
/// let c = complete_basis(&x, 1e-9)?;
/// let h = std::f64::consts::FRAC_1_SQRT_2;
/// assert_eq!(c.rows(), 1);
/// assert!((c.get(0, 0) - h).abs() < 1e-15 && (c.get(0, 1) + h).abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn complete_basis(vecs: &Matrix, eps: f64) -> Result<Matrix> {
    check_finite("complete_basis: vecs", vecs)?;
    let dim = vecs.cols;
    let mut base: Vec<Vec<f64>> = Vec::with_capacity(vecs.rows);
    for i in 0..vecs.rows {
        let x = vecs.row(i);
        let length = norm(x);
        if length == 0.0 {
            return Err(Error::InvalidArgument {
                name: "vecs",
                reason: format!("row {i} is zero and has no direction"),
            });
        }
        base.push(x.iter().map(|v| v / length).collect());
    }
    let mut expand: Vec<Vec<f64>> = Vec::new();
    for k in 0..dim {
        let mut x = vec![0.0; dim];
        x[k] = 1.0;
        for y in base.iter().chain(&expand) {
            let c = dot(&x, y);
            for (a, b) in x.iter_mut().zip(y) {
                *a -= c * b;
            }
        }
        if norm(&x) > 2.0 * eps {
            let length = norm(&x);
            x.iter_mut().for_each(|v| *v /= length);
            clean(&mut x, None, eps);
            expand.push(x);
        }
    }
    Ok(Matrix::from_rows(expand, dim))
}

/// e3nn's `direct_sum(*matrices)`: the block-diagonal matrix of `matrices`, in order.
///
/// ```
/// use equivariant_core::math::{Matrix, direct_sum};
/// let a = Matrix::new(1, 1, vec![2.0])?;
/// let b = Matrix::new(1, 2, vec![3.0, 4.0])?;
/// assert_eq!(direct_sum(&[a, b]).data(), [2.0, 0.0, 0.0, 0.0, 3.0, 4.0]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn direct_sum(matrices: &[Matrix]) -> Matrix {
    let rows = matrices.iter().map(|m| m.rows).sum();
    let cols = matrices.iter().map(|m| m.cols).sum();
    let mut out = Matrix::zeros(rows, cols);
    let (mut i0, mut j0) = (0, 0);
    for m in matrices {
        for i in 0..m.rows {
            out.data[(i0 + i) * cols + j0..(i0 + i) * cols + j0 + m.cols].copy_from_slice(m.row(i));
        }
        i0 += m.rows;
        j0 += m.cols;
    }
    out
}
