//! `o3::SO3GridPlan` (e3nn's `SO3Grid`; its values against e3nn are tested through the burn
//! module, `crates/equivariant/tests/equivariant/so3.rs`) and `wigner_d_factors`: round
//! trips, adjoint backwards, and the factors against `wigner_d`.

use equivariant_core::Error;
use equivariant_core::o3::{SO3GridPlan, wigner_d, wigner_d_factors};
use equivariant_testing::assert_close;

fn wavy(n: usize, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * 0.61 + phase).sin() * 1.2)
        .collect()
}

#[test]
fn from_grid_inverts_to_grid_and_backwards_are_transposes() {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for (lmax, resolution, aspect) in [(0, 1, 2.0), (2, 3, 2.0), (3, 4, 1.5)] {
        let plan = SO3GridPlan::new(lmax, resolution, aspect).unwrap();
        let z = 40; // more than one parallel chunk
        let (x, g) = (wavy(z * plan.dim(), 0.1), wavy(z * plan.cells(), 0.7));
        let mut samples = vec![0.0; g.len()];
        plan.to_grid(&x, &mut samples).unwrap();
        let mut back = vec![0.0; x.len()];
        plan.from_grid(&samples, &mut back).unwrap();
        assert_close(&format!("lmax {lmax} res {resolution}"), &back, &x, 1e-10);
        let mut xt = vec![0.0; x.len()];
        plan.to_grid_backward(&g, &mut xt).unwrap();
        assert!((dot(&samples, &g) - dot(&x, &xt)).abs() < 1e-9 * dot(&x, &xt).abs().max(1.0));
        let mut coefficients = vec![0.0; x.len()];
        plan.from_grid(&g, &mut coefficients).unwrap();
        let mut gt = vec![0.0; g.len()];
        plan.from_grid_backward(&x, &mut gt).unwrap();
        assert!((dot(&coefficients, &x) - dot(&g, &gt)).abs() < 1e-9 * dot(&g, &gt).abs().max(1.0));
    }
    let plan = SO3GridPlan::new(1, 2, 2.0).unwrap();
    let mut out = vec![0.0; plan.cells()];
    assert!(matches!(
        plan.to_grid(&[0.0; 9], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        SO3GridPlan::new(1, 1, -1.0),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn wigner_d_factors_rebuild_wigner_d() {
    let matmul = |a: &[f64], b: &[f64], d: usize| -> Vec<f64> {
        (0..d * d)
            .map(|ij| (0..d).map(|k| a[ij / d * d + k] * b[k * d + ij % d]).sum())
            .collect()
    };
    for l in 0..=8u32 {
        let f = wigner_d_factors(l);
        let d = 2 * l as usize + 1;
        let y = |t: f64| -> Vec<f64> {
            (0..d * d)
                .map(|i| {
                    f.fixed[i]
                        + (1..=l as usize)
                            .map(|k| {
                                (k as f64 * t).cos() * f.cos[k - 1][i]
                                    + (k as f64 * t).sin() * f.sin[k - 1][i]
                            })
                            .sum::<f64>()
                })
                .collect()
        };
        let jt: Vec<f64> = (0..d * d).map(|ij| f.j[ij % d * d + ij / d]).collect();
        let (a, b, c) = (0.4, -1.3, 2.2);
        let got = matmul(
            &matmul(&matmul(&matmul(&y(a), &f.j, d), &y(b), d), &jt, d),
            &y(c),
            d,
        );
        assert_close(&format!("l = {l}"), &got, &wigner_d(l, a, b, c), 1e-13);
    }
}
