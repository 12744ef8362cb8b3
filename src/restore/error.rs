//! What can stop or interrupt a restore, in the categories duplicity's own code raises.

use std::io;

/// A restore failure; the bindings raise the exception duplicity raises in the same place.
#[derive(Debug)]
pub enum RestoreError {
    /// `tarfile.ReadError`: a volume is not a readable tar archive, or member data is cut short.
    TarRead(String),
    /// `patchdir.PatchDirException`: a member name duplicity refuses; `what` holds `{}` where
    /// the member name goes.
    PatchDir {
        /// Message with one `{}` for the name.
        what: &'static str,
        /// The member name as stored.
        name: Vec<u8>,
    },
    /// `path.PathException`: a member type duplicity cannot restore, a failing `mknod`.
    Path(String),
    /// `librsyncError`: a delta could not be applied.
    Librsync(String),
    /// `OSError(errno, strerror, filename)` from the target file system.
    Os {
        /// The OS error number, when there is one.
        errno: Option<i32>,
        /// What went wrong.
        message: String,
        /// The file name as Python would show it (bytes), when there is one.
        filename: Option<Vec<u8>>,
        /// The second file name (`os.symlink`: the link being made).
        filename2: Option<Vec<u8>>,
    },
    /// `AssertionError` raised by duplicity's patch sequence checks.
    Assertion(String),
    /// The volume source failed; the caller holds the original exception.
    Source,
    /// The caller stopped the restore.
    Aborted,
}

/// The errno names duplicity's `robust.check_common_error` treats as "common": the file is
/// reported with a warning and the restore goes on.
pub(crate) const COMMON_ERRNOS: [i32; 15] = [
    libc::EPERM,
    libc::ENODEV,
    libc::ENOENT,
    libc::EACCES,
    libc::EBUSY,
    libc::EEXIST,
    libc::ENOTDIR,
    libc::ENAMETOOLONG,
    libc::EINTR,
    libc::ENOTEMPTY,
    libc::EIO,
    libc::ETXTBSY,
    libc::ESRCH,
    libc::EINVAL,
    libc::EOPNOTSUPP,
];

impl RestoreError {
    /// An `OSError` for `path` from an I/O error.
    pub fn os(e: &io::Error, path: &[u8]) -> Self {
        RestoreError::Os {
            errno: e.raw_os_error(),
            message: strerror(e),
            filename: Some(path.to_vec()),
            filename2: None,
        }
    }

    /// An `OSError` without errno or file name (Python's argument checks).
    pub fn plain(message: impl Into<String>) -> Self {
        RestoreError::Os {
            errno: None,
            message: message.into(),
            filename: None,
            filename2: None,
        }
    }

    /// Whether duplicity's `check_common_error` turns this into a warning and goes on.
    pub fn is_common(&self) -> bool {
        match self {
            RestoreError::Librsync(_) | RestoreError::Path(_) => true,
            RestoreError::Os { errno: Some(e), .. } => COMMON_ERRNOS.contains(e),
            _ => false,
        }
    }
}

/// The C library's text for an errno, as Python's `OSError.strerror` holds it.
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    // std formats "No such file or directory (os error 2)"
    match text.rfind(" (os error ") {
        Some(p) => text[..p].to_string(),
        None => text,
    }
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::TarRead(m)
            | RestoreError::Path(m)
            | RestoreError::Librsync(m)
            | RestoreError::Assertion(m) => f.write_str(m),
            RestoreError::PatchDir { what, name } => {
                f.write_str(&what.replace("{}", &String::from_utf8_lossy(name)))
            }
            RestoreError::Os { message, .. } => f.write_str(message),
            RestoreError::Source => f.write_str("the volume source failed"),
            RestoreError::Aborted => f.write_str("restore stopped"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// Result type of the restore engine.
pub type RestoreResult<T> = Result<T, RestoreError>;
