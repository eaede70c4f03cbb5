//! A parameter's values on the host, flattened, in its dtype: the optimizer's and the
//! weight average's elementwise arithmetic runs on them in plain loops. On a potential's
//! small parameters, one burn op per term of AdamW's update (about fifteen a parameter)
//! cost more than the arithmetic: 0.07 ms of a 4 ms training step, as much again for the
//! average.

use burn::tensor::{DType, Device, Tensor, TensorData};

/// Flattened values in `f32` or `f64`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Values {
    /// The values of `t`, flattened (`f64` stays `f64`; anything else becomes `f32`).
    pub(crate) fn of<const D: usize>(t: Tensor<D>) -> Self {
        let data = t.into_data();
        match data.dtype() {
            DType::F64 => Values::F64(data.try_into_vec::<f64>().expect("f64 data")),
            _ => Values::F32(
                data.convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 data"),
            ),
        }
    }

    /// `f64` values, or `f32` ones, as `dtype` asks (`f64`: `F64`; else `F32`).
    pub(crate) fn from_f64s(values: Vec<f64>, dtype: DType) -> Self {
        match dtype {
            DType::F64 => Values::F64(values),
            _ => Values::F32(values.into_iter().map(|v| v as f32).collect()),
        }
    }

    /// Zeros of this length and dtype.
    pub(crate) fn zeros_like(&self) -> Self {
        match self {
            Values::F32(v) => Values::F32(vec![0.0; v.len()]),
            Values::F64(v) => Values::F64(vec![0.0; v.len()]),
        }
    }

    /// The number of values.
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
        }
    }

    /// The dtype of the values.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Values::F32(_) => DType::F32,
            Values::F64(_) => DType::F64,
        }
    }

    /// `sum x^2`, in `f64`, in order.
    pub(crate) fn sum_squares(&self) -> f64 {
        match self {
            Values::F32(v) => v.iter().map(|&x| (x as f64) * (x as f64)).sum(),
            Values::F64(v) => v.iter().map(|&x| x * x).sum(),
        }
    }

    /// Each value times `c` (rounded to the values' dtype first).
    pub(crate) fn scale(&mut self, c: f64) {
        match self {
            Values::F32(v) => v.iter_mut().for_each(|x| *x *= c as f32),
            Values::F64(v) => v.iter_mut().for_each(|x| *x *= c),
        }
    }

    /// The values as `f32` (converted if they are `f64`).
    pub(crate) fn into_f32(self) -> Vec<f32> {
        match self {
            Values::F32(v) => v,
            Values::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        }
    }

    /// The values as `f64` (widened if they are `f32`).
    pub(crate) fn into_f64(self) -> Vec<f64> {
        match self {
            Values::F32(v) => v.into_iter().map(f64::from).collect(),
            Values::F64(v) => v,
        }
    }

    /// The values little-endian, as safetensors stores them.
    pub(crate) fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Values::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Values::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// A tensor of shape `dims` on `device` holding the values, in their dtype.
    pub(crate) fn into_tensor<const D: usize>(
        self,
        dims: [usize; D],
        device: &Device,
    ) -> Tensor<D> {
        match self {
            Values::F32(v) => Tensor::from_data(TensorData::new(v, dims), (device, DType::F32)),
            Values::F64(v) => Tensor::from_data(TensorData::new(v, dims), (device, DType::F64)),
        }
    }
}
