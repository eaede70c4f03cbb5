//! Simulation cells for periodic neighbour lists: three lattice vectors and per-axis periodic
//! boundary conditions (ASE's `cell` and `pbc`).

use crate::{Error, Result};

/// A simulation cell: lattice vectors `a_0, a_1, a_2` (the rows of a 3x3 matrix `L`) and, per
/// axis, whether the system is periodic along that vector.
///
/// - The image of a point `x` under the integer shift `s = (s_0, s_1, s_2)` is
///   `x + s·L = x + s_0 a_0 + s_1 a_1 + s_2 a_2` ([`Cell::shift_vector`]).
/// - Fractional coordinates: `f = x · L^{-1}`, i.e. `f_c = x · b_c` with the reciprocal vectors
///   `b_0 = (a_1 × a_2) / V`, ... and `V = a_0 · (a_1 × a_2)`.
/// - The spacing of lattice planes along axis `c` is `h_c = 1 / |b_c|` ([`Cell::plane_spacings`]);
///   a cutoff `r > h_c` needs several periodic images along that axis.
///
/// The lattice must be invertible, even along non-periodic axes (their vector only fixes the
/// fractional coordinate system there; atoms may lie anywhere along it).
///
/// ```
/// use equivariant_core::graph::Cell;
/// let cell = Cell::new([[2.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]], [true, true, false])?;
/// assert_eq!(cell.shift_vector([1, -1, 0]), [1.0, -2.0, 0.0]);
/// assert!(Cell::new([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [true; 3]).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    lattice: [[f64; 3]; 3],
    pbc: [bool; 3],
    /// Reciprocal vectors `b_c` (the columns of `L^{-1}`), one per row.
    reciprocal: [[f64; 3]; 3],
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

/// `lattice` with each zero vector along a non-periodic axis replaced by a unit vector
/// orthogonal to the others (ASE's `Cell.complete`): ASE's slabs and wires leave their vacuum
/// axes zero, and a non-periodic axis' vector only has to span the space.
fn complete(mut lattice: [[f64; 3]; 3], pbc: [bool; 3]) -> [[f64; 3]; 3] {
    let is_zero = |v: [f64; 3]| v == [0.0; 3];
    // Twice: with two missing vectors, the first is filled from the one that is there.
    for _ in 0..2 {
        for c in 0..3 {
            if pbc[c] || !is_zero(lattice[c]) {
                continue;
            }
            let (a, b) = (lattice[(c + 1) % 3], lattice[(c + 2) % 3]);
            let filled = match (is_zero(a), is_zero(b)) {
                (false, false) => cross(a, b),
                (true, true) => continue,
                _ => {
                    let v = if is_zero(a) { b } else { a };
                    // The Cartesian axis least parallel to v, crossed with it.
                    let axis = if v[0].abs() <= v[1].abs() && v[0].abs() <= v[2].abs() {
                        [1.0, 0.0, 0.0]
                    } else if v[1].abs() <= v[2].abs() {
                        [0.0, 1.0, 0.0]
                    } else {
                        [0.0, 0.0, 1.0]
                    };
                    cross(v, axis)
                }
            };
            let length = norm(filled);
            lattice[c] = filled.map(|x| x / length);
        }
    }
    lattice
}

impl Cell {
    /// A cell with lattice vectors `lattice[0], lattice[1], lattice[2]` (rows) and periodic
    /// boundary conditions `pbc[c]` along `lattice[c]`. A zero vector along a non-periodic
    /// axis (ASE's slabs and wires) becomes a unit vector orthogonal to the others.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if an entry is NaN or infinite; [`Error::InvalidArgument`] if the
    /// lattice is singular: `|det L| <= 1e-12 |a_0| |a_1| |a_2|` (a zero or a coplanar vector).
    ///
    /// ```
    /// use equivariant_core::{graph::Cell, Error};
    /// let cell = Cell::new([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]], [true; 3])?;
    /// assert_eq!(cell.pbc(), [true; 3]);
    /// let err = Cell::new([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [true; 3]);
    /// assert!(matches!(err, Err(Error::InvalidArgument { name: "lattice", .. })));
    /// // A slab: periodic in x and y, no vector along z.
    /// let slab = Cell::new([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0; 3]], [true, true, false])?;
    /// assert_eq!(slab.lattice()[2], [0.0, 0.0, 1.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(lattice: [[f64; 3]; 3], pbc: [bool; 3]) -> Result<Self> {
        if let Some(index) = lattice.iter().flatten().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "lattice",
                index,
            });
        }
        let lattice = complete(lattice, pbc);
        let [a0, a1, a2] = lattice;
        let det = dot(a0, cross(a1, a2));
        let scale = norm(a0) * norm(a1) * norm(a2);
        if det.abs() <= 1e-12 * scale || !det.is_normal() {
            return Err(Error::InvalidArgument {
                name: "lattice",
                reason: format!(
                    "the lattice vectors {lattice:?} are linearly dependent (det = {det:e})"
                ),
            });
        }
        let reciprocal = [cross(a1, a2), cross(a2, a0), cross(a0, a1)].map(|b| b.map(|x| x / det));
        if reciprocal.iter().flatten().any(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument {
                name: "lattice",
                reason: format!("the lattice {lattice:?} cannot be inverted in f64"),
            });
        }
        Ok(Self {
            lattice,
            pbc,
            reciprocal,
        })
    }

    /// An orthorhombic cell with edges `lengths[c]` along the Cartesian axes:
    /// `L = diag(lengths)`.
    ///
    /// # Errors
    /// As [`Cell::new`]: a zero or non-finite length is rejected.
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// let cell = Cell::orthorhombic([2.0, 3.0, 4.0], [true, true, false])?;
    /// assert_eq!(cell.lattice()[1], [0.0, 3.0, 0.0]);
    /// assert_eq!(cell.plane_spacings(), [2.0, 3.0, 4.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn orthorhombic(lengths: [f64; 3], pbc: [bool; 3]) -> Result<Self> {
        let [x, y, z] = lengths;
        Self::new([[x, 0.0, 0.0], [0.0, y, 0.0], [0.0, 0.0, z]], pbc)
    }

    /// The lattice vectors, one per row.
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// let cell = Cell::orthorhombic([1.0, 1.0, 1.0], [true; 3])?;
    /// assert_eq!(cell.lattice()[2], [0.0, 0.0, 1.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn lattice(&self) -> [[f64; 3]; 3] {
        self.lattice
    }

    /// Per-axis periodic boundary conditions.
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// let cell = Cell::orthorhombic([1.0, 1.0, 1.0], [true, false, true])?;
    /// assert_eq!(cell.pbc(), [true, false, true]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn pbc(&self) -> [bool; 3] {
        self.pbc
    }

    /// The volume `|det L| = |(a_0 x a_1) . a_2|`.
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// let cell = Cell::new([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 4.0]], [true; 3])?;
    /// assert_eq!(cell.volume(), 24.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn volume(&self) -> f64 {
        let [a, b, c] = self.lattice;
        dot(cross(a, b), c).abs()
    }

    /// The Cartesian translation of the integer shift `s`:
    /// `s·L = s_0 a_0 + s_1 a_1 + s_2 a_2`, computed per component in this order in f64.
    /// [`radius_graph`](super::radius_graph()) and [`Graph::edge_vec`](super::Graph::edge_vec)
    /// use exactly this value.
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// let cell = Cell::new([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 2.0]], [true; 3])?;
    /// assert_eq!(cell.shift_vector([2, 1, -1]), [2.5, 1.0, -2.0]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    #[inline]
    pub fn shift_vector(&self, shift: [i32; 3]) -> [f64; 3] {
        let [a0, a1, a2] = self.lattice;
        let s = shift.map(f64::from);
        std::array::from_fn(|k| s[0] * a0[k] + s[1] * a1[k] + s[2] * a2[k])
    }

    /// Fractional coordinates `f = x · L^{-1}` of a Cartesian point (`x = f·L`).
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// let cell = Cell::orthorhombic([2.0, 4.0, 8.0], [true; 3])?;
    /// assert_eq!(cell.fractional([1.0, 1.0, -4.0]), [0.5, 0.25, -0.5]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn fractional(&self, x: [f64; 3]) -> [f64; 3] {
        self.reciprocal.map(|b| dot(x, b))
    }

    /// The spacing `h_c = |V| / |a_{c+1} × a_{c+2}|` between lattice planes along each axis:
    /// the thickness of the cell measured perpendicular to the other two vectors. A sphere of
    /// radius `r` meets `2 ceil(r / h_c) + 1` periodic images along axis `c` at most.
    ///
    /// ```
    /// use equivariant_core::graph::Cell;
    /// // A sheared cell: a_1 leans over a_0, the thickness along axis 0 shrinks.
    /// let cell = Cell::new([[2.0, 0.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 1.0]], [true; 3])?;
    /// let h = cell.plane_spacings();
    /// assert!((h[0] - 2.0f64.sqrt()).abs() < 1e-12);
    /// assert!((h[1] - 2.0).abs() < 1e-12 && (h[2] - 1.0).abs() < 1e-12);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn plane_spacings(&self) -> [f64; 3] {
        self.reciprocal.map(|b| 1.0 / norm(b))
    }

    /// The reciprocal vectors `b_c` (rows), `f_c = x · b_c`.
    pub(crate) fn reciprocal(&self) -> [[f64; 3]; 3] {
        self.reciprocal
    }
}
