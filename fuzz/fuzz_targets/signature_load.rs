//! Fuzzes signature parsing: any input must load or give an error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = dupcore::rsync::Signature::parse(data) {
        assert!(sig.block_len() >= 1);
        assert!((1..=16).contains(&sig.strong_len()));
    }
});
