//! `o3::Legendre`, the harmonics of Euler angles and the sphere grids (`s2_grid`, `rfft`,
//! `ToS2GridPlan`, `FromS2GridPlan`) against e3nn 0.6.0 (fixture `tests/fixtures/s2.json`, from
//! `tools/reference/fixtures_s2.py`), their round trips, adjointness, equivariance and bad
//! input.

use equivariant_core::Error;
use equivariant_core::o3::{
    FromS2GridPlan, Irreps, Legendre, Normalization, ToS2GridPlan, angles_to_xyz,
    complete_lmax_res, irfft, quadrature_weights, rfft, s2_grid, spherical_harmonics,
    spherical_harmonics_alpha, spherical_harmonics_alpha_beta, spherical_harmonics_s2_grid,
    wigner_d,
};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn opt_u32(v: &Value) -> Option<u32> {
    v.as_u64().map(|x| x as u32)
}

fn normalization(v: &Value) -> Normalization {
    v.as_str().unwrap().parse().unwrap()
}

/// e3nn's `res`: `None`, an int (`res_beta`) or `[res_beta, res_alpha]`.
fn resolution(v: &Value) -> (Option<usize>, Option<usize>) {
    match v {
        Value::Null => (None, None),
        Value::Number(n) => (Some(n.as_u64().unwrap() as usize), None),
        Value::Array(a) => (
            Some(a[0].as_u64().unwrap() as usize),
            Some(a[1].as_u64().unwrap() as usize),
        ),
        other => panic!("res {other}"),
    }
}

#[test]
fn legendre_matches_e3nn() {
    let fixture = load_fixture!("s2");
    for case in fixture["legendre"].as_array().unwrap() {
        let ls = u32s(&case["ls"]);
        let legendre = Legendre::new(&ls).unwrap();
        let (z, y) = (f64s(&case["z"]), f64s(&case["y"]));
        let mut out = vec![0.0; z.len() * legendre.dim()];
        legendre.compute(&z, &y, &mut out).unwrap();
        assert_close(&format!("Legendre{ls:?}"), &out, &f64s(&case["out"]), 1e-10);
    }
}

#[test]
fn harmonics_of_angles_match_e3nn_and_the_harmonics_of_points() {
    let fixture = load_fixture!("s2");
    for case in fixture["sh_alpha"].as_array().unwrap() {
        let l = case["l"].as_u64().unwrap() as u32;
        let alpha = f64s(&case["alpha"]);
        let mut out = vec![0.0; alpha.len() * (2 * l as usize + 1)];
        spherical_harmonics_alpha(l, &alpha, &mut out).unwrap();
        assert_close(&format!("sh_alpha l={l}"), &out, &f64s(&case["out"]), 1e-10);
    }
    for case in fixture["sh_alpha_beta"].as_array().unwrap() {
        let ls = u32s(&case["ls"]);
        let norm = normalization(&case["normalization"]);
        let (alpha, beta) = (f64s(&case["alpha"]), f64s(&case["beta"]));
        let want = f64s(&case["out"]);
        let mut out = vec![0.0; want.len()];
        spherical_harmonics_alpha_beta(&ls, &alpha, &beta, norm, &mut out).unwrap();
        let what = format!("sh_alpha_beta {ls:?} {norm}");
        assert_close(&what, &out, &want, 1e-10);
        // The same as the harmonics of the points (sin b sin a, cos b, sin b cos a).
        let irreps: Irreps = ls
            .iter()
            .map(|l| format!("1x{l}{}", if l % 2 == 0 { "e" } else { "o" }))
            .collect::<Vec<_>>()
            .join("+")
            .parse()
            .unwrap();
        let points: Vec<f64> = alpha
            .iter()
            .zip(&beta)
            .flat_map(|(&a, &b)| angles_to_xyz(a, b))
            .collect();
        let sh = spherical_harmonics(&irreps, &points, false, norm).unwrap();
        assert_close(&format!("{what} = Y(xyz)"), &out, &sh, 1e-12);
    }
}

#[test]
fn grids_weights_and_grid_harmonics_match_e3nn() {
    let fixture = load_fixture!("s2");
    for case in fixture["s2_grid"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let (betas, alphas) = s2_grid(n("res_beta"), n("res_alpha"));
        assert_close("betas", &betas, &f64s(&case["betas"]), 1e-14);
        assert_close("alphas", &alphas, &f64s(&case["alphas"]), 1e-14);
    }
    for case in fixture["quadrature_weights"].as_array().unwrap() {
        let b = case["b"].as_u64().unwrap() as usize;
        assert_close(
            &format!("quadrature_weights({b})"),
            &quadrature_weights(b),
            &f64s(&case["out"]),
            1e-14,
        );
    }
    for case in fixture["spherical_harmonics_s2_grid"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let (shb, sha) =
            spherical_harmonics_s2_grid(n("lmax") as u32, n("res_beta"), n("res_alpha"));
        assert_close("shb", &shb, &f64s(&case["shb"]), 1e-10);
        assert_close("sha", &sha, &f64s(&case["sha"]), 1e-10);
    }
}

#[test]
fn completed_resolutions_match_e3nn_and_its_refusals() {
    let fixture = load_fixture!("s2");
    for case in fixture["complete_lmax_res"].as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().map(|x| x as usize);
        let got = complete_lmax_res(opt_u32(&case["lmax"]), n("res_beta"), n("res_alpha"));
        match &case["out"] {
            Value::Null => assert!(
                matches!(got, Err(Error::InvalidArgument { .. })),
                "{case}: {got:?}"
            ),
            want => {
                let w = want.as_array().unwrap();
                let want = (
                    w[0].as_u64().unwrap() as u32,
                    w[1].as_u64().unwrap() as usize,
                    w[2].as_u64().unwrap() as usize,
                );
                assert_eq!(got.unwrap(), want, "{case}");
            }
        }
    }
}

#[test]
fn fourier_transforms_match_e3nn() {
    let fixture = load_fixture!("s2");
    for name in ["rfft", "irfft"] {
        for case in fixture[name].as_array().unwrap() {
            let (res, l) = (
                case["res"].as_u64().unwrap() as usize,
                case["l"].as_u64().unwrap() as u32,
            );
            let (x, want) = (f64s(&case["x"]), f64s(&case["out"]));
            let mut out = vec![0.0; want.len()];
            match name {
                "rfft" => rfft(&x, res, l, &mut out),
                _ => irfft(&x, l, res, &mut out),
            }
            .unwrap();
            assert_close(&format!("{name} res {res} l {l}"), &out, &want, 1e-10);
        }
    }
    let mut out = [0.0; 9];
    assert!(matches!(
        irfft(&[0.0; 3], 1, 4, &mut out[..4]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        irfft(&[0.0; 5], 2, 3, &mut out[..3]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        rfft(&[0.0; 4], 4, 3, &mut out[..7]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        rfft(&[0.0; 5], 4, 1, &mut out[..3]),
        Err(Error::ShapeMismatch { .. })
    ));
}

fn to_s2(case: &Value) -> ToS2GridPlan {
    let (rb, ra) = resolution(&case["res"]);
    ToS2GridPlan::new(
        opt_u32(&case["lmax"]),
        rb,
        ra,
        normalization(&case["normalization"]),
    )
    .unwrap()
}

fn from_s2(case: &Value) -> FromS2GridPlan {
    let (rb, ra) = resolution(&case["res"]);
    FromS2GridPlan::new(
        rb,
        ra,
        opt_u32(&case["lmax"]),
        normalization(&case["normalization"]),
        opt_u32(&case["lmax_in"]),
    )
    .unwrap()
}

fn completed(case: &Value) -> (u32, usize, usize) {
    let c = &case["completed"];
    (
        c[0].as_u64().unwrap() as u32,
        c[1].as_u64().unwrap() as usize,
        c[2].as_u64().unwrap() as usize,
    )
}

/// A transform against one fixture case: its completed resolution, its forward of `x` and
/// its backward of `g` (e3nn's gradient of `sum(out * g)`).
fn check_case(
    what: &str,
    case: &Value,
    resolution: (u32, usize, usize),
    forward: impl Fn(&[f64], &mut [f64]) -> Result<(), Error>,
    backward: impl Fn(&[f64], &mut [f64]) -> Result<(), Error>,
) {
    assert_eq!(resolution, completed(case), "{what}");
    for (run, input, want, name) in [
        (
            &forward as &dyn Fn(&[f64], &mut [f64]) -> Result<(), Error>,
            "x",
            "out",
            "forward",
        ),
        (&backward, "g", "grad", "backward"),
    ] {
        let want = f64s(&case[want]);
        let mut out = vec![0.0; want.len()];
        run(&f64s(&case[input]), &mut out).unwrap();
        assert_close(&format!("{what} {name}"), &out, &want, 1e-10);
    }
}

#[test]
fn grid_transforms_match_e3nn_forward_and_gradient() {
    let fixture = load_fixture!("s2");
    for case in fixture["to_s2"].as_array().unwrap() {
        let m = to_s2(case);
        let what = format!(
            "ToS2Grid({}, {}, {})",
            case["lmax"], case["res"], case["normalization"]
        );
        let resolution = (m.lmax(), m.res_beta(), m.res_alpha());
        check_case(
            &what,
            case,
            resolution,
            |x, o| m.forward(x, o),
            |g, o| m.backward(g, o),
        );
    }
    for case in fixture["from_s2"].as_array().unwrap() {
        let m = from_s2(case);
        let what = format!(
            "FromS2Grid({}, {}, {}, lmax_in {})",
            case["res"], case["lmax"], case["normalization"], case["lmax_in"]
        );
        let resolution = (m.lmax(), m.res_beta(), m.res_alpha());
        check_case(
            &what,
            case,
            resolution,
            |x, o| m.forward(x, o),
            |g, o| m.backward(g, o),
        );
    }
}

fn signal(n: usize, seed: u64) -> Vec<f64> {
    // A fixed, irregular sequence (no RNG needed for these checks).
    (0..n)
        .map(|i| ((i as f64 + 1.0) * (seed as f64 + 1.7)).sin() * 1.3)
        .collect()
}

#[test]
fn from_s2_grid_inverts_to_s2_grid_for_every_normalization_and_resolution() {
    for norm in [
        Normalization::Component,
        Normalization::Norm,
        Normalization::Integral,
    ] {
        for (lmax, rb, ra) in [
            (0, 2, 1),
            (3, 8, 7),
            (4, 10, 11),
            (5, 16, 12),
            (8, 18, 17),
            (6, 20, 30),
        ] {
            let to = ToS2GridPlan::new(Some(lmax), Some(rb), Some(ra), norm).unwrap();
            let from = FromS2GridPlan::new(Some(rb), Some(ra), Some(lmax), norm, None).unwrap();
            let z = 300; // more than one parallel chunk, the last one partial
            let x = signal(z * to.dim(), lmax as u64);
            let mut grid = vec![0.0; z * rb * ra];
            to.forward(&x, &mut grid).unwrap();
            let mut back = vec![0.0; x.len()];
            from.forward(&grid, &mut back).unwrap();
            assert_close(&format!("{norm} lmax {lmax} {rb}x{ra}"), &back, &x, 1e-11);
            // f32 the same up to rounding.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut grid32 = vec![0.0f32; grid.len()];
            to.forward(&x32, &mut grid32).unwrap();
            let g: Vec<f64> = grid32.iter().map(|&v| v as f64).collect();
            let scale = grid.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert_close(&format!("{norm} f32"), &g, &grid, 1e-5 * scale);
            // And back in f32 (the transposes' vector path for f32).
            let mut back32 = vec![0.0f32; x.len()];
            from.forward(&grid32, &mut back32).unwrap();
            let b: Vec<f64> = back32.iter().map(|&v| v as f64).collect();
            let scale = x.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            assert_close(&format!("{norm} f32 back"), &b, &x, 1e-4 * scale);
        }
    }
}

#[test]
fn backward_is_the_transpose_of_forward() {
    // <to(x), g> = <x, to^T(g)> and <from(f), h> = <f, from^T(h)>.
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let to = ToS2GridPlan::new(Some(4), Some(12), Some(9), Normalization::Component).unwrap();
    let from =
        FromS2GridPlan::new(Some(12), Some(9), Some(4), Normalization::Norm, Some(5)).unwrap();
    let (x, g) = (signal(3 * 25, 1), signal(3 * 12 * 9, 2));
    let mut y = vec![0.0; g.len()];
    to.forward(&x, &mut y).unwrap();
    let mut xt = vec![0.0; x.len()];
    to.backward(&g, &mut xt).unwrap();
    assert!((dot(&y, &g) - dot(&x, &xt)).abs() < 1e-10 * dot(&y, &g).abs().max(1.0));
    let mut c = vec![0.0; x.len()];
    from.forward(&g, &mut c).unwrap();
    let mut gt = vec![0.0; g.len()];
    from.backward(&x, &mut gt).unwrap();
    assert!((dot(&c, &x) - dot(&g, &gt)).abs() < 1e-10 * dot(&c, &x).abs().max(1.0));
}

#[test]
fn grid_samples_are_the_harmonics_at_the_grid_points_and_rotate_with_the_signal() {
    let lmax = 4u32;
    let (rb, ra) = (10, 11);
    let to = ToS2GridPlan::new(Some(lmax), Some(rb), Some(ra), Normalization::Integral).unwrap();
    let x = signal(to.dim(), 5);
    let mut grid = vec![0.0; rb * ra];
    to.forward(&x, &mut grid).unwrap();
    let irreps: Irreps = "0e+1o+2e+3o+4e".parse().unwrap();
    let points = to.grid();
    let sh = spherical_harmonics(&irreps, &points, false, Normalization::Integral).unwrap();
    let want: Vec<f64> = sh
        .chunks_exact(to.dim())
        .map(|y| y.iter().zip(&x).map(|(a, b)| a * b).sum())
        .collect();
    assert_close("f(x_ba) = F . Y(x_ba)", &grid, &want, 1e-12);

    // Rotating the coefficients about y by one alpha step shifts the grid by one column:
    // f'(x) = f(R^-1 x) with R = D(2 pi / ra, 0, 0).
    let step = 2.0 * std::f64::consts::PI / ra as f64;
    let mut rotated = vec![0.0; x.len()];
    for l in 0..=lmax as usize {
        let (d, at) = (2 * l + 1, l * l);
        let dl = wigner_d(l as u32, step, 0.0, 0.0);
        for i in 0..d {
            rotated[at + i] = (0..d).map(|j| dl[i * d + j] * x[at + j]).sum();
        }
    }
    let mut shifted = vec![0.0; rb * ra];
    to.forward(&rotated, &mut shifted).unwrap();
    for b in 0..rb {
        for a in 0..ra {
            let from = grid[b * ra + (a + ra - 1) % ra];
            assert!((shifted[b * ra + a] - from).abs() < 1e-12, "b {b} a {a}");
        }
    }
}

#[test]
fn bad_grids_and_shapes_are_typed_errors() {
    let invalid = |r: Result<ToS2GridPlan, Error>| matches!(r, Err(Error::InvalidArgument { .. }));
    assert!(invalid(ToS2GridPlan::new(
        Some(3),
        Some(7),
        None,
        Normalization::Component
    )));
    assert!(invalid(ToS2GridPlan::new(
        Some(6),
        Some(10),
        None,
        Normalization::Component
    )));
    assert!(invalid(ToS2GridPlan::new(
        None,
        None,
        None,
        Normalization::Component
    )));
    assert!(matches!(
        FromS2GridPlan::new(Some(9), None, None, Normalization::Norm, None),
        Err(Error::InvalidArgument { .. })
    ));
    let to = ToS2GridPlan::new(Some(2), None, None, Normalization::Component).unwrap();
    let mut grid = vec![0.0; to.res_beta() * to.res_alpha()];
    assert!(matches!(
        to.forward(&[0.0; 8], &mut grid),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        to.forward(&[0.0; 9], &mut grid[1..]),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut x = [0.0; 9];
    assert!(matches!(
        to.backward(&grid[1..], &mut x),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Legendre::new(&[]),
        Err(Error::InvalidArgument { .. })
    ));
    let mut out = [0.0; 3];
    assert!(matches!(
        spherical_harmonics_alpha_beta(&[1], &[0.0, 1.0], &[0.0], Normalization::Norm, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn spherical_tensor_matches_e3nn() {
    use equivariant_core::io::SphericalTensor;
    use equivariant_core::o3::Parity;
    let parity = |v: &Value| {
        if v.as_i64().unwrap() == 1 {
            Parity::Even
        } else {
            Parity::Odd
        }
    };
    let fixture = load_fixture!("s2");
    for case in fixture["spherical_tensor"].as_array().unwrap() {
        let lmax = case["lmax"].as_u64().unwrap() as u32;
        let s = SphericalTensor::new(lmax, parity(&case["p_val"]), parity(&case["p_arg"]));
        let what = s.irreps().to_string();
        assert_eq!(what, case["irreps"].as_str().unwrap());
        let signal = f64s(&case["signal"]);
        assert_close(
            &format!("{what} norms"),
            &s.norms(&signal).unwrap(),
            &f64s(&case["norms"]),
            1e-12,
        );
        let (points, positions, values) = (
            f64s(&case["points"]),
            f64s(&case["positions"]),
            f64s(&case["values"]),
        );
        let from_samples = s.from_samples_on_s2(&positions, &values, 20).unwrap();
        assert_close(
            &format!("{what} from_samples_on_s2"),
            &from_samples,
            &f64s(&case["from_samples_on_s2"]),
            1e-10,
        );
        let (grid, on_grid) = s
            .signal_on_grid(&signal, 10, Normalization::Integral)
            .unwrap();
        assert_close(&format!("{what} grid"), &grid, &f64s(&case["grid"]), 1e-12);
        assert_close(
            &format!("{what} signal_on_grid"),
            &on_grid,
            &f64s(&case["on_grid"]),
            1e-10,
        );
        let (_, on_grid) = s
            .signal_on_grid(&signal, 12, Normalization::Component)
            .unwrap();
        assert_close(
            &format!("{what} signal_on_grid component"),
            &on_grid,
            &f64s(&case["on_grid_component"]),
            1e-10,
        );
        let dim = s.dim();
        let surface = s
            .plot(
                &signal[..dim],
                Some([0.5, -1.0, 2.0]),
                10,
                true,
                false,
                Normalization::Integral,
            )
            .unwrap();
        assert_close(
            &format!("{what} plot points"),
            &surface.points,
            &f64s(&case["plot_r"]),
            1e-10,
        );
        assert_close(
            &format!("{what} plot values"),
            &surface.values,
            &f64s(&case["plot_f"]),
            1e-10,
        );
        let surface = s
            .plot(&signal[dim..], None, 12, false, true, Normalization::Norm)
            .unwrap();
        assert_close(
            &format!("{what} plot relu points"),
            &surface.points,
            &f64s(&case["plot_relu_r"]),
            1e-10,
        );
        assert_close(
            &format!("{what} plot relu values"),
            &surface.values,
            &f64s(&case["plot_relu_f"]),
            1e-10,
        );
        if case.get("signal_xyz").is_none() {
            // An odd p_val: no function of directions alone, as in e3nn.
            assert!(matches!(
                s.signal_xyz(&signal, &points),
                Err(Error::InvalidArgument { .. })
            ));
            assert!(matches!(
                s.with_peaks_at(&positions, None),
                Err(Error::InvalidArgument { .. })
            ));
            continue;
        }
        assert_close(
            &format!("{what} signal_xyz"),
            &s.signal_xyz(&signal, &points).unwrap(),
            &f64s(&case["signal_xyz"]),
            1e-10,
        );
        let diracs = s.sum_of_diracs(&positions, &values).unwrap();
        assert_close(
            &format!("{what} sum_of_diracs"),
            &diracs,
            &f64s(&case["sum_of_diracs"]),
            1e-10,
        );
        let peaks = s.with_peaks_at(&positions, None).unwrap();
        assert_close(
            &format!("{what} with_peaks_at"),
            &peaks,
            &f64s(&case["with_peaks_at"]),
            1e-8,
        );
        let peaks = s.with_peaks_at(&positions, Some(&values)).unwrap();
        assert_close(
            &format!("{what} with_peaks_at values"),
            &peaks,
            &f64s(&case["with_peaks_at_values"]),
            1e-8,
        );
        // The peaks are where they were asked for.
        let at = s.signal_xyz(&peaks, &positions).unwrap();
        assert_close(&format!("{what} peak values"), &at, &values, 1e-8);
    }
    let s = SphericalTensor::new(1, Parity::Even, Parity::Odd);
    let many: Vec<f64> = (0..30).map(|i| (i as f64 * 1.3).sin()).collect();
    assert!(matches!(
        s.with_peaks_at(&many, None),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        s.norms(&[0.0; 5]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        s.from_samples_on_s2(&[], &[], 10),
        Err(Error::InvalidArgument { .. })
    ));
}
