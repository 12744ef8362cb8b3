//! librsync-compatible signatures, deltas and patches (MD4 + rollsum, librsync 2.3.x bytes).

pub mod delta;
pub mod error;
pub(crate) mod md4_lanes;
pub(crate) mod netint;
pub mod patch;
pub(crate) mod rollsum;
pub mod sig_tap;
pub mod sig_thread;
pub mod sigmaker;
pub mod signature;
pub(crate) mod strong;

pub use delta::{DeltaMaker, LiteralCap};
pub use error::RsError;
pub use patch::{Basis, Command, CommandReader, PatchMaker, COPY_PAST_END};
pub use sig_tap::SigTap;
pub use sig_thread::SigThread;
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
/// Delta command byte that ends the stream (`RS_OP_END`).
pub const OP_END: u8 = 0x00;
/// Largest literal whose length is the command byte itself (`RS_OP_LITERAL_1`..`_64`).
pub const OP_LITERAL_INLINE_MAX: u8 = 0x40;
/// Literal with a 1-byte length; +1, +2, +3 for 2, 4 and 8 bytes (`RS_OP_LITERAL_N1`..`N8`).
pub const OP_LITERAL_N1: u8 = 0x41;
/// Literal with an 8-byte length (`RS_OP_LITERAL_N8`).
pub const OP_LITERAL_N8: u8 = 0x44;
/// Copy with 1-byte position and length; + 4 × position width index + length width index
/// (`RS_OP_COPY_N1_N1`..`RS_OP_COPY_N8_N8`).
pub const OP_COPY_N1_N1: u8 = 0x45;
/// Copy with 8-byte position and length (`RS_OP_COPY_N8_N8`).
pub const OP_COPY_N8_N8: u8 = 0x54;
/// librsync's default signature block length.
pub const DEFAULT_BLOCK_LEN: usize = 2048;
/// Size of one job buffer in duplicity's `LikeFile` (and of a slack literal).
pub const JOB_BLOCKSIZE: usize = 65536;
/// Longest strong sum an MD4 signature can carry.
pub const MD4_SUM_LEN: usize = 16;
