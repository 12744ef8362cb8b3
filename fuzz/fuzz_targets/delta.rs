//! Fuzzes delta generation: a delta made from any signature of `old` must patch `old` to `new`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use dupcore::rsync::{delta::delta_of, patch::patch_of, sigmaker::signature_of, LiteralCap};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let block_len = 1 + usize::from(data[0]) * 4;
    let split = usize::from(data[1]) * data.len() / 256;
    let (old, new) = data[2..].split_at(split.min(data.len() - 2));
    let sig = signature_of(old, block_len, 1 + usize::from(data[1] % 16)).expect("valid parameters");
    let delta = delta_of(&sig, new, LiteralCap::V234).expect("own signature loads");
    // A collision of short strong sums may produce a wrong copy; only full sums are checked.
    if data[1] % 16 == 15 {
        assert_eq!(patch_of(old, &delta).expect("own delta applies"), new);
    }
});
