//! e3nn's index-symmetry reduction (`e3nn.math._reduce`): a formula such as `"ij=-ji"`
//! read as a group of signed permutations of its indices ([`germinate_formulas`]), and the
//! orthonormal basis of the tensors with those symmetries ([`reduce_permutation`]), in
//! e3nn's order and signs. `ReducedTensorProducts` and Cartesian tensors start from it.

use std::collections::{BTreeMap, BTreeSet};

use super::perm::{self, Perm};
use crate::{Error, Result};

/// A signed permutation of a formula's indices: `(s, p)` says `T[x] = s T[x o p]`.
pub type SignedPerm = (i8, Perm);

/// An entry of a tensor with its sign: `(s, index)`.
pub type SignedIndex = (i8, Vec<usize>);

/// The indices of `formula` (its first term, which must not be negated) and the group of
/// signed permutations its equalities generate (closed under inverses and products, signs
/// multiplied), as e3nn's `germinate_formulas`.
///
/// Errors: [`Error::InvalidFormula`] for a negated first term, an index repeated in a term,
/// or a term that is not a permutation of the first.
///
/// ```
/// use equivariant_core::math::germinate_formulas;
/// let (f0, group) = germinate_formulas("ij=-ji")?;
/// assert_eq!(f0, "ij");
/// assert_eq!(group, [(-1, vec![1, 0]), (1, vec![0, 1])].into());
/// assert!(germinate_formulas("ij=jk").is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn germinate_formulas(formula: &str) -> Result<(String, BTreeSet<SignedPerm>)> {
    let invalid = |reason: String| Error::InvalidFormula {
        formula: formula.to_string(),
        reason,
    };
    let terms: Vec<(i8, Vec<char>)> = formula
        .split('=')
        .map(|f| {
            let sign = if f.starts_with('-') { -1 } else { 1 };
            (sign, f.chars().filter(|&c| c != '-').collect())
        })
        .collect();
    let (s0, f0) = &terms[0];
    if *s0 != 1 {
        return Err(invalid("the first term must not be negated".into()));
    }
    let set0: BTreeSet<char> = f0.iter().copied().collect();
    for (_, f) in &terms {
        let set: BTreeSet<char> = f.iter().copied().collect();
        let text: String = f.iter().collect();
        if set.len() != f.len() {
            return Err(invalid(format!("{text} repeats an index")));
        }
        if set != set0 || f.len() != f0.len() {
            let first: String = f0.iter().collect();
            return Err(invalid(format!("{text} is not a permutation of {first}")));
        }
    }
    // Each term as the permutation of the first's indices it reads them in.
    let generators: BTreeSet<SignedPerm> = terms
        .iter()
        .map(|(s, f)| {
            let p = f0
                .iter()
                .map(|i| f.iter().position(|c| c == i).unwrap_or_default())
                .collect();
            (*s, p)
        })
        .collect();
    let mut group = generators;
    loop {
        let n = group.len();
        let inverses = group
            .iter()
            .map(|(s, p)| Ok((*s, perm::inverse(p)?)))
            .collect::<Result<Vec<_>>>()?;
        group.extend(inverses);
        let mut products = Vec::new();
        for (s1, p1) in &group {
            for (s2, p2) in &group {
                products.push((s1 * s2, perm::compose(p1, p2)?));
            }
        }
        group.extend(products);
        if group.len() == n {
            return Ok((f0.iter().collect(), group));
        }
    }
}

/// Spreads the values of `values` (a dimension, or irreps, per index) along the symmetries
/// `formulas` of the indices `f0`: two indices a permutation swaps share theirs.
///
/// Errors: [`Error::InvalidFormula`] for a permutation of other indices, or two joined
/// indices with different values (`what` names them).
pub(crate) fn share_along<V: Clone + PartialEq + std::fmt::Display>(
    f0: &str,
    formulas: &BTreeSet<SignedPerm>,
    values: &mut BTreeMap<char, V>,
    what: &str,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidFormula {
        formula: f0.to_string(),
        reason,
    };
    let indices: Vec<char> = f0.chars().collect();
    for (_, p) in formulas {
        if p.len() != indices.len() || !perm::is_perm(p) {
            return Err(invalid(format!(
                "{p:?} does not permute the {} indices",
                indices.len()
            )));
        }
        for (&i, &k) in indices.iter().zip(p) {
            let j = indices[k];
            match (values.get(&i).cloned(), values.get(&j).cloned()) {
                (Some(a), Some(b)) if a != b => {
                    return Err(invalid(format!(
                        "indices {i} and {j} must have the same {what}, not {a} and {b}"
                    )));
                }
                (Some(a), None) => {
                    values.insert(j, a);
                }
                (None, Some(b)) => {
                    values.insert(i, b);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The basis of [`reduce_permutation`]: `q` of shape `[d, dims...]` (row-major), `d` the
/// number of degrees of freedom left by the symmetries, and for each basis tensor the
/// signed entries it spreads over.
#[derive(Debug, Clone, PartialEq)]
pub struct ReducedPermutation {
    /// The shape of `q`: the number of basis tensors, then each index's dimension.
    pub shape: Vec<usize>,
    /// The basis tensors, row-major over `shape`: orthonormal.
    pub q: Vec<f64>,
    /// For each basis tensor, its entries and their signs (all `1 / sqrt(len)` in size).
    pub entries: Vec<Vec<SignedIndex>>,
}

/// e3nn's `reduce_permutation(f0, formulas, **dims)`: the orthonormal basis of the tensors
/// with indices `f0` (dimension `dims[index]` each; one given per orbit of the symmetries is
/// enough) that obey the signed permutations `formulas` (from [`germinate_formulas`]), in
/// e3nn's order and signs.
///
/// Errors: [`Error::InvalidFormula`] for two indices the symmetries join with different
/// dimensions, or an index without a dimension.
///
/// ```
/// use std::collections::BTreeMap;
/// use equivariant_core::math::{germinate_formulas, reduce_permutation};
/// // Antisymmetric 2x2 tensors: one degree of freedom, (e01 - e10) / sqrt 2.
/// let (f0, formulas) = germinate_formulas("ij=-ji")?;
/// let r = reduce_permutation(&f0, &formulas, &BTreeMap::from([('i', 2)]))?;
/// assert_eq!(r.shape, [1, 2, 2]);
/// let h = std::f64::consts::FRAC_1_SQRT_2;
/// assert!((r.q[1] + h).abs() < 1e-15 && (r.q[2] - h).abs() < 1e-15);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn reduce_permutation(
    f0: &str,
    formulas: &BTreeSet<SignedPerm>,
    dims: &BTreeMap<char, usize>,
) -> Result<ReducedPermutation> {
    let invalid = |reason: String| Error::InvalidFormula {
        formula: f0.to_string(),
        reason,
    };
    let indices: Vec<char> = f0.chars().collect();
    let mut dims = dims.clone();
    share_along(f0, formulas, &mut dims, "dimension")?;
    let dims: Vec<usize> = indices
        .iter()
        .map(|i| {
            dims.get(i)
                .copied()
                .ok_or_else(|| invalid(format!("index {i} has no dimension")))
        })
        .collect::<Result<_>>()?;
    // Each entry x of the full tensor with the entries the symmetries tie it to (s T[y] =
    // T[x]); an entry tied to its own negative is zero. Both signs of an orbit are kept, as
    // e3nn keeps them, and orbits are sorted as e3nn sorts them.
    let total: usize = dims.iter().product();
    let mut orbits: BTreeSet<Vec<Vec<SignedIndex>>> = BTreeSet::new();
    for flat in 0..total {
        let mut x = vec![0; dims.len()];
        let mut rest = flat;
        for (k, d) in dims.iter().enumerate().rev() {
            x[k] = rest % d;
            rest /= d;
        }
        let xs: BTreeSet<SignedIndex> = formulas
            .iter()
            .map(|(s, p)| (*s, p.iter().map(|&k| x[k]).collect()))
            .collect();
        if xs.contains(&(-1, x.clone())) {
            continue;
        }
        let negated: BTreeSet<SignedIndex> = xs.iter().map(|(s, y)| (-s, y.clone())).collect();
        let pair: BTreeSet<Vec<SignedIndex>> = [
            xs.into_iter().collect::<Vec<_>>(),
            negated.into_iter().collect::<Vec<_>>(),
        ]
        .into();
        orbits.insert(pair.into_iter().collect());
    }
    let d = orbits.len();
    let mut q = vec![0.0; d * total];
    let mut entries = Vec::with_capacity(d);
    for (row, pair) in orbits.into_iter().enumerate() {
        // The sign variant with the most + entries; the first of equals (as Python's max).
        let mut best = &pair[0];
        let score = |v: &Vec<SignedIndex>| v.iter().map(|(s, _)| i64::from(*s)).sum::<i64>();
        for candidate in &pair[1..] {
            if score(candidate) > score(best) {
                best = candidate;
            }
        }
        let scale = 1.0 / (best.len() as f64).sqrt();
        for (s, e) in best {
            let j = e.iter().zip(&dims).fold(0, |j, (k, d)| j * d + k);
            q[row * total + j] = f64::from(*s) * scale;
        }
        entries.push(best.clone());
    }
    let mut shape = vec![d];
    shape.extend(&dims);
    Ok(ReducedPermutation { shape, q, entries })
}
