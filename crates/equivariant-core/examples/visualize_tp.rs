//! Writes the SVG of the guide's tensor product: `cargo run -p equivariant-core --example visualize_tp -- out.svg`.

use equivariant_core::o3::tensor_product::fully_connected_tensor_product;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tensor_product.svg".into());
    let tp = fully_connected_tensor_product(
        &"10x0e + 10x1e".parse()?,
        &"0e + 1o + 2e".parse()?,
        &"20x0e + 10x1e".parse()?,
        Default::default(),
    )?;
    std::fs::write(&path, tp.visualize())?;
    println!("wrote {path}");
    Ok(())
}
