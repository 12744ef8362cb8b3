//! Fuzzes the read-ahead gunzip of volumes, signatures and manifests: arbitrary bytes as a
//! `.gz` file must read to the end or fail with a classified error, never panic or hang.
#![no_main]
use dupcore::volume::GzipReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("dupcore-fuzz-gz-{}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    let mut r = GzipReader::open_with_ahead(&path, 2).expect("opening the scratch file");
    let mut out = Vec::new();
    loop {
        out.clear();
        match r.read_into(&mut out, 1 << 16) {
            Ok(0) | Err(_) => break,
            Ok(n) => assert_eq!(n, out.len()),
        }
    }
    let _ = std::fs::remove_file(&path);
});
