//! Fuzzes the restore engine: arbitrary bytes as the volumes of a full backup and one
//! incremental, restored into a scratch directory, must restore or fail with an error, never
//! panic, hang or write outside the scratch directory.
#![no_main]
use std::io::{Cursor, Read};

use dupcore::restore::chain::SPOOL_IN_MEMORY;
use dupcore::restore::writer::WriteOptions;
use dupcore::restore::{restore, Event, Host, Mode, RestoreOptions, RestoreResult};
use libfuzzer_sys::fuzz_target;

struct Volumes(Vec<Option<Vec<u8>>>);

impl Host for Volumes {
    fn next_volume(&mut self, set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>> {
        Ok(self.0[set]
            .take()
            .map(|v| Box::new(Cursor::new(v)) as Box<dyn Read + Send>))
    }

    fn event(&mut self, _event: Event) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = rest.len() * usize::from(split) / 256;
    let scratch = std::env::temp_dir().join(format!("dupcore-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let target = scratch.join("out");
    let mut host = Volumes(vec![Some(rest[..at].to_vec()), Some(rest[at..].to_vec())]);
    let opts = RestoreOptions {
        target: target.as_os_str().as_encoded_bytes().to_vec(),
        sets: 2,
        restrict: Vec::new(),
        tempdir: scratch.clone(),
        numeric_owner: true,
        // split bit 1: every snapshot spooled to disk, a file with deltas finished in its
        // spool file in the target
        spool_in_memory: if split & 2 != 0 { 0 } else { SPOOL_IN_MEMORY },
        // an odd split byte also runs the pool of file writers
        mode: Mode::Restore(WriteOptions {
            writers: usize::from(split & 1) * 2,
            ..WriteOptions::default()
        }),
    };
    let _ = restore(&opts, &mut host);
    let _ = std::fs::remove_dir_all(&scratch);
});
