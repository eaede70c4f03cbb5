//! `nn::FullyConnectedNet` and `nn::Convolution` against e3nn 0.6.0 fixtures
//! (`tools/reference/fixtures_nn.py`), the harmonics and radial-basis ops' gradients against
//! finite differences, the convolution's equivariance, gradients and typed errors.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{DType, Device, Distribution, Int, Tensor, TensorData};
use equivariant::graph::Graph;
use equivariant::math::{ActivationFunction, Basis, SoftOneHotLinspace};
use equivariant::nn::{Convolution, ConvolutionConfig, FullyConnectedNet};
use equivariant::o3::spherical_harmonics::SphericalHarmonicsPlan;
use equivariant::o3::{Irreps, Normalization, rand_matrix};
use equivariant::ops::{gather, scatter_sum, soft_one_hot_linspace, spherical_harmonics};
use equivariant_testing::{assert_close, f64s, load_fixture};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::Value;

fn f64_tensor<const D: usize>(data: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), (device, DType::F64))
}

fn f32_tensor<const D: usize>(data: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), (device, DType::F32))
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn activation(v: &Value) -> Option<ActivationFunction> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn randn(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// Replaces the weights of `fc` by e3nn's (`[h_in, h_out]` row-major each), in f64.
fn load_fc_weights(fc: &mut FullyConnectedNet, weights: &Value, device: &Device) {
    let hs = fc.hs().to_vec();
    fc.weights = weights
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, w)| {
            Param::from_tensor(f64_tensor(&f64s(w), [hs[i], hs[i + 1]], device).require_grad())
        })
        .collect();
}

#[test]
fn fully_connected_net_matches_e3nn() {
    let fixture = load_fixture!("fully_connected_net");
    let device = Device::flex().autodiff();
    for case in fixture["cases"].as_array().unwrap() {
        let hs = usizes(&case["hs"]);
        let act = activation(&case["act"]);
        if let (Some(act), Some(c)) = (act, case["act_constant"].as_f64()) {
            // e3nn's Monte Carlo estimate varies in the last bit between torch builds.
            assert!(
                (act.normalize2mom_constant() - c).abs() < 1e-14,
                "{act} constant"
            );
        }
        let mut fc = FullyConnectedNet::with_options(
            &hs,
            act,
            case["variance_in"].as_f64().unwrap(),
            case["variance_out"].as_f64().unwrap(),
            case["out_act"].as_bool().unwrap(),
            &device,
        )
        .unwrap();
        load_fc_weights(&mut fc, &case["weights"], &device);
        let batch = case["batch"].as_u64().unwrap() as usize;
        let x = f64_tensor(&f64s(&case["x"]), [batch, hs[0]], &device).require_grad();
        let out = fc.forward(x.clone()).unwrap();
        let what = format!("FullyConnectedNet{hs:?} {act:?}");
        assert_close(
            &format!("{what} out"),
            &values(out.clone()),
            &f64s(&case["out"]),
            1e-10,
        );
        let g = f64_tensor(&f64s(&case["grad_out"]), [batch, hs[hs.len() - 1]], &device);
        let grads = out.mul(g).sum().backward();
        assert_close(
            &format!("{what} grad x"),
            &values(x.grad(&grads).unwrap()),
            &f64s(&case["grad_x"]),
            1e-10,
        );
        for (i, (w, expected)) in fc
            .weights
            .iter()
            .zip(case["grad_weights"].as_array().unwrap())
            .enumerate()
        {
            assert_close(
                &format!("{what} grad weight {i}"),
                &values(w.grad(&grads).unwrap()),
                &f64s(expected),
                1e-10,
            );
        }
    }
}

/// The fixture's convolution, with e3nn's MLP weights, in f64 on an autodiff device.
pub(super) fn fixture_convolution(case: &Value, device: &Device) -> (Convolution, Graph) {
    let config = ConvolutionConfig {
        irreps_in: case["irreps_in"].as_str().unwrap().parse().unwrap(),
        irreps_out: case["irreps_out"].as_str().unwrap().parse().unwrap(),
        lmax: case["lmax"].as_u64().unwrap() as u32,
        num_basis: case["num_basis"].as_u64().unwrap() as usize,
        basis: case["basis"].as_str().unwrap().parse().unwrap(),
        cutoff: case["cutoff"].as_bool().unwrap(),
        hidden: usizes(&case["hidden"]),
        act: activation(&case["act"]).unwrap(),
        max_radius: case["max_radius"].as_f64().unwrap(),
        num_neighbors: None,
    };
    let mut conv = config.init(device).unwrap();
    assert_eq!(
        conv.irreps_sh().to_string(),
        case["irreps_sh"].as_str().unwrap()
    );
    assert_eq!(
        conv.tp.weight_numel() as u64,
        case["weight_numel"].as_u64().unwrap()
    );
    load_fc_weights(&mut conv.fc, &case["fc_weights"], device);
    let graph = Graph {
        src: usizes(&case["edge_src"]),
        dst: usizes(&case["edge_dst"]),
        shift: None,
    };
    (conv, graph)
}

/// Every case of a convolution fixture: the case, its name, its convolution
/// ([`fixture_convolution`]), graph and number of nodes.
pub(super) fn convolution_cases<'a>(
    fixture: &'a Value,
    device: &Device,
) -> Vec<(&'a Value, &'a str, Convolution, Graph, usize)> {
    let cases = fixture["cases"].as_array().unwrap();
    cases
        .iter()
        .map(|case| {
            let (conv, graph) = fixture_convolution(case, device);
            let n = case["num_nodes"].as_u64().unwrap() as usize;
            (case, case["name"].as_str().unwrap(), conv, graph, n)
        })
        .collect()
}

#[test]
fn convolution_matches_e3nn() {
    let fixture = load_fixture!("convolution");
    let device = Device::flex().autodiff();
    for (case, name, conv, graph, n) in convolution_cases(&fixture, &device) {
        let e = graph.num_edges();
        let (d_in, d_out) = (
            conv.config().irreps_in.dim(),
            conv.config().irreps_out.dim(),
        );
        assert_eq!(
            conv.num_neighbors(e, n),
            case["num_neighbors"].as_f64().unwrap()
        );
        let pos = f64_tensor(&f64s(&case["pos"]), [n, 3], &device).require_grad();
        let f_in = f64_tensor(&f64s(&case["f_in"]), [n, d_in], &device).require_grad();

        // The intermediate steps of the guide.
        let index: Vec<i64> = graph.dst.iter().map(|&i| i as i64).collect();
        let dst = Tensor::<1, Int>::from_ints(index.as_slice(), &device);
        let index: Vec<i64> = graph.src.iter().map(|&i| i as i64).collect();
        let src = Tensor::<1, Int>::from_ints(index.as_slice(), &device);
        let edge_vec = gather(pos.clone(), dst).sub(gather(pos.clone(), src));
        assert_close(
            &format!("{name} sh"),
            &values(conv.edge_sh(edge_vec.clone()).unwrap()),
            &f64s(&case["sh"]),
            1e-10,
        );
        let emb = conv.edge_embedding(edge_vec).unwrap();
        assert_close(
            &format!("{name} emb"),
            &values(emb.clone()),
            &f64s(&case["emb"]),
            1e-10,
        );
        let rows = case["tp_weight_edges"].as_u64().unwrap() as usize;
        let weight = values(conv.fc.forward(emb).unwrap());
        let numel = conv.tp.weight_numel();
        assert_close(
            &format!("{name} tp weight"),
            &weight[..rows * numel],
            &f64s(&case["tp_weight"]),
            1e-10,
        );

        let f_out = conv
            .forward_graph(f_in.clone(), pos.clone(), &graph)
            .unwrap();
        assert_eq!(f_out.dims(), [n, d_out]);
        assert_close(
            &format!("{name} f_out"),
            &values(f_out.clone()),
            &f64s(&case["f_out"]),
            1e-10,
        );

        let g = f64_tensor(&f64s(&case["grad_out"]), [n, d_out], &device);
        let grads = f_out.mul(g).sum().backward();
        assert_close(
            &format!("{name} grad f_in"),
            &values(f_in.grad(&grads).unwrap()),
            &f64s(&case["grad_f_in"]),
            1e-10,
        );
        assert_close(
            &format!("{name} grad pos"),
            &values(pos.grad(&grads).unwrap()),
            &f64s(&case["grad_pos"]),
            1e-10,
        );
        for (i, (w, expected)) in conv
            .fc
            .weights
            .iter()
            .zip(case["grad_fc_weights"].as_array().unwrap())
            .enumerate()
        {
            assert_close(
                &format!("{name} grad fc weight {i}"),
                &values(w.grad(&grads).unwrap()),
                &f64s(expected),
                1e-10,
            );
        }

        // The radius graph finds the same edges (in its own order).
        let mut ours: Vec<(usize, usize)> = {
            let g = conv.graph(&pos).unwrap();
            g.src.into_iter().zip(g.dst).collect()
        };
        let mut theirs: Vec<(usize, usize)> = graph
            .src
            .iter()
            .copied()
            .zip(graph.dst.iter().copied())
            .collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs, "{name}: radius graph");
    }
}

#[test]
fn convolution_f32_matches_e3nn() {
    let fixture = load_fixture!("convolution");
    let device = Device::flex().autodiff();
    for case in fixture["cases"].as_array().unwrap() {
        let (mut conv, graph) = fixture_convolution(case, &device);
        let hs = conv.fc.hs().to_vec();
        conv.fc.weights = case["fc_weights"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, w)| Param::from_tensor(f32_tensor(&f64s(w), [hs[i], hs[i + 1]], &device)))
            .collect();
        let n = case["num_nodes"].as_u64().unwrap() as usize;
        let d_in = conv.config().irreps_in.dim();
        let pos = f32_tensor(&f64s(&case["pos"]), [n, 3], &device);
        let f_in = f32_tensor(&f64s(&case["f_in"]), [n, d_in], &device);
        let f_out = conv.forward_graph(f_in, pos, &graph).unwrap();
        assert_eq!(f_out.dtype(), DType::F32);
        assert_close("f32 f_out", &values(f_out), &f64s(&case["f_out"]), 1e-4);
    }
}

/// A random f64 convolution problem: the guide's settings (or `config`) with `n` nodes at
/// the guide's density.
pub(super) fn random_problem(
    config: &ConvolutionConfig,
    n: usize,
    seed: u64,
    dtype: DType,
) -> (Convolution, Tensor<2>, Tensor<2>, StdRng) {
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conv = config.init(&device).unwrap();
    conv.fc.weights = conv
        .fc
        .weights
        .iter()
        .map(|w| Param::from_tensor(w.val().cast(dtype).detach().require_grad()))
        .collect();
    let scale = (n as f64 / 100.0).cbrt();
    let pos: Vec<f64> = randn(&mut rng, 3 * n)
        .into_iter()
        .map(|x| x * scale)
        .collect();
    let f_in = randn(&mut rng, n * config.irreps_in.dim());
    let make = |data: &[f64], shape| {
        Tensor::<2>::from_data(TensorData::new(data.to_vec(), shape), (&device, dtype))
    };
    let pos = make(&pos, [n, 3]);
    let f_in = make(&f_in, [n, config.irreps_in.dim()]);
    (conv, f_in, pos, rng)
}

/// `max |conv(f D_in^T, pos R^T) - conv(f, pos) D_out^T|` and the output's max magnitude.
fn equivariance_error(config: &ConvolutionConfig, dtype: DType, seed: u64) -> (f64, f64) {
    let (conv, f_in, pos, mut rng) = random_problem(config, 60, seed, dtype);
    let device = pos.device();
    let rot = rand_matrix(&mut rng);
    let d = |irreps: &Irreps| {
        let dim = irreps.dim();
        Tensor::<2>::from_data(
            TensorData::new(irreps.d_from_matrix(&rot).unwrap(), [dim, dim]),
            (&device, dtype),
        )
    };
    let r = Tensor::<2>::from_data(
        TensorData::new(rot.iter().flatten().copied().collect::<Vec<f64>>(), [3, 3]),
        (&device, dtype),
    );
    let before = conv
        .forward(
            f_in.clone().matmul(d(&config.irreps_in).transpose()),
            pos.clone().matmul(r.transpose()),
        )
        .unwrap();
    let after = conv
        .forward(f_in, pos)
        .unwrap()
        .matmul(d(&config.irreps_out).transpose());
    let (a, b) = (values(before), values(after));
    let err = a
        .iter()
        .zip(&b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|b| b.abs()).fold(0.0, f64::max);
    (err, scale)
}

#[test]
fn convolution_is_equivariant() {
    let other = ConvolutionConfig {
        irreps_in: "3x0e + 2x1o + 1x2e + 1x3o".parse().unwrap(),
        irreps_out: "2x0o + 2x1e + 2x2o + 1x3e".parse().unwrap(),
        lmax: 3,
        basis: Basis::Gaussian,
        cutoff: true,
        hidden: vec![8, 8],
        act: ActivationFunction::Silu,
        num_neighbors: Some(5.0),
        ..ConvolutionConfig::guide()
    };
    for (i, config) in [ConvolutionConfig::guide(), other].iter().enumerate() {
        let (err, scale) = equivariance_error(config, DType::F64, i as u64);
        assert!(scale > 0.1, "config {i}: output is trivially zero");
        assert!(err < 1e-10, "config {i}: f64 equivariance error {err:e}");
        let (err, _) = equivariance_error(config, DType::F32, i as u64);
        assert!(err < 1e-4, "config {i}: f32 equivariance error {err:e}");
    }
}

/// Central differences of `f` at `x` along every coordinate.
fn finite_differences(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
            plus[i] += h;
            minus[i] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn convolution_gradients_match_finite_differences() {
    let config = ConvolutionConfig {
        irreps_in: "2x0e + 1x1o + 1x2e".parse().unwrap(),
        irreps_out: "1x0e + 2x1o + 1x2e".parse().unwrap(),
        basis: Basis::Gaussian,
        act: ActivationFunction::Silu,
        ..ConvolutionConfig::guide()
    };
    let (conv, f_in, pos, mut rng) = random_problem(&config, 12, 7, DType::F64);
    let device = pos.device();
    let graph = conv.graph(&pos).unwrap();
    assert!(graph.num_edges() > 4);
    let [n, d_in] = f_in.dims();
    let d_out = config.irreps_out.dim();
    let g = randn(&mut rng, n * d_out);
    let loss = |f: &[f64], p: &[f64]| -> f64 {
        let out = conv
            .forward_graph(
                f64_tensor(f, [n, d_in], &device),
                f64_tensor(p, [n, 3], &device),
                &graph,
            )
            .unwrap();
        values(out).iter().zip(&g).map(|(a, b)| a * b).sum()
    };
    let (f0, p0) = (values(f_in.clone()), values(pos.clone()));
    let (f_in, pos) = (f_in.require_grad(), pos.require_grad());
    let out = conv
        .forward_graph(f_in.clone(), pos.clone(), &graph)
        .unwrap();
    let grads = out
        .mul(f64_tensor(&g, [n, d_out], &device))
        .sum()
        .backward();
    let expected_f = finite_differences(&f0, 1e-6, |f| loss(f, &p0));
    let expected_p = finite_differences(&p0, 1e-6, |p| loss(&f0, p));
    assert_close(
        "grad f_in",
        &values(f_in.grad(&grads).unwrap()),
        &expected_f,
        1e-6,
    );
    assert_close(
        "grad pos",
        &values(pos.grad(&grads).unwrap()),
        &expected_p,
        1e-6,
    );
}

#[test]
fn harmonics_and_basis_ops_match_core_and_finite_differences() {
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(3);
    let sh = Arc::new(
        SphericalHarmonicsPlan::from_ls(&[0, 1, 2, 3], true, Normalization::Component).unwrap(),
    );
    let v = randn(&mut rng, 5 * 3);
    let g = randn(&mut rng, 5 * sh.dim());
    let x = f64_tensor(&v, [5, 3], &device).require_grad();
    let y = spherical_harmonics(&sh, x.clone());
    let mut core = vec![0.0; 5 * sh.dim()];
    sh.compute(&v, &mut core).unwrap();
    assert_eq!(values(y.clone()), core);
    let grads = y
        .mul(f64_tensor(&g, [5, sh.dim()], &device))
        .sum()
        .backward();
    let loss = |v: &[f64]| {
        let mut y = vec![0.0; 5 * sh.dim()];
        sh.compute(v, &mut y).unwrap();
        y.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
    };
    assert_close(
        "sh grad",
        &values(x.grad(&grads).unwrap()),
        &finite_differences(&v, 1e-6, loss),
        1e-7,
    );

    for basis in [
        Basis::SmoothFinite,
        Basis::Gaussian,
        Basis::Bessel,
        Basis::Cosine,
        Basis::Fourier,
    ] {
        let b = Arc::new(SoftOneHotLinspace::new(0.0, 2.0, 6, basis, true).unwrap());
        let r: Vec<f64> = (0..7).map(|i| 0.13 + 0.27 * i as f64).collect();
        let g = randn(&mut rng, 7 * 6);
        let x = f64_tensor(&r, [7], &device).require_grad();
        let y = soft_one_hot_linspace(&b, x.clone());
        let mut core = vec![0.0; 7 * 6];
        b.compute(&r, &mut core).unwrap();
        assert_eq!(values(y.clone()), core, "{basis:?}");
        let grads = y.mul(f64_tensor(&g, [7, 6], &device)).sum().backward();
        let loss = |r: &[f64]| {
            let mut y = vec![0.0; 7 * 6];
            b.compute(r, &mut y).unwrap();
            y.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
        };
        assert_close(
            &format!("{basis:?} grad"),
            &values(x.grad(&grads).unwrap()),
            &finite_differences(&r, 1e-6, loss),
            1e-6,
        );
    }
}

#[test]
fn gather_and_scatter_are_adjoint() {
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let index = Tensor::<1, Int>::from_ints([3, 0, 3, 1, 3], &device);
    let e = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &device);
    // <gather(x), e> = <x, scatter(e)>, and the gradient of one is the other.
    let grads = gather(x.clone(), index.clone())
        .mul(e.clone())
        .sum()
        .backward();
    let scattered = values(scatter_sum(e.inner(), index.inner(), 4));
    assert_close(
        "grad gather",
        &values(x.grad(&grads).unwrap()),
        &scattered,
        1e-6,
    );
    assert_eq!(&scattered[6..9], [0.0; 3], "node 2 receives nothing");
}

#[test]
fn convolution_rejects_bad_input_and_handles_empty_graphs() {
    let device = Device::flex();
    let conv = ConvolutionConfig::guide().init(&device).unwrap();
    let f = |n: usize| Tensor::<2>::ones([n, 40], &device);
    let nan = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [f32::NAN, 0.0, 0.0]], &device);
    assert!(matches!(
        conv.forward(f(2), nan.clone()),
        Err(equivariant::Error::NonFinite { .. })
    ));
    // A given graph skips the radius search that checks the positions: the edge vectors
    // are checked instead, on every path.
    let pair = Graph {
        src: vec![0, 1],
        dst: vec![1, 0],
        shift: None,
    };
    for result in [
        conv.forward_graph(f(2), nan.clone(), &pair),
        conv.forward_graph_unfused(f(2), nan.clone(), &pair),
        conv.forward_edges(f(2), nan, &pair),
    ] {
        assert!(matches!(result, Err(equivariant::Error::NonFinite { .. })));
    }
    let pos = Tensor::<2>::zeros([2, 3], &device);
    assert!(matches!(
        conv.forward(Tensor::<2>::ones([2, 41], &device), pos.clone()),
        Err(equivariant::Error::ShapeMismatch { .. })
    ));
    assert!(
        conv.forward(f(2), Tensor::<2>::zeros([2, 2], &device))
            .is_err()
    );
    let bad = Graph {
        src: vec![0],
        dst: vec![5],
        shift: None,
    };
    assert!(matches!(
        conv.forward_graph(f(2), pos.clone(), &bad),
        Err(equivariant::Error::InvalidArgument { .. })
    ));
    let periodic = Graph {
        src: vec![0],
        dst: vec![1],
        shift: Some(vec![[1, 0, 0]]),
    };
    assert!(conv.forward_graph(f(2), pos, &periodic).is_err());

    // One atom, and atoms out of reach of each other: no edges, zero output.
    for pos in [
        Tensor::<2>::zeros([1, 3], &device),
        Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]], &device),
    ] {
        let n = pos.dims()[0];
        let out = conv.forward(f(n), pos).unwrap();
        assert_eq!(out.dims(), [n, 50]);
        assert!(values(out).iter().all(|&x| x == 0.0));
    }
}

#[test]
fn convolution_trains() {
    // A few Adam steps on the radial MLP lower a regression loss.
    let device = Device::flex().autodiff();
    device.seed(1);
    let config = ConvolutionConfig {
        irreps_out: "1x0e".parse().unwrap(),
        ..ConvolutionConfig::guide()
    };
    let mut conv = config.init(&device).unwrap();
    let pos = Tensor::<2>::random([20, 3], Distribution::Normal(0.0, 1.0), &device);
    let f_in = Tensor::<2>::random([20, 40], Distribution::Normal(0.0, 1.0), &device);
    let target = Tensor::<2>::ones([20, 1], &device);
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..20 {
        let out = conv.forward(f_in.clone(), pos.clone()).unwrap();
        let loss = out.sub(target.clone()).powi_scalar(2).mean();
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &conv);
        conv = optim.step(1e-2, conv, grads);
    }
    assert!(losses[19] < 0.5 * losses[0], "losses {losses:?}");
    assert_eq!(conv.num_params(), 10 * 16 + 16 * conv.tp.weight_numel());
}

#[test]
fn fused_convolution_matches_unfused() {
    // f64, a random graph at the guide density; outputs and gradients to features, positions and
    // every MLP weight.
    let config = ConvolutionConfig {
        irreps_in: "3x0e + 2x1o + 1x2e".parse().unwrap(),
        irreps_out: "2x0e + 2x1o + 1x2e + 1x3o".parse().unwrap(),
        lmax: 3,
        hidden: vec![8, 12],
        act: ActivationFunction::Silu,
        ..ConvolutionConfig::guide()
    };
    let (conv, f_in, pos, mut rng) = random_problem(&config, 40, 11, DType::F64);
    let device = pos.device();
    let graph = conv.graph(&pos).unwrap();
    let n = 40;
    let g = f64_tensor(
        &randn(&mut rng, n * config.irreps_out.dim()),
        [n, config.irreps_out.dim()],
        &device,
    );
    let run = |fused: bool| {
        let (f, p) = (f_in.clone().require_grad(), pos.clone().require_grad());
        let out = if fused {
            conv.forward_graph(f.clone(), p.clone(), &graph)
        } else {
            conv.forward_graph_unfused(f.clone(), p.clone(), &graph)
        }
        .unwrap();
        let grads = out.clone().mul(g.clone()).sum().backward();
        let mut all = vec![
            values(out),
            values(f.grad(&grads).unwrap()),
            values(p.grad(&grads).unwrap()),
        ];
        all.extend(
            conv.fc
                .weights
                .iter()
                .map(|w| values(w.grad(&grads).unwrap())),
        );
        all
    };
    let (fused, unfused) = (run(true), run(false));
    for (k, (a, b)) in fused.iter().zip(&unfused).enumerate() {
        assert_close(
            &format!("fused vs unfused, output/gradient {k}"),
            a,
            b,
            1e-10,
        );
    }
}
