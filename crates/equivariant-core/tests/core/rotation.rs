//! Rotations against e3nn 0.6.0 (`tests/fixtures/rotation.json`, written by
//! `tools/reference/fixtures_rotation.py`), plus algebraic properties and error cases.

use std::f64::consts::{FRAC_PI_2, PI};

use equivariant_core::Error;
use equivariant_core::o3::{
    Matrix3, ORTHOGONALITY_TOLERANCE, Quaternion, angles_to_axis_angle, angles_to_matrix,
    angles_to_quaternion, angles_to_xyz, axis_angle_to_angles, axis_angle_to_matrix,
    axis_angle_to_quaternion, check_orthogonal, compose_angles, compose_axis_angle,
    compose_quaternion, det3, identity_angles, identity_quaternion, inverse_angles,
    inverse_quaternion, matmul3, matrix_to_angles, matrix_to_axis_angle, matrix_to_quaternion,
    matrix_x, matrix_y, matrix_z, matvec3, orthogonality_error, quaternion_to_angles,
    quaternion_to_axis_angle, quaternion_to_matrix, rand_angles, rand_axis_angle, rand_matrix,
    rand_quaternion, transpose3, xyz_to_angles,
};
use equivariant_testing::{assert_close, f64s, load_fixture};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

/// Agreement with e3nn on well-conditioned outputs.
const TOL: f64 = 1e-10;

const IDENTITY: Matrix3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

fn fixture() -> Value {
    load_fixture!("rotation")
}

fn mat(v: &Value) -> Matrix3 {
    let x = f64s(v);
    assert_eq!(x.len(), 9, "matrix length");
    [[x[0], x[1], x[2]], [x[3], x[4], x[5]], [x[6], x[7], x[8]]]
}

fn vec3(v: &Value) -> [f64; 3] {
    let x = f64s(v);
    [x[0], x[1], x[2]]
}

fn quat(v: &Value) -> Quaternion {
    let x = f64s(v);
    [x[0], x[1], x[2], x[3]]
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn triple(v: &Value) -> (f64, f64, f64) {
    let x = f64s(v);
    (x[0], x[1], x[2])
}

fn flat(m: &Matrix3) -> Vec<f64> {
    m.iter().flatten().copied().collect()
}

fn items(v: &Value) -> &Vec<Value> {
    v.as_array().expect("array")
}

/// `x` reduced to `[-pi, pi]`.
fn wrap(x: f64) -> f64 {
    x - 2.0 * PI * (x / (2.0 * PI)).round()
}

/// Angles equal modulo 2 pi: only the 2 pi branch of atan2 may differ.
#[track_caller]
fn assert_angles_close(what: &str, got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let d: Vec<f64> = got.iter().zip(expected).map(|(g, e)| wrap(g - e)).collect();
    assert_close(what, &d, &vec![0.0; d.len()], tol);
}

/// Euler angles as e3nn's: exactly (mod 2 pi) where beta is away from 0 and pi; at the
/// gimbal-lock poles only the matrix is defined, so compare the matrices.
#[track_caller]
fn assert_euler_close(what: &str, got: (f64, f64, f64), expected: (f64, f64, f64)) {
    let beta = expected.1.rem_euclid(2.0 * PI);
    if beta.min((beta - PI).abs()).min(2.0 * PI - beta) < 1e-6 {
        assert_close(
            &format!("{what} (pole, as matrix)"),
            &flat(&angles_to_matrix(got.0, got.1, got.2)),
            &flat(&angles_to_matrix(expected.0, expected.1, expected.2)),
            TOL,
        );
    } else {
        assert_angles_close(
            what,
            &[got.0, got.1, got.2],
            &[expected.0, expected.1, expected.2],
            TOL,
        );
    }
}

fn rodrigues(axis: [f64; 3], angle: f64) -> Matrix3 {
    let norm = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let n = axis.map(|x| x / norm);
    let (s, c) = angle.sin_cos();
    let k = [[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]];
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = IDENTITY[i][j] * c + s * k[i][j] + (1.0 - c) * n[i] * n[j];
        }
    }
    r
}

fn quaternion_close_up_to_sign(what: &str, got: Quaternion, expected: Quaternion, tol: f64) {
    let sign = if got.iter().zip(&expected).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
        -1.0
    } else {
        1.0
    };
    assert_close(what, &got.map(|x| sign * x), &expected, tol);
}

// ---------------------------------------------------------------------------------------
// Against e3nn
// ---------------------------------------------------------------------------------------

#[test]
fn fixture_versions() {
    let f = fixture();
    assert_eq!(f["e3nn_version"], "0.6.0");
}

#[test]
fn euler_cases_match_e3nn() {
    let f = fixture();
    let cases = items(&f["cases"]);
    assert!(cases.len() >= 10);
    for (i, case) in cases.iter().enumerate() {
        let kind = case["kind"].as_str().expect("kind");
        let what = |name: &str| format!("case {i} ({kind}): {name}");
        let (a, b, c) = triple(&case["angles"]);
        let r = mat(&case["matrix"]);
        let q = quat(&case["quaternion"]);
        let axis = vec3(&case["axis"]);
        let angle = num(&case["angle"]);

        assert_close(
            &what("angles_to_matrix"),
            &flat(&angles_to_matrix(a, b, c)),
            &flat(&r),
            TOL,
        );
        assert_close(
            &what("angles_to_quaternion"),
            &angles_to_quaternion(a, b, c),
            &q,
            TOL,
        );
        assert_close(
            &what("angles_to_xyz"),
            &angles_to_xyz(a, b),
            &f64s(&case["xyz"]),
            TOL,
        );
        assert_euler_close(
            &what("matrix_to_angles"),
            matrix_to_angles(&r).expect("rotation"),
            triple(&case["matrix_to_angles"]),
        );
        assert_close(
            &what("quaternion_to_matrix"),
            &flat(&quaternion_to_matrix(q)),
            &f64s(&case["quaternion_to_matrix"]),
            TOL,
        );
        assert_euler_close(
            &what("quaternion_to_angles"),
            quaternion_to_angles(q),
            triple(&case["quaternion_to_angles"]),
        );
        // From e3nn's axis-angle (for a half turn that axis is rounding noise, but as an
        // input it is a well-defined direction).
        assert_close(
            &what("axis_angle_to_matrix"),
            &flat(&axis_angle_to_matrix(axis, angle)),
            &f64s(&case["axis_angle_to_matrix"]),
            TOL,
        );
        assert_close(
            &what("axis_angle_to_quaternion"),
            &axis_angle_to_quaternion(axis, angle),
            &f64s(&case["axis_angle_to_quaternion"]),
            TOL,
        );

        if kind == "betapi" {
            // A half turn: the antisymmetric part of R is rounding noise, so the axis (and
            // the quaternion built on it) depends on the last bits; only the angle is
            // defined, to sqrt(eps).
            let (_, got_angle) = angles_to_axis_angle(a, b, c);
            assert!((got_angle - PI).abs() < 1e-6 && (angle - PI).abs() < 1e-6);
            continue;
        }
        let (got_axis, got_angle) = angles_to_axis_angle(a, b, c);
        assert_close(&what("angles_to_axis_angle axis"), &got_axis, &axis, TOL);
        assert_close(
            &what("angles_to_axis_angle angle"),
            &[got_angle],
            &[angle],
            TOL,
        );
        let (got_axis, got_angle) = matrix_to_axis_angle(&r).expect("rotation");
        assert_close(&what("matrix_to_axis_angle axis"), &got_axis, &axis, TOL);
        assert_close(
            &what("matrix_to_axis_angle angle"),
            &[got_angle],
            &[angle],
            TOL,
        );
        assert_close(
            &what("matrix_to_quaternion"),
            &matrix_to_quaternion(&r).expect("rotation"),
            &f64s(&case["matrix_to_quaternion"]),
            TOL,
        );
    }
}

#[test]
fn xyz_to_angles_matches_e3nn() {
    let f = fixture();
    let xyz = &f["xyz"];
    let inputs = items(&xyz["input"]);
    let (alpha, beta) = (f64s(&xyz["alpha"]), f64s(&xyz["beta"]));
    assert_eq!(inputs.len(), alpha.len());
    for (i, v) in inputs.iter().enumerate() {
        let (a, b) = xyz_to_angles(vec3(v));
        assert_angles_close(&format!("xyz {i}: alpha"), &[a], &[alpha[i]], TOL);
        assert_close(&format!("xyz {i}: beta"), &[b], &[beta[i]], TOL);
    }
}

#[test]
fn axis_angle_conversions_match_e3nn() {
    let f = fixture();
    let aa = &f["axis_angle"];
    let axes = items(&aa["axis"]);
    let angles = f64s(&aa["angle"]);
    let quats = items(&aa["axis_angle_to_quaternion"]);
    let mats = items(&aa["axis_angle_to_matrix"]);
    let eulers = items(&aa["axis_angle_to_angles"]);
    for (i, axis) in axes.iter().enumerate() {
        let (axis, angle) = (vec3(axis), angles[i]);
        let what = |name: &str| format!("axis-angle {i}: {name}");
        assert_close(
            &what("axis_angle_to_quaternion"),
            &axis_angle_to_quaternion(axis, angle),
            &f64s(&quats[i]),
            TOL,
        );
        assert_close(
            &what("axis_angle_to_matrix"),
            &flat(&axis_angle_to_matrix(axis, angle)),
            &f64s(&mats[i]),
            TOL,
        );
        assert_euler_close(
            &what("axis_angle_to_angles"),
            axis_angle_to_angles(axis, angle),
            triple(&eulers[i]),
        );
    }
}

#[test]
fn quaternion_conversions_match_e3nn() {
    let f = fixture();
    let qf = &f["quaternion"];
    let qs = items(&qf["q"]);
    let angles = f64s(&qf["quaternion_to_angle"]);
    for (i, q) in qs.iter().enumerate() {
        let q = quat(q);
        let what = |name: &str| format!("quaternion {i}: {name}");
        let (axis, angle) = quaternion_to_axis_angle(q);
        assert_close(
            &what("axis"),
            &axis,
            &f64s(&qf["quaternion_to_axis"][i]),
            TOL,
        );
        assert_close(&what("angle"), &[angle], &[angles[i]], TOL);
        assert_close(
            &what("quaternion_to_matrix"),
            &flat(&quaternion_to_matrix(q)),
            &f64s(&qf["quaternion_to_matrix"][i]),
            TOL,
        );
        assert_euler_close(
            &what("quaternion_to_angles"),
            quaternion_to_angles(q),
            triple(&qf["quaternion_to_angles"][i]),
        );
        assert_eq!(
            inverse_quaternion(q).to_vec(),
            f64s(&qf["inverse_quaternion"][i]),
            "{}",
            what("inverse_quaternion")
        );
    }
}

#[test]
fn compositions_match_e3nn() {
    let f = fixture();
    let cf = &f["compose"];
    let n = items(&cf["angles1"]).len();
    assert!(n > 0);
    for i in 0..n {
        let what = |name: &str| format!("pair {i}: {name}");
        let (a1, b1, c1) = triple(&cf["angles1"][i]);
        let (a2, b2, c2) = triple(&cf["angles2"][i]);
        assert_euler_close(
            &what("compose_angles"),
            compose_angles(a1, b1, c1, a2, b2, c2),
            triple(&cf["compose_angles"][i]),
        );
        assert_close(
            &what("compose_quaternion"),
            &compose_quaternion(quat(&cf["q1"][i]), quat(&cf["q2"][i])),
            &f64s(&cf["compose_quaternion"][i]),
            TOL,
        );
        let (axis, angle) = compose_axis_angle(
            vec3(&cf["axis1"][i]),
            num(&cf["angle1"][i]),
            vec3(&cf["axis2"][i]),
            num(&cf["angle2"][i]),
        );
        assert_close(
            &what("compose_axis_angle axis"),
            &axis,
            &f64s(&cf["compose_axis"][i]),
            TOL,
        );
        assert_close(
            &what("compose_axis_angle angle"),
            &[angle],
            &[num(&cf["compose_angle"][i])],
            TOL,
        );
    }
}

#[test]
fn elementary_rotations_match_e3nn() {
    let f = fixture();
    let ef = &f["elementary"];
    for (i, angle) in f64s(&ef["angle"]).into_iter().enumerate() {
        for (name, fun) in [
            ("matrix_x", matrix_x as fn(f64) -> Matrix3),
            ("matrix_y", matrix_y),
            ("matrix_z", matrix_z),
        ] {
            assert_close(
                &format!("{name} {i}"),
                &flat(&fun(angle)),
                &f64s(&ef[name][i]),
                TOL,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers, identities and special values
// ---------------------------------------------------------------------------------------

#[test]
fn matrix_helpers() {
    let a = [[1.0, 2.0, 3.0], [0.0, 1.0, 4.0], [5.0, 6.0, 0.0]];
    let b = [[-24.0, 18.0, 5.0], [20.0, -15.0, -4.0], [-5.0, 4.0, 1.0]];
    assert_eq!(det3(&a), 1.0);
    assert_eq!(matmul3(&a, &b), IDENTITY);
    assert_eq!(transpose3(&transpose3(&a)), a);
    assert_eq!(transpose3(&a)[2], [3.0, 4.0, 0.0]);
    assert_eq!(matvec3(&a, [1.0, 0.0, -1.0]), [-2.0, -4.0, 5.0]);
    assert_eq!(orthogonality_error(&IDENTITY), 0.0);
    assert!(orthogonality_error(&a) > 1.0);
    let mut nan = IDENTITY;
    nan[1][2] = f64::NAN;
    assert!(orthogonality_error(&nan).is_nan());
}

/// Near the identity (`w` close to 1) e3nn's `2 acos(w)` keeps only half the digits; the
/// matrix must not. The angles are the case proptest shrank a failure to (1.8e-11 off).
#[test]
fn quaternion_to_matrix_is_exact_near_the_identity() {
    for (a, b, c) in [
        (0.0, 6.283_172_7, 0.0),
        (1e-9, 0.0, -2e-9),
        (0.3, 1e-7, -0.3),
    ] {
        let q = angles_to_quaternion(a, b, c);
        let r = angles_to_matrix(a, b, c);
        assert_close(
            "near identity",
            &flat(&quaternion_to_matrix(q)),
            &flat(&r),
            1e-15,
        );
    }
}

/// A quaternion off the unit sphere is the rotation of `q / |q|`; zero is the identity.
#[test]
fn quaternion_to_matrix_normalizes() {
    let q = angles_to_quaternion(0.4, 1.1, -0.7);
    let r = quaternion_to_matrix(q);
    assert_close(
        "3 q",
        &flat(&quaternion_to_matrix(q.map(|x| 3.0 * x))),
        &flat(&r),
        1e-15,
    );
    assert_eq!(quaternion_to_matrix([0.0; 4]), IDENTITY);
}

#[test]
fn identities() {
    let (a, b, c) = identity_angles();
    assert_eq!(angles_to_matrix(a, b, c), IDENTITY);
    assert_eq!(quaternion_to_matrix(identity_quaternion()), IDENTITY);
    assert_eq!(angles_to_quaternion(a, b, c), identity_quaternion());
    assert_eq!(matrix_to_angles(&IDENTITY), Ok((0.0, 0.0, 0.0)));
    assert_eq!(matrix_to_quaternion(&IDENTITY), Ok(identity_quaternion()));
    assert_eq!(matrix_to_axis_angle(&IDENTITY), Ok(([0.0; 3], 0.0)));
}

#[test]
fn zero_vectors_are_finite() {
    // torch's normalize divides by max(|v|, 1e-12): zero stays zero.
    assert_eq!(xyz_to_angles([0.0; 3]), (0.0, FRAC_PI_2));
    assert_eq!(
        axis_angle_to_quaternion([0.0; 3], 1.0),
        [0.5f64.cos(), 0.0, 0.0, 0.0]
    );
    // The zero axis has angles (0, pi/2), i.e. it is treated as the z axis.
    let r = axis_angle_to_matrix([0.0; 3], 0.8);
    assert_close("zero axis", &flat(&r), &flat(&matrix_z(0.8)), 1e-15);
    assert_eq!(
        quaternion_to_axis_angle([-1.0, 0.0, 0.0, 0.0]),
        ([0.0; 3], 2.0 * PI)
    );
    // Below 1e-12 the "normalized" vector is not unit, exactly as in e3nn.
    let (axis, _) = quaternion_to_axis_angle([1.0, 1e-13, 0.0, 0.0]);
    assert_close("tiny axis", &axis, &[0.1, 0.0, 0.0], 1e-15);
}

#[test]
fn rand_is_haar() {
    // The Haar mean of a rotation matrix is zero; e.g. E[cos beta] = 0.
    let mut rng = StdRng::seed_from_u64(12345);
    let n = 20_000;
    let mut mean = [[0.0; 3]; 3];
    for _ in 0..n {
        let r = rand_matrix(&mut rng);
        for i in 0..3 {
            for j in 0..3 {
                mean[i][j] += r[i][j] / n as f64;
            }
        }
    }
    // Each entry has variance 1/3: the standard error is 0.004.
    assert!(flat(&mean).iter().all(|x| x.abs() < 0.025), "{mean:?}");
}

#[test]
fn rand_is_reproducible() {
    let draw = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        (
            rand_angles(&mut rng),
            rand_quaternion(&mut rng),
            rand_axis_angle(&mut rng),
        )
    };
    assert_eq!(draw(9), draw(9));
    assert_ne!(draw(9), draw(10));
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn non_orthogonal_matrices_are_rejected() {
    let scaled = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let expected = Error::NotOrthogonal { deviation: 3.0 };
    assert_eq!(matrix_to_angles(&scaled), Err(expected.clone()));
    assert_eq!(matrix_to_quaternion(&scaled), Err(expected.clone()));
    assert_eq!(matrix_to_axis_angle(&scaled), Err(expected.clone()));
    assert_eq!(check_orthogonal(&scaled, 1.0), Err(expected));
    // Just outside and inside the tolerance.
    let mut r = angles_to_matrix(0.1, 0.2, 0.3);
    r[0][0] += 1e-3;
    assert!(matches!(
        matrix_to_angles(&r),
        Err(Error::NotOrthogonal { deviation }) if deviation > 1e-3
    ));
    let mut r = angles_to_matrix(0.1, 0.2, 0.3);
    r[0][0] += 1e-8;
    assert!(matrix_to_angles(&r).is_ok());
    // Overflowing entries (R R^T has inf - inf = NaN) are not orthogonal.
    let huge = [[1e200, -1e200, 0.0], [1e200, 1e200, 0.0], [0.0, 0.0, 1.0]];
    assert!(matches!(
        matrix_to_angles(&huge),
        Err(Error::NotOrthogonal { .. })
    ));
    // A NaN tolerance accepts nothing.
    assert!(check_orthogonal(&IDENTITY, f64::NAN).is_err());
}

#[test]
fn improper_rotations_are_rejected() {
    let mirror = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]];
    let r = matmul3(&mirror, &rand_matrix(&mut StdRng::seed_from_u64(5)));
    let det = check_orthogonal(&r, ORTHOGONALITY_TOLERANCE).expect("orthogonal");
    assert!((det + 1.0).abs() < 1e-12);
    for result in [
        matrix_to_angles(&r).map(|_| ()),
        matrix_to_quaternion(&r).map(|_| ()),
        matrix_to_axis_angle(&r).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::NotProperRotation { det }) if (det + 1.0).abs() < 1e-12),
            "{result:?}"
        );
    }
    let minus_identity = IDENTITY.map(|row| row.map(|x| -x));
    assert_eq!(
        matrix_to_angles(&minus_identity),
        Err(Error::NotProperRotation { det: -1.0 })
    );
}

#[test]
fn non_finite_matrices_are_rejected() {
    for (index, bad) in [(4, f64::NAN), (7, f64::INFINITY)] {
        let mut r = IDENTITY;
        r[index / 3][index % 3] = bad;
        let expected = Error::NonFinite {
            what: "rotation matrix",
            index,
        };
        assert_eq!(matrix_to_angles(&r), Err(expected.clone()));
        assert_eq!(matrix_to_quaternion(&r), Err(expected.clone()));
        assert_eq!(check_orthogonal(&r, 1.0), Err(expected));
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn any_angles() -> impl Strategy<Value = (f64, f64, f64)> {
    (-10.0..10.0f64, -10.0..10.0f64, -10.0..10.0f64)
}

/// A vector of norm at least 0.1.
fn any_axis() -> impl Strategy<Value = [f64; 3]> {
    (-3.0..3.0f64, -3.0..3.0f64, -3.0..3.0f64)
        .prop_map(|(x, y, z)| [x, y, z])
        .prop_filter("non-zero axis", |v| {
            v.iter().map(|x| x * x).sum::<f64>() > 0.01
        })
}

fn normalized(v: [f64; 3]) -> [f64; 3] {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.map(|x| x / n)
}

proptest! {
    #[test]
    fn angles_matrix_round_trip((a, b, c) in any_angles()) {
        let r = angles_to_matrix(a, b, c);
        prop_assert!(orthogonality_error(&r) < 1e-14);
        prop_assert!((det3(&r) - 1.0).abs() < 1e-14);
        let (a2, b2, c2) = matrix_to_angles(&r).expect("rotation");
        prop_assert!((-PI..=PI).contains(&a2) && (0.0..=PI).contains(&b2));
        prop_assert!((-PI..=PI).contains(&c2));
        let r2 = angles_to_matrix(a2, b2, c2);
        assert_close("angles -> matrix -> angles -> matrix", &flat(&r2), &flat(&r), 1e-9);
        // Away from the poles the angles themselves come back (beta folded to [0, pi]).
        let bw = wrap(b);
        if bw.abs() > 1e-3 && bw.abs() < PI - 1e-3 {
            let expected = if bw > 0.0 { (a, bw, c) } else { (a + PI, -bw, c + PI) };
            assert_angles_close(
                "angles round trip",
                &[a2, b2, c2],
                &[expected.0, expected.1, expected.2],
                1e-8,
            );
        }
    }

    #[test]
    fn quaternion_matrix_round_trip((a, b, c) in any_angles()) {
        let q = angles_to_quaternion(a, b, c);
        prop_assert!((q.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-14);
        let r = angles_to_matrix(a, b, c);
        assert_close("quaternion_to_matrix", &flat(&quaternion_to_matrix(q)), &flat(&r), 1e-12);
        assert_close("q and -q", &flat(&quaternion_to_matrix(q.map(|x| -x))), &flat(&r), 1e-12);
        let (ea, eb, ec) = quaternion_to_angles(q);
        assert_close("quaternion_to_angles", &flat(&angles_to_matrix(ea, eb, ec)), &flat(&r), 1e-9);
        // matrix -> quaternion is ill-conditioned at half turns (w = 0).
        prop_assume!(q[0].abs() > 1e-3);
        let q2 = matrix_to_quaternion(&r).expect("rotation");
        prop_assert!(q2[0] >= 0.0);
        quaternion_close_up_to_sign("matrix_to_quaternion", q2, q, 1e-9);
    }

    #[test]
    fn axis_angle_round_trips(axis in any_axis(), angle in 0.01..(PI - 0.01)) {
        let r = axis_angle_to_matrix(axis, angle);
        assert_close("Rodrigues", &flat(&r), &flat(&rodrigues(axis, angle)), 1e-12);
        assert_close("axis is fixed", &matvec3(&r, axis), &axis, 1e-12);
        let n = normalized(axis);
        let (axis2, angle2) = matrix_to_axis_angle(&r).expect("rotation");
        assert_close("matrix_to_axis_angle axis", &axis2, &n, 1e-9);
        assert_close("matrix_to_axis_angle angle", &[angle2], &[angle], 1e-9);
        let q = axis_angle_to_quaternion(axis, angle);
        assert_close("quaternion", &flat(&quaternion_to_matrix(q)), &flat(&r), 1e-12);
        let (axis3, angle3) = quaternion_to_axis_angle(q);
        assert_close("quaternion_to_axis_angle axis", &axis3, &n, 1e-12);
        assert_close("quaternion_to_axis_angle angle", &[angle3], &[angle], 1e-9);
        let (a, b, c) = axis_angle_to_angles(axis, angle);
        assert_close("axis_angle_to_angles", &flat(&angles_to_matrix(a, b, c)), &flat(&r), 1e-9);
        // The negated angle about the same axis is the same as the reversed axis.
        let r_neg = axis_angle_to_matrix(axis.map(|x| -x), -angle);
        assert_close("(-axis, -angle)", &flat(&r_neg), &flat(&r), 1e-12);
        let (ax, an) = angles_to_axis_angle(a, b, c);
        assert_close("angles_to_axis_angle", &flat(&axis_angle_to_matrix(ax, an)), &flat(&r), 1e-9);
    }

    #[test]
    fn compose_then_inverse_is_identity(
        (a, b, c) in any_angles(),
        axis in any_axis(),
        angle in -7.0..7.0f64,
    ) {
        let (ia, ib, ic) = inverse_angles(a, b, c);
        let m = angles_to_matrix(ia, ib, ic);
        assert_close("inverse_angles", &flat(&m), &flat(&transpose3(&angles_to_matrix(a, b, c))), 1e-12);
        let (ca, cb, cc) = compose_angles(a, b, c, ia, ib, ic);
        assert_close("angles", &flat(&angles_to_matrix(ca, cb, cc)), &flat(&IDENTITY), 1e-9);
        let (ca, cb, cc) = compose_angles(ia, ib, ic, a, b, c);
        assert_close("angles, reversed", &flat(&angles_to_matrix(ca, cb, cc)), &flat(&IDENTITY), 1e-9);

        let q = angles_to_quaternion(a, b, c);
        assert_close("quaternion", &compose_quaternion(q, inverse_quaternion(q)), &identity_quaternion(), 1e-14);
        assert_close("quaternion, reversed", &compose_quaternion(inverse_quaternion(q), q), &identity_quaternion(), 1e-14);

        // The composed angle is 2 acos(1 - O(eps)) = O(sqrt(eps)).
        let (ax, an) = compose_axis_angle(axis, angle, axis, -angle);
        assert_close("axis-angle", &flat(&axis_angle_to_matrix(ax, an)), &flat(&IDENTITY), 1e-6);
    }

    #[test]
    fn compositions_match_matrix_products(
        (a1, b1, c1) in any_angles(),
        (a2, b2, c2) in any_angles(),
        axis1 in any_axis(),
        angle1 in -7.0..7.0f64,
        axis2 in any_axis(),
        angle2 in -7.0..7.0f64,
    ) {
        let (m1, m2) = (angles_to_matrix(a1, b1, c1), angles_to_matrix(a2, b2, c2));
        let product = matmul3(&m1, &m2);
        let (q1, q2) = (angles_to_quaternion(a1, b1, c1), angles_to_quaternion(a2, b2, c2));
        let q = compose_quaternion(q1, q2);
        assert_close("compose_quaternion", &flat(&quaternion_to_matrix(q)), &flat(&product), 1e-9);
        let (a, b, c) = compose_angles(a1, b1, c1, a2, b2, c2);
        assert_close("compose_angles", &flat(&angles_to_matrix(a, b, c)), &flat(&product), 1e-9);
        let (ax, an) = compose_axis_angle(axis1, angle1, axis2, angle2);
        let expected = matmul3(&axis_angle_to_matrix(axis1, angle1), &axis_angle_to_matrix(axis2, angle2));
        assert_close("compose_axis_angle", &flat(&axis_angle_to_matrix(ax, an)), &flat(&expected), 1e-9);
        prop_assert!((0.0..=2.0 * PI).contains(&an));
    }

    #[test]
    fn xyz_angles_round_trip(a in -PI..PI, b in 0.001..(PI - 0.001), scale in 0.01..100.0f64) {
        let p = angles_to_xyz(a, b);
        prop_assert!((p.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-14);
        // R(a, b, c) maps the polar axis y to angles_to_xyz(a, b), whatever c.
        assert_close("R y", &matvec3(&angles_to_matrix(a, b, 0.7), [0.0, 1.0, 0.0]), &p, 1e-14);
        let (a2, b2) = xyz_to_angles(p.map(|x| scale * x));
        assert_angles_close("alpha", &[a2], &[a], 1e-9);
        assert_close("beta", &[b2], &[b], 1e-9);
    }

    #[test]
    fn rand_outputs_are_rotations(seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = rand_matrix(&mut rng);
        prop_assert!(orthogonality_error(&r) < 1e-14);
        let det = check_orthogonal(&r, ORTHOGONALITY_TOLERANCE).expect("orthogonal");
        prop_assert!((det - 1.0).abs() < 1e-14);
        let (a, b, c) = rand_angles(&mut rng);
        prop_assert!((0.0..2.0 * PI).contains(&a) && (0.0..=PI).contains(&b));
        prop_assert!((0.0..2.0 * PI).contains(&c));
        let q = rand_quaternion(&mut rng);
        prop_assert!((q.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-14);
        let (axis, angle) = rand_axis_angle(&mut rng);
        prop_assert!((0.0..=PI).contains(&angle));
        // Unit unless a half turn (where e3nn's axis is noise, see matrix_to_axis_angle).
        if angle < PI - 1e-6 {
            prop_assert!((axis.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }
}
