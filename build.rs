//! Build-time check of the compiler: the AVX-512 intrinsics are stable since Rust 1.89, while
//! the crate builds with Rust 1.85 (Debian 13's). Older compilers build without the
//! sixteen-lane MD4 path (`cfg(dupcore_avx512)`), which only changes speed.

use std::process::Command;

/// First Rust release with stable AVX-512 intrinsics (minor version).
const AVX512_SINCE_MINOR: u32 = 89;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dupcore_avx512)");
    println!("cargo::rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.split_whitespace()
                .nth(1)?
                .split('.')
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
    if minor.is_some_and(|m| m >= AVX512_SINCE_MINOR) {
        println!("cargo::rustc-cfg=dupcore_avx512");
    }
}
