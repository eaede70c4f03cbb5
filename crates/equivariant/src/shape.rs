//! Checks of the modules' inputs, so that a tensor of the wrong width, row count or dtype
//! is an [`Error`], not a panic inside an op.

use std::any::Any;

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

/// e3nn's `[..., dim]` inputs as rows: `x` `[a, b, dim]` becomes `[a b, dim]` (a vector
/// `[dim]`, one row; rows `[n, dim]` stay `x` itself), with the shape to give back to the
/// result ([`unflatten_rows`]).
///
/// # Errors
///
/// [`Error::InvalidArgument`] naming `what` for a tensor of rank 0 (no irreps axis).
pub(crate) fn flatten_rows<const D: usize>(
    what: &'static str,
    x: Tensor<D>,
) -> Result<(Tensor<2>, [usize; D])> {
    let dims = x.dims();
    let Some((&width, leading)) = dims.split_last() else {
        return Err(rank_zero(what));
    };
    let rows = leading.iter().product();
    // Rows already (the usual case): no reshape, which autodiff would record as an op.
    let rows = match same_rank::<D, 2>(x) {
        Rank::Same(x) => x,
        Rank::Other(x) => x.reshape([rows, width]),
    };
    Ok((rows, dims))
}

/// A tensor of rank `D`, as one of rank `E` where the two are the same.
enum Rank<const D: usize, const E: usize> {
    Same(Tensor<E>),
    Other(Tensor<D>),
}

/// `x` as a `Tensor<E>` when `D == E` (the same type: moved, no op), else `x` back.
fn same_rank<const D: usize, const E: usize>(x: Tensor<D>) -> Rank<D, E> {
    let mut slot = Some(x);
    let same = (&mut slot as &mut dyn Any).downcast_mut::<Option<Tensor<E>>>();
    match (same.and_then(Option::take), slot) {
        (Some(x), _) => Rank::Same(x),
        (None, Some(x)) => Rank::Other(x),
        // `slot` is emptied only by a successful downcast, which returns above.
        (None, None) => unreachable!("a tensor of another rank is never taken"),
    }
}

/// e3nn's 1-D weights `(n,)` as one row of a rank-`D` input, `[1, ..., 1, n]`, which
/// [`flatten_rows_like`] takes as shared.
///
/// # Errors
///
/// [`Error::InvalidArgument`] naming `what` for `D = 0` (no irreps axis).
pub(crate) fn one_row<const D: usize>(what: &'static str, w: Tensor<1>) -> Result<Tensor<D>> {
    let mut shape = [1; D];
    let Some(last) = shape.last_mut() else {
        return Err(rank_zero(what));
    };
    *last = w.dims()[0];
    Ok(w.reshape(shape))
}

/// The inverse of [`flatten_rows`]: `y` `[a b, out]` becomes `[a, b, out]` (`dims`, the
/// input's shape, with its last axis replaced by `y`'s width).
pub(crate) fn unflatten_rows<const D: usize>(y: Tensor<2>, mut dims: [usize; D]) -> Tensor<D> {
    let [rows, width] = y.dims();
    dims[D - 1] = width;
    match same_rank::<2, D>(y) {
        // `[rows, width]` already (for `D = 2`, `dims[0]` is `rows`): no reshape.
        Rank::Same(y) if dims[0] == rows => y,
        Rank::Same(y) => y.reshape(dims),
        Rank::Other(y) => y.reshape(dims),
    }
}

/// `x`'s rows, where `x` is per-row data (`[..., n]` with the leading axes of `like`, a
/// shape from [`flatten_rows`]) or shared (`[1, ..., 1, n]`, one row).
///
/// # Errors
///
/// [`Error::ShapeMismatch`] naming `what` when the leading axes are neither.
pub(crate) fn flatten_rows_like<const D: usize>(
    what: &'static str,
    x: Tensor<D>,
    like: [usize; D],
) -> Result<Tensor<2>> {
    let dims = x.dims();
    let (Some((_, leading)), Some((_, like))) = (dims.split_last(), like.split_last()) else {
        return Err(rank_zero(what));
    };
    if leading != like && leading.iter().any(|&d| d != 1) {
        return Err(Error::ShapeMismatch {
            what,
            expected: like.iter().product(),
            got: leading.iter().product(),
        });
    }
    Ok(flatten_rows(what, x)?.0)
}

/// `Ok` when `x` is `[rows, _]`, else [`Error::ShapeMismatch`] naming `what`.
pub(crate) fn check_rows(what: &'static str, x: &Tensor<2>, rows: usize) -> Result<()> {
    let [got, _] = x.dims();
    mismatch(what, rows, got)
}

/// `Ok` when `x` has the shape `expected`, else [`Error::ShapeMismatch`] naming `what` (the
/// element counts).
pub(crate) fn check_shape<const D: usize>(
    what: &'static str,
    x: &Tensor<D>,
    expected: [usize; D],
) -> Result<()> {
    let dims = x.dims();
    if dims != expected {
        return Err(Error::ShapeMismatch {
            what,
            expected: expected.iter().product(),
            got: dims.iter().product(),
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

fn rank_zero(what: &'static str) -> Error {
    Error::InvalidArgument {
        name: what,
        reason: "a tensor of rank 0 has no irreps axis".into(),
    }
}

/// [`Error::ShapeMismatch`] unless `got == expected`.
pub(crate) fn mismatch(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        what,
        expected,
        got,
    })
}
