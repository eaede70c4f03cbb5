//! A model, a structure, and domains of it as an MD engine with domain decomposition builds
//! them: local atoms, ghost copies out to the model's influence distance, full neighbour
//! lists with a skin.

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};
use equivariant::burn;
use equivariant::graph::Cell;
use equivariant::nn::models::nequip::Nequip;
use equivariant_data::{Frame, extxyz};
use equivariant_md::calculator::Calculator;
use equivariant_train::checkpoint::{self, Header};
use equivariant_train::model::Trainable;
use equivariant_train::statistics::Statistics;

/// The model's cutoff (Å) and layers: ghosts must reach 7 Å.
pub const R_MAX: f64 = 3.5;
pub const NUM_LAYERS: usize = 2;
/// The neighbour lists' skin: pairs out to `R_MAX + SKIN` are listed and must be ignored.
pub const SKIN: f64 = 0.7;

/// A folder of its own under the target directory's temporary space.
pub fn fresh_dir(name: &str) -> PathBuf {
    // One folder per name, emptied and reused run after run.
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("equivariant_capi_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A two-layer model (Au, Cu) with drawn parameters, saved at `dir/model.safetensors`.
pub fn checkpoint(dir: &Path) -> PathBuf {
    let section: <Nequip as Trainable>::Config = toml::from_str(&format!(
        "r_max = {R_MAX}\nnum_layers = {NUM_LAYERS}\nnum_features = 4\nl_max = 2"
    ))
    .unwrap();
    let statistics = Statistics {
        avg_num_neighbors: 20.0,
        per_atom_energy_mean: -3.0,
        forces_rms: 0.5,
    };
    let model = Nequip::build(&section, 2, &statistics, &Device::flex()).unwrap();
    let header = Header {
        species: vec!["Au".into(), "Cu".into()],
        statistics,
        dtype: "f32".into(),
        model: section,
    };
    let path = dir.join("model.safetensors");
    checkpoint::save(&path, &model, &header).unwrap();
    path
}

/// The calculator of the checkpoint at `path`, in f64.
pub fn calculator(path: &Path) -> Calculator<Nequip> {
    Calculator::load(path, Some(DType::F64)).unwrap()
}

/// The first frame of the shipped data with `atoms` atoms (108: a cubic cell; 36: a
/// triclinic one, 60 degrees between its first two vectors).
pub fn frame(atoms: usize) -> Frame {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cuau_emt_slice.extxyz");
    extxyz::read(&path)
        .unwrap()
        .into_iter()
        .find(|f| f.len() == atoms)
        .unwrap()
}

/// One domain: its atoms (local first, then ghosts), which are local, the original atom each
/// copies, species as type indices, and full neighbour lists within `R_MAX + SKIN`.
pub struct Domain {
    pub positions: Vec<[f64; 3]>,
    pub species: Vec<usize>,
    pub contributing: Vec<bool>,
    pub owner: Vec<usize>,
    pub neighbors: Vec<Vec<usize>>,
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}

/// The atoms of `frame` (periodic along all three axes) whose fractional coordinate along
/// the first cell vector, wrapped into `[0, 1)`, lies in `[lo, hi)`, with ghosts: every
/// other atom and periodic image within the influence distance (plus the skin) of a local
/// atom.
pub fn domain(frame: &Frame, species: &[usize], lo: f64, hi: f64) -> Domain {
    let lattice = frame.cell.unwrap();
    let cell = Cell::new(lattice, [true; 3]).unwrap();
    let reach = NUM_LAYERS as f64 * R_MAX + SKIN;
    let repeats: Vec<i32> = cell
        .plane_spacings()
        .iter()
        .map(|s| (reach / s).ceil() as i32 + 1)
        .collect();
    let local: Vec<usize> = (0..frame.len())
        .filter(|&i| {
            let a = cell.fractional(frame.positions[i])[0].rem_euclid(1.0);
            lo <= a && a < hi
        })
        .collect();
    let mut d = Domain {
        positions: local.iter().map(|&i| frame.positions[i]).collect(),
        species: local.iter().map(|&i| species[i]).collect(),
        contributing: vec![true; local.len()],
        owner: local.clone(),
        neighbors: Vec::new(),
    };
    for (i, (&t, &x)) in species.iter().zip(&frame.positions).enumerate() {
        for a in -repeats[0]..=repeats[0] {
            for b in -repeats[1]..=repeats[1] {
                for c in -repeats[2]..=repeats[2] {
                    if (a, b, c) == (0, 0, 0) && local.contains(&i) {
                        continue;
                    }
                    let shift = cell.shift_vector([a, b, c]);
                    let p: [f64; 3] = std::array::from_fn(|k| x[k] + shift[k]);
                    if local
                        .iter()
                        .any(|&l| distance(p, frame.positions[l]) < reach)
                    {
                        d.positions.push(p);
                        d.species.push(t);
                        d.contributing.push(false);
                        d.owner.push(i);
                    }
                }
            }
        }
    }
    let n = d.positions.len();
    d.neighbors = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && distance(d.positions[i], d.positions[j]) < R_MAX + SKIN)
                .collect()
        })
        .collect();
    d
}

/// `|a - b| <= 1e-10 max(1, |b|)` for each pair, naming `what` and the index otherwise.
pub fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-10 * y.abs().max(1.0),
            "{what}[{k}]: {x} against {y}"
        );
    }
}
