//! The IR text parser: any input is a graph or a typed error; a parsed graph verifies, and
//! printing and re-parsing it gives the same graph.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natgrad_ir::text::{parse, print};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(graph) = parse(text) {
        graph.verify().expect("a parsed graph verifies");
        let printed = print(&graph);
        let again = parse(&printed).expect("printed IR parses");
        assert_eq!(graph, again, "print/parse round trip");
    }
});
