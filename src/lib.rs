//! dupcore: a fast, archive-compatible Rust core for duplicity.
//!
//! The engine modules are plain Rust with no Python dependency; the `bindings` module (feature
//! `python`) exposes them to duplicity through pyo3.

pub mod backup;
pub mod cpu;
pub mod deflate;
pub mod hash;
#[cfg(feature = "openpgp")]
pub mod pgp;
pub mod readahead;
pub mod restore;
pub mod rsync;
pub mod tar;
pub mod volume;

#[cfg(feature = "python")]
mod bindings;
