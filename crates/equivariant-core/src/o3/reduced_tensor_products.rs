//! e3nn's `o3.ReducedTensorProducts`: a tensor with index symmetries (a formula such as
//! `"ij=ji"` or `"ijkl=jikl=klij"`, an irreps per index) reduced into irreps, as the
//! change-of-basis tensor `Q` `[irreps_out.dim, d_1, ..., d_k]` that maps the tensor to its
//! irreducible components, in e3nn's basis, order and signs.

use std::collections::BTreeMap;

use super::irreps::{Irrep, Irreps, MulIr};
use super::wigner_3j::wigner_3j;
use crate::math::reduce::share_along;
use crate::math::{Matrix, eigh, germinate_formulas, orthonormalize, reduce_permutation};
use crate::{Error, Result};

/// The irreducible decomposition of the tensors of a formula.
///
/// ```
/// use std::collections::BTreeMap;
/// use equivariant_core::o3::ReducedTensorProducts;
/// // Symmetric rank-2 tensors of vectors: a scalar (the trace) and an l = 2 part.
/// let tp = ReducedTensorProducts::new("ij=ji", &BTreeMap::from([('i', "1o".parse()?)]), None, None, 1e-9)?;
/// assert_eq!(tp.irreps_out().to_string(), "1x0e+1x2e");
/// assert_eq!(tp.shape(), [6, 3, 3]);
/// let antisymmetric = tp.forward(&[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]])?;
/// let swapped = tp.forward(&[&[0.0, 1.0, 0.0], &[1.0, 0.0, 0.0]])?;
/// assert!(antisymmetric.iter().zip(&swapped).all(|(a, b)| (a - b).abs() < 1e-12));
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReducedTensorProducts {
    irreps_in: Vec<Irreps>,
    irreps_out: Irreps,
    shape: Vec<usize>,
    change_of_basis: Vec<f64>,
}

/// A tensor of one irrep over the product of the inputs: `[ir.dim, total]` row-major.
type Component = (Irrep, Vec<f64>);

/// e3nn's `_wigner_nj` (component normalization): every coupling path of the inputs'
/// irreps, left to right, as `(ir_out, E)` with `E` `[ir_out.dim, d_1 ... d_k]`, sorted
/// (stably) by irrep.
fn wigner_nj(irrepss: &[Irreps], filter_ir_mid: Option<&[Irrep]>) -> Result<Vec<Component>> {
    let Some((right, left)) = irrepss.split_last() else {
        return Ok(Vec::new());
    };
    if left.is_empty() {
        let d = right.dim();
        let mut out = Vec::new();
        let mut i = 0;
        for MulIr { mul, ir } in right.iter() {
            for _ in 0..*mul {
                let mut e = vec![0.0; ir.dim() * d];
                for k in 0..ir.dim() {
                    e[k * d + i + k] = 1.0;
                }
                out.push((*ir, e));
                i += ir.dim();
            }
        }
        return Ok(out);
    }
    let d_left: usize = left.iter().map(Irreps::dim).product();
    let d_right = right.dim();
    let mut out = Vec::new();
    for (ir_left, c_left) in wigner_nj(left, filter_ir_mid)? {
        let a = ir_left.dim();
        let mut i = 0;
        for MulIr { mul, ir } in right.iter() {
            let b = ir.dim();
            for ir_out in ir_left.tensor_product(ir) {
                if filter_ir_mid.is_some_and(|f| !f.contains(&ir_out)) {
                    continue;
                }
                let w = wigner_3j(ir_out.l, ir_left.l, ir.l)?;
                let o = ir_out.dim();
                let norm = (o as f64).sqrt();
                // C[o, D_left, b] = sum_j C_left[j, D_left] w[o, j, b] sqrt(o).
                let mut c = vec![0.0; o * d_left * b];
                for z in 0..o {
                    for j in 0..a {
                        for l in 0..b {
                            let wv = w.get(z, j, l) * norm;
                            if wv == 0.0 {
                                continue;
                            }
                            for k in 0..d_left {
                                c[(z * d_left + k) * b + l] += c_left[j * d_left + k] * wv;
                            }
                        }
                    }
                }
                for u in 0..*mul {
                    let start = i + u * b;
                    let mut e = vec![0.0; o * d_left * d_right];
                    for z in 0..o {
                        for k in 0..d_left {
                            for l in 0..b {
                                e[(z * d_left + k) * d_right + start + l] =
                                    c[(z * d_left + k) * b + l];
                            }
                        }
                    }
                    out.push((ir_out, e));
                }
            }
            i += mul * b;
        }
    }
    out.sort_by_key(|(ir, _)| *ir);
    Ok(out)
}

impl ReducedTensorProducts {
    /// The decomposition of the tensors of `formula` (indices, `=` between equal
    /// permutations, `-` for a sign: `"ij=-ji"`) whose index `c` transforms as `irreps[c]`
    /// (one per orbit of the symmetries is enough), keeping the output irreps in
    /// `filter_ir_out` and the intermediate couplings in `filter_ir_mid` (`None`: all), with
    /// e3nn's threshold `eps` (1e-9).
    ///
    /// Errors: [`Error::InvalidFormula`] for a malformed formula, an index without irreps,
    /// irreps given for an index not in the formula, or two indices the symmetries join with
    /// different irreps; [`Error::InvalidArgument`] when the decomposition fails (a null space
    /// that differs between components: a bad `eps`).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use equivariant_core::o3::ReducedTensorProducts;
    /// // The elastic tensor: 21 components, 2x0e + 2x2e + 1x4e.
    /// let irreps = BTreeMap::from([('i', "1o".parse()?)]);
    /// let tp = ReducedTensorProducts::new("ijkl=jikl=klij", &irreps, None, None, 1e-9)?;
    /// assert_eq!(tp.irreps_out().to_string(), "2x0e+2x2e+1x4e");
    /// assert!(ReducedTensorProducts::new("ij=ji", &BTreeMap::new(), None, None, 1e-9).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        formula: &str,
        irreps: &BTreeMap<char, Irreps>,
        filter_ir_out: Option<&[Irrep]>,
        filter_ir_mid: Option<&[Irrep]>,
        eps: f64,
    ) -> Result<Self> {
        let (f0, formulas) = germinate_formulas(formula)?;
        let invalid = |reason: String| Error::InvalidFormula {
            formula: formula.to_string(),
            reason,
        };
        let indices: Vec<char> = f0.chars().collect();
        let mut irreps = irreps.clone();
        share_along(&f0, &formulas, &mut irreps, "irreps")?;
        if let Some(i) = irreps.keys().find(|i| !indices.contains(i)) {
            return Err(invalid(format!(
                "index {i} has irreps but is not in the formula"
            )));
        }
        let irreps_in: Vec<Irreps> = indices
            .iter()
            .map(|i| {
                irreps
                    .get(i)
                    .cloned()
                    .ok_or_else(|| invalid(format!("index {i} has no irreps")))
            })
            .collect::<Result<_>>()?;
        let dims: BTreeMap<char, usize> = indices
            .iter()
            .zip(&irreps_in)
            .map(|(&i, irs)| (i, irs.dim()))
            .collect();
        let perm = reduce_permutation(&f0, &formulas, &dims)?;
        let total: usize = irreps_in.iter().map(Irreps::dim).product();
        let a = perm.shape[0];
        let p = Matrix::new(a, total, perm.q)?;
        let pp = p.matmul(&p.transpose())?;

        // The coupling paths by output irrep, in e3nn's order (sorted, stable).
        let mut groups: Vec<(Irrep, Vec<Vec<f64>>)> = Vec::new();
        for (ir, e) in wigner_nj(&irreps_in, filter_ir_mid)? {
            if filter_ir_out.is_some_and(|f| !f.contains(&ir)) {
                continue;
            }
            match groups.last_mut() {
                Some((last, paths)) if *last == ir => paths.push(e),
                _ => groups.push((ir, vec![e])),
            }
        }

        let mut change_of_basis: Vec<f64> = Vec::new();
        let mut irreps_out: Vec<MulIr> = Vec::new();
        for (ir, paths) in &groups {
            let mul = paths.len();
            // Component 0 of every path, [mul, total]: the X with X R = Y P for some Y
            // (the paths' combinations that lie in the symmetric tensors) is the null space
            // of [[R R^T, -R P^T], [-P R^T, P P^T]].
            let r = Matrix::new(
                mul,
                total,
                paths.iter().flat_map(|e| e[..total].to_vec()).collect(),
            )?;
            let rr = r.matmul(&r.transpose())?;
            let rp = r.matmul(&p.transpose())?;
            let m = mul + a;
            let mut prob = vec![0.0; m * m];
            for u in 0..mul {
                for v in 0..mul {
                    prob[u * m + v] = rr.get(u, v);
                }
                for s in 0..a {
                    prob[u * m + mul + s] = -rp.get(u, s);
                    prob[(mul + s) * m + u] = -rp.get(u, s);
                }
            }
            for s in 0..a {
                for t in 0..a {
                    prob[(mul + s) * m + mul + t] = pp.get(s, t);
                }
            }
            let (values, vectors) = eigh(&Matrix::new(m, m, prob)?)?;
            // The projector X^T X onto the solutions' path coefficients (any basis of the
            // null space gives the same).
            let null: Vec<usize> = (0..m).filter(|&k| values[k] < eps).collect();
            let mut proj = vec![0.0; mul * mul];
            for u in 0..mul {
                for v in 0..mul {
                    proj[u * mul + v] = null
                        .iter()
                        .map(|&k| vectors.get(u, k) * vectors.get(v, k))
                        .sum();
                }
            }
            let (xs, _) = orthonormalize(&Matrix::new(mul, mul, proj)?, eps)?;
            let d = ir.dim();
            for x in 0..xs.rows() {
                let mut c = vec![0.0; d * total];
                for (u, path) in paths.iter().enumerate() {
                    let coefficient = xs.get(x, u);
                    for (cv, pv) in c.iter_mut().zip(path) {
                        *cv += coefficient * pv;
                    }
                }
                let squares: f64 = c.iter().map(|v| v * v).sum();
                if squares == 0.0 {
                    return Err(Error::InvalidArgument {
                        name: "eps",
                        reason: format!("a zero component of {ir}: eps {eps} too large"),
                    });
                }
                let correction = (d as f64 / squares).sqrt();
                change_of_basis.extend(c.iter().map(|v| v * correction));
                irreps_out.push(MulIr { mul: 1, ir: *ir });
            }
        }
        let irreps_out = Irreps::from_entries(irreps_out).simplify();
        let mut shape = vec![irreps_out.dim()];
        shape.extend(irreps_in.iter().map(Irreps::dim));
        Ok(ReducedTensorProducts {
            irreps_in,
            irreps_out,
            shape,
            change_of_basis,
        })
    }

    /// The irreps of each index, in the formula's order.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use equivariant_core::o3::ReducedTensorProducts;
    /// let tp = ReducedTensorProducts::new("ij", &BTreeMap::from([('i', "1o".parse()?), ('j', "0e".parse()?)]), None, None, 1e-9)?;
    /// assert_eq!(tp.irreps_in()[1].to_string(), "1x0e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_in(&self) -> &[Irreps] {
        &self.irreps_in
    }

    /// The irreps of the reduced tensor.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use equivariant_core::o3::ReducedTensorProducts;
    /// let tp = ReducedTensorProducts::new("ij=-ji", &BTreeMap::from([('i', "1o".parse()?)]), None, None, 1e-9)?;
    /// assert_eq!(tp.irreps_out().to_string(), "1x1e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn irreps_out(&self) -> &Irreps {
        &self.irreps_out
    }

    /// The shape of the change of basis: `[irreps_out.dim, d_1, ..., d_k]`.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use equivariant_core::o3::ReducedTensorProducts;
    /// let tp = ReducedTensorProducts::new("ij=-ji", &BTreeMap::from([('i', "1o".parse()?)]), None, None, 1e-9)?;
    /// assert_eq!(tp.shape(), [3, 3, 3]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The change of basis `Q`, row-major over [`shape`](Self::shape): the reduced tensor is
    /// `Q[z, i, j, ...] T[i, j, ...]`.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use equivariant_core::o3::ReducedTensorProducts;
    /// let tp = ReducedTensorProducts::new("ij=ji", &BTreeMap::from([('i', "1o".parse()?)]), None, None, 1e-9)?;
    /// // The 0e component is the trace / sqrt 3.
    /// let q = tp.change_of_basis();
    /// assert!((q[0] - 1.0 / 3f64.sqrt()).abs() < 1e-12 && q[1].abs() < 1e-12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn change_of_basis(&self) -> &[f64] {
        &self.change_of_basis
    }

    /// e3nn's `forward(x_1, ..., x_k)`: the reduced tensor of the product
    /// `x_1 (x) ... (x) x_k`, `Q[z, i, j, ...] x_1[i] x_2[j] ...`, `[irreps_out.dim]`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for another number of inputs or an input of another
    /// length.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use equivariant_core::o3::ReducedTensorProducts;
    /// let tp = ReducedTensorProducts::new("ij=-ji", &BTreeMap::from([('i', "1o".parse()?)]), None, None, 1e-9)?;
    /// let x = [1.0, 0.0, 0.0];
    /// assert!(tp.forward(&[&x, &x])?.iter().all(|v| v.abs() < 1e-12)); // x ^ x = 0
    /// assert!(tp.forward(&[&x]).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward(&self, inputs: &[&[f64]]) -> Result<Vec<f64>> {
        if inputs.len() != self.irreps_in.len() {
            return Err(Error::ShapeMismatch {
                what: "inputs (one per index of the formula)",
                expected: self.irreps_in.len(),
                got: inputs.len(),
            });
        }
        for (x, irreps) in inputs.iter().zip(&self.irreps_in) {
            if x.len() != irreps.dim() {
                return Err(Error::ShapeMismatch {
                    what: "input (the dimension of its index's irreps)",
                    expected: irreps.dim(),
                    got: x.len(),
                });
            }
        }
        // The outer product of the inputs, then Q times it.
        let mut outer = vec![1.0];
        for x in inputs {
            outer = outer
                .iter()
                .flat_map(|a| x.iter().map(move |b| a * b))
                .collect();
        }
        let total = outer.len();
        Ok(self
            .change_of_basis
            .chunks_exact(total.max(1))
            .map(|row| row.iter().zip(&outer).map(|(q, t)| q * t).sum())
            .collect())
    }
}
