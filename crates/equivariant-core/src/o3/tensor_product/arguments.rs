//! The buffers the compute entry points take besides the data: where the gradients go, and
//! where a convolution's per-edge weights come from.

/// Where [`TensorProductPlan::backward`](super::TensorProductPlan::backward) writes the
/// gradients; `None` skips that gradient.
///
/// ```
/// use equivariant_core::o3::tensor_product::TensorProductGradients;
/// let mut g1 = vec![0.0f64; 3];
/// let grads = TensorProductGradients { x1: Some(&mut g1), x2: None, weight: None };
/// assert!(grads.x2.is_none());
/// ```
pub struct TensorProductGradients<'a, T> {
    /// `d L / d x1`, `[batch, irreps_in1.dim]`.
    pub x1: Option<&'a mut [T]>,
    /// `d L / d x2`, `[batch, irreps_in2.dim]`.
    pub x2: Option<&'a mut [T]>,
    /// `d L / d weight`, the weight's shape.
    pub weight: Option<&'a mut [T]>,
}

/// Where the per-edge weights of a fused convolution come from.
///
/// ```
/// use equivariant_core::o3::tensor_product::EdgeWeights;
/// let hidden = [1.0f32, 2.0]; // one edge, width 2
/// let linear = [0.5f32, 0.25]; // [2, weight_numel = 1]
/// let w = EdgeWeights::Linear { hidden: &hidden, linear: &linear };
/// assert!(matches!(w, EdgeWeights::Linear { .. }));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum EdgeWeights<'a, T> {
    /// Precomputed weights, `[E, weight_numel]`.
    PerEdge(&'a [T]),
    /// `w_e = hidden[e] linear`: `hidden` `[E, width]`, `linear` `[width, weight_numel]`.
    Linear {
        /// The hidden activations, `[E, width]`.
        hidden: &'a [T],
        /// The last layer's matrix (scaling included), `[width, weight_numel]`.
        linear: &'a [T],
    },
}

/// Where [`TensorProductPlan::conv_backward`](super::TensorProductPlan::conv_backward) writes
/// the gradients; `None` skips one.
///
/// ```
/// use equivariant_core::o3::tensor_product::ConvGradients;
/// let mut g1 = vec![0.0f64; 4];
/// let grads = ConvGradients { x1: Some(&mut g1), x2: None, weight: None, linear: None };
/// assert!(grads.linear.is_none());
/// ```
pub struct ConvGradients<'a, T> {
    /// `dL/dx1`, `[N, irreps_in1.dim]`.
    pub x1: Option<&'a mut [T]>,
    /// `dL/dx2`, `[E, irreps_in2.dim]`.
    pub x2: Option<&'a mut [T]>,
    /// `dL/dw`, `[E, weight_numel]`, for [`EdgeWeights::PerEdge`]; `dL/dhidden`,
    /// `[E, width]`, for [`EdgeWeights::Linear`].
    pub weight: Option<&'a mut [T]>,
    /// `dL/dlinear`, `[width, weight_numel]` ([`EdgeWeights::Linear`] only).
    pub linear: Option<&'a mut [T]>,
}

/// The inputs of a fused convolution with weights from a linear layer and their tangents,
/// for [`TensorProductPlan::conv_tangent_forward`](super::TensorProductPlan::conv_tangent_forward):
/// a tangent `None` is a constant input.
///
/// ```
/// use equivariant_core::o3::tensor_product::ConvTangentInputs;
/// let (x1, x2, hidden, linear) = ([1.0f64], [2.0], [3.0], [4.0]);
/// let dx2 = [1.0];
/// let inputs = ConvTangentInputs { x1: &x1, dx1: None, x2: &x2, dx2: Some(&dx2), hidden: &hidden, dhidden: None, linear: &linear };
/// assert!(inputs.dx1.is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ConvTangentInputs<'a, T> {
    /// Node features, `[N, irreps_in1.dim]`, and their tangent.
    pub x1: &'a [T],
    /// The tangent of `x1`.
    pub dx1: Option<&'a [T]>,
    /// Edge attributes, `[E, irreps_in2.dim]`.
    pub x2: &'a [T],
    /// The tangent of `x2`.
    pub dx2: Option<&'a [T]>,
    /// The radial MLP's hidden activations, `[E, width]`.
    pub hidden: &'a [T],
    /// The tangent of `hidden`.
    pub dhidden: Option<&'a [T]>,
    /// The MLP's last layer (scaling included), `[width, weight_numel]`; fixed.
    pub linear: &'a [T],
}

/// Where [`TensorProductPlan::conv_tangent_backward`](super::TensorProductPlan::conv_tangent_backward)
/// writes the gradients, each the shape of its input; `None` skips one (and must, for an
/// input whose tangent is `None`).
///
/// ```
/// use equivariant_core::o3::tensor_product::ConvTangentGradients;
/// let mut g = vec![0.0f64; 4];
/// let grads = ConvTangentGradients { hidden: Some(&mut g), ..Default::default() };
/// assert!(grads.x1.is_none());
/// ```
#[derive(Default)]
pub struct ConvTangentGradients<'a, T> {
    /// `dL/dx1`.
    pub x1: Option<&'a mut [T]>,
    /// `dL/d(dx1)`.
    pub dx1: Option<&'a mut [T]>,
    /// `dL/dx2`.
    pub x2: Option<&'a mut [T]>,
    /// `dL/d(dx2)`.
    pub dx2: Option<&'a mut [T]>,
    /// `dL/dhidden`.
    pub hidden: Option<&'a mut [T]>,
    /// `dL/d(dhidden)`.
    pub dhidden: Option<&'a mut [T]>,
    /// `dL/dlinear`.
    pub linear: Option<&'a mut [T]>,
}

/// One hidden layer of a radial MLP as [`RadialWeights`] runs it: `a' = c f(a W)`, or
/// `a' = a W` without an activation.
///
/// ```
/// use equivariant_core::math::ActivationFunction;
/// use equivariant_core::o3::tensor_product::MlpLayer;
/// let weight = [0.5f32; 8 * 16]; // 8 basis functions -> 16 hidden
/// let layer = MlpLayer { weight: &weight, inputs: 8, outputs: 16, activation: Some((ActivationFunction::Silu, 1.68)) };
/// assert_eq!(layer.weight.len(), layer.inputs * layer.outputs);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MlpLayer<'a, T> {
    /// `W`, `[inputs, outputs]`, the layer's scaling included.
    pub weight: &'a [T],
    /// Its input width.
    pub inputs: usize,
    /// Its output width.
    pub outputs: usize,
    /// `f` and `c` (e3nn's `normalize2mom` constant, times any output scaling), or `None`
    /// for the identity.
    pub activation: Option<(crate::math::ActivationFunction, T)>,
}

/// A convolution's per-edge weights from a radial MLP on the edge embedding `b_e`, formed
/// edge by edge inside the convolution ([`TensorProductPlan::conv_forward_radial`](super::TensorProductPlan::conv_forward_radial)):
///
/// `w_e = a_L(b_e) last`, `a_0 = b_e`, `a_(l+1) = c_l f_l(a_l W_l)`.
///
/// Shapes: `embedding` `[E, num_basis]` (`num_basis` the first hidden layer's `inputs`, or
/// the width with no hidden layer), `last` `[width, weight_numel]`.
///
/// ```
/// use equivariant_core::o3::tensor_product::RadialWeights;
/// let (embedding, last) = ([1.0f64, 2.0], [0.5, 0.25]); // one edge, 2 basis, 1 weight
/// let w = RadialWeights { embedding: &embedding, hidden: &[], last: &last };
/// assert_eq!(w.last.len(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RadialWeights<'a, T> {
    /// `b`, `[E, num_basis]`.
    pub embedding: &'a [T],
    /// The hidden layers, in order; each one's `inputs` the `outputs` of the one before.
    pub hidden: &'a [MlpLayer<'a, T>],
    /// The last, linear layer (scaling included), `[width, weight_numel]`.
    pub last: &'a [T],
}

impl<T> RadialWeights<'_, T> {
    /// Whether a forward over `edges` edges should keep its values for the backward in a
    /// [`RadialSaved`]: at most [`RADIAL_KEPT_VALUES`] of them, each edge's `weight_numel`
    /// weights and one slope per output of each hidden layer with an activation.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// use equivariant_core::o3::tensor_product::{MlpLayer, RadialWeights};
    /// let (hidden, last) = (vec![0.1f32; 8 * 16], vec![0.1f32; 16 * 40]);
    /// let silu = Some((ActivationFunction::Silu, 1.0f32));
    /// let layers = [MlpLayer { weight: &hidden, inputs: 8, outputs: 16, activation: silu }];
    /// let embedding = vec![0.0f32; 18_000 * 8];
    /// let w = RadialWeights { embedding: &embedding, hidden: &layers, last: &last };
    /// // 18000 edges of 40 weights and 16 slopes are kept; ten times as many are not.
    /// assert!(w.worth_keeping(18_000));
    /// assert!(!w.worth_keeping(180_000));
    /// ```
    pub fn worth_keeping(&self, edges: usize) -> bool {
        let width = match self.hidden.last() {
            Some(layer) => layer.outputs,
            None => self.embedding.len() / edges.max(1),
        };
        let numel = self.last.len() / width.max(1);
        let slopes: usize = (self.hidden.iter())
            .filter(|layer| layer.activation.is_some())
            .map(|layer| layer.outputs)
            .sum();
        edges * (numel + slopes) <= RADIAL_KEPT_VALUES
    }
}

/// Where [`TensorProductPlan::conv_backward_radial`](super::TensorProductPlan::conv_backward_radial)
/// writes the gradients; `None` skips one. `x1`'s is overwritten; `x2`'s and the
/// embedding's are **added to**, so the layers of a model that share the harmonics and the
/// embedding sum into one buffer each.
///
/// ```
/// use equivariant_core::o3::tensor_product::RadialConvGradients;
/// let mut g2 = vec![0.0f64; 4];
/// let grads = RadialConvGradients { x1: None, x2: Some(&mut g2), embedding: None };
/// assert!(grads.embedding.is_none());
/// ```
pub struct RadialConvGradients<'a, T> {
    /// `dL/dx1`, `[N, irreps_in1.dim]`, overwritten.
    pub x1: Option<&'a mut [T]>,
    /// `dL/dx2`, `[E, irreps_in2.dim]`, added to.
    pub x2: Option<&'a mut [T]>,
    /// `dL/db`, `[E, num_basis]`, added to.
    pub embedding: Option<&'a mut [T]>,
}

/// What [`TensorProductPlan::conv_forward_radial`](super::TensorProductPlan::conv_forward_radial)
/// keeps for the backward of the same inputs, so that the backward does not form the MLP
/// again (a quarter of its time): each edge's weights and the MLP's slopes, by blocks of
/// sixteen edges in the kernel's order, `[blocks][rows][16]`. A forward overwrites it, and
/// its buffer keeps its allocation from call to call. It belongs to the forward's graph,
/// embedding and MLP; the backward checks the shapes only (as many nodes, edges and rows).
///
/// ```
/// use equivariant_core::o3::tensor_product::RadialSaved;
/// let saved = RadialSaved::<f32>::default(); // filled by a forward
/// assert!(saved.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RadialSaved<T> {
    pub(crate) values: Vec<T>,
    /// `[nodes, edges, rows per block]` of the forward that kept it.
    pub(crate) shape: [usize; 3],
}

impl<T> RadialSaved<T> {
    /// Whether it holds no values (none kept yet, or a forward over no edges).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The most values a radial convolution's forward is worth keeping in a [`RadialSaved`]
/// (each edge's weights and the MLP's slopes): 8 MiB of `f32`, what stays in cache on the
/// way back. Beyond it (10000 atoms of the example's NequIP potential: 23 MB a layer) a
/// caller should let the backward form the MLP again: in `equivariant md`, reading the kept
/// values back from memory was slower (17.7 / 15.9 / 16.1 -> 17.1 / 15.4 / 15.1 steps/s,
/// alternated) and the peak grew 135 -> 184-268 MB. The results are the same bits either
/// way.
///
/// ```
/// use equivariant_core::o3::tensor_product::RADIAL_KEPT_VALUES;
/// // 18000 edges of 40 weights and 16 slopes each are kept.
/// assert!(18_000 * (40 + 16) <= RADIAL_KEPT_VALUES);
/// ```
pub const RADIAL_KEPT_VALUES: usize = 1 << 21;
