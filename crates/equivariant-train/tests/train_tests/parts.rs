//! A batch trained in parts ([`equivariant_train::parallel`]): the summed loss and
//! parameter gradients of its parts are the whole batch's, computed here from the model's
//! own `training_gradients` on the whole batch with the loss's derivatives written out.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::forces::LossDerivatives;
use equivariant::nn::models::nequip::Nequip;
use equivariant::potential::Potential;
use equivariant_data::extxyz;
use equivariant_train::dataset::{Batch, Dataset};
use equivariant_train::gradients::ParamGradients;
use equivariant_train::parallel;
use equivariant_train::trainer::loss_gradients;

use super::{f64_model, slice};

/// Every float parameter's id.
struct Ids(Vec<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id);
    }
}

/// The whole batch's loss `w_e mean_g ((E_g - E_ref_g) / n_g)^2 + w_f mean((F - F_ref)^2)`
/// and its parameter gradients, by the model's `training_gradients`.
fn whole_batch(model: &Nequip, batch: &Batch, w_e: f64, w_f: f64) -> (f64, ParamGradients) {
    let mut loss = 0.0;
    let step = model
        .training_gradients(
            &batch.graph,
            |result| {
                let e: Vec<f64> = result.energy.to_data().iter::<f64>().collect();
                let f: Vec<f64> = result.forces.to_data().iter::<f64>().collect();
                let (g, c) = (e.len() as f64, f.len() as f64);
                let mut d_energy = Vec::new();
                for ((e, e_ref), &n) in e.iter().zip(&batch.energies).zip(&batch.counts) {
                    let r = (e - e_ref) / n as f64;
                    loss += w_e * r * r / g;
                    d_energy.push(2.0 * w_e * r / (n as f64 * g));
                }
                let mut d_forces = Vec::new();
                for (f, f_ref) in f.iter().zip(&batch.forces) {
                    loss += w_f * (f - f_ref).powi(2) / c;
                    d_forces.push(2.0 * w_f * (f - f_ref) / c);
                }
                let like = &result.forces;
                Ok(LossDerivatives {
                    energy: d_energy,
                    forces: Tensor::from_data(
                        TensorData::new(d_forces, like.dims()),
                        (&like.device(), like.dtype()),
                    ),
                    virial: None,
                })
            },
            false,
        )
        .unwrap();
    (loss, ParamGradients::new(model, &step.gradients))
}

#[test]
fn a_batch_in_parts_has_the_whole_batch_loss_and_gradients() {
    let device = Device::flex().autodiff();
    let model = f64_model(
        "r_max = 3.5\nnum_layers = 2\nl_max = 1\nnum_features = 4\ninvariant_layers = 1\ninvariant_neurons = 8",
        &device,
    );
    // Five frames of two sizes: parts of different frame and atom counts.
    let frames: Vec<_> = extxyz::read(slice()).unwrap().into_iter().collect();
    let small = frames.iter().filter(|f| f.len() <= 40).take(3);
    let large = frames.iter().filter(|f| f.len() > 40).take(2);
    let chosen: Vec<_> = small.chain(large).cloned().collect();
    let species = ["Au".to_string(), "Cu".to_string()];
    let data = Dataset::from_frames(&chosen, "slice", Some(&species)).unwrap();
    let samples: Vec<_> = data.samples.iter().collect();
    let counts: Vec<usize> = samples.iter().map(|s| s.forces.len()).collect();
    assert!(counts.iter().any(|&n| n != counts[0]), "{counts:?}");
    let build = |part: &[&equivariant_train::dataset::Sample]| {
        Batch::new(part, model.r_max(), &device, DType::F64).unwrap()
    };
    let whole = build(&samples);
    let (w_e, w_f) = (2.0, 0.5);
    let (loss, grads) = whole_batch(&model, &whole, w_e, w_f);
    let sizes: Vec<usize> = counts.clone();
    let parts: Vec<Batch> = parallel::balanced_parts(&sizes)
        .into_iter()
        .map(|part| build(&part.iter().map(|&i| samples[i]).collect::<Vec<_>>()))
        .collect();
    assert_eq!(parts.len(), 2);
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    for parts in [vec![whole.clone()], parts] {
        let (part_loss, part_grads) = loss_gradients(&model, &parts, w_e, w_f).unwrap();
        assert!(
            (part_loss - loss).abs() <= 1e-12 * loss,
            "{part_loss} against {loss}"
        );
        let mut compared = 0;
        for &id in &ids.0 {
            let (Some(a), Some(b)) = (part_grads.get(id), grads.get(id)) else {
                assert!(part_grads.get(id).is_none() && grads.get(id).is_none());
                continue;
            };
            let a: Vec<f64> = a.to_data().iter::<f64>().collect();
            let b: Vec<f64> = b.to_data().iter::<f64>().collect();
            let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(scale > 0.0, "a parameter with a zero gradient");
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-10 * scale, "{x} against {y}");
            }
            compared += 1;
        }
        assert!(compared >= 10, "only {compared} gradients compared");
    }
}
