//! Helpers shared by the workspace's integration tests (a dev-dependency only): loading the
//! e3nn fixtures that `tools/reference/` generates, and closeness checks that name the first
//! failing index.
//!
//! ```
//! use equivariant_testing::{assert_close, f64s};
//! let v: serde_json::Value = serde_json::from_str("[[1.0, 2.0], [3.0, \"nan\"]]").unwrap();
//! let got = f64s(&v);
//! assert_close("first three", &got[..3], &[1.0, 2.0, 3.0], 0.0);
//! assert!(got[3].is_nan());
//! ```

use serde_json::Value;

/// Loads `tests/fixtures/<name>.json` of the crate whose test calls it (the path is taken
/// from that crate's `CARGO_MANIFEST_DIR` at compile time), panicking with the path on a
/// missing or malformed file.
///
/// ```no_run
/// let fixture = equivariant_testing::load_fixture!("irreps");
/// assert!(fixture.is_object());
/// ```
#[macro_export]
macro_rules! load_fixture {
    ($name:expr) => {
        $crate::read_json(&format!(
            "{}/tests/fixtures/{}.json",
            env!("CARGO_MANIFEST_DIR"),
            $name
        ))
    };
}

/// Reads and parses one JSON file, panicking with its path on failure (tests only).
///
/// ```no_run
/// let value = equivariant_testing::read_json("tests/fixtures/irreps.json");
/// assert!(value.is_object());
/// ```
pub fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A JSON array of numbers (nested arrays are flattened, row-major; `"nan"` is NaN).
///
/// ```
/// let v: serde_json::Value = serde_json::from_str("[[1, 2], [3]]").unwrap();
/// assert_eq!(equivariant_testing::f64s(&v), vec![1.0, 2.0, 3.0]);
/// ```
pub fn f64s(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    flatten(v, &mut out);
    out
}

fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|x| flatten(x, out)),
        Value::Number(n) => out.push(n.as_f64().expect("number")),
        Value::String(s) if s == "nan" => out.push(f64::NAN),
        other => panic!("not a number: {other}"),
    }
}

/// Asserts `|a - b| <= tol` elementwise, naming the worst index (a NaN anywhere fails).
///
/// ```
/// equivariant_testing::assert_close("x", &[1.0, 2.0], &[1.0, 2.0 + 1e-12], 1e-10);
/// ```
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let (mut worst, mut at) = (0.0f64, 0);
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let d = (g - e).abs();
        if d.is_nan() || d > worst {
            worst = if d.is_nan() { f64::INFINITY } else { d };
            at = i;
        }
    }
    assert!(
        worst <= tol,
        "{what}: max deviation {worst:e} at index {at} (got {}, expected {}), tolerance {tol:e}",
        got[at],
        expected[at]
    );
}
