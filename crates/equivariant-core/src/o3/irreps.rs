//! Irreducible representations of O(3) and direct sums of them, as e3nn's `o3.Irrep` and
//! `o3.Irreps`.
//!
//! An irrep `(l, p)` has dimension `2l + 1` and parity `p = ±1`. An [`Irreps`] is an ordered
//! list of `(mul, irrep)` pairs; data that transforms under it is one flat vector per sample,
//! the blocks concatenated in order, each block `mul x (2l + 1)` row-major (multiplicity
//! outer, `m` inner).

use std::fmt;
use std::ops::{Add, Mul, Range};
use std::str::FromStr;

use rand::Rng;
use rand_distr::StandardNormal;

use crate::{Error, Result};

/// The parity of an irrep: even (`e`, +1) or odd (`o`, -1).
///
/// The derived order puts `Odd` first, so irreps sort as e3nn sorts them:
/// `0o < 0e < 1o < 1e < ...`.
///
/// ```
/// use equivariant_core::o3::Parity;
/// assert_eq!(Parity::Odd * Parity::Odd, Parity::Even);
/// assert_eq!(Parity::Odd.sign(), -1);
/// assert!(Parity::Odd < Parity::Even);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Parity {
    /// `o`, p = -1.
    Odd,
    /// `e`, p = +1.
    Even,
}

impl Parity {
    /// The parity `(-1)^l` of the spherical harmonics of degree `l` (e3nn's `y`).
    ///
    /// ```
    /// use equivariant_core::o3::Parity;
    /// assert_eq!(Parity::of_harmonic(3), Parity::Odd);
    /// ```
    pub fn of_harmonic(l: u32) -> Parity {
        if l.is_multiple_of(2) {
            Parity::Even
        } else {
            Parity::Odd
        }
    }

    /// `+1` or `-1`.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::Parity::Even.sign(), 1);
    /// ```
    pub fn sign(self) -> i32 {
        match self {
            Parity::Even => 1,
            Parity::Odd => -1,
        }
    }

    /// `p^k`: `Even` for even `k`, `self` for odd `k`.
    ///
    /// ```
    /// use equivariant_core::o3::Parity;
    /// assert_eq!(Parity::Odd.pow(2), Parity::Even);
    /// ```
    pub fn pow(self, k: u32) -> Parity {
        if k.is_multiple_of(2) {
            Parity::Even
        } else {
            self
        }
    }
}

impl Mul for Parity {
    type Output = Parity;
    fn mul(self, other: Parity) -> Parity {
        if self == other {
            Parity::Even
        } else {
            Parity::Odd
        }
    }
}

/// An irreducible representation of O(3): degree `l` and parity `p`.
///
/// Parsed from `"<l><e|o|y>"` where `y` means `(-1)^l`; displayed as `"1o"`.
///
/// ```
/// use equivariant_core::o3::{Irrep, Parity};
/// let ir: Irrep = "2y".parse()?;
/// assert_eq!(ir, Irrep::new(2, Parity::Even));
/// assert_eq!(ir.dim(), 5);
/// assert_eq!(ir.to_string(), "2e");
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Irrep {
    /// The degree, `l >= 0`.
    pub l: u32,
    /// The parity.
    pub p: Parity,
}

impl Irrep {
    /// The irrep `(l, p)`.
    ///
    /// ```
    /// use equivariant_core::o3::{Irrep, Parity};
    /// assert_eq!(Irrep::new(1, Parity::Odd).to_string(), "1o");
    /// ```
    pub const fn new(l: u32, p: Parity) -> Self {
        Irrep { l, p }
    }

    /// The dimension `2l + 1`.
    ///
    /// ```
    /// assert_eq!("3o".parse::<equivariant_core::o3::Irrep>()?.dim(), 7);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub const fn dim(&self) -> usize {
        2 * self.l as usize + 1
    }

    /// Whether this is the trivial irrep `0e`.
    ///
    /// ```
    /// assert!("0e".parse::<equivariant_core::o3::Irrep>()?.is_scalar());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn is_scalar(&self) -> bool {
        self.l == 0 && self.p == Parity::Even
    }

    /// The irreps in the tensor product `self (x) other`: `(l, p1 p2)` for
    /// `|l1 - l2| <= l <= l1 + l2`, in increasing `l` (e3nn's `Irrep.__mul__`).
    ///
    /// ```
    /// use equivariant_core::o3::Irrep;
    /// let a: Irrep = "1o".parse()?;
    /// let outs: Vec<String> = a.tensor_product(&a).map(|ir| ir.to_string()).collect();
    /// assert_eq!(outs, ["0e", "1e", "2e"]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tensor_product(&self, other: &Irrep) -> impl Iterator<Item = Irrep> {
        let p = self.p * other.p;
        (self.l.abs_diff(other.l)..=self.l + other.l).map(move |l| Irrep::new(l, p))
    }
}

impl fmt::Display for Irrep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.p {
            Parity::Even => 'e',
            Parity::Odd => 'o',
        };
        write!(f, "{}{}", self.l, p)
    }
}

impl FromStr for Irrep {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidIrrep {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let name = text.trim();
        let last = name
            .chars()
            .last()
            .ok_or_else(|| bad("empty irrep (expected e.g. \"1o\")"))?;
        // Whitespace between degree and parity is accepted, as e3nn's int() does.
        let digits = name[..name.len() - last.len_utf8()].trim_end();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected a degree l >= 0 followed by e, o or y"));
        }
        let l: u32 = digits.parse().map_err(|_| bad("degree too large"))?;
        let p = match last {
            'e' => Parity::Even,
            'o' => Parity::Odd,
            'y' => Parity::of_harmonic(l),
            _ => return Err(bad("parity must be e, o or y")),
        };
        Ok(Irrep::new(l, p))
    }
}

impl Mul for Irrep {
    type Output = Vec<Irrep>;
    /// The allowed outputs of the tensor product, as [`Irrep::tensor_product`].
    fn mul(self, other: Irrep) -> Vec<Irrep> {
        self.tensor_product(&other).collect()
    }
}

/// One entry of an [`Irreps`]: `mul` copies of `ir`.
///
/// ```
/// use equivariant_core::o3::Irreps;
/// let irreps: Irreps = "3x1o".parse()?;
/// assert_eq!(irreps[0].mul, 3);
/// assert_eq!(irreps[0].dim(), 9);
/// assert_eq!(irreps[0].to_string(), "3x1o");
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MulIr {
    /// The multiplicity.
    pub mul: usize,
    /// The irrep.
    pub ir: Irrep,
}

impl MulIr {
    /// `mul` copies of `ir`.
    ///
    /// ```
    /// use equivariant_core::o3::{Irrep, MulIr, Parity};
    /// assert_eq!(MulIr::new(2, Irrep::new(0, Parity::Even)).dim(), 2);
    /// ```
    pub const fn new(mul: usize, ir: Irrep) -> Self {
        MulIr { mul, ir }
    }

    /// `mul * (2l + 1)`.
    ///
    /// ```
    /// use equivariant_core::o3::{Irrep, MulIr, Parity};
    /// assert_eq!(MulIr::new(4, Irrep::new(2, Parity::Odd)).dim(), 20);
    /// ```
    pub const fn dim(&self) -> usize {
        self.mul * self.ir.dim()
    }
}

impl fmt::Display for MulIr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.mul, self.ir)
    }
}

/// A direct sum of irreps: an ordered list of `(mul, irrep)`, as e3nn's `o3.Irreps`.
///
/// Grammar: `""` or `term ("+" term)*` with `term = [mul "x"] l parity` and whitespace
/// around terms allowed. Equality is structural (`1e+1e != 2x1e`).
///
/// ```
/// use equivariant_core::o3::Irreps;
/// let irreps: Irreps = "10x0e + 10x1e".parse()?;
/// assert_eq!(irreps.dim(), 40);
/// assert_eq!(irreps.num_irreps(), 20);
/// assert_eq!(irreps.to_string(), "10x0e+10x1e");
/// assert_eq!(irreps.slices(), vec![0..10, 10..40]);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Irreps(Vec<MulIr>);

/// The result of [`Irreps::sort`]: the sorted irreps and the two permutations.
///
/// `p[i]` is where entry `i` of the original goes; `inv[j]` is the original index of sorted
/// entry `j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sorted {
    /// The entries sorted by irrep (stable).
    pub irreps: Irreps,
    /// Original index -> sorted index.
    pub p: Vec<usize>,
    /// Sorted index -> original index.
    pub inv: Vec<usize>,
}

/// How [`Irreps::randn`] normalizes random features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RandnNormalization {
    /// Every component ~ N(0, 1).
    #[default]
    Component,
    /// Every irrep instance is a random unit vector.
    Norm,
}

impl Irreps {
    /// The empty direct sum.
    ///
    /// ```
    /// assert_eq!(equivariant_core::o3::Irreps::new().dim(), 0);
    /// ```
    pub fn new() -> Self {
        Irreps(Vec::new())
    }

    /// From `(mul, irrep)` entries.
    ///
    /// ```
    /// use equivariant_core::o3::{Irrep, Irreps, MulIr, Parity};
    /// let irreps = Irreps::from_entries(vec![MulIr::new(2, Irrep::new(1, Parity::Odd))]);
    /// assert_eq!(irreps.to_string(), "2x1o");
    /// ```
    pub fn from_entries(entries: Vec<MulIr>) -> Self {
        Irreps(entries)
    }

    /// `1x0e + 1x1o + 1x2e + ...` up to `lmax`, parity `p^l` (e3nn: `p = -1` by default).
    ///
    /// ```
    /// use equivariant_core::o3::{Irreps, Parity};
    /// assert_eq!(Irreps::spherical_harmonics(2, Parity::Odd).to_string(), "1x0e+1x1o+1x2e");
    /// assert_eq!(Irreps::spherical_harmonics(1, Parity::Even).to_string(), "1x0e+1x1e");
    /// ```
    pub fn spherical_harmonics(lmax: u32, p: Parity) -> Self {
        Irreps(
            (0..=lmax)
                .map(|l| MulIr::new(1, Irrep::new(l, p.pow(l))))
                .collect(),
        )
    }

    /// The entries.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "0e+1o".parse()?;
    /// assert_eq!(irreps.entries().len(), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn entries(&self) -> &[MulIr] {
        &self.0
    }

    /// The number of `(mul, irrep)` entries (not the dimension).
    ///
    /// ```
    /// assert_eq!("3x0e+2x1o".parse::<equivariant_core::o3::Irreps>()?.len(), 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// assert!("".parse::<equivariant_core::o3::Irreps>()?.is_empty());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the entries.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "3x0e+2x1o".parse()?;
    /// let muls: Vec<usize> = irreps.iter().map(|m| m.mul).collect();
    /// assert_eq!(muls, [3, 2]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, MulIr> {
        self.0.iter()
    }

    /// The entry at `index`, or [`Error::IndexOutOfRange`].
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "3x0e".parse()?;
    /// assert!(irreps.get(0).is_ok());
    /// assert!(irreps.get(1).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<MulIr> {
        self.0.get(index).copied().ok_or(Error::IndexOutOfRange {
            index,
            len: self.len(),
        })
    }

    /// The entries in `range` (Python's `irreps[a:b]`), or [`Error::IndexOutOfRange`].
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "1x0e+2x1o+3x2e".parse()?;
    /// assert_eq!(irreps.slice(1..3)?.to_string(), "2x1o+3x2e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn slice(&self, range: Range<usize>) -> Result<Irreps> {
        if range.start > range.end || range.end > self.len() {
            return Err(Error::IndexOutOfRange {
                index: range.end.max(range.start),
                len: self.len(),
            });
        }
        Ok(Irreps(self.0[range].to_vec()))
    }

    /// The total dimension `sum mul (2l + 1)`.
    ///
    /// ```
    /// assert_eq!("2x0e+1x2o".parse::<equivariant_core::o3::Irreps>()?.dim(), 7);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn dim(&self) -> usize {
        self.0.iter().map(MulIr::dim).sum()
    }

    /// The number of irrep instances, `sum mul`.
    ///
    /// ```
    /// assert_eq!("2x0e+1x2o".parse::<equivariant_core::o3::Irreps>()?.num_irreps(), 3);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_irreps(&self) -> usize {
        self.0.iter().map(|m| m.mul).sum()
    }

    /// The degree of every irrep instance, each repeated `mul` times.
    ///
    /// ```
    /// assert_eq!("2x0e+1x2o".parse::<equivariant_core::o3::Irreps>()?.ls(), [0, 0, 2]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn ls(&self) -> Vec<u32> {
        self.0
            .iter()
            .flat_map(|m| std::iter::repeat_n(m.ir.l, m.mul))
            .collect()
    }

    /// The largest degree, or [`Error::EmptyIrreps`].
    ///
    /// ```
    /// assert_eq!("2x0e+1x2o+1x1e".parse::<equivariant_core::o3::Irreps>()?.lmax()?, 2);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn lmax(&self) -> Result<u32> {
        self.0
            .iter()
            .map(|m| m.ir.l)
            .max()
            .ok_or(Error::EmptyIrreps { what: "lmax" })
    }

    /// The total multiplicity of `ir`.
    ///
    /// ```
    /// use equivariant_core::o3::Irreps;
    /// let irreps: Irreps = "2x0e+1x1o+3x0e".parse()?;
    /// assert_eq!(irreps.count(&"0e".parse()?), 5);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn count(&self, ir: &Irrep) -> usize {
        self.0.iter().filter(|m| m.ir == *ir).map(|m| m.mul).sum()
    }

    /// Whether `ir` appears with nonzero multiplicity.
    ///
    /// ```
    /// use equivariant_core::o3::Irreps;
    /// let irreps: Irreps = "2x0e+0x1o".parse()?;
    /// assert!(irreps.contains(&"0e".parse()?));
    /// assert!(!irreps.contains(&"1o".parse()?));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn contains(&self, ir: &Irrep) -> bool {
        self.count(ir) > 0
    }

    /// The range each entry occupies in the flat data vector.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "2x0e+1x1o".parse()?;
    /// assert_eq!(irreps.slices(), vec![0..2, 2..5]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn slices(&self) -> Vec<Range<usize>> {
        let mut start = 0;
        self.0
            .iter()
            .map(|m| {
                let range = start..start + m.dim();
                start = range.end;
                range
            })
            .collect()
    }

    /// Merges adjacent entries with equal irreps and drops zero multiplicities that are not
    /// merged into a previous entry; the order is kept (e3nn's `simplify`).
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "1e + 1e + 0e + 1e + 0x2e".parse()?;
    /// assert_eq!(irreps.simplify().to_string(), "2x1e+1x0e+1x1e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn simplify(&self) -> Irreps {
        let mut out: Vec<MulIr> = Vec::with_capacity(self.len());
        for m in &self.0 {
            match out.last_mut() {
                Some(last) if last.ir == m.ir => last.mul += m.mul,
                _ if m.mul > 0 => out.push(*m),
                _ => {}
            }
        }
        Irreps(out)
    }

    /// Drops the entries of multiplicity zero.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "0x0e+2x1o+0x2e".parse()?;
    /// assert_eq!(irreps.remove_zero_multiplicities().to_string(), "2x1o");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn remove_zero_multiplicities(&self) -> Irreps {
        Irreps(self.0.iter().copied().filter(|m| m.mul > 0).collect())
    }

    /// Sorts the entries by irrep, stably (`0o < 0e < 1o < 1e < ...`), returning the
    /// permutations as e3nn's `sort()`.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "1x1e+2x0e+3x1o".parse()?;
    /// let sorted = irreps.sort();
    /// assert_eq!(sorted.irreps.to_string(), "2x0e+3x1o+1x1e");
    /// assert_eq!(sorted.inv, [1, 2, 0]);
    /// assert_eq!(sorted.p, [2, 0, 1]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn sort(&self) -> Sorted {
        let mut inv: Vec<usize> = (0..self.len()).collect();
        inv.sort_by_key(|&i| (self.0[i].ir, i));
        let mut p = vec![0; inv.len()];
        for (j, &i) in inv.iter().enumerate() {
            p[i] = j;
        }
        let irreps = Irreps(inv.iter().map(|&i| self.0[i]).collect());
        Sorted { irreps, p, inv }
    }

    /// `sort().irreps.simplify()`: one entry per irrep, in sorted order.
    ///
    /// ```
    /// let irreps: equivariant_core::o3::Irreps = "1e + 0e + 1e".parse()?;
    /// assert_eq!(irreps.regroup().to_string(), "1x0e+2x1e");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn regroup(&self) -> Irreps {
        self.sort().irreps.simplify()
    }

    /// Keeps the entries whose irrep is in `keep` (all if `None`), is not in `drop`, and has
    /// `l <= lmax` (if given), as e3nn's `filter(keep, drop, lmax)`; unlike e3nn the three
    /// may be combined. (e3nn 0.6.0 given `keep` or `drop` as an `Irreps` matches nothing,
    /// a bug; its list-of-irreps form behaves as this does.)
    ///
    /// ```
    /// use equivariant_core::o3::Irreps;
    /// let irreps: Irreps = "2x0e+1x1o+3x2e".parse()?;
    /// let keep: Irreps = "0e+2e".parse()?;
    /// assert_eq!(irreps.filter(Some(&keep), None, None).to_string(), "2x0e+3x2e");
    /// assert_eq!(irreps.filter(None, Some(&keep), None).to_string(), "1x1o");
    /// assert_eq!(irreps.filter(None, None, Some(1)).to_string(), "2x0e+1x1o");
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn filter(
        &self,
        keep: Option<&Irreps>,
        drop: Option<&Irreps>,
        lmax: Option<u32>,
    ) -> Irreps {
        let listed = |set: &Irreps, ir: &Irrep| set.iter().any(|m| m.ir == *ir);
        Irreps(
            self.0
                .iter()
                .copied()
                .filter(|m| keep.is_none_or(|k| listed(k, &m.ir)))
                .filter(|m| !drop.is_some_and(|d| listed(d, &m.ir)))
                .filter(|m| lmax.is_none_or(|lmax| m.ir.l <= lmax))
                .collect(),
        )
    }

    /// Random features of shape `[batch, dim]` (row-major), e3nn's `randn(batch, -1)`.
    ///
    /// `Component`: every entry ~ N(0, 1). `Norm`: every irrep instance is a random unit
    /// vector (an instance of `0e` is ±1).
    ///
    /// ```
    /// use equivariant_core::o3::{irreps::RandnNormalization, Irreps};
    /// use rand::SeedableRng;
    /// let irreps: Irreps = "2x0e+1x1o".parse()?;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let x: Vec<f64> = irreps.randn(4, RandnNormalization::Component, &mut rng);
    /// assert_eq!(x.len(), 4 * 5);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn randn<T: crate::Real>(
        &self,
        batch: usize,
        normalization: RandnNormalization,
        rng: &mut impl Rng,
    ) -> Vec<T> {
        let mut out: Vec<T> = (0..batch * self.dim())
            .map(|_| T::from_f64(rng.sample::<f64, _>(StandardNormal)))
            .collect();
        if normalization == RandnNormalization::Norm {
            for row in out.chunks_mut(self.dim().max(1)) {
                let mut start = 0;
                for m in &self.0 {
                    for _ in 0..m.mul {
                        let v = &mut row[start..start + m.ir.dim()];
                        let norm = v.iter().map(|&x| x * x).fold(T::zero(), |a, b| a + b);
                        let norm = norm.sqrt();
                        v.iter_mut().for_each(|x| *x = *x / norm);
                        start += m.ir.dim();
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Irreps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl FromStr for Irreps {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Irreps::new());
        }
        let bad = |term: &str, reason: String| Error::InvalidIrreps {
            text: text.to_string(),
            term: term.to_string(),
            reason,
        };
        text.split('+')
            .map(|term| {
                let trimmed = term.trim();
                let (mul, ir) = match trimmed.split_once('x') {
                    Some((mul, ir)) => {
                        let mul = mul.trim();
                        if mul.is_empty() || !mul.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad(term, "multiplicity must be an integer >= 0".into()));
                        }
                        let mul = mul
                            .parse()
                            .map_err(|_| bad(term, "multiplicity too large".into()))?;
                        (mul, ir)
                    }
                    None => (1, trimmed),
                };
                let ir = ir.parse::<Irrep>().map_err(|e| match e {
                    Error::InvalidIrrep { reason, .. } => bad(term, reason),
                    other => other,
                })?;
                Ok(MulIr::new(mul, ir))
            })
            .collect::<Result<Vec<_>>>()
            .map(Irreps)
    }
}

impl TryFrom<&str> for Irreps {
    type Error = Error;
    fn try_from(text: &str) -> Result<Self> {
        text.parse()
    }
}

impl From<Irrep> for Irreps {
    fn from(ir: Irrep) -> Self {
        Irreps(vec![MulIr::new(1, ir)])
    }
}

impl FromIterator<MulIr> for Irreps {
    fn from_iter<I: IntoIterator<Item = MulIr>>(iter: I) -> Self {
        Irreps(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Irreps {
    type Item = &'a MulIr;
    type IntoIter = std::slice::Iter<'a, MulIr>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl std::ops::Index<usize> for Irreps {
    type Output = MulIr;
    /// Panics past the end like a slice; use [`Irreps::get`] for a checked lookup.
    fn index(&self, index: usize) -> &MulIr {
        &self.0[index]
    }
}

impl Add for &Irreps {
    type Output = Irreps;
    /// Concatenation (e3nn's `+`).
    fn add(self, other: &Irreps) -> Irreps {
        Irreps(self.0.iter().chain(&other.0).copied().collect())
    }
}

impl Add for Irreps {
    type Output = Irreps;
    fn add(self, other: Irreps) -> Irreps {
        &self + &other
    }
}

impl Mul<usize> for &Irreps {
    type Output = Irreps;
    /// Repetition of the whole list (e3nn's `irreps * n`).
    fn mul(self, n: usize) -> Irreps {
        Irreps(
            std::iter::repeat_n(self.0.iter().copied(), n)
                .flatten()
                .collect(),
        )
    }
}

impl Mul<usize> for Irreps {
    type Output = Irreps;
    fn mul(self, n: usize) -> Irreps {
        &self * n
    }
}

impl Mul<Irrep> for usize {
    type Output = Irreps;
    /// `n * ir` = `nx ir` (e3nn's `int * Irrep`).
    fn mul(self, ir: Irrep) -> Irreps {
        Irreps(vec![MulIr::new(self, ir)])
    }
}
