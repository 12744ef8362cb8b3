//! The verify side of the engine: each final entry of the chain is reported (for duplicity's
//! `verify` to compare with the local tree, as `compare_verbose` does), and with
//! `--compare-data` the data of regular files is compared with the local file in Rust
//! (`ROPath.compare_data`).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::entry::{Index, Kind, Meta};
use super::error::{RestoreError, RestoreResult};
use super::writer::{join, Content};
use super::{Event, Host, Sink};

/// Attributes of a local path, as `Path.setdata` reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAttrs {
    /// Type (with link target or device numbers).
    pub kind: Kind,
    /// `stat.S_IMODE(st_mode)`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_mtime` as CPython's float.
    pub mtime_float: f64,
}

/// One path of the local tree; `attrs` is None when it vanished before it could be read.
#[derive(Debug, Clone)]
pub struct LocalPath {
    /// Index below the root.
    pub index: Index,
    /// Its attributes.
    pub attrs: Option<LocalAttrs>,
}

/// The walk of the local tree a verify compares with, in duplicity's order and selection
/// (`config.select`); its log lines go to the host as [`Event::Local`].
pub trait LocalWalk: Send {
    /// The next selected path, or None after the last.
    fn next(&mut self, host: &mut dyn Host) -> RestoreResult<Option<LocalPath>>;
}

/// The local tree a verify walks itself: the collation of `diffdir.collate2iters` and the
/// attributes `ROPath.compare_verbose` checks happen here. Pairs equal in all of them are
/// only counted ([`Event::Same`]); every other pair goes to duplicity's `compare_verbose`
/// ([`Event::Pair`]), which logs the difference in its own words.
pub struct LocalSide {
    /// The walk.
    pub walk: Box<dyn LocalWalk>,
    /// `compare_verbose` without data (`config.compare_data is False`) finds every pair equal.
    pub count_only: bool,
}

/// A [`LocalSide`] in use, one path looked ahead as `collate2iters` looks.
struct Local {
    side: LocalSide,
    peeked: Option<LocalPath>,
    ended: bool,
    same: u64,
}

impl Local {
    fn new(side: LocalSide) -> Self {
        Local {
            side,
            peeked: None,
            ended: false,
            same: 0,
        }
    }

    /// The next local path's index, read if not yet.
    fn peek(&mut self, host: &mut dyn Host) -> RestoreResult<Option<&Index>> {
        if self.peeked.is_none() && !self.ended {
            self.peeked = self.side.walk.next(host)?;
            self.ended = self.peeked.is_none();
        }
        Ok(self.peeked.as_ref().map(|f| &f.index))
    }

    /// Hands the local paths before `index` (all, with None) to duplicity as local-only pairs.
    fn only_local_before(
        &mut self,
        index: Option<&Index>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        while let Some(next) = self.peek(host)? {
            if index.is_some_and(|i| next >= i) {
                break;
            }
            let next = next.clone();
            self.peeked = None;
            host.event(Event::Pair {
                index: next,
                backup: None,
                local: true,
            });
        }
        Ok(())
    }
}

/// Whether `compare_verbose` finds the chain's entry and the local path equal, judged only
/// where that is certain: same type, and then what it compares for that type (permissions
/// and owners, the mtime in whole seconds, the data, the link target, the device numbers).
fn surely_same(meta: &Meta, data_equal: Option<bool>, local: &LocalAttrs) -> bool {
    let perms = meta.mode == i128::from(local.mode)
        && meta.uid == i128::from(local.uid)
        && meta.gid == i128::from(local.gid);
    // int(st_mtime) of the local float, truncated toward zero as Python's int() does
    let mtime = meta.mtime == local.mtime_float.trunc() as i128;
    match (&meta.kind, &local.kind) {
        (Kind::Reg, Kind::Reg) => perms && mtime && data_equal == Some(true),
        (Kind::Dir, Kind::Dir) | (Kind::Fifo, Kind::Fifo) => perms && mtime,
        (Kind::Sym(a), Kind::Sym(b)) => a == b,
        (Kind::Chr(a, b), Kind::Chr(c, d)) | (Kind::Blk(a, b), Kind::Blk(c, d)) => {
            perms && a == c && b == d
        }
        _ => false,
    }
}

/// Reports entries instead of writing them.
pub struct Verifier {
    base: Vec<u8>,
    compare_data: bool,
    found: bool,
    local: Option<Local>,
}

impl Verifier {
    /// Entries compared against the tree at `base`; data too with `compare_data`; collated
    /// with the walk of `local` here when given.
    pub fn new(base: Vec<u8>, compare_data: bool, local: Option<LocalSide>) -> Self {
        Verifier {
            base,
            compare_data,
            found: false,
            local: local.map(Local::new),
        }
    }
}

/// Whether the piece-by-piece content equals the file's data (both read to their ends).
fn same_data(
    file: &mut File,
    path: &[u8],
    content: Content<'_>,
    host: &mut dyn Host,
) -> RestoreResult<bool> {
    let mut equal = true;
    let mut buf = Vec::new();
    content(host, &mut |piece: &[u8]| {
        if !equal {
            return Ok(());
        }
        buf.resize(piece.len(), 0);
        let mut got = 0;
        while got < piece.len() {
            match file.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RestoreError::os(&e, path)),
            }
        }
        equal = got == piece.len() && buf[..got] == *piece;
        Ok(())
    })?;
    if equal {
        let mut extra = [0u8; 1];
        equal = file
            .read(&mut extra)
            .map_err(|e| RestoreError::os(&e, path))?
            == 0;
    }
    Ok(equal)
}

/// How a regular file's data is checked against the local file.
enum Check<'a> {
    /// Compared here, as `content` produces it.
    Content(Option<Content<'a>>),
    /// Compared already, with this result (see [`crate::restore::chain::Plan::compare`]).
    Compared(RestoreResult<bool>),
}

impl Verifier {
    fn add_entry(
        &mut self,
        index: Index,
        meta: &Meta,
        check: Check<'_>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.found = true;
        if let Some(local) = self.local.as_mut() {
            local.only_local_before(Some(&index), host)?;
        }
        let mut data_equal = None;
        if self.compare_data && meta.kind == Kind::Reg {
            let path = join(&self.base, &index);
            let p = Path::new(OsStr::from_bytes(&path));
            let is_file = std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
            match check {
                Check::Content(Some(content)) if is_file => {
                    let mut file = File::open(p).map_err(|e| RestoreError::os(&e, &path))?;
                    data_equal = Some(same_data(&mut file, &path, content, host)?);
                }
                Check::Compared(result) if is_file => data_equal = Some(result?),
                _ => {}
            }
        }
        let Some(local) = self.local.as_mut() else {
            host.event(Event::Entry {
                index,
                meta: meta.clone(),
                data_equal,
            });
            return Ok(());
        };
        let here = local.peek(host)? == Some(&index);
        let found = if here { local.peeked.take() } else { None };
        let same = found.as_ref().is_some_and(|f| {
            local.side.count_only
                || f.attrs
                    .as_ref()
                    .is_some_and(|st| surely_same(meta, data_equal, st))
        });
        if same {
            local.same += 1;
        } else {
            host.event(Event::Pair {
                index,
                backup: Some((meta.clone(), data_equal)),
                local: found.is_some(),
            });
        }
        Ok(())
    }
}

impl Sink for Verifier {
    fn add(
        &mut self,
        index: Index,
        meta: &Meta,
        content: Option<Content<'_>>,
        _size: Option<u64>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.add_entry(index, meta, Check::Content(content), host)
    }

    fn add_compared(
        &mut self,
        index: Index,
        meta: &Meta,
        compared: RestoreResult<bool>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.add_entry(index, meta, Check::Compared(compared), host)
    }

    fn finish(&mut self, host: &mut dyn Host) -> RestoreResult<bool> {
        if let Some(local) = self.local.as_mut() {
            local.only_local_before(None, host)?;
            host.event(Event::Same(local.same));
        }
        Ok(self.found)
    }
}
