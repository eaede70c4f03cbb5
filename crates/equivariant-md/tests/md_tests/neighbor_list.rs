//! The neighbour list with a skin: the graphs it cuts are those built afresh at the cutoff,
//! edge for edge, and a model gives the same bits on them; it is built again exactly when
//! an atom has moved more than half the skin or the atoms, species or cell changed; bad
//! input is a typed error that leaves the list as it was.

use burn::tensor::{DType, Device};
use equivariant::Error;
use equivariant::graph::Cell;
use equivariant::potential::{AtomicGraph, Potential, Structure};
use equivariant_md::neighbor_list::NeighborList;

use super::common::{model, state};

/// The state's 32 atoms as a structure.
fn crystal() -> Structure {
    state(300.0).structure()
}

/// `structure` with atom `i` moved by `(i-dependent pattern) * step` Å.
fn moved(structure: &Structure, step: f64) -> Structure {
    let mut s = structure.clone();
    for (i, p) in s.positions.iter_mut().enumerate() {
        let x = i as f64;
        p[0] += step * (0.7 * x).sin();
        p[1] += step * (1.9 * x + 0.2).cos();
        p[2] += step * (2.9 * x + 0.5).sin();
    }
    s
}

/// The edges (source, destination) and the energy and forces of `model` on `graph`.
fn outcome(model: &impl Potential, graph: &AtomicGraph) -> (Vec<(usize, usize)>, u64, Vec<u64>) {
    let edges = graph.edges();
    let pairs = (0..edges.num_edges())
        .map(|e| (edges.src(e), edges.dst(e)))
        .collect();
    let result = model.energy_forces(graph).unwrap();
    let energy: f64 = result.energy.to_data().iter::<f64>().sum();
    let forces = result
        .forces
        .to_data()
        .iter::<f64>()
        .map(f64::to_bits)
        .collect();
    (pairs, energy.to_bits(), forces)
}

#[test]
fn the_cut_list_is_the_graph_built_afresh_to_the_bit() {
    let (model, device) = (model(), Device::flex());
    let start = crystal();
    let mut list = NeighborList::new(model.r_max(), 0.8, &device, DType::F64).unwrap();
    // Moves of up to ~0.05, 0.1, ..., 0.25 Å per axis from the build (within half the skin
    // for the first ones), then one atom across the cell's face. The list (to 3.8 Å) holds
    // the second neighbours (3.7 Å), which the cut (to 3.0 Å) drops.
    let mut steps: Vec<Structure> = (1..=5).map(|k| moved(&start, 0.05 * k as f64)).collect();
    let mut across = start.clone();
    across.positions[0][0] = -0.1 - across.positions[0][0].abs();
    steps.push(across);
    for structure in [start.clone()].iter().chain(&steps) {
        let cut = list.graph(structure).unwrap();
        let fresh = AtomicGraph::new(
            std::slice::from_ref(structure),
            model.r_max(),
            &device,
            DType::F64,
        )
        .unwrap();
        let listed = AtomicGraph::new(
            std::slice::from_ref(structure),
            model.r_max() + 0.8,
            &device,
            DType::F64,
        )
        .unwrap()
        .edges()
        .num_edges();
        // The cut drops the listed pairs beyond the cutoff, and keeps some.
        assert!(cut.edges().num_edges() > 0 && cut.edges().num_edges() < listed);
        assert_eq!(outcome(&model, &cut), outcome(&model, &fresh));
    }
    // The moves of ~0.25 Å per axis go past 0.4 Å for some atom: built again.
    assert!(list.builds() > 1 && list.builds() < 1 + steps.len());
}

#[test]
fn built_again_only_when_needed() {
    let device = Device::flex();
    let mut list = NeighborList::new(3.0, 0.5, &device, DType::F64).unwrap();
    let start = crystal();
    list.graph(&start).unwrap();
    assert_eq!(list.builds(), 1);
    // One atom moved 0.24 Å (< 0.25): the same list; 0.26 Å: a new one.
    let mut near = start.clone();
    near.positions[5][1] += 0.24;
    list.graph(&near).unwrap();
    assert_eq!(list.builds(), 1);
    let mut far = start.clone();
    far.positions[5][1] += 0.26;
    list.graph(&far).unwrap();
    assert_eq!(list.builds(), 2);
    // Measured from the last build: `near` is 0.02 Å from `far`.
    list.graph(&near).unwrap();
    assert_eq!(list.builds(), 2);
    // Another species, another cell, fewer atoms: built again, and right.
    let mut species = far.clone();
    species.species[0] = 1 - species.species[0];
    list.graph(&species).unwrap();
    assert_eq!(list.builds(), 3);
    let mut cell = species.clone();
    cell.cell = Some(Cell::orthorhombic([7.5; 3], [true; 3]).unwrap());
    list.graph(&cell).unwrap();
    assert_eq!(list.builds(), 4);
    let mut fewer = cell.clone();
    fewer.positions.pop();
    fewer.species.pop();
    let graph = list.graph(&fewer).unwrap();
    assert_eq!((list.builds(), graph.species().len()), (5, 31));
    // No skin: a list per new set of positions, each the graph at the cutoff.
    let mut bare = NeighborList::new(3.0, 0.0, &device, DType::F64).unwrap();
    bare.graph(&start).unwrap();
    bare.graph(&start).unwrap();
    assert_eq!(bare.builds(), 1);
    bare.graph(&near).unwrap();
    assert_eq!(bare.builds(), 2);
}

#[test]
fn bad_input_is_an_error_that_keeps_the_list() {
    let device = Device::flex();
    for (r_max, skin) in [
        (3.0, -0.1),
        (3.0, f64::NAN),
        (3.0, f64::INFINITY),
        (0.0, 0.5),
    ] {
        let err = NeighborList::new(r_max, skin, &device, DType::F64).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
    let mut list = NeighborList::new(3.0, 0.5, &device, DType::F64).unwrap();
    let start = crystal();
    let edges = list.graph(&start).unwrap().edges().num_edges();
    let mut nan = start.clone();
    nan.positions[3][2] = f64::NAN;
    let err = list.graph(&nan).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let mut onto = start.clone();
    onto.positions[1] = onto.positions[0];
    assert!(list.graph(&onto).is_err());
    // The list of the last good build, unchanged.
    assert_eq!(list.graph(&start).unwrap().edges().num_edges(), edges);
    assert_eq!(list.builds(), 1);
    // Two atoms brought together within half a (wide) skin: the cut, not a build, says so.
    let mut wide = NeighborList::new(3.0, 6.0, &device, DType::F64).unwrap();
    wide.graph(&start).unwrap();
    let err = wide.graph(&onto).unwrap_err();
    assert!(err.to_string().contains("same place"), "{err}");
    assert_eq!(wide.builds(), 1);
}
