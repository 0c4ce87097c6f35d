//! The reference usage of the API, as a runnable example (`cargo run --example usage`).

use qlinear::{CpuDevice, CpuTensor, DType, Linear, Module, QuantConfig, QuantizedLinear};

fn main() -> qlinear::Result<()> {
    let dev = CpuDevice::new()?;
    let input = CpuTensor::from_f32(vec![0.5; 256], &[1, 256], &dev)?;

    let linear = Linear::new(256, 10, true, DType::F32, &dev)?;
    let qlinear = QuantizedLinear::from_linear(&linear, &QuantConfig::int8())?;
    let output = qlinear.forward(&input)?;

    println!(
        "output shape {:?}: {:?}",
        output.shape(),
        output.to_f32_vec()
    );
    println!("memory saved: {} bytes", qlinear.memory_savings_bytes());
    Ok(())
}
