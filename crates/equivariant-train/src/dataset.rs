//! Labelled structures from extended XYZ frames, and batches of them as one graph.

use burn::tensor::{DType, Device};
use equivariant::graph::Cell;
use equivariant::potential::{AtomicGraph, Structure};
use equivariant_data::Frame;

use crate::{Error, Result};

/// A structure with its reference energy and forces.
///
/// ```
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let sample = &data.samples[0];
/// assert_eq!((sample.energy, sample.forces[1][0]), (-1.5, -0.1));
/// # Ok::<(), equivariant_train::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Positions, species (type indices) and cell.
    pub structure: Structure,
    /// The reference energy.
    pub energy: f64,
    /// The reference forces, `[n][3]`.
    pub forces: Vec<[f64; 3]>,
    /// The reference stress (ASE's sign), if the frame has one.
    pub stress: Option<[[f64; 3]; 3]>,
}

impl Sample {
    /// This structure's graph alone at cutoff `r_max`, edge vectors in `dtype` on `device`
    /// (see [`Batch::from_graphs`]).
    ///
    /// Errors: those of [`AtomicGraph::new`].
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
    /// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
    /// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
    /// let graph = data.samples[0].graph(3.0, &Device::flex(), DType::F64)?;
    /// assert_eq!(graph.edges().num_edges(), 2);
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn graph(&self, r_max: f64, device: &Device, dtype: DType) -> Result<AtomicGraph> {
        Ok(AtomicGraph::new(
            std::slice::from_ref(&self.structure),
            r_max,
            device,
            dtype,
        )?)
    }
}

/// Labelled structures and the species names their type indices stand for.
///
/// ```
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// assert_eq!(data.species, ["Au", "Cu"]);
/// assert_eq!(data.samples[0].structure.species, [1, 0]); // Cu, Au
/// # Ok::<(), equivariant_train::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The chemical symbol of each type index.
    pub species: Vec<String>,
    /// The structures.
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// The frames of `file` as samples, with type indices into `species` (`None`: the
    /// sorted symbols of the frames).
    ///
    /// Errors: [`Error::Data`] naming the file and frame for no frames, a frame without an
    /// energy or forces, a species not in `species`; the errors of [`Cell::new`] for a
    /// singular cell.
    ///
    /// ```
    /// let text = "1\nProperties=species:S:1:pos:R:3 energy=-1.5\nCu 0 0 0\n";
    /// let frames = equivariant_data::extxyz::parse(text, "bare.xyz")?;
    /// let err = equivariant_train::dataset::Dataset::from_frames(&frames, "bare.xyz", None).unwrap_err();
    /// assert_eq!(err.to_string(), "bare.xyz: frame 0 has no forces");
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn from_frames(frames: &[Frame], file: &str, species: Option<&[String]>) -> Result<Self> {
        let bad = |reason: String| Error::Data {
            file: file.into(),
            reason,
        };
        if frames.is_empty() {
            return Err(bad("no frames".into()));
        }
        let species: Vec<String> = match species {
            Some(s) => s.to_vec(),
            None => {
                let mut all: Vec<String> = frames
                    .iter()
                    .flat_map(|f| f.species.iter().cloned())
                    .collect();
                all.sort();
                all.dedup();
                all
            }
        };
        let mut samples = Vec::with_capacity(frames.len());
        for (k, frame) in frames.iter().enumerate() {
            if frame.positions.is_empty() {
                return Err(bad(format!("frame {k} has no atoms")));
            }
            let energy = frame
                .energy
                .ok_or_else(|| bad(format!("frame {k} has no energy")))?;
            let forces = frame
                .forces
                .clone()
                .ok_or_else(|| bad(format!("frame {k} has no forces")))?;
            if forces.len() != frame.positions.len() {
                return Err(bad(format!(
                    "frame {k} has {} atoms but {} forces",
                    frame.positions.len(),
                    forces.len()
                )));
            }
            let structure = structure(frame, &species).map_err(|e| match e {
                Error::UnknownSpecies { species, known } => bad(format!(
                    "frame {k}: species {species} is not one of {known:?}"
                )),
                e => e,
            })?;
            samples.push(Sample {
                structure,
                energy,
                forces,
                stress: frame.stress,
            });
        }
        Ok(Dataset { species, samples })
    }
}

/// The structure of `frame` (positions, cell if any axis is periodic: see [`Cell::new`] for
/// ASE's slabs) with its chemical symbols as type indices into `species`.
///
/// Errors: [`Error::UnknownSpecies`] for a symbol not in `species`; the errors of
/// [`Cell::new`] for a singular cell.
///
/// ```
/// use equivariant_data::Frame;
/// let species = ["Au".to_string(), "Cu".to_string()];
/// let frame = Frame::new(vec!["Cu".into(), "Au".into()], vec![[0.0; 3], [2.5, 0.0, 0.0]]);
/// let structure = equivariant_train::dataset::structure(&frame, &species)?;
/// assert_eq!((structure.species, structure.cell), (vec![1, 0], None));
/// let water = Frame::new(vec!["O".into()], vec![[0.0; 3]]);
/// let err = equivariant_train::dataset::structure(&water, &species).unwrap_err();
/// assert_eq!(err.to_string(), "species O is not one the model knows ([\"Au\", \"Cu\"])");
/// // A slab as ASE builds it: periodic in x and y, no vector along z.
/// let mut slab = Frame::new(vec!["Cu".into(); 2], vec![[0.0; 3], [1.8, 0.0, 1.8]]);
/// slab.cell = Some([[3.6, 0.0, 0.0], [0.0, 3.6, 0.0], [0.0; 3]]);
/// slab.pbc = [true, true, false];
/// let cell = equivariant_train::dataset::structure(&slab, &species)?.cell.expect("periodic");
/// assert_eq!(cell.lattice()[2], [0.0, 0.0, 1.0]);
/// # Ok::<(), equivariant_train::Error>(())
/// ```
pub fn structure(frame: &Frame, species: &[String]) -> Result<Structure> {
    let types = frame
        .species
        .iter()
        .map(|s| {
            species
                .iter()
                .position(|t| t == s)
                .ok_or_else(|| Error::UnknownSpecies {
                    species: s.clone(),
                    known: species.to_vec(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let cell = match frame.cell {
        Some(lattice) if frame.pbc.iter().any(|&p| p) => Some(Cell::new(lattice, frame.pbc)?),
        _ => None,
    };
    Ok(Structure {
        positions: frame.positions.clone(),
        species: types,
        cell,
    })
}

/// A batch: the graph of its structures and their labels.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant_train::dataset::Batch;
/// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
/// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
/// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
/// let samples = [&data.samples[0], &data.samples[0]];
/// let batch = Batch::new(&samples, 3.0, &Device::flex(), DType::F32)?;
/// assert_eq!(batch.counts, [2, 2]);
/// assert_eq!(batch.graph.edges().num_edges(), 4); // the bond both ways, in each copy
/// # Ok::<(), equivariant_train::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    /// The structures as one graph.
    pub graph: AtomicGraph,
    /// Reference energies, one per structure.
    pub energies: Vec<f64>,
    /// Reference forces, `[N * 3]` in the graph's atom order.
    pub forces: Vec<f64>,
    /// Atoms per structure.
    pub counts: Vec<usize>,
    /// Reference stresses (ASE's sign), one per structure that has one.
    pub stresses: Vec<Option<[[f64; 3]; 3]>>,
}

impl Batch {
    /// The batch of `samples` at cutoff `r_max`.
    ///
    /// Errors: those of [`AtomicGraph::new`].
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant_train::dataset::Batch;
    /// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
    /// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
    /// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
    /// let batch = Batch::new(&[&data.samples[0]], 2.0, &Device::flex(), DType::F64)?;
    /// assert_eq!(batch.graph.edges().num_edges(), 0); // 2.5 A apart: no edge within 2
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn new(samples: &[&Sample], r_max: f64, device: &Device, dtype: DType) -> Result<Self> {
        let structures: Vec<Structure> = samples.iter().map(|s| s.structure.clone()).collect();
        let graph = AtomicGraph::new(&structures, r_max, device, dtype)?;
        Ok(Batch::with_graph(samples, graph))
    }

    /// `samples` in batches of `batch_size` (at least 1), in order, at cutoff `r_max`: what
    /// an evaluation reads, built once where it runs again (a trainer's validation).
    ///
    /// Errors: those of [`Batch::new`].
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant_train::dataset::Batch;
    /// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
    /// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
    /// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
    /// let samples = [&data.samples[0]; 3];
    /// let batches = Batch::chunks(&samples, 2, 3.0, &Device::flex(), DType::F32)?;
    /// assert_eq!(batches.iter().map(|b| b.counts.len()).collect::<Vec<_>>(), [2, 1]);
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn chunks(
        samples: &[&Sample],
        batch_size: usize,
        r_max: f64,
        device: &Device,
        dtype: DType,
    ) -> Result<Vec<Self>> {
        samples
            .chunks(batch_size.max(1))
            .map(|chunk| Batch::new(chunk, r_max, device, dtype))
            .collect()
    }

    /// The batch of `samples` from their own graphs, built once (`graphs[k]` of
    /// `samples[k]`, by [`Sample::graph`]): the graph [`Batch::new`] builds, without its
    /// neighbour search ([`AtomicGraph::concat`]).
    ///
    /// Errors: a shape mismatch if the counts differ; those of [`AtomicGraph::concat`].
    ///
    /// ```
    /// use burn::tensor::{DType, Device};
    /// use equivariant_train::dataset::Batch;
    /// let text = "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc=\"F F F\"\nCu 0 0 0 0.1 0 0\nAu 2.5 0 0 -0.1 0 0\n";
    /// let frames = equivariant_data::extxyz::parse(text, "dimer.xyz")?;
    /// let data = equivariant_train::dataset::Dataset::from_frames(&frames, "dimer.xyz", None)?;
    /// let (device, sample) = (Device::flex(), &data.samples[0]);
    /// let graph = sample.graph(3.0, &device, DType::F32)?;
    /// let batch = Batch::from_graphs(&[sample, sample], &[&graph, &graph])?;
    /// assert_eq!(batch.graph.edges().num_edges(), 4);
    /// # Ok::<(), equivariant_train::Error>(())
    /// ```
    pub fn from_graphs(samples: &[&Sample], graphs: &[&AtomicGraph]) -> Result<Self> {
        if samples.len() != graphs.len() {
            return Err(equivariant::Error::ShapeMismatch {
                what: "graphs (one per sample)",
                expected: samples.len(),
                got: graphs.len(),
            }
            .into());
        }
        Ok(Batch::with_graph(samples, AtomicGraph::concat(graphs)?))
    }

    /// `samples` with `graph`, theirs.
    fn with_graph(samples: &[&Sample], graph: AtomicGraph) -> Self {
        Batch {
            graph,
            energies: samples.iter().map(|s| s.energy).collect(),
            forces: samples
                .iter()
                .flat_map(|s| s.forces.iter().flatten().copied())
                .collect(),
            counts: samples
                .iter()
                .map(|s| s.structure.positions.len())
                .collect(),
            stresses: samples.iter().map(|s| s.stress).collect(),
        }
    }
}
