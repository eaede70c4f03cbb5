//! e3nn's `io.CartesianTensor`: a Cartesian tensor of vectors (every index `1o`) with index
//! symmetries, to and from its irreps through the [`ReducedTensorProducts`] of its formula.
//! What NequIP and MACE predict tensor properties through (polarizabilities, Born charges,
//! dielectric and elastic tensors).

use std::collections::BTreeMap;

use crate::o3::{Irreps, ReducedTensorProducts};
use crate::{Error, Result};

/// A Cartesian tensor with the symmetries of `formula` (e.g. `"ij=ji"`, `"ijkl=jikl=klij"`),
/// every index a vector (`1o`).
///
/// ```
/// use equivariant_core::io::CartesianTensor;
/// let symmetric = CartesianTensor::new("ij=ji")?;
/// assert_eq!(symmetric.irreps().to_string(), "1x0e+1x2e");
/// // A symmetric tensor's irreps and back: the tensor itself.
/// let t = [1.0, 2.0, 3.0, 2.0, 4.0, 5.0, 3.0, 5.0, 6.0];
/// let back = symmetric.to_cartesian(&symmetric.from_cartesian(&t)?)?;
/// assert!(back.iter().zip(&t).all(|(a, b)| (a - b).abs() < 1e-12));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CartesianTensor {
    formula: String,
    rank: usize,
    rtp: ReducedTensorProducts,
}

impl CartesianTensor {
    /// The tensor of `formula`, every index `1o`.
    ///
    /// Errors: [`Error::InvalidFormula`] for a malformed formula.
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// assert_eq!(CartesianTensor::new("ij=-ji")?.irreps().to_string(), "1x1e");
    /// assert!(CartesianTensor::new("ij=jk").is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(formula: &str) -> Result<Self> {
        let first = formula.split('=').next().unwrap_or_default();
        let indices: Vec<char> = first.chars().filter(|&c| c != '-').collect();
        let vector: Irreps = "1o".parse()?;
        let irreps: BTreeMap<char, Irreps> = indices.iter().map(|&i| (i, vector.clone())).collect();
        let rtp = ReducedTensorProducts::new(formula, &irreps, None, None, 1e-9)?;
        Ok(CartesianTensor {
            formula: formula.to_string(),
            rank: indices.len(),
            rtp,
        })
    }

    /// The formula.
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// assert_eq!(CartesianTensor::new("ij")?.formula(), "ij");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn formula(&self) -> &str {
        &self.formula
    }

    /// The irreps of the tensor (e3nn's `CartesianTensor` is these irreps).
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// assert_eq!(CartesianTensor::new("ij")?.irreps().to_string(), "1x0e+1x1e+1x2e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps(&self) -> &Irreps {
        self.rtp.irreps_out()
    }

    /// The reduced tensor products of the formula (their change of basis `Q`).
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// assert_eq!(CartesianTensor::new("ij=ji")?.reduced_tensor_products().shape(), [6, 3, 3]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn reduced_tensor_products(&self) -> &ReducedTensorProducts {
        &self.rtp
    }

    /// The number of entries of one Cartesian tensor, `3^rank`.
    fn entries(&self) -> usize {
        3usize.pow(self.rank as u32)
    }

    /// e3nn's `from_cartesian`: Cartesian tensors `[batch, 3, ..., 3]` (row-major, `3^rank`
    /// values each) to their irreps `[batch, irreps.dim]`, `x Q^T`.
    ///
    /// Errors: [`Error::ShapeMismatch`] unless `data` holds a whole number of tensors.
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// let x = CartesianTensor::new("ijk=-jik=-ikj")?;
    /// assert!(x.from_cartesian(&[1.0; 27])?[0].abs() < 1e-12); // no antisymmetric part
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn from_cartesian(&self, data: &[f64]) -> Result<Vec<f64>> {
        let n = self.entries();
        if !data.len().is_multiple_of(n) {
            return Err(Error::ShapeMismatch {
                what: "Cartesian tensors (3^rank values each)",
                expected: data.len() / n * n,
                got: data.len(),
            });
        }
        let q = self.rtp.change_of_basis();
        Ok(data
            .chunks_exact(n)
            .flat_map(|t| {
                q.chunks_exact(n)
                    .map(move |row| row.iter().zip(t).map(|(a, b)| a * b).sum())
            })
            .collect())
    }

    /// e3nn's `to_cartesian`: irreps `[batch, irreps.dim]` to Cartesian tensors `[batch, 3,
    /// ..., 3]`, `y Q`: the inverse of [`from_cartesian`](Self::from_cartesian) on tensors
    /// with the formula's symmetries (on others, their symmetric part).
    ///
    /// Errors: [`Error::ShapeMismatch`] unless `data` holds a whole number of irreps vectors.
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// let x = CartesianTensor::new("ij=ji")?;
    /// let identity = x.to_cartesian(&[3f64.sqrt(), 0.0, 0.0, 0.0, 0.0, 0.0])?;
    /// assert!((identity[0] - 1.0).abs() < 1e-12 && identity[1].abs() < 1e-12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn to_cartesian(&self, data: &[f64]) -> Result<Vec<f64>> {
        let (d, n) = (self.irreps().dim(), self.entries());
        if d == 0 || !data.len().is_multiple_of(d) {
            return Err(Error::ShapeMismatch {
                what: "irreps vectors (irreps.dim values each)",
                expected: data.len().checked_div(d).map_or(0, |k| k * d),
                got: data.len(),
            });
        }
        let q = self.rtp.change_of_basis();
        let mut out = vec![0.0; data.len() / d * n];
        for (y, t) in data.chunks_exact(d).zip(out.chunks_exact_mut(n)) {
            for (c, row) in y.iter().zip(q.chunks_exact(n)) {
                for (o, v) in t.iter_mut().zip(row) {
                    *o += c * v;
                }
            }
        }
        Ok(out)
    }

    /// e3nn's `from_vectors(x_1, ..., x_k)`: the irreps of `x_1 (x) ... (x) x_k`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for another number of vectors or a vector not of
    /// length 3.
    ///
    /// ```
    /// use equivariant_core::io::CartesianTensor;
    /// let x = CartesianTensor::new("ijk=-jik=-ikj")?;
    /// assert!(x.from_vectors(&[&[1.0; 3], &[1.0; 3], &[1.0; 3]])?[0].abs() < 1e-12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn from_vectors(&self, vectors: &[&[f64]]) -> Result<Vec<f64>> {
        self.rtp.forward(vectors)
    }
}
