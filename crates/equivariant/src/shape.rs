//! Checks of the modules' inputs, so that a tensor of the wrong width, row count or dtype
//! is an [`Error`], not a panic inside an op.

use burn::tensor::Tensor;

use crate::{Error, Result};

/// `Ok` when the last axis of `x` has length `width`, else [`Error::ShapeMismatch`] naming
/// `what`.
pub(crate) fn check_width<const D: usize>(
    what: &'static str,
    x: &Tensor<D>,
    width: usize,
) -> Result<()> {
    mismatch(what, width, x.dims()[D - 1])
}

/// `Ok` when `x` is `[rows, _]`, else [`Error::ShapeMismatch`] naming `what`.
pub(crate) fn check_rows(what: &'static str, x: &Tensor<2>, rows: usize) -> Result<()> {
    let [got, _] = x.dims();
    mismatch(what, rows, got)
}

/// `Ok` when `x` has the shape `expected`, else [`Error::ShapeMismatch`] naming `what` (the
/// element counts).
pub(crate) fn check_shape(what: &'static str, x: &Tensor<2>, expected: [usize; 2]) -> Result<()> {
    let [rows, cols] = x.dims();
    if [rows, cols] != expected {
        return Err(Error::ShapeMismatch {
            what,
            expected: expected[0] * expected[1],
            got: rows * cols,
        });
    }
    Ok(())
}

/// `Ok` when `x` has the dtype of `like`, else [`Error::InvalidArgument`] naming `what`:
/// every operand of an op shares one float type.
pub(crate) fn check_dtype<const D: usize, const E: usize>(
    what: &'static str,
    x: &Tensor<D>,
    like: &Tensor<E>,
) -> Result<()> {
    if x.dtype() == like.dtype() {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        name: what,
        reason: format!(
            "dtype {:?}, but the input is {:?}; all operands share one dtype",
            x.dtype(),
            like.dtype()
        ),
    })
}

/// `Ok` when every value of `x` is finite, else [`Error::NonFinite`] with the first
/// offending index (row-major). One pass over `x`, read back only when it fails.
pub(crate) fn check_finite<const D: usize>(what: &'static str, x: &Tensor<D>) -> Result<()> {
    if x.clone().is_finite().all().into_scalar::<bool>() {
        return Ok(());
    }
    let index = x
        .to_data()
        .iter::<f64>()
        .position(|v| !v.is_finite())
        .unwrap_or(0);
    Err(Error::NonFinite { what, index })
}

fn mismatch(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        what,
        expected,
        got,
    })
}
