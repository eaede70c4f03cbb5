//! Equivariance checks for any function of tensors, e3nn's `e3nn.util.test`:
//! [`equivariance_error`] and [`assert_equivariant`].
//!
//! A function `f` is equivariant when transforming its inputs transforms its outputs the
//! same way: `f(D_in(g) x) = D_out(g) f(x)` for every rotation, inversion and (for point
//! coordinates) translation `g`.

use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use equivariant_core::o3::{Irreps, Matrix3, rand_matrix};
use equivariant_core::{Error, Result};
use rand::Rng;

/// How one argument or output transforms.
///
/// ```
/// use equivariant::util::test::Representation;
/// let features = Representation::Irreps("1x0e + 1x1o".parse()?);
/// assert_eq!(features.dim(), Some(4));
/// assert_eq!(Representation::CartesianPoints.dim(), Some(3));
/// assert_eq!(Representation::Invariant.dim(), None);
/// # Ok::<(), equivariant::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Representation {
    /// Features `[n, irreps.dim]`, transformed by the Wigner D matrices of the rotation
    /// (with parity).
    Irreps(Irreps),
    /// Point coordinates `[n, 3]`: rotated (inverted) and translated (e3nn's
    /// `"cartesian_points"`).
    CartesianPoints,
    /// Left unchanged (e.g. a graph's edge indices given as floats, or a time).
    Invariant,
}

impl Representation {
    /// The width of a tensor of this kind, if fixed.
    ///
    /// ```
    /// use equivariant::util::test::Representation;
    /// assert_eq!(Representation::Irreps("2x1o".parse()?).dim(), Some(6));
    /// # Ok::<(), equivariant::Error>(())
    /// ```
    pub fn dim(&self) -> Option<usize> {
        match self {
            Representation::Irreps(irreps) => Some(irreps.dim()),
            Representation::CartesianPoints => Some(3),
            Representation::Invariant => None,
        }
    }
}

/// The largest error found for one kind of transformation.
///
/// ```
/// use equivariant::util::test::TransformationError;
/// let e = TransformationError { parity: true, translation: false, max_error: 1e-7 };
/// assert!(e.max_error < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformationError {
    /// Whether the transformation included the inversion `x -> -x`.
    pub parity: bool,
    /// Whether point coordinates were also translated.
    pub translation: bool,
    /// `max |f(g x) - g f(x)|` over the trials, outputs and entries.
    pub max_error: f64,
}

/// What [`equivariance_error`] tries.
///
/// ```
/// use equivariant::util::test::Trials;
/// let t = Trials::default();
/// assert_eq!((t.ntrials, t.do_parity, t.do_translation), (1, true, true));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trials {
    /// Random rotations per kind of transformation (default 1).
    pub ntrials: usize,
    /// Also try rotations composed with the inversion (default `true`).
    pub do_parity: bool,
    /// Also translate point coordinates, when there are any (default `true`).
    pub do_translation: bool,
}

impl Default for Trials {
    fn default() -> Self {
        Trials {
            ntrials: 1,
            do_parity: true,
            do_translation: true,
        }
    }
}

/// e3nn's `equivariance_error`: for each kind of transformation `g` (rotation; with
/// parity, rotation times inversion; with translation, also shifted points), the largest
/// `|f(g x) - g f(x)|` over `trials.ntrials` random rotations.
///
/// `func` maps the arguments `args_in` (one tensor per entry of `irreps_in`) to its
/// outputs (one per entry of `irreps_out`). Computation is in the arguments' dtype.
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if the arguments or outputs do not match their
/// representations in number or width.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use equivariant::util::test::{equivariance_error, Representation, Trials};
/// use rand::SeedableRng;
///
/// // The cross product of two vectors is a pseudovector (1e).
/// let cross = |args: &[Tensor<2>]| {
///     let (a, b) = (args[0].clone(), args[1].clone());
///     let c = |t: &Tensor<2>, i: usize| t.clone().narrow(1, i, 1);
///     vec![Tensor::cat(vec![
///         c(&a, 1) * c(&b, 2) - c(&a, 2) * c(&b, 1),
///         c(&a, 2) * c(&b, 0) - c(&a, 0) * c(&b, 2),
///         c(&a, 0) * c(&b, 1) - c(&a, 1) * c(&b, 0),
///     ], 1)]
/// };
/// let device = Device::flex();
/// let vector = Representation::Irreps("1o".parse()?);
/// let args = [Tensor::<2>::ones([4, 3], &device), Tensor::<2>::ones([4, 3], &device).cumsum(1)];
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let right = equivariance_error(cross, &args, &[vector.clone(), vector.clone()],
///     &[Representation::Irreps("1e".parse()?)], Trials::default(), &mut rng)?;
/// assert!(right.iter().all(|e| e.max_error < 1e-4));
/// // Called a vector (1o), it fails under parity.
/// let wrong = equivariance_error(cross, &args, &[vector.clone(), vector.clone()],
///     &[vector], Trials::default(), &mut rng)?;
/// assert!(wrong.iter().any(|e| e.parity && e.max_error > 1.0));
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn equivariance_error<F, R>(
    func: F,
    args_in: &[Tensor<2>],
    irreps_in: &[Representation],
    irreps_out: &[Representation],
    trials: Trials,
    rng: &mut R,
) -> Result<Vec<TransformationError>>
where
    F: Fn(&[Tensor<2>]) -> Vec<Tensor<2>>,
    R: Rng + ?Sized,
{
    check_widths("args_in", args_in, irreps_in)?;
    let has_points = irreps_in.contains(&Representation::CartesianPoints);
    let parities: &[bool] = if trials.do_parity {
        &[false, true]
    } else {
        &[false]
    };
    let translations: &[bool] = if trials.do_translation && has_points {
        &[false, true]
    } else {
        &[false]
    };
    let mut errors = Vec::new();
    for &parity in parities {
        for &translation in translations {
            let mut max_error = 0.0f64;
            for _ in 0..trials.ntrials {
                let mut r = rand_matrix(rng);
                if parity {
                    r = r.map(|row| row.map(|x| -x));
                }
                let shift = if translation {
                    [0; 3].map(|_| rng.random::<f64>() * 2.0 - 1.0)
                } else {
                    [0.0; 3]
                };
                let transformed: Vec<Tensor<2>> = args_in
                    .iter()
                    .zip(irreps_in)
                    .map(|(x, rep)| transform(x, rep, &r, shift))
                    .collect::<Result<_>>()?;
                let out_of_transformed = func(&transformed);
                let out = func(args_in);
                check_widths("outputs", &out, irreps_out)?;
                check_widths("outputs", &out_of_transformed, irreps_out)?;
                for ((y, y_g), rep) in out.iter().zip(&out_of_transformed).zip(irreps_out) {
                    let g_y = transform(y, rep, &r, shift)?;
                    let diff = g_y.sub(y_g.clone()).abs().max();
                    max_error = max_error.max(diff.cast(DType::F64).into_scalar::<f64>());
                }
            }
            errors.push(TransformationError {
                parity,
                translation,
                max_error,
            });
        }
    }
    Ok(errors)
}

/// e3nn's `assert_equivariant`: [`equivariance_error`] on `args_in` (or, if `None`,
/// random arguments from [`random_args`], 5 rows each, on `device` in `dtype`), then an
/// error if any transformation's error exceeds `tolerance` (default: `1e-3` for f32,
/// `1e-10` for f64, e3nn's). Returns the errors.
///
/// # Errors
///
/// [`Error::InvalidArgument`] naming the failing transformation and its error;
/// [`equivariance_error`]'s errors.
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::o3::FullyConnectedTensorProduct;
/// use equivariant::util::test::{assert_equivariant, Representation};
///
/// let device = Device::flex();
/// let (a, b, c) = ("2x0e + 1x1o".parse()?, "1x1o + 1x2e".parse()?, "1x0e + 2x1o + 1x1e".parse()?);
/// let tp = FullyConnectedTensorProduct::new(&a, &b, &c).init(&device)?;
/// let irreps_in = [Representation::Irreps(a), Representation::Irreps(b)];
/// assert_equivariant(
///     |x| vec![tp.forward(x[0].clone(), x[1].clone(), None).unwrap()],
///     None, &irreps_in, &[Representation::Irreps(c)], None, &device, DType::F32, 0,
/// )?;
/// # Ok::<(), equivariant::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn assert_equivariant<F>(
    func: F,
    args_in: Option<&[Tensor<2>]>,
    irreps_in: &[Representation],
    irreps_out: &[Representation],
    tolerance: Option<f64>,
    device: &Device,
    dtype: DType,
    seed: u64,
) -> Result<Vec<TransformationError>>
where
    F: Fn(&[Tensor<2>]) -> Vec<Tensor<2>>,
{
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let random;
    let args = match args_in {
        Some(args) => args,
        None => {
            random = random_args(irreps_in, 5, device, dtype);
            &random[..]
        }
    };
    let dtype = args.first().map_or(dtype, |x| x.dtype());
    let tolerance = tolerance.unwrap_or(if dtype == DType::F64 { 1e-10 } else { 1e-3 });
    let errors = equivariance_error(
        func,
        args,
        irreps_in,
        irreps_out,
        Trials::default(),
        &mut rng,
    )?;
    if let Some(bad) = errors
        .iter()
        .find(|e| e.max_error.is_nan() || e.max_error > tolerance)
    {
        return Err(Error::InvalidArgument {
            name: "func",
            reason: format!(
                "not equivariant: error {:e} > {tolerance:e} under a rotation{}{}",
                bad.max_error,
                if bad.parity { " with inversion" } else { "" },
                if bad.translation {
                    " and a translation"
                } else {
                    ""
                },
            ),
        });
    }
    Ok(errors)
}

/// Random arguments for `irreps_in`: `[rows, dim]` standard normal entries (`[rows, 1]` for
/// [`Representation::Invariant`]).
///
/// ```
/// use burn::tensor::{DType, Device};
/// use equivariant::util::test::{random_args, Representation};
/// let args = random_args(&[Representation::CartesianPoints], 7, &Device::flex(), DType::F32);
/// assert_eq!(args[0].dims(), [7, 3]);
/// ```
pub fn random_args(
    irreps_in: &[Representation],
    rows: usize,
    device: &Device,
    dtype: DType,
) -> Vec<Tensor<2>> {
    irreps_in
        .iter()
        .map(|rep| {
            let width = rep.dim().unwrap_or(1);
            Tensor::random(
                [rows, width],
                Distribution::Normal(0.0, 1.0),
                (device, dtype),
            )
        })
        .collect()
}

/// `g x` for the representation: `x D^T` (D from the rotation with parity), `x R^T + t`
/// for points, `x` for invariants.
fn transform(
    x: &Tensor<2>,
    rep: &Representation,
    r: &Matrix3,
    shift: [f64; 3],
) -> Result<Tensor<2>> {
    let (device, dtype) = (x.device(), x.dtype());
    let matrix = |values: Vec<f64>, d: usize| {
        Tensor::<2>::from_data(TensorData::new(values, [d, d]), (&device, DType::F64)).cast(dtype)
    };
    Ok(match rep {
        Representation::Invariant => x.clone(),
        Representation::Irreps(irreps) => {
            let d = irreps.dim();
            x.clone()
                .matmul(matrix(irreps.d_from_matrix(r)?, d).transpose())
        }
        Representation::CartesianPoints => {
            let rotated = x.clone().matmul(matrix(r.concat(), 3).transpose());
            let t = Tensor::<2>::from_data(
                TensorData::new(shift.to_vec(), [1, 3]),
                (&device, DType::F64),
            );
            rotated.add(t.cast(dtype))
        }
    })
}

/// An error unless the tensors number the representations (`expected`/`got` count tensors)
/// and have their widths (`expected`/`got` are widths).
fn check_widths(what: &'static str, xs: &[Tensor<2>], reps: &[Representation]) -> Result<()> {
    if xs.len() != reps.len() {
        return Err(Error::ShapeMismatch {
            what,
            expected: reps.len(),
            got: xs.len(),
        });
    }
    for (x, rep) in xs.iter().zip(reps) {
        let [_, width] = x.dims();
        if let Some(dim) = rep.dim().filter(|&d| d != width) {
            return Err(Error::ShapeMismatch {
                what,
                expected: dim,
                got: width,
            });
        }
    }
    Ok(())
}
