//! e3nn's `tetris_polynomial` example in Rust: train an invariant polynomial of point
//! positions to tell the eight tetris shapes apart (mirror images by an odd scalar), then
//! check that rotated and reflected shapes get the same answers (the odd one flipped).
//!
//! Run: `cargo run --release -p equivariant --example tetris [-- --seed 0 --max-steps 1000]`

mod model;

use burn::tensor::{DType, Device};
use equivariant::o3::Irreps;
use equivariant::util::test::{Representation, Trials, equivariance_error};
use model::{InvariantPolynomial, tetris, train};
use rand::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut seed = 0u64;
    let mut max_steps = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--seed" => seed = value.parse()?,
            "--max-steps" => max_steps = value.parse()?,
            _ => return Err(format!("unknown option {arg} (--seed, --max-steps)").into()),
        }
    }
    let device = Device::flex().autodiff();
    device.seed(seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let batch = tetris(&mut rng)?;
    println!("tetris: 8 shapes, 32 nodes, {} edges", batch.src.len());

    let start = std::time::Instant::now();
    let model = InvariantPolynomial::new(&device)?;
    let (model, log) = train(model, &batch, max_steps, &device)?;
    for step in log.iter().filter(|s| s.step % 10 == 0 || s.correct == 8) {
        println!(
            "step {:5} | loss {:10.3} | {}/8 correct",
            step.step, step.loss, step.correct
        );
    }
    let last = log.last().ok_or("no step run")?;
    println!(
        "{} after {} steps ({:.2} s)",
        if last.correct == 8 {
            "all 8 shapes classified"
        } else {
            "not all shapes classified"
        },
        last.step,
        start.elapsed().as_secs_f64()
    );

    // The model as a function of the positions: rotations keep every output, the inversion
    // flips the odd scalar, translations change nothing.
    let (pos, graph) = batch.tensors(&device);
    let irreps_out: Irreps = "0o + 6x0e".parse()?;
    let errors = equivariance_error(
        |x| {
            vec![
                model
                    .forward(x[0].clone(), &graph)
                    .expect("shapes fixed by the example"),
            ]
        },
        &[pos.cast(DType::F32)],
        &[Representation::CartesianPoints],
        &[Representation::Irreps(irreps_out)],
        Trials::default(),
        &mut rng,
    )?;
    for e in &errors {
        println!(
            "equivariance error (parity {}, translation {}): {:.1e}",
            e.parity, e.translation, e.max_error
        );
    }
    Ok(())
}
