//! The binary end to end: `equivariant guide` tells the guide's story with a passing
//! equivariance check and writes both pictures; `bench conv --json` prints one JSON line.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(args)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "equivariant {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value printed after `key` on the line containing it, e.g. `f_in.pow(2).mean() = 1.01`.
fn value_after(text: &str, key: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no line with {key:?} in:\n{text}"));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    rest.trim_start_matches([' ', '='])
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
}

#[test]
fn guide_tells_the_story_and_draws_the_pictures() {
    let dir = std::env::temp_dir().join(format!("equivariant-guide-{}", std::process::id()));
    let out = run(&[
        "guide",
        "--seed",
        "1",
        "--reps",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.contains("needs 400 weights"), "{out}");
    assert!(out.contains("irreps_sh = 1x0e+1x1o+1x2e"), "{out}");
    assert!(
        out.contains("allclose(rtol=1e-4, atol=1e-4) = PASS"),
        "{out}"
    );
    // The guide's normalization: second moments close to 1.
    for key in ["f_in.pow(2).mean()", "sh.pow(2).mean()", "second moment"] {
        let v = value_after(&out, key);
        assert!((0.8..1.25).contains(&v), "{key} = {v}");
    }
    for key in [
        "summand.pow(2).mean()",
        "f_out.pow(2).mean()",
        "weight.std()",
    ] {
        let v = value_after(&out, key);
        assert!((0.3..3.0).contains(&v), "{key} = {v}");
    }
    assert!(value_after(&out, "weight.mean()").abs() < 0.5);
    assert!(value_after(&out, "max |diff|") < 1e-4);
    for stage in [
        "radius_graph",
        "harmonics",
        "embedding",
        "mlp",
        "tensor_product",
        "scatter",
    ] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(stage)),
            "no {stage} timing"
        );
    }
    for name in ["radial_basis", "tensor_product"] {
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{name}.svg"
        );
        let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{name}.png"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn guide_rejects_bad_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_equivariant"))
        .args(["guide", "--radius=-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_radius"));
}

#[test]
fn bench_conv_prints_one_json_line() {
    let out = run(&[
        "bench", "conv", "--nodes", "50", "--reps", "1", "--warmup", "0", "--json",
    ]);
    let line = out.trim();
    assert!(
        line.starts_with('{') && line.ends_with('}') && !line.contains('\n'),
        "{out}"
    );
    for key in ["\"nodes\": 50", "\"edges\"", "\"fwd_ms\"", "\"fwd_bwd_ms\""] {
        assert!(line.contains(key), "{key} missing in {line}");
    }
}
