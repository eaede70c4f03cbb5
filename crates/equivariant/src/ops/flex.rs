//! Helpers shared by the Flex implementations of the backend extensions: the dtype dispatch
//! ([`dispatch_float!`]) and typed views of [`FlexTensor`] data.

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Element, TensorData};
use equivariant_core::Real;

/// The float types the Flex path runs, with a typed view of a contiguous [`FlexTensor`].
pub(crate) trait FlexFloat: Real + Element {
    const DTYPE: DType;
    fn slice(tensor: &FlexTensor) -> Option<&[Self]>;
}

impl FlexFloat for f32 {
    const DTYPE: DType = DType::F32;
    fn slice(tensor: &FlexTensor) -> Option<&[Self]> {
        tensor.as_slice::<f32>()
    }
}

impl FlexFloat for f64 {
    const DTYPE: DType = DType::F64;
    fn slice(tensor: &FlexTensor) -> Option<&[Self]> {
        tensor.as_slice::<f64>()
    }
}

/// `tensor` as a contiguous tensor of dtype `T` (a cheap clone when it already is one:
/// upstream gradients and transposed inputs can arrive as strided views).
pub(crate) fn contiguous<T: FlexFloat>(op: &str, what: &str, tensor: &FlexTensor) -> FlexTensor {
    assert_eq!(
        tensor.dtype(),
        T::DTYPE,
        "{op}: {what} has dtype {:?}, expected {:?}; all operands must share one dtype",
        tensor.dtype(),
        T::DTYPE
    );
    tensor.to_contiguous()
}

/// The data of a tensor made contiguous by [`contiguous`].
pub(crate) fn data<T: FlexFloat>(tensor: &FlexTensor) -> &[T] {
    T::slice(tensor).expect("made contiguous by `contiguous`")
}

/// A new tensor of shape `shape` owning `data` (zero-copy).
pub(crate) fn from_vec<T: FlexFloat>(
    data: Vec<T>,
    shape: impl Into<burn::tensor::Shape>,
) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// The dtype of `tensor` as one of the float types the kernels run, or a panic naming `op`.
/// Read through [`dispatch_float!`].
pub(crate) fn float_dtype(op: &str, tensor: &FlexTensor) -> DType {
    match tensor.dtype() {
        dtype @ (DType::F32 | DType::F64) => dtype,
        dtype => panic!("{op}: Flex runs f32 and f64, got dtype {dtype:?}"),
    }
}

/// `dispatch_float!(op, tensor, kernel(args...))`: calls the generic Flex kernel
/// `kernel::<T>(args...)` with `T` the float type of `tensor` (f32 or f64), or panics naming
/// `op` for another dtype ([`float_dtype`]). The dtype dispatch of every Flex implementation,
/// written once; it is an expression, the kernel's return value.
macro_rules! dispatch_float {
    ($op:expr, $tensor:expr, $kernel:ident($($arg:expr),* $(,)?)) => {
        match $crate::ops::flex::float_dtype($op, $tensor) {
            ::burn::tensor::DType::F32 => $kernel::<f32>($($arg),*),
            _ => $kernel::<f64>($($arg),*),
        }
    };
}
pub(crate) use dispatch_float;
