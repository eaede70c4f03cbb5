//! A neighbour list with a skin, as MD engines keep one: the graph of a structure at the
//! model's cutoff plus a skin, built again only when an atom has moved more than
//! `skin / 2` since the last build (no pair can then have come from beyond
//! `r_max + skin` to within `r_max`), or when the atoms, their species or the cell changed.
//! Between builds each call cuts the list to the edges shorter than `r_max` at the new
//! positions ([`AtomicGraph::with_positions_within`]).
//!
//! The radius graph lists its edges in a fixed order that does not depend on the positions,
//! so the cut list has the edges a graph built afresh at `r_max` would have, in the same
//! order: a model gives the same bits on either (tested).

use burn::tensor::{DType, Device};
use equivariant::potential::{AtomicGraph, Structure};
use equivariant::{Error, Result};

/// The graph of a moving structure at a cutoff, from a list kept at the cutoff plus a skin.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::potential::Structure;
/// use equivariant_md::neighbor_list::NeighborList;
/// let mut list = NeighborList::new(1.6, 0.6, &Device::flex(), DType::F64)?;
/// let mut chain = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0], [3.0, 0.0, 0.0]], species: vec![0; 3], cell: None };
/// assert_eq!(list.graph(&chain)?.edges().num_edges(), 4);
/// chain.positions[2][0] = 3.2; // moved 0.2 < skin / 2: the same list, cut at 1.6
/// assert_eq!(list.graph(&chain)?.edges().num_edges(), 2); // atoms 1 and 2 now 1.7 apart
/// assert_eq!(list.builds(), 1);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug)]
pub struct NeighborList {
    r_max: f64,
    skin: f64,
    device: Device,
    dtype: DType,
    /// The structure the list was last built for, and the list (the graph at `r_max + skin`).
    built: Option<(Structure, AtomicGraph)>,
    builds: usize,
}

impl NeighborList {
    /// A list for a model of cutoff `r_max` (Å) with skin `skin` (Å), whose graphs are on
    /// `device` in `dtype`; nothing is built until the first [`graph`](Self::graph).
    ///
    /// Errors: [`Error::InvalidArgument`] for an `r_max` that is not finite and positive, a
    /// skin that is not finite and `>= 0`.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant_md::neighbor_list::NeighborList;
    /// let list = NeighborList::new(4.0, 0.5, &Device::flex(), DType::F32)?;
    /// assert_eq!((list.skin(), list.builds()), (0.5, 0));
    /// assert!(NeighborList::new(4.0, -0.5, &Device::flex(), DType::F32).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(r_max: f64, skin: f64, device: &Device, dtype: DType) -> Result<Self> {
        if !(r_max.is_finite() && r_max > 0.0) {
            return Err(Error::InvalidArgument {
                name: "r_max",
                reason: format!("must be finite and positive, got {r_max}"),
            });
        }
        if !(skin.is_finite() && skin >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "skin",
                reason: format!("must be finite and >= 0, got {skin}"),
            });
        }
        Ok(NeighborList {
            r_max,
            skin,
            device: device.clone(),
            dtype,
            built: None,
            builds: 0,
        })
    }

    /// The skin (Å); see [`new`](Self::new)'s example.
    pub fn skin(&self) -> f64 {
        self.skin
    }

    /// The graph of `structure` at `r_max`: the list cut at the new positions, or, when an
    /// atom has moved more than `skin / 2` since the last build, the atoms, species or cell
    /// differ from it, or nothing is built yet, from a list built again.
    ///
    /// Errors: those of [`AtomicGraph::new`] and [`AtomicGraph::with_positions_within`] (no
    /// atoms, NaN or infinite positions, two atoms at one place, a singular cell). A call that
    /// fails keeps the last list.
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant::potential::Structure;
    /// use equivariant_md::neighbor_list::NeighborList;
    /// let mut list = NeighborList::new(2.0, 0.5, &Device::flex(), DType::F64)?;
    /// let mut dimer = Structure { positions: vec![[0.0; 3], [1.5, 0.0, 0.0]], species: vec![0; 2], cell: None };
    /// list.graph(&dimer)?;
    /// dimer.positions[1][0] = f64::NAN;
    /// assert!(list.graph(&dimer).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn graph(&mut self, structure: &Structure) -> Result<AtomicGraph> {
        if let Some((at, list)) = &self.built
            && at.species == structure.species
            && at.cell == structure.cell
            && max_displacement(&at.positions, &structure.positions) <= 0.5 * self.skin
        {
            return list.with_positions_within(&structure.positions, self.r_max);
        }
        // A margin of a billionth past `r_max + skin`: a pair that closed exactly `skin` from
        // a distance that rounded to just past the list's cutoff is still in it.
        let margin = if self.skin > 0.0 {
            1e-9 * (self.r_max + self.skin)
        } else {
            0.0
        };
        let list = AtomicGraph::new(
            std::slice::from_ref(structure),
            self.r_max + self.skin + margin,
            &self.device,
            self.dtype,
        )?;
        // With no skin the list is the graph.
        let graph = if self.skin == 0.0 {
            list.clone()
        } else {
            list.with_positions_within(&structure.positions, self.r_max)?
        };
        self.built = Some((structure.clone(), list));
        self.builds += 1;
        Ok(graph)
    }

    /// How many times the list was built; see the [type's example](Self).
    pub fn builds(&self) -> usize {
        self.builds
    }
}

/// The largest distance an atom moved from `from` to `to`; infinite for two different
/// numbers of atoms (never within a skin). A NaN position moves no distance here (`max`
/// skips it): the cut or the build that follows rejects it.
fn max_displacement(from: &[[f64; 3]], to: &[[f64; 3]]) -> f64 {
    if from.len() != to.len() {
        return f64::INFINITY;
    }
    from.iter()
        .zip(to)
        .map(|(x, y)| {
            ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt()
        })
        .fold(0.0, f64::max)
}
