//! Fuzzes the parallel inflate of an OpenPGP deflate stream's segments against ISA-L's serial
//! inflate of the same bytes: arbitrary bytes as a raw deflate stream must give the same output
//! and the same success or failure both ways, never a panic or hang. Cuts at the break
//! pattern found inside the data, segments that refer back before their start, damaged or
//! truncated segments and bytes after the final block all have to end as the serial reader ends.
#![no_main]
use std::io::Read;

use dupcore::deflate::{IsalInflater, IsalWrapper, SegmentedInflater};
use libfuzzer_sys::fuzz_target;

/// Inflated bytes compared, at most (a small input can expand a thousandfold).
const LIMIT: u64 = 8 << 20;

fn inflate(r: impl Read) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let ok = r.take(LIMIT).read_to_end(&mut out).is_ok();
    (out, ok)
}

fuzz_target!(|data: &[u8]| {
    let (serial, serial_ok) = inflate(IsalInflater::with_wrapper(data, IsalWrapper::Raw));
    for in_flight in [1, 3] {
        let (parallel, parallel_ok) = inflate(SegmentedInflater::new(data, in_flight));
        assert_eq!(serial_ok, parallel_ok, "one reader failed, the other did not");
        if serial_ok {
            assert!(serial == parallel, "the readers gave different bytes");
        } else {
            // both failed: what each handed out before is the stream's start
            let n = serial.len().min(parallel.len());
            assert!(serial[..n] == parallel[..n], "different bytes before the failure");
        }
    }
});
