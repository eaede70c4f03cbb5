//! An e3nn-trained model in Rust: e3nn 0.6.0's v2106 `SimpleNetwork`, trained in PyTorch on
//! a toy invariant (the pair energy of 6-point clouds) by
//! `tools/reference/train_simple_network.py`, loaded from the state dict that script saved
//! (`simple_network.safetensors`, as `save_file(model.state_dict())` writes it) and run on the
//! script's 8 held-out clouds, one batch: e3nn's outputs and ours side by side.
//!
//! Run: `cargo run --release -p equivariant --example simple_network`

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use equivariant::nn::models::SimpleNetworkConfig;
use serde_json::Value;

/// float32 on both sides: the outputs agree to a few ulps of their size.
const TOLERANCE: f64 = 1e-4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/simple_network");
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("simple_network.json"))?)?;
    let floats = |key: &str| -> Result<Vec<f32>, String> {
        data[key]
            .as_array()
            .ok_or(format!("{key}: not a list"))?
            .iter()
            .map(|v| {
                v.as_f64()
                    .map(|v| v as f32)
                    .ok_or(format!("{key}: not a number"))
            })
            .collect()
    };
    let config = &data["config"];
    let text = |key: &str| config[key].as_str().ok_or(format!("config.{key}"));
    let number = |key: &str| config[key].as_f64().ok_or(format!("config.{key}"));
    let config = SimpleNetworkConfig {
        mul: number("mul")? as usize,
        layers: number("layers")? as usize,
        lmax: number("lmax")? as u32,
        ..SimpleNetworkConfig::new(
            &text("irreps_in")?.parse()?,
            &text("irreps_out")?.parse()?,
            number("max_radius")?,
            number("num_neighbors")?,
            number("num_nodes")?,
        )
    };

    let device = Device::flex();
    let mut net = config.init(&device)?;
    net.load_e3nn(dir.join("simple_network.safetensors"))?;

    let pos = floats("pos")?;
    let x = floats("x")?;
    let nodes = pos.len() / 3;
    let batch: Vec<usize> = data["batch"]
        .as_array()
        .ok_or("batch: not a list")?
        .iter()
        .map(|v| v.as_u64().map(|v| v as usize).ok_or("batch: not an index"))
        .collect::<Result<_, _>>()?;
    let pos = Tensor::<2>::from_data(TensorData::new(pos, [nodes, 3]), &device);
    let x = Tensor::<2>::from_data(TensorData::new(x, [nodes, 1]), &device);
    let ours: Vec<f32> = net
        .forward(pos, x, Some(&batch))?
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;

    let (target, e3nn) = (floats("target")?, floats("e3nn_out")?);
    println!(
        "e3nn {} SimpleNetwork ({} layers, mul {}, lmax {}), trained in PyTorch: MSE {:.3} -> {:.4}",
        data["e3nn"].as_str().unwrap_or("?"),
        config.layers,
        config.mul,
        config.lmax,
        data["loss_first"].as_f64().unwrap_or(f64::NAN),
        data["loss_last"].as_f64().unwrap_or(f64::NAN),
    );
    println!("cloud | target    | e3nn      | equivariant | |difference|");
    let mut worst = 0f64;
    for (i, ((t, e), o)) in target.iter().zip(&e3nn).zip(&ours).enumerate() {
        let diff = f64::from((e - o).abs());
        worst = worst.max(diff);
        println!("{i:5} | {t:9.5} | {e:9.5} | {o:11.5} | {diff:.2e}");
    }
    println!("largest difference {worst:.2e} (float32; tolerance {TOLERANCE:.0e})");
    if ours.len() != e3nn.len() || worst > TOLERANCE {
        return Err("our outputs differ from e3nn's".into());
    }
    Ok(())
}
