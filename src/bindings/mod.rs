//! Python bindings (pyo3): the thin layer between duplicity and the pure Rust engine.

mod backup;
mod cpu;
mod deflate;
mod errors;
mod librsync;
#[cfg(feature = "openpgp")]
mod pgp;
mod restore;
mod source;
mod tar;
mod volume;

use pyo3::prelude::*;

/// The `dupcore._core` extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    backup::register(m)?;
    cpu::register(m)?;
    librsync::register(m)?;
    deflate::register(m)?;
    volume::register(m)?;
    tar::register(m)?;
    restore::register(m)?;
    #[cfg(feature = "openpgp")]
    pgp::register(m)?;
    Ok(())
}
