//! `spec.json`: any bytes are a model or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natgrad::spec::{MlpSpec, build};
use natgrad_ir::DType;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<MlpSpec>(data) {
        // Layer sizes are symbolic in the graph; keep them small enough for the shape
        // arithmetic the IR does, as the CLI's real inputs are.
        if spec.layers.iter().all(|&n| n <= 1 << 20) {
            let _ = build(&spec, DType::F32);
        }
    }
});
