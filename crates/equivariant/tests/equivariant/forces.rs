//! `forces::energy_forces` on the guide's convolution (the fused path): forces against finite
//! differences of the energy, the virial against a finite strain, zero total force,
//! rotation of forces and virial with the atoms, f32 against f64, and bad input.

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{DType, Device, Gradients, Tensor, TensorData};
use equivariant::Error;
use equivariant::forces::{
    EnergyForces, LossDerivatives, TrainingGradients, energy_forces, training_gradients,
};
use equivariant::graph::{Batch, Cell, EdgeIndex, Graph, radius_graph};
use equivariant::math::ActivationFunction;
use equivariant::nn::{Convolution, ConvolutionConfig, Gate};
use equivariant::o3::{Linear, LinearConfig};

use equivariant_testing::{assert_close, f64s, load_fixture};

use serde_json::Value;

use super::nn::{convolution_cases, fixture_convolution, random_problem};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// The tolerance of a central difference with step 1e-5 against an exact derivative: its
/// truncation and rounding errors stay below 1e-5 of the largest component (a wrong sign,
/// factor or term is off by the component itself).
fn fd_tolerance(exact: &[f64]) -> f64 {
    1e-5 * (1.0 + exact.iter().fold(0.0f64, |m, x| m.max(x.abs())))
}

/// `exact`, the gradient of an objective in the entries of a parameter, against central
/// differences (step 1e-5) of `moved(i, delta)`, the objective with entry `i` moved by
/// `delta`, at `samples` entries spread over it.
fn assert_matches_differences(
    what: &str,
    exact: &[f64],
    samples: usize,
    moved: impl Fn(usize, f64) -> f64,
) {
    let tol = fd_tolerance(exact);
    let h = 1e-5;
    for i in (0..exact.len()).step_by(exact.len() / samples + 1) {
        let slope = (moved(i, h) - moved(i, -h)) / (2.0 * h);
        assert!(
            (exact[i] - slope).abs() < tol,
            "{what}[{i}]: backward {}, difference {slope}",
            exact[i]
        );
    }
}

/// A potential made of the guide's convolution with a silu radial MLP (smooth, so finite
/// differences apply everywhere; relu's kinks would make them flaky): the squares of the
/// output's 20 scalars, summed over atoms.
struct Potential {
    conv: Convolution,
    f_in: Tensor<2>,
    graph: Graph,
    edges: EdgeIndex,
}

impl Potential {
    /// `n` atoms at the guide's density, their radius graph, and features whose vector
    /// part is zero (so the energy is invariant when only the positions rotate).
    fn new(n: usize, seed: u64, dtype: DType) -> (Self, Vec<f64>) {
        let config = ConvolutionConfig {
            act: ActivationFunction::Silu,
            ..ConvolutionConfig::guide()
        };
        let (conv, f_in, pos, _) = random_problem(&config, n, seed, dtype);
        let f_in = f_in.clone().slice([0..n, 0..10]).pad((0, 30, 0, 0), 0.0);
        let graph = conv.graph(&pos).unwrap();
        let edges = EdgeIndex::new(&graph.src, &graph.dst, n).unwrap();
        let pos = values(pos);
        let potential = Potential {
            conv,
            f_in,
            graph,
            edges,
        };
        (potential, pos)
    }

    /// `pos[dst] - pos[src]` for every edge, `[E * 3]`.
    fn edge_vectors(&self, pos: &[f64]) -> Vec<f64> {
        let mut v = vec![0.0; self.graph.num_edges() * 3];
        self.edges.edge_vectors(pos, &mut v).unwrap();
        v
    }

    fn run(&self, edge_vec: &[f64]) -> EnergyForces {
        let (device, dtype) = (self.f_in.device(), self.f_in.dtype());
        let e = self.graph.num_edges();
        let r =
            Tensor::<2>::from_data(TensorData::new(edge_vec.to_vec(), [e, 3]), (&device, dtype));
        let n = self.edges.num_nodes();
        energy_forces(&self.edges, &Batch::single(n), r, |r| {
            let out = self.conv.forward_edges(self.f_in.clone(), r, &self.graph)?;
            Ok(out.slice([0..n, 0..20]).powf_scalar(2.0).sum())
        })
        .unwrap()
    }

    fn energy(&self, edge_vec: &[f64]) -> f64 {
        values(self.run(edge_vec).energy)[0]
    }
}

#[test]
fn forces_are_minus_the_gradient_of_the_energy() {
    let (potential, pos) = Potential::new(12, 3, DType::F64);
    assert!(potential.graph.num_edges() > 20, "a connected graph");
    let result = potential.run(&potential.edge_vectors(&pos));
    let forces = values(result.forces);
    let (h, tol) = (1e-5, fd_tolerance(&forces));
    for (i, &f) in forces.iter().enumerate() {
        let (mut plus, mut minus) = (pos.clone(), pos.clone());
        plus[i] += h;
        minus[i] -= h;
        let slope = (potential.energy(&potential.edge_vectors(&plus))
            - potential.energy(&potential.edge_vectors(&minus)))
            / (2.0 * h);
        assert!(
            (f + slope).abs() < tol,
            "coordinate {i}: force {f}, -dE/dx {}",
            -slope
        );
    }
    // Each edge pushes its two atoms apart equally: no net force on the system.
    for axis in 0..3 {
        let total: f64 = forces.iter().skip(axis).step_by(3).sum();
        assert!(total.abs() < 1e-10, "net force {total} along axis {axis}");
    }
}

#[test]
fn the_virial_is_the_strain_derivative() {
    let (potential, pos) = Potential::new(12, 5, DType::F64);
    let r = potential.edge_vectors(&pos);
    let virial = values(potential.run(&r).virial);
    let (h, tol) = (1e-5, fd_tolerance(&virial));
    // r -> (1 + eps) r with eps = +-h in entry (a, b): dE/d eps_ab = -W_ba.
    for a in 0..3 {
        for b in 0..3 {
            let strained = |s: f64| -> Vec<f64> {
                let mut out = r.clone();
                for (o, v) in out.chunks_mut(3).zip(r.chunks(3)) {
                    o[a] += s * v[b];
                }
                out
            };
            let slope =
                (potential.energy(&strained(h)) - potential.energy(&strained(-h))) / (2.0 * h);
            let w = virial[b * 3 + a];
            assert!(
                (slope + w).abs() < tol,
                "({a}, {b}): dE/deps {slope}, -W {}",
                -w
            );
            let asymmetry = (virial[a * 3 + b] - virial[b * 3 + a]).abs();
            assert!(asymmetry < 1e-10, "W not symmetric at ({a}, {b})");
        }
    }
}

/// Each structure's virial is `-sum_e r_e (x) g_e` over its own edges, from the returned
/// edge gradients: three structures of 6000 edges in all (several blocks of the parallel
/// sum, each holding edges of more than one structure), f64 and f32.
#[test]
fn the_virial_sums_each_structures_edges() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    let (per, g, e) = (40, 3, 6000);
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for k in 0..e {
        let s = k * g / e;
        let (i, j) = (rng.random_range(0..per), rng.random_range(1..per));
        src.push(s * per + i);
        dst.push(s * per + (i + j) % per);
    }
    let edges = EdgeIndex::new(&src, &dst, g * per).unwrap();
    let batch = Batch::new((0..g * per).map(|i| i / per).collect()).unwrap();
    let r: Vec<f64> = (0..3 * e).map(|_| rng.random_range(-2.0..2.0)).collect();
    let mut onehot = vec![0.0; g * e];
    for k in 0..e {
        onehot[(k * g / e) * e + k] = 1.0 + (k % 7) as f64;
    }
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-3)] {
        let device = Device::flex();
        let r_t = Tensor::<2>::from_data(TensorData::new(r.clone(), [e, 3]), (&device, dtype));
        let weights =
            Tensor::<2>::from_data(TensorData::new(onehot.clone(), [g, e]), (&device, dtype));
        // E_s = sum_{e in s} c_e (x_e^2 + x_e y_e z_e): no two edges alike.
        let result = energy_forces(&edges, &batch, r_t, |r| {
            let [x, y, z] = [0, 1, 2].map(|c| r.clone().slice([0..e, c..c + 1]));
            let q = x.clone().powf_scalar(2.0) + x * y * z;
            Ok(weights.clone().matmul(q).reshape([g]))
        })
        .unwrap();
        let grad = values(result.edge_gradient);
        let mut expected = vec![0.0; 9 * g];
        for k in 0..e {
            let s = k * g / e;
            for a in 0..3 {
                for b in 0..3 {
                    expected[9 * s + 3 * a + b] -= r[3 * k + a] * grad[3 * k + b];
                }
            }
        }
        let scale = expected.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        assert_close(
            &format!("virial {dtype:?}"),
            &values(result.virial),
            &expected,
            tol * scale,
        );
    }
}

/// Rotating the atoms (scalar features only) leaves the energy alone, rotates the forces
/// (`F -> R F`) and the virial (`W -> R W R^T`).
#[test]
fn forces_and_virial_rotate_with_the_atoms() {
    let (potential, pos) = Potential::new(15, 7, DType::F64);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    let rot = equivariant::o3::rand_matrix(&mut rng);
    let rotate = |v: &[f64]| -> Vec<f64> {
        v.chunks(3)
            .flat_map(|x| (0..3).map(move |i| (0..3).map(|j| rot[i][j] * x[j]).sum::<f64>()))
            .collect()
    };
    let before = potential.run(&potential.edge_vectors(&pos));
    let after = potential.run(&potential.edge_vectors(&rotate(&pos)));
    let (e0, e1) = (values(before.energy)[0], values(after.energy)[0]);
    assert!(
        (e0 - e1).abs() < 1e-10 * (1.0 + e0.abs()),
        "energy {e0} vs {e1}"
    );
    let expected = rotate(&values(before.forces));
    let got = values(after.forces);
    for (k, (g, x)) in got.iter().zip(&expected).enumerate() {
        assert!((g - x).abs() < 1e-10, "force component {k}: {g} vs {x}");
    }
    let w = values(before.virial);
    let w_rot = values(after.virial);
    for i in 0..3 {
        for j in 0..3 {
            let x: f64 = (0..3)
                .flat_map(|k| (0..3).map(move |l| (k, l)))
                .map(|(k, l)| rot[i][k] * w[k * 3 + l] * rot[j][l])
                .sum();
            let g = w_rot[i * 3 + j];
            assert!(
                (g - x).abs() < 1e-10 * (1.0 + x.abs()),
                "virial ({i}, {j}): {g} vs {x}"
            );
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let (p64, pos) = Potential::new(12, 9, DType::F64);
    let mut conv = p64.conv.clone();
    conv.fc.weights = conv
        .fc
        .weights
        .iter()
        .map(|w| Param::from_tensor(w.val().cast(DType::F32).detach().require_grad()))
        .collect();
    let p32 = Potential {
        conv,
        f_in: p64.f_in.clone().cast(DType::F32),
        graph: p64.graph.clone(),
        edges: p64.edges.clone(),
    };
    let r = p64.edge_vectors(&pos);
    let (a, b) = (p64.run(&r), p32.run(&r));
    assert_eq!(b.forces.dtype(), DType::F32);
    let scale = values(a.forces.clone())
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()));
    for (x, y) in values(a.forces).iter().zip(values(b.forces)) {
        assert!((x - y).abs() < 1e-4 * scale, "{x} vs {y}");
    }
}

#[test]
fn bad_input_is_a_typed_error_and_no_edges_give_zero_forces() {
    let (potential, pos) = Potential::new(6, 1, DType::F64);
    let device = potential.f_in.device();
    let mut r = potential.edge_vectors(&pos);
    let e = potential.graph.num_edges();
    let energy = |r: Tensor<2>| Ok(r.sum());
    let single = Batch::single(potential.edges.num_nodes());
    r[4] = f64::NAN;
    let nan = Tensor::<2>::from_data(TensorData::new(r.clone(), [e, 3]), (&device, DType::F64));
    assert!(matches!(
        energy_forces(&potential.edges, &single, nan, energy),
        Err(Error::NonFinite {
            what: "edge_vec",
            index: 4
        })
    ));
    let short = Tensor::<2>::zeros([e + 1, 3], (&device, DType::F64));
    assert!(matches!(
        energy_forces(&potential.edges, &single, short, energy),
        Err(Error::ShapeMismatch { .. })
    ));
    // A model error comes back as is.
    let ok = Tensor::<2>::zeros([e, 3], (&device, DType::F64));
    let failing = |_: Tensor<2>| -> equivariant::Result<Tensor<1>> {
        Err(Error::InvalidArgument {
            name: "model",
            reason: "test".into(),
        })
    };
    assert!(energy_forces(&potential.edges, &single, ok.clone(), failing).is_err());
    // Energies not one per structure, a batch of another length, edges across structures.
    assert!(matches!(
        energy_forces(&potential.edges, &single, ok.clone(), |r| Ok(r
            .sum_dim(1)
            .reshape([e]))),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        energy_forces(&potential.edges, &Batch::single(5), ok.clone(), energy),
        Err(Error::ShapeMismatch { .. })
    ));
    let split = Batch::new(vec![0, 0, 0, 1, 1, 1]).unwrap();
    assert!(matches!(
        energy_forces(&potential.edges, &split, ok, |r| Ok(r
            .sum()
            .repeat_dim(0, 2))),
        Err(Error::InvalidArgument { name: "edges", .. })
    ));

    // Three isolated atoms: the energy (a constant per atom) has no forces and no virial.
    let lonely = EdgeIndex::new(&[], &[], 3).unwrap();
    let none = Tensor::<2>::zeros([0, 3], (&device, DType::F64));
    let result = energy_forces(&lonely, &Batch::single(3), none, |_| {
        Ok(Tensor::<1>::from_data(
            TensorData::new(vec![-1.5f64; 3], [3]),
            (&device, DType::F64),
        )
        .sum())
    })
    .unwrap();
    assert_eq!(values(result.energy), [-4.5]);
    assert_eq!(values(result.forces), [0.0; 9]);
    assert_eq!(values(result.virial), [0.0; 9]);
}

/// A periodic crystal: the graph with its periodic images, forces against finite
/// differences of the positions (shifts fixed), and the stress against a finite strain of
/// the cell and the atoms together.
#[test]
fn periodic_forces_and_stress() {
    let (mut potential, _) = Potential::new(8, 13, DType::F64);
    let lattice = [[3.2, 0.0, 0.0], [0.4, 3.0, 0.0], [0.0, 0.3, 3.4]];
    let cell = Cell::new(lattice, [true; 3]).unwrap();
    let pos: Vec<f64> = (0..24)
        .map(|k| ((k * 7919 % 31) as f64 / 31.0) * 2.9)
        .collect();
    let graph = radius_graph(&pos, 1.8, None, Some(&cell)).unwrap();
    assert!(
        graph.shift.as_ref().unwrap().iter().any(|s| *s != [0; 3]),
        "edges cross the cell"
    );
    potential.edges = EdgeIndex::new(&graph.src, &graph.dst, 8).unwrap();
    potential.graph = graph.clone();
    let energy_of =
        |pos: &[f64], cell: &Cell| potential.energy(&graph.edge_vec(pos, Some(cell)).unwrap());

    let result = potential.run(&graph.edge_vec(&pos, Some(&cell)).unwrap());
    let forces = values(result.forces.clone());
    let (h, tol) = (1e-5, fd_tolerance(&forces));
    for (i, &f) in forces.iter().enumerate() {
        let (mut plus, mut minus) = (pos.clone(), pos.clone());
        plus[i] += h;
        minus[i] -= h;
        let slope = (energy_of(&plus, &cell) - energy_of(&minus, &cell)) / (2.0 * h);
        assert!((f + slope).abs() < tol, "coordinate {i}: {f} vs {}", -slope);
    }

    // sigma = (1/V) dE/d eps, straining cell vectors and positions by (1 + eps).
    let volume = {
        let [a, b, c] = lattice;
        let cross = [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ];
        (cross[0] * c[0] + cross[1] * c[1] + cross[2] * c[2]).abs()
    };
    let stress = values(result.stress(&[volume]).unwrap());
    let tol = fd_tolerance(&stress);
    for a in 0..3 {
        for b in 0..3 {
            let strained = |s: f64| {
                let apply = |x: [f64; 3]| {
                    let mut y = x;
                    y[a] += s * x[b];
                    y
                };
                let cell = Cell::new(lattice.map(apply), [true; 3]).unwrap();
                let pos: Vec<f64> = pos
                    .chunks(3)
                    .flat_map(|x| apply([x[0], x[1], x[2]]))
                    .collect();
                energy_of(&pos, &cell)
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

/// Deterministic values in `[-1, 1]`.
fn wave(n: usize, phase: f64) -> Vec<f64> {
    (0..n).map(|k| ((k as f64) * 0.731 + phase).sin()).collect()
}

impl Potential {
    fn tensor(&self, data: Vec<f64>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::<2>::from_data(
            TensorData::new(data, shape),
            (&self.f_in.device(), DType::F64),
        )
    }

    /// The convolution's output and its tangent along `t` (and `df` for the features).
    fn tangent(&self, r: &[f64], t: &[f64], df: Option<Vec<f64>>) -> (Tensor<2>, Tensor<2>) {
        let e = self.graph.num_edges();
        let n = self.edges.num_nodes();
        let df = df.map(|d| self.tensor(d, [n, 40]));
        self.conv
            .forward_edges_tangent(
                self.f_in.clone(),
                self.tensor(r.to_vec(), [e, 3]),
                self.tensor(t.to_vec(), [e, 3]),
                df,
                &self.graph,
            )
            .unwrap()
    }
}

/// `d_out` against a central difference of the convolution along the edge vectors' and the
/// features' tangent.
#[test]
fn convolution_tangent_matches_finite_differences() {
    let (potential, pos) = Potential::new(12, 17, DType::F64);
    let r = potential.edge_vectors(&pos);
    let e = potential.graph.num_edges();
    let n = potential.edges.num_nodes();
    let t = wave(3 * e, 0.4);
    let df = wave(n * 40, 1.3);
    let (_, d_out) = potential.tangent(&r, &t, Some(df.clone()));
    let d_out = values(d_out);
    let h = 1e-5;
    let at = |s: f64| {
        let r: Vec<f64> = r.iter().zip(&t).map(|(a, b)| a + s * b).collect();
        let f = potential
            .f_in
            .clone()
            .add(potential.tensor(df.clone(), [n, 40]).mul_scalar(s));
        let out = potential
            .conv
            .forward_edges(f, potential.tensor(r, [e, 3]), &potential.graph);
        values(out.unwrap())
    };
    let (plus, minus) = (at(h), at(-h));
    let tol = fd_tolerance(&d_out);
    for (k, d) in d_out.iter().enumerate() {
        let slope = (plus[k] - minus[k]) / (2.0 * h);
        assert!(
            (d - slope).abs() < tol,
            "output {k}: tangent {d}, difference {slope}"
        );
    }
}

/// The tangent of the energy along `t_e = v[dst_e] - v[src_e]` is `v . grad_pos E = -v . F`.
#[test]
fn the_energy_tangent_is_minus_v_dot_the_forces() {
    let (potential, pos) = Potential::new(12, 19, DType::F64);
    let r = potential.edge_vectors(&pos);
    let n = potential.edges.num_nodes();
    let v = wave(3 * n, 0.9);
    let mut t = vec![0.0; r.len()];
    potential.edges.edge_vectors(&v, &mut t).unwrap();
    let energy_of = |out: Tensor<2>| out.slice([0..n, 0..20]).sum();
    let e = potential.graph.num_edges();
    let forces = values(
        energy_forces(
            &potential.edges,
            &Batch::single(n),
            potential.tensor(r.clone(), [e, 3]),
            |r| {
                Ok(energy_of(potential.conv.forward_edges(
                    potential.f_in.clone(),
                    r,
                    &potential.graph,
                )?))
            },
        )
        .unwrap()
        .forces,
    );
    let (_, d_out) = potential.tangent(&r, &t, None);
    let d_energy = values(energy_of(d_out))[0];
    let v_dot_f: f64 = v.iter().zip(&forces).map(|(a, b)| a * b).sum();
    assert!(
        (d_energy + v_dot_f).abs() < 1e-10 * (1.0 + v_dot_f.abs()),
        "tangent {d_energy}, -v . F {}",
        -v_dot_f
    );
}

/// The route to training on forces: the backward of `S = <c, d_out>` gives `dS/dW` for
/// the radial MLP's weights, checked against central differences of `S` in every layer.
#[test]
fn the_tangent_backward_gives_the_parameter_gradient() {
    let (potential, pos) = Potential::new(10, 23, DType::F64);
    let r = potential.edge_vectors(&pos);
    let e = potential.graph.num_edges();
    let n = potential.edges.num_nodes();
    let t = wave(3 * e, 2.1);
    let c = potential.tensor(wave(n * 50, 0.2), [n, 50]);
    let objective = |p: &Potential| p.tangent(&r, &t, None).1.mul(c.clone()).sum();
    let grads = objective(&potential).backward();
    for (layer, weight) in potential.conv.fc.weights.iter().enumerate() {
        let exact = values(weight.grad(&grads).expect("the weights are tracked"));
        let w = values(weight.val());
        let shape = weight.val().dims();
        assert_matches_differences(&format!("layer {layer} weight"), &exact, 7, |k, delta| {
            let mut moved = w.clone();
            moved[k] += delta;
            let mut conv = potential.conv.clone();
            conv.fc.weights[layer] =
                Param::from_tensor(potential.tensor(moved, shape).require_grad());
            let p = Potential {
                conv,
                f_in: potential.f_in.clone(),
                graph: potential.graph.clone(),
                edges: potential.edges.clone(),
            };
            values(objective(&p))[0]
        });
    }
}

/// Against e3nn 0.6.0 with `create_graph=True` (`tools/reference/fixtures_forces.py`): the
/// energy `sum(f_out * c)` of the guide's convolution, its forces, the loss
/// `w_e (E - e_ref)^2 + w_f mean((F - f_ref)^2)` and its gradient with respect to every
/// weight of the radial MLP (through the forces: a second derivative), by
/// `training_gradients` on the tangent pass. relu and silu MLPs, cutoff on and off, lmax 2
/// and 3, one and two hidden layers; and the loss's gradient in the positions; f64 to 1e-10,
/// f32 to 1e-4 (of the largest entry).
#[test]
fn training_on_forces_matches_e3nn() {
    let fixture = load_fixture!("forces");
    let device = Device::flex().autodiff();
    for (case, name, conv, graph, n) in convolution_cases(&fixture, &device) {
        for dtype in [DType::F64, DType::F32] {
            let name = format!("{name} {dtype:?}");
            let conv = equivariant::util::cast(conv.clone(), dtype);
            let e = graph.num_edges();
            let tensor = |data: Vec<f64>, shape: [usize; 2]| {
                Tensor::<2>::from_data(TensorData::new(data, shape), (&device, dtype))
            };
            let d_in = conv.config().irreps_in.dim();
            let d_out = conv.config().irreps_out.dim();
            let f_in = tensor(f64s(&case["f_in"]), [n, d_in]);
            let c = tensor(f64s(&case["c"]), [n, d_out]);
            let edges = EdgeIndex::new(&graph.src, &graph.dst, n).unwrap();
            let mut r = vec![0.0; 3 * e];
            edges.edge_vectors(&f64s(&case["pos"]), &mut r).unwrap();
            let r = tensor(r, [e, 3]);

            let (w_e, w_f) = (case["w_e"].as_f64().unwrap(), case["w_f"].as_f64().unwrap());
            let e_ref = case["e_ref"].as_f64().unwrap();
            let f_ref = f64s(&case["f_ref"]);
            let mut loss = None;
            let step = training_gradients(
                &edges,
                &Batch::single(n),
                r,
                |r| {
                    Ok(conv
                        .forward_edges(f_in.clone(), r, &graph)?
                        .mul(c.clone())
                        .sum())
                },
                |result| {
                    let energy = values(result.energy.clone())[0];
                    let forces = values(result.forces.clone());
                    let residual: Vec<f64> =
                        forces.iter().zip(&f_ref).map(|(f, g)| f - g).collect();
                    let mean_sq = residual.iter().map(|x| x * x).sum::<f64>() / (3 * n) as f64;
                    loss = Some(w_e * (energy - e_ref).powi(2) + w_f * mean_sq);
                    let dl_dforces = residual
                        .iter()
                        .map(|x| 2.0 * w_f * x / (3 * n) as f64)
                        .collect();
                    Ok(LossDerivatives {
                        energy: vec![2.0 * w_e * (energy - e_ref)],
                        forces: tensor(dl_dforces, [n, 3]),
                        virial: None,
                    })
                },
                |r, s| {
                    let (out, d_out) =
                        conv.forward_edges_tangent(f_in.clone(), r, s, None, &graph)?;
                    Ok((out.mul(c.clone()).sum(), d_out.mul(c.clone()).sum()))
                },
                true,
            )
            .unwrap();
            let close = |what: &str, got: &[f64], expected: &[f64]| {
                assert_fixture(&format!("{name} {what}"), got, expected, dtype)
            };
            let grads = assert_step_matches(&name, dtype, step, loss.expect("the loss ran"), case);
            let expected = case["grad_fc_weights"].as_array().unwrap();
            for (k, (w, x)) in conv.fc.weights.iter().zip(expected).enumerate() {
                close(
                    &format!("dL/dW{k}"),
                    &values(w.grad(&grads).expect("tracked")),
                    &f64s(x),
                );
            }
        }
    }
}

/// A training step against a fixture case: the positions' gradient, the energy, the forces,
/// the virial (where the case has it) and the loss ([`assert_fixture`] in `dtype`); returns
/// the parameters' gradients.
fn assert_step_matches(
    name: &str,
    dtype: DType,
    step: TrainingGradients,
    loss: f64,
    case: &Value,
) -> Gradients {
    let close = |what: &str, got: &[f64], expected: &[f64]| {
        assert_fixture(&format!("{name} {what}"), got, expected, dtype)
    };
    let result = step.energy_forces;
    let expected = |key: &str| f64s(&case[key]);
    close(
        "dL/dpos",
        &values(step.positions.expect("asked for")),
        &expected("grad_pos"),
    );
    close(
        "energy",
        &values(result.energy),
        &[case["energy"].as_f64().unwrap()],
    );
    close("forces", &values(result.forces), &expected("forces"));
    if !case["virial"].is_null() {
        close("virial", &values(result.virial), &expected("virial"));
    }
    close("loss", &[loss], &[case["loss"].as_f64().unwrap()]);
    step.gradients
}

/// An e3nn fixture's value: f64 to 1e-10, f32 to 1e-4, each relative to the largest entry
/// (plus one): the guide's position gradients reach 7e4, where 1e-10 absolute would be
/// below f64's rounding of the sums.
fn assert_fixture(what: &str, got: &[f64], expected: &[f64], dtype: DType) {
    let tol = match dtype {
        DType::F64 => 1e-10,
        _ => 1e-4,
    } * (1.0 + expected.iter().fold(0.0f64, |m, x| m.max(x.abs())));
    assert_close(what, got, expected, tol);
}

/// A potential of two convolutions with a gate and a linear layer between them (the guide's
/// settings with silu MLPs: `10x0e+10x1e -> 20x0e+10x1e`, gated to `10x0e+10x1e`, mixed by
/// an `o3.Linear` with biases, then convolved again), whose tangent composes the modules'.
#[derive(Clone)]
struct TwoLayers {
    first: Convolution,
    gate: Gate,
    linear: Linear,
    second: Convolution,
    f_in: Tensor<2>,
    c: Tensor<2>,
    graph: Graph,
    edges: EdgeIndex,
    /// The loss's references: energy, forces `[n, 3]`, virial `[3, 3]`.
    e_ref: f64,
    f_ref: Tensor<2>,
    w_ref: Tensor<2>,
}

impl TwoLayers {
    fn new(seed: u64) -> (Self, Vec<f64>) {
        let (first_layer, pos) = Potential::new(10, seed, DType::F64);
        let (second_layer, _) = Potential::new(10, seed + 1, DType::F64);
        let silu = Some(ActivationFunction::Silu);
        let gate = Gate::new(
            &"10x0e".parse().unwrap(),
            &[silu],
            &"10x0e".parse().unwrap(),
            &[Some(ActivationFunction::Sigmoid)],
            &"10x1e".parse().unwrap(),
        )
        .unwrap();
        let c = first_layer.tensor(wave(10 * 50, 0.7), [10, 50]);
        // Features with a vector part, so the gated vectors (and their gates' tangents)
        // are not zero.
        let f_in = first_layer.tensor(wave(10 * 40, 0.3), [10, 40]);
        let irreps: equivariant::o3::Irreps = "10x0e+10x1e".parse().unwrap();
        let linear = LinearConfig::new(&irreps, &irreps)
            .with_biases(true)
            .init(&first_layer.f_in.device())
            .unwrap();
        let mut linear = equivariant::util::cast(linear, DType::F64);
        // Nonzero biases (e3nn starts them at zero), so a tangent that kept them would show.
        let bias = Tensor::<1>::from_data(
            TensorData::new(wave(10, 0.5), [10]),
            (&f_in.device(), DType::F64),
        );
        linear.bias = Some(Param::from_tensor(bias));
        let f_ref = f_in.clone().slice([0..10, 0..3]).without_autodiff();
        let w_ref = first_layer.tensor(wave(9, 0.4), [3, 3]).without_autodiff();
        let model = TwoLayers {
            first: first_layer.conv,
            gate,
            linear,
            second: second_layer.conv,
            f_in,
            c,
            graph: first_layer.graph,
            edges: first_layer.edges,
            e_ref: 1.0,
            f_ref,
            w_ref,
        };
        (model, pos)
    }

    /// The model of a `forces_model.json` case (e3nn's parameters), in `dtype`, and its
    /// positions.
    fn from_fixture(case: &Value, dtype: DType) -> (Self, Vec<f64>) {
        let device = Device::flex().autodiff();
        let n = case["num_nodes"].as_u64().unwrap() as usize;
        let tensor = |x: &Value, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(f64s(x), shape), (&device, dtype))
        };
        let vector = |x: &Value| {
            let x = f64s(x);
            let len = x.len();
            Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(x, [len]),
                (&device, dtype),
            ))
        };
        let (first, graph) = fixture_convolution(&case["first"], &device);
        let (second, _) = fixture_convolution(&case["second"], &device);
        let irreps = |key: &str| case["gate"][key].as_str().unwrap().parse().unwrap();
        let gate = Gate::new(
            &irreps("scalars"),
            &[Some(ActivationFunction::Silu)],
            &irreps("gates"),
            &[Some(ActivationFunction::Sigmoid)],
            &irreps("gated"),
        )
        .unwrap();
        let width = gate.irreps_out().clone();
        let mut linear = LinearConfig::new(&width, &width)
            .with_biases(true)
            .init(&device)
            .unwrap();
        linear.weight = Some(vector(&case["linear_weight"]));
        linear.bias = Some(vector(&case["linear_bias"]));
        let d_in = first.config().irreps_in.dim();
        let d_out = second.config().irreps_out.dim();
        let edges = EdgeIndex::new(&graph.src, &graph.dst, n).unwrap();
        let model = TwoLayers {
            first: equivariant::util::cast(first, dtype),
            gate,
            linear: equivariant::util::cast(linear, dtype),
            second: equivariant::util::cast(second, dtype),
            f_in: tensor(&case["f_in"], [n, d_in]),
            c: tensor(&case["c"], [n, d_out]),
            graph,
            edges,
            e_ref: case["e_ref"].as_f64().unwrap(),
            f_ref: tensor(&case["f_ref"], [n, 3]).without_autodiff(),
            w_ref: tensor(&case["w_ref"], [3, 3]).without_autodiff(),
        };
        (model, f64s(&case["pos"]))
    }

    fn energy(&self, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
        let h = self
            .first
            .forward_edges(self.f_in.clone(), r.clone(), &self.graph)?;
        let h = self.linear.forward(self.gate.forward(h)?, None)?;
        let out = self.second.forward_edges(h, r, &self.graph)?;
        Ok(out.mul(self.c.clone()).sum())
    }

    fn tangent(&self, r: Tensor<2>, t: Tensor<2>) -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
        let (h, dh) = self.first.forward_edges_tangent(
            self.f_in.clone(),
            r.clone(),
            t.clone(),
            None,
            &self.graph,
        )?;
        let (h, dh) = self.gate.forward_tangent(h, dh)?;
        let (h, dh) = self.linear.forward_tangent(h, dh, None)?;
        let (out, d_out) = self
            .second
            .forward_edges_tangent(h, r, t, Some(dh), &self.graph)?;
        Ok((
            out.mul(self.c.clone()).sum(),
            d_out.mul(self.c.clone()).sum(),
        ))
    }

    /// `L = 0.3 (E - e_ref)^2 + 1.7 mean((F - f_ref)^2) + 0.9 |W - w_ref|^2` of the first pass's
    /// energy, forces and virial, with its derivatives in them.
    fn loss(&self, result: &EnergyForces) -> (f64, LossDerivatives) {
        let e = values(result.energy.clone())[0];
        let n = self.edges.num_nodes();
        let residual = result.forces.clone().sub(self.f_ref.clone());
        let mean_sq = values(residual.clone().powi_scalar(2).mean())[0];
        let w_ref = self.w_ref.clone().reshape([1, 3, 3]);
        let virial_residual = result.virial.clone().sub(w_ref);
        let virial_sq = values(virial_residual.clone().powi_scalar(2).sum())[0];
        let loss = 0.3 * (e - self.e_ref).powi(2) + 1.7 * mean_sq + 0.9 * virial_sq;
        let derivatives = LossDerivatives {
            energy: vec![2.0 * 0.3 * (e - self.e_ref)],
            forces: residual.mul_scalar(2.0 * 1.7 / (3 * n) as f64),
            virial: Some(virial_residual.mul_scalar(2.0 * 0.9)),
        };
        (loss, derivatives)
    }

    /// The loss at edge vectors `r` (`[E, 3]`).
    fn loss_at(&self, r: &Tensor<2>) -> f64 {
        let single = Batch::single(self.edges.num_nodes());
        let result = energy_forces(&self.edges, &single, r.clone(), |r| self.energy(r)).unwrap();
        self.loss(&result).0
    }
}

/// Two convolutions and a gate: the energy's tangent is `-v . F`, and `training_gradients`
/// gives the gradient of an energy + force + virial loss in every parameter (central
/// differences of the loss).
#[test]
fn training_on_forces_composes_over_layers() {
    let (model, pos) = TwoLayers::new(31);
    let mut r = vec![0.0; model.graph.num_edges() * 3];
    model.edges.edge_vectors(&pos, &mut r).unwrap();
    let e = model.graph.num_edges();
    let device = model.f_in.device();
    let tensor = |data: Vec<f64>, shape: [usize; 2]| {
        Tensor::<2>::from_data(TensorData::new(data, shape), (&device, DType::F64))
    };
    let r = tensor(r, [e, 3]);

    let n = model.edges.num_nodes();
    let v = wave(3 * n, 1.1);
    let mut t = vec![0.0; 3 * e];
    model.edges.edge_vectors(&v, &mut t).unwrap();
    let forces = values(
        energy_forces(&model.edges, &Batch::single(n), r.clone(), |r| {
            model.energy(r)
        })
        .unwrap()
        .forces,
    );
    let (_, d_energy) = model.tangent(r.clone(), tensor(t, [e, 3])).unwrap();
    let d_energy = values(d_energy)[0];
    let v_dot_f: f64 = v.iter().zip(&forces).map(|(a, b)| a * b).sum();
    assert!(
        (d_energy + v_dot_f).abs() < 1e-10 * (1.0 + v_dot_f.abs()),
        "{d_energy} vs {}",
        -v_dot_f
    );

    let grads = training_gradients(
        &model.edges,
        &Batch::single(n),
        r.clone(),
        |r| model.energy(r),
        |result| Ok(model.loss(result).1),
        |r, s| model.tangent(r, s),
        false,
    )
    .unwrap()
    .gradients;
    // Every parameter: both radial MLPs' weights, and the linear layer's weights and biases.
    for k in 0..model.first.fc.weights.len() {
        check_parameter(&model, &r, &grads, &format!("first W{k}"), |m| {
            &mut m.first.fc.weights[k]
        });
        check_parameter(&model, &r, &grads, &format!("second W{k}"), |m| {
            &mut m.second.fc.weights[k]
        });
    }
    check_parameter(&model, &r, &grads, "linear weight", |m| {
        m.linear.weight.as_mut().expect("internal weights")
    });
    check_parameter(&model, &r, &grads, "linear bias", |m| {
        m.linear.bias.as_mut().expect("biases")
    });
}

/// The gradient of the parameter `param` picks from the model in `grads` against central
/// differences of the loss, at a few of its entries.
fn check_parameter<const D: usize>(
    model: &TwoLayers,
    r: &Tensor<2>,
    grads: &Gradients,
    name: &str,
    param: impl Fn(&mut TwoLayers) -> &mut Param<Tensor<D>>,
) {
    let mut copy = model.clone();
    let value = param(&mut copy).val();
    let exact = values(value.grad(grads).expect("tracked"));
    let w = values(value.clone());
    let shape = value.shape();
    assert_matches_differences(name, &exact, 4, |i, delta| {
        let mut moved = w.clone();
        moved[i] += delta;
        let moved = Tensor::<D>::from_data(
            TensorData::new(moved, shape.clone()),
            (&r.device(), DType::F64),
        );
        let mut model = model.clone();
        *param(&mut model) = Param::from_tensor(moved.require_grad());
        model.loss_at(r)
    });
}

/// Against e3nn 0.6.0 with `create_graph=True` (`tools/reference/fixtures_forces.py`): a
/// convolution, gate, linear (with biases), convolution potential; its energy, forces,
/// virial, the loss `0.3 (E - e_ref)^2 + 1.7 mean((F - f_ref)^2) + 0.9 |W - w_ref|^2` and
/// its gradient with respect to every parameter and the positions by `training_gradients`.
/// f64 to 1e-10, f32 to 1e-4 of each quantity's largest entry.
#[test]
fn training_a_model_on_forces_matches_e3nn() {
    let fixture = load_fixture!("forces_model");
    for case in fixture["cases"].as_array().unwrap() {
        for dtype in [DType::F64, DType::F32] {
            let name = format!("{} {dtype:?}", case["name"].as_str().unwrap());
            let close = |what: &str, got: &[f64], expected: &[f64]| {
                assert_fixture(&format!("{name} {what}"), got, expected, dtype)
            };
            let (model, pos) = TwoLayers::from_fixture(case, dtype);
            let e = model.graph.num_edges();
            let mut r = vec![0.0; 3 * e];
            model.edges.edge_vectors(&pos, &mut r).unwrap();
            let r =
                Tensor::<2>::from_data(TensorData::new(r, [e, 3]), (&model.f_in.device(), dtype));
            let mut loss = None;
            let step = training_gradients(
                &model.edges,
                &Batch::single(model.edges.num_nodes()),
                r,
                |r| model.energy(r),
                |result| {
                    let (value, derivatives) = model.loss(result);
                    loss = Some(value);
                    Ok(derivatives)
                },
                |r, s| model.tangent(r, s),
                true,
            )
            .unwrap();
            let grads = assert_step_matches(&name, dtype, step, loss.expect("the loss ran"), case);
            let grad = |p: Tensor<2>| values(p.grad(&grads).expect("tracked"));
            for (layer, conv) in [("first", &model.first), ("second", &model.second)] {
                let expected = case[format!("grad_{layer}_fc_weights")].as_array().unwrap();
                assert_eq!(conv.fc.weights.len(), expected.len());
                for (k, (w, x)) in conv.fc.weights.iter().zip(expected).enumerate() {
                    close(&format!("dL/d{layer} W{k}"), &grad(w.val()), &f64s(x));
                }
            }
            for (what, param) in [
                ("weight", model.linear.weight.as_ref()),
                ("bias", model.linear.bias.as_ref()),
            ] {
                let got = values(param.unwrap().val().grad(&grads).expect("tracked"));
                close(
                    &format!("dL/d linear {what}"),
                    &got,
                    &f64s(&case[format!("grad_linear_{what}")]),
                );
            }
        }
    }
}

/// An ordinary training loop: burn's Adam on `training_gradients`, a student convolution
/// fitted to a teacher's forces (another convolution's, on the same atoms). The force loss
/// falls to a fraction of its start.
#[test]
fn adam_on_training_gradients_fits_forces() {
    let (teacher, pos) = Potential::new(12, 41, DType::F64);
    let (other, _) = Potential::new(12, 42, DType::F64);
    let r = teacher.edge_vectors(&pos);
    let target = teacher.run(&r).forces.without_autodiff();
    let device = teacher.f_in.device();
    let e = teacher.graph.num_edges();
    let r = Tensor::<2>::from_data(TensorData::new(r, [e, 3]), (&device, DType::F64));
    let (n, f_in, graph, edges) = (12, &teacher.f_in, &teacher.graph, &teacher.edges);
    let scalars = |out: Tensor<2>| out.slice([0..n, 0..20]);
    let mut student = other.conv;
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..40 {
        let mut loss = 0.0;
        let step = training_gradients(
            edges,
            &Batch::single(n),
            r.clone(),
            |r| {
                Ok(scalars(student.forward_edges(f_in.clone(), r, graph)?)
                    .powf_scalar(2.0)
                    .sum())
            },
            |result| {
                let residual = result.forces.clone().sub(target.clone());
                loss = values(residual.clone().powi_scalar(2).mean())[0];
                Ok(LossDerivatives {
                    energy: vec![0.0],
                    forces: residual.mul_scalar(2.0 / (3 * n) as f64),
                    virial: None,
                })
            },
            |r, s| {
                let (out, d_out) =
                    student.forward_edges_tangent(f_in.clone(), r, s, None, graph)?;
                let energy = scalars(out.clone()).powf_scalar(2.0).sum();
                Ok((
                    energy,
                    scalars(out).mul(scalars(d_out)).sum().mul_scalar(2.0),
                ))
            },
            false,
        )
        .unwrap();
        losses.push(loss);
        let grads = GradientsParams::from_grads(step.gradients, &student);
        student = optim.step(0.01, student, grads);
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(
        last < 0.2 * first,
        "force loss {first} -> {last} after 40 Adam steps: {losses:?}"
    );
}

/// `training_gradients` and `force_surrogate` on bad loss derivatives: a typed error naming
/// the input, never a NaN gradient.
#[test]
fn bad_loss_derivatives_are_typed_errors() {
    let (potential, pos) = Potential::new(6, 1, DType::F64);
    let device = potential.f_in.device();
    let e = potential.graph.num_edges();
    let r = Tensor::<2>::from_data(
        TensorData::new(potential.edge_vectors(&pos), [e, 3]),
        (&device, DType::F64),
    );
    let matrix = |rows: usize, fill: f64| {
        Tensor::<2>::from_data(
            TensorData::new(vec![fill; rows * 3], [rows, 3]),
            (&device, DType::F64),
        )
    };
    let single = Batch::single(6);
    let square_tangent = |r: Tensor<2>, s: Tensor<2>| {
        Ok((
            r.clone().powi_scalar(2).sum(),
            r.mul(s).sum().mul_scalar(2.0),
        ))
    };
    let run = |derivatives: LossDerivatives| {
        training_gradients(
            &potential.edges,
            &single,
            r.clone(),
            |r| Ok(r.powi_scalar(2).sum()),
            |_| Ok(derivatives),
            square_tangent,
            false,
        )
        .map(|_| ())
    };
    let derivatives = |energy, forces, virial: Option<Tensor<2>>| LossDerivatives {
        energy: vec![energy],
        forces,
        virial: virial.map(|u| u.unsqueeze_dim(0)),
    };
    assert!(run(derivatives(1.0, matrix(6, 0.5), Some(matrix(3, 0.1)))).is_ok());
    assert!(matches!(
        run(derivatives(f64::NAN, matrix(6, 0.5), None)),
        Err(Error::NonFinite { what: "dL/dE", .. })
    ));
    assert!(matches!(
        run(derivatives(1.0, matrix(6, f64::INFINITY), None)),
        Err(Error::NonFinite {
            what: "dl_dforces",
            ..
        })
    ));
    assert!(matches!(
        run(derivatives(1.0, matrix(5, 0.5), None)),
        Err(Error::ShapeMismatch {
            what: "dl_dforces [n, 3]",
            ..
        })
    ));
    assert!(matches!(
        run(derivatives(1.0, matrix(6, 0.5), Some(matrix(2, 0.1)))),
        Err(Error::ShapeMismatch {
            what: "dl_dvirial [G, 3, 3]",
            ..
        })
    ));
    assert!(matches!(
        run(derivatives(1.0, matrix(6, 0.5), Some(matrix(3, f64::NAN)))),
        Err(Error::NonFinite {
            what: "dl_dvirial",
            ..
        })
    ));
    let f32_forces = matrix(6, 0.5).cast(DType::F32);
    assert!(matches!(
        run(derivatives(1.0, f32_forces, None)),
        Err(Error::InvalidArgument {
            name: "dl_dforces",
            ..
        })
    ));
    // Edge vectors without autodiff: dL/dpos is still there.
    let plain = r.clone().without_autodiff();
    let step = training_gradients(
        &potential.edges,
        &single,
        plain,
        |r| Ok(r.powi_scalar(2).sum()),
        |_| Ok(derivatives(1.0, matrix(6, 0.5), None)),
        square_tangent,
        true,
    )
    .unwrap();
    assert_eq!(step.positions.unwrap().dims(), [6, 3]);
}

/// Two coincident atoms (a zero-length edge each way): the energy, forces, virial, every
/// parameter's gradient and the positions' gradient of a force loss are finite.
#[test]
fn coincident_atoms_give_finite_forces_and_gradients() {
    let (mut potential, mut pos) = Potential::new(8, 5, DType::F64);
    for a in 0..3 {
        pos[3 + a] = pos[a];
    }
    potential.graph = potential
        .conv
        .graph(&Tensor::<2>::from_data(
            TensorData::new(pos.clone(), [8, 3]),
            (&potential.f_in.device(), DType::F64),
        ))
        .unwrap();
    let graph = &potential.graph;
    assert!(
        (0..graph.num_edges()).any(|k| graph.src[k] == 0 && graph.dst[k] == 1),
        "the coincident pair is an edge"
    );
    potential.edges = EdgeIndex::new(&graph.src, &graph.dst, 8).unwrap();
    let e = graph.num_edges();
    let device = potential.f_in.device();
    let r = Tensor::<2>::from_data(
        TensorData::new(potential.edge_vectors(&pos), [e, 3]),
        (&device, DType::F64),
    );
    let scalars = |out: Tensor<2>| out.slice([0..8, 0..20]);
    let (conv, f_in) = (&potential.conv, &potential.f_in);
    let step = training_gradients(
        &potential.edges,
        &Batch::single(8),
        r,
        |r| {
            Ok(scalars(conv.forward_edges(f_in.clone(), r, graph)?)
                .powf_scalar(2.0)
                .sum())
        },
        |result| {
            Ok(LossDerivatives {
                energy: vec![1.0],
                forces: result.forces.clone().mul_scalar(0.1),
                virial: Some(result.virial.clone().mul_scalar(0.1)),
            })
        },
        |r, s| {
            let (out, d_out) = conv.forward_edges_tangent(f_in.clone(), r, s, None, graph)?;
            let energy = scalars(out.clone()).powf_scalar(2.0).sum();
            Ok((
                energy,
                scalars(out).mul(scalars(d_out)).sum().mul_scalar(2.0),
            ))
        },
        true,
    )
    .unwrap();
    let finite = |what: &str, x: Vec<f64>| {
        assert!(x.iter().all(|x| x.is_finite()), "{what}: {x:?}");
    };
    finite("energy", values(step.energy_forces.energy));
    finite("forces", values(step.energy_forces.forces));
    finite("virial", values(step.energy_forces.virial));
    finite("dL/dpos", values(step.positions.unwrap()));
    for (k, w) in conv.fc.weights.iter().enumerate() {
        finite(
            &format!("dL/dW{k}"),
            values(w.val().grad(&step.gradients).unwrap()),
        );
    }
}
