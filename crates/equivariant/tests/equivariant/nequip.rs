//! The NequIP potential: its edge embedding against NequIP's own code (values and first and
//! second derivatives) and, off the axes, against finite differences, energies invariant and forces equivariant under rotations, forces
//! and stress against finite differences, a batch equal to its structures one by one, the
//! training gradient of an energy + force + virial loss against finite differences, and
//! bad input.

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::Error;
use equivariant::forces::{EnergyForces, LossDerivatives};
use equivariant::graph::Cell;
use equivariant::nn::models::nequip::{Nequip, NequipConfig, RadialBasisEdgeEncoding};
use equivariant::potential::{AtomicGraph, AtomicPotential, Potential, Structure};
use equivariant_testing::{assert_close, f64s, load_fixture};

use super::support::check_gradient;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// NequIP 0.6.2's `BesselBasis` times its `PolynomialCutoff` (checked equal to 0.19.1's
/// encoding by the fixture script): values, and first and second derivatives in the length
/// (NequIP's autograd), to 1e-12 of the largest entry.
#[test]
fn radial_embedding_matches_nequip() {
    let fixture = load_fixture!("nequip_radial");
    let device = device();
    for setting in fixture["settings"].as_array().unwrap() {
        let r_max = setting["r_max"].as_f64().unwrap();
        let k = setting["num_basis"].as_u64().unwrap() as usize;
        let p = setting["p"].as_u64().unwrap() as u32;
        let encoding = RadialBasisEdgeEncoding::new(r_max, k, p).unwrap();
        let lengths = f64s(&setting["lengths"]);
        let e = lengths.len();
        // Edges along x: the tangent along x is the derivative in the length.
        let along_x = |v: &[f64]| -> Vec<f64> { v.iter().flat_map(|&x| [x, 0.0, 0.0]).collect() };
        let r = Tensor::<2>::from_data(
            TensorData::new(along_x(&lengths), [e, 3]),
            (&device, DType::F64),
        )
        .require_grad();
        let t = Tensor::<2>::from_data(
            TensorData::new(along_x(&vec![1.0; e]), [e, 3]),
            (&device, DType::F64),
        );
        let expected = |key: &str| -> Vec<f64> { f64s(&setting[key]) };
        let close = |what: &str, got: &[f64], want: &[f64]| {
            let tol = 1e-12 * (1.0 + want.iter().fold(0.0f64, |m, x| m.max(x.abs())));
            assert_close(&format!("r_max {r_max} p {p} {what}"), got, want, tol);
        };
        close(
            "embedding",
            &values(encoding.forward(r.clone())),
            &expected("embedding"),
        );
        let (emb, d_emb) = encoding.forward_tangent(r.clone(), t.clone());
        close(
            "embedding (tangent pass)",
            &values(emb),
            &expected("embedding"),
        );
        close("d/dr", &values(d_emb.clone()), &expected("embedding_d1"));
        // d2: the gradient in r_x of each basis function's derivative.
        let d2_expected = expected("embedding_d2");
        for n in 0..k {
            // A fresh forward each time: burn's backward consumes the graph.
            let (_, d_emb) = encoding.forward_tangent(r.clone(), t.clone());
            let grads = d_emb.slice([0..e, n..n + 1]).sum().backward();
            let g = values(r.grad(&grads).unwrap());
            let got: Vec<f64> = (0..e).map(|i| g[3 * i]).collect();
            let want: Vec<f64> = (0..e).map(|i| d2_expected[i * k + n]).collect();
            let tol = 1e-12 * (1.0 + d2_expected.iter().fold(0.0f64, |m, x| m.max(x.abs())));
            assert_close(
                &format!("r_max {r_max} p {p} d2/dr2 basis {n}"),
                &got,
                &want,
                tol,
            );
        }
    }
}

/// The edge embedding (one op, and its tangent another) off the axes: its gradients in the
/// vectors, and the tangent's in the vectors and the tangents, against central differences;
/// and both invariant under a rotation of vectors and tangents together. Edges inside the
/// cutoff, beyond it, and one of zero length (embedding, tangent and gradients zero).
#[test]
fn radial_embedding_gradients_and_invariance() {
    let encoding = RadialBasisEdgeEncoding::new(2.6, 5, 6).unwrap();
    let v = [
        0.9, -0.4, 0.3, //
        -1.1, 1.5, 0.8, //
        0.2, 0.1, -2.2, //
        2.0, 1.9, 0.7, // beyond r_max
        0.0, 0.0, 0.0, // zero length
    ];
    let t = [
        0.3, 0.8, -0.5, 1.1, -0.2, 0.4, -0.7, 0.6, 0.9, 0.5, 0.5, -0.3, 0.2, 0.4, 0.1,
    ];
    let device = device();
    let fixed = |x: &[f64]| {
        Tensor::<2>::from_data(TensorData::new(x.to_vec(), [5, 3]), (&device, DType::F64))
    };
    let shape = [4, 3]; // finite differences off the zero-length edge (|v| is not smooth there)
    check_gradient(
        "embedding d/dv",
        |x| encoding.forward(x),
        &v[..12],
        shape,
        1e-7,
    );
    check_gradient(
        "tangent d/dv",
        |x| encoding.forward_tangent(x, fixed(&t).narrow(0, 0, 4)).1,
        &v[..12],
        shape,
        1e-6,
    );
    check_gradient(
        "tangent d/dt",
        |x| encoding.forward_tangent(fixed(&v).narrow(0, 0, 4), x).1,
        &t[..12],
        shape,
        1e-7,
    );
    // The zero-length edge: nothing, and no gradient.
    let (tv, tt) = (fixed(&v).require_grad(), fixed(&t).require_grad());
    let (emb, d_emb) = encoding.forward_tangent(tv.clone(), tt.clone());
    let grads = emb.clone().add(d_emb.clone()).sum().backward();
    for (what, x) in [
        ("embedding", values(emb.narrow(0, 4, 1))),
        ("tangent", values(d_emb.narrow(0, 4, 1))),
        ("d/dv", values(tv.grad(&grads).unwrap().narrow(0, 4, 1))),
        ("d/dt", values(tt.grad(&grads).unwrap().narrow(0, 4, 1))),
    ] {
        assert!(
            x.iter().all(|&x| x == 0.0),
            "zero-length edge {what}: {x:?}"
        );
    }
    // A rotation of both: the embedding depends on |v|, the tangent on |v| and v . t.
    let rotation = equivariant::o3::angles_to_matrix(0.7, -1.3, 2.1);
    let rotate = |x: &[f64]| -> Vec<f64> {
        x.chunks(3)
            .flat_map(|x| (0..3).map(move |i| (0..3).map(|j| rotation[i][j] * x[j]).sum::<f64>()))
            .collect()
    };
    let (before, after) = (
        encoding.forward_tangent(fixed(&v), fixed(&t)),
        encoding.forward_tangent(fixed(&rotate(&v)), fixed(&rotate(&t))),
    );
    assert_close(
        "rotated embedding",
        &values(after.0),
        &values(before.0),
        1e-12,
    );
    assert_close(
        "rotated tangent",
        &values(after.1),
        &values(before.1),
        1e-12,
    );
}

/// A small model in f64 (two layers, `l_max` 2, 4 features, one hidden radial layer of 8),
/// nonzero scales and shifts.
fn model(seed: u64) -> Nequip {
    let device = device();
    device.seed(seed);
    let config = NequipConfig {
        num_layers: 2,
        l_max: 2,
        num_features: 4,
        invariant_layers: 1,
        invariant_neurons: 8,
        avg_num_neighbors: 6.0,
        ..NequipConfig::new(2, 2.6)
    };
    let model = equivariant::util::cast(config.init(&device).unwrap(), DType::F64);
    model.with_scale_shift(&[1.3, 0.7], &[-0.4, 0.25]).unwrap()
}

/// A distorted two-species fcc-like periodic cell of 8 atoms (skewed lattice), and a
/// cluster of 5 atoms.
fn structures() -> Vec<Structure> {
    let lattice = [[3.6, 0.0, 0.0], [0.3, 3.5, 0.0], [0.2, -0.1, 3.7]];
    let base = [
        [0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0],
        [0.5, 0.0, 0.5],
        [0.0, 0.5, 0.5],
    ];
    let mut positions = Vec::new();
    for (k, f) in base.iter().enumerate() {
        for shift in [0.0, 0.25] {
            let frac = [
                f[0] + shift,
                f[1] + 0.5 * shift,
                f[2] + 0.1 * k as f64 * shift,
            ];
            let mut x = [0.0; 3];
            for (c, a) in lattice.iter().enumerate() {
                for d in 0..3 {
                    x[d] += frac[c] * a[d];
                }
            }
            // A deterministic jiggle off the lattice sites.
            let j = positions.len() as f64;
            positions.push([
                x[0] + 0.05 * j.sin(),
                x[1] + 0.04 * (1.3 * j).cos(),
                x[2] - 0.03 * j.sin(),
            ]);
        }
    }
    let crystal = Structure {
        species: (0..positions.len()).map(|i| i % 2).collect(),
        positions,
        cell: Some(Cell::new(lattice, [true; 3]).unwrap()),
    };
    let cluster = Structure {
        positions: vec![
            [0.0, 0.0, 0.0],
            [1.9, 0.2, -0.1],
            [-0.3, 1.8, 0.4],
            [0.5, -0.6, 1.7],
            [1.2, 1.3, 1.1],
        ],
        species: vec![1, 0, 0, 1, 1],
        cell: None,
    };
    vec![crystal, cluster]
}

fn graph(model: &Nequip, structures: &[Structure]) -> AtomicGraph {
    AtomicGraph::new(structures, model.r_max(), &device(), DType::F64).unwrap()
}

fn energies(model: &Nequip, structures: &[Structure]) -> Vec<f64> {
    values(
        model
            .energy_forces(&graph(model, structures))
            .unwrap()
            .energy,
    )
}

fn fd_tolerance(exact: &[f64]) -> f64 {
    1e-6 * (1.0 + exact.iter().fold(0.0f64, |m, x| m.max(x.abs())))
}

#[test]
fn forces_and_stress_are_derivatives_of_the_energy() {
    let model = model(1);
    let all = structures();
    let g = graph(&model, &all);
    assert!(g.edges().num_edges() > 100, "a connected graph");
    let result = model.energy_forces(&g).unwrap();
    let forces = values(result.forces.clone());
    let h = 1e-5;
    let tol = fd_tolerance(&forces);
    let mut atom = 0;
    for (s, structure) in all.iter().enumerate() {
        for i in 0..structure.positions.len() {
            for a in 0..3 {
                let moved = |delta: f64| {
                    let mut copy = all.clone();
                    copy[s].positions[i][a] += delta;
                    energies(&model, &copy)[s]
                };
                let slope = (moved(h) - moved(-h)) / (2.0 * h);
                let f = forces[3 * atom + a];
                assert!(
                    (f + slope).abs() < tol,
                    "structure {s} atom {i} axis {a}: {f} vs {}",
                    -slope
                );
            }
            atom += 1;
        }
    }
    // The crystal's stress against a strain of its cell and atoms together.
    let cell = all[0].cell.clone().unwrap();
    let volume = g.volumes()[0].expect("periodic");
    assert!((volume - cell.volume()).abs() < 1e-12);
    let stress = values(result.stress(&[volume, 1.0]).unwrap());
    let tol = fd_tolerance(&stress);
    for a in 0..3 {
        for b in 0..3 {
            let strained = |eps: f64| {
                let apply = |x: [f64; 3]| {
                    let mut y = x;
                    y[a] += eps * x[b];
                    y
                };
                let mut copy = all.clone();
                copy[0].cell = Some(Cell::new(cell.lattice().map(apply), [true; 3]).unwrap());
                copy[0].positions = copy[0].positions.iter().map(|&x| apply(x)).collect();
                energies(&model, &copy)[0]
            };
            let expected = (strained(h) - strained(-h)) / (2.0 * h) / volume;
            let got = stress[a * 3 + b];
            assert!(
                (got - expected).abs() < tol,
                "stress ({a}, {b}): {got} vs {expected}"
            );
        }
    }
}

#[test]
fn energy_is_invariant_and_forces_rotate() {
    let model = model(2);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let rot = equivariant::o3::rand_matrix(&mut rng);
    let rotate = |x: [f64; 3]| -> [f64; 3] {
        std::array::from_fn(|i| (0..3).map(|j| rot[i][j] * x[j]).sum())
    };
    let all = structures();
    let rotated: Vec<Structure> = all
        .iter()
        .map(|s| Structure {
            positions: s.positions.iter().map(|&x| rotate(x)).collect(),
            species: s.species.clone(),
            cell: s
                .cell
                .as_ref()
                .map(|c| Cell::new(c.lattice().map(rotate), c.pbc()).unwrap()),
        })
        .collect();
    let before = model.energy_forces(&graph(&model, &all)).unwrap();
    let after = model.energy_forces(&graph(&model, &rotated)).unwrap();
    let e0 = values(before.energy);
    assert_close("energies", &values(after.energy), &e0, 1e-10);
    let f0 = values(before.forces);
    let expected: Vec<f64> = f0
        .chunks(3)
        .flat_map(|f| rotate([f[0], f[1], f[2]]))
        .collect();
    assert_close("rotated forces", &values(after.forces), &expected, 1e-10);
    assert!(f0.iter().any(|f| f.abs() > 1e-3), "forces are not all zero");
    // Each atom's energy is invariant too.
    let atomic = |s: &[Structure]| {
        let g = graph(&model, s);
        values(model.atomic_energies(&g, g.edge_vec().clone()).unwrap())
    };
    assert_close("atomic energies", &atomic(&rotated), &atomic(&all), 1e-10);
}

#[test]
fn a_batch_equals_its_structures_one_by_one() {
    let model = model(3);
    let all = structures();
    let together = model.energy_forces(&graph(&model, &all)).unwrap();
    let mut forces = Vec::new();
    let mut virials = Vec::new();
    for (s, structure) in all.iter().enumerate() {
        let alone = model
            .energy_forces(&graph(&model, std::slice::from_ref(structure)))
            .unwrap();
        let e = values(together.energy.clone())[s];
        assert!((values(alone.energy)[0] - e).abs() < 1e-10 * (1.0 + e.abs()));
        forces.extend(values(alone.forces));
        virials.extend(values(alone.virial));
    }
    assert_close("forces", &values(together.forces), &forces, 1e-10);
    assert_close("virials", &values(together.virial), &virials, 1e-10);
}

/// `AtomicGraph::concat` of graphs built one structure at a time is the graph
/// `AtomicGraph::new` builds from all the structures at once: species, batch vector, edges in
/// order, edge vectors and volumes, the periodic shifts and cells (through `with_positions`),
/// and the model's energies and forces, to the bit, for periodic, isolated and mixed batches.
#[test]
fn concatenated_graphs_are_the_batch_graph() {
    let model = model(5);
    let [crystal, cluster]: [Structure; 2] = structures().try_into().unwrap();
    let alone = |s: &Structure| graph(&model, std::slice::from_ref(s));
    let bits = |t: Tensor<2>| values(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for batch in [
        vec![crystal.clone(), cluster.clone()],
        vec![cluster.clone(), crystal.clone(), crystal.clone()],
        vec![cluster.clone(), cluster.clone()],
        vec![crystal.clone()],
    ] {
        let direct = graph(&model, &batch);
        let singles: Vec<AtomicGraph> = batch.iter().map(alone).collect();
        let joined = AtomicGraph::concat(&singles.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(joined.species(), direct.species());
        assert_eq!(joined.batch().index(), direct.batch().index());
        assert_eq!(joined.volumes(), direct.volumes());
        let (a, b) = (joined.edges(), direct.edges());
        assert_eq!(a.num_edges(), b.num_edges());
        for e in 0..a.num_edges() {
            assert_eq!((a.src(e), a.dst(e)), (b.src(e), b.dst(e)), "edge {e}");
        }
        assert_eq!(
            bits(joined.edge_vec().clone()),
            bits(direct.edge_vec().clone())
        );
        // New positions: the edges' periodic shifts and the cells move them alike.
        let n = direct.species().len();
        let moved: Vec<[f64; 3]> = batch
            .iter()
            .flat_map(|s| s.positions.iter())
            .enumerate()
            .map(|(i, p)| [p[0] + 0.01 * i as f64, p[1] - 0.02, p[2] + 0.3 / n as f64])
            .collect();
        assert_eq!(
            bits(joined.with_positions(&moved).unwrap().edge_vec().clone()),
            bits(direct.with_positions(&moved).unwrap().edge_vec().clone())
        );
        let (x, y) = (
            model.energy_forces(&joined).unwrap(),
            model.energy_forces(&direct).unwrap(),
        );
        assert_eq!(x.energy.into_data(), y.energy.into_data());
        assert_eq!(x.forces.into_data(), y.forces.into_data());
    }
    let err = AtomicGraph::concat(&[]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "graphs", .. }),
        "{err}"
    );
}

/// `L = sum_g 0.3 (E_g / n_g - e_ref_g)^2 + 1.7 mean((F - f_ref)^2) + 0.2 |W_0 - w_ref|^2`
/// and its derivatives.
fn loss(result: &EnergyForces, counts: &[usize]) -> (f64, LossDerivatives) {
    let e = values(result.energy.clone());
    let e_ref = [-2.0, 0.5];
    let f = values(result.forces.clone());
    let n = f.len() / 3;
    let f_ref: Vec<f64> = (0..3 * n).map(|k| 0.3 * (k as f64 * 0.7).sin()).collect();
    let w = values(result.virial.clone());
    let mut value = 0.0;
    let mut d_energy = Vec::new();
    for g in 0..e.len() {
        let per_atom = e[g] / counts[g] as f64 - e_ref[g];
        value += 0.3 * per_atom * per_atom;
        d_energy.push(2.0 * 0.3 * per_atom / counts[g] as f64);
    }
    let residual: Vec<f64> = f.iter().zip(&f_ref).map(|(a, b)| a - b).collect();
    value += 1.7 * residual.iter().map(|x| x * x).sum::<f64>() / (3 * n) as f64;
    let mut d_virial = vec![0.0; w.len()];
    for k in 0..9 {
        let r = w[k] - 0.1 * k as f64;
        value += 0.2 * r * r;
        d_virial[k] = 2.0 * 0.2 * r;
    }
    let device = result.forces.device();
    let d_forces = residual
        .iter()
        .map(|x| 2.0 * 1.7 * x / (3 * n) as f64)
        .collect();
    let derivatives = LossDerivatives {
        energy: d_energy,
        forces: Tensor::from_data(TensorData::new(d_forces, [n, 3]), (&device, DType::F64)),
        virial: Some(Tensor::from_data(
            TensorData::new(d_virial, [e.len(), 3, 3]),
            (&device, DType::F64),
        )),
    };
    (value, derivatives)
}

fn loss_at(model: &Nequip, g: &AtomicGraph, counts: &[usize]) -> f64 {
    loss(&model.energy_forces(g).unwrap(), counts).0
}

/// The gradient of an energy + force + virial loss over a batch of a crystal and a cluster,
/// in parameters of every kind (embedding, radial MLPs, linears, self-connections, readout),
/// against central differences; and in the positions.
#[test]
fn training_gradients_match_finite_differences() {
    let model = model(4);
    let all = structures();
    let counts: Vec<usize> = all.iter().map(|s| s.positions.len()).collect();
    let g = graph(&model, &all);
    let step = model
        .training_gradients(&g, |result| Ok(loss(result, &counts).1), true)
        .unwrap();
    let grads = step.gradients;
    type Pick = fn(&mut Nequip) -> &mut Param<Tensor<2>>;
    type Pick1 = fn(&mut Nequip) -> &mut Param<Tensor<1>>;
    let matrices: [(&str, Pick); 3] = [
        ("layer 0 fc W0", |m| &mut m.layers[0].conv.fc.weights[0]),
        ("layer 1 fc W1", |m| &mut m.layers[1].conv.fc.weights[1]),
        ("layer 1 fc W0", |m| &mut m.layers[1].conv.fc.weights[0]),
    ];
    let vectors: [(&str, Pick1); 6] = [
        ("chemical embedding", |m| {
            m.chemical_embedding.weight.as_mut().unwrap()
        }),
        ("layer 0 linear_1", |m| {
            m.layers[0].conv.linear_1.weight.as_mut().unwrap()
        }),
        ("layer 1 linear_2", |m| {
            m.layers[1].conv.linear_2.weight.as_mut().unwrap()
        }),
        ("layer 1 sc", |m| {
            m.layers[1]
                .conv
                .sc
                .as_mut()
                .unwrap()
                .weight
                .as_mut()
                .unwrap()
        }),
        ("conv_to_output_hidden", |m| {
            m.conv_to_output_hidden.weight.as_mut().unwrap()
        }),
        ("output_hidden_to_scalar", |m| {
            m.output_hidden_to_scalar.weight.as_mut().unwrap()
        }),
    ];
    fn check<const D: usize>(
        name: &str,
        model: &Nequip,
        g: &AtomicGraph,
        counts: &[usize],
        grads: &burn::tensor::Gradients,
        pick: impl Fn(&mut Nequip) -> &mut Param<Tensor<D>>,
    ) {
        let mut copy = model.clone();
        let value = pick(&mut copy).val();
        let exact = values(
            value
                .grad(grads)
                .unwrap_or_else(|| panic!("{name}: no gradient")),
        );
        let w = values(value.clone());
        let shape = value.shape();
        let tol = fd_tolerance(&exact);
        let h = 1e-5;
        for i in (0..exact.len()).step_by(exact.len() / 4 + 1) {
            let moved = |delta: f64| {
                let mut m = w.clone();
                m[i] += delta;
                let t = Tensor::<D>::from_data(
                    TensorData::new(m, shape.clone()),
                    (&device(), DType::F64),
                );
                let mut copy = model.clone();
                *pick(&mut copy) = Param::from_tensor(t.require_grad());
                loss_at(&copy, g, counts)
            };
            let slope = (moved(h) - moved(-h)) / (2.0 * h);
            assert!(
                (exact[i] - slope).abs() < tol,
                "{name}[{i}]: {} vs difference {slope}",
                exact[i]
            );
        }
    }
    for (name, pick) in matrices {
        check(name, &model, &g, &counts, &grads, pick);
    }
    for (name, pick) in vectors {
        check(name, &model, &g, &counts, &grads, pick);
    }
    // The scales and shifts are not trained.
    assert!(model.per_type_shifts.val().grad(&grads).is_none());

    // dL/dpos, moving one atom of each structure.
    let dpos = values(step.positions.unwrap());
    let tol = fd_tolerance(&dpos);
    let h = 1e-5;
    for (s, i) in [(0usize, 3usize), (1, 2)] {
        let atom = if s == 0 { i } else { counts[0] + i };
        for a in 0..3 {
            let moved = |delta: f64| {
                let mut copy = all.clone();
                copy[s].positions[i][a] += delta;
                loss_at(&model, &graph(&model, &copy), &counts)
            };
            let slope = (moved(h) - moved(-h)) / (2.0 * h);
            let exact = dpos[3 * atom + a];
            assert!(
                (exact - slope).abs() < tol,
                "dL/dpos structure {s} atom {i} axis {a}: {exact} vs {slope}"
            );
        }
    }
}

/// The models `energy_forces_matches_autodiff` draws besides `model`'s: three SO(3) layers
/// with residual connections, no self-connection, a radial MLP of two hidden layers and a
/// scalar last layer; two layers to `l_max` 3 with a radial MLP of no hidden layer.
fn compared_configs() -> [NequipConfig; 2] {
    [
        NequipConfig {
            num_layers: 3,
            l_max: 1,
            parity: false,
            num_features: 3,
            invariant_layers: 2,
            invariant_neurons: 6,
            avg_num_neighbors: 5.0,
            use_sc: false,
            resnet: true,
            scalar_last_layer: true,
            ..NequipConfig::new(2, 2.6)
        },
        NequipConfig {
            num_layers: 2,
            l_max: 3,
            num_features: 2,
            invariant_layers: 0,
            avg_num_neighbors: 7.0,
            ..NequipConfig::new(2, 2.6)
        },
    ]
}

/// `Nequip::energy_forces` (the model's backward written out on slices) against autodiff
/// through the burn ops (`forces::energy_forces` on `Nequip::energy`), in f64 and f32, for
/// models that cover each branch: harmonics to `l_max` 2 and 3, SO(3) and O(3), residual
/// connections, no self-connection, radial MLPs of zero, one and two hidden layers, a
/// scalar last layer; on the periodic crystal and the cluster as one batch, and on a lone
/// atom (no edges).
#[test]
fn energy_forces_matches_autodiff() {
    let device = device();
    let configs: Vec<_> = std::iter::once(None)
        .chain(compared_configs().map(Some))
        .collect();
    let lone = Structure {
        positions: vec![[0.3, -0.2, 0.1]],
        species: vec![1],
        cell: None,
    };
    // The crystal repeated 2 x 2 x 3 (96 atoms): the node-level steps' rows in more than
    // one parallel block.
    let crystal = &structures()[0];
    let lattice = crystal.cell.as_ref().unwrap().lattice();
    let mut bulk = Structure {
        positions: Vec::new(),
        species: Vec::new(),
        cell: Some(
            Cell::new(
                [0, 1, 2].map(|c| lattice[c].map(|x| [2.0, 2.0, 3.0][c] * x)),
                [true; 3],
            )
            .unwrap(),
        ),
    };
    for (a, b, c) in (0..2).flat_map(|a| (0..2).flat_map(move |b| (0..3).map(move |c| (a, b, c)))) {
        for (x, &t) in crystal.positions.iter().zip(&crystal.species) {
            let shift: [f64; 3] = std::array::from_fn(|d| {
                a as f64 * lattice[0][d] + b as f64 * lattice[1][d] + c as f64 * lattice[2][d]
            });
            bulk.positions
                .push(std::array::from_fn(|d| x[d] + shift[d]));
            bulk.species.push(t);
        }
    }
    for (c, config) in configs.iter().enumerate() {
        let model = match config {
            None => model(7),
            Some(config) => {
                device.seed(11 + c as u64);
                equivariant::util::cast(config.init(&device).unwrap(), DType::F64)
                    .with_scale_shift(&[0.8, 1.4], &[0.3, -0.6])
                    .unwrap()
            }
        };
        for dtype in [DType::F64, DType::F32] {
            let model = equivariant::util::cast(model.clone(), dtype);
            for batch in [structures(), vec![lone.clone()], vec![bulk.clone()]] {
                let g = AtomicGraph::new(&batch, model.r_max(), &device, dtype).unwrap();
                let direct = model.energy_forces(&g).unwrap();
                let autodiff = equivariant::forces::energy_forces(
                    g.edges(),
                    g.batch(),
                    g.edge_vec().clone(),
                    |r| model.energy(&g, r),
                )
                .unwrap();
                let rtol = if dtype == DType::F64 { 1e-10 } else { 1e-4 };
                let close = |what: &str, got: Vec<f64>, want: Vec<f64>| {
                    let tol = rtol * (1.0 + want.iter().fold(0.0f64, |m, x| m.max(x.abs())));
                    let what = format!("config {c} {dtype:?} {} atoms: {what}", g.species().len());
                    assert_close(&what, &got, &want, tol);
                };
                close("energy", values(direct.energy), values(autodiff.energy));
                close("forces", values(direct.forces), values(autodiff.forces));
                close("virial", values(direct.virial), values(autodiff.virial));
                close(
                    "edge gradient",
                    values(direct.edge_gradient),
                    values(autodiff.edge_gradient),
                );
            }
        }
    }
}

/// `atomic_energy_forces` with counted atoms, on the batch graph and on domains' graphs
/// (`from_neighbors` with counted atoms: the layers' shells), against autodiff of the
/// counted atoms' energies through the burn ops (`atomic_energies`), f64: the two-layer
/// model on the cluster, and a three-layer model with residual connections on a chain,
/// whose middle layer is cut too.
#[test]
fn counted_atoms_and_domains_match_autodiff() {
    let device = device();
    let two = model(8);
    device.seed(9);
    let config = NequipConfig {
        num_layers: 3,
        l_max: 1,
        parity: false,
        num_features: 3,
        resnet: true,
        avg_num_neighbors: 2.0,
        ..NequipConfig::new(2, 2.6)
    };
    let three = equivariant::util::cast(config.init(&device).unwrap(), DType::F64)
        .with_scale_shift(&[0.9, 1.2], &[0.1, -0.2])
        .unwrap();
    let all = structures();
    let chain = Structure {
        positions: (0..7)
            .map(|i| {
                let x = i as f64;
                [1.5 * x, 0.1 * (1.7 * x).sin(), 0.08 * (2.3 * x).cos()]
            })
            .collect(),
        species: vec![0, 1, 1, 0, 1, 0, 0],
        cell: None,
    };
    let domain = |model: &Nequip, s: &Structure, counted: &[bool]| {
        let n = s.positions.len();
        let neighbors: Vec<Vec<usize>> = (0..n)
            .map(|i| (0..n).filter(|&j| j != i).collect())
            .collect();
        let (graph, atoms) = AtomicGraph::from_neighbors(
            &s.positions,
            s.species.clone(),
            &neighbors,
            model.r_max(),
            Some((counted, model.num_interactions())),
            &device,
            DType::F64,
        )
        .unwrap();
        let shells: Vec<(usize, usize)> = graph
            .shells()
            .unwrap()
            .iter()
            .map(|s| (s.inputs, s.outputs))
            .collect();
        let in_order: Vec<bool> = atoms.iter().map(|&i| counted[i]).collect();
        (graph, in_order, shells)
    };
    let batch_graph = graph(&two, &all);
    let alternate: Vec<bool> = (0..batch_graph.species().len())
        .map(|i| i % 3 != 1)
        .collect();
    let (cluster, cluster_mask, _) = domain(&two, &all[1], &[true, false, true, false, false]);
    let middle = [false, false, false, true, false, false, false];
    let (chain, chain_mask, shells) = domain(&three, &chain, &middle);
    // Every layer of the chain's domain writes fewer atoms than it reads, and the last two
    // add their input back (SO(3): the hidden irreps reach themselves).
    assert!(shells.iter().all(|&(i, o)| o < i), "{shells:?}");
    let resnet: Vec<bool> = (three.layers.iter())
        .map(|l| l.equivariant_nonlin.irreps_out() == l.conv.linear_1.map().irreps_in())
        .collect();
    assert_eq!(resnet, [false, true, true]);
    let cases = [
        (&two, &batch_graph, alternate),
        (&two, &cluster, cluster_mask),
        (&three, &chain, chain_mask),
    ];
    for (model, g, mask) in cases {
        let direct = model.atomic_energy_forces(g, Some(&mask)).unwrap();
        let weights: Vec<f64> = mask.iter().map(|&c| f64::from(u8::from(c))).collect();
        let mut atomic = None;
        let autodiff =
            equivariant::forces::energy_forces(g.edges(), g.batch(), g.edge_vec().clone(), |r| {
                let energies = model.atomic_energies(g, r)?;
                atomic = Some(values(energies.clone()));
                let weights = Tensor::<1>::from_data(
                    TensorData::new(weights.clone(), [mask.len()]),
                    (&energies.device(), DType::F64),
                );
                Ok(equivariant::potential::sum_per_structure(
                    g,
                    energies.mul(weights),
                ))
            })
            .unwrap();
        let close = |what: &str, got: Vec<f64>, want: Vec<f64>| {
            let tol = 1e-10 * (1.0 + want.iter().fold(0.0f64, |m, x| m.max(x.abs())));
            let what = format!("{} atoms: {what}", g.species().len());
            assert_close(&what, &got, &want, tol);
        };
        close("atomic", values(direct.atomic), atomic.unwrap());
        let (direct, autodiff) = (direct.energy_forces, autodiff);
        close("energy", values(direct.energy), values(autodiff.energy));
        close("forces", values(direct.forces), values(autodiff.forces));
        close("virial", values(direct.virial), values(autodiff.virial));
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let model = model(5);
    let mut all = structures();
    all[1].species[2] = 2;
    assert!(matches!(
        model.energy_forces(&graph(&model, &all)),
        Err(Error::InvalidArgument {
            name: "species",
            ..
        })
    ));
    all[1].species.pop();
    assert!(matches!(
        AtomicGraph::new(&all, 2.6, &device(), DType::F64),
        Err(Error::InvalidArgument {
            name: "species",
            ..
        })
    ));
    all[1].species.push(0);
    all[1].positions[0][1] = f64::NAN;
    assert!(matches!(
        AtomicGraph::new(&all, 2.6, &device(), DType::F64),
        Err(Error::NonFinite { .. })
    ));
    assert!(AtomicGraph::new(&[], 2.6, &device(), DType::F64).is_err());
    assert!(model.clone().with_scale_shift(&[1.0], &[0.0, 0.0]).is_err());
    assert!(
        model
            .with_scale_shift(&[1.0, f64::NAN], &[0.0, 0.0])
            .is_err()
    );
}

/// The parameters of a fixture case, as a safetensors file (f64) under our module paths.
fn fixture_store(params: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .iter()
        .map(|(path, p)| {
            let shape: Vec<usize> = p["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let bytes = f64s(&p["values"])
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (path.clone(), shape, bytes)
        })
        .collect();
    let views: Vec<(String, TensorView)> = buffers
        .iter()
        .map(|(path, shape, bytes)| {
            (
                path.clone(),
                TensorView::new(Dtype::F64, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The whole model against nequip 0.6.2 itself (`tools/reference/nequip/
/// make_model_fixture.py`: its `model_from_config` with one-hot species, `ConvNetLayer`s,
/// the per-species rescale; e3nn's weights copied in): the energy, the forces, and the
/// gradient of `sum(F * c)` with respect to every weight (NequIP's `create_graph=True`), for
/// `l_max` 1 and 2, both parities, and three layers (where `0o` gates appear); f64 to 1e-10.
/// The SO(3) case of three layers at `l_max` 2 is the one whose energy is not invariant
/// under inversion: it pins the edge direction (reversed edges miss it by 8e-5).
#[test]
fn the_model_matches_nequip() {
    use equivariant::store::{ModuleSnapshot, SafetensorsStore};
    let fixture = load_fixture!("nequip_model");
    let device = device();
    for (k, case) in fixture["cases"].as_array().unwrap().iter().enumerate() {
        let h = &case["hyper"];
        let int = |key: &str| h[key].as_u64().unwrap() as usize;
        let config = NequipConfig {
            num_layers: int("num_layers"),
            l_max: int("l_max") as u32,
            parity: h["parity"].as_bool().unwrap(),
            num_features: int("num_features"),
            num_basis: int("num_basis"),
            polynomial_cutoff_p: int("PolynomialCutoff_p") as u32,
            invariant_layers: int("invariant_layers"),
            invariant_neurons: int("invariant_neurons"),
            avg_num_neighbors: h["avg_num_neighbors"].as_f64().unwrap(),
            use_sc: h["use_sc"].as_bool().unwrap(),
            resnet: h["resnet"].as_bool().unwrap(),
            scalar_last_layer: h["scalar_last_layer"].as_bool().unwrap(),
            ..NequipConfig::new(int("num_types"), h["r_max"].as_f64().unwrap())
        };
        let mut model = equivariant::util::cast(config.init(&device).unwrap(), DType::F64);
        let params = case["params"].as_object().unwrap();
        let mut store = SafetensorsStore::from_bytes(Some(fixture_store(params)));
        let applied = model.load_from(&mut store).unwrap();
        assert!(
            applied.missing.is_empty() && applied.unused.is_empty(),
            "case {k}: {applied:?}"
        );
        let positions: Vec<[f64; 3]> = case["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p = f64s(p);
                [p[0], p[1], p[2]]
            })
            .collect();
        let species = case["species"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as usize)
            .collect();
        let n = positions.len();
        let structure = Structure {
            positions,
            species,
            cell: None,
        };
        let g = AtomicGraph::new(&[structure], model.r_max(), &device, DType::F64).unwrap();
        assert_eq!(
            2 * g.edges().num_edges(),
            f64s(&case["edge_index"]).len(),
            "case {k}: the same graph"
        );
        let c: Vec<f64> = f64s(&case["c"]);
        let step = model
            .training_gradients(
                &g,
                |_| {
                    Ok(LossDerivatives {
                        energy: vec![0.0],
                        forces: Tensor::from_data(
                            TensorData::new(c.clone(), [n, 3]),
                            (&device, DType::F64),
                        ),
                        virial: None,
                    })
                },
                false,
            )
            .unwrap();
        let close = |what: &str, got: &[f64], want: &[f64]| {
            let tol = 1e-10 * (1.0 + want.iter().fold(0.0f64, |m, x| m.max(x.abs())));
            assert_close(&format!("case {k} {what}"), got, want, tol);
        };
        // `energy_forces` (its written-out backward) against the same oracle.
        let direct = model.energy_forces(&g).unwrap();
        close(
            "energy (energy_forces)",
            &values(direct.energy),
            &[case["energy"].as_f64().unwrap()],
        );
        close(
            "forces (energy_forces)",
            &values(direct.forces),
            &f64s(&case["forces"]),
        );
        let result = step.energy_forces;
        close(
            "energy",
            &values(result.energy),
            &[case["energy"].as_f64().unwrap()],
        );
        close("forces", &values(result.forces), &f64s(&case["forces"]));
        // The per-atom energies (what an MD engine's domain counts for its own atoms), and
        // the same forces when every atom is counted.
        let atomic = model.atomic_energy_forces(&g, None).unwrap();
        close(
            "atomic energies",
            &values(atomic.atomic),
            &f64s(&case["atomic_energies"]),
        );
        close(
            "forces (atomic_energy_forces)",
            &values(atomic.energy_forces.forces),
            &f64s(&case["forces"]),
        );
        let grads = step.gradients;
        let expected = case["grad_params"].as_object().unwrap();
        let mut checked = 0;
        let mut check = |path: &str, got: Option<Vec<f64>>| {
            let want = f64s(&expected[path]);
            close(
                &format!("dL/d {path}"),
                &got.unwrap_or_else(|| panic!("{path}: no gradient")),
                &want,
            );
            checked += 1;
        };
        let grad1 = |p: &Param<Tensor<1>>| p.val().grad(&grads).map(values);
        let grad2 = |p: &Param<Tensor<2>>| p.val().grad(&grads).map(values);
        check(
            "chemical_embedding.weight",
            model.chemical_embedding.weight.as_ref().and_then(grad1),
        );
        for (i, layer) in model.layers.iter().enumerate() {
            let conv = &layer.conv;
            check(
                &format!("layers.{i}.conv.linear_1.weight"),
                conv.linear_1.weight.as_ref().and_then(grad1),
            );
            check(
                &format!("layers.{i}.conv.linear_2.weight"),
                conv.linear_2.weight.as_ref().and_then(grad1),
            );
            let sc = conv.sc.as_ref().and_then(|sc| sc.weight.as_ref());
            check(&format!("layers.{i}.conv.sc.weight"), sc.and_then(grad1));
            for (w, weight) in conv.fc.weights.iter().enumerate() {
                check(&format!("layers.{i}.conv.fc.weights.{w}"), grad2(weight));
            }
        }
        check(
            "conv_to_output_hidden.weight",
            model.conv_to_output_hidden.weight.as_ref().and_then(grad1),
        );
        check(
            "output_hidden_to_scalar.weight",
            model
                .output_hidden_to_scalar
                .weight
                .as_ref()
                .and_then(grad1),
        );
        assert_eq!(checked, expected.len(), "case {k}: every weight's gradient");
    }
}

/// The models `energy_forces_matches_autodiff` compares with autodiff run the written-out
/// backward (were they to fall back, it would compare autodiff with itself), in f32 and
/// f64, as do models with residual connections, without a self-connection and with a radial
/// MLP of no hidden layer; their layers run the MLP inside the convolution and on its own,
/// both.
#[test]
fn nequip_models_run_the_written_out_backward() {
    let device = Device::flex();
    let configs = [
        NequipConfig {
            num_layers: 2,
            l_max: 2,
            num_features: 4,
            ..NequipConfig::new(2, 2.6)
        },
        NequipConfig {
            num_layers: 3,
            l_max: 1,
            parity: false,
            resnet: true,
            use_sc: false,
            invariant_layers: 0,
            scalar_last_layer: true,
            ..NequipConfig::new(2, 2.6)
        },
    ]
    .into_iter()
    .chain(compared_configs());
    let mut radial = Vec::new();
    let water = Structure {
        positions: vec![[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]],
        species: vec![0, 1, 1],
        cell: None,
    };
    for config in configs {
        for dtype in [DType::F32, DType::F64] {
            let model = equivariant::util::cast(config.init(&device).unwrap(), dtype);
            let graph =
                AtomicGraph::new(std::slice::from_ref(&water), 2.6, &device, dtype).unwrap();
            let layers = model.written_out_radial_layers(&graph).unwrap();
            radial.extend(layers.unwrap_or_else(|| panic!("{config:?} {dtype:?}")));
        }
    }
    assert!(
        radial.contains(&true) && radial.contains(&false),
        "{radial:?}"
    );
}
