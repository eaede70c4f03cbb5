//! `math::linalg`, `math::perm` and `math::reduce` against e3nn 0.6.0 (fixture
//! `tests/fixtures/linalg.json`, from `tools/reference/fixtures_linalg.py`), their algebraic
//! properties, and malformed formulas.

use std::collections::{BTreeMap, BTreeSet};

use equivariant_core::Error;
use equivariant_core::math::{
    Matrix, complete_basis, direct_sum, germinate_formulas, orthonormalize, perm,
    reduce_permutation,
};
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
