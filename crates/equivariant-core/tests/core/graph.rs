//! Graph helpers: `radius_graph` against O(N²) brute force (open and periodic boundaries),
//! edge cases, determinism across thread counts; `scatter_sum` / `scatter_mean` / `gather`
//! against naive loops and adjointness.

use crate::support::on_threads;
use equivariant_core::graph::{
    Cell, EdgeIndex, Graph, gather, radius_graph, scatter_mean, scatter_sum,
};
use equivariant_core::{Error, Real};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// One edge: (dst, src, shift), the sort order of `radius_graph`.
type Edge = (usize, usize, [i32; 3]);

fn edges(g: &Graph) -> Vec<Edge> {
    (0..g.num_edges())
        .map(|e| {
            let s = g.shift.as_ref().map_or([0; 3], |s| s[e]);
            (g.dst[e], g.src[e], s)
        })
        .collect()
}

/// O(N² · images) reference with the documented arithmetic:
/// `d = pos[dst] - (pos[src] + shift·L)` in f64, `|d|² < r²`, nearest `max_nn` per destination
/// (ties by src, then shift), sorted by (dst, src, shift).
fn brute<T: Real>(pos: &[T], r: f64, max_nn: Option<usize>, cell: Option<&Cell>) -> Vec<Edge> {
    let p: Vec<[f64; 3]> = pos
        .chunks(3)
        .map(|x| [x[0].to_f64(), x[1].to_f64(), x[2].to_f64()])
        .collect();
    // Enough images for positions anywhere in the given range.
    let mut range = [0i32; 3];
    if let Some(cell) = cell {
        let h = cell.plane_spacings();
        for c in 0..3 {
            if cell.pbc()[c] {
                let f: Vec<f64> = p.iter().map(|&x| cell.fractional(x)[c]).collect();
                let spread = f.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                    - f.iter().cloned().fold(f64::INFINITY, f64::min);
                range[c] = (r / h[c]).ceil() as i32 + spread.ceil() as i32 + 1;
            }
        }
    }
    // Each shift with its vector, formed once (not per pair: the tests build with light
    // optimization, and these loops are most of the graph tests' time).
    let mut shifts = Vec::new();
    for a in -range[0]..=range[0] {
        for b in -range[1]..=range[1] {
            for c in -range[2]..=range[2] {
                let s = [a, b, c];
                shifts.push((s, cell.map_or([0.0; 3], |cell| cell.shift_vector(s))));
            }
        }
    }
    let mut out = Vec::new();
    for (i, pi) in p.iter().enumerate() {
        let mut found: Vec<(f64, usize, [i32; 3])> = Vec::new();
        for (j, pj) in p.iter().enumerate() {
            for &(s, t) in &shifts {
                if i == j && s == [0; 3] {
                    continue;
                }
                let d = [
                    pi[0] - (pj[0] + t[0]),
                    pi[1] - (pj[1] + t[1]),
                    pi[2] - (pj[2] + t[2]),
                ];
                let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                if d2 < r * r {
                    found.push((d2, j, s));
                }
            }
        }
        if let Some(m) = max_nn {
            found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            found.truncate(m);
        }
        found.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
        out.extend(found.into_iter().map(|(_, j, s)| (i, j, s)));
    }
    out
}

fn uniform(rng: &mut StdRng, n: usize, side: f64) -> Vec<f64> {
    (0..3 * n).map(|_| rng.random::<f64>() * side).collect()
}

fn gaussian(rng: &mut StdRng, n: usize, sigma: f64) -> Vec<f64> {
    (0..3 * n)
        .map(|_| rng.sample::<f64, _>(StandardNormal) * sigma)
        .collect()
}

#[track_caller]
fn check<T: Real>(pos: &[T], r: f64, max_nn: Option<usize>, cell: Option<&Cell>) -> Graph {
    let g = radius_graph(pos, r, max_nn, cell).expect("valid input");
    assert_eq!(g.src.len(), g.dst.len());
    assert_eq!(g.shift.is_some(), cell.is_some());
    let got = edges(&g);
    let expected = brute(pos, r, max_nn, cell);
    assert_eq!(
        got.len(),
        expected.len(),
        "edge count, n = {}, r = {r}, max_nn = {max_nn:?}",
        pos.len() / 3
    );
    assert_eq!(
        got,
        expected,
        "n = {}, r = {r}, max_nn = {max_nn:?}",
        pos.len() / 3
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "sorted by dst, src, shift"
    );
    g
}

#[test]
fn open_boundaries_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(1);
    for &n in &[2usize, 3, 10, 57, 300, 1500] {
        // The guide's density: randn * (N/100)^(1/3).
        let sigma = (n as f64 / 100.0).cbrt();
        let pos = gaussian(&mut rng, n, sigma);
        for &r in &[0.3, 1.0, 1.8, 5.0] {
            check(&pos, r, None, None);
        }
        let pos = uniform(&mut rng, n, 7.0);
        for &r in &[0.5, 1.8, 20.0] {
            check(&pos, r, None, None);
        }
    }
}

#[test]
fn f32_positions_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(2);
    let pos: Vec<f32> = gaussian(&mut rng, 800, 2.0)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    check(&pos, 1.8, None, None);
    check(&pos, 1.8, Some(7), None);
}

#[test]
fn max_num_neighbors_keeps_the_nearest() {
    let mut rng = StdRng::seed_from_u64(3);
    let pos = gaussian(&mut rng, 1000, 2.15);
    for &m in &[1usize, 2, 5, 20, 1000] {
        check(&pos, 1.8, Some(m), None);
    }
    let full = radius_graph(&pos, 1.8, None, None).unwrap();
    assert_eq!(
        radius_graph(&pos, 1.8, Some(999), None).unwrap(),
        full,
        "N - 1 is unlimited"
    );
    assert_eq!(
        radius_graph(&pos, 1.8, Some(0), None).unwrap().num_edges(),
        0
    );
    // Ties: equidistant sources are kept by smaller index.
    let pos = [
        0.0f64, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0,
    ];
    let g = radius_graph(&pos, 1.5, Some(2), None).unwrap();
    let into_0: Vec<usize> = (0..g.num_edges())
        .filter(|&e| g.dst[e] == 0)
        .map(|e| g.src[e])
        .collect();
    assert_eq!(into_0, vec![1, 2]);
}

#[test]
fn periodic_cubic_matches_brute_force() {
    let mut rng = StdRng::seed_from_u64(4);
    let cell = Cell::orthorhombic([6.0, 6.0, 6.0], [true; 3]).unwrap();
    let pos = uniform(&mut rng, 400, 6.0);
    for &r in &[0.7, 1.8, 2.9, 3.0, 3.1] {
        check(&pos, r, None, Some(&cell));
    }
    check(&pos, 1.8, Some(4), Some(&cell));
}

#[test]
fn periodic_cutoff_larger_than_the_cell() {
    let mut rng = StdRng::seed_from_u64(5);
    let cell = Cell::orthorhombic([1.5, 2.0, 1.0], [true; 3]).unwrap();
    let pos = uniform(&mut rng, 12, 1.0);
    for &r in &[1.2, 2.5, 3.7] {
        let g = check(&pos, r, None, Some(&cell));
        // Own images (i == i, shift != 0) are edges, never self loops.
        let shift = g.shift.as_ref().unwrap();
        assert!((0..g.num_edges()).any(|e| g.src[e] == g.dst[e]));
        assert!((0..g.num_edges()).all(|e| g.src[e] != g.dst[e] || shift[e] != [0; 3]));
    }
    check(&pos, 2.5, Some(10), Some(&cell));
}

#[test]
fn periodic_triclinic_matches_brute_force() {
    let mut rng = StdRng::seed_from_u64(6);
    let lattice = [[4.0, 0.0, 0.0], [2.5, 3.5, 0.0], [1.0, -1.5, 3.0]];
    let cell = Cell::new(lattice, [true; 3]).unwrap();
    // Random fractional coordinates, some outside [0, 1) (unwrapped positions).
    let n = 200;
    let mut pos = Vec::with_capacity(3 * n);
    for _ in 0..n {
        let f: [f64; 3] = std::array::from_fn(|_| rng.random::<f64>() * 1.6 - 0.3);
        // Cartesian x = f·L.
        pos.extend(
            (0..3).map(|k| f[0] * lattice[0][k] + f[1] * lattice[1][k] + f[2] * lattice[2][k]),
        );
    }
    for &r in &[1.0, 2.0, 4.5] {
        check(&pos, r, None, Some(&cell));
    }
    check(&pos, 2.0, Some(3), Some(&cell));
    // A strongly sheared cell and a small one.
    let cell = Cell::new(
        [[1.0, 0.0, 0.0], [3.1, 0.4, 0.0], [0.2, 0.3, 0.9]],
        [true; 3],
    )
    .unwrap();
    let pos = uniform(&mut rng, 15, 1.0);
    check(&pos, 1.3, None, Some(&cell));
}

#[test]
fn mixed_pbc_matches_brute_force() {
    let mut rng = StdRng::seed_from_u64(7);
    let lattice = [[5.0, 0.0, 0.0], [1.0, 4.0, 0.0], [0.0, 0.5, 6.0]];
    for pbc in [
        [true, false, true],
        [false, false, true],
        [true, true, false],
        [false; 3],
    ] {
        let cell = Cell::new(lattice, pbc).unwrap();
        let mut pos = uniform(&mut rng, 150, 5.0);
        pos.extend([30.0, -20.0, 12.0]); // far along some non-periodic axes
        for &r in &[1.5, 4.2, 7.0] {
            check(&pos, r, None, Some(&cell));
        }
    }
    // A slab: periodic in-plane, open and thin out of plane, large cutoff.
    let cell = Cell::orthorhombic([2.0, 2.0, 1.0], [true, true, false]).unwrap();
    let pos = uniform(&mut rng, 10, 2.0);
    check(&pos, 3.3, None, Some(&cell));
}

#[test]
fn periodic_sparse_grid() {
    // Few atoms in a large cell with a small cutoff: far more bins than atoms (hash map path).
    let mut rng = StdRng::seed_from_u64(8);
    let cell = Cell::orthorhombic([100.0, 80.0, 90.0], [true; 3]).unwrap();
    let mut pos = uniform(&mut rng, 40, 3.0);
    pos.extend([99.5, 79.7, 89.9, 0.2, 0.1, 0.3]); // neighbours across the corner
    let g = check(&pos, 1.0, None, Some(&cell));
    let (a, b) = (40, 41);
    let e = (0..g.num_edges())
        .find(|&e| g.src[e] == a && g.dst[e] == b)
        .expect("corner pair");
    assert_eq!(g.shift.as_ref().unwrap()[e], [-1, -1, -1]);
}

#[test]
fn empty_and_single_atom() {
    let none: [f64; 0] = [];
    let g = radius_graph(&none, 1.0, None, None).unwrap();
    assert_eq!(g, Graph::default());
    let g = radius_graph(&[1.0f32, 2.0, 3.0], 10.0, None, None).unwrap();
    assert_eq!(g.num_edges(), 0);
    assert!(g.shift.is_none());
    let cell = Cell::orthorhombic([3.0, 3.0, 3.0], [true; 3]).unwrap();
    let g = radius_graph(&none, 1.0, None, Some(&cell)).unwrap();
    assert_eq!(g.shift, Some(vec![]));
    // A single atom in a periodic box smaller than the cutoff sees its images:
    // 6 at distance 1, 12 at sqrt(2) < 1.5.
    let cell = Cell::orthorhombic([1.0, 1.0, 1.0], [true; 3]).unwrap();
    let g = check(&[0.1f64, 0.2, 0.3], 1.5, None, Some(&cell));
    assert_eq!(g.num_edges(), 18);
    let g = check(&[0.1f64, 0.2, 0.3], 0.9, None, Some(&cell));
    assert_eq!(g.num_edges(), 0);
}

#[test]
fn distance_equal_to_the_cutoff_is_excluded() {
    // A 4x4x4 lattice of spacing 1: nearest neighbours at exactly 1.
    let mut pos = Vec::new();
    for i in 0..4 {
        for j in 0..4 {
            for k in 0..4 {
                pos.extend([i as f64, j as f64, k as f64]);
            }
        }
    }
    assert_eq!(radius_graph(&pos, 1.0, None, None).unwrap().num_edges(), 0);
    let g = check(&pos, 1.0 + 1e-12, None, None);
    assert_eq!(g.num_edges(), 2 * 3 * 4 * 4 * 3); // 3 axes, 16 lines, 3 bonds each, both ways
    check(&pos, 2.0, None, None); // 1, sqrt(2), sqrt(3); 2 excluded
    // Periodic: a 2x2x2 lattice of spacing 1.5 in a box of 3, cutoff exactly 1.5 and 3.
    let cell = Cell::orthorhombic([3.0, 3.0, 3.0], [true; 3]).unwrap();
    let mut pos = Vec::new();
    for i in 0..2 {
        for j in 0..2 {
            for k in 0..2 {
                pos.extend([1.5 * i as f64, 1.5 * j as f64, 1.5 * k as f64]);
            }
        }
    }
    assert_eq!(
        radius_graph(&pos, 1.5, None, Some(&cell))
            .unwrap()
            .num_edges(),
        0
    );
    let g = check(&pos, 1.5 + 1e-9, None, Some(&cell));
    assert_eq!(g.num_edges(), 8 * 6);
    check(&pos, 3.0, None, Some(&cell));
}

#[test]
fn coincident_atoms_are_connected() {
    let pos = [
        1.0f64, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0,
    ];
    let g = check(&pos, 0.5, None, None);
    assert_eq!(
        edges(&g),
        vec![
            (0, 1, [0; 3]),
            (0, 2, [0; 3]),
            (1, 0, [0; 3]),
            (1, 2, [0; 3]),
            (2, 0, [0; 3]),
            (2, 1, [0; 3])
        ]
    );
    let v = g.edge_vec(&pos, None).unwrap();
    assert!(v.iter().all(|&x| x == 0.0));
}

#[test]
fn symmetric_with_opposite_shifts() {
    let mut rng = StdRng::seed_from_u64(9);
    let cell = Cell::new(
        [[3.0, 0.0, 0.0], [1.0, 2.5, 0.0], [0.5, 0.5, 2.0]],
        [true, true, false],
    )
    .unwrap();
    let pos = uniform(&mut rng, 60, 3.0);
    let g = radius_graph(&pos, 2.7, None, Some(&cell)).unwrap();
    let mut fwd = edges(&g);
    let mut rev: Vec<Edge> = fwd.iter().map(|&(d, s, t)| (s, d, t.map(|x| -x))).collect();
    fwd.sort();
    rev.sort();
    assert_eq!(fwd, rev);
}

#[test]
fn far_outliers_and_extreme_coordinates() {
    let mut rng = StdRng::seed_from_u64(10);
    let mut pos = gaussian(&mut rng, 2000, 2.7);
    pos.extend([1e12, -3e11, 5.0]);
    pos.extend([1e12 + 0.5, -3e11, 5.0]);
    check(&pos, 1.8, None, None);
    // Differences overflow f64: no edge, no panic.
    let pos = [
        1e300f64, 0.0, 0.0, -1e300, 0.0, 0.0, 1.7e308, 1.7e308, -1.7e308,
    ];
    assert_eq!(radius_graph(&pos, 1.0, None, None).unwrap().num_edges(), 0);
    // A tiny cutoff among ordinary positions.
    let pos = uniform(&mut rng, 100, 1.0);
    check(&pos, 1e-300, None, None);
    check(&pos, 1e-5, None, None);
    // A cluster far from the origin (coarse f64 spacing), with and without an outlier.
    let mut pos: Vec<f64> = gaussian(&mut rng, 500, 1.5)
        .iter()
        .map(|x| x + 1e9)
        .collect();
    check(&pos, 1.8, None, None);
    pos.extend([-1e15, 0.0, 0.0]);
    check(&pos, 1.8, Some(12), None);
    // Periodic along x only, atoms hundreds of cells away from the cell (unwrapped).
    let cell = Cell::orthorhombic([2.0, 2.0, 2.0], [true, false, false]).unwrap();
    let mut pos = uniform(&mut rng, 6, 2.0);
    pos.extend([-700.3, 0.5, 0.5, 901.1, 1.0, 1.0]);
    check(&pos, 2.3, None, Some(&cell));
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let pos = [0.0f64, 0.0, 0.0, 1.0, f64::NAN, 0.0];
    assert_eq!(
        radius_graph(&pos, 1.0, None, None),
        Err(Error::NonFinite {
            what: "pos",
            index: 4
        })
    );
    let pos = [0.0f32, f32::INFINITY, 0.0];
    assert!(matches!(
        radius_graph(&pos, 1.0, None, None),
        Err(Error::NonFinite {
            what: "pos",
            index: 1
        })
    ));
    let pos = [0.0f64; 6];
    for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            radius_graph(&pos, r, None, None),
            Err(Error::InvalidArgument { name: "r", .. })
        ));
    }
    assert!(matches!(
        radius_graph(&[0.0f64; 7], 1.0, None, None),
        Err(Error::ShapeMismatch { got: 7, .. })
    ));
    // Singular and non-finite cells.
    assert!(matches!(
        Cell::new(
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]],
            [true; 3]
        ),
        Err(Error::InvalidArgument {
            name: "lattice",
            ..
        })
    ));
    assert!(matches!(
        Cell::orthorhombic([1.0, 0.0, 1.0], [true; 3]),
        Err(Error::InvalidArgument {
            name: "lattice",
            ..
        })
    ));
    assert!(matches!(
        Cell::orthorhombic([1.0, f64::NAN, 1.0], [true; 3]),
        Err(Error::NonFinite {
            what: "lattice",
            ..
        })
    ));
    // A cutoff needing billions of periodic images, an atom 2^30 cells away.
    let cell = Cell::orthorhombic([1.0, 1.0, 1.0], [true; 3]).unwrap();
    assert!(matches!(
        radius_graph(&[0.5f64, 0.5, 0.5], 1e4, None, Some(&cell)),
        Err(Error::InvalidArgument { name: "r", .. })
    ));
    assert!(matches!(
        radius_graph(&[0.5f64, 0.5, 2f64.powi(30)], 0.4, None, Some(&cell)),
        Err(Error::InvalidArgument { name: "pos", .. })
    ));
}

#[test]
fn edge_vec_matches_definition() {
    let mut rng = StdRng::seed_from_u64(11);
    let cell = Cell::new(
        [[3.0, 0.0, 0.0], [0.7, 2.5, 0.0], [0.5, 0.5, 2.0]],
        [true; 3],
    )
    .unwrap();
    let pos: Vec<f32> = uniform(&mut rng, 50, 3.0)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    let g = radius_graph(&pos, 2.2, None, Some(&cell)).unwrap();
    let v = g.edge_vec(&pos, Some(&cell)).unwrap();
    assert_eq!(v.len(), 3 * g.num_edges());
    let shift = g.shift.as_ref().unwrap();
    for e in 0..g.num_edges() {
        let t = cell.shift_vector(shift[e]);
        let mut d2 = 0.0;
        for k in 0..3 {
            let d = pos[3 * g.dst[e] + k] as f64 - (pos[3 * g.src[e] + k] as f64 + t[k]);
            assert_eq!(v[3 * e + k], d as f32);
            d2 += d * d;
        }
        assert!(d2 < 2.2 * 2.2);
    }
    // Without shifts: exactly the f32 subtraction pos[dst] - pos[src].
    let g = radius_graph(&pos, 1.0, None, None).unwrap();
    let v = g.edge_vec(&pos, None).unwrap();
    for e in 0..g.num_edges() {
        for k in 0..3 {
            assert_eq!(v[3 * e + k], pos[3 * g.dst[e] + k] - pos[3 * g.src[e] + k]);
        }
    }
    // Errors: shifts without the cell, a node out of range, ragged edge lists.
    let periodic = radius_graph(&pos, 2.2, None, Some(&cell)).unwrap();
    assert!(matches!(
        periodic.edge_vec(&pos, None),
        Err(Error::InvalidArgument { name: "cell", .. })
    ));
    let bad = Graph {
        src: vec![0],
        dst: vec![50],
        shift: None,
    };
    assert!(matches!(
        bad.edge_vec(&pos, None),
        Err(Error::InvalidArgument {
            name: "Graph::dst",
            ..
        })
    ));
    let ragged = Graph {
        src: vec![0, 1],
        dst: vec![1],
        shift: None,
    };
    assert!(matches!(
        ragged.edge_vec(&pos, None),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn deterministic_across_thread_counts() {
    let mut rng = StdRng::seed_from_u64(12);
    let n = 30_000;
    let pos = gaussian(&mut rng, n, (n as f64 / 100.0).cbrt());
    let cell = Cell::new(
        [[12.0, 0.0, 0.0], [3.0, 11.0, 0.0], [-2.0, 1.0, 10.0]],
        [true; 3],
    )
    .unwrap();
    let ppos = uniform(&mut rng, 6000, 11.0);
    let run = |threads: usize| {
        on_threads(threads, || {
            (
                radius_graph(&pos, 1.8, None, None).unwrap(),
                radius_graph(&pos, 1.8, Some(10), None).unwrap(),
                radius_graph(&ppos, 2.0, None, Some(&cell)).unwrap(),
            )
        })
    };
    let one = run(1);
    let two = run(2);
    let three = run(3);
    assert_eq!(one, two);
    assert_eq!(one, three);
    let g = &one.0;
    assert!(g.num_edges() > 30 * n, "guide density: ~40 neighbours");
    let e = edges(g);
    assert!(e.windows(2).all(|w| w[0] < w[1]));
    // Spot-check destinations against brute force.
    let p = |i: usize| [pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]];
    for i in (0..n).step_by(997) {
        let mut expected: Vec<usize> = (0..n)
            .filter(|&j| {
                j != i && {
                    let (a, b) = (p(i), p(j));
                    let d2 = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2);
                    d2 < 1.8 * 1.8
                }
            })
            .collect();
        expected.sort();
        let got: Vec<usize> = (0..g.num_edges())
            .filter(|&k| g.dst[k] == i)
            .map(|k| g.src[k])
            .collect();
        assert_eq!(got, expected, "dst {i}");
    }
}

#[test]
fn within_is_the_radius_graph_at_the_smaller_cutoff() {
    // A neighbour list at 3.0 (with a skin) cut to 2.2: the radius graph at 2.2, in the
    // list's order (destination, source, shift), with the same vectors. 1500 atoms: ~60000
    // list edges, many blocks of the parallel filter.
    let mut rng = StdRng::seed_from_u64(21);
    let cell = Cell::new(
        [[12.0, 0.0, 0.0], [2.0, 11.0, 0.0], [-1.0, 1.5, 10.5]],
        [true, true, false],
    )
    .unwrap();
    let pos = uniform(&mut rng, 1500, 11.0);
    let list = radius_graph(&pos, 3.0, None, Some(&cell)).unwrap();
    let v = list.edge_vec(&pos, Some(&cell)).unwrap();
    let run = |threads: usize| on_threads(threads, || list.within(&v, 2.2).unwrap());
    let (near, kept) = run(2);
    assert!(list.num_edges() > 4 * 4096 && near.num_edges() < list.num_edges());
    assert_eq!(edges(&near), brute(&pos, 2.2, None, Some(&cell)));
    assert_eq!(kept, near.edge_vec(&pos, Some(&cell)).unwrap());
    assert_eq!(run(1), (near.clone(), kept.clone()));
    assert_eq!(run(3), (near, kept));
    // Without shifts, and in f32.
    let open = radius_graph(&pos, 3.0, None, None).unwrap();
    let p32: Vec<f32> = pos.iter().map(|&x| x as f32).collect();
    let v32 = open.edge_vec(&p32, None).unwrap();
    let (near, kept) = open.within(&v32, 2.2f32).unwrap();
    assert!(near.shift.is_none() && near.num_edges() > 0);
    let expected: Vec<usize> = (0..open.num_edges())
        .filter(|&e| v32[3 * e..3 * e + 3].iter().map(|x| x * x).sum::<f32>() < 2.2 * 2.2)
        .collect();
    assert_eq!(
        near.src,
        expected.iter().map(|&e| open.src[e]).collect::<Vec<_>>()
    );
    assert_eq!(
        near.dst,
        expected.iter().map(|&e| open.dst[e]).collect::<Vec<_>>()
    );
    let vectors: Vec<f32> = expected
        .iter()
        .flat_map(|&e| v32[3 * e..3 * e + 3].to_vec())
        .collect();
    assert_eq!(kept, vectors);
    // Nothing kept, and the empty graph.
    let (none, empty) = list.within(&v, 1e-3).unwrap();
    assert_eq!((none.num_edges(), empty.len()), (0, 0));
    assert_eq!(none.shift, Some(vec![]));
    let (g, e) = Graph::default().within::<f64>(&[], 1.0).unwrap();
    assert_eq!((g.num_edges(), e.len()), (0, 0));
}

#[test]
fn within_rejects_mismatched_shapes_and_bad_cutoffs() {
    let g = Graph {
        src: vec![0, 1],
        dst: vec![1, 0],
        shift: None,
    };
    let bad_dst = Graph {
        dst: vec![1],
        ..g.clone()
    };
    let bad_shift = Graph {
        shift: Some(vec![[0; 3]]),
        ..g.clone()
    };
    let cases: [(&Graph, &[f64], usize, usize); 3] = [
        (&g, &[1.0, 0.0, 0.0], 6, 3),
        (&bad_dst, &[0.5; 6], 2, 1),
        (&bad_shift, &[0.5; 6], 2, 1),
    ];
    for r_max in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
        let r = g.within(&[0.5; 6], r_max);
        assert!(
            matches!(r, Err(Error::InvalidArgument { name: "r_max", .. })),
            "{r_max}: {r:?}"
        );
    }
    for (graph, v, want, have) in cases {
        let r = graph.within(v, 2.0);
        assert!(
            matches!(r, Err(Error::ShapeMismatch { expected, got, .. }) if (expected, got) == (want, have)),
            "{r:?}"
        );
    }
}

#[test]
fn edge_index_groups_sorted_and_unsorted_edges_alike() {
    // Destinations in order (a neighbour list's) take the grouping's shortcut; the same
    // edges shuffled take the counting sort: each node lists its edges in edge order.
    let dst = [0, 0, 1, 3, 3, 3, 4];
    let src = [1, 2, 0, 4, 0, 1, 3];
    let sorted = EdgeIndex::new(&src, &dst, 6).unwrap();
    assert_eq!(sorted.by_dst(0), [0, 1]);
    assert_eq!(sorted.by_dst(2), [] as [u32; 0]);
    assert_eq!(sorted.by_dst(3), [3, 4, 5]);
    assert_eq!(sorted.by_dst(5), [] as [u32; 0]);
    assert_eq!(sorted.by_src(0), [2, 4]);
    assert_eq!(sorted.by_src(1), [0, 5]);
    // Sorted both ways, with nodes before, between and after the edges' own.
    let runs = EdgeIndex::new(&[1, 1, 3], &[2, 2, 4], 6).unwrap();
    let (into, from): (Vec<_>, Vec<_>) = (0..6).map(|i| (runs.by_dst(i), runs.by_src(i))).unzip();
    let none: &[u32] = &[];
    assert_eq!(into, [none, none, &[0, 1], none, &[2], none]);
    assert_eq!(from, [none, &[0, 1], none, &[2], none, none]);
    let order = [4, 0, 6, 2, 5, 1, 3];
    let shuffled = EdgeIndex::new(&order.map(|e| src[e]), &order.map(|e| dst[e]), 6).unwrap();
    for i in 0..6 {
        let back = |edges: &[u32]| -> Vec<u32> {
            let mut v: Vec<u32> = edges.iter().map(|&e| order[e as usize] as u32).collect();
            v.sort();
            v
        };
        assert_eq!(back(shuffled.by_dst(i)), sorted.by_dst(i), "dst {i}");
        assert_eq!(back(shuffled.by_src(i)), sorted.by_src(i), "src {i}");
        assert!(shuffled.by_dst(i).is_sorted() && shuffled.by_src(i).is_sorted());
    }
}

// ---------------------------------------------------------------------------------------
// scatter / gather

fn naive_scatter(src: &[f64], index: &[usize], n: usize, d: usize) -> (Vec<f64>, Vec<usize>) {
    let mut out = vec![0.0; n * d];
    let mut count = vec![0; n];
    for (e, &i) in index.iter().enumerate() {
        count[i] += 1;
        for k in 0..d {
            out[i * d + k] += src[e * d + k];
        }
    }
    (out, count)
}

#[test]
fn scatter_matches_naive_loops() {
    let mut rng = StdRng::seed_from_u64(13);
    // Small (sequential) and large (parallel) inputs, sorted and unsorted indices.
    for &(e, n, d) in &[
        (0usize, 5usize, 3usize),
        (7, 4, 1),
        (100, 30, 5),
        (40_000, 3000, 4),
        (9000, 50_000, 7),
    ] {
        let src: Vec<f64> = (0..e * d).map(|_| rng.sample(StandardNormal)).collect();
        let mut index: Vec<usize> = (0..e).map(|_| rng.random_range(0..n)).collect();
        for sorted in [false, true] {
            if sorted {
                index.sort();
            }
            let (sum, count) = naive_scatter(&src, &index, n, d);
            let got = scatter_sum(&src, &index, n, d).unwrap();
            assert_eq!(got, sum, "sum e={e} n={n} d={d}"); // same additions, same order
            let mean = scatter_mean(&src, &index, n, d).unwrap();
            for i in 0..n {
                for k in 0..d {
                    let expected = if count[i] == 0 {
                        0.0
                    } else {
                        sum[i * d + k] / count[i] as f64
                    };
                    assert_eq!(mean[i * d + k], expected);
                }
            }
            let ys: Vec<f64> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
            let g = gather(&ys, &index, d).unwrap();
            for (j, &i) in index.iter().enumerate() {
                assert_eq!(&g[j * d..(j + 1) * d], &ys[i * d..(i + 1) * d]);
            }
        }
    }
    // f32.
    let src = [1.0f32, 2.0, 3.0];
    assert_eq!(
        scatter_mean(&src, &[1, 1, 1], 2, 1).unwrap(),
        vec![0.0, 2.0]
    );
}

#[test]
fn gather_is_the_adjoint_of_scatter_sum() {
    let mut rng = StdRng::seed_from_u64(14);
    for &(e, n, d) in &[(50usize, 10usize, 3usize), (60_000, 4000, 2)] {
        let x: Vec<f64> = (0..e * d).map(|_| rng.sample(StandardNormal)).collect();
        let y: Vec<f64> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
        let index: Vec<usize> = (0..e).map(|_| rng.random_range(0..n)).collect();
        let sx = scatter_sum(&x, &index, n, d).unwrap();
        let gy = gather(&y, &index, d).unwrap();
        let lhs: f64 = sx.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&gy).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()),
            "{lhs} vs {rhs}"
        );
    }
}

#[test]
fn scatter_is_deterministic_across_thread_counts() {
    let mut rng = StdRng::seed_from_u64(15);
    let (e, n, d) = (200_000, 5000, 3);
    let src: Vec<f32> = (0..e * d).map(|_| rng.sample(StandardNormal)).collect();
    let index: Vec<usize> = (0..e).map(|_| rng.random_range(0..n)).collect();
    let run = |threads: usize| {
        on_threads(threads, || {
            (
                scatter_sum(&src, &index, n, d).unwrap(),
                scatter_mean(&src, &index, n, d).unwrap(),
            )
        })
    };
    let one = run(1);
    let two = run(2);
    assert!(
        one.0
            .iter()
            .zip(&two.0)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert!(
        one.1
            .iter()
            .zip(&two.1)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

#[test]
fn scatter_errors() {
    let src = [1.0f64, 2.0, 3.0, 4.0];
    assert!(matches!(
        scatter_sum(&src, &[0, 2], 2, 2),
        Err(Error::InvalidArgument { name: "index", .. })
    ));
    assert!(matches!(
        scatter_mean(&src, &[0, 1, 1], 2, 2),
        Err(Error::ShapeMismatch {
            expected: 6,
            got: 4,
            ..
        })
    ));
    assert!(matches!(
        scatter_sum(&src, &[0, 1], 2, 0),
        Err(Error::InvalidArgument { name: "d", .. })
    ));
    assert!(matches!(
        gather(&src, &[0, 2], 2),
        Err(Error::InvalidArgument { name: "index", .. })
    ));
    assert!(matches!(
        gather(&src, &[0], 3),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        gather(&src, &[0], 0),
        Err(Error::InvalidArgument { name: "d", .. })
    ));
    // Empty edge lists are fine; rows stay zero.
    assert_eq!(scatter_sum::<f64>(&[], &[], 3, 2).unwrap(), vec![0.0; 6]);
    assert_eq!(gather(&src, &[], 2).unwrap(), Vec::<f64>::new());
}

/// The backward of the edge vectors is the adjoint of the forward: `<v(p), g> = <p, v^T(g)>`.
#[test]
fn edge_vectors_backward_is_the_adjoint() {
    let (src, dst) = (vec![0, 2, 3, 3, 1, 0], vec![1, 1, 0, 2, 3, 3]);
    let edges = EdgeIndex::new(&src, &dst, 5).unwrap();
    let pos: Vec<f64> = (0..15).map(|i| (i as f64 * 0.37).sin()).collect();
    let grad: Vec<f64> = (0..18).map(|i| (i as f64 * 0.71).cos()).collect();
    let mut v = vec![f64::NAN; 18];
    edges.edge_vectors(&pos, &mut v).unwrap();
    let mut gp = vec![f64::NAN; 15];
    edges.edge_vectors_backward(&grad, &mut gp).unwrap();
    let lhs: f64 = v.iter().zip(&grad).map(|(a, b)| a * b).sum();
    let rhs: f64 = pos.iter().zip(&gp).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() < 1e-12);
    assert_eq!(gp[12..], [0.0; 3], "node 4 has no edges");
    assert!(edges.edge_vectors(&pos[..12], &mut v).is_err());
}

/// `radius_graph_batched`: each graph's edges are the brute-force ones of its own atoms (and
/// own cell), renumbered, none across graphs; an empty graph in between; bad batch vectors
/// and cell counts are typed errors.
#[test]
fn batched_graphs_match_brute_force_per_graph() {
    use equivariant_core::graph::{num_graphs, radius_graph_batched};
    let mut rng = StdRng::seed_from_u64(21);
    let sizes = [7usize, 0, 12, 5];
    let batch: Vec<usize> = sizes
        .iter()
        .enumerate()
        .flat_map(|(g, &k)| std::iter::repeat_n(g, k))
        .collect();
    let n = batch.len();
    // All graphs overlap in space, so any edge across them would be found.
    let pos = uniform(&mut rng, n, 2.5);
    let cells: Vec<Cell> = (0..sizes.len())
        .map(|g| {
            let a = 2.6 + 0.3 * g as f64;
            Cell::new(
                [[a, 0.0, 0.0], [0.2, a, 0.0], [0.0, 0.1, a]],
                [true, true, g % 2 == 0],
            )
            .unwrap()
        })
        .collect();
    for cells in [None, Some(&cells[..])] {
        let g = radius_graph_batched(&pos, &batch, 1.4, None, cells).unwrap();
        let mut expected = Vec::new();
        let mut first = 0;
        for (k, &size) in sizes.iter().enumerate() {
            let part = &pos[3 * first..3 * (first + size)];
            let cell = cells.map(|c| &c[k]);
            expected.extend(
                brute(part, 1.4, None, cell)
                    .into_iter()
                    .map(|(d, s, shift)| (d + first, s + first, shift)),
            );
            first += size;
        }
        assert_eq!(edges(&g), expected, "cells: {}", cells.is_some());
        assert!(g.num_edges() > 20);
        if let Some(cells) = cells {
            // Each edge shifted by its own graph's cell: as the graphs one by one.
            let mut each = Vec::new();
            let mut first = 0;
            for (k, &size) in sizes.iter().enumerate() {
                let part = &pos[3 * first..3 * (first + size)];
                let single = radius_graph(part, 1.4, None, Some(&cells[k])).unwrap();
                each.extend(single.edge_vec(part, Some(&cells[k])).unwrap());
                first += size;
            }
            assert_eq!(g.edge_vec_batched(&pos, &batch, cells).unwrap(), each);
            assert!(g.edge_vec_batched(&pos, &batch, &cells[..2]).is_err());
        }
    }
    assert_eq!(num_graphs(&batch).unwrap(), 4);
    assert!(matches!(
        radius_graph_batched(&pos, &batch[1..], 1.4, None, None),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut unsorted = batch.clone();
    unsorted.swap(0, n - 1);
    assert!(matches!(
        radius_graph_batched(&pos, &unsorted, 1.4, None, None),
        Err(Error::InvalidArgument { name: "batch", .. })
    ));
    assert!(matches!(
        radius_graph_batched(&pos, &batch, 1.4, None, Some(&cells[..3])),
        Err(Error::ShapeMismatch { .. })
    ));
    let none: [f64; 0] = [];
    assert_eq!(
        radius_graph_batched(&none, &[], 1.0, None, None)
            .unwrap()
            .num_edges(),
        0
    ); // Graph indices far apart cost nothing; one past usize::MAX is an error, not a panic.
    let two = [0.0f64, 0.0, 0.0, 0.5, 0.0, 0.0];
    let far = radius_graph_batched(&two, &[0, 1 << 40], 1.0, None, None).unwrap();
    assert_eq!(far.num_edges(), 0);
    assert!(matches!(
        num_graphs(&[0, usize::MAX]),
        Err(Error::InvalidArgument { name: "batch", .. })
    ));
}
