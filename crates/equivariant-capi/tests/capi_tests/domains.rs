//! Domain decomposition through the library: a structure cut into domains with ghost atoms
//! gives the whole structure's energy, per-atom energies, forces and virial.

use equivariant_md::calculator::Calculator;

use super::common::{Domain, assert_close, calculator, checkpoint, domain, frame, fresh_dir};

/// The domains' results summed as an MD engine sums them.
struct Assembled {
    energy: f64,
    energies: Vec<f64>,
    forces: Vec<f64>,
    virial: Vec<f64>,
    atom_virials: Vec<f64>,
}

/// Sums the domains' results as an MD engine does: energies of local atoms, each ghost's
/// force and virial share added to the atom it copies, virials added.
fn assemble(calculator: &Calculator, domains: &[Domain], n: usize) -> Assembled {
    let (mut energy, mut energies, mut forces, mut virial) =
        (0.0, vec![f64::NAN; n], vec![0.0; 3 * n], vec![0.0; 9]);
    let mut atom_virials = vec![0.0; 9 * n];
    for d in domains {
        let result = calculator
            .compute_neighbors(
                &d.positions,
                d.species.clone(),
                Some(&d.contributing),
                &d.neighbors,
            )
            .unwrap();
        energy += result.energy;
        for (k, &owner) in d.owner.iter().enumerate() {
            if d.contributing[k] {
                energies[owner] = result.energies[k];
            } else {
                assert_eq!(result.energies[k], 0.0, "a ghost's energy is not counted");
            }
            for a in 0..3 {
                forces[3 * owner + a] += result.forces[k][a];
            }
            for (w, v) in atom_virials[9 * owner..9 * owner + 9]
                .iter_mut()
                .zip(result.atom_virials[k].iter().flatten())
            {
                *w += v;
            }
        }
        for (w, v) in virial.iter_mut().zip(result.virial.iter().flatten()) {
            *w += v;
        }
    }
    Assembled {
        energy,
        energies,
        forces,
        virial,
        atom_virials,
    }
}

/// One domain (all atoms local, their images as ghosts) and two domains (each the other's
/// ghosts across the boundary) reproduce the periodic structure, for a cubic and a triclinic
/// cell.
#[test]
fn domains_with_ghosts_give_the_whole_structure() {
    let dir = fresh_dir("domains");
    let calculator = calculator(&checkpoint(&dir));
    for atoms in [108, 36] {
        let frame = frame(atoms);
        let whole = calculator.compute(&frame).unwrap();
        let species = calculator.structure(&frame).unwrap().species;
        let forces: Vec<f64> = whole.forces.iter().flatten().copied().collect();
        let virial: Vec<f64> = whole.virial.iter().flatten().copied().collect();
        let shares: Vec<f64> = whole
            .atom_virials
            .iter()
            .flatten()
            .flatten()
            .copied()
            .collect();
        // The shares sum to the virial.
        for (c, w) in virial.iter().enumerate() {
            let sum: f64 = shares.iter().skip(c).step_by(9).sum();
            assert!((sum - w).abs() <= 1e-10 * w.abs().max(1.0), "{sum} {w}");
        }
        assert!(
            forces.iter().any(|f| f.abs() > 1e-3),
            "forces too small to test"
        );
        for parts in [1, 2] {
            let domains: Vec<Domain> = (0..parts)
                .map(|p| {
                    let (lo, hi) = (p as f64 / parts as f64, (p + 1) as f64 / parts as f64);
                    domain(&frame, &species, lo, hi)
                })
                .collect();
            assert!(
                domains.iter().all(|d| d.positions.len() > 3 * atoms),
                "ghosts out to the influence distance"
            );
            let got = assemble(&calculator, &domains, frame.len());
            let what = |q: &str| format!("{atoms} atoms, {parts} domain(s): {q}");
            assert_close(&[got.energy], &[whole.energy], &what("energy"));
            assert_close(&got.energies, &whole.energies, &what("per-atom energies"));
            assert_close(&got.forces, &forces, &what("forces"));
            assert_close(&got.virial, &virial, &what("virial"));
            assert_close(&got.atom_virials, &shares, &what("per-atom virials"));
        }
    }
}

/// Without the ghosts' own neighbour lists, a two-layer model's local energies are wrong:
/// the contract the header states (and the KIM driver asks the MD engine for) matters.
#[test]
fn ghosts_need_their_neighbour_lists() {
    let dir = fresh_dir("ghost_lists");
    let calculator = calculator(&checkpoint(&dir));
    let frame = frame(108);
    let species = calculator.structure(&frame).unwrap().species;
    let whole = calculator.compute(&frame).unwrap();
    let mut d = domain(&frame, &species, 0.0, 1.0);
    for (k, list) in d.neighbors.iter_mut().enumerate() {
        if !d.contributing[k] {
            list.retain(|&j| d.contributing[j]);
        }
    }
    let energy = assemble(&calculator, &[d], frame.len()).energy;
    assert!(
        (energy - whole.energy).abs() > 1e-6,
        "{energy} {}",
        whole.energy
    );
}
