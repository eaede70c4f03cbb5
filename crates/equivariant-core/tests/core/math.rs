//! `math`: soft_unit_step, soft_one_hot_linspace, activations and normalize2mom against e3nn
//! 0.6.0 (fixture `tests/fixtures/math.json`, from `tools/reference/fixtures_math.py`).

use crate::support::to_f32;
use equivariant_core::Error;
use equivariant_core::math::{
    ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace, erf, erfc, soft_one_hot_linspace,
    soft_unit_step, soft_unit_step_derivative,
};
use equivariant_testing::{assert_close, f64s, load_fixture};
use serde_json::Value;

/// `|got - expected| <= tol * max(1, |expected|)`, skipping expected NaN (entries the
/// fixture marks as ill-defined).
#[track_caller]
fn assert_close_scaled(what: &str, got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let (g, e): (Vec<f64>, Vec<f64>) = got
        .iter()
        .zip(expected)
        .filter(|(_, e)| !e.is_nan())
        .map(|(&g, &e)| {
            let s = e.abs().max(1.0);
            (g / s, e / s)
        })
        .unzip();
    assert_close(what, &g, &e, tol);
}

/// Like [`assert_close`], skipping expected NaN.
#[track_caller]
fn assert_close_skip_nan(what: &str, got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let (g, e): (Vec<f64>, Vec<f64>) = got
        .iter()
        .zip(expected)
        .filter(|(_, e)| !e.is_nan())
        .unzip();
    assert_close(what, &g, &e, tol);
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

struct Case {
    name: String,
    basis: SoftOneHotLinspace,
    centers: Vec<f64>,
    step: Option<f64>,
    x: Vec<f64>,
    value: Vec<f64>,
    derivative: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let fx = load_fixture!("math");
    fx["bases"]
        .as_array()
        .expect("bases")
        .iter()
        .map(|c| {
            let basis: Basis = c["basis"].as_str().expect("basis").parse().expect("basis");
            let cutoff = c["cutoff"].as_bool().expect("cutoff");
            let start = c["start"].as_f64().expect("start");
            let end = c["end"].as_f64().expect("end");
            let number = c["number"].as_u64().expect("number") as usize;
            let name = format!("{basis} cutoff={cutoff} [{start}, {end}] N={number}");
            Case {
                basis: SoftOneHotLinspace::new(start, end, number, basis, cutoff).expect(&name),
                name,
                centers: f64s(&c["centers"]),
                step: match &c["step"] {
                    Value::Null => None,
                    v => v.as_f64(),
                },
                x: f64s(&c["x"]),
                value: f64s(&c["value"]),
                derivative: f64s(&c["derivative"]),
            }
        })
        .collect()
}

#[test]
fn fixture_covers_every_basis_and_cutoff() {
    let cases = cases();
    assert!(cases.len() >= 20);
    for b in Basis::ALL {
        for cutoff in [false, true] {
            assert!(
                cases
                    .iter()
                    .any(|c| c.basis.basis() == b && c.basis.cutoff() == cutoff),
                "{b} cutoff={cutoff}"
            );
        }
    }
}

#[test]
fn centers_and_step_match_torch_linspace() {
    for c in cases() {
        // torch's vectorized linspace may differ from the scalar formula by an ulp.
        assert_close(&c.name, c.basis.centers(), &c.centers, 1e-15);
        let (got, expected) = (c.basis.step().expect("step"), c.step.expect("step"));
        assert!((got - expected).abs() <= 1e-15, "{}: step", c.name);
    }
}

#[test]
fn bases_match_e3nn_f64() {
    for c in cases() {
        let n = c.x.len() * c.basis.number();
        let (mut v, mut d) = (vec![0.0; n], vec![0.0; n]);
        c.basis
            .compute_with_derivative(&c.x, &mut v, &mut d)
            .expect(&c.name);
        assert_close(&format!("{} value", c.name), &v, &c.value, 1e-10);
        assert_close_skip_nan(&format!("{} derivative", c.name), &d, &c.derivative, 1e-10);
        // `compute` gives the same values, bit for bit.
        let mut v2 = vec![0.0; n];
        c.basis.compute(&c.x, &mut v2).expect(&c.name);
        assert_eq!(v, v2, "{}: compute vs compute_with_derivative", c.name);
        // The free function mirrors e3nn's signature.
        let v3 = soft_one_hot_linspace(
            &c.x,
            c.basis.start(),
            c.basis.end(),
            c.basis.number(),
            c.basis.basis(),
            c.basis.cutoff(),
        )
        .expect(&c.name);
        assert_eq!(v, v3, "{}: free function", c.name);
    }
}

#[test]
fn bases_match_e3nn_f32() {
    // f32 rounds x and the centers by ~1e-7; d = (x - c) / step amplifies that by 1/step and
    // the steep flanks of smooth_finite and bessel by more, so the tolerance is 1e-5 of the
    // largest magnitude of each case (and at least 1e-5 absolute).
    let scale = |v: &[f64]| {
        v.iter()
            .filter(|t| !t.is_nan())
            .fold(1.0f64, |m, t| m.max(t.abs()))
    };
    for c in cases() {
        let n = c.x.len() * c.basis.number();
        let (mut v, mut d) = (vec![0.0f32; n], vec![0.0f32; n]);
        c.basis
            .compute_with_derivative(&to_f32(&c.x), &mut v, &mut d)
            .expect(&c.name);
        let sv = scale(&c.value);
        let sd = scale(&c.derivative);
        assert_close(
            &format!("{} value f32", c.name),
            &to_f64(&v),
            &c.value,
            1e-5 * sv,
        );
        assert_close_skip_nan(
            &format!("{} derivative f32", c.name),
            &to_f64(&d),
            &c.derivative,
            1e-5 * sd,
        );
    }
}

/// Points where a basis or its derivative jumps: cosine at |d| = 1, the masks of fourier and
/// bessel with cutoff at start and end.
fn near_jump(b: &SoftOneHotLinspace, x: f64, margin: f64) -> bool {
    match b.basis() {
        Basis::Cosine => {
            let step = b.step().expect("step");
            b.centers()
                .iter()
                .any(|&c| (((x - c) / step).abs() - 1.0).abs() < margin / step)
        }
        Basis::Fourier | Basis::Bessel if b.cutoff() => {
            (x - b.start()).abs() < margin || (x - b.end()).abs() < margin
        }
        _ => false,
    }
}

/// The bases the finite-difference tests sweep, each with its points: every basis, cutoff
/// on and off, a few ranges and sizes, on an irregular grid over `[start - 0.5, end + 0.5]`
/// plus points near `start` (the bessel series branch), away from jumps by `margin`.
fn difference_grids(margin: f64) -> Vec<(String, SoftOneHotLinspace, Vec<f64>)> {
    let configs = [
        (0.0, 1.8, 5usize),
        (0.5, 3.0, 10),
        (-0.5, 1.5, 1),
        (1.0, 6.0, 8),
    ];
    let mut grids = Vec::new();
    for basis in Basis::ALL {
        for cutoff in [false, true] {
            for &(start, end, number) in &configs {
                let b = match SoftOneHotLinspace::new(start, end, number, basis, cutoff) {
                    Ok(b) => b,
                    Err(_) => {
                        assert!(number == 1 && !cutoff);
                        continue;
                    }
                };
                let mut xs: Vec<f64> = (0..)
                    .map(|i| start - 0.5 + 0.0173 * i as f64)
                    .take_while(|&x| x <= end + 0.5)
                    .collect();
                xs.extend([1e-4, 1e-3, 0.01, 0.03, 0.1].iter().map(|&r| start + r));
                xs.retain(|&x| !near_jump(&b, x, margin) && (x - start).abs() > margin);
                let name = format!("{basis} cutoff={cutoff} [{start}, {end}] N={number}");
                grids.push((name, b, xs));
            }
        }
    }
    grids
}

/// Central differences `(f(x + h) - f(x - h)) / 2h` of `f` evaluated on shifted copies of
/// `xs`.
fn central_difference(xs: &[f64], h: f64, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let plus: Vec<f64> = xs.iter().map(|x| x + h).collect();
    let minus: Vec<f64> = xs.iter().map(|x| x - h).collect();
    f(&plus)
        .iter()
        .zip(f(&minus))
        .map(|(p, q)| (p - q) / (2.0 * h))
        .collect()
}

#[test]
fn derivatives_match_central_differences_f64() {
    let h = 1e-6;
    for (name, b, xs) in difference_grids(10.0 * h) {
        let n = xs.len() * b.number();
        let (mut v, mut d) = (vec![0.0; n], vec![0.0; n]);
        b.compute_with_derivative(&xs, &mut v, &mut d).unwrap();
        let fd = central_difference(&xs, h, |x| {
            let mut out = vec![0.0; n];
            b.compute(x, &mut out).unwrap();
            out
        });
        assert_close_scaled(&format!("{name}: derivative vs FD"), &d, &fd, 1e-6);
    }
}

/// `compute_with_second_derivative`: the value and first derivative are
/// `compute_with_derivative`'s, and the second derivative matches central differences of
/// the first.
#[test]
fn second_derivatives_match_central_differences_f64() {
    let h = 1e-6;
    for (name, b, xs) in difference_grids(10.0 * h) {
        let n = xs.len() * b.number();
        let (mut v, mut d) = (vec![0.0; n], vec![0.0; n]);
        b.compute_with_derivative(&xs, &mut v, &mut d).unwrap();
        let (mut v2, mut d1, mut d2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        b.compute_with_second_derivative(&xs, &mut v2, &mut d1, &mut d2)
            .unwrap();
        assert_close(&format!("{name}: value"), &v2, &v, 1e-14);
        assert_close(&format!("{name}: first derivative"), &d1, &d, 1e-12);
        let fd = central_difference(&xs, h, |x| {
            let (mut out, mut slope) = (vec![0.0; n], vec![0.0; n]);
            b.compute_with_derivative(x, &mut out, &mut slope).unwrap();
            slope
        });
        assert_close_scaled(&format!("{name}: second derivative vs FD"), &d2, &fd, 1e-6);
    }
    // At the bessel basis' start (no cutoff): the value is the limit k pi / L times the
    // factor, f' = 0, and f'' = -(k pi / L)^3 / 3 times the factor.
    let b = SoftOneHotLinspace::new(0.5, 2.5, 3, Basis::Bessel, false).unwrap();
    let (mut v, mut d1, mut d2) = (vec![0.0; 3], vec![0.0; 3], vec![0.0; 3]);
    b.compute_with_second_derivative(&[0.5], &mut v, &mut d1, &mut d2)
        .unwrap();
    let coef = (2.0f64 / 2.0).sqrt();
    for k in 0..3 {
        let w = (k + 1) as f64 * std::f64::consts::PI / 2.0;
        assert!((v[k] - coef * w).abs() < 1e-12, "value {k}: {}", v[k]);
        assert_eq!(d1[k], 0.0);
        assert!(
            (d2[k] + coef * w.powi(3) / 3.0).abs() < 1e-12,
            "f'' {k}: {}",
            d2[k]
        );
    }
}

#[test]
fn bessel_at_start_is_the_analytic_limit() {
    let (start, end, number) = (0.5, 3.0, 6);
    let c = end - start;
    let no_cut = SoftOneHotLinspace::new(start, end, number, Basis::Bessel, false).unwrap();
    let cut = SoftOneHotLinspace::new(start, end, number, Basis::Bessel, true).unwrap();
    let (mut v, mut d) = (vec![0.0; number], vec![0.0; number]);
    no_cut
        .compute_with_derivative(&[start], &mut v, &mut d)
        .unwrap();
    let limit: Vec<f64> = (1..=number)
        .map(|k| (2.0 / c).sqrt() * k as f64 * std::f64::consts::PI / c)
        .collect();
    assert_close("bessel limit", &v, &limit, 1e-14);
    assert_close("bessel limit slope", &d, &vec![0.0; number], 0.0);
    // Continuous from the right: a hair above start is the same to first order.
    let (mut v2, mut d2) = (vec![0.0; number], vec![0.0; number]);
    no_cut
        .compute_with_derivative(&[start + 1e-9], &mut v2, &mut d2)
        .unwrap();
    assert_close("bessel near start", &v2, &limit, 1e-12);
    assert_close("bessel slope near start", &d2, &vec![0.0; number], 1e-6);
    // Even in r = x - start without cutoff.
    let (mut v3, mut d3) = (vec![0.0; number], vec![0.0; number]);
    no_cut
        .compute_with_derivative(&[start - 1e-9], &mut v3, &mut d3)
        .unwrap();
    assert_close("bessel below start", &v3, &limit, 1e-12);
    // With cutoff the mask [0 < x - start] is zero at start.
    cut.compute_with_derivative(&[start], &mut v, &mut d)
        .unwrap();
    assert!(v.iter().chain(&d).all(|&t| t == 0.0));
    // f32: the limit too.
    let mut v32 = vec![0.0f32; number];
    no_cut.compute(&[start as f32], &mut v32).unwrap();
    assert_close_scaled("bessel limit f32", &to_f64(&v32), &limit, 1e-6);
}

#[test]
fn finite_support_bases_vanish_exactly_outside() {
    for basis in [Basis::SmoothFinite, Basis::Cosine] {
        for cutoff in [false, true] {
            let b = SoftOneHotLinspace::new(0.5, 3.0, 7, basis, cutoff).unwrap();
            let step = b.step().unwrap();
            let xs: Vec<f64> = (0..400).map(|i| -1.0 + 0.0123 * i as f64).collect();
            let n = xs.len() * 7;
            let (mut v, mut d) = (vec![0.0; n], vec![0.0; n]);
            b.compute_with_derivative(&xs, &mut v, &mut d).unwrap();
            for (i, &x) in xs.iter().enumerate() {
                for (k, &c) in b.centers().iter().enumerate() {
                    let dist = ((x - c) / step).abs();
                    let (vi, di) = (v[i * 7 + k], d[i * 7 + k]);
                    if dist >= 1.0 {
                        assert!(
                            vi == 0.0 && di == 0.0,
                            "{basis} cutoff={cutoff}: x={x} center {c}: {vi}, {di}"
                        );
                    } else if dist < 0.9 {
                        assert!(vi > 0.0, "{basis}: x={x} center {c}: {vi}");
                    }
                }
                if cutoff && (x <= b.start() || x >= b.end()) {
                    assert!(v[i * 7..(i + 1) * 7].iter().all(|&t| t == 0.0));
                }
            }
        }
    }
    // Fourier and bessel with cutoff vanish outside (start, end).
    for basis in [Basis::Fourier, Basis::Bessel] {
        let b = SoftOneHotLinspace::new(0.5, 3.0, 4, basis, true).unwrap();
        let xs = [-2.0, 0.0, 0.5, 3.0, 3.1, 10.0];
        let (mut v, mut d) = (vec![1.0; 24], vec![1.0; 24]);
        b.compute_with_derivative(&xs, &mut v, &mut d).unwrap();
        assert!(v.iter().chain(&d).all(|&t| t == 0.0), "{basis}");
    }
}

#[test]
fn parallel_path_is_deterministic() {
    // n > 4096 runs in parallel; each row must equal the single-input evaluation.
    for basis in Basis::ALL {
        let b = SoftOneHotLinspace::new(0.0, 5.0, 8, basis, true).unwrap();
        let xs: Vec<f64> = (0..10_000)
            .map(|i| -0.5 + 6.0 * i as f64 / 10_000.0)
            .collect();
        let (mut v, mut d) = (vec![0.0; 80_000], vec![0.0; 80_000]);
        b.compute_with_derivative(&xs, &mut v, &mut d).unwrap();
        let mut v_only = vec![0.0; 80_000];
        b.compute(&xs, &mut v_only).unwrap();
        assert_eq!(v, v_only);
        for i in (0..10_000).step_by(97) {
            let (mut v1, mut d1) = ([0.0; 8], [0.0; 8]);
            b.compute_with_derivative(&xs[i..i + 1], &mut v1, &mut d1)
                .unwrap();
            assert_eq!(&v[i * 8..i * 8 + 8], &v1, "{basis} row {i}");
            assert_eq!(&d[i * 8..i * 8 + 8], &d1, "{basis} row {i}");
        }
    }
}

/// The Bessel basis evaluated eight rows at a time in vector lanes gives, bit for bit, what
/// each row gives alone (a single row runs the scalar kernel), values and derivatives, f32
/// and f64, with and without cutoff: blocks that qualify, blocks that fall back to rows (a
/// row near zero, where the derivative takes its series; a row at zero; a row beyond the
/// cutoff) and a tail of fewer than eight.
#[test]
fn bessel_rows_in_lanes_equal_single_rows() {
    fn check<T: equivariant_core::Real>(b: &SoftOneHotLinspace, xs: &[T]) {
        let n = b.number();
        let (mut v, mut d) = (vec![T::zero(); xs.len() * n], vec![T::zero(); xs.len() * n]);
        b.compute_with_derivative(xs, &mut v, &mut d).unwrap();
        let mut v_only = vec![T::zero(); xs.len() * n];
        b.compute(xs, &mut v_only).unwrap();
        assert_eq!(v, v_only);
        for (i, x) in xs.chunks(1).enumerate() {
            let (mut v1, mut d1) = (vec![T::zero(); n], vec![T::zero(); n]);
            b.compute_with_derivative(x, &mut v1, &mut d1).unwrap();
            let row = i * n..(i + 1) * n;
            assert_eq!(&v[row.clone()], &v1[..], "{b:?} row {i}");
            assert_eq!(&d[row], &d1[..], "{b:?} row {i}");
        }
    }
    // Numbers of functions below, at and past a vector's eight (the lanes go to the rows by
    // a transpose of whole and partial blocks).
    for (cutoff, number) in [false, true]
        .into_iter()
        .flat_map(|c| [1, 5, 8, 13].map(|n| (c, n)))
    {
        let b = SoftOneHotLinspace::new(0.0, 4.0, number, Basis::Bessel, cutoff).unwrap();
        // Block 0 qualifies; block 1 has a row at 0.3 (pi r / L < 1/2: the series); block 2
        // a row at 0; block 3 a row beyond the cutoff; then a tail of five.
        let mut xs: Vec<f64> = (0..37).map(|i| 0.7 + 0.09 * i as f64).collect();
        (xs[9], xs[18], xs[30]) = (0.3, 0.0, 4.5);
        check(&b, &xs);
        check(&b, &xs.iter().map(|&x| x as f32).collect::<Vec<_>>());
    }
}

#[test]
fn soft_unit_step_matches_e3nn() {
    let fx = load_fixture!("math");
    let s = &fx["soft_unit_step"];
    let (x, value, deriv) = (f64s(&s["x"]), f64s(&s["value"]), f64s(&s["derivative"]));
    let v: Vec<f64> = x.iter().map(|&t| soft_unit_step(t)).collect();
    let d: Vec<f64> = x.iter().map(|&t| soft_unit_step_derivative(t)).collect();
    assert_close("soft_unit_step", &v, &value, 1e-10);
    assert_close("soft_unit_step derivative", &d, &deriv, 1e-10);
    let v32: Vec<f64> = x.iter().map(|&t| soft_unit_step(t as f32) as f64).collect();
    let d32: Vec<f64> = x
        .iter()
        .map(|&t| soft_unit_step_derivative(t as f32) as f64)
        .collect();
    assert_close_scaled("soft_unit_step f32", &v32, &value, 1e-5);
    assert_close_scaled("soft_unit_step derivative f32", &d32, &deriv, 1e-5);
}

#[test]
fn soft_unit_step_derivative_is_finite_and_matches_differences() {
    for x in [
        1e-320,
        1e-300,
        1e-200,
        1e-160,
        1e-3,
        1e-2,
        f64::INFINITY,
        -0.0,
    ] {
        let d = soft_unit_step_derivative(x);
        assert!(d.is_finite(), "x={x}: {d}");
    }
    for x in [1e-38f32, 1e-30, 1e-10, 1e-3, f32::INFINITY] {
        assert!(soft_unit_step_derivative(x).is_finite(), "x={x}");
    }
    let h = 1e-6;
    let xs: Vec<f64> = (1..300).map(|i| 0.02 * i as f64).collect();
    let d: Vec<f64> = xs.iter().map(|&x| soft_unit_step_derivative(x)).collect();
    let fd: Vec<f64> = xs
        .iter()
        .map(|&x| (soft_unit_step(x + h) - soft_unit_step(x - h)) / (2.0 * h))
        .collect();
    assert_close("soft_unit_step derivative vs FD", &d, &fd, 1e-8);
}

#[test]
fn activations_match_torch() {
    let fx = load_fixture!("math");
    let a = &fx["activations"];
    let x = f64s(&a["x"]);
    for act in ActivationFunction::ALL {
        let value = f64s(&a[act.name()]["value"]);
        let deriv = f64s(&a[act.name()]["derivative"]);
        let v: Vec<f64> = x.iter().map(|&t| act.apply(t)).collect();
        let d: Vec<f64> = x.iter().map(|&t| act.derivative(t)).collect();
        assert_close(&format!("{act} value"), &v, &value, 1e-10);
        assert_close(&format!("{act} derivative"), &d, &deriv, 1e-10);
        let v32: Vec<f64> = x.iter().map(|&t| act.apply(t as f32) as f64).collect();
        let d32: Vec<f64> = x.iter().map(|&t| act.derivative(t as f32) as f64).collect();
        assert_close_scaled(&format!("{act} value f32"), &v32, &value, 1e-5);
        assert_close_scaled(&format!("{act} derivative f32"), &d32, &deriv, 1e-5);
    }
}

#[test]
fn gelu_is_accurate_to_rounding() {
    // gelu(x) = x Phi(x) with Phi from mpmath (30 digits).
    let cases: [(f64, f64); 6] = [
        (-8.0, -4.976768459417427e-15),
        (-3.0, -0.0040496940948902835),
        (-1.0, -0.15865525393145705),
        (0.5, 0.34573123063700656),
        (2.0, 1.9544997361036416),
        (4.0, 3.9998733150326675),
    ];
    for (x, e) in cases {
        let g = ActivationFunction::Gelu.apply(x);
        assert!(
            // x / sqrt 2 is rounded, which costs about x^2 ulp in the tail.
            (g - e).abs() <= 1e-14 * e.abs(),
            "gelu({x}) = {g:e}, expected {e:e}"
        );
    }
}

#[test]
fn activation_derivatives_match_central_differences() {
    let h = 1e-6;
    let xs: Vec<f64> = (0..200).map(|i| -7.0 + 0.0713 * i as f64).collect();
    for act in ActivationFunction::ALL {
        let d: Vec<f64> = xs.iter().map(|&x| act.derivative(x)).collect();
        let fd: Vec<f64> = xs
            .iter()
            .map(|&x| (act.apply(x + h) - act.apply(x - h)) / (2.0 * h))
            .collect();
        assert_close(&format!("{act} derivative vs FD"), &d, &fd, 1e-8);
    }
}

/// `f''` against a central difference of `f'`, every built-in; and the tangent kernels
/// (`c f'(x) dx` and its backward) against those scalar definitions, f64 to 1e-13 (a few
/// ulp of terms up to ~40), f32 to 1e-5 of the largest term (silu's and sigmoid's vector
/// path has its own `exp`), on a slice past one parallel chunk.
/// The `_vec` entry points (outputs never zero-filled first) give their `_slice`
/// counterparts' values bit for bit: every built-in, f64 and f32, 40 000 elements (several
/// parallel chunks and a tail), and shape errors for a short input.
#[test]
fn activation_vectors_equal_the_slices() {
    fn check<T: equivariant_core::Real + std::fmt::Debug>(act: ActivationFunction, x: &[T]) {
        let n = x.len();
        let c = T::from_f64(1.25);
        let dx: Vec<T> = x.iter().map(|&v| v * T::from_f64(0.5) + T::one()).collect();
        let dg: Vec<T> = x.iter().map(|&v| T::from_f64(0.25) - v).collect();
        let mut y = vec![T::zero(); n];
        act.forward_slice(c, x, &mut y).unwrap();
        assert_eq!(act.forward_vec(c, x), y, "{act} forward");
        let mut slope = vec![T::zero(); n];
        act.forward_with_derivative_slice(c, x, &mut y, &mut slope)
            .unwrap();
        assert_eq!(
            act.forward_with_derivative_vec(c, x),
            (y.clone(), slope),
            "{act} slope"
        );
        act.tangent_slice(c, x, &dx, &mut y).unwrap();
        assert_eq!(act.tangent_vec(c, x, &dx).unwrap(), y, "{act} tangent");
        let (mut gx, mut gdx) = (vec![T::zero(); n], vec![T::zero(); n]);
        act.tangent_backward_slice(c, x, &dx, &dg, &mut gx, &mut gdx)
            .unwrap();
        assert_eq!(
            act.tangent_backward_vec(c, x, &dx, &dg).unwrap(),
            (gx, gdx),
            "{act} backward"
        );
        assert!(act.tangent_vec(c, x, &dx[1..]).is_err());
        assert!(act.tangent_backward_vec(c, x, &dx, &dg[1..]).is_err());
    }
    let x: Vec<f64> = (0..40_000).map(|i| 9.0 * (i as f64 * 0.37).sin()).collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    for act in ActivationFunction::ALL {
        check(act, &x);
        check(act, &x32);
    }
}

/// `forward_with_derivative_slice` gives `forward_slice`'s values bit for bit and the slope
/// `c f'(x)`: every built-in, f64 at 1e-13 and f32 at 2e-6 relative (the f32 `silu` and
/// `sigmoid` take a polynomial `exp`), over 20 000 elements (several parallel chunks).
#[test]
fn activation_values_with_their_slopes() {
    let n = 20_000;
    let x: Vec<f64> = (0..n)
        .map(|i| (9.0 * (i as f64 * 0.37).sin()) as f32 as f64)
        .collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let c = 1.25;
    for act in ActivationFunction::ALL {
        let (mut y, mut slope, mut plain) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        act.forward_with_derivative_slice(c, &x, &mut y, &mut slope)
            .unwrap();
        act.forward_slice(c, &x, &mut plain).unwrap();
        assert_eq!(y, plain, "{act} f64 values");
        let want: Vec<f64> = x.iter().map(|&x| c * act.derivative(x)).collect();
        assert_close(&format!("{act} f64 slope"), &slope, &want, 1e-13);
        let (mut y, mut slope, mut plain) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        act.forward_with_derivative_slice(c as f32, &x32, &mut y, &mut slope)
            .unwrap();
        act.forward_slice(c as f32, &x32, &mut plain).unwrap();
        assert_eq!(y, plain, "{act} f32 values");
        for (i, (&got, &want)) in slope.iter().zip(&want).enumerate() {
            let tol = 2e-6 * want.abs().max(1.0);
            assert!(
                (got as f64 - want).abs() <= tol,
                "{act} f32 slope at {i}: {got} against {want}"
            );
        }
    }
    let mut short = [0.0; 2];
    let err = ActivationFunction::Silu.forward_with_derivative_slice(
        1.0,
        &x[..3],
        &mut [0.0; 3],
        &mut short,
    );
    assert!(matches!(err, Err(Error::ShapeMismatch { .. })));
}

#[test]
fn activation_second_derivatives_and_tangent_kernels() {
    let h = 1e-6;
    let xs: Vec<f64> = (0..200).map(|i| -7.0 + 0.0713 * i as f64).collect();
    for act in ActivationFunction::ALL {
        let d2: Vec<f64> = xs.iter().map(|&x| act.second_derivative(x)).collect();
        let fd: Vec<f64> = xs
            .iter()
            .map(|&x| (act.derivative(x + h) - act.derivative(x - h)) / (2.0 * h))
            .collect();
        assert_close(&format!("{act} second derivative vs FD"), &d2, &fd, 1e-7);
    }
    let n = 20_000;
    // Values exact in f32, so both types see the same inputs.
    let wave = |k: f64| -> Vec<f64> {
        (0..n)
            .map(|i| (6.0 * (i as f64 * k).sin()) as f32 as f64)
            .collect()
    };
    let (x, dx, dg) = (wave(0.37), wave(0.11), wave(0.71));
    let c = 1.25;
    for act in ActivationFunction::ALL {
        let want_dy: Vec<f64> = (0..n).map(|i| c * act.derivative(x[i]) * dx[i]).collect();
        let want_gx: Vec<f64> = (0..n)
            .map(|i| c * act.second_derivative(x[i]) * dx[i] * dg[i])
            .collect();
        let want_gdx: Vec<f64> = (0..n).map(|i| c * act.derivative(x[i]) * dg[i]).collect();
        let (mut dy, mut gx, mut gdx) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        act.tangent_slice(c, &x, &dx, &mut dy).unwrap();
        act.tangent_backward_slice(c, &x, &dx, &dg, &mut gx, &mut gdx)
            .unwrap();
        for (what, got, want) in [
            ("dy", &dy, &want_dy),
            ("gx", &gx, &want_gx),
            ("gdx", &gdx, &want_gdx),
        ] {
            assert_close(&format!("{act} f64 {what}"), got, want, 1e-13);
        }
        let f32s = |v: &[f64]| -> Vec<f32> { v.iter().map(|&a| a as f32).collect() };
        let (x32, dx32, dg32) = (f32s(&x), f32s(&dx), f32s(&dg));
        let (mut dy, mut gx, mut gdx) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let c32 = c as f32;
        act.tangent_slice(c32, &x32, &dx32, &mut dy).unwrap();
        act.tangent_backward_slice(c32, &x32, &dx32, &dg32, &mut gx, &mut gdx)
            .unwrap();
        for i in 0..n {
            // The same definitions evaluated in f32.
            let (x, dx, dg) = (x32[i], dx32[i], dg32[i]);
            let (d1, d2) = (act.derivative(x), act.second_derivative(x));
            let want = [c32 * d1 * dx, c32 * d2 * dx * dg, c32 * d1 * dg];
            let scale = (c32 * (d1.abs() * (dx.abs() + dg.abs()) + (d2 * dx * dg).abs())).max(1.0);
            for (k, (what, got)) in [("dy", &dy), ("gx", &gx), ("gdx", &gdx)]
                .into_iter()
                .enumerate()
            {
                assert!(
                    (got[i] - want[k]).abs() <= 1e-5 * scale,
                    "{act} f32 {what} at {i}: {} against {}",
                    got[i],
                    want[k]
                );
            }
        }
    }
    let mut short = [0.0f64; 1];
    assert!(
        ActivationFunction::Silu
            .tangent_slice(1.0, &[0.0; 2], &[0.0; 2], &mut short)
            .is_err()
    );
}

#[test]
fn normalize2mom_constants_are_e3nns() {
    let fx = load_fixture!("math");
    for act in ActivationFunction::ALL {
        let e3nn = fx["normalize2mom"][act.name()].as_f64().unwrap();
        // e3nn's Monte-Carlo mean is a multithreaded torch reduction: its last bits depend
        // on the thread count (tanh and gelu move by 1-2 ulp between 1, 2 and 4 threads).
        let c = act.normalize2mom_constant();
        assert!(
            (c - e3nn).abs() <= 4.0 * f64::EPSILON * e3nn,
            "{act}: {c} vs {e3nn}"
        );
        let exact = fx["normalize2mom_exact"][act.name()].as_f64().unwrap();
        let ours = act.normalize2mom_exact();
        assert!((ours - exact).abs() < 1e-12, "{act}: {ours} vs {exact}");
        // Monte Carlo with 10^6 samples is good to a few 1e-3.
        assert!((e3nn - exact).abs() < 5e-3, "{act}");
    }
    assert!((ActivationFunction::Relu.normalize2mom_exact() - 2f64.sqrt()).abs() < 1e-13);
    assert!((ActivationFunction::Abs.normalize2mom_exact() - 1.0).abs() < 1e-13);
}

#[test]
fn names_round_trip() {
    for b in Basis::ALL {
        assert_eq!(b.to_string().parse::<Basis>(), Ok(b));
    }
    for a in ActivationFunction::ALL {
        assert_eq!(a.to_string().parse::<ActivationFunction>(), Ok(a));
    }
    assert_eq!("smooth_finite".parse::<Basis>(), Ok(Basis::SmoothFinite));
}

#[test]
fn invalid_arguments_give_typed_errors() {
    let invalid =
        |r: Result<SoftOneHotLinspace, Error>| matches!(r, Err(Error::InvalidArgument { .. }));
    assert!(matches!(
        "gauss".parse::<Basis>(),
        Err(Error::InvalidArgument { name: "basis", .. })
    ));
    assert!(matches!(
        "ReLU".parse::<ActivationFunction>(),
        Err(Error::InvalidArgument {
            name: "activation",
            ..
        })
    ));
    assert!(invalid(SoftOneHotLinspace::new(
        1.0,
        1.0,
        4,
        Basis::Gaussian,
        true
    )));
    assert!(invalid(SoftOneHotLinspace::new(
        2.0,
        1.0,
        4,
        Basis::Bessel,
        true
    )));
    assert!(invalid(SoftOneHotLinspace::new(
        f64::NAN,
        1.0,
        4,
        Basis::Cosine,
        true
    )));
    assert!(invalid(SoftOneHotLinspace::new(
        0.0,
        f64::INFINITY,
        4,
        Basis::Cosine,
        true
    )));
    assert!(invalid(SoftOneHotLinspace::new(
        -f64::MAX,
        f64::MAX,
        4,
        Basis::Fourier,
        true
    )));
    assert!(invalid(SoftOneHotLinspace::new(
        0.0,
        1.0,
        0,
        Basis::Fourier,
        true
    )));
    assert!(invalid(SoftOneHotLinspace::new(
        0.0,
        1.0,
        usize::MAX,
        Basis::Gaussian,
        true
    )));
    // A spacing that rounds to zero.
    assert!(invalid(SoftOneHotLinspace::new(
        1.0,
        1.0 + 1e-15,
        100,
        Basis::Gaussian,
        false
    )));
    // One function without cutoff: no spacing for the center-based bases...
    for basis in [Basis::Gaussian, Basis::Cosine, Basis::SmoothFinite] {
        assert!(invalid(SoftOneHotLinspace::new(0.0, 1.0, 1, basis, false)));
        assert!(SoftOneHotLinspace::new(0.0, 1.0, 1, basis, true).is_ok());
    }
    // ...but fourier and bessel do not need one.
    for basis in [Basis::Fourier, Basis::Bessel] {
        let b = SoftOneHotLinspace::new(0.0, 1.0, 1, basis, false).unwrap();
        assert_eq!(b.step(), None);
        let v = soft_one_hot_linspace(&[0.25f64], 0.0, 1.0, 1, basis, false).unwrap();
        assert!(v[0].is_finite() && v[0] > 0.0);
    }
    assert!(soft_one_hot_linspace(&[0.5f64], 0.0, 1.0, 0, Basis::Gaussian, true).is_err());

    let b = SoftOneHotLinspace::new(0.0, 1.0, 3, Basis::Gaussian, false).unwrap();
    let mut out = vec![0.0f64; 5];
    assert!(matches!(
        b.compute(&[0.1, 0.2], &mut out),
        Err(Error::ShapeMismatch {
            expected: 6,
            got: 5,
            ..
        })
    ));
    let (mut v, mut d) = (vec![0.0f64; 6], vec![0.0f64; 7]);
    assert!(matches!(
        b.compute_with_derivative(&[0.1, 0.2], &mut v, &mut d),
        Err(Error::ShapeMismatch {
            expected: 6,
            got: 7,
            ..
        })
    ));
    assert!(matches!(
        b.compute(&[0.1, f64::NAN], &mut v),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        b.compute_with_derivative(&[f32::INFINITY], &mut [0.0f32; 3], &mut [0.0f32; 3]),
        Err(Error::NonFinite { index: 0, .. })
    ));
    // Empty input is fine.
    b.compute::<f64>(&[], &mut []).unwrap();
}

/// erf and erfc against reference values (mpmath, 30 digits, rounded to f64).
#[test]
fn erf_reference_values() {
    let cases = [
        (0.0, 0.0),
        (1e-10, 1.1283791670955126e-10),
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (2.0, 0.9953222650189527),
        (2.9, 0.9999589021219005),
        (3.5, 0.9999992569016276),
        (1.49, 0.9648978648432042),
        (1.5, 0.9661051464753108),
    ];
    for (x, e) in cases {
        assert!((erf(x) - e).abs() <= 2e-16, "erf({x}) = {} vs {e}", erf(x));
        assert!((erf(-x) + e).abs() <= 2e-16);
    }
    let tails = [
        (1.5, 0.033894853524689274),
        (2.0, 0.004677734981047266),
        (3.0, 2.209049699858544e-05),
        (5.0, 1.537_459_794_428_035e-12),
        (10.0, 2.088487583762545e-45),
    ];
    for (x, e) in tails {
        assert!(
            ((erfc(x) - e) / e).abs() < 1e-14,
            "erfc({x}) = {} vs {e}",
            erfc(x)
        );
    }
    assert!(erf(f64::NAN).is_nan() && erfc(f64::NAN).is_nan());
}

fn radial_layer(activation: Option<ActivationFunction>) -> RadialLayer {
    let basis = SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, true).unwrap();
    let act = activation.map(|a| (a, a.normalize2mom_constant()));
    RadialLayer::new(basis, 10f64.sqrt(), 1.0 / 10f64.sqrt(), act)
}

/// `e` edge vectors (the first of length zero) and a `[10, width]` matrix.
fn radial_data(e: usize, width: usize) -> (Vec<f64>, Vec<f64>) {
    let value = |s: usize| (((s * 7919) % 29) as f64 - 14.0) / 11.0;
    let mut v: Vec<f64> = (0..3 * e).map(value).collect();
    v[..3].fill(0.0);
    (v, (0..10 * width).map(|s| value(s + 5)).collect())
}

/// The fused radial layer equals the basis, a matrix product and the activation done apart.
#[test]
fn radial_layer_matches_the_separate_steps() {
    let (e, width) = (1100, 6);
    let (v, w) = radial_data(e, width);
    for act in [
        None,
        Some(ActivationFunction::Relu),
        Some(ActivationFunction::Silu),
    ] {
        let layer = radial_layer(act);
        let mut h = vec![f64::NAN; e * width];
        layer.forward(&v, &w, &mut h).unwrap();
        let lens: Vec<f64> = v
            .chunks(3)
            .map(|r| (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt())
            .collect();
        let mut b = vec![0.0; e * 10];
        layer.basis().compute(&lens, &mut b).unwrap();
        for n in 0..e {
            for k in 0..width {
                let pre: f64 = (0..10)
                    .map(|q| 10f64.sqrt() * b[n * 10 + q] * w[q * width + k])
                    .sum::<f64>()
                    / 10f64.sqrt();
                let expected = match act {
                    Some(a) => a.normalize2mom_constant() * a.apply(pre),
                    None => pre,
                };
                assert!((h[n * width + k] - expected).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn radial_layer_gradients_match_finite_differences() {
    let (e, width) = (40, 3);
    let (v, w) = radial_data(e, width);
    let go: Vec<f64> = (0..e * width)
        .map(|s| ((s % 7) as f64 - 3.0) / 5.0)
        .collect();
    let layer = radial_layer(Some(ActivationFunction::Silu));
    let loss = |v: &[f64], w: &[f64]| {
        let mut h = vec![0.0; e * width];
        layer.forward(v, w, &mut h).unwrap();
        h.iter().zip(&go).map(|(a, b)| a * b).sum::<f64>()
    };
    let (mut gv, mut gw) = (vec![f64::NAN; 3 * e], vec![f64::NAN; 10 * width]);
    layer
        .backward(&v, &w, &go, Some(&mut gv), Some(&mut gw))
        .unwrap();
    let eps = 1e-6;
    for i in 3..3 * e {
        let (mut p, mut m) = (v.clone(), v.clone());
        p[i] += eps;
        m[i] -= eps;
        let fd = (loss(&p, &w) - loss(&m, &w)) / (2.0 * eps);
        assert!(
            (fd - gv[i]).abs() < 1e-6 * (1.0 + fd.abs()),
            "v[{i}]: {fd} vs {}",
            gv[i]
        );
    }
    assert_eq!(gv[..3], [0.0; 3], "a zero-length edge gets gradient zero");
    for i in 0..10 * width {
        let (mut p, mut m) = (w.clone(), w.clone());
        p[i] += eps;
        m[i] -= eps;
        let fd = (loss(&v, &p) - loss(&v, &m)) / (2.0 * eps);
        assert!(
            (fd - gw[i]).abs() < 1e-6 * (1.0 + fd.abs()),
            "w[{i}]: {fd} vs {}",
            gw[i]
        );
    }
}

/// In f32 (where the basis's exponential is a polynomial and eight edges run in vector
/// lanes) the layer and its gradients follow f64's to f32 rounding, on the guide's basis
/// (no cutoff) with more edges than a chunk.
#[test]
fn radial_layer_f32_follows_f64() {
    let (e, width) = (1500, 16);
    let (v, w) = radial_data(e, width);
    let basis = SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, false).unwrap();
    let go: Vec<f64> = (0..e * width)
        .map(|s| ((s % 11) as f64 - 5.0) / 7.0)
        .collect();
    let f32s = |x: &[f64]| x.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (v32, w32, go32) = (f32s(&v), f32s(&w), f32s(&go));
    for act in [ActivationFunction::Relu, ActivationFunction::Silu] {
        let layer = RadialLayer::new(
            basis.clone(),
            10f64.sqrt(),
            1.0 / 10f64.sqrt(),
            Some((act, act.normalize2mom_constant())),
        );
        let (mut h, mut h32) = (vec![0.0; e * width], vec![0.0f32; e * width]);
        layer.forward(&v, &w, &mut h).unwrap();
        layer.forward(&v32, &w32, &mut h32).unwrap();
        let (mut gv, mut gw) = (vec![0.0; 3 * e], vec![0.0; 10 * width]);
        let (mut gv32, mut gw32) = (vec![0.0f32; 3 * e], vec![0.0f32; 10 * width]);
        layer
            .backward(&v, &w, &go, Some(&mut gv), Some(&mut gw))
            .unwrap();
        layer
            .backward(&v32, &w32, &go32, Some(&mut gv32), Some(&mut gw32))
            .unwrap();
        // The weight's gradient sums over every edge: a looser bound.
        for (name, a, b, tol) in [
            ("h", &h, &h32, 2e-5),
            ("gv", &gv, &gv32, 2e-5),
            ("gw", &gw, &gw32, 1e-4),
        ] {
            let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(scale > 0.1, "{name}: nothing to compare");
            let worst = a
                .iter()
                .zip(b.iter())
                .fold(0.0f64, |m, (x, y)| m.max((x - *y as f64).abs()));
            assert!(worst < tol * scale, "{act:?} {name}: {worst} of {scale}");
        }
    }
}

/// A NaN component, or a vector whose length overflows f32, is an error naming its index
/// among all the vectors (past the first chunk of edges), for a windowed basis and another.
#[test]
fn radial_layer_non_finite_vectors_are_errors() {
    let e = 1500;
    for basis in [Basis::SmoothFinite, Basis::Gaussian] {
        let layer = RadialLayer::new(
            SoftOneHotLinspace::new(0.0, 1.8, 10, basis, false).unwrap(),
            1.0,
            1.0,
            None,
        );
        let w = vec![1.0f32; 10 * 4];
        for (index, value, what) in [
            (3 * 1200 + 1, f32::NAN, "vectors"),
            (3 * 1300, 3e19, "vectors (their length)"),
        ] {
            let mut v = vec![0.5f32; 3 * e];
            v[index] = value;
            let mut h = vec![0.0f32; e * 4];
            let err = layer.forward(&v, &w, &mut h).unwrap_err();
            assert!(
                matches!(err, Error::NonFinite { what: w, index: i } if w == what && i == index),
                "{basis:?}: {err:?}"
            );
            let mut gv = vec![0.0f32; 3 * e];
            let err = layer.backward(&v, &w, &h, Some(&mut gv), None).unwrap_err();
            assert!(
                matches!(err, Error::NonFinite { what: w, index: i } if w == what && i == index),
                "{basis:?}: {err:?}"
            );
        }
    }
}

#[test]
fn radial_layer_bad_shapes_are_errors() {
    let layer = radial_layer(None);
    let mut h = [0.0f64; 4];
    assert!(layer.forward(&[0.0; 4], &[0.0; 10], &mut h[..1]).is_err());
    assert!(layer.forward(&[0.0; 3], &[0.0; 9], &mut h[..1]).is_err());
    assert!(layer.forward(&[0.0; 3], &[0.0; 10], &mut h[..2]).is_err());
    let mut gv = [0.0; 2];
    assert!(
        layer
            .backward(&[0.0; 3], &[0.0; 10], &[0.0], Some(&mut gv), None)
            .is_err()
    );
}
