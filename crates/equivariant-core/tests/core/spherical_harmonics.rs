//! Spherical harmonics against e3nn 0.6.0 (`tests/fixtures/spherical_harmonics.json`),
//! equivariance, gradients against finite differences, and bad input.

use equivariant_core::Error;
use equivariant_core::kernels::{InstructionSet, with_instruction_set};
use equivariant_core::o3::{
    Irreps, Normalization, SphericalHarmonicsPlan, matvec3, rand_matrix, spherical_harmonics,
};
use equivariant_testing::{assert_close, f64s, load_fixture};
use proptest::prelude::*;
use rand::SeedableRng;

fn ls_of(v: &serde_json::Value) -> Vec<u32> {
    f64s(v).into_iter().map(|l| l as u32).collect()
}

#[test]
fn values_match_e3nn_up_to_l12_in_every_normalization() {
    let fixture = load_fixture!("spherical_harmonics");
    let x = f64s(&fixture["vectors"]);
    for case in fixture["cases"].as_array().unwrap() {
        let ls = ls_of(&case["ls"]);
        let normalize = case["normalize"].as_bool().unwrap();
        let normalization: Normalization = case["normalization"].as_str().unwrap().parse().unwrap();
        let sh = SphericalHarmonicsPlan::from_ls(&ls, normalize, normalization).unwrap();
        let mut out = vec![0.0; x.len() / 3 * sh.dim()];
        sh.compute(&x, &mut out).unwrap();
        let expected = f64s(&case["values"]);
        // Unnormalized degree-12 polynomials of |x| ~ 5 reach 1e8: compare relatively.
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let what = format!("{ls:?} normalize={normalize} {normalization}");
        assert_close(&what, &out, &expected, 1e-10 * scale);

        // f32 at 1e-5 (relative to each vector's scale).
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut out32 = vec![0.0f32; out.len()];
        sh.compute(&x32, &mut out32).unwrap();
        let out32: Vec<f64> = out32.into_iter().map(f64::from).collect();
        if normalize {
            assert_close(
                &format!("{what} f32"),
                &out32,
                &expected,
                1e-5 * (ls.len() as f64),
            );
        }
    }
}

#[test]
fn pseudovector_input_matches_e3nn() {
    let fixture = load_fixture!("spherical_harmonics");
    let x = f64s(&fixture["vectors"]);
    let case = &fixture["pseudovector"];
    let irreps: Irreps = case["irreps"].as_str().unwrap().parse().unwrap();
    let sh = SphericalHarmonicsPlan::new(&irreps, true, Normalization::Norm).unwrap();
    assert_eq!(
        sh.irreps_in().to_string(),
        case["irreps_in"].as_str().unwrap()
    );
    let out = spherical_harmonics(&irreps, &x, true, Normalization::Norm).unwrap();
    assert_close("pseudovector", &out, &f64s(&case["values"]), 1e-10);
}

#[test]
fn gradients_match_e3nn_autograd() {
    let fixture = load_fixture!("spherical_harmonics");
    let x = f64s(&fixture["vectors"]);
    for case in fixture["gradients"].as_array().unwrap() {
        let ls = ls_of(&case["ls"]);
        let normalize = case["normalize"].as_bool().unwrap();
        let normalization: Normalization = case["normalization"].as_str().unwrap().parse().unwrap();
        let sh = SphericalHarmonicsPlan::from_ls(&ls, normalize, normalization).unwrap();
        let x = &x[..18];
        let mut out = vec![0.0; 6 * sh.dim()];
        let mut grad = vec![0.0; 3 * out.len()];
        sh.compute_with_gradients(x, &mut out, &mut grad).unwrap();
        let expected = f64s(&case["grad"]);
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert_close(
            &format!("gradient {ls:?} normalize={normalize} {normalization}"),
            &grad,
            &expected,
            1e-10 * scale,
        );
    }
}

/// Values and gradients of `n` random vectors (one a zero vector) on one instruction set.
fn on_instruction_set<T: equivariant_core::Real>(
    sh: &SphericalHarmonicsPlan,
    set: InstructionSet,
    n: usize,
) -> (Vec<T>, Vec<T>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut x: Vec<T> = (0..3 * n)
        .map(|_| T::from_f64(rand::Rng::random_range(&mut rng, -2.0..2.0)))
        .collect();
    x[..3].fill(T::zero());
    let (mut out, mut grad) = (
        vec![T::zero(); n * sh.dim()],
        vec![T::zero(); 3 * n * sh.dim()],
    );
    with_instruction_set(set, || {
        let mut values = vec![T::zero(); n * sh.dim()];
        sh.compute(&x, &mut values).unwrap();
        sh.compute_with_gradients(&x, &mut out, &mut grad).unwrap();
        assert!(
            values == out,
            "{set:?}: compute and compute_with_gradients differ"
        );
    });
    (out, grad)
}

/// The AVX2 build of the lanes (and its transposed stores) and of the polynomials of
/// degrees up to 3 computes what the portable one does, bit for bit (no multiply-add is
/// fused), for degrees in any order and repeated (several stored runs), a count of vectors
/// that leaves a partial block, and both types.
#[test]
fn instruction_sets_agree_bit_for_bit() {
    for (ls, normalize) in [
        (vec![0, 1, 2, 3], true),
        (vec![2, 0, 2, 1], true),
        (vec![3, 0, 1, 1, 5, 6, 8], false),
    ] {
        let sh = SphericalHarmonicsPlan::from_ls(&ls, normalize, Normalization::Component).unwrap();
        for n in [1, 37, 1029] {
            let fast = on_instruction_set::<f32>(&sh, InstructionSet::detected(), n);
            assert!(fast == on_instruction_set::<f32>(&sh, InstructionSet::Portable, n));
            let fast = on_instruction_set::<f64>(&sh, InstructionSet::detected(), n);
            assert!(fast == on_instruction_set::<f64>(&sh, InstructionSet::Portable, n));
        }
    }
}

/// Degrees up to 3 (written as e3nn's polynomials, one vector at a time) asked in any
/// order and repeated, where each row is gathered from all components rather than written in
/// place: the values and gradients are exactly the matching columns of `0..=3`'s, which the
/// fixtures check against e3nn.
#[test]
fn low_degrees_in_any_order_are_the_columns_of_all_of_them() {
    let ls: [u32; 4] = [2, 0, 3, 2];
    let all = SphericalHarmonicsPlan::from_ls(&[0, 1, 2, 3], true, Normalization::Norm).unwrap();
    let some = SphericalHarmonicsPlan::from_ls(&ls, true, Normalization::Norm).unwrap();
    let n = 37;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let x: Vec<f64> = (0..3 * n)
        .map(|_| rand::Rng::random_range(&mut rng, -2.0..2.0))
        .collect();
    let run = |sh: &SphericalHarmonicsPlan| {
        let (mut out, mut grad) = (vec![0.0; n * sh.dim()], vec![0.0; 3 * n * sh.dim()]);
        sh.compute_with_gradients(&x, &mut out, &mut grad).unwrap();
        (out, grad)
    };
    let ((out, grad), (sub, sub_grad)) = (run(&all), run(&some));
    let columns: Vec<usize> = ls
        .iter()
        .flat_map(|&l| (l * l) as usize..((l + 1) * (l + 1)) as usize)
        .collect();
    let (d, e) = (all.dim(), some.dim());
    for i in 0..n {
        for (j, &c) in columns.iter().enumerate() {
            assert_eq!(sub[i * e + j], out[i * d + c], "value {c} of vector {i}");
            for a in 0..3 {
                let (got, want) = (sub_grad[(3 * i + a) * e + j], grad[(3 * i + a) * d + c]);
                assert_eq!(got, want, "d/dx{a} of component {c} of vector {i}");
            }
        }
    }
}

#[test]
fn zero_vector_matches_e3nn_and_is_finite() {
    let fixture = load_fixture!("spherical_harmonics");
    let case = &fixture["zero_vector"];
    let sh = SphericalHarmonicsPlan::from_ls(&ls_of(&case["ls"]), true, Normalization::Component)
        .unwrap();
    let mut out = vec![0.0; sh.dim()];
    let mut grad = vec![0.0; 3 * sh.dim()];
    sh.compute_with_gradients(&[0.0, 0.0, 0.0], &mut out, &mut grad)
        .unwrap();
    assert_close("value at 0", &out, &f64s(&case["values"]), 1e-10);
    let expected = f64s(&case["grad"]);
    assert_close(
        "gradient at 0",
        &grad,
        &expected,
        1e-10 * expected.iter().fold(1.0f64, |m, v| m.max(v.abs())),
    );
    assert!(grad.iter().all(|g| g.is_finite()));
}

#[test]
fn high_degree_is_finite_and_normalized() {
    // Beyond e3nn's l = 12: |Y^l(unit)|^2 = 2l + 1 in component normalization.
    let ls: Vec<u32> = (0..=40).collect();
    let sh = SphericalHarmonicsPlan::from_ls(&ls, true, Normalization::Component).unwrap();
    let mut out = vec![0.0; sh.dim()];
    sh.compute(&[0.3, -0.8, 0.52], &mut out).unwrap();
    for l in ls {
        let start = (l * l) as usize;
        let norm2: f64 = out[start..start + 2 * l as usize + 1]
            .iter()
            .map(|v| v * v)
            .sum();
        assert!(
            (norm2 / (2 * l + 1) as f64 - 1.0).abs() < 1e-10,
            "l = {l}: {norm2}"
        );
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let sh = SphericalHarmonicsPlan::from_ls(&[0, 1], true, Normalization::Component).unwrap();
    let mut out = vec![0.0; 4];
    assert!(matches!(
        sh.compute(&[1.0, 2.0], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        sh.compute(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        sh.compute(&[1.0, f64::NAN, 3.0], &mut out),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(SphericalHarmonicsPlan::from_ls(&[], true, Normalization::Component).is_err());
    assert!(
        SphericalHarmonicsPlan::new(&"1e+2o".parse().unwrap(), true, Normalization::Component)
            .is_err()
    );
    assert!("Component".parse::<Normalization>().is_err());
    let mut empty: Vec<f64> = vec![];
    assert!(sh.compute(&[], &mut empty).is_ok());
}

fn vector() -> impl Strategy<Value = [f64; 3]> {
    [-3.0..3.0f64, -3.0..3.0f64, -3.0..3.0f64].prop_filter("away from 0", |v| {
        v.iter().map(|x| x * x).sum::<f64>() > 1e-2
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn equivariant(v in vector(), seed in 0u64..1000, lmax in 0u32..13, normalize in any::<bool>()) {
        let r = rand_matrix(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let irreps = Irreps::spherical_harmonics(lmax, equivariant_core::o3::Parity::Odd);
        let sh = SphericalHarmonicsPlan::new(&irreps, normalize, Normalization::Component).unwrap();
        let dim = sh.dim();
        let (mut y, mut y_rot) = (vec![0.0; dim], vec![0.0; dim]);
        sh.compute(&v, &mut y).unwrap();
        sh.compute(&matvec3(&r, v), &mut y_rot).unwrap();
        let d = irreps.d_from_matrix(&r).unwrap();
        let scale = y.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for i in 0..dim {
            let dy: f64 = (0..dim).map(|j| d[i * dim + j] * y[j]).sum();
            prop_assert!((dy - y_rot[i]).abs() < 1e-10 * scale, "Y(Rx) != D(R) Y(x) at {}: {} vs {}", i, dy, y_rot[i]);
        }
    }

    #[test]
    fn gradient_matches_finite_differences(v in vector(), lmax in 0u32..13, normalize in any::<bool>()) {
        let ls: Vec<u32> = (0..=lmax).collect();
        let sh = SphericalHarmonicsPlan::from_ls(&ls, normalize, Normalization::Component).unwrap();
        let dim = sh.dim();
        let (mut y, mut grad) = (vec![0.0; dim], vec![0.0; 3 * dim]);
        sh.compute_with_gradients(&v, &mut y, &mut grad).unwrap();
        let h = 1e-6;
        for a in 0..3 {
            let (mut plus, mut minus) = (v, v);
            plus[a] += h;
            minus[a] -= h;
            let (mut yp, mut ym) = (vec![0.0; dim], vec![0.0; dim]);
            sh.compute(&plus, &mut yp).unwrap();
            sh.compute(&minus, &mut ym).unwrap();
            for k in 0..dim {
                let fd = (yp[k] - ym[k]) / (2.0 * h);
                let scale = 1.0 + fd.abs().max(y[k].abs());
                prop_assert!((fd - grad[a * dim + k]).abs() < 1e-6 * scale,
                    "d y[{}] / d x[{}]: analytic {} vs fd {}", k, a, grad[a * dim + k], fd);
            }
        }
    }

    /// `compute_tangent` is the gradient table along `s`; `tangent_backward` gives `J^T g`
    /// for the tangent and, for the vector, central differences of `g . J(v) s`.
    #[test]
    fn tangent_and_its_backward_match_gradients_and_differences(
        v in vector(),
        s in vector(),
        g in proptest::collection::vec(-2.0..2.0f64, 49),
        lmax in 0u32..7,
        normalize in any::<bool>(),
    ) {
        let ls: Vec<u32> = (0..=lmax).collect();
        let sh = SphericalHarmonicsPlan::from_ls(&ls, normalize, Normalization::Norm).unwrap();
        let dim = sh.dim();
        let g = &g[..dim];
        let (mut y, mut grad) = (vec![0.0; dim], vec![0.0; 3 * dim]);
        sh.compute_with_gradients(&v, &mut y, &mut grad).unwrap();
        let mut dy = vec![0.0; dim];
        sh.compute_tangent(&v, &s, &mut dy).unwrap();
        for k in 0..dim {
            let expected: f64 = (0..3).map(|a| grad[a * dim + k] * s[a]).sum();
            prop_assert!((dy[k] - expected).abs() < 1e-12 * (1.0 + expected.abs()),
                "dY[{}]: {} vs J s {}", k, dy[k], expected);
        }
        let (mut gv, mut gs) = ([0.0; 3], [0.0; 3]);
        sh.tangent_backward(&v, &s, g, &mut gv, &mut gs).unwrap();
        let g_dot_tangent = |v: [f64; 3]| {
            let mut dy = vec![0.0; dim];
            sh.compute_tangent(&v, &s, &mut dy).unwrap();
            dy.iter().zip(g).map(|(a, b)| a * b).sum::<f64>()
        };
        let h = 1e-6;
        for a in 0..3 {
            let jt_g: f64 = (0..dim).map(|k| grad[a * dim + k] * g[k]).sum();
            prop_assert!((gs[a] - jt_g).abs() < 1e-12 * (1.0 + jt_g.abs()),
                "dL/ds[{}]: {} vs J^T g {}", a, gs[a], jt_g);
            let (mut plus, mut minus) = (v, v);
            plus[a] += h;
            minus[a] -= h;
            let fd = (g_dot_tangent(plus) - g_dot_tangent(minus)) / (2.0 * h);
            prop_assert!((gv[a] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "dL/dv[{}]: {} vs central difference {}", a, gv[a], fd);
        }
    }
}

/// The backward from the kept gradients, `dL/dv[i, a] = sum_k grad[i, a, k] g[i, k]`,
/// against the sum written out, over several parallel chunks, f64; wrong lengths are errors.
#[test]
fn vector_jacobian_product_contracts_the_gradients() {
    let ls: Vec<u32> = (0..=3).collect();
    let sh = SphericalHarmonicsPlan::from_ls(&ls, true, Normalization::Component).unwrap();
    let (n, dim) = (1500, sh.dim());
    let v: Vec<f64> = (0..3 * n)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) / 17.0)
        .collect();
    let g: Vec<f64> = (0..n * dim)
        .map(|i| ((i * 13 % 29) as f64 - 14.0) / 9.0)
        .collect();
    let (mut y, mut grad) = (vec![0.0; n * dim], vec![0.0; n * 3 * dim]);
    sh.compute_with_gradients(&v, &mut y, &mut grad).unwrap();
    let mut out = vec![f64::NAN; 3 * n];
    sh.vector_jacobian_product(&grad, &g, &mut out).unwrap();
    let want: Vec<f64> = (0..3 * n)
        .map(|ia| {
            let (i, a) = (ia / 3, ia % 3);
            (0..dim)
                .map(|k| grad[(i * 3 + a) * dim + k] * g[i * dim + k])
                .sum()
        })
        .collect();
    assert_close("vector-Jacobian product", &out, &want, 1e-12);
    assert!(
        sh.vector_jacobian_product(&grad, &g[1..], &mut out)
            .is_err()
    );
    assert!(
        sh.vector_jacobian_product(&grad[1..], &g, &mut out)
            .is_err()
    );
}

/// The backward without kept gradients equals, bit for bit, the gradients then their
/// vector-Jacobian product, and both the contraction written out here, over several
/// parallel chunks and a partial one, f32 and f64, with the zero vector among the rows, for
/// the contraction's constant lengths (1, 4, 9, 16) and others; wrong lengths and a NaN are
/// errors.
#[test]
fn backward_equals_the_kept_gradients_contracted() {
    fn check<T: equivariant_core::Real>(sh: &SphericalHarmonicsPlan) {
        let (n, dim) = (1300, sh.dim());
        let mut v: Vec<T> = (0..3 * n)
            .map(|i| T::from_f64(((i * 37 % 101) as f64 - 50.0) / 17.0))
            .collect();
        v[3..6].fill(T::zero());
        let g: Vec<T> = (0..n * dim)
            .map(|i| T::from_f64(((i * 13 % 29) as f64 - 14.0) / 9.0))
            .collect();
        let (mut y, mut grad) = (vec![T::zero(); n * dim], vec![T::zero(); n * 3 * dim]);
        sh.compute_with_gradients(&v, &mut y, &mut grad).unwrap();
        let mut want = vec![T::zero(); 3 * n];
        sh.vector_jacobian_product(&grad, &g, &mut want).unwrap();
        let mut out = vec![T::from_f64(f64::NAN); 3 * n];
        sh.backward(&v, &g, &mut out).unwrap();
        assert_eq!(out, want, "{:?}", sh.ls());
        let written: Vec<T> = (0..3 * n)
            .map(|ia| {
                let (i, a) = (ia / 3, ia % 3);
                (0..dim).fold(T::zero(), |s, k| {
                    s + grad[(i * 3 + a) * dim + k] * g[i * dim + k]
                })
            })
            .collect();
        assert_eq!(want, written, "{:?}", sh.ls());
        assert!(sh.backward(&v, &g[1..], &mut out).is_err());
        assert!(sh.backward(&v, &g, &mut out[1..]).is_err());
        v[7] = T::from_f64(f64::NAN);
        assert!(matches!(
            sh.backward(&v, &g, &mut out),
            Err(Error::NonFinite { index: 7, .. })
        ));
    }
    for (ls, normalize) in [
        (vec![0], true),
        (vec![0, 1], true),
        (vec![0, 1, 2], false),
        (vec![0, 1, 2, 3], true),
        (vec![1, 2, 3], false),
        (vec![0, 4], true),
    ] {
        let sh = SphericalHarmonicsPlan::from_ls(&ls, normalize, Normalization::Component).unwrap();
        check::<f32>(&sh);
        check::<f64>(&sh);
    }
}

/// A NaN or infinite coordinate is an error naming the first one, wherever the parallel
/// chunks that check them split the input.
#[test]
fn the_first_non_finite_coordinate_is_named() {
    let sh = SphericalHarmonicsPlan::from_ls(&[0, 1, 2], true, Normalization::Component).unwrap();
    let n = 2000;
    let mut v = vec![0.5f32; 3 * n];
    v[4001] = f32::INFINITY;
    v[5000] = f32::NAN;
    let (mut y, mut grad) = (vec![0.0; n * sh.dim()], vec![0.0; 3 * n * sh.dim()]);
    for err in [
        sh.compute(&v, &mut y).unwrap_err(),
        sh.compute_with_gradients(&v, &mut y, &mut grad)
            .unwrap_err(),
    ] {
        assert_eq!(
            err,
            Error::NonFinite {
                what: "vectors",
                index: 4001
            }
        );
    }
}
