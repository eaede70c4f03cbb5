//! e3nn's reference models (`nn::models`) against e3nn 0.6.0 (`tools/reference/fixtures_models.py`):
//! a random e3nn state dict loaded as saved (derived buffers included), outputs and the
//! gradients of inputs, positions and every parameter at 1e-10 in f64; equivariance with
//! parity and translation; typed errors for bad state dicts and batch vectors.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Gradients, Tensor};
use equivariant::Error;
use equivariant::graph::Graph;
use equivariant::nn::models::gate_points_2101::{Network, NetworkConfig};
use equivariant::nn::models::{
    NetworkForAGraphWithAttributes, NetworkForAGraphWithAttributesConfig, SimpleNetwork,
    SimpleNetworkConfig,
};
use equivariant::util::test::{Representation, assert_equivariant};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

use super::support::{tensor, values};

fn rows(case: &Value, key: &str, width: usize, device: &Device) -> Tensor<2> {
    let v = f64s(&case[key]);
    tensor(&v, [v.len() / width, width], device)
}

fn fixture_path(name: &str) -> String {
    format!(
        "{}/tests/fixtures/models_{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn irreps(case: &Value, key: &str) -> equivariant::o3::Irreps {
    case["config"][key].as_str().unwrap().parse().unwrap()
}

fn usize_of(case: &Value, key: &str) -> usize {
    case["config"][key].as_u64().unwrap() as usize
}

fn f64_of(case: &Value, key: &str) -> f64 {
    case["config"][key].as_f64().unwrap()
}

fn simple_network(case: &Value, device: &Device) -> SimpleNetwork {
    let config = SimpleNetworkConfig {
        mul: usize_of(case, "mul"),
        layers: usize_of(case, "layers"),
        lmax: usize_of(case, "lmax") as u32,
        pool_nodes: case["config"]["pool_nodes"].as_bool().unwrap(),
        ..SimpleNetworkConfig::new(
            &irreps(case, "irreps_in"),
            &irreps(case, "irreps_out"),
            f64_of(case, "max_radius"),
            f64_of(case, "num_neighbors"),
            f64_of(case, "num_nodes"),
        )
    };
    config.init(device).unwrap()
}

fn graph_network(case: &Value, device: &Device) -> NetworkForAGraphWithAttributes {
    let config = NetworkForAGraphWithAttributesConfig {
        mul: usize_of(case, "mul"),
        layers: usize_of(case, "layers"),
        lmax: usize_of(case, "lmax") as u32,
        pool_nodes: case["config"]["pool_nodes"].as_bool().unwrap(),
        ..NetworkForAGraphWithAttributesConfig::new(
            &irreps(case, "irreps_node_input"),
            &irreps(case, "irreps_node_attr"),
            &irreps(case, "irreps_edge_attr"),
            &irreps(case, "irreps_node_output"),
            f64_of(case, "max_radius"),
            f64_of(case, "num_neighbors"),
            f64_of(case, "num_nodes"),
        )
    };
    config.init(device).unwrap()
}

fn gate_points_network(case: &Value, device: &Device) -> Network {
    let config = NetworkConfig {
        number_of_basis: usize_of(case, "number_of_basis"),
        radial_layers: usize_of(case, "radial_layers"),
        radial_neurons: usize_of(case, "radial_neurons"),
        num_neighbors: f64_of(case, "num_neighbors"),
        num_nodes: f64_of(case, "num_nodes"),
        reduce_output: case["config"]["reduce_output"].as_bool().unwrap(),
        ..NetworkConfig::new(
            Some(&irreps(case, "irreps_in")),
            &irreps(case, "irreps_hidden"),
            &irreps(case, "irreps_out"),
            Some(&irreps(case, "irreps_node_attr")),
            &irreps(case, "irreps_edge_attr"),
            usize_of(case, "layers"),
            f64_of(case, "max_radius"),
        )
    };
    config.init(device).unwrap()
}

fn batch_of(case: &Value) -> Vec<usize> {
    case["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as usize)
        .collect()
}

/// Every float parameter's gradient, by its path (`mp.layers.0.first.sc.weight`).
struct GradientsByPath<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    found: BTreeMap<String, Vec<f64>>,
}

impl ModuleVisitor for GradientsByPath<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param.val().grad(self.grads).map(values).unwrap_or_default();
        self.found.insert(self.path.join("."), grad);
    }
}

/// Every parameter's gradient against e3nn's, by key, and no parameter left out.
fn assert_parameter_gradients<M: Module>(what: &str, model: &M, grads: &Gradients, case: &Value) {
    let mut visitor = GradientsByPath {
        grads,
        path: Vec::new(),
        found: BTreeMap::new(),
    };
    model.visit(&mut visitor);
    let expected = case["grads"].as_object().unwrap();
    let ours: Vec<&String> = visitor.found.keys().collect();
    let theirs: Vec<&String> = expected.keys().collect();
    assert_eq!(ours, theirs, "{what}: parameter keys");
    for (key, grad) in &visitor.found {
        assert_close(
            &format!("{what} d loss / d {key}"),
            grad,
            &f64s(&expected[key]),
            1e-10,
        );
    }
}

#[test]
fn simple_network_matches_e3nn() {
    let fixture = load_fixture!("models");
    let case = &fixture["simple_network"];
    let device = Device::flex().autodiff();
    let mut net = simple_network(case, &device);
    net.load_e3nn(fixture_path("simple_network")).unwrap();
    let batch = batch_of(case);
    let pos = rows(case, "pos", 3, &device).require_grad();
    let x = rows(case, "x", net.config().irreps_in.dim(), &device).require_grad();
    let out = net.forward(pos.clone(), x.clone(), Some(&batch)).unwrap();
    let shape: Vec<usize> = case["out_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(out.dims().to_vec(), shape);
    assert_close(
        "SimpleNetwork out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );

    let c = tensor(&f64s(&case["c"]), out.dims(), &device);
    let grads = out.mul(c).sum().backward();
    assert_close(
        "SimpleNetwork d loss / d pos",
        &values(pos.grad(&grads).unwrap()),
        &f64s(&case["grad_pos"]),
        1e-10,
    );
    assert_close(
        "SimpleNetwork d loss / d x",
        &values(x.grad(&grads).unwrap()),
        &f64s(&case["grad_x"]),
        1e-10,
    );
    assert_parameter_gradients("SimpleNetwork", &net, &grads, case);
}

#[test]
fn network_for_a_graph_with_attributes_matches_e3nn() {
    let fixture = load_fixture!("models");
    let case = &fixture["network_for_a_graph_with_attributes"];
    let device = Device::flex().autodiff();
    let mut net = graph_network(case, &device);
    net.load_e3nn(fixture_path("network_for_a_graph_with_attributes"))
        .unwrap();
    let index = |key: &str| -> Vec<usize> {
        case[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect()
    };
    let graph = Graph {
        src: index("src"),
        dst: index("dst"),
        shift: None,
    };
    let config = net.config().clone();
    let pos = rows(case, "pos", 3, &device).require_grad();
    let inputs: Vec<Tensor<2>> = [
        ("node_input", config.irreps_node_input.dim()),
        ("node_attr", config.irreps_node_attr.dim()),
        ("edge_attr", config.irreps_edge_attr.dim()),
    ]
    .iter()
    .map(|(key, width)| rows(case, key, *width, &device).require_grad())
    .collect();
    let out = net
        .forward(
            pos.clone(),
            inputs[0].clone(),
            inputs[1].clone(),
            inputs[2].clone(),
            None,
            Some(&graph),
        )
        .unwrap();
    assert_close(
        "NetworkForAGraphWithAttributes out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let c = tensor(&f64s(&case["c"]), out.dims(), &device);
    let grads = out.mul(c).sum().backward();
    assert_close(
        "NetworkForAGraphWithAttributes d loss / d pos",
        &values(pos.grad(&grads).unwrap()),
        &f64s(&case["grad_pos"]),
        1e-10,
    );
    for (input, key) in inputs.iter().zip(["node_input", "node_attr", "edge_attr"]) {
        assert_close(
            &format!("NetworkForAGraphWithAttributes d loss / d {key}"),
            &values(input.grad(&grads).unwrap()),
            &f64s(&case[&format!("grad_{key}")]),
            1e-10,
        );
    }
    assert_parameter_gradients("NetworkForAGraphWithAttributes", &net, &grads, case);
}

#[test]
fn gate_points_2101_network_matches_e3nn() {
    let fixture = load_fixture!("models");
    let case = &fixture["gate_points_2101"];
    let device = Device::flex().autodiff();
    let mut net = gate_points_network(case, &device);
    net.load_e3nn(fixture_path("gate_points_2101")).unwrap();
    let batch = batch_of(case);
    let config = net.config().clone();
    let pos = rows(case, "pos", 3, &device).require_grad();
    let x = rows(case, "x", config.irreps_in.as_ref().unwrap().dim(), &device).require_grad();
    let z = rows(
        case,
        "z",
        config.irreps_node_attr.as_ref().unwrap().dim(),
        &device,
    )
    .require_grad();
    let out = net
        .forward(pos.clone(), Some(x.clone()), Some(z.clone()), Some(&batch))
        .unwrap();
    assert_eq!(out.dims(), [2, config.irreps_out.dim()]);
    assert_close(
        "gate_points_2101 out",
        &values(out.clone()),
        &f64s(&case["out"]),
        1e-10,
    );
    let c = tensor(&f64s(&case["c"]), out.dims(), &device);
    let grads = out.mul(c).sum().backward();
    for (input, key) in [(&pos, "pos"), (&x, "x"), (&z, "z")] {
        assert_close(
            &format!("gate_points_2101 d loss / d {key}"),
            &values(input.grad(&grads).unwrap()),
            &f64s(&case[&format!("grad_{key}")]),
            1e-10,
        );
    }
    assert_parameter_gradients("gate_points_2101", &net, &grads, case);

    // Equivariance of the whole network, parity and translation included.
    let device = Device::flex();
    let mut net = gate_points_network(case, &device);
    net.load_e3nn(fixture_path("gate_points_2101")).unwrap();
    let args = [
        rows(case, "pos", 3, &device),
        rows(case, "x", config.irreps_in.as_ref().unwrap().dim(), &device),
        rows(
            case,
            "z",
            config.irreps_node_attr.as_ref().unwrap().dim(),
            &device,
        ),
    ];
    assert_equivariant(
        |a| {
            vec![
                net.forward(a[0].clone(), Some(a[1].clone()), Some(a[2].clone()), None)
                    .unwrap(),
            ]
        },
        Some(&args),
        &[
            Representation::CartesianPoints,
            Representation::Irreps(config.irreps_in.clone().unwrap()),
            Representation::Irreps(config.irreps_node_attr.clone().unwrap()),
        ],
        &[Representation::Irreps(config.irreps_out.clone())],
        None,
        &device,
        DType::F64,
        1,
    )
    .unwrap();
}

#[test]
fn models_are_equivariant_with_parity_and_translation() {
    let fixture = load_fixture!("models");
    let device = Device::flex();
    let case = &fixture["simple_network"];
    let mut net = simple_network(case, &device);
    net.load_e3nn(fixture_path("simple_network")).unwrap();
    let config = net.config().clone();
    // One graph: pooled outputs of the rotated graph against the rotated outputs.
    let args = [
        rows(case, "pos", 3, &device),
        rows(case, "x", config.irreps_in.dim(), &device),
    ];
    assert_equivariant(
        |a| vec![net.forward(a[0].clone(), a[1].clone(), None).unwrap()],
        Some(&args),
        &[
            Representation::CartesianPoints,
            Representation::Irreps(config.irreps_in.clone()),
        ],
        &[Representation::Irreps(config.irreps_out.clone())],
        None,
        &device,
        DType::F64,
        0,
    )
    .unwrap();

    let case = &fixture["network_for_a_graph_with_attributes"];
    let mut net = graph_network(case, &device);
    net.load_e3nn(fixture_path("network_for_a_graph_with_attributes"))
        .unwrap();
    let config = net.config().clone();
    let graph = Graph {
        src: vec![0, 1, 2, 3, 1, 0],
        dst: vec![1, 2, 0, 0, 3, 2],
        shift: None,
    };
    let args = [
        rows(case, "pos", 3, &device),
        rows(case, "node_input", config.irreps_node_input.dim(), &device),
        rows(case, "node_attr", config.irreps_node_attr.dim(), &device),
        rows(case, "edge_attr", config.irreps_edge_attr.dim(), &device),
    ];
    assert_equivariant(
        |a| {
            vec![
                net.forward(
                    a[0].clone(),
                    a[1].clone(),
                    a[2].clone(),
                    a[3].clone(),
                    None,
                    Some(&graph),
                )
                .unwrap(),
            ]
        },
        Some(&args),
        &[
            Representation::CartesianPoints,
            Representation::Irreps(config.irreps_node_input.clone()),
            Representation::Irreps(config.irreps_node_attr.clone()),
            Representation::Irreps(config.irreps_edge_attr.clone()),
        ],
        &[Representation::Irreps(config.irreps_node_output.clone())],
        None,
        &device,
        DType::F64,
        0,
    )
    .unwrap();
}

/// The fixture's state dict with `edit` applied, written to a temporary file.
fn edited_state_dict(
    name: &str,
    label: &str,
    edit: impl FnOnce(&mut BTreeMap<String, (Vec<usize>, Vec<u8>)>),
) -> std::path::PathBuf {
    let bytes = std::fs::read(fixture_path(name)).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(key, view)| (key, (view.shape().to_vec(), view.data().to_vec())))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(key, (shape, data))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F64, shape.clone(), data)
                    .unwrap();
            (key.clone(), view)
        })
        .collect();
    let out = safetensors::serialize(views, None).unwrap();
    let path = std::env::temp_dir().join(format!(
        "equivariant-{name}-{}-{label}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn bad_state_dicts_are_typed_errors_naming_the_key() {
    let fixture = load_fixture!("models");
    let case = &fixture["simple_network"];
    let device = Device::flex();
    let mut net = simple_network(case, &device);
    let before = values(net.mp.layers[0].first.sc.weight.as_ref().unwrap().val());
    let key = "mp.layers.0.first.sc.weight";

    let missing = edited_state_dict("simple_network", "missing", |t| {
        t.remove(key);
    });
    let extra = edited_state_dict("simple_network", "extra", |t| {
        let w = t[key].clone();
        t.insert("mp.layers.0.first.extra.weight".into(), w);
    });
    let misshaped = edited_state_dict("simple_network", "misshaped", |t| {
        let (_, data) = t.remove(key).unwrap();
        let n = data.len() / 8;
        t.insert(key.into(), (vec![n - 1], data[..8 * (n - 1)].to_vec()));
    });
    let last_layer = edited_state_dict("simple_network", "last_layer", |t| {
        t.remove("mp.layers.2.lin2.weight");
    });
    for (path, expected_key, why) in [
        (&missing, key, "missing"),
        (&extra, "mp.layers.0.first.extra.weight", "not a parameter"),
        (&misshaped, key, "hape"),
        (&last_layer, "mp.layers.2.first.lin2.weight", "missing"),
    ] {
        match net.load_e3nn(path) {
            Err(Error::StateDict { key, reason }) => {
                assert_eq!(key, expected_key, "{reason}");
                assert!(reason.contains(why), "{key}: {reason}");
            }
            other => panic!(
                "{}: expected a state dict error, got {other:?}",
                path.display()
            ),
        }
        let _ = std::fs::remove_file(path);
    }
    // All or nothing: the failed loads changed nothing.
    let after = values(net.mp.layers[0].first.sc.weight.as_ref().unwrap().val());
    assert_eq!(before, after);
    assert!(matches!(
        net.load_e3nn("no-such-file.safetensors"),
        Err(Error::InvalidArgument { name: "path", .. })
    ));
    // Another model's file: its keys do not fit.
    assert!(matches!(
        net.load_e3nn(fixture_path("network_for_a_graph_with_attributes")),
        Err(Error::StateDict { .. })
    ));
}

#[test]
fn bad_batches_and_graphs_are_typed_errors() {
    let fixture = load_fixture!("models");
    let case = &fixture["simple_network"];
    let device = Device::flex();
    let net = simple_network(case, &device);
    let pos = rows(case, "pos", 3, &device);
    let n = pos.dims()[0];
    let x_width = net.config().irreps_in.dim();
    let x = rows(case, "x", x_width, &device);
    let mut unsorted = vec![0; n];
    unsorted[0] = 1;
    assert!(matches!(
        net.forward(pos.clone(), x.clone(), Some(&unsorted)),
        Err(Error::InvalidArgument { name: "batch", .. })
    ));
    assert!(matches!(
        net.forward(pos.clone(), x.clone(), Some(&vec![0; n - 1])),
        Err(Error::ShapeMismatch { .. })
    ));
    let nan = pos
        .clone()
        .slice_assign([0..1, 0..1], tensor(&[f64::NAN], [1, 1], &device));
    assert!(matches!(
        net.forward(nan, x.clone(), None),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        net.forward(pos.clone(), x.slice([0..n - 1, 0..x_width]), None),
        Err(Error::ShapeMismatch { .. })
    ));
    // A graph naming a node past the positions.
    let case = &fixture["network_for_a_graph_with_attributes"];
    let net = graph_network(case, &device);
    let config = net.config().clone();
    let bad = Graph {
        src: vec![0],
        dst: vec![9],
        shift: None,
    };
    let ones = |r, c| Tensor::<2>::ones([r, c], (&device, DType::F64));
    assert!(matches!(
        net.forward(
            ones(4, 3),
            ones(4, config.irreps_node_input.dim()),
            ones(4, config.irreps_node_attr.dim()),
            ones(1, config.irreps_edge_attr.dim()),
            None,
            Some(&bad)
        ),
        Err(Error::InvalidArgument { name: "graph", .. })
    ));
    // Edge attributes for another number of edges.
    let good = Graph {
        src: vec![0, 1],
        dst: vec![1, 0],
        shift: None,
    };
    assert!(matches!(
        net.forward(
            ones(4, 3),
            ones(4, config.irreps_node_input.dim()),
            ones(4, config.irreps_node_attr.dim()),
            ones(3, config.irreps_edge_attr.dim()),
            None,
            Some(&good)
        ),
        Err(Error::ShapeMismatch { .. })
    ));
}
