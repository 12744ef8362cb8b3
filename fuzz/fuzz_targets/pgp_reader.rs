//! Fuzzes the OpenPGP reader (packet scan, SKESK and S2K, SEIPD/MDC and SED decryption,
//! ZIP/ZLIB/BZip2 decompression, literal data, one-pass signatures): arbitrary bytes as an
//! encrypted volume, opened with the passphrase of the seed files, must decrypt or fail with a
//! `PgpError`, never panic or hang. Panics inside sequoia's parser are caught by the reader
//! and become `Corrupt` errors (a regression test keeps each one found); every other panic
//! aborts, as libFuzzer reports it.
#![no_main]
use std::sync::Once;

use dupcore::pgp::reader::{DecryptOptions, PgpReader};
use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

/// Aborts on any panic except those the reader catches from the third-party parser.
fn install_hook() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let in_parser = info.location().is_some_and(|l| {
                l.file().contains("sequoia-openpgp") || l.file().contains("buffered-reader")
            });
            if !in_parser {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    let path = std::env::temp_dir().join(format!("dupcore-fuzz-pgp-{}", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    let opts = DecryptOptions {
        passphrase: Some("dupcore-test".into()),
        ..Default::default()
    };
    if let Ok(mut r) = PgpReader::open(&path, opts) {
        while let Ok(piece) = r.read(Some(1 << 16)) {
            if piece.is_empty() {
                break;
            }
        }
        r.close();
    }
    let _ = std::fs::remove_file(&path);
});
