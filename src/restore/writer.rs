//! Entries written under the restore target as duplicity's `patchdir.Write_ROPaths` writes
//! them: its `IterTreeReducer` over `ROPath_IterWriter` (directories get their attributes when
//! the walk leaves them), `ROPath.copy` and `copy_attribs`, and `robust.check_common_error`
//! (common errors become a warning naming the path and the walk goes on).

use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::chain::Composed;
use super::direct::{self, AppendBehind};
use super::entry::{Index, Kind, Meta};
use super::error::{RestoreError, RestoreResult};
use super::pool::{FileJob, POOLED_FILE_MAX};
use super::{py_bytes_repr, Event, Host, Sink};

/// Writes a regular file's data: the producer calls the sink with each piece.
pub type Content<'a> = &'a mut dyn FnMut(
    &mut dyn Host,
    &mut dyn FnMut(&[u8]) -> RestoreResult<()>,
) -> RestoreResult<()>;

/// duplicity settings the writer follows.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Set owners (`config.restore_ownership`, off with `--no-restore-ownership`).
    pub restore_ownership: bool,
    /// `--ignore-errors`: attribute failures become warnings.
    pub ignore_errors: bool,
    /// `--force`: a directory that cannot be made is not an error.
    pub force: bool,
    /// Threads writing small regular files (0: all on the walk's thread).
    pub writers: usize,
}

struct Branch {
    base_index: Index,
    start_ok: bool,
    /// The directory (or root entry) whose attributes are set when the branch ends.
    dir: Option<(Vec<u8>, Meta)>,
}

/// The restore walk over the target tree.
pub struct TreeWriter {
    base: Vec<u8>,
    opts: WriteOptions,
    branches: Vec<Branch>,
    last: Option<Index>,
    /// The previous entry, when it went to a writer thread.
    pooled: Option<Index>,
    wrote: bool,
}

/// `os.path.join(base, *index)`.
pub fn join(base: &[u8], index: &[Vec<u8>]) -> Vec<u8> {
    let mut out = base.to_vec();
    for c in index {
        if c.first() == Some(&b'/') {
            out = c.clone();
        } else if out.is_empty() || out.ends_with(b"/") {
            out.extend_from_slice(c);
        } else {
            out.push(b'/');
            out.extend_from_slice(c);
        }
    }
    out
}

/// `ROPath.get_relative_path()`: `b"a/b"`, or `b"."` for the root.
pub fn relative(index: &[Vec<u8>]) -> Vec<u8> {
    if index.is_empty() {
        b".".to_vec()
    } else {
        index.join(&b'/')
    }
}

fn p(name: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(name))
}

fn exists(name: &[u8]) -> bool {
    fs::symlink_metadata(p(name)).is_ok()
}

fn is_symlink(name: &[u8]) -> bool {
    fs::symlink_metadata(p(name)).is_ok_and(|m| m.file_type().is_symlink())
}

/// A `PathException`: duplicity reports the entry and goes on.
fn through_symlink(path: &[u8], link: &[u8]) -> RestoreError {
    RestoreError::Path(format!(
        "Not restoring {}: {} is a symbolic link, and the restore stays inside its target",
        String::from_utf8_lossy(path),
        String::from_utf8_lossy(link)
    ))
}

fn cstr(name: &[u8]) -> RestoreResult<CString> {
    CString::new(name).map_err(|_| RestoreError::plain("embedded null byte"))
}

fn last_os_error(name: &[u8]) -> RestoreError {
    RestoreError::os(&io::Error::last_os_error(), name)
}

/// An id for chown: -1 keeps the current one, as in `os.chown`.
fn owner_id(id: i128, what: &str) -> RestoreResult<libc::uid_t> {
    if id == -1 {
        return Ok(libc::uid_t::MAX);
    }
    libc::uid_t::try_from(id)
        .map_err(|_| RestoreError::plain(format!("{what} is greater than maximum")))
}

/// `check_common_error` with `on_error`: common errors are warned about, others raised.
fn common(
    result: RestoreResult<()>,
    index: &[Vec<u8>],
    host: &mut dyn Host,
) -> RestoreResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.is_common() => {
            host.event(Event::ErrorProcessing {
                error: e,
                filename: relative(index),
            });
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

impl TreeWriter {
    /// A writer restoring into `base` (duplicity's `config.local_path`).
    pub fn new(base: Vec<u8>, opts: WriteOptions) -> Self {
        TreeWriter {
            base,
            opts,
            branches: Vec::new(),
            last: None,
            pooled: None,
            wrote: false,
        }
    }

    fn start_branch(
        &self,
        branch: &mut Branch,
        index: &[Vec<u8>],
        meta: &Meta,
        content: Option<Content<'_>>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        let result = self.start_process(branch, index, meta, content, host);
        branch.start_ok = common(result, index, host)?;
        Ok(())
    }

    /// `ROPath_IterWriter.start_process`.
    fn start_process(
        &self,
        branch: &mut Branch,
        index: &[Vec<u8>],
        meta: &Meta,
        content: Option<Content<'_>>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        let target = join(&self.base, index);
        self.check_inside(index)?;
        if meta.kind != Kind::Dir {
            if !index.is_empty() {
                let parent = join(&self.base, &index[..index.len() - 1]);
                if !exists(&parent) {
                    self.mkdir(&parent, host)?;
                }
            }
            if meta.kind != Kind::Missing {
                if exists(&target) {
                    host.event(Event::DeletingTree {
                        path: target.clone(),
                    });
                    deltree(&target)?;
                }
                copy(&self.opts, &target, meta, content, host)?;
            }
        }
        if !exists(&target) {
            self.mkdir(&target, host)?;
        }
        if !index.is_empty() && is_symlink(&target) {
            return Err(through_symlink(&target, &target));
        }
        branch.dir = Some((target, meta.clone()));
        Ok(())
    }

    /// Refuses a path below the target that passes through a symbolic link (an archive
    /// holding `lnk -> /elsewhere` and then `lnk/file` must not write to `/elsewhere/file`):
    /// every directory on the way that the walk has not entered itself is checked with
    /// `lstat`, and so is an existing file of that name.
    fn check_inside(&self, index: &[Vec<u8>]) -> RestoreResult<()> {
        if index.is_empty() {
            return Ok(());
        }
        let entered = self
            .branches
            .iter()
            .rev()
            .find(|b| b.start_ok && b.dir.is_some() && index.starts_with(&b.base_index))
            .map_or(0, |b| b.base_index.len());
        for k in entered.max(1)..index.len() {
            let dir = join(&self.base, &index[..k]);
            if is_symlink(&dir) {
                return Err(through_symlink(&join(&self.base, index), &dir));
            }
        }
        let target = join(&self.base, index);
        if is_symlink(&target) {
            return Err(through_symlink(&target, &target));
        }
        Ok(())
    }

    /// `ITRBranch.call_end_proc`: the directory's attributes, errors reported on "."; after
    /// the files written into it by writer threads.
    fn end_branch(&self, branch: Branch, host: &mut dyn Host) -> RestoreResult<()> {
        if let Some((path, meta)) = branch.dir {
            let opts = self.opts.clone();
            host.after_writes(Box::new(move |c| {
                let result = copy_attribs(&opts, &path, &meta, c);
                common(result, &[], c).map(|_| ())
            }))?;
        }
        Ok(())
    }

    /// A regular file of known small size: its data is read here and the file written by a
    /// writer thread (or here, when the host has none).
    fn write_pooled(
        &self,
        index: &[Vec<u8>],
        target: Vec<u8>,
        meta: &Meta,
        content: Content<'_>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        let mut data = Vec::new();
        if let Err(e) = content(host, &mut |piece: &[u8]| {
            data.extend_from_slice(piece);
            Ok(())
        }) {
            // as on this thread: the file is made with what could be read, then the error
            host.wait_writes()?;
            let mut failed = Some(e);
            return copy(
                &self.opts,
                &target,
                meta,
                Some(&mut |_h, sink| {
                    sink(&data)?;
                    Err(failed.take().unwrap_or(RestoreError::Aborted))
                }),
                host,
            );
        }
        let (opts, meta, index) = (self.opts.clone(), meta.clone(), index.to_vec());
        let job = FileJob {
            bytes: data.len(),
            run: Box::new(move |c| {
                let result = copy(&opts, &target, &meta, Some(&mut |_h, sink| sink(&data)), c);
                common(result, &index, c).map(|_| ())
            }),
        };
        if let Some(job) = host.spawn_write(job)? {
            host.after_writes(job.run)?;
        }
        Ok(())
    }

    /// A regular file whose data is a composed state: placed and written by a writer thread
    /// (or here, when the host has none), while the walk reads on. One at a time: the one
    /// before is waited for, so that at most two states hold their files.
    fn write_composed(
        &self,
        index: &[Vec<u8>],
        target: Vec<u8>,
        meta: &Meta,
        state: Composed,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        host.wait_writes()?;
        let (opts, meta, index) = (self.opts.clone(), meta.clone(), index.to_vec());
        let job = FileJob {
            bytes: state.memory(),
            run: Box::new(move |c| {
                let result = place_composed(&opts, &target, &meta, state, c);
                common(result, &index, c).map(|_| ())
            }),
        };
        if let Some(job) = host.spawn_write(job)? {
            host.after_writes(job.run)?;
        }
        Ok(())
    }

    /// `Path.mkdir`: `os.makedirs`, failures ignored with `--force`.
    fn mkdir(&self, path: &[u8], host: &mut dyn Host) -> RestoreResult<()> {
        host.event(Event::MakingDirectory {
            path: path.to_vec(),
        });
        match fs::create_dir_all(p(path)).and_then(|()| {
            if fs::metadata(p(path))?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(libc::EEXIST))
            }
        }) {
            Ok(()) => Ok(()),
            Err(_) if self.opts.force => Ok(()),
            Err(_) => Err(RestoreError::Path(format!(
                "('Error creating directory {}', 7)",
                String::from_utf8_lossy(path)
            ))),
        }
    }
}

/// `ROPath.copy`: data or node, then attributes (symlinks: owner only).
fn copy(
    opts: &WriteOptions,
    target: &[u8],
    meta: &Meta,
    content: Option<Content<'_>>,
    host: &mut dyn Host,
) -> RestoreResult<()> {
    match &meta.kind {
        Kind::Reg => {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o666)
                .open(p(target))
                .map_err(|e| RestoreError::os(&e, target))?;
            if let Some(content) = content {
                if opts.writers > 0 {
                    write_behind(file, target, content, host)?;
                } else {
                    content(host, &mut |piece: &[u8]| {
                        file.write_all(piece)
                            .map_err(|e| RestoreError::os(&e, target))
                    })?;
                }
            }
        }
        Kind::Dir => {
            fs::create_dir(p(target)).map_err(|e| RestoreError::os(&e, target))?;
        }
        Kind::Sym(text) => {
            std::os::unix::fs::symlink(p(text), p(target)).map_err(|e| {
                let mut err = RestoreError::os(&e, text);
                if let RestoreError::Os { filename2, .. } = &mut err {
                    *filename2 = Some(target.to_vec());
                }
                err
            })?;
            if opts.restore_ownership {
                let name = cstr(target)?;
                let uid = owner_id(meta.uid, "uid")?;
                let gid = owner_id(meta.gid, "gid")?;
                // SAFETY: a valid NUL-terminated path.
                if unsafe { libc::lchown(name.as_ptr(), uid, gid) } != 0 {
                    return Err(last_os_error(target));
                }
            }
            return Ok(());
        }
        Kind::Fifo => {
            let name = cstr(target)?;
            // SAFETY: a valid NUL-terminated path.
            if unsafe { libc::mkfifo(name.as_ptr(), 0o666) } != 0 {
                return Err(last_os_error(target));
            }
        }
        Kind::Chr(major, minor) | Kind::Blk(major, minor) => {
            let devtype = if matches!(meta.kind, Kind::Chr(..)) {
                "c"
            } else {
                "b"
            };
            let status = std::process::Command::new("mknod")
                .arg(OsStr::from_bytes(target))
                .arg(devtype)
                .arg(major.to_string())
                .arg(minor.to_string())
                .status()
                .map_err(|e| RestoreError::os(&e, b"mknod"))?;
            if !status.success() {
                return Err(RestoreError::Path(format!(
                    "Error running ['mknod', {}, '{devtype}', '{major}', '{minor}']",
                    py_bytes_repr(target)
                )));
            }
        }
        Kind::Missing => return Ok(()),
    }
    copy_attribs(opts, target, meta, host)
}

/// A file's data up to this size is written on the walk's thread; larger data by a thread of
/// its own (and read back in pieces this large).
const WRITE_PIECE: usize = direct::BEHIND_PIECE;

/// Writes `content` into `file`: a file of up to [`WRITE_PIECE`] bytes on this thread, a
/// larger one by a thread of its own while this one reads on ([`AppendBehind`]), so reading
/// the volumes and writing the file overlap. The result is the one-thread result: the file
/// holds what could be read, and a write error wins over a later read error (every piece
/// handed over was read before the read failed).
fn write_behind(
    file: fs::File,
    target: &[u8],
    content: Content<'_>,
    host: &mut dyn Host,
) -> RestoreResult<()> {
    let os = |e: io::Error| RestoreError::os(&e, target);
    let mut buf: Vec<u8> = Vec::new();
    let mut behind: Option<AppendBehind> = None;
    let read = content(host, &mut |piece: &[u8]| {
        if let Some(out) = &mut behind {
            return out.push(piece).map_err(os);
        }
        buf.extend_from_slice(piece);
        if buf.len() >= WRITE_PIECE {
            let mut out = AppendBehind::new(&file, 0, direct::write_at).map_err(os)?;
            let pushed = out.push(&std::mem::take(&mut buf));
            behind = Some(out);
            pushed.map_err(os)?;
        }
        Ok(())
    });
    let written = match behind {
        Some(out) => out.finish().map(|_| ()),
        // what was read (all of a small file)
        None => (&file).write_all(&buf),
    };
    written.map_err(os).and(read)
}

/// `ROPath.copy_attribs`: owner, mode and mtime (atime now), each failure ignored with
/// `--ignore-errors` (`util.maybe_ignore_errors`).
fn copy_attribs(
    opts: &WriteOptions,
    target: &[u8],
    meta: &Meta,
    host: &mut dyn Host,
) -> RestoreResult<()> {
    if matches!(meta.kind, Kind::Sym(_)) {
        return Ok(());
    }
    let name = cstr(target)?;
    if opts.restore_ownership {
        let r = owner_id(meta.uid, "uid").and_then(|uid| {
            let gid = owner_id(meta.gid, "gid")?;
            // SAFETY: a valid NUL-terminated path.
            match unsafe { libc::chown(name.as_ptr(), uid, gid) } {
                0 => Ok(()),
                _ => Err(last_os_error(target)),
            }
        });
        maybe_ignore(opts, r, host)?;
    }
    let r = match libc::mode_t::try_from(meta.mode) {
        // SAFETY: a valid NUL-terminated path.
        Ok(mode) => match unsafe { libc::chmod(name.as_ptr(), mode) } {
            0 => Ok(()),
            _ => Err(last_os_error(target)),
        },
        Err(_) => Err(RestoreError::plain("mode is out of range")),
    };
    maybe_ignore(opts, r, host)?;
    let mtime = libc::time_t::try_from(meta.mtime).unwrap_or(libc::time_t::MAX);
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a valid NUL-terminated path and two timespecs.
    let r = match unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), times.as_ptr(), 0) } {
        0 => Ok(()),
        _ => Err(last_os_error(target)),
    };
    maybe_ignore(opts, r, host)
}

fn maybe_ignore(
    opts: &WriteOptions,
    r: RestoreResult<()>,
    host: &mut dyn Host,
) -> RestoreResult<()> {
    match r {
        Err(e) if opts.ignore_errors => {
            host.event(Event::IgnoredError { error: e });
            Ok(())
        }
        other => other,
    }
}

/// A regular file's data as the walk hands it to the writer.
enum Data<'a> {
    /// Produced piece by piece, of this size when known.
    Content(Option<Content<'a>>, Option<u64>),
    /// A composed final state, placed where the file is written.
    Composed(Box<Composed>),
}

/// What [`Composed::place`] gave, as the data of the restored file (the placed file's first
/// `len` bytes, or the state's bytes), or its error.
pub fn pipe_placed(
    placed: &mut RestoreResult<Result<fs::File, Composed>>,
    len: u64,
    sink: &mut dyn FnMut(&[u8]) -> RestoreResult<()>,
) -> RestoreResult<()> {
    match placed {
        Ok(Ok(file)) => pipe_file(file, len, sink),
        Ok(Err(state)) => state.pipe(sink),
        Err(e) => Err(std::mem::replace(e, RestoreError::Aborted)),
    }
}

/// Gives the first `len` bytes of `file` to `sink`.
pub fn pipe_file(
    file: &fs::File,
    len: u64,
    sink: &mut dyn FnMut(&[u8]) -> RestoreResult<()>,
) -> RestoreResult<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; WRITE_PIECE];
    let mut pos = 0u64;
    while pos < len {
        let want = usize::try_from(len - pos).map_or(buf.len(), |n| n.min(buf.len()));
        let n = file
            .read_at(&mut buf[..want], pos)
            .map_err(|e| RestoreError::os(&e, b"<temporary file>"))?;
        if n == 0 {
            let e = io::Error::from(io::ErrorKind::UnexpectedEof);
            return Err(RestoreError::os(&e, b"<temporary file>"));
        }
        sink(&buf[..n])?;
        pos += n as u64;
    }
    Ok(())
}

/// Gives the unnamed file `file` the name `target`.
fn link_unnamed(file: &fs::File, target: &[u8]) -> RestoreResult<()> {
    use std::os::fd::AsRawFd;
    let name = cstr(target)?;
    let fd = file.as_raw_fd();
    // SAFETY: a valid descriptor, an empty and a NUL-terminated path.
    let direct = unsafe {
        libc::linkat(
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if direct == 0 {
        return Ok(());
    }
    // without CAP_DAC_READ_SEARCH: through /proc
    let by_proc = cstr(format!("/proc/self/fd/{fd}").as_bytes())?;
    // SAFETY: two valid NUL-terminated paths.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            by_proc.as_ptr(),
            libc::AT_FDCWD,
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(last_os_error(target)),
    }
}

/// `ROPath.copy` of a regular file whose data is all of the unnamed file `file`: the file
/// becomes `target` when nothing has that name (the result is the file `copy` would have
/// written), else its data is copied into `target`.
fn place(
    opts: &WriteOptions,
    target: &[u8],
    meta: &Meta,
    file: fs::File,
    len: u64,
    host: &mut dyn Host,
) -> RestoreResult<()> {
    if !exists(target) && link_unnamed(&file, target).is_ok() {
        return copy_attribs(opts, target, meta, host);
    }
    copy(
        opts,
        target,
        meta,
        Some(&mut |_h, sink| pipe_file(&file, len, sink)),
        host,
    )
}

/// `ROPath.copy` of a regular file whose data is the composed state `state`: placed into
/// its snapshot's unnamed file, which becomes `target` ([`place`]), else written from the
/// state; an error placing it is the file's error, after what could be written.
fn place_composed(
    opts: &WriteOptions,
    target: &[u8],
    meta: &Meta,
    state: Composed,
    host: &mut dyn Host,
) -> RestoreResult<()> {
    let len = state.len();
    let mut placed = match state.place() {
        Ok(Ok(file)) => return place(opts, target, meta, file, len, host),
        other => other,
    };
    copy(
        opts,
        target,
        meta,
        Some(&mut |_h, sink| pipe_placed(&mut placed, len, sink)),
        host,
    )
}

impl Sink for TreeWriter {
    /// One final entry, in index order (`IterTreeReducer.__call__`).
    fn add(
        &mut self,
        index: Index,
        meta: &Meta,
        content: Option<Content<'_>>,
        size: Option<u64>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.add_data(index, meta, Data::Content(content, size), host)
    }

    fn add_composed(
        &mut self,
        index: Index,
        meta: &Meta,
        state: Composed,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.add_data(index, meta, Data::Composed(Box::new(state)), host)
    }

    /// Ends every open directory (`IterTreeReducer.Finish`).
    fn finish(&mut self, host: &mut dyn Host) -> RestoreResult<bool> {
        while let Some(b) = self.branches.pop() {
            self.end_branch(b, host)?;
        }
        Ok(self.wrote)
    }
}

impl TreeWriter {
    /// [`Sink::add`] and [`Sink::add_composed`].
    fn add_data(
        &mut self,
        index: Index,
        meta: &Meta,
        data: Data<'_>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.wrote = true;
        if self.pooled.take().is_some_and(|p| index.starts_with(&p)) {
            // below a file still being written: as in a one-thread restore, it must be there
            host.wait_writes()?;
        }
        let Some(last) = &self.last else {
            let mut root = Branch {
                base_index: index.clone(),
                start_ok: false,
                dir: None,
            };
            match data {
                Data::Content(content, _) => {
                    self.start_branch(&mut root, &index, meta, content, host)?
                }
                Data::Composed(state) => {
                    let len = state.len();
                    let mut placed = state.place();
                    let mut piped = |_h: &mut dyn Host, sink: &mut dyn FnMut(&[u8]) -> _| {
                        pipe_placed(&mut placed, len, sink)
                    };
                    self.start_branch(&mut root, &index, meta, Some(&mut piped), host)?
                }
            }
            self.branches.push(root);
            self.last = Some(index);
            return Ok(());
        };
        if index <= *last {
            host.event(Event::OldIndex {
                old: last.clone(),
                new: index,
            });
            return Ok(());
        }
        while let Some(b) = self.branches.last() {
            if index.starts_with(&b.base_index) {
                break;
            }
            let finished = self.branches.pop().expect("a branch is there");
            self.end_branch(finished, host)?;
        }
        let Some(current) = self.branches.last() else {
            self.last = Some(index);
            return Ok(()); // out of the tree: duplicity ignores such entries too
        };
        if current.start_ok {
            host.event(Event::Writing {
                path: relative(&index),
                kind: meta.kind.name(),
            });
            if meta.kind == Kind::Dir {
                let mut b = Branch {
                    base_index: index.clone(),
                    start_ok: false,
                    dir: None,
                };
                let content = match data {
                    Data::Content(content, _) => content,
                    Data::Composed(_) => None,
                };
                self.start_branch(&mut b, &index, meta, content, host)?;
                self.branches.push(b);
            } else if meta.kind != Kind::Missing {
                let target = join(&self.base, &index);
                let writers = self.opts.writers;
                let pooled = |size: Option<u64>| {
                    writers > 0
                        && meta.kind == Kind::Reg
                        && size.is_some_and(|n| n <= POOLED_FILE_MAX)
                };
                let done = self.check_inside(&index).and_then(|()| match data {
                    Data::Composed(state) if meta.kind == Kind::Reg => {
                        self.pooled = Some(index.clone());
                        self.write_composed(&index, target, meta, *state, host)
                    }
                    Data::Composed(_) => copy(&self.opts, &target, meta, None, host),
                    Data::Content(Some(content), size) if pooled(size) => {
                        self.pooled = Some(index.clone());
                        self.write_pooled(&index, target, meta, content, host)
                    }
                    Data::Content(content, _) => copy(&self.opts, &target, meta, content, host),
                });
                common(done, &index, host)?;
            }
        } else {
            host.event(Event::Skipping {
                path: relative(&index),
            });
        }
        self.last = Some(index);
        Ok(())
    }
}

/// `shutil.rmtree`: a directory tree; a file is `ENOTDIR`, a symlink an error without errno.
fn deltree(path: &[u8]) -> RestoreResult<()> {
    let md = fs::symlink_metadata(p(path)).map_err(|e| RestoreError::os(&e, path))?;
    if md.file_type().is_symlink() {
        return Err(RestoreError::plain("Cannot call rmtree on a symbolic link"));
    }
    if !md.is_dir() {
        return Err(RestoreError::os(
            &io::Error::from_raw_os_error(libc::ENOTDIR),
            path,
        ));
    }
    fs::remove_dir_all(p(path)).map_err(|e| RestoreError::os(&e, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_os_path_join() {
        assert_eq!(join(b"/t", &[b"a".to_vec(), b"b".to_vec()]), b"/t/a/b");
        assert_eq!(join(b"/t/", &[b"a".to_vec()]), b"/t/a");
        assert_eq!(join(b"/t", &[]), b"/t");
        assert_eq!(relative(&[]), b".");
        assert_eq!(relative(&[b"a".to_vec(), b"b".to_vec()]), b"a/b");
    }
}
