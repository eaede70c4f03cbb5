//! One atomic structure and its labels.

use std::collections::BTreeMap;

/// A per-atom column other than species, positions and forces, kept by name.
///
/// ```
/// use equivariant_data::Column;
/// let tags = Column::Int(vec![vec![0], vec![1]]);
/// assert_eq!(tags.width(), Some(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// `R`: reals, `[atoms][width]`.
    Real(Vec<Vec<f64>>),
    /// `I`: integers.
    Int(Vec<Vec<i64>>),
    /// `L`: logicals (`T` / `F`).
    Bool(Vec<Vec<bool>>),
    /// `S`: strings.
    Str(Vec<Vec<String>>),
}

impl Column {
    /// The number of values per atom (`None` for a column of no atoms).
    ///
    /// ```
    /// use equivariant_data::Column;
    /// assert_eq!(Column::Real(vec![vec![1.0, 2.0, 3.0]]).width(), Some(3));
    /// assert_eq!(Column::Real(vec![]).width(), None);
    /// ```
    pub fn width(&self) -> Option<usize> {
        match self {
            Column::Real(v) => v.first().map(Vec::len),
            Column::Int(v) => v.first().map(Vec::len),
            Column::Bool(v) => v.first().map(Vec::len),
            Column::Str(v) => v.first().map(Vec::len),
        }
    }

    /// The number of atoms.
    ///
    /// ```
    /// use equivariant_data::Column;
    /// assert_eq!(Column::Bool(vec![vec![true], vec![false]]).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        match self {
            Column::Real(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    /// Whether the column has no atoms.
    ///
    /// ```
    /// use equivariant_data::Column;
    /// assert!(Column::Int(vec![]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An atomic structure with its labels, as ASE's `Atoms` with a calculator's results.
///
/// Units are the file's (ASE: Å, eV, eV/Å, eV/Å³). `stress` is the full 3x3 tensor (ASE's
/// sign: positive under tension); `virial` is kept as given when a file has it.
///
/// ```
/// use equivariant_data::Frame;
/// let frame = Frame::new(vec!["H".into(), "H".into()], vec![[0.0; 3], [0.0, 0.0, 0.74]]);
/// assert_eq!(frame.len(), 2);
/// assert_eq!(frame.pbc, [false; 3]);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    /// Chemical symbols, one per atom.
    pub species: Vec<String>,
    /// Cartesian positions, `[atoms][3]`.
    pub positions: Vec<[f64; 3]>,
    /// Lattice vectors as rows (`Lattice=`), if any.
    pub cell: Option<[[f64; 3]; 3]>,
    /// Periodicity along each lattice vector (`pbc=`).
    pub pbc: [bool; 3],
    /// The total energy (`energy=`).
    pub energy: Option<f64>,
    /// Forces, `[atoms][3]` (the `forces` column).
    pub forces: Option<Vec<[f64; 3]>>,
    /// Stress, 3x3 (`stress=`, 9 values or Voigt's 6: xx yy zz yz xz xy).
    pub stress: Option<[[f64; 3]; 3]>,
    /// Virial, 3x3 (`virial=`).
    pub virial: Option<[[f64; 3]; 3]>,
    /// Other per-frame values, as their text (a key without a value is `"T"`).
    pub info: BTreeMap<String, String>,
    /// Other per-atom columns, in the file's order.
    pub arrays: Vec<(String, Column)>,
}

impl Frame {
    /// A non-periodic frame of `species` at `positions`, without labels.
    ///
    /// ```
    /// use equivariant_data::Frame;
    /// let f = Frame::new(vec!["O".into()], vec![[0.0; 3]]);
    /// assert!(f.cell.is_none() && f.energy.is_none());
    /// ```
    pub fn new(species: Vec<String>, positions: Vec<[f64; 3]>) -> Self {
        Frame {
            species,
            positions,
            ..Default::default()
        }
    }

    /// The number of atoms.
    ///
    /// ```
    /// use equivariant_data::Frame;
    /// assert_eq!(Frame::new(vec![], vec![]).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.species.len()
    }

    /// Whether the frame has no atoms.
    ///
    /// ```
    /// use equivariant_data::Frame;
    /// assert!(Frame::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.species.is_empty()
    }

    /// A per-atom column kept in [`arrays`](Frame::arrays), by name.
    ///
    /// ```
    /// use equivariant_data::{Column, Frame};
    /// let mut f = Frame::new(vec!["C".into()], vec![[0.0; 3]]);
    /// f.arrays.push(("tags".into(), Column::Int(vec![vec![3]])));
    /// assert_eq!(f.array("tags"), Some(&Column::Int(vec![vec![3]])));
    /// ```
    pub fn array(&self, name: &str) -> Option<&Column> {
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}
