//! Wigner 3j symbols and Wigner D matrices against e3nn 0.6.0
//! (`tests/fixtures/wigner_3j.json`, `wigner_d.json`) and their defining properties.

use equivariant_core::Error;
use equivariant_core::o3::{
    Irreps, Matrix3, angles_to_matrix, compose_angles, so3_generators, wigner_3j, wigner_d,
};
use equivariant_testing::{assert_close, f64s, load_fixture};
use proptest::prelude::*;

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            for j in 0..d {
                out[i * d + j] += a[i * d + k] * b[k * d + j];
            }
        }
    }
    out
}

fn transpose(a: &[f64], d: usize) -> Vec<f64> {
    (0..d * d).map(|n| a[(n % d) * d + n / d]).collect()
}

fn identity(d: usize) -> Vec<f64> {
    (0..d * d)
        .map(|n| if n / d == n % d { 1.0 } else { 0.0 })
        .collect()
}

fn check_table(entry: &serde_json::Value, complete: bool) {
    let ls: Vec<u32> = f64s(&entry["ls"]).into_iter().map(|l| l as u32).collect();
    let c = wigner_3j(ls[0], ls[1], ls[2]).unwrap();
    let [_, d2, d3] = c.shape();
    let mut expected = vec![0.0; c.values().len()];
    let mut got = Vec::new();
    let mut want = Vec::new();
    for nz in entry["nonzeros"].as_array().unwrap() {
        let v = f64s(nz);
        let at = (v[0] as usize * d2 + v[1] as usize) * d3 + v[2] as usize;
        expected[at] = v[3];
        got.push(c.values()[at]);
        want.push(v[3]);
    }
    if complete {
        assert_close(&format!("C{ls:?}"), c.values(), &expected, 1e-10);
        assert_eq!(c.nonzeros().len(), want.len(), "nonzero count of C{ls:?}");
    } else {
        assert_close(&format!("C{ls:?} (first entries)"), &got, &want, 1e-10);
    }
}

#[test]
fn wigner_3j_matches_e3nn_for_every_triple_up_to_6() {
    let fixture = load_fixture!("wigner_3j");
    let tables = fixture["tables"].as_array().unwrap();
    assert!(tables.len() > 150);
    for entry in tables {
        check_table(entry, true);
    }
}

#[test]
fn wigner_3j_matches_e3nn_up_to_12() {
    let fixture = load_fixture!("wigner_3j");
    for entry in fixture["partial_tables"].as_array().unwrap() {
        check_table(entry, false);
    }
}

#[test]
fn wigner_3j_check_values_and_errors() {
    let c = wigner_3j(1, 1, 1).unwrap();
    assert!((c.get(0, 1, 2) - 1.0 / 6f64.sqrt()).abs() < 1e-15);
    let c = wigner_3j(0, 3, 3).unwrap();
    for i in 0..7 {
        assert!((c.get(0, i, i) - 1.0 / 7f64.sqrt()).abs() < 1e-15);
    }
    assert_eq!(
        wigner_3j(2, 1, 4).unwrap_err(),
        Error::Triangle {
            l1: 2,
            l2: 1,
            l3: 4
        }
    );
    // Cached: the same table is shared.
    assert!(std::sync::Arc::ptr_eq(
        &wigner_3j(3, 2, 4).unwrap(),
        &wigner_3j(3, 2, 4).unwrap()
    ));
}

#[test]
fn wigner_3j_tables_exist_and_are_normalized_up_to_12() {
    for l1 in 0..=12u32 {
        for l2 in 0..=12u32 {
            for l3 in l1.abs_diff(l2)..=(l1 + l2).min(12) {
                let c = wigner_3j(l1, l2, l3).unwrap();
                let norm: f64 = c.values().iter().map(|x| x * x).sum();
                assert!((norm - 1.0).abs() < 1e-12, "C({l1},{l2},{l3})");
            }
        }
    }
}

#[test]
fn wigner_d_matches_e3nn() {
    let fixture = load_fixture!("wigner_d");
    for case in fixture["cases"].as_array().unwrap() {
        let [a, b, c] = f64s(&case["angles"])[..] else {
            panic!()
        };
        for (l, d) in case["D"].as_object().unwrap() {
            let l: u32 = l.parse().unwrap();
            assert_close(
                &format!("D^{l}({a}, {b}, {c})"),
                &wigner_d(l, a, b, c),
                &f64s(d),
                1e-10,
            );
        }
    }
}

#[test]
fn d_from_matrix_with_parity_matches_e3nn() {
    let fixture = load_fixture!("wigner_d");
    let irreps: Irreps = fixture["irreps"].as_str().unwrap().parse().unwrap();
    for case in fixture["from_matrix"].as_array().unwrap() {
        let m = f64s(&case["matrix"]);
        let r: Matrix3 = [[m[0], m[1], m[2]], [m[3], m[4], m[5]], [m[6], m[7], m[8]]];
        assert_close(
            "D_from_matrix",
            &irreps.d_from_matrix(&r).unwrap(),
            &f64s(&case["D"]),
            1e-10,
        );
    }
}

#[test]
fn non_orthogonal_matrix_is_an_error() {
    let irreps: Irreps = "1o".parse().unwrap();
    let r = [[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    assert!(matches!(
        irreps.d_from_matrix(&r),
        Err(Error::NotOrthogonal { .. })
    ));
}

fn angles() -> impl Strategy<Value = (f64, f64, f64)> {
    (-7.0..7.0f64, -4.0..4.0f64, -7.0..7.0f64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn d_is_a_representation((a1, b1, c1) in angles(), (a2, b2, c2) in angles(), l in 0u32..10) {
        let d = 2 * l as usize + 1;
        let (a, b, c) = compose_angles(a1, b1, c1, a2, b2, c2);
        let composed = wigner_d(l, a, b, c);
        let product = matmul(&wigner_d(l, a1, b1, c1), &wigner_d(l, a2, b2, c2), d);
        let err = composed.iter().zip(&product).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        prop_assert!(err < 1e-10, "D(R1 R2) != D(R1) D(R2): {}", err);
    }

    #[test]
    fn d_is_orthogonal((a, b, c) in angles(), l in 0u32..13) {
        let d = 2 * l as usize + 1;
        let m = wigner_d(l, a, b, c);
        let err = matmul(&m, &transpose(&m, d), d).iter().zip(identity(d)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        prop_assert!(err < 1e-10, "D D^T != I: {}", err);
    }

    #[test]
    fn d1_is_the_rotation_matrix((a, b, c) in angles()) {
        let r = angles_to_matrix(a, b, c);
        let d = wigner_d(1, a, b, c);
        for i in 0..3 {
            for j in 0..3 {
                prop_assert!((d[i * 3 + j] - r[i][j]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn wigner_3j_is_invariant((a, b, c) in angles(), l1 in 0u32..6, l2 in 0u32..6, k in 0u32..11) {
        let l3 = l1.abs_diff(l2) + k % (l1 + l2 - l1.abs_diff(l2) + 1);
        let cg = wigner_3j(l1, l2, l3).unwrap();
        let [d1, d2, d3] = cg.shape();
        let (m1, m2, m3) = (wigner_d(l1, a, b, c), wigner_d(l2, a, b, c), wigner_d(l3, a, b, c));
        // C'_{lmn} = C_{ijk} D1_{il} D2_{jm} D3_{kn}
        let mut rotated = vec![0.0; d1 * d2 * d3];
        for nz in cg.nonzeros() {
            let (i, j, k) = (nz.i as usize, nz.j as usize, nz.k as usize);
            for l in 0..d1 {
                let x = nz.value * m1[i * d1 + l];
                for m in 0..d2 {
                    let y = x * m2[j * d2 + m];
                    for n in 0..d3 {
                        rotated[(l * d2 + m) * d3 + n] += y * m3[k * d3 + n];
                    }
                }
            }
        }
        let err = rotated.iter().zip(cg.values()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        prop_assert!(err < 1e-10, "C({},{},{}) not invariant: {}", l1, l2, l3, err);
    }
}

#[test]
fn generators_of_degree_one_generate_rotation_matrices() {
    let [xx, xy, xz] = so3_generators(1);
    // X_x e_y = e_z, X_y e_z = e_x, X_z e_x = e_y (right-handed).
    assert!((xx[2 * 3 + 1] - 1.0).abs() < 1e-15);
    assert!((xy[2] - 1.0).abs() < 1e-15);
    assert!((xz[3] - 1.0).abs() < 1e-15);
}

#[test]
fn identity_angles_give_identity() {
    for l in 0..8 {
        let d = wigner_d(l, 0.0, 0.0, 0.0);
        let id = identity(2 * l as usize + 1);
        let err = d
            .iter()
            .zip(&id)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-13, "l = {l}: {err}");
    }
}
