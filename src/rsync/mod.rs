//! librsync-compatible signatures, deltas and patches (MD4 + rollsum, librsync 2.3.x bytes).

pub mod delta;
pub mod error;
pub mod md4_lanes;
pub mod netint;
pub mod patch;
pub mod rollsum;
pub mod sigmaker;
pub mod signature;
pub mod strong;

pub use delta::{DeltaMaker, LiteralCap};
pub use error::RsError;
pub use patch::{Basis, PatchMaker};
pub use sigmaker::SigMaker;
pub use signature::Signature;

/// Magic number of an MD4 + rollsum signature (`RS_MD4_SIG_MAGIC`).
pub const MD4_SIG_MAGIC: u32 = 0x7273_0136;
/// Magic number of a BLAKE2 + rollsum signature (accepted when loading, never written).
pub const BLAKE2_SIG_MAGIC: u32 = 0x7273_0137;
/// Magic number of an MD4 + Rabin-Karp signature (recognised, not supported).
pub const RK_MD4_SIG_MAGIC: u32 = 0x7273_0146;
/// Magic number of a BLAKE2 + Rabin-Karp signature (recognised, not supported).
pub const RK_BLAKE2_SIG_MAGIC: u32 = 0x7273_0147;
/// Magic number at the start of every delta stream (`RS_DELTA_MAGIC`).
pub const DELTA_MAGIC: u32 = 0x7273_0236;
/// librsync's default signature block length.
pub const DEFAULT_BLOCK_LEN: usize = 2048;
/// Size of one job buffer in duplicity's `LikeFile` (and of a slack literal).
pub const JOB_BLOCKSIZE: usize = 65536;
/// Longest strong sum an MD4 signature can carry.
pub const MD4_SUM_LEN: usize = 16;
