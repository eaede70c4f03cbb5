//! e3nn's `tetris_polynomial` example: an invariant polynomial of point positions that tells
//! the eight tetris shapes apart, mirror images included (an odd scalar output).
//!
//! Shared by the example (`main.rs`) and its test (`tests/tetris.rs`). Follows
//! `tools/reference/tetris_e3nn.py`, which documents e3nn's original.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use equivariant::Result;
use equivariant::graph::radius_graph;
use equivariant::o3::{
    FullyConnectedTensorProduct, Irreps, Normalization, Parity, SphericalHarmonics, TensorProduct,
    rand_matrix,
};
use equivariant::ops::composed::edge_vectors_from_index;
use equivariant::ops::{gather, index_tensor, scatter_sum};
use rand::Rng;

/// The eight shapes, four unit-spaced points each.
pub const SHAPES: [(&str, [[f64; 3]; 4]); 8] = [
    (
        "chiral_shape_1",
        [[0., 0., 0.], [0., 0., 1.], [1., 0., 0.], [1., 1., 0.]],
    ),
    (
        "chiral_shape_2",
        [[0., 0., 0.], [0., 0., 1.], [1., 0., 0.], [1., -1., 0.]],
    ),
    (
        "square",
        [[0., 0., 0.], [1., 0., 0.], [0., 1., 0.], [1., 1., 0.]],
    ),
    (
        "line",
        [[0., 0., 0.], [0., 0., 1.], [0., 0., 2.], [0., 0., 3.]],
    ),
    (
        "corner",
        [[0., 0., 0.], [0., 0., 1.], [0., 1., 0.], [1., 0., 0.]],
    ),
    (
        "L",
        [[0., 0., 0.], [0., 0., 1.], [0., 0., 2.], [0., 1., 0.]],
    ),
    (
        "T",
        [[0., 0., 0.], [0., 0., 1.], [0., 0., 2.], [0., 1., 1.]],
    ),
    (
        "zigzag",
        [[0., 0., 0.], [1., 0., 0.], [1., 1., 0.], [2., 1., 0.]],
    ),
];

/// The labels, one row per shape, columns as the output irreps `1x0o+6x0e`: the odd scalar
/// is +1 / -1 for the two mirror-image chiral shapes, then one column per other shape.
pub fn labels() -> Vec<f64> {
    let mut labels = vec![0.0; 8 * 7];
    labels[0] = 1.0;
    labels[7] = -1.0;
    for shape in 2..8 {
        labels[shape * 7 + shape - 1] = 1.0;
    }
    labels
}

/// The radius that bonds unit-spaced neighbours.
pub const RADIUS: f64 = 1.1;

/// A batch of the eight shapes: positions `[32, 3]` (row-major), each shape rotated by its
/// own random rotation; the edges of each shape's radius graph (no self loops), and each
/// node's shape.
pub struct Batch {
    /// Positions, 32 x 3, row-major.
    pub pos: Vec<f64>,
    /// Edge sources.
    pub src: Vec<usize>,
    /// Edge destinations.
    pub dst: Vec<usize>,
    /// The shape of each node (`n / 4`).
    pub batch: Vec<usize>,
}

/// The shapes, randomly rotated (e3nn's `tetris()`).
pub fn tetris<R: Rng + ?Sized>(rng: &mut R) -> Result<Batch> {
    let mut pos = Vec::with_capacity(32 * 3);
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for (shape, (_, points)) in SHAPES.iter().enumerate() {
        let r = rand_matrix(rng);
        let rotated: Vec<f64> = points
            .iter()
            .flat_map(|p| r.map(|row| row[0] * p[0] + row[1] * p[1] + row[2] * p[2]))
            .collect();
        let graph = radius_graph(&rotated, RADIUS, None, None)?;
        src.extend(graph.src.iter().map(|i| i + 4 * shape));
        dst.extend(graph.dst.iter().map(|i| i + 4 * shape));
        pos.extend(rotated);
    }
    Ok(Batch {
        pos,
        src,
        dst,
        batch: (0..32).map(|n| n / 4).collect(),
    })
}

/// e3nn's `InvariantPolynomial`: harmonics (lmax 3, not normalized) of the edge vectors,
/// summed into the nodes, two fully connected tensor products with the harmonics, each
/// followed by a sum over incoming edges, and a sum over each shape's nodes.
#[derive(Module, Debug)]
pub struct InvariantPolynomial {
    sh: SphericalHarmonics,
    tp1: TensorProduct,
    tp2: TensorProduct,
}

impl InvariantPolynomial {
    /// The model, weights drawn on `device`.
    pub fn new(device: &Device) -> Result<Self> {
        let irreps_sh = Irreps::spherical_harmonics(3, Parity::Odd);
        let irreps_mid: Irreps = "64x0e + 24x1e + 24x1o + 16x2e + 16x2o".parse()?;
        let irreps_out: Irreps = "0o + 6x0e".parse()?;
        Ok(InvariantPolynomial {
            sh: SphericalHarmonics::new(&irreps_sh, false, Normalization::Component)?,
            tp1: FullyConnectedTensorProduct::new(&irreps_sh, &irreps_sh, &irreps_mid)
                .init(device)?,
            tp2: FullyConnectedTensorProduct::new(&irreps_mid, &irreps_sh, &irreps_out)
                .init(device)?,
        })
    }

    /// The prediction for each shape, `[8, 7]`, from positions `[32, 3]`.
    pub fn forward(&self, pos: Tensor<2>, graph: &Graph) -> Result<Tensor<2>> {
        // e3nn's constants: a typical number of neighbours and of nodes.
        let neighbors = 1.0 / 2f64.sqrt();
        let nodes = 1.0 / 4f64.sqrt();
        let n = pos.dims()[0];
        // e3nn's tetris convention, pos[src] - pos[dst]: the edge vectors with src and dst
        // swapped.
        let edge_vec = edge_vectors_from_index(pos, graph.dst.clone(), graph.src.clone());
        let sh = self.sh.forward(edge_vec)?;
        let h = scatter_sum(sh.clone(), graph.dst.clone(), n).mul_scalar(neighbors);
        let e = self
            .tp1
            .forward(gather(h, graph.src.clone()), sh.clone(), None)?;
        let h = scatter_sum(e, graph.dst.clone(), n).mul_scalar(neighbors);
        let e = self.tp2.forward(gather(h, graph.src.clone()), sh, None)?;
        let h = scatter_sum(e, graph.dst.clone(), n).mul_scalar(neighbors);
        Ok(scatter_sum(h, graph.batch.clone(), 8).mul_scalar(nodes))
    }
}

/// A [`Batch`]'s indices as tensors on a device.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Edge sources.
    pub src: Tensor<1, Int>,
    /// Edge destinations.
    pub dst: Tensor<1, Int>,
    /// The shape of each node.
    pub batch: Tensor<1, Int>,
}

impl Batch {
    /// Positions `[32, 3]` and indices on `device`.
    pub fn tensors(&self, device: &Device) -> (Tensor<2>, Graph) {
        let index = |v: &[usize]| index_tensor(v, device);
        let pos = Tensor::from_data(TensorData::new(self.pos.clone(), [32, 3]), device);
        let graph = Graph {
            src: index(&self.src),
            dst: index(&self.dst),
            batch: index(&self.batch),
        };
        (pos, graph)
    }
}

/// How many shapes a prediction `[8, 7]` gets right: rounded, every column equal to the label.
pub fn correct(pred: &[f64]) -> usize {
    let labels = labels();
    (0..8)
        .filter(|&s| (0..7).all(|c| pred[s * 7 + c].round() == labels[s * 7 + c]))
        .count()
}

/// One line of the training log.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The step (0-based).
    pub step: usize,
    /// `sum((pred - labels)^2)` of the prediction made at this step.
    pub loss: f64,
    /// How many shapes that prediction gets right.
    pub correct: usize,
}

/// Trains with Adam (lr 1e-2, e3nn's example) on `batch`, full batch, until every shape is
/// right or `max_steps` steps; returns the trained model and every step's loss and score
/// (measured before that step's update, as e3nn's example prints them). Errors as
/// [`InvariantPolynomial::forward`].
pub fn train(
    mut model: InvariantPolynomial,
    batch: &Batch,
    max_steps: usize,
    device: &Device,
) -> Result<(InvariantPolynomial, Vec<Step>)> {
    let (pos, graph) = batch.tensors(device);
    let labels = Tensor::<2>::from_data(TensorData::new(labels(), [8, 7]), device);
    let mut optim = AdamConfig::new().init();
    let mut log = Vec::new();
    for step in 0..max_steps {
        let pred = model.forward(pos.clone(), &graph)?;
        let values: Vec<f64> = pred.clone().into_data().iter::<f64>().collect();
        let loss = pred.sub(labels.clone()).powi_scalar(2).sum();
        let entry = Step {
            step,
            loss: loss
                .clone()
                .into_data()
                .iter::<f64>()
                .next()
                .unwrap_or(f64::NAN),
            correct: correct(&values),
        };
        log.push(entry);
        if entry.correct == 8 {
            break;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    Ok((model, log))
}
