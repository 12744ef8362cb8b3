//! Fuzzes the OpenPGP reader (packet scan, SKESK and S2K, SEIPD/MDC and SED decryption,
//! ZIP/ZLIB/BZip2 decompression, literal data, one-pass signatures): arbitrary bytes as an
//! encrypted volume, opened with the passphrase of the seed files, must decrypt or fail with a
//! `PgpError`, never panic or hang.
#![no_main]
use dupcore::pgp::reader::{DecryptOptions, PgpReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
