//! The deflate engines and `DUPCORE_COMPRESS` profiles as Python sees them.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::deflate::{Deflate, Engine, DEFAULT_LEVEL, PROFILES};

/// The deflate setting `engine` at `level`, or ValueError naming what this build lacks.
pub(crate) fn deflate_setting(engine: &str, level: u32) -> PyResult<Deflate> {
    let e = Engine::from_name(engine)
        .ok_or_else(|| PyValueError::new_err(format!("no deflate engine called {engine:?}")))?;
    Deflate::new(e, level).map_err(PyValueError::new_err)
}

/// (engine, level) that a `DUPCORE_COMPRESS` value stands for in this build; ValueError for
/// an unknown name.
#[pyfunction]
fn deflate_profile(name: &str) -> PyResult<(&'static str, u32)> {
    Deflate::profile(name)
        .map(|d| (d.engine.name(), d.level))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "DUPCORE_COMPRESS={name} is not one of {}",
                PROFILES.join(", ")
            ))
        })
}

/// Adds `DEFLATE_LEVEL`, `DEFLATE_ENGINES` (the engines this build has) and `deflate_profile`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DEFLATE_LEVEL", DEFAULT_LEVEL)?;
    let engines: Vec<&str> = Engine::ALL
        .into_iter()
        .filter(|e| e.available())
        .map(Engine::name)
        .collect();
    m.add("DEFLATE_ENGINES", engines)?;
    m.add_function(wrap_pyfunction!(deflate_profile, m)?)?;
    Ok(())
}
