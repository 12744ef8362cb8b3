//! What the backup scan knows of a source path: its type and the `stat` fields duplicity's
//! comparison and selection look at.

/// A file type of the source tree (`Path.type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    Reg,
    /// Directory.
    Dir,
    /// Symbolic link and its target.
    Sym(Vec<u8>),
    /// Named pipe.
    Fifo,
    /// Character device (major, minor).
    Chr(u64, u64),
    /// Block device (major, minor).
    Blk(u64, u64),
}

/// What `lstat` (or `stat` with `--copy-links`) says of a source path.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStat {
    /// Type.
    pub kind: FileKind,
    /// `stat.S_IMODE(st_mode)`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_size`.
    pub size: u64,
    /// `int(st_mtime)`: truncated towards zero, as Python's `int()` of the float.
    pub mtime: i64,
    /// `st_mtime <= 0`.
    pub mtime_not_positive: bool,
    /// `st_mtime` as Python's float.
    pub mtime_float: f64,
    /// `st_dev`.
    pub dev: u64,
}

/// `int(st_mtime)` and `st_mtime <= 0` from `stat`'s seconds (floor) and nanoseconds.
pub fn mtime_fields(sec: i64, nsec: i64) -> (i64, bool) {
    let truncated = if sec < 0 && nsec > 0 { sec + 1 } else { sec };
    (truncated, sec < 0 || (sec == 0 && nsec == 0))
}
