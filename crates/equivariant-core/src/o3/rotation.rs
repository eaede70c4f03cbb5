//! Rotations of 3D space in every parametrization e3nn has: matrices, Y-X-Y Euler angles,
//! quaternions and axis-angle, with the conversions between them.
//!
//! Every function follows the algorithm of e3nn 0.6.0's `e3nn/o3/_rotation.py`, so results
//! agree with e3nn to rounding, including its branch choices:
//!
//! - Matrices are row-major, `r[i][j]`, and act on column vectors: `v' = R v`.
//! - Euler angles are Y-X-Y: `angles_to_matrix(a, b, c) = Ry(a) Rx(b) Ry(c)`, with
//!   `alpha, gamma` in `[-pi, pi]` and `beta` in `[0, pi]` when produced by
//!   [`matrix_to_angles`].
//! - `y` is the polar axis: [`angles_to_xyz`]`(a, b) = (sin b sin a, cos b, sin b cos a)`.
//! - Quaternions are `(w, x, y, z)`; [`compose_quaternion`]`(q1, q2)` is the Hamilton product
//!   `q1 q2`, the rotation that applies `q2` first.
//! - Axis-angle pairs rotate counterclockwise by `angle` about the unit `axis`
//!   (right-hand rule).
//! - Vectors are normalized as `v / max(|v|, 1e-12)` (torch's `normalize`), so a zero
//!   axis gives a finite result instead of NaN.
//!
//! All functions act on a single rotation; map over slices for batches.
//!
//! ```
//! use equivariant_core::o3::{angles_to_matrix, matrix_to_angles, matvec3};
//! let r = angles_to_matrix(0.3, 1.2, -0.5);
//! let (a, b, c) = matrix_to_angles(&r)?;
//! assert!((a - 0.3).abs() < 1e-12 && (b - 1.2).abs() < 1e-12 && (c + 0.5).abs() < 1e-12);
//! // R(a, b, 0) maps the y axis to angles_to_xyz(a, b).
//! let y = matvec3(&angles_to_matrix(0.3, 1.2, 0.0), [0.0, 1.0, 0.0]);
//! let p = equivariant_core::o3::angles_to_xyz(0.3, 1.2);
//! assert!((0..3).all(|i| (y[i] - p[i]).abs() < 1e-12));
//! # Ok::<(), equivariant_core::Error>(())
//! ```

use std::f64::consts::PI;

use rand::Rng;

use crate::{Error, Result};

/// A 3x3 matrix, row-major: `m[i][j]` is row `i`, column `j`.
pub type Matrix3 = [[f64; 3]; 3];

/// A quaternion `(w, x, y, z)`: scalar part first. Unit quaternions represent rotations;
/// `q` and `-q` represent the same rotation.
pub type Quaternion = [f64; 4];

/// The largest `max |R R^T - I|` that the matrix-consuming conversions
/// ([`matrix_to_angles`], [`matrix_to_quaternion`], [`matrix_to_axis_angle`]) accept.
///
/// `1e-5` matches the relative tolerance of the `torch.allclose(det(R), 1)` check e3nn
/// performs, and leaves room for matrices computed in f32 and widened to f64.
///
/// ```
/// use equivariant_core::o3::{check_orthogonal, rand_matrix, ORTHOGONALITY_TOLERANCE};
/// use rand::SeedableRng;
/// let r = rand_matrix(&mut rand::rngs::StdRng::seed_from_u64(0));
/// assert!(check_orthogonal(&r, ORTHOGONALITY_TOLERANCE).is_ok());
/// ```
pub const ORTHOGONALITY_TOLERANCE: f64 = 1e-5;

/// The `eps` of torch's `normalize`: vectors are divided by `max(|v|, NORMALIZE_EPS)`.
const NORMALIZE_EPS: f64 = 1e-12;

// ---------------------------------------------------------------------------------------
// Small matrix helpers
// ---------------------------------------------------------------------------------------

/// The matrix product `a b`: `(a b)[i][j] = sum_k a[i][k] b[k][j]`.
///
/// ```
/// use equivariant_core::o3::{matmul3, matrix_z};
/// let r = matmul3(&matrix_z(0.25), &matrix_z(0.5));
/// let expected = matrix_z(0.75);
/// assert!((0..3).all(|i| (0..3).all(|j| (r[i][j] - expected[i][j]).abs() < 1e-15)));
/// ```
pub fn matmul3(a: &Matrix3, b: &Matrix3) -> Matrix3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

/// The transpose `a^T`: `a^T[i][j] = a[j][i]`. For a rotation this is its inverse.
///
/// ```
/// use equivariant_core::o3::transpose3;
/// let a = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
/// assert_eq!(transpose3(&a)[0], [1.0, 4.0, 7.0]);
/// ```
pub fn transpose3(a: &Matrix3) -> Matrix3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = a[j][i];
        }
    }
    out
}

/// The determinant, by cofactor expansion along the first row. `+1` for a rotation, `-1`
/// for a rotation composed with a reflection.
///
/// ```
/// use equivariant_core::o3::{det3, matrix_x};
/// assert!((det3(&matrix_x(0.7)) - 1.0).abs() < 1e-15);
/// assert_eq!(det3(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]), -1.0);
/// ```
pub fn det3(a: &Matrix3) -> f64 {
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
}

/// The matrix-vector product `a v`: `(a v)[i] = sum_j a[i][j] v[j]`.
///
/// ```
/// use equivariant_core::o3::{matrix_z, matvec3};
/// // A quarter turn about z takes x to y.
/// let v = matvec3(&matrix_z(std::f64::consts::FRAC_PI_2), [1.0, 0.0, 0.0]);
/// assert!(v[0].abs() < 1e-15 && (v[1] - 1.0).abs() < 1e-15 && v[2] == 0.0);
/// ```
pub fn matvec3(a: &Matrix3, v: [f64; 3]) -> [f64; 3] {
    [
        a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2],
        a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
        a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2],
    ]
}

/// `max_ij |(a a^T - I)[i][j]|`: zero for an orthogonal matrix. NaN if `a` has a
/// non-finite entry.
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, orthogonality_error};
/// assert!(orthogonality_error(&angles_to_matrix(1.0, 2.0, 3.0)) < 1e-15);
/// let scaled = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
/// assert_eq!(orthogonality_error(&scaled), 3.0);
/// ```
pub fn orthogonality_error(a: &Matrix3) -> f64 {
    let aat = matmul3(a, &transpose3(a));
    let mut worst = 0.0f64;
    for (i, row) in aat.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            let d = (x - if i == j { 1.0 } else { 0.0 }).abs();
            if d.is_nan() {
                return f64::NAN;
            }
            worst = worst.max(d);
        }
    }
    worst
}

/// Checks that `r` is orthogonal, `max |R R^T - I| <= tol`, and returns its determinant
/// (close to `+1` for a rotation, `-1` for an improper rotation).
///
/// # Errors
/// [`Error::NonFinite`] if an entry is NaN or infinite (index `3 i + j`);
/// [`Error::NotOrthogonal`] if the deviation exceeds `tol`.
///
/// ```
/// use equivariant_core::o3::{check_orthogonal, ORTHOGONALITY_TOLERANCE};
/// use equivariant_core::Error;
/// let reflection = [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
/// assert_eq!(check_orthogonal(&reflection, ORTHOGONALITY_TOLERANCE)?, -1.0);
/// let shear = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
/// let err = check_orthogonal(&shear, ORTHOGONALITY_TOLERANCE).unwrap_err();
/// assert!(matches!(err, Error::NotOrthogonal { .. }));
/// # Ok::<(), Error>(())
/// ```
pub fn check_orthogonal(r: &Matrix3, tol: f64) -> Result<f64> {
    if let Some(index) = r.iter().flatten().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "rotation matrix",
            index,
        });
    }
    let deviation = orthogonality_error(r);
    // Huge finite entries can overflow to a NaN deviation; NaN never passes.
    if deviation.is_nan() || tol.is_nan() || deviation > tol {
        return Err(Error::NotOrthogonal { deviation });
    }
    Ok(det3(r))
}

/// Checks that `r` is a proper rotation (orthogonal within [`ORTHOGONALITY_TOLERANCE`],
/// determinant `+1`).
fn check_rotation(r: &Matrix3) -> Result<()> {
    let det = check_orthogonal(r, ORTHOGONALITY_TOLERANCE)?;
    if det < 0.0 {
        return Err(Error::NotProperRotation { det });
    }
    Ok(())
}

/// `v / max(|v|, 1e-12)`, torch's `normalize`.
pub(crate) fn normalize(v: [f64; 3]) -> [f64; 3] {
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let d = norm.max(NORMALIZE_EPS);
    [v[0] / d, v[1] / d, v[2] / d]
}

// ---------------------------------------------------------------------------------------
// Elementary rotations
// ---------------------------------------------------------------------------------------

/// Rotation by `angle` about the x axis:
/// `[[1, 0, 0], [0, cos, -sin], [0, sin, cos]]`.
///
/// ```
/// use equivariant_core::o3::{matrix_x, matvec3};
/// // A quarter turn about x takes y to z.
/// let v = matvec3(&matrix_x(std::f64::consts::FRAC_PI_2), [0.0, 1.0, 0.0]);
/// assert!(v[1].abs() < 1e-15 && (v[2] - 1.0).abs() < 1e-15);
/// ```
pub fn matrix_x(angle: f64) -> Matrix3 {
    let (s, c) = angle.sin_cos();
    [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
}

/// Rotation by `angle` about the y axis:
/// `[[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]]`.
///
/// ```
/// use equivariant_core::o3::{matrix_y, matvec3};
/// // A quarter turn about y takes z to x.
/// let v = matvec3(&matrix_y(std::f64::consts::FRAC_PI_2), [0.0, 0.0, 1.0]);
/// assert!((v[0] - 1.0).abs() < 1e-15 && v[2].abs() < 1e-15);
/// ```
pub fn matrix_y(angle: f64) -> Matrix3 {
    let (s, c) = angle.sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}

/// Rotation by `angle` about the z axis:
/// `[[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]`.
///
/// ```
/// use equivariant_core::o3::{matrix_z, matvec3};
/// // A quarter turn about z takes x to y.
/// let v = matvec3(&matrix_z(std::f64::consts::FRAC_PI_2), [1.0, 0.0, 0.0]);
/// assert!(v[0].abs() < 1e-15 && (v[1] - 1.0).abs() < 1e-15);
/// ```
pub fn matrix_z(angle: f64) -> Matrix3 {
    let (s, c) = angle.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

// ---------------------------------------------------------------------------------------
// Euler angles
// ---------------------------------------------------------------------------------------

/// The rotation matrix of Y-X-Y Euler angles: `Ry(alpha) Rx(beta) Ry(gamma)`
/// ([`matrix_y`], [`matrix_x`]); `gamma` is applied first.
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, matmul3, matrix_x, matrix_y};
/// let r = angles_to_matrix(0.1, 0.2, 0.3);
/// let expected = matmul3(&matmul3(&matrix_y(0.1), &matrix_x(0.2)), &matrix_y(0.3));
/// assert_eq!(r, expected);
/// ```
pub fn angles_to_matrix(alpha: f64, beta: f64, gamma: f64) -> Matrix3 {
    matmul3(
        &matmul3(&matrix_y(alpha), &matrix_x(beta)),
        &matrix_y(gamma),
    )
}

/// [`matrix_to_angles`] without the orthogonality check, for matrices that are rotations
/// by construction (a NaN input gives NaN angles).
fn matrix_to_angles_unchecked(r: &Matrix3) -> (f64, f64, f64) {
    // R y = angles_to_xyz(alpha, beta): the image of the polar axis fixes alpha and beta.
    let (alpha, beta) = xyz_to_angles([r[0][1], r[1][1], r[2][1]]);
    // What is left, R(alpha, beta, 0)^T R, is Ry(gamma).
    let rest = matmul3(&transpose3(&angles_to_matrix(alpha, beta, 0.0)), r);
    let gamma = rest[0][2].atan2(rest[0][0]);
    (alpha, beta, gamma)
}

/// The Y-X-Y Euler angles `(alpha, beta, gamma)` of a rotation matrix, inverse of
/// [`angles_to_matrix`], by e3nn's algorithm: `(alpha, beta) = xyz_to_angles(R (0, 1, 0))`,
/// then `gamma = atan2(R'[0][2], R'[0][0])` with `R' = angles_to_matrix(alpha, beta, 0)^T R`.
///
/// `alpha` and `gamma` lie in `[-pi, pi]`, `beta` in `[0, pi]`. At `beta = 0` or `pi` only
/// `alpha + gamma` (resp. `alpha - gamma`) is defined; the split follows the signs of the
/// tiny entries of `R (0, 1, 0)`, as in e3nn.
///
/// # Errors
/// [`Error::NonFinite`] or [`Error::NotOrthogonal`] (see [`check_orthogonal`], tolerance
/// [`ORTHOGONALITY_TOLERANCE`]); [`Error::NotProperRotation`] if the determinant is
/// negative.
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, matrix_to_angles};
/// let (a, b, c) = matrix_to_angles(&angles_to_matrix(-2.0, 0.5, 3.0))?;
/// assert!((a + 2.0).abs() < 1e-12 && (b - 0.5).abs() < 1e-12 && (c - 3.0).abs() < 1e-12);
/// let reflection = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
/// assert!(matrix_to_angles(&reflection).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn matrix_to_angles(r: &Matrix3) -> Result<(f64, f64, f64)> {
    check_rotation(r)?;
    Ok(matrix_to_angles_unchecked(r))
}

/// The Euler angles of the identity: `(0, 0, 0)`.
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, identity_angles};
/// let (a, b, c) = identity_angles();
/// assert_eq!(angles_to_matrix(a, b, c), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
/// ```
pub fn identity_angles() -> (f64, f64, f64) {
    (0.0, 0.0, 0.0)
}

/// Euler angles of a Haar-uniform random rotation: `alpha = 2 pi u1`, `beta =
/// acos(2 u2 - 1)`, `gamma = 2 pi u3` with `u1, u2, u3` uniform in `[0, 1)`, as e3nn.
///
/// ```
/// use equivariant_core::o3::rand_angles;
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
/// let (a, b, c) = rand_angles(&mut rng);
/// let tau = 2.0 * std::f64::consts::PI;
/// assert!((0.0..tau).contains(&a) && (0.0..=std::f64::consts::PI).contains(&b));
/// assert!((0.0..tau).contains(&c));
/// ```
pub fn rand_angles<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64, f64) {
    let alpha = 2.0 * PI * rng.random::<f64>();
    let gamma = 2.0 * PI * rng.random::<f64>();
    let beta = (2.0 * rng.random::<f64>() - 1.0).acos();
    (alpha, beta, gamma)
}

/// A Haar-uniform random rotation matrix: [`angles_to_matrix`] of [`rand_angles`].
///
/// ```
/// use equivariant_core::o3::{det3, orthogonality_error, rand_matrix};
/// use rand::SeedableRng;
/// let r = rand_matrix(&mut rand::rngs::StdRng::seed_from_u64(1));
/// assert!(orthogonality_error(&r) < 1e-14 && (det3(&r) - 1.0).abs() < 1e-14);
/// ```
pub fn rand_matrix<R: Rng + ?Sized>(rng: &mut R) -> Matrix3 {
    let (a, b, c) = rand_angles(rng);
    angles_to_matrix(a, b, c)
}

/// Composes Euler angles: the angles of `R(a1, b1, c1) R(a2, b2, c2)` (the second
/// rotation is applied first), computed as e3nn by [`matrix_to_angles`] of the product.
///
/// Infallible: the product is a rotation by construction (NaN inputs give NaN outputs).
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, compose_angles, matmul3};
/// let (a, b, c) = compose_angles(0.1, 0.2, 0.3, 1.0, 2.0, 3.0);
/// let r = angles_to_matrix(a, b, c);
/// let expected = matmul3(&angles_to_matrix(0.1, 0.2, 0.3), &angles_to_matrix(1.0, 2.0, 3.0));
/// assert!((0..3).all(|i| (0..3).all(|j| (r[i][j] - expected[i][j]).abs() < 1e-12)));
/// ```
pub fn compose_angles(a1: f64, b1: f64, c1: f64, a2: f64, b2: f64, c2: f64) -> (f64, f64, f64) {
    let r = matmul3(&angles_to_matrix(a1, b1, c1), &angles_to_matrix(a2, b2, c2));
    matrix_to_angles_unchecked(&r)
}

/// Euler angles of the inverse rotation: `(-gamma, -beta, -alpha)`, since
/// `(Ry(a) Rx(b) Ry(c))^T = Ry(-c) Rx(-b) Ry(-a)`. Note `beta` becomes negative; use
/// [`compose_angles`] or [`matrix_to_angles`] to bring angles back to `beta >= 0`.
///
/// ```
/// use equivariant_core::o3::{angles_to_matrix, inverse_angles, transpose3};
/// let (a, b, c) = inverse_angles(0.1, 0.2, 0.3);
/// assert_eq!((a, b, c), (-0.3, -0.2, -0.1));
/// let r = angles_to_matrix(a, b, c);
/// let expected = transpose3(&angles_to_matrix(0.1, 0.2, 0.3));
/// assert!((0..3).all(|i| (0..3).all(|j| (r[i][j] - expected[i][j]).abs() < 1e-15)));
/// ```
pub fn inverse_angles(alpha: f64, beta: f64, gamma: f64) -> (f64, f64, f64) {
    (-gamma, -beta, -alpha)
}

// ---------------------------------------------------------------------------------------
// Quaternions
// ---------------------------------------------------------------------------------------

/// The identity quaternion `(1, 0, 0, 0)`.
///
/// ```
/// use equivariant_core::o3::{compose_quaternion, identity_quaternion};
/// let q = [0.5, 0.5, 0.5, 0.5];
/// assert_eq!(compose_quaternion(identity_quaternion(), q), q);
/// ```
pub fn identity_quaternion() -> Quaternion {
    [1.0, 0.0, 0.0, 0.0]
}

/// A unit quaternion of a Haar-uniform random rotation: [`angles_to_quaternion`] of
/// [`rand_angles`] (as e3nn, so its sign is not uniformly distributed).
///
/// ```
/// use equivariant_core::o3::rand_quaternion;
/// use rand::SeedableRng;
/// let q = rand_quaternion(&mut rand::rngs::StdRng::seed_from_u64(2));
/// assert!((q.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-14);
/// ```
pub fn rand_quaternion<R: Rng + ?Sized>(rng: &mut R) -> Quaternion {
    let (a, b, c) = rand_angles(rng);
    angles_to_quaternion(a, b, c)
}

/// The Hamilton product `q1 q2`: the rotation applying `q2` first, then `q1`. With
/// `q = (w, v)`: `q1 q2 = (w1 w2 - v1.v2, w1 v2 + w2 v1 + v1 x v2)`.
///
/// ```
/// use equivariant_core::o3::{compose_quaternion, matmul3, quaternion_to_matrix};
/// let (q1, q2) = ([0.6, 0.8, 0.0, 0.0], [0.6, 0.0, 0.0, 0.8]);
/// let r = quaternion_to_matrix(compose_quaternion(q1, q2));
/// let expected = matmul3(&quaternion_to_matrix(q1), &quaternion_to_matrix(q2));
/// assert!((0..3).all(|i| (0..3).all(|j| (r[i][j] - expected[i][j]).abs() < 1e-12)));
/// ```
pub fn compose_quaternion(q1: Quaternion, q2: Quaternion) -> Quaternion {
    [
        q1[0] * q2[0] - q1[1] * q2[1] - q1[2] * q2[2] - q1[3] * q2[3],
        q1[1] * q2[0] + q1[0] * q2[1] + q1[2] * q2[3] - q1[3] * q2[2],
        q1[0] * q2[2] - q1[1] * q2[3] + q1[2] * q2[0] + q1[3] * q2[1],
        q1[0] * q2[3] + q1[1] * q2[2] - q1[2] * q2[1] + q1[3] * q2[0],
    ]
}

/// The conjugate `(w, -x, -y, -z)`: the inverse of a unit quaternion (only unit
/// quaternions, as in e3nn; it is not divided by `|q|^2`).
///
/// ```
/// use equivariant_core::o3::{compose_quaternion, inverse_quaternion};
/// let q = [0.5, -0.5, 0.5, 0.5];
/// assert_eq!(compose_quaternion(q, inverse_quaternion(q)), [1.0, 0.0, 0.0, 0.0]);
/// ```
pub fn inverse_quaternion(q: Quaternion) -> Quaternion {
    [q[0], -q[1], -q[2], -q[3]]
}

// ---------------------------------------------------------------------------------------
// Axis-angle
// ---------------------------------------------------------------------------------------

/// A Haar-uniform random rotation as `(axis, angle)`: [`angles_to_axis_angle`] of
/// [`rand_angles`], so the axis is a unit vector and `angle` lies in `[0, pi]`.
///
/// ```
/// use equivariant_core::o3::rand_axis_angle;
/// use rand::SeedableRng;
/// let (axis, angle) = rand_axis_angle(&mut rand::rngs::StdRng::seed_from_u64(3));
/// assert!((axis.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12);
/// assert!((0.0..=std::f64::consts::PI).contains(&angle));
/// ```
pub fn rand_axis_angle<R: Rng + ?Sized>(rng: &mut R) -> ([f64; 3], f64) {
    let (a, b, c) = rand_angles(rng);
    angles_to_axis_angle(a, b, c)
}

/// Composes axis-angle rotations, `(axis2, angle2)` applied first, through quaternions:
/// [`quaternion_to_axis_angle`] of the [`compose_quaternion`] of both
/// [`axis_angle_to_quaternion`]s. The angle comes back in `[0, 2 pi]`.
///
/// ```
/// use equivariant_core::o3::compose_axis_angle;
/// let (axis, angle) = compose_axis_angle([0.0, 0.0, 2.0], 0.5, [0.0, 0.0, 1.0], 0.25);
/// assert!((axis[2] - 1.0).abs() < 1e-15 && (angle - 0.75).abs() < 1e-14);
/// ```
pub fn compose_axis_angle(
    axis1: [f64; 3],
    angle1: f64,
    axis2: [f64; 3],
    angle2: f64,
) -> ([f64; 3], f64) {
    quaternion_to_axis_angle(compose_quaternion(
        axis_angle_to_quaternion(axis1, angle1),
        axis_angle_to_quaternion(axis2, angle2),
    ))
}

// ---------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------

/// The unit quaternion of Y-X-Y Euler angles: `q(y, alpha) q(x, beta) q(y, gamma)` with
/// `q(n, t) = (cos t/2, n sin t/2)` ([`axis_angle_to_quaternion`]). Its sign is not
/// normalized (`w` may be negative).
///
/// ```
/// use equivariant_core::o3::angles_to_quaternion;
/// let q = angles_to_quaternion(1.0, 0.0, 0.0);
/// assert!((q[0] - 0.5f64.cos()).abs() < 1e-15 && (q[2] - 0.5f64.sin()).abs() < 1e-15);
/// ```
pub fn angles_to_quaternion(alpha: f64, beta: f64, gamma: f64) -> Quaternion {
    let qa = axis_angle_to_quaternion([0.0, 1.0, 0.0], alpha);
    let qb = axis_angle_to_quaternion([1.0, 0.0, 0.0], beta);
    let qc = axis_angle_to_quaternion([0.0, 1.0, 0.0], gamma);
    compose_quaternion(qa, compose_quaternion(qb, qc))
}

/// The unit quaternion of a rotation matrix, through axis-angle as e3nn:
/// [`axis_angle_to_quaternion`] of [`matrix_to_axis_angle`]. `w >= 0`. Like the axis,
/// the result is ill-conditioned near a half turn.
///
/// # Errors
/// As [`matrix_to_angles`]: non-finite, non-orthogonal or improper matrices.
///
/// ```
/// use equivariant_core::o3::{matrix_to_quaternion, matrix_z};
/// let q = matrix_to_quaternion(&matrix_z(1.0))?;
/// assert!((q[0] - 0.5f64.cos()).abs() < 1e-12 && (q[3] - 0.5f64.sin()).abs() < 1e-12);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn matrix_to_quaternion(r: &Matrix3) -> Result<Quaternion> {
    let (axis, angle) = matrix_to_axis_angle(r)?;
    Ok(axis_angle_to_quaternion(axis, angle))
}

/// The quaternion `(cos(angle/2), n sin(angle/2))` with `n = axis / max(|axis|, 1e-12)`;
/// a zero axis gives `(cos(angle/2), 0, 0, 0)` (not a unit quaternion unless `angle` is a
/// multiple of `2 pi`).
///
/// ```
/// use equivariant_core::o3::axis_angle_to_quaternion;
/// let q = axis_angle_to_quaternion([0.0, 0.0, 3.0], std::f64::consts::PI);
/// assert!(q[0].abs() < 1e-15 && (q[3] - 1.0).abs() < 1e-15);
/// ```
pub fn axis_angle_to_quaternion(axis: [f64; 3], angle: f64) -> Quaternion {
    let n = normalize(axis);
    let c = (angle / 2.0).cos();
    let s = (angle / 2.0).sin();
    [c, n[0] * s, n[1] * s, n[2] * s]
}

/// The axis-angle of a unit quaternion: `angle = 2 acos(clamp(w, -1, 1))` in `[0, 2 pi]`,
/// `axis = (x, y, z) / max(|(x, y, z)|, 1e-12)`. The identity gives the zero axis.
///
/// ```
/// use equivariant_core::o3::quaternion_to_axis_angle;
/// let (axis, angle) = quaternion_to_axis_angle([0.0, 0.0, -1.0, 0.0]);
/// assert_eq!(axis, [0.0, -1.0, 0.0]);
/// assert!((angle - std::f64::consts::PI).abs() < 1e-15);
/// let (axis, angle) = quaternion_to_axis_angle([1.0, 0.0, 0.0, 0.0]);
/// assert_eq!((axis, angle), ([0.0; 3], 0.0));
/// ```
pub fn quaternion_to_axis_angle(q: Quaternion) -> ([f64; 3], f64) {
    let angle = 2.0 * q[0].clamp(-1.0, 1.0).acos();
    let axis = normalize([q[1], q[2], q[3]]);
    (axis, angle)
}

/// [`matrix_to_axis_angle`] without the orthogonality check.
fn matrix_to_axis_angle_unchecked(r: &Matrix3) -> ([f64; 3], f64) {
    let trace = r[0][0] + r[1][1] + r[2][2];
    let angle = ((trace - 1.0) / 2.0).clamp(-1.0, 1.0).acos();
    let axis = normalize([r[2][1] - r[1][2], r[0][2] - r[2][0], r[1][0] - r[0][1]]);
    (axis, angle)
}

/// The axis-angle of a rotation matrix, as e3nn: `angle = acos(clamp((tr R - 1) / 2))` in
/// `[0, pi]`, `axis = normalize(R32 - R23, R13 - R31, R21 - R12)` (1-based indices).
///
/// The identity gives the zero axis. Near a half turn (`angle` close to `pi`) the
/// antisymmetric part vanishes and the axis is dominated by rounding: e3nn has the same
/// limitation.
///
/// # Errors
/// As [`matrix_to_angles`]: non-finite, non-orthogonal or improper matrices.
///
/// ```
/// use equivariant_core::o3::{matrix_to_axis_angle, matrix_x};
/// let (axis, angle) = matrix_to_axis_angle(&matrix_x(-0.5))?;
/// assert!((axis[0] + 1.0).abs() < 1e-12 && (angle - 0.5).abs() < 1e-12);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn matrix_to_axis_angle(r: &Matrix3) -> Result<([f64; 3], f64)> {
    check_rotation(r)?;
    Ok(matrix_to_axis_angle_unchecked(r))
}

/// The axis-angle of Y-X-Y Euler angles: [`matrix_to_axis_angle`] of
/// [`angles_to_matrix`] (infallible; inherits the half-turn ill-conditioning, e.g. at
/// `beta = pi`).
///
/// ```
/// use equivariant_core::o3::angles_to_axis_angle;
/// let (axis, angle) = angles_to_axis_angle(0.25, 0.0, 0.5);
/// assert!((axis[1] - 1.0).abs() < 1e-12 && (angle - 0.75).abs() < 1e-12);
/// ```
pub fn angles_to_axis_angle(alpha: f64, beta: f64, gamma: f64) -> ([f64; 3], f64) {
    matrix_to_axis_angle_unchecked(&angles_to_matrix(alpha, beta, gamma))
}

/// The rotation matrix of `angle` about `axis` (right-hand rule), computed as e3nn:
/// `R Ry(angle) R^T` with `R = angles_to_matrix(xyz_to_angles(axis), 0)`, which maps the
/// y axis to the normalized axis.
///
/// The axis need not be unit. A zero axis is normalized to zero, whose angles are
/// `(0, pi/2)`, so it gives the rotation about `+z`, as in e3nn.
///
/// ```
/// use equivariant_core::o3::{axis_angle_to_matrix, matrix_z};
/// let r = axis_angle_to_matrix([0.0, 0.0, 5.0], 0.3);
/// let expected = matrix_z(0.3);
/// assert!((0..3).all(|i| (0..3).all(|j| (r[i][j] - expected[i][j]).abs() < 1e-14)));
/// ```
pub fn axis_angle_to_matrix(axis: [f64; 3], angle: f64) -> Matrix3 {
    let (alpha, beta) = xyz_to_angles(axis);
    let r = angles_to_matrix(alpha, beta, 0.0);
    matmul3(&matmul3(&r, &matrix_y(angle)), &transpose3(&r))
}

/// The rotation matrix of a quaternion `q = (w, x, y, z)`, the rotation of `q / |q|`
/// (`q` and `-q` give the same matrix):
///
/// ```text
/// R = I + s [[-(y² + z²), xy - wz,    xz + wy   ],
///            [xy + wz,    -(x² + z²), yz - wx   ],
///            [xz - wy,    yz + wx,    -(x² + y²)]],   s = 2 / |q|²
/// ```
///
/// For a unit quaternion this is e3nn's [`axis_angle_to_matrix`] of
/// [`quaternion_to_axis_angle`], computed without the angle: e3nn's `2 acos(w)` loses half
/// the digits near the identity (`w` close to `±1`), this polynomial loses none. The zero
/// quaternion, which is no rotation, gives the identity.
///
/// ```
/// use equivariant_core::o3::{matrix_x, quaternion_to_matrix};
/// let (s, c) = 0.35f64.sin_cos();
/// let r = quaternion_to_matrix([c, s, 0.0, 0.0]);
/// let expected = matrix_x(0.7);
/// assert!((0..3).all(|i| (0..3).all(|j| (r[i][j] - expected[i][j]).abs() < 1e-14)));
/// ```
pub fn quaternion_to_matrix(q: Quaternion) -> Matrix3 {
    let [w, x, y, z] = q;
    let norm2 = w * w + x * x + y * y + z * z;
    // Dividing by |q|² keeps the result a rotation for a quaternion off the unit sphere by
    // rounding (or more); a zero quaternion has no direction and stays the identity.
    let s = if norm2 > 0.0 { 2.0 / norm2 } else { 0.0 };
    [
        [
            1.0 - s * (y * y + z * z),
            s * (x * y - w * z),
            s * (x * z + w * y),
        ],
        [
            s * (x * y + w * z),
            1.0 - s * (x * x + z * z),
            s * (y * z - w * x),
        ],
        [
            s * (x * z - w * y),
            s * (y * z + w * x),
            1.0 - s * (x * x + y * y),
        ],
    ]
}

/// The Y-X-Y Euler angles of a unit quaternion: [`matrix_to_angles`] of
/// [`quaternion_to_matrix`] (infallible: that matrix is a rotation by construction).
///
/// ```
/// use equivariant_core::o3::{angles_to_quaternion, quaternion_to_angles};
/// let (a, b, c) = quaternion_to_angles(angles_to_quaternion(0.1, 0.2, 0.3));
/// assert!((a - 0.1).abs() < 1e-12 && (b - 0.2).abs() < 1e-12 && (c - 0.3).abs() < 1e-12);
/// ```
pub fn quaternion_to_angles(q: Quaternion) -> (f64, f64, f64) {
    matrix_to_angles_unchecked(&quaternion_to_matrix(q))
}

/// The Y-X-Y Euler angles of an axis-angle rotation: [`matrix_to_angles`] of
/// [`axis_angle_to_matrix`] (infallible).
///
/// ```
/// use equivariant_core::o3::axis_angle_to_angles;
/// // A rotation about x is Rx(beta) alone.
/// let (a, b, c) = axis_angle_to_angles([1.0, 0.0, 0.0], 0.4);
/// assert!(a.abs() < 1e-12 && (b - 0.4).abs() < 1e-12 && c.abs() < 1e-12);
/// ```
pub fn axis_angle_to_angles(axis: [f64; 3], angle: f64) -> (f64, f64, f64) {
    matrix_to_angles_unchecked(&axis_angle_to_matrix(axis, angle))
}

// ---------------------------------------------------------------------------------------
// Points on the sphere
// ---------------------------------------------------------------------------------------

/// The point on the unit sphere at azimuth `alpha` and polar angle `beta` from the y axis:
/// `(sin beta sin alpha, cos beta, sin beta cos alpha)`.
///
/// ```
/// use equivariant_core::o3::angles_to_xyz;
/// assert_eq!(angles_to_xyz(0.0, 0.0), [0.0, 1.0, 0.0]);
/// let p = angles_to_xyz(0.0, std::f64::consts::FRAC_PI_2);
/// assert!(p[0] == 0.0 && p[1].abs() < 1e-15 && p[2] == 1.0);
/// ```
pub fn angles_to_xyz(alpha: f64, beta: f64) -> [f64; 3] {
    let (sa, ca) = alpha.sin_cos();
    let (sb, cb) = beta.sin_cos();
    [sb * sa, cb, sb * ca]
}

/// The angles `(alpha, beta)` of the direction of `xyz`, inverse of [`angles_to_xyz`]:
/// `n = xyz / max(|xyz|, 1e-12)` clamped to `[-1, 1]`, `beta = acos(n_y)` in `[0, pi]`,
/// `alpha = atan2(n_x, n_z)` in `[-pi, pi]`. The zero vector gives `(0, pi/2)`.
///
/// ```
/// use equivariant_core::o3::{angles_to_xyz, xyz_to_angles};
/// let (a, b) = xyz_to_angles(angles_to_xyz(-1.0, 2.0).map(|x| 3.0 * x));
/// assert!((a + 1.0).abs() < 1e-12 && (b - 2.0).abs() < 1e-12);
/// assert_eq!(xyz_to_angles([0.0; 3]), (0.0, std::f64::consts::FRAC_PI_2));
/// ```
pub fn xyz_to_angles(xyz: [f64; 3]) -> (f64, f64) {
    let n = normalize(xyz).map(|x| x.clamp(-1.0, 1.0));
    let beta = n[1].acos();
    let alpha = n[0].atan2(n[2]);
    (alpha, beta)
}
