//! Bytes → `QuantizedModel::from_bytes` → forward of every layer with a small input.
//! Loading must never panic or read out of bounds; whatever loads must run.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qlinear::{CpuDevice, QuantizedModel};

fn device() -> &'static CpuDevice {
    static DEV: OnceLock<CpuDevice> = OnceLock::new();
    DEV.get_or_init(|| CpuDevice::with_threads(1).expect("device"))
}

fuzz_target!(|data: &[u8]| {
    let dev = device();
    match QuantizedModel::from_bytes(data, dev) {
        Ok(model) => {
            for (_, layer) in model.iter() {
                let x = vec![0.5f32; 2 * layer.in_features];
                let mut y = vec![0f32; 2 * layer.out_features];
                layer
                    .forward_f32(&x, 2, &mut y)
                    .expect("a loaded layer runs");
            }
        }
        Err(qlinear::Error::Corrupt(_)) | Err(qlinear::Error::OutOfMemory { .. }) => {}
        Err(e) => panic!("load failed with a non-Corrupt error: {e:?}"),
    }
});
