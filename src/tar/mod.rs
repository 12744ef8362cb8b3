//! Tar blocks as duplicity writes them: the exact header bytes of CPython 3.9–3.13's
//! `TarInfo.tobuf(format=PAX_FORMAT)`, data padding and the difftar footer.
//!
//! Text fields are Python `str` values carried as UTF-8 in which lone surrogates are allowed
//! (what Python's `str.encode("utf-8", "surrogatepass")` produces, see [`text`]); a raw
//! filesystem name becomes such a value through [`text::from_fs_bytes`], as `os.fsdecode` does.

pub mod block;
pub mod error;
pub mod header;
pub mod number;
pub mod parse;
pub mod pax;
pub mod text;
pub mod ustar;

pub use block::{footer, tar_block, BLOCKSIZE, RECORDSIZE};
pub use error::TarError;
pub use header::{pax_header_bytes, write_pax_header, TarEntry};
pub use number::Number;
