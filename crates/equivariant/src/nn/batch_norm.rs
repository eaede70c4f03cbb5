//! e3nn's `nn.BatchNorm`: batch normalization that keeps equivariance.

use burn::module::{Flag, Initializer, Module, Param, RunningState};
use burn::tensor::{Device, Tensor};
use equivariant_core::o3::{Irreps, Normalization};
use equivariant_core::{Error, Result};

use crate::shape::{check_dtype, check_width};

/// How [`BatchNorm`] reduces the squared norms over the samples of one batch row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduce {
    /// The mean over samples (e3nn's `"mean"`, the default).
    #[default]
    Mean,
    /// The maximum over samples (e3nn's `"max"`).
    Max,
}

/// The settings of e3nn's `nn.BatchNorm(irreps, eps, momentum, affine, reduce, instance,
/// include_bias, normalization)`, with e3nn's defaults; [`init`](BatchNormConfig::init)
/// builds the layer.
///
/// ```
/// use burn::tensor::Device;
/// use equivariant::nn::BatchNormConfig;
/// let config = BatchNormConfig::new(&"4x0e + 2x1o".parse()?);
/// assert_eq!((config.eps, config.momentum, config.affine), (1e-5, 0.1, true));
/// let bn = config.init(&Device::flex())?;
/// assert_eq!(bn.weight.as_ref().unwrap().dims(), [6]);
/// assert_eq!(bn.bias.as_ref().unwrap().dims(), [4]);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormConfig {
    /// The irreps of the features.
    pub irreps: Irreps,
    /// Added to the variance before its inverse square root (default `1e-5`).
    pub eps: f64,
    /// The weight of a new batch in the running statistics (default `0.1`).
    pub momentum: f64,
    /// A trainable scale per irrep instance, and a bias per `0e` channel (default `true`).
    pub affine: bool,
    /// How squared norms are reduced over samples (default [`Reduce::Mean`]).
    pub reduce: Reduce,
    /// Normalize each batch row on its own statistics, without running statistics
    /// (default `false`).
    pub instance: bool,
    /// With `affine`, whether `0e` channels get a bias (default `true`).
    pub include_bias: bool,
    /// The squared norm of an instance: the mean (`Component`, default) or the sum
    /// (`Norm`) of its squared components.
    pub normalization: Normalization,
}

impl BatchNormConfig {
    /// e3nn's defaults for `irreps`.
    ///
    /// ```
    /// let config = equivariant::nn::BatchNormConfig::new(&"1x0e".parse()?);
    /// assert!(!config.instance);
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn new(irreps: &Irreps) -> Self {
        BatchNormConfig {
            irreps: irreps.clone(),
            eps: 1e-5,
            momentum: 0.1,
            affine: true,
            reduce: Reduce::Mean,
            instance: false,
            include_bias: true,
            normalization: Normalization::Component,
        }
    }

    /// The layer on `device`: weights 1, biases 0, running means 0 and variances 1, as e3nn.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for the `Integral` normalization, a negative or non-finite
    /// `eps`, or a `momentum` outside `[0, 1]`.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// use equivariant::o3::Normalization;
    /// use equivariant::nn::BatchNormConfig;
    /// let mut config = BatchNormConfig::new(&"1x1o".parse()?);
    /// config.normalization = Normalization::Integral;
    /// assert!(config.init(&Device::flex()).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn init(&self, device: &Device) -> Result<BatchNorm> {
        if self.normalization == Normalization::Integral {
            return Err(Error::InvalidArgument {
                name: "normalization",
                reason: "BatchNorm supports component or norm".into(),
            });
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "eps",
                reason: format!("{} is not finite and non-negative", self.eps),
            });
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::InvalidArgument {
                name: "momentum",
                reason: format!("{} is not within [0, 1]", self.momentum),
            });
        }
        let num_scalar: usize = self
            .irreps
            .iter()
            .filter(|entry| entry.ir.is_scalar())
            .map(|entry| entry.mul)
            .sum();
        let num_features = self.irreps.num_irreps();
        let running = |n: usize, value: f64| {
            (!self.instance).then(|| RunningState::new(Tensor::full([n], value, device)))
        };
        Ok(BatchNorm {
            weight: self
                .affine
                .then(|| Initializer::Ones.init([num_features], device)),
            bias: (self.affine && self.include_bias)
                .then(|| Initializer::Zeros.init([num_scalar], device)),
            running_mean: running(num_scalar, 0.0),
            running_var: running(num_features, 1.0),
            training: Param::from_bool(true),
            config: self.clone(),
        })
    }
}

/// e3nn's `nn.BatchNorm`: each irrep instance divided by the root mean square of its norm
/// over the batch, `0e` channels centered first.
///
/// For block `mul x ir` with fields `x[b, s, u, m]` (batch row `b`, sample `s`, channel `u`,
/// component `m`):
///
/// 1. `0e` channels: `x -= mean_{b,s} x` (training) or the running mean (inference);
/// 2. `n_u = reduce_s mean_b (1/d) sum_m x^2` (`Component`; `Norm` drops the `1/d`), from the
///    batch (training) or the running variance (inference);
/// 3. `y = x w_u / sqrt(n_u + eps)`, plus `b_u` on `0e` channels (affine).
///
/// Training (an autodiff device and the `training` flag set, burn's convention: `valid()`
/// turns it off) uses the batch statistics and rolls them into the running ones,
/// `r <- (1 - momentum) r + momentum stat`; inference uses the running statistics. With
/// `instance` the statistics are each row's own, always, and nothing is kept.
///
/// Scalars `0e` are the only irreps centered and biased; `0o` is scaled only.
///
/// # Shapes
///
/// [`forward`](BatchNorm::forward): `[batch, irreps.dim]`;
/// [`forward_samples`](BatchNorm::forward_samples): `[batch, samples, irreps.dim]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::nn::BatchNormConfig;
///
/// let device = Device::flex().autodiff();
/// let bn = BatchNormConfig::new(&"1x0e".parse()?).init(&device)?;
/// let y = bn.forward(Tensor::<2>::from_floats([[1.0], [3.0]], &device))?;
/// // Centered (mean 2), then divided by sqrt(mean of squares 1 + eps).
/// let y = y.into_data().try_into_vec::<f32>().unwrap();
/// assert!((y[0] + 1.0).abs() < 1e-4 && (y[1] - 1.0).abs() < 1e-4);
/// // The running mean moved a tenth of the way to 2.
/// let mean = bn.running_mean.unwrap().value_sync().into_data().try_into_vec::<f32>().unwrap();
/// assert!((mean[0] - 0.2).abs() < 1e-6);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// The scale of each irrep instance, `[irreps.num_irreps]` (affine).
    pub weight: Option<Param<Tensor<1>>>,
    /// The bias of each `0e` channel, `[number of 0e channels]` (affine, include_bias).
    pub bias: Option<Param<Tensor<1>>>,
    /// The running mean of each `0e` channel (not with `instance`).
    pub running_mean: Option<RunningState<Tensor<1>>>,
    /// The running mean squared norm of each irrep instance (not with `instance`).
    pub running_var: Option<RunningState<Tensor<1>>>,
    /// Whether training behaviour is on (burn's `valid()` turns it off).
    pub training: Param<Flag>,
    #[module(skip)]
    config: BatchNormConfig,
}

impl BatchNorm {
    /// The settings the layer was built with.
    ///
    /// ```
    /// use burn::tensor::Device;
    /// let bn = equivariant::nn::BatchNormConfig::new(&"2x1o".parse()?).init(&Device::flex())?;
    /// assert_eq!(bn.config().irreps.to_string(), "2x1o");
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// Normalizes `x`, `[batch, irreps.dim]` (one sample per row).
    ///
    /// # Errors
    ///
    /// As [`forward_samples`](BatchNorm::forward_samples).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn::module::Module;
    /// use equivariant::nn::BatchNormConfig;
    /// let device = Device::flex().autodiff();
    /// // Inference (after valid()) uses the running statistics: mean 0, variance 1.
    /// let bn = BatchNormConfig::new(&"1x0e".parse()?).init(&device)?.valid();
    /// let y = bn.forward(Tensor::<2>::from_floats([[2.0]], &Device::flex()))?;
    /// assert!((y.into_data().try_into_vec::<f32>().unwrap()[0] - 2.0).abs() < 1e-4);
    /// assert!(bn.forward(Tensor::<2>::ones([1, 2], &Device::flex())).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let [batch, dim] = x.dims();
        let y = self.forward_samples(x.reshape([batch, 1, dim]))?;
        Ok(y.reshape([batch, dim]))
    }

    /// Normalizes `x`, `[batch, samples, irreps.dim]` (e3nn's `[batch, ..., dim]` with the
    /// middle axes flattened).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the last axis of `x` is not `irreps.dim`;
    /// [`Error::InvalidArgument`] if its dtype is not the parameters', or if batch
    /// statistics are needed (training, or `instance`) and `x` has no sample to take them
    /// from.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use equivariant::nn::BatchNormConfig;
    /// let device = Device::flex().autodiff();
    /// let bn = BatchNormConfig::new(&"1x1o".parse()?).init(&device)?;
    /// let y = bn.forward_samples(Tensor::<3>::ones([2, 4, 3], &device))?;
    /// assert_eq!(y.dims(), [2, 4, 3]);
    /// assert!(bn.forward_samples(Tensor::<3>::ones([0, 4, 3], &device)).is_err());
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn forward_samples(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let config = &self.config;
        check_width(
            "BatchNorm x [batch, samples, irreps.dim]",
            &x,
            config.irreps.dim(),
        )?;
        for param in [&self.weight, &self.bias].into_iter().flatten() {
            check_dtype("BatchNorm x", &x, &param.val())?;
        }
        let [batch, samples, dim] = x.dims();
        let training = x.device().is_autodiff() && self.training.is_enabled();
        let batch_stats = training || config.instance;
        let empty = if config.instance {
            samples == 0 && batch > 0
        } else {
            batch * samples == 0
        };
        if batch_stats && empty && dim > 0 {
            // Statistics of nothing are NaN, and would overwrite the running ones.
            return Err(Error::InvalidArgument {
                name: "BatchNorm x",
                reason: format!(
                    "no sample to take batch statistics from (shape {:?})",
                    x.dims()
                ),
            });
        }
        let device = x.device();
        let running_mean = (self.running_mean.as_ref()).map(|r| r.value_sync().to_device(&device));
        let running_var = (self.running_var.as_ref()).map(|r| r.value_sync().to_device(&device));
        let channel = |t: &Tensor<1>, start: usize, mul: usize| {
            t.clone().narrow(0, start, mul).reshape([1, 1, mul, 1])
        };
        let (mut new_means, mut new_vars) = (Vec::new(), Vec::new());
        let (mut i_scalar, mut i_feature) = (0, 0);
        let mut fields = Vec::with_capacity(config.irreps.len());
        for (entry, range) in config.irreps.iter().zip(config.irreps.slices()) {
            let (mul, d) = (entry.mul, entry.ir.dim());
            if mul == 0 {
                continue;
            }
            let is_scalar = entry.ir.is_scalar();
            let mut field = x
                .clone()
                .slice([0..batch, 0..samples, range])
                .reshape([batch, samples, mul, d]);
            if is_scalar {
                let mean = match (&running_mean, batch_stats) {
                    (Some(running), false) => channel(running, i_scalar, mul),
                    _ if config.instance => field.clone().mean_dim(1),
                    _ => {
                        let mean = field.clone().mean_dim(1).mean_dim(0);
                        new_means.push(mean.clone().reshape([mul]));
                        mean
                    }
                };
                field = field.sub(mean);
            }
            let variance = match (&running_var, batch_stats) {
                (Some(running), false) => channel(running, i_feature, mul),
                _ => {
                    let squares = field.clone().mul(field.clone());
                    let norms = match config.normalization {
                        Normalization::Norm => squares.sum_dim(3),
                        _ => squares.mean_dim(3),
                    };
                    let per_row = match config.reduce {
                        Reduce::Mean => norms.mean_dim(1),
                        Reduce::Max => norms.max_dim(1),
                    };
                    if config.instance {
                        per_row
                    } else {
                        let variance = per_row.mean_dim(0);
                        new_vars.push(variance.clone().reshape([mul]));
                        variance
                    }
                }
            };
            let mut factor = variance.add_scalar(config.eps).powf_scalar(-0.5);
            if let Some(weight) = &self.weight {
                factor = factor.mul(channel(&weight.val(), i_feature, mul));
            }
            field = field.mul(factor);
            if is_scalar {
                if let Some(bias) = &self.bias {
                    field = field.add(channel(&bias.val(), i_scalar, mul));
                }
                i_scalar += mul;
            }
            i_feature += mul;
            fields.push(field.reshape([batch, samples, mul * d]));
        }
        if training && !config.instance {
            let roll = |state: &Option<RunningState<Tensor<1>>>, stats: Vec<Tensor<1>>| {
                if let (Some(state), false) = (state, stats.is_empty()) {
                    let stat = Tensor::cat(stats, 0).detach();
                    let old = state.value_sync();
                    let old_device = old.device();
                    let new = old
                        .mul_scalar(1.0 - config.momentum)
                        .add(stat.to_device(&old_device).mul_scalar(config.momentum));
                    state.update(new.detach());
                }
            };
            roll(&self.running_mean, new_means);
            roll(&self.running_var, new_vars);
        }
        Ok(match fields.len() {
            0 => x,
            1 => fields.swap_remove(0),
            _ => Tensor::cat(fields, 2),
        })
    }
}
