//! The extended-XYZ reader against what ASE reads from a file ASE wrote
//! (`tools/data/make_extxyz_fixture.py`: a periodic Cu-Au cell with energy, forces, stress
//! and per-frame tags; a non-periodic cluster with extra per-atom columns; a slab periodic
//! in two directions), round trips through the writer, and malformed input.

use equivariant_data::{Column, Error, Frame, extxyz};
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ase.extxyz");
const ORACLE: &str = include_str!("fixtures/ase.json");

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(x) => vec![x.as_f64().unwrap()],
        other => panic!("not numbers: {other}"),
    }
}

fn close(what: &str, got: &[f64], expected: &[f64]) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-12 * e.abs().max(1.0),
            "{what}[{i}]: {g} against {e}"
        );
    }
}

#[test]
fn reads_what_ase_wrote_as_ase_reads_it() {
    let frames = extxyz::read(FIXTURE).unwrap();
    let oracle: Vec<Value> = serde_json::from_str(ORACLE).unwrap();
    assert_eq!(frames.len(), oracle.len());
    for (k, (frame, o)) in frames.iter().zip(&oracle).enumerate() {
        let what = |field: &str| format!("frame {k}: {field}");
        let species: Vec<&str> = o["species"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(frame.species, species, "{}", what("species"));
        let flat = |v: &[[f64; 3]]| v.iter().flatten().copied().collect::<Vec<_>>();
        close(
            &what("positions"),
            &flat(&frame.positions),
            &floats(&o["positions"]),
        );
        match (&frame.cell, &o["cell"]) {
            (Some(cell), expected) => close(&what("cell"), &flat(cell), &floats(expected)),
            (None, Value::Null) => {}
            (None, _) => panic!("{}", what("cell missing")),
        }
        let pbc: Vec<bool> = o["pbc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        assert_eq!(frame.pbc.to_vec(), pbc, "{}", what("pbc"));
        close(
            &what("energy"),
            &[frame.energy.unwrap()],
            &floats(&o["energy"]),
        );
        close(
            &what("forces"),
            &flat(frame.forces.as_ref().unwrap()),
            &floats(&o["forces"]),
        );
        match (&frame.stress, &o["stress"]) {
            (Some(s), expected) if !expected.is_null() => {
                close(&what("stress"), &flat(s), &floats(expected))
            }
            (None, Value::Null) => {}
            (got, expected) => panic!("{}: {got:?} against {expected}", what("stress")),
        }
        for (key, value) in o["info"].as_object().unwrap() {
            let got = frame
                .info
                .get(key)
                .unwrap_or_else(|| panic!("{}", what(key)));
            match value {
                Value::String(s) => assert_eq!(got, s, "{}", what(key)),
                v => close(&what(key), &[got.parse().unwrap()], &floats(v)),
            }
        }
        assert_eq!(
            frame.info.len(),
            o["info"].as_object().unwrap().len(),
            "{}",
            what("info keys")
        );
        let arrays = o["arrays"].as_object().unwrap();
        assert_eq!(frame.arrays.len(), arrays.len(), "{}", what("arrays"));
        for (name, expected) in arrays {
            match frame.array(name) {
                Some(Column::Real(rows)) => close(
                    &what(name),
                    &rows.iter().flatten().copied().collect::<Vec<_>>(),
                    &floats(expected),
                ),
                Some(Column::Int(rows)) => {
                    let got: Vec<f64> = rows.iter().flatten().map(|&i| i as f64).collect();
                    close(&what(name), &got, &floats(expected));
                }
                other => panic!("{}: {other:?}", what(name)),
            }
        }
    }
}

#[test]
fn writes_what_it_reads() {
    let frames = extxyz::read(FIXTURE).unwrap();
    let text = extxyz::to_string(&frames).unwrap();
    assert_eq!(extxyz::parse(&text, "written").unwrap(), frames);
    // Every kind of column and quoted info values survive too.
    let mut frame = Frame::new(
        vec!["H".into(), "O".into()],
        vec![[0.0, 0.1, 0.2], [1.0, 1e-300, -2.5]],
    );
    frame.arrays = vec![
        ("fixed".into(), Column::Bool(vec![vec![true], vec![false]])),
        (
            "label".into(),
            Column::Str(vec![vec!["a".into()], vec!["b".into()]]),
        ),
        ("ids".into(), Column::Int(vec![vec![-1, 2], vec![3, 4]])),
    ];
    frame
        .info
        .insert("note".into(), "two words \"quoted\"".into());
    frame.info.insert("empty".into(), String::new());
    frame.virial = Some([[1.0, 2.0, 3.0], [2.0, 5.0, 6.0], [3.0, 6.0, 9.0]]);
    frame.pbc = [true, false, true];
    let text = extxyz::to_string(std::slice::from_ref(&frame)).unwrap();
    assert_eq!(extxyz::parse(&text, "written").unwrap(), [frame]);
}

#[test]
fn voigt_stress_and_defaults() {
    let text = "1\nLattice=\"2 0 0 0 2 0 0 0 2\" stress=\"1 2 3 4 5 6\" flag\nX 0 0 0\n\n";
    let frame = &extxyz::parse(text, "voigt").unwrap()[0];
    assert_eq!(
        frame.stress,
        Some([[1.0, 6.0, 5.0], [6.0, 2.0, 4.0], [5.0, 4.0, 3.0]])
    );
    assert_eq!(
        frame.pbc, [true; 3],
        "a lattice without pbc is periodic, as in ASE"
    );
    assert_eq!(frame.info["flag"], "T");
    assert!(extxyz::parse("", "empty").unwrap().is_empty());
}

/// Each malformed input names its line and field.
#[test]
fn malformed_input_names_line_and_field() {
    let head = "Properties=species:S:1:pos:R:3:forces:R:3";
    let cases = [
        ("x\n\n".to_string(), 1, "atom count"),
        ("1\n".to_string(), 2, "comment line"),
        (format!("2\n{head}\nCu 0 0 0 0 0 0\n"), 4, "atoms"),
        (format!("1\n{head}\nCu 0 0 0 0 0\n"), 3, "atoms"),
        (format!("1\n{head}\nCu 0 nan 0 0 0 0\n"), 3, "pos"),
        (format!("1\n{head}\nCu 0 0 0 0 0 x\n"), 3, "forces"),
        ("1\nLattice=\"1 0 0\"\nCu 0 0 0\n".to_string(), 2, "Lattice"),
        ("1\npbc=\"T T\"\nCu 0 0 0\n".to_string(), 2, "pbc"),
        ("1\nenergy=abc\nCu 0 0 0\n".to_string(), 2, "energy"),
        ("1\nstress=\"1 2 3\"\nCu 0 0 0\n".to_string(), 2, "stress"),
        ("1\nnote=\"open\nCu 0 0 0\n".to_string(), 2, "comment line"),
        (
            "1\nProperties=species:S:1:pos:Q:3\nCu 0 0 0\n".to_string(),
            2,
            "Properties",
        ),
        (
            "1\nProperties=species:S:1\nCu\n".to_string(),
            2,
            "Properties",
        ),
        (
            "1\nProperties=species:S:1:pos:R:2\nCu 0 0\n".to_string(),
            2,
            "Properties",
        ),
        (
            "1\nProperties=species:S:1:pos:R:3:tags:I:1\nCu 0 0 0 1.5\n".to_string(),
            3,
            "tags",
        ),
        (format!("1\n{head}\nCu 0 0 0 0 0 0\n3\n"), 5, "comment line"),
    ];
    for (text, line, field) in cases {
        match extxyz::parse(&text, "bad.xyz") {
            Err(Error::Parse {
                file,
                line: l,
                field: f,
                reason,
            }) => {
                assert_eq!(
                    (file.as_str(), l, f.as_str()),
                    ("bad.xyz", line, field),
                    "{text:?}: {reason}"
                );
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn unwritable_frames_are_errors() {
    let mut frame = Frame::new(vec!["Cu".into()], vec![[0.0; 3], [1.0; 3]]);
    assert!(matches!(
        extxyz::to_string(&[frame.clone()]),
        Err(Error::InvalidFrame { frame: 0, .. })
    ));
    frame.positions.pop();
    frame.forces = Some(vec![[f64::NAN, 0.0, 0.0]]);
    assert!(extxyz::to_string(&[frame.clone()]).is_err());
    frame.forces = None;
    let bad = |f: &Frame, what: &str| {
        let err = extxyz::to_string(std::slice::from_ref(f));
        assert!(
            matches!(err, Err(Error::InvalidFrame { .. })),
            "{what}: {err:?}"
        );
    };
    let mut f = frame.clone();
    f.species[0] = "C u".into();
    bad(&f, "a species with a space");
    let mut f = frame.clone();
    f.energy = Some(f64::INFINITY);
    bad(&f, "an infinite energy");
    let mut f = frame.clone();
    f.stress = Some([[f64::NAN; 3]; 3]);
    bad(&f, "a NaN stress");
    let mut f = frame.clone();
    f.arrays.push(("ragged".into(), Column::Real(vec![vec![]])));
    bad(&f, "a column of width 0");
    let mut f = Frame::new(vec!["Cu".into(), "Au".into()], vec![[0.0; 3]; 2]);
    f.arrays
        .push(("ragged".into(), Column::Int(vec![vec![1], vec![1, 2]])));
    bad(&f, "rows of different widths");
    let mut f = frame.clone();
    f.arrays
        .push(("forces".into(), Column::Real(vec![vec![0.0; 3]])));
    bad(&f, "a kept column named forces");
    let mut f = frame;
    f.arrays.push(("a:b".into(), Column::Int(vec![vec![1]])));
    bad(&f, "a column name with a colon");
}

/// Writes the fixture back through our writer for ASE to read (see
/// `tools/data/check_written.py`); run with `--ignored`.
#[test]
#[ignore]
fn write_fixture_for_ase() {
    let frames = extxyz::read(FIXTURE).unwrap();
    let out = std::env::var("EXTXYZ_OUT").unwrap_or_else(|_| "/tmp/written.extxyz".into());
    extxyz::write(out, &frames).unwrap();
}
