//! e3nn's tetris_polynomial example (`examples/tetris`): trained with Adam until all eight
//! shapes are classified, and equivariant (rotations, the inversion, translations).

#[path = "../../examples/tetris/model.rs"]
#[allow(dead_code)]
mod model;

use burn::tensor::{DType, Device};
use equivariant::util::test::{Representation, assert_equivariant};
use model::{InvariantPolynomial, correct, tetris, train};
use rand::SeedableRng;

#[test]
fn tetris_trains_until_every_shape_is_classified() {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let batch = tetris(&mut rng).unwrap();
    assert_eq!(batch.src.len(), 50, "25 bonds, both directions");
    let model = InvariantPolynomial::new(&device).unwrap();
    let (model, log) = train(model, &batch, 1000, &device).unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        last.correct, 8,
        "after {} steps, loss {}",
        last.step, last.loss
    );
    assert!(
        last.loss < 0.1 * log[0].loss,
        "loss {} -> {}",
        log[0].loss,
        last.loss
    );

    // Fresh rotations of every shape: the trained model still classifies them all.
    let other = tetris(&mut rng).unwrap();
    let (pos, graph) = other.tensors(&device);
    let pred: Vec<f64> = model
        .forward(pos, &graph)
        .unwrap()
        .into_data()
        .iter::<f64>()
        .collect();
    assert_eq!(correct(&pred), 8);

    // Rotations keep the outputs, the inversion flips the odd scalar, translations nothing.
    let (pos, graph) = batch.tensors(&device);
    let errors = assert_equivariant(
        |x| vec![model.forward(x[0].clone(), &graph).unwrap()],
        Some(&[pos]),
        &[Representation::CartesianPoints],
        &[Representation::Irreps("0o + 6x0e".parse().unwrap())],
        None,
        &device,
        DType::F32,
        1,
    )
    .unwrap();
    assert_eq!(errors.len(), 4);
}
