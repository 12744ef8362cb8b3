//! The source tree in duplicity's order, as `selection.Select.Iterate` yields it: the root,
//! then each directory's entries sorted by their bytes, depth first, each put through the
//! selection functions ([`super::select`]); a directory the selection only scans is yielded
//! just before the first path selected inside it. Entries `Path.append` cannot make are
//! reported as `error_handler` reports them; selected regular files and directories without
//! read access are left out with a warning.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use super::select::{Candidate, Selection, Trace};
use super::source::{mtime_fields, FileKind, SourceStat};
use super::{Event, Index};
use crate::restore::error::COMMON_ERRNOS;
use crate::restore::RestoreError;

/// `Path.setdata` reads these errors as "the file does not exist".
const VANISHED: [i32; 5] = [
    libc::ENOENT,
    libc::ENOTDIR,
    libc::ELOOP,
    libc::ENOTCONN,
    libc::ENODEV,
];

/// One path the walk yields; `stat` is None when it vanished before it could be read.
#[derive(Debug, Clone)]
pub struct Found {
    /// Index below the root.
    pub index: Index,
    /// Full name (`Path.name`).
    pub name: Vec<u8>,
    /// Its attributes.
    pub stat: Option<SourceStat>,
}

struct DirScan {
    name: Vec<u8>,
    index: Index,
    entries: std::vec::IntoIter<Vec<u8>>,
}

/// Outcome of reading one path's attributes.
enum Read {
    Stat(SourceStat),
    Vanished,
    /// `Path.append` raised an error `check_common_error` handles (a socket, an unknown type,
    /// a common errno).
    Refused,
}

/// The walk of `Select.Iterate`.
pub struct Walker {
    base: Vec<u8>,
    copy_links: bool,
    debug: bool,
    selection: Selection,
    started: bool,
    /// A directory yielded last, opened when the next path is asked for (as the generator does).
    to_open: Option<(Vec<u8>, Index)>,
    stack: Vec<DirScan>,
    /// Directories only scanned so far (`dirs_deferred`).
    deferred: Vec<Found>,
    /// Paths to hand out before walking on, with the line logged as each goes.
    ready: VecDeque<(Found, Option<Event>)>,
}

/// `os.path.join(base, *index)` for one more component.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + name.len() + 1);
    out.extend_from_slice(dir);
    if !dir.is_empty() && !dir.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn os_error(e: &io::Error, name: &[u8]) -> RestoreError {
    RestoreError::os(e, name)
}

fn metadata(name: &[u8], follow: bool) -> io::Result<Metadata> {
    let p = OsStr::from_bytes(name);
    if follow {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    }
}

fn is_common(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(|n| COMMON_ERRNOS.contains(&n))
}

fn is_vanished(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(|n| VANISHED.contains(&n))
}

/// `os.access(name, os.R_OK)`.
fn readable(name: &[u8]) -> bool {
    match CString::new(name) {
        // SAFETY: a valid NUL-terminated string; access() only reads it.
        Ok(c) => unsafe { libc::access(c.as_ptr(), libc::R_OK) == 0 },
        Err(_) => false,
    }
}

impl Walker {
    /// The walk of the tree at `base` (`--copy-links`: `stat` instead of `lstat`); `debug`
    /// adds the debug lines of `Select` to the events.
    pub fn new(base: Vec<u8>, copy_links: bool, debug: bool) -> Self {
        Walker {
            base,
            copy_links,
            debug,
            selection: Selection::default(),
            started: false,
            to_open: None,
            stack: Vec::new(),
            deferred: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// The same walk with duplicity's selection functions.
    pub fn with_selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// `Path.setdata` (and `set_from_stat`) of `name`.
    fn read(&self, name: &[u8]) -> Result<Read, RestoreError> {
        let meta = match metadata(name, self.copy_links) {
            Ok(m) => m,
            Err(e) if is_vanished(&e) => return Ok(Read::Vanished),
            Err(e) if is_common(&e) => return Ok(Read::Refused),
            Err(e) => return Err(os_error(&e, name)),
        };
        let fmt = meta.mode() & libc::S_IFMT;
        let rdev = || {
            (
                libc::major(meta.rdev()) as u64,
                libc::minor(meta.rdev()) as u64,
            )
        };
        let kind = match fmt {
            libc::S_IFREG => FileKind::Reg,
            libc::S_IFDIR => FileKind::Dir,
            libc::S_IFLNK => match fs::read_link(OsStr::from_bytes(name)) {
                Ok(t) => FileKind::Sym(t.into_os_string().as_bytes().to_vec()),
                Err(e) if is_common(&e) => return Ok(Read::Refused),
                Err(e) => return Err(os_error(&e, name)),
            },
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFCHR => FileKind::Chr(rdev().0, rdev().1),
            libc::S_IFBLK => FileKind::Blk(rdev().0, rdev().1),
            // sockets and unknown types: `PathException`, handled by `error_handler`
            _ => return Ok(Read::Refused),
        };
        let (mtime, mtime_not_positive) = mtime_fields(meta.mtime(), meta.mtime_nsec());
        Ok(Read::Stat(SourceStat {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: meta.size(),
            mtime,
            mtime_not_positive,
            // CPython's st_mtime: sec + nsec * 1e-9 in double precision
            mtime_float: meta.mtime() as f64 + meta.mtime_nsec() as f64 * 1e-9,
            dev: meta.dev(),
        }))
    }

    /// `Iterate`'s `error_handler`: why `Path.append` failed, in duplicity's words.
    fn refused(&self, full: Vec<u8>, events: &mut Vec<Event>) {
        let event = match metadata(&full, true) {
            Ok(m) if m.mode() & libc::S_IFMT == libc::S_IFSOCK => Event::SkippingSocket(full),
            Ok(_) => Event::ErrorInitializing(full),
            Err(_) => Event::CannotStat(full),
        };
        events.push(event);
    }

    /// `robust.listpath`: the sorted names in a directory, `[]` with a warning on common errors.
    fn list(&self, name: &[u8], events: &mut Vec<Event>) -> Result<Vec<Vec<u8>>, RestoreError> {
        if let Some(listed) = &self.selection.files_from {
            // `dir_scanner` with --files-from: the listed names only, nothing for a directory
            // the list does not name (a listed name that does not exist is yielded without
            // attributes, as there)
            return Ok(listed.get(name).cloned().unwrap_or_default());
        }
        let read = match fs::read_dir(OsStr::from_bytes(name)) {
            Ok(r) => r,
            Err(e) if is_common(&e) => {
                events.push(Event::ErrorListing(name.to_vec()));
                return Ok(Vec::new());
            }
            Err(e) => return Err(os_error(&e, name)),
        };
        let mut names = Vec::new();
        for item in read {
            match item {
                Ok(d) => names.push(d.file_name().as_bytes().to_vec()),
                Err(e) if is_common(&e) => {
                    events.push(Event::ErrorListing(name.to_vec()));
                    return Ok(Vec::new());
                }
                Err(e) => return Err(os_error(&e, name)),
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    fn open(
        &mut self,
        name: Vec<u8>,
        index: Index,
        events: &mut Vec<Event>,
    ) -> Result<(), RestoreError> {
        let entries = self.list(&name, events)?.into_iter();
        self.stack.push(DirScan {
            name,
            index,
            entries,
        });
        Ok(())
    }

    /// The next selected path, or None after the last.
    fn next_path(&mut self, events: &mut Vec<Event>) -> Result<Option<Found>, RestoreError> {
        if !self.started {
            self.started = true;
            let base = self.base.clone();
            let stat = match self.read(&base)? {
                Read::Stat(s) => s,
                Read::Vanished => {
                    events.push(Event::BaseMissing(base));
                    return Ok(None);
                }
                Read::Refused => {
                    return Err(RestoreError::Path(format!(
                        "{} cannot be read as a backup source",
                        String::from_utf8_lossy(&base)
                    )))
                }
            };
            if self.debug {
                events.push(Event::Selecting(base.clone()));
            }
            if stat.kind == FileKind::Dir {
                self.to_open = Some((base.clone(), Vec::new()));
            }
            return Ok(Some(Found {
                index: Vec::new(),
                name: base,
                stat: Some(stat),
            }));
        }
        if let Some((found, line)) = self.ready.pop_front() {
            events.extend(line);
            return Ok(Some(found));
        }
        if let Some((name, index)) = self.to_open.take() {
            self.open(name, index, events)?;
        }
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(entry) = top.entries.next() else {
                self.stack.pop();
                self.deferred.pop();
                continue;
            };
            let full = join(&top.name, &entry);
            let mut index = top.index.clone();
            index.push(entry);
            let stat = match self.read(&full)? {
                Read::Stat(s) => Some(s),
                Read::Vanished => None,
                Read::Refused => {
                    self.refused(full, events);
                    continue;
                }
            };
            let verdict = self.select(&full, stat.as_ref(), events);
            let is_dir = matches!(stat.as_ref().map(|s| &s.kind), Some(FileKind::Dir));
            let is_reg_or_dir =
                is_dir || matches!(stat.as_ref().map(|s| &s.kind), Some(FileKind::Reg));
            if is_reg_or_dir && (verdict == 1 || verdict == 2) && !readable(&full) {
                events.push(Event::CannotRead(full));
                continue;
            }
            let found = Found {
                index: index.clone(),
                name: full.clone(),
                stat,
            };
            if verdict == 2 && is_dir {
                // scanned: yielded only if something inside is selected
                self.deferred.push(found);
                self.open(full, index, events)?;
                continue;
            }
            if verdict != 1 {
                continue;
            }
            for d in self.deferred.drain(..) {
                let line = Event::SelectingScanned(d.name.clone());
                self.ready.push_back((d, Some(line)));
            }
            let line = self.debug.then(|| Event::Selecting(full.clone()));
            self.ready.push_back((found, line));
            if is_dir {
                self.to_open = Some((full, index));
            }
            if let Some((found, line)) = self.ready.pop_front() {
                events.extend(line);
                return Ok(Some(found));
            }
        }
    }

    /// `Select.Select`: the verdict on one path, with its debug lines and warnings.
    fn select(&self, full: &[u8], stat: Option<&SourceStat>, events: &mut Vec<Event>) -> u8 {
        if self.debug {
            events.push(Event::Examining(full.to_vec()));
        }
        let mut trace = Vec::new();
        let candidate = Candidate { name: full, stat };
        let verdict = self.selection.select(&candidate, &mut trace, self.debug);
        for t in trace {
            events.push(match t {
                Trace::Result(n, v) => Event::SelectionResult(n, v),
                Trace::PresentUnreadable => Event::PresentUnreadable(full.to_vec()),
            });
        }
        if self.debug {
            events.push(match self.selection.rules.is_empty() {
                true => Event::NoSelectionFunctions,
                false => Event::SelectionVerdict(verdict),
            });
        }
        verdict
    }
}

impl super::Source for Walker {
    fn next(&mut self, events: &mut Vec<Event>) -> Result<Option<Found>, RestoreError> {
        self.next_path(events)
    }
}
