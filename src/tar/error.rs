//! Why an entry cannot be written the way CPython would write it.

use thiserror::Error;

/// An entry CPython's `tobuf` would reject (or that is outside what this writer reproduces).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TarError {
    /// A numeric field does not fit its octal field (CPython: `ValueError("overflow in number field")`).
    #[error("overflow in number field {0}")]
    Overflow(&'static str),
    /// A float that CPython cannot round to an integer (NaN or infinity).
    #[error("{0} is not a finite number")]
    NotFinite(&'static str),
    /// A text field is not valid surrogate-allowing UTF-8.
    #[error("{0} is not valid text")]
    InvalidText(&'static str),
    /// A text field holds a surrogate that `surrogateescape` cannot encode back to a byte.
    #[error("{0} holds a surrogate that cannot be encoded")]
    Unencodable(&'static str),
    /// The type flag is not exactly one byte.
    #[error("the type flag must be one byte")]
    BadType,
}
