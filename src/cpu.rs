//! The CPU-specific code paths the engine takes on this machine.
//!
//! Every SIMD path is chosen at run time with a portable fallback: dupcore's own MD4 lanes
//! (`rsync::md4_lanes`) and rollsum steps (`rsync::rollsum`) and, inside the crates, SHA-1 (`sha1`), AES (`aes`, through sequoia)
//! and CRC-32 (`crc32fast`). This module names the paths the same run-time checks select, so
//! `python -m dupcore status` can show them and the tests can check that an emulated CPU
//! without the features takes the fallbacks.

/// The accelerated paths this CPU gets, e.g. `"md4 and rollsum: AVX2"`; empty where every path
/// runs its portable code.
pub fn accelerated_paths() -> Vec<&'static str> {
    let mut paths = Vec::new();
    if crate::rsync::md4_lanes::uses_avx512() {
        paths.push("md4: AVX-512");
    }
    if crate::rsync::md4_lanes::uses_avx2() {
        paths.push("md4 and rollsum: AVX2");
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("sha") && has!("sse2") && has!("ssse3") && has!("sse4.1") {
            paths.push("sha1: SHA-NI");
        }
        if has!("aes") && has!("sse2") {
            paths.push("aes: AES-NI");
        }
        if has!("pclmulqdq") && has!("sse4.1") {
            paths.push("crc32: PCLMULQDQ");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        if has!("sha2") {
            paths.push("sha1: ARMv8 SHA");
        }
        if has!("aes") {
            paths.push("aes: ARMv8 AES");
        }
        if has!("crc") {
            paths.push("crc32: ARMv8 CRC");
        }
    }
    paths
}
