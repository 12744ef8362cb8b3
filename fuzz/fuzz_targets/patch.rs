//! Fuzzes patching: arbitrary deltas against a fixed basis must patch or error, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let basis: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let mut delta = vec![0x72, 0x73, 0x02, 0x36];
    delta.extend_from_slice(data);
    let _ = dupcore::rsync::patch::patch_of(&basis, &delta);
});
