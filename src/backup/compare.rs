//! `ROPath.__eq__` between a source path and its previous signature entry: the test that
//! decides whether duplicity backs a path up again.

use super::sigchain::{SigEntry, SigType};
use super::source::{FileKind, SourceStat};
use crate::restore::entry::Kind;

/// Whether duplicity sees the source path as unchanged since the signature was made.
pub fn unchanged(new: &SourceStat, sig: &SigEntry) -> bool {
    let Some(meta) = sig
        .meta
        .as_ref()
        .filter(|_| sig.sigtype != SigType::Deleted)
    else {
        return false; // the signature has no stat: differs from an existing path
    };
    let perms_equal = || {
        i128::from(new.mode) == meta.mode
            && i128::from(new.uid) == meta.uid
            && i128::from(new.gid) == meta.gid
    };
    match (&new.kind, &meta.kind) {
        (FileKind::Reg, Kind::Reg) | (FileKind::Dir, Kind::Dir) | (FileKind::Fifo, Kind::Fifo) => {
            if !perms_equal() {
                return false;
            }
            if i128::from(new.mtime) == meta.mtime {
                return true;
            }
            // negative mtimes count as 0 (the signature's are already 0)
            new.mtime_not_positive && meta.mtime <= 0
        }
        (FileKind::Sym(a), Kind::Sym(b)) => a == b,
        (FileKind::Chr(a, b), Kind::Chr(c, d)) | (FileKind::Blk(a, b), Kind::Blk(c, d)) => {
            perms_equal() && i128::from(*a) == *c && i128::from(*b) == *d
        }
        _ => false,
    }
}
