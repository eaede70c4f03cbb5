//! Irreps against e3nn 0.6.0 (`tests/fixtures/irreps.json`) and parser properties.

use equivariant_core::Error;
use equivariant_core::o3::{Irrep, Irreps, MulIr, Parity};
use proptest::prelude::*;
use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

#[test]
fn every_operation_matches_e3nn() {
    let fixture = equivariant_testing::load_fixture!("irreps");
    let keep: Irreps = "0e + 1o".parse().unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let text = s(&case["text"]);
        let irreps: Irreps = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let at = |key: &str| format!("{text:?}: {key}");
        assert_eq!(irreps.to_string(), s(&case["str"]), "{}", at("str"));
        assert_eq!(
            irreps.dim(),
            case["dim"].as_u64().unwrap() as usize,
            "{}",
            at("dim")
        );
        assert_eq!(
            irreps.num_irreps(),
            case["num_irreps"].as_u64().unwrap() as usize
        );
        let ls: Vec<usize> = irreps.ls().into_iter().map(|l| l as usize).collect();
        assert_eq!(ls, usizes(&case["ls"]), "{}", at("ls"));
        match case["lmax"].as_u64() {
            Some(lmax) => assert_eq!(irreps.lmax().unwrap() as u64, lmax),
            None => assert!(matches!(irreps.lmax(), Err(Error::EmptyIrreps { .. }))),
        }
        let slices: Vec<Vec<usize>> = irreps
            .slices()
            .into_iter()
            .map(|r| vec![r.start, r.end])
            .collect();
        let expected: Vec<Vec<usize>> = case["slices"]
            .as_array()
            .unwrap()
            .iter()
            .map(usizes)
            .collect();
        assert_eq!(slices, expected, "{}", at("slices"));
        assert_eq!(
            irreps.simplify().to_string(),
            s(&case["simplify"]),
            "{}",
            at("simplify")
        );
        let sorted = irreps.sort();
        assert_eq!(
            sorted.irreps.to_string(),
            s(&case["sort_irreps"]),
            "{}",
            at("sort")
        );
        assert_eq!(sorted.p, usizes(&case["sort_p"]), "{}", at("sort p"));
        assert_eq!(sorted.inv, usizes(&case["sort_inv"]), "{}", at("sort inv"));
        assert_eq!(
            irreps.regroup().to_string(),
            s(&case["regroup"]),
            "{}",
            at("regroup")
        );
        assert_eq!(
            irreps.remove_zero_multiplicities().to_string(),
            s(&case["remove_zero_multiplicities"])
        );
        assert_eq!(
            irreps.filter(Some(&keep), None, None).to_string(),
            s(&case["filter_keep_0e_1o"])
        );
        assert_eq!(
            irreps.filter(None, Some(&keep), None).to_string(),
            s(&case["filter_drop_0e_1o"])
        );
        assert_eq!(
            irreps.filter(None, None, Some(1)).to_string(),
            s(&case["filter_lmax_1"])
        );
        assert_eq!(
            irreps.count(&"0e".parse().unwrap()) as u64,
            case["count_0e"].as_u64().unwrap()
        );
        assert_eq!(
            irreps.count(&"1o".parse().unwrap()) as u64,
            case["count_1o"].as_u64().unwrap()
        );
        assert_eq!(
            (&irreps * 2).to_string(),
            s(&case["times_2"]),
            "{}",
            at("* 2")
        );
        let plus = &irreps + &"1x2e".parse::<Irreps>().unwrap();
        assert_eq!(plus.to_string(), s(&case["plus_1x2e"]), "{}", at("+"));
    }
}

#[test]
fn strings_e3nn_rejects_are_typed_errors_naming_the_text() {
    let fixture = equivariant_testing::load_fixture!("irreps");
    for text in fixture["invalid"].as_array().unwrap() {
        let text = s(text);
        match text.parse::<Irreps>() {
            Err(Error::InvalidIrreps { text: t, .. }) => assert_eq!(t, text),
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    let err = "10x0e + 3q".parse::<Irreps>().unwrap_err().to_string();
    assert!(err.contains("3q"), "{err}");
    assert!(matches!(
        "5".parse::<Irrep>(),
        Err(Error::InvalidIrrep { .. })
    ));
}

#[test]
fn irrep_products_match_e3nn() {
    let fixture = equivariant_testing::load_fixture!("irreps");
    for case in fixture["products"].as_array().unwrap() {
        let a: Irrep = s(&case["a"]).parse().unwrap();
        let b: Irrep = s(&case["b"]).parse().unwrap();
        let got: Vec<String> = (a * b).iter().map(ToString::to_string).collect();
        let expected: Vec<&str> = case["out"].as_array().unwrap().iter().map(s).collect();
        assert_eq!(got, expected, "{a} * {b}");
    }
}

#[test]
fn spherical_harmonics_irreps_match_e3nn() {
    let fixture = equivariant_testing::load_fixture!("irreps");
    for (key, expected) in fixture["spherical_harmonics"].as_object().unwrap() {
        let (lmax, p) = key.split_once(',').unwrap();
        let p = if p == "1" { Parity::Even } else { Parity::Odd };
        let got = Irreps::spherical_harmonics(lmax.parse().unwrap(), p);
        assert_eq!(got.to_string(), s(expected), "{key}");
    }
}

#[test]
fn indexing_and_slicing() {
    let irreps: Irreps = "1x0e+2x1o+3x2e".parse().unwrap();
    assert_eq!(irreps[1], MulIr::new(2, Irrep::new(1, Parity::Odd)));
    assert!(matches!(
        irreps.get(3),
        Err(Error::IndexOutOfRange { index: 3, len: 3 })
    ));
    assert_eq!(irreps.slice(0..0).unwrap(), Irreps::new());
    assert!(irreps.slice(2..4).is_err());
    assert_eq!(3 * Irrep::new(1, Parity::Odd), "3x1o".parse().unwrap());
    assert_ne!("1e+1e".parse::<Irreps>().unwrap(), "2x1e".parse().unwrap());
}

#[test]
fn randn_norm_gives_unit_instances() {
    use equivariant_core::o3::irreps::RandnNormalization;
    use rand::SeedableRng;
    let irreps: Irreps = "3x0e+2x1o+1x2e".parse().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let x: Vec<f64> = irreps.randn(7, RandnNormalization::Norm, &mut rng);
    for row in x.chunks(irreps.dim()) {
        let mut at = 0;
        for l in irreps.ls() {
            let d = 2 * l as usize + 1;
            let norm: f64 = row[at..at + d].iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-12);
            at += d;
        }
    }
    let x: Vec<f64> = irreps.randn(20000, RandnNormalization::Component, &mut rng);
    let second_moment = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    assert!((second_moment - 1.0).abs() < 0.02, "{second_moment}");
}

fn arb_irreps() -> impl Strategy<Value = Irreps> {
    prop::collection::vec((0usize..200, 0u32..20, any::<bool>()), 0..8).prop_map(|v| {
        v.into_iter()
            .map(|(mul, l, even)| {
                MulIr::new(
                    mul,
                    Irrep::new(l, if even { Parity::Even } else { Parity::Odd }),
                )
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn display_parse_round_trip(irreps in arb_irreps()) {
        let text = irreps.to_string();
        prop_assert_eq!(text.parse::<Irreps>().unwrap(), irreps);
    }

    #[test]
    fn sort_permutations_are_inverse(irreps in arb_irreps()) {
        let sorted = irreps.sort();
        for (i, &j) in sorted.p.iter().enumerate() {
            prop_assert_eq!(sorted.inv[j], i);
            prop_assert_eq!(sorted.irreps[j], irreps[i]);
        }
        prop_assert_eq!(sorted.irreps.dim(), irreps.dim());
    }

    #[test]
    fn regroup_is_sorted_and_keeps_counts(irreps in arb_irreps()) {
        let regrouped = irreps.regroup();
        for pair in regrouped.entries().windows(2) {
            prop_assert!(pair[0].ir < pair[1].ir);
        }
        for m in &irreps {
            prop_assert_eq!(regrouped.count(&m.ir), irreps.count(&m.ir));
        }
    }
}
