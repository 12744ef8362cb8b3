//! The CPU-specific code paths as Python sees them (`python -m dupcore status`).

use pyo3::prelude::*;

/// The accelerated code paths this CPU gets; empty where all run portable code.
#[pyfunction]
fn cpu_paths() -> Vec<&'static str> {
    crate::cpu::accelerated_paths()
}

/// Adds `cpu_paths`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cpu_paths, m)?)?;
    Ok(())
}
