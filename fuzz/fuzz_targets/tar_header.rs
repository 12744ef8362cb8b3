//! Fuzzes tar header parsing: any block parses or names a problem, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dupcore::tar::parse::parse_full(data);
    let _ = dupcore::tar::parse::parse_simple(data);
});
