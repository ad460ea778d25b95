//! Checkpoints: any text is a checkpoint or a typed error; a parsed checkpoint written out
//! and read again is the same, bit for bit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natgrad::optim::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(checkpoint) = Checkpoint::parse(text) {
        let written = checkpoint.to_text();
        let again = Checkpoint::parse(&written).expect("a written checkpoint parses");
        assert_eq!(again.to_text(), written, "write/read round trip");
    }
});
