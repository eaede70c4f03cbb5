//! The committed slice of the project's Cu-Au dataset (`data/cuau_emt_slice.extxyz`, made by
//! `tools/data/make_cuau_dataset.py --slice` with ASE's EMT): every frame reads, with the
//! labels a potential trains on.

use std::collections::BTreeSet;

use equivariant_data::extxyz;

const SLICE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/cuau_emt_slice.extxyz"
);

#[test]
fn the_slice_has_every_label_and_condition() {
    let frames = extxyz::read(SLICE).unwrap();
    assert_eq!(frames.len(), 150);
    let mut conditions = BTreeSet::new();
    for (k, frame) in frames.iter().enumerate() {
        assert!(frame.energy.is_some(), "frame {k}: energy");
        assert_eq!(
            frame.forces.as_ref().map(Vec::len),
            Some(frame.len()),
            "frame {k}: forces"
        );
        assert!(frame.stress.is_some(), "frame {k}: stress");
        assert!(
            frame.cell.is_some() && frame.pbc == [true; 3],
            "frame {k}: periodic cell"
        );
        assert!(
            frame.species.iter().all(|s| s == "Cu" || s == "Au"),
            "frame {k}: species"
        );
        assert!(
            frame.species.iter().any(|s| s == "Au"),
            "frame {k}: an alloy"
        );
        conditions.insert((
            frame.info["config_type"].clone(),
            frame.info["temperature"].clone(),
        ));
    }
    // Three systems at five temperatures, ten frames each.
    assert_eq!(conditions.len(), 15);
    let sizes: BTreeSet<usize> = frames.iter().map(|f| f.len()).collect();
    assert_eq!(
        sizes,
        BTreeSet::from([36, 107, 108]),
        "surface, vacancy, bulk"
    );
}

/// A split is a partition of the frames, the same for a seed, another for another seed.
#[test]
fn splits_partition_the_frames_by_seed() {
    use equivariant_data::split;
    let n = 150;
    let a = split(n, 0.1, 0.1, 0).unwrap();
    assert_eq!(
        (a.train.len(), a.validation.len(), a.test.len()),
        (120, 15, 15)
    );
    let mut all: Vec<usize> = [&a.train[..], &a.validation, &a.test].concat();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
    assert_eq!(a, split(n, 0.1, 0.1, 0).unwrap());
    assert_ne!(a, split(n, 0.1, 0.1, 1).unwrap());
    assert_eq!(split(n, 0.0, 0.0, 3).unwrap().train.len(), n);
    for (v, t) in [(-0.1, 0.1), (1.0, 0.0), (f64::NAN, 0.1), (0.5, 0.5)] {
        assert!(split(n, v, t, 0).is_err(), "{v}, {t}");
    }
    assert!(split(0, 0.1, 0.1, 0).is_err(), "no frames");
}
