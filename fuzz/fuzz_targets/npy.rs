//! The `.npy` reader: any bytes are an array or a typed error, never a panic or an
//! allocation the file's size does not back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((shape, values)) = natgrad_data::npy::parse(data) {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape and data agree");
    }
});
