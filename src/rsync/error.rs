//! Errors of the rsync engine, carrying librsync's numeric result codes.

use thiserror::Error;

/// An rsync job failure; `code()` gives the librsync `rs_result` number duplicity reports.
#[derive(Debug, Error)]
pub enum RsError {
    /// Input ended in the middle of a header, command or literal (`RS_INPUT_ENDED`, 103).
    #[error("unexpected end of input: {0}")]
    InputEnded(&'static str),
    /// The stream does not start with the expected magic number (`RS_BAD_MAGIC`, 104).
    #[error("bad magic number {0:#010x}: {1}")]
    BadMagic(u32, &'static str),
    /// A signature type that exists but is not implemented (`RS_UNIMPLEMENTED`, 105).
    #[error("unsupported signature type {0:#010x} (Rabin-Karp weak sums are not implemented)")]
    Unimplemented(u32),
    /// The stream is structurally invalid (`RS_CORRUPT`, 106).
    #[error("corrupt stream: {0}")]
    Corrupt(String),
    /// The job was used after it finished (`RS_INTERNAL_ERROR`, 107).
    #[error("job already finished: {0}")]
    Finished(&'static str),
    /// A parameter is out of range (`RS_PARAM_ERROR`, 108).
    #[error("invalid parameter: {0}")]
    Param(String),
    /// Reading the basis file failed (`RS_IO_ERROR`, 100).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl RsError {
    /// The librsync `rs_result` number of this error.
    pub fn code(&self) -> i32 {
        match self {
            RsError::Io(_) => 100,
            RsError::InputEnded(_) => 103,
            RsError::BadMagic(..) => 104,
            RsError::Unimplemented(_) => 105,
            RsError::Corrupt(_) => 106,
            RsError::Finished(_) => 107,
            RsError::Param(_) => 108,
        }
    }
}

/// Result type of the rsync engine.
pub type RsResult<T> = Result<T, RsError>;
