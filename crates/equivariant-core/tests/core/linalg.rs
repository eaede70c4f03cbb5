//! `math::linalg`, `math::perm`, `math::reduce` and `o3::ReducedTensorProducts` against
//! e3nn 0.6.0 (fixture `tests/fixtures/linalg.json`, from
//! `tools/reference/fixtures_linalg.py`), their algebraic properties and equivariance, and
//! malformed formulas.

use std::collections::{BTreeMap, BTreeSet};

use equivariant_core::Error;
use equivariant_core::math::{
    Matrix, complete_basis, direct_sum, eigh, germinate_formulas, orthonormalize, perm,
    reduce_permutation,
};
use equivariant_core::o3::{Irrep, Irreps, ReducedTensorProducts, rand_matrix};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

fn matrix(v: &Value) -> Matrix {
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    Matrix::new(n("rows"), n("cols"), f64s(&v["data"])).unwrap()
}

#[track_caller]
fn assert_matrix(what: &str, got: &Matrix, want: &Matrix) {
    assert_eq!(
        (got.rows(), got.cols()),
        (want.rows(), want.cols()),
        "{what}: shape"
    );
    assert_close(what, got.data(), want.data(), 1e-10);
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn orthonormalize_matches_e3nn() {
    let fixture = load_fixture!("linalg");
    for (k, case) in fixture["orthonormalize"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let original = matrix(&case["original"]);
        let (final_, a) = orthonormalize(&original, case["eps"].as_f64().unwrap()).unwrap();
        assert_matrix(&format!("case {k} final"), &final_, &matrix(&case["final"]));
        assert_matrix(&format!("case {k} matrix"), &a, &matrix(&case["matrix"]));
        // final = A original, with orthonormal rows.
        assert_matrix(
            &format!("case {k} A x"),
            &a.matmul(&original).unwrap(),
            &final_,
        );
        let gram = final_.matmul(&final_.transpose()).unwrap();
        assert_matrix(
            &format!("case {k} gram"),
            &gram,
            &Matrix::identity(final_.rows()),
        );
    }
    let nan = Matrix::new(1, 2, vec![f64::NAN, 0.0]).unwrap();
    assert!(matches!(
        orthonormalize(&nan, 1e-9),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn complete_basis_matches_e3nn() {
    let fixture = load_fixture!("linalg");
    for (k, case) in fixture["complete_basis"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let vecs = matrix(&case["vecs"]);
        let basis = complete_basis(&vecs, case["eps"].as_f64().unwrap()).unwrap();
        assert_matrix(&format!("case {k}"), &basis, &matrix(&case["basis"]));
        // Orthogonal to the given rows, completing them.
        assert_eq!(basis.rows() + vecs.rows(), vecs.cols(), "case {k}: a basis");
        let cross = basis.matmul(&vecs.transpose()).unwrap();
        assert!(cross.data().iter().all(|x| x.abs() < 1e-12), "case {k}");
    }
    let zero = Matrix::zeros(1, 3);
    assert!(matches!(
        complete_basis(&zero, 1e-9),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn direct_sum_matches_e3nn() {
    let fixture = load_fixture!("linalg");
    for case in fixture["direct_sum"].as_array().unwrap() {
        let ms: Vec<Matrix> = case["matrices"]
            .as_array()
            .unwrap()
            .iter()
            .map(matrix)
            .collect();
        assert_matrix("direct sum", &direct_sum(&ms), &matrix(&case["sum"]));
    }
}

#[test]
fn permutations_match_e3nn() {
    let fixture = load_fixture!("linalg");
    for case in fixture["perm"].as_array().unwrap() {
        let (n, i) = (
            case["n"].as_u64().unwrap() as usize,
            case["i"].as_u64().unwrap() as usize,
        );
        let p = perm::from_int(i, n);
        let what = format!("S{n} #{i}");
        assert_eq!(p, usizes(&case["p"]), "{what}");
        assert_eq!(perm::to_int(&p).unwrap(), i, "{what}");
        assert_eq!(
            perm::inverse(&p).unwrap(),
            usizes(&case["inverse"]),
            "{what}"
        );
        let q = usizes(&case["q"]);
        assert_eq!(
            perm::compose(&p, &q).unwrap(),
            usizes(&case["compose"]),
            "{what}"
        );
        let cycles: BTreeSet<Vec<usize>> = case["cycles"]
            .as_array()
            .unwrap()
            .iter()
            .map(usizes)
            .collect();
        assert_eq!(perm::to_cycles(&p).unwrap(), cycles, "{what}");
        assert_eq!(
            i64::from(perm::sign(&p).unwrap()),
            case["sign"].as_i64().unwrap(),
            "{what}"
        );
        let natural = perm::natural_representation(&p).unwrap();
        assert_matrix(
            &format!("{what} natural"),
            &natural,
            &matrix(&case["natural"]),
        );
        let standard = perm::standard_representation(&p).unwrap();
        assert_matrix(
            &format!("{what} standard"),
            &standard,
            &matrix(&case["standard"]),
        );
    }
    // Representations: D(p q) = D(p) D(q), for the standard one too.
    for p in perm::group(4) {
        for q in perm::group(4) {
            let pq = perm::compose(&p, &q).unwrap();
            for rep in [perm::natural_representation, perm::standard_representation] {
                let product = rep(&p).unwrap().matmul(&rep(&q).unwrap()).unwrap();
                assert_matrix("D(pq) = D(p) D(q)", &rep(&pq).unwrap(), &product);
            }
        }
    }
    assert!(perm::is_group(&perm::group(4)));
    let generators: BTreeSet<_> = [vec![1, 0, 2, 3], vec![1, 2, 3, 0]].into();
    assert_eq!(perm::germinate(&generators).unwrap(), perm::group(4));
    assert!(perm::compose(&[0, 0], &[0, 1]).is_err());
    assert!(perm::inverse(&[2, 0]).is_err());
}

#[test]
fn reduced_permutations_match_e3nn() {
    let fixture = load_fixture!("linalg");
    for case in fixture["reduce"].as_array().unwrap() {
        let formula = case["formula"].as_str().unwrap();
        let (f0, group) = germinate_formulas(formula).unwrap();
        assert_eq!(f0, case["f0"].as_str().unwrap(), "{formula}");
        let want_group: BTreeSet<(i8, Vec<usize>)> = case["group"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g[0].as_i64().unwrap() as i8, usizes(&g[1])))
            .collect();
        assert_eq!(group, want_group, "{formula}: the group");
        let dims: BTreeMap<char, usize> = case["dims"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.chars().next().unwrap(), v.as_u64().unwrap() as usize))
            .collect();
        let reduced = reduce_permutation(&f0, &group, &dims).unwrap();
        assert_eq!(reduced.shape, usizes(&case["shape"]), "{formula}: shape");
        assert_close(
            &format!("{formula}: Q"),
            &reduced.q,
            &f64s(&case["q"]),
            1e-10,
        );
        let entries: Vec<Vec<(i8, Vec<usize>)>> = case["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|xs| {
                xs.as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (e[0].as_i64().unwrap() as i8, usizes(&e[1])))
                    .collect()
            })
            .collect();
        assert_eq!(reduced.entries, entries, "{formula}: entries");
        // Q Q^T = I: an orthonormal basis.
        let (d, total) = (reduced.shape[0], reduced.q.len() / reduced.shape[0].max(1));
        let q = Matrix::new(d, total, reduced.q.clone()).unwrap();
        assert_matrix(
            &format!("{formula}: Q Q^T"),
            &q.matmul(&q.transpose()).unwrap(),
            &Matrix::identity(d),
        );
    }
}

#[test]
fn malformed_formulas_are_typed_errors() {
    for (formula, needle) in [
        ("-ij=ji", "negated"),
        ("ii", "repeats"),
        ("ij=jk", "not a permutation"),
        ("ij=ijk", "not a permutation"),
    ] {
        match germinate_formulas(formula) {
            Err(Error::InvalidFormula { reason, .. }) => {
                assert!(reason.contains(needle), "{formula}: {reason}")
            }
            other => panic!("{formula}: {other:?}"),
        }
    }
    let (f0, group) = germinate_formulas("ij=ji").unwrap();
    let mismatch = BTreeMap::from([('i', 2), ('j', 3)]);
    assert!(matches!(
        reduce_permutation(&f0, &group, &mismatch),
        Err(Error::InvalidFormula { .. })
    ));
    let (f0, group) = germinate_formulas("ijk=jik").unwrap();
    let missing = BTreeMap::from([('i', 2)]);
    match reduce_permutation(&f0, &group, &missing) {
        Err(Error::InvalidFormula { reason, .. }) => {
            assert!(reason.contains("index k"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

fn irreps_map(v: &Value) -> BTreeMap<char, Irreps> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.chars().next().unwrap(),
                v.as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn filter(v: &Value) -> Option<Vec<Irrep>> {
    v.as_array().map(|a| {
        a.iter()
            .map(|s| s.as_str().unwrap().parse().unwrap())
            .collect()
    })
}

#[test]
fn reduced_tensor_products_match_e3nn() {
    let fixture = load_fixture!("linalg");
    for case in fixture["reduced_tensor_products"].as_array().unwrap() {
        let formula = case["formula"].as_str().unwrap();
        let (out, mid) = (
            filter(&case["filter_ir_out"]),
            filter(&case["filter_ir_mid"]),
        );
        let tp = ReducedTensorProducts::new(
            formula,
            &irreps_map(&case["irreps"]),
            out.as_deref(),
            mid.as_deref(),
            1e-9,
        )
        .unwrap();
        let what = format!("{formula} {}", case["irreps"]);
        let irreps_in: Vec<String> = tp.irreps_in().iter().map(|i| i.to_string()).collect();
        let want_in: Vec<&str> = case["irreps_in"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(irreps_in, want_in, "{what}: irreps_in");
        assert_eq!(
            tp.irreps_out().to_string(),
            case["irreps_out"].as_str().unwrap(),
            "{what}"
        );
        assert_eq!(tp.shape(), usizes(&case["shape"]), "{what}: shape");
        let want = f64s(&case["change_of_basis"]);
        assert_close(
            &format!("{what}: change_of_basis"),
            tp.change_of_basis(),
            &want,
            1e-10,
        );
        let inputs: Vec<Vec<f64>> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(f64s)
            .collect();
        let refs: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
        let got = tp.forward(&refs).unwrap();
        assert_close(
            &format!("{what}: forward"),
            &got,
            &f64s(&case["forward"]),
            1e-10,
        );

        // Equivariance: forward(D_1 x_1, ..., D_k x_k) = D_out forward(x_1, ..., x_k), for a
        // rotation and an inversion.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let r = rand_matrix(&mut rng);
        for r in [r, r.map(|row| row.map(|x| -x))] {
            let apply = |irreps: &Irreps, x: &[f64]| -> Vec<f64> {
                let d = irreps.d_from_matrix(&r).unwrap();
                let n = x.len();
                (0..n)
                    .map(|i| (0..n).map(|j| d[i * n + j] * x[j]).sum())
                    .collect()
            };
            let rotated: Vec<Vec<f64>> = tp
                .irreps_in()
                .iter()
                .zip(&inputs)
                .map(|(irs, x)| apply(irs, x))
                .collect();
            let refs: Vec<&[f64]> = rotated.iter().map(Vec::as_slice).collect();
            let lhs = tp.forward(&refs).unwrap();
            let rhs = apply(tp.irreps_out(), &got);
            assert_close(&format!("{what}: equivariance"), &lhs, &rhs, 1e-10);
        }
    }
}

#[test]
fn reduced_tensor_products_bad_input_is_typed() {
    let vector: Irreps = "1o".parse().unwrap();
    let cases = [
        ("ij=ji", BTreeMap::new(), "no irreps"),
        (
            "ij=ji",
            BTreeMap::from([('i', vector.clone()), ('j', "1e".parse().unwrap())]),
            "must have the same irreps",
        ),
        (
            "ij",
            BTreeMap::from([
                ('i', vector.clone()),
                ('j', vector.clone()),
                ('k', vector.clone()),
            ]),
            "not in the formula",
        ),
        (
            "ij=jk",
            BTreeMap::from([('i', vector.clone())]),
            "not a permutation",
        ),
    ];
    for (formula, irreps, needle) in cases {
        match ReducedTensorProducts::new(formula, &irreps, None, None, 1e-9) {
            Err(Error::InvalidFormula { reason, .. }) => {
                assert!(reason.contains(needle), "{formula}: {reason}")
            }
            other => panic!("{formula}: {other:?}"),
        }
    }
    let tp = ReducedTensorProducts::new(
        "ij",
        &BTreeMap::from([('i', vector.clone()), ('j', vector)]),
        None,
        None,
        1e-9,
    )
    .unwrap();
    assert!(matches!(
        tp.forward(&[&[0.0; 3], &[0.0; 2]]),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// `A V = V diag(values)`, `V` orthogonal, values ascending, on seeded symmetric matrices
/// with repeated eigenvalues among them.
#[test]
fn eigh_diagonalizes_symmetric_matrices() {
    use rand::Rng;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    for n in [1, 2, 5, 12] {
        let b = Matrix::new(
            n,
            n,
            (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect(),
        )
        .unwrap();
        for a in [
            b.matmul(&b.transpose()).unwrap(),
            Matrix::identity(n),
            direct_sum(&[Matrix::identity(n / 2), b.matmul(&b.transpose()).unwrap()]),
        ] {
            let (values, v) = eigh(&a).unwrap();
            assert!(values.windows(2).all(|w| w[0] <= w[1]), "ascending");
            let av = a.matmul(&v).unwrap();
            let scaled: Vec<f64> = (0..a.rows() * a.rows())
                .map(|k| v.data()[k] * values[k % a.rows()])
                .collect();
            assert_close("A V = V L", av.data(), &scaled, 1e-12);
            let gram = v.transpose().matmul(&v).unwrap();
            assert_matrix("V^T V = I", &gram, &Matrix::identity(a.rows()));
        }
    }
    assert!(eigh(&Matrix::new(2, 2, vec![0.0, 1.0, 2.0, 0.0]).unwrap()).is_err());
}

#[test]
fn cartesian_tensors_match_e3nn() {
    use equivariant_core::io::CartesianTensor;
    let fixture = load_fixture!("linalg");
    for case in fixture["cartesian_tensor"].as_array().unwrap() {
        let formula = case["formula"].as_str().unwrap();
        let x = CartesianTensor::new(formula).unwrap();
        assert_eq!(
            x.irreps().to_string(),
            case["irreps"].as_str().unwrap(),
            "{formula}"
        );
        let tensors = f64s(&case["tensors"]);
        let irreps = x.from_cartesian(&tensors).unwrap();
        let check = |what: &str, got: &[f64], key: &str| {
            assert_close(&format!("{formula}: {what}"), got, &f64s(&case[key]), 1e-10)
        };
        check("from_cartesian", &irreps, "from_cartesian");
        let round_trip = x.to_cartesian(&irreps).unwrap();
        check("round trip", &round_trip, "round_trip");
        // The round trip keeps the symmetric part: applied twice it changes nothing.
        let again = x
            .to_cartesian(&x.from_cartesian(&round_trip).unwrap())
            .unwrap();
        assert_close(
            &format!("{formula}: projection"),
            &again,
            &round_trip,
            1e-12,
        );
        check(
            "to_cartesian",
            &x.to_cartesian(&f64s(&case["irreps_data"])).unwrap(),
            "to_cartesian",
        );
        let vectors: Vec<Vec<f64>> = case["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(f64s)
            .collect();
        let refs: Vec<&[f64]> = vectors.iter().map(Vec::as_slice).collect();
        check(
            "from_vectors",
            &x.from_vectors(&refs).unwrap(),
            "from_vectors",
        );
    }
    let x = CartesianTensor::new("ij").unwrap();
    assert!(matches!(
        x.from_cartesian(&[0.0; 8]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        x.to_cartesian(&[0.0; 8]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        CartesianTensor::new("-ij=ji"),
        Err(Error::InvalidFormula { .. })
    ));
}
