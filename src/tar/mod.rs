//! Tar blocks as duplicity writes them: the exact header bytes of CPython 3.9–3.13's
//! `TarInfo.tobuf(format=PAX_FORMAT)`, data padding and the difftar footer.
//!
//! Text fields are Python `str` values carried as UTF-8 in which lone surrogates are allowed
//! (what Python's `str.encode("utf-8", "surrogatepass")` produces, see the `text` module); a raw
//! filesystem name becomes such a value as `os.fsdecode` makes it (see `text`).

pub mod block;
pub mod error;
pub mod header;
pub(crate) mod number;
pub mod parse;
pub(crate) mod pax;
pub(crate) mod text;
pub(crate) mod ustar;

pub use block::{footer, tar_block, BLOCKSIZE, RECORDSIZE};
pub use error::TarError;
pub use header::{pax_header_bytes, write_pax_header, TarEntry};
pub use number::Number;
