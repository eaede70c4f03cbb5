//! Instructions of a tensor product: which input blocks meet, into which output block, how
//! their multiplicities connect, and how the result is normalized.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How the multiplicity indices of the two inputs and the output connect in one path.
///
/// With `x1[u, i]`, `x2[v, j]`, `out[w, k]` and the Wigner 3j symbol `C[i, j, k]`, each
/// path computes `out[., k] += coef * sum W[...] C[i, j, k] x1[u, i] x2[v, j]` over:
///
/// | mode | output index | weight shape | sum over |
/// |---|---|---|---|
/// | `uvw` | `w` | `(m1, m2, m_out)` | `u, v` |
/// | `uvu` | `u` (m_out = m1) | `(m1, m2)` | `v` |
/// | `uvv` | `v` (m_out = m2) | `(m1, m2)` | `u` |
/// | `uuw` | `w` (m1 = m2) | `(m1, m_out)` | `u` |
/// | `uuu` | `u` (m1 = m2 = m_out) | `(m1,)` | - |
/// | `uvuv` | `(u, v)` (m_out = m1 m2) | `(m1, m2)` | - |
/// | `uvu<v` | `q = (u < v)` (m1 = m2, m_out = m1(m1-1)/2) | `(m_out,)` | - |
/// | `u<vw` | `w`, summing pairs `u < v` (m1 = m2) | `(m1(m1-1)/2, m_out)` | `q` |
///
/// ```
/// use equivariant_core::o3::tensor_product::ConnectionMode;
/// let mode: ConnectionMode = "uvu".parse()?;
/// assert_eq!(mode.to_string(), "uvu");
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionMode {
    /// `uvw`: fully connected.
    Uvw,
    /// `uvu`: output multiplicity of input 1.
    Uvu,
    /// `uvv`: output multiplicity of input 2.
    Uvv,
    /// `uuw`: paired inputs, fully connected to the output.
    Uuw,
    /// `uuu`: paired inputs and output.
    Uuu,
    /// `uvuv`: every pair of input channels is an output channel.
    Uvuv,
    /// `uvu<v`: every unordered pair `u < v` of one input is an output channel.
    UvuLtv,
    /// `u<vw`: unordered pairs `u < v`, fully connected to the output.
    ULtvw,
}

impl ConnectionMode {
    /// e3nn's name of the mode.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::ConnectionMode;
    /// assert_eq!(ConnectionMode::ULtvw.name(), "u<vw");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ConnectionMode::Uvw => "uvw",
            ConnectionMode::Uvu => "uvu",
            ConnectionMode::Uvv => "uvv",
            ConnectionMode::Uuw => "uuw",
            ConnectionMode::Uuu => "uuu",
            ConnectionMode::Uvuv => "uvuv",
            ConnectionMode::UvuLtv => "uvu<v",
            ConnectionMode::ULtvw => "u<vw",
        }
    }

    /// The shape of the weight block of a path with multiplicities `(m1, m2, m_out)`.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::ConnectionMode;
    /// assert_eq!(ConnectionMode::Uvw.path_shape(2, 3, 4), vec![2, 3, 4]);
    /// assert_eq!(ConnectionMode::ULtvw.path_shape(4, 4, 5), vec![6, 5]);
    /// ```
    pub fn path_shape(self, m1: usize, m2: usize, m_out: usize) -> Vec<usize> {
        let pairs = m1 * m2.saturating_sub(1) / 2;
        match self {
            ConnectionMode::Uvw => vec![m1, m2, m_out],
            ConnectionMode::Uvu | ConnectionMode::Uvv | ConnectionMode::Uvuv => vec![m1, m2],
            ConnectionMode::Uuw => vec![m1, m_out],
            ConnectionMode::Uuu => vec![m1],
            ConnectionMode::UvuLtv => vec![pairs],
            ConnectionMode::ULtvw => vec![pairs, m_out],
        }
    }

    /// How many terms each output element sums (e3nn's `num_elements`, the fan-in of the
    /// `element` path normalization).
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::ConnectionMode;
    /// assert_eq!(ConnectionMode::Uvw.num_elements(2, 3), 6);
    /// assert_eq!(ConnectionMode::Uvu.num_elements(2, 3), 3);
    /// ```
    pub fn num_elements(self, m1: usize, m2: usize) -> usize {
        match self {
            ConnectionMode::Uvw => m1 * m2,
            ConnectionMode::Uvu => m2,
            ConnectionMode::Uvv | ConnectionMode::Uuw => m1,
            ConnectionMode::Uuu | ConnectionMode::Uvuv | ConnectionMode::UvuLtv => 1,
            ConnectionMode::ULtvw => m1 * m2.saturating_sub(1) / 2,
        }
    }
}

impl FromStr for ConnectionMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "uvw" => ConnectionMode::Uvw,
            "uvu" => ConnectionMode::Uvu,
            "uvv" => ConnectionMode::Uvv,
            "uuw" => ConnectionMode::Uuw,
            "uuu" => ConnectionMode::Uuu,
            "uvuv" => ConnectionMode::Uvuv,
            "uvu<v" => ConnectionMode::UvuLtv,
            "u<vw" => ConnectionMode::ULtvw,
            _ => {
                return Err(Error::InvalidArgument {
                    name: "connection_mode",
                    reason: format!(
                        "{s:?} is not one of uvw, uvu, uvv, uuw, uuu, uvuv, uvu<v, u<vw"
                    ),
                });
            }
        })
    }
}

impl fmt::Display for ConnectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One path of a tensor product, as given by the user: e3nn's
/// `(i_in1, i_in2, i_out, mode, has_weight, path_weight)`.
///
/// After [`super::TensorProductPlan::new`], [`super::TensorProductPlan::instructions`] holds
/// the built instructions whose `path_weight` is the final coefficient of the path (the
/// normalization included), as in e3nn.
///
/// ```
/// use equivariant_core::o3::tensor_product::{ConnectionMode, Instruction};
/// let ins = Instruction::new(0, 1, 0, ConnectionMode::Uvu, true).with_path_weight(0.5);
/// assert_eq!(ins.path_weight, 0.5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instruction {
    /// Index into `irreps_in1`.
    pub i_in1: usize,
    /// Index into `irreps_in2`.
    pub i_in2: usize,
    /// Index into `irreps_out`.
    pub i_out: usize,
    /// How the multiplicities connect.
    pub connection_mode: ConnectionMode,
    /// Whether the path has (trainable or per-row) weights.
    pub has_weight: bool,
    /// A fixed multiplicative weight of the path (1 by default).
    pub path_weight: f64,
}

impl Instruction {
    /// An instruction with path weight 1.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::{ConnectionMode, Instruction};
    /// assert_eq!(Instruction::new(0, 0, 0, ConnectionMode::Uvw, true).path_weight, 1.0);
    /// ```
    pub fn new(
        i_in1: usize,
        i_in2: usize,
        i_out: usize,
        connection_mode: ConnectionMode,
        has_weight: bool,
    ) -> Self {
        Instruction {
            i_in1,
            i_in2,
            i_out,
            connection_mode,
            has_weight,
            path_weight: 1.0,
        }
    }

    /// The same instruction with another path weight.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::{ConnectionMode, Instruction};
    /// let ins = Instruction::new(0, 0, 0, ConnectionMode::Uuu, false).with_path_weight(2.0);
    /// assert_eq!(ins.path_weight, 2.0);
    /// ```
    pub fn with_path_weight(mut self, path_weight: f64) -> Self {
        self.path_weight = path_weight;
        self
    }
}

/// How each path is normalized by the dimensions of its irreps (e3nn's
/// `irrep_normalization`): `alpha` = `2 l_out + 1` (component), `(2 l1 + 1)(2 l2 + 1)`
/// (norm) or 1 (none).
///
/// ```
/// use equivariant_core::o3::tensor_product::IrrepNormalization;
/// assert_eq!("norm".parse::<IrrepNormalization>()?, IrrepNormalization::Norm);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IrrepNormalization {
    /// Output components of unit variance (e3nn's default).
    #[default]
    Component,
    /// Output irreps of unit norm.
    Norm,
    /// No factor.
    None,
}

impl FromStr for IrrepNormalization {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "component" => Ok(IrrepNormalization::Component),
            "norm" => Ok(IrrepNormalization::Norm),
            "none" => Ok(IrrepNormalization::None),
            _ => Err(Error::InvalidArgument {
                name: "irrep_normalization",
                reason: format!("{s:?} is not one of component, norm, none"),
            }),
        }
    }
}

/// How paths into the same output share its variance (e3nn's `path_normalization`):
/// `element` divides by the total fan-in of the output, `path` by the fan-in of the path
/// times the number of paths into the output, `none` by nothing.
///
/// ```
/// use equivariant_core::o3::tensor_product::PathNormalization;
/// assert_eq!("path".parse::<PathNormalization>()?, PathNormalization::Path);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathNormalization {
    /// Every element of the output counts the same (e3nn's default).
    #[default]
    Element,
    /// Every path counts the same.
    Path,
    /// No factor.
    None,
}

impl FromStr for PathNormalization {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "element" => Ok(PathNormalization::Element),
            "path" => Ok(PathNormalization::Path),
            "none" => Ok(PathNormalization::None),
            _ => Err(Error::InvalidArgument {
                name: "path_normalization",
                reason: format!("{s:?} is not one of element, path, none"),
            }),
        }
    }
}
