//! Large restored files written with direct I/O (`O_DIRECT`), past the page cache.
//!
//! A restore writes gigabytes that nobody reads soon. Through the page cache each written
//! byte is copied into a newly allocated cache page (on some virtual machines the first touch
//! of such a page costs more than the copy) and pushes out what other programs had cached.
//! With direct I/O the data goes from an aligned buffer to the disk. Only a file's data in
//! whole aligned chunks is written so; its last partial block, and everything on other file
//! systems than local disk ones or on one that refuses direct I/O, is written through the
//! cache as before. Nothing else
//! changes: same bytes, same holes, same errors. `DUPCORE_RESTORE_DIRECT=0` turns it off.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Alignment of direct I/O buffers, file offsets and lengths (a page; the logical block
/// size of common disks divides it).
pub const DIRECT_ALIGN: usize = 4096;
/// Bytes gathered before they are written at once.
pub const DIRECT_CHUNK: usize = 4 << 20;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns direct I/O of restored files on or off for this process.
pub fn set_direct_io(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether restored files are written with direct I/O where the file system allows it.
pub fn direct_io() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// `statfs` magic numbers of the local disk file systems direct I/O is used on: ext2/3/4,
/// XFS, btrfs and F2FS. Elsewhere (NFS and other network file systems, where each direct
/// write is a round trip to the server; FUSE; tmpfs, where the page cache is the storage;
/// ZFS and others with their own caching) files are written through the cache.
const LOCAL_DISK_FS: [i64; 4] = [0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010];

/// Whether `file` is on one of the [`LOCAL_DISK_FS`].
fn on_local_disk(file: &File) -> bool {
    // SAFETY: statfs is plain old data; all zeros is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a descriptor `file` keeps open and a valid out pointer.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = (st.f_type as i64) & 0xFFFF_FFFF;
    LOCAL_DISK_FS.contains(&magic)
}

/// Sets or clears `O_DIRECT` on `file`; false when the file system refuses it.
fn set_flag(file: &File, on: bool) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` keeps open; no pointers are passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return false;
    }
    let wanted = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    flags == wanted || unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } == 0
}

/// How a run of bytes is written at an offset: `write_all_at`, or one that leaves holes.
pub type WriteAt = fn(&File, u64, &[u8]) -> io::Result<()>;

/// Plain positional write of all of `data` at `at`.
pub fn write_at(file: &File, at: u64, data: &[u8]) -> io::Result<()> {
    file.write_all_at(data, at)
}

/// Appends to a file from an offset on, in aligned chunks written with direct I/O while the
/// file system takes it. It holds a duplicate of the file's descriptor, which shares the
/// `O_DIRECT` flag with the original: call [`DirectAppend::finish`] before the file is read
/// or written otherwise; dropping it unfinished (after an error) clears the flag too.
pub struct DirectAppend {
    file: File,
    write: WriteAt,
    /// Holds an aligned window of [`DIRECT_CHUNK`] bytes from `skew`.
    buf: Vec<u8>,
    skew: usize,
    filled: usize,
    /// File offset of the window's first byte.
    at: u64,
    direct: bool,
}

impl DirectAppend {
    /// Appends to `file` at `at` with `write`; direct I/O when enabled, `at` is aligned and
    /// the file is on a local disk file system that allows it.
    pub fn new(file: &File, at: u64, write: WriteAt) -> io::Result<Self> {
        let file = file.try_clone()?;
        let direct = direct_io()
            && at % DIRECT_ALIGN as u64 == 0
            && on_local_disk(&file)
            && set_flag(&file, true);
        let (buf, skew) = if direct {
            let buf = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
            let skew = buf.as_ptr().align_offset(DIRECT_ALIGN);
            (buf, skew)
        } else {
            (Vec::new(), 0)
        };
        Ok(DirectAppend {
            file,
            write,
            buf,
            skew,
            filled: 0,
            at,
            direct,
        })
    }

    /// Appends `piece`.
    pub fn push(&mut self, mut piece: &[u8]) -> io::Result<()> {
        if !self.direct && self.filled == 0 {
            (self.write)(&self.file, self.at, piece)?;
            self.at += piece.len() as u64;
            return Ok(());
        }
        while !piece.is_empty() {
            let n = piece.len().min(DIRECT_CHUNK - self.filled);
            let from = self.skew + self.filled;
            self.buf[from..from + n].copy_from_slice(&piece[..n]);
            self.filled += n;
            piece = &piece[n..];
            if self.filled == DIRECT_CHUNK {
                self.write_window(0, DIRECT_CHUNK)?;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes bytes `from..to` of the window at the file's end: with direct I/O while the
    /// file system takes it (`from..to` aligned), else through the cache.
    fn write_window(&mut self, from: usize, to: usize) -> io::Result<()> {
        let data = &self.buf[self.skew + from..self.skew + to];
        match (self.write)(&self.file, self.at, data) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                // an alignment this file system wants otherwise: the cache from here on
                self.direct = false;
                set_flag(&self.file, false);
                (self.write)(&self.file, self.at, data)?;
            }
            other => other?,
        }
        self.at += (to - from) as u64;
        Ok(())
    }

    /// Writes what is left (its last partial block through the cache); the file's end.
    pub fn finish(mut self) -> io::Result<u64> {
        let whole = self.filled - self.filled % DIRECT_ALIGN;
        self.write_window(0, whole)?;
        if self.direct {
            self.direct = false;
            set_flag(&self.file, false);
        }
        self.write_window(whole, self.filled)?;
        self.filled = 0;
        Ok(self.at)
    }
}

impl Drop for DirectAppend {
    fn drop(&mut self) {
        if self.direct {
            set_flag(&self.file, false);
        }
    }
}

/// Bytes handed over at a time to the thread of an [`AppendBehind`].
pub const BEHIND_PIECE: usize = 1 << 20;
/// Pieces waiting for that thread, at most.
const BEHIND_AHEAD: usize = 4;

/// A [`DirectAppend`] on a thread of its own: the caller goes on (reading the next data)
/// while the disk writes. A write error comes back from a later [`AppendBehind::push`] or
/// from [`AppendBehind::finish`]; the bytes handed over before it are written in order.
pub struct AppendBehind {
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<u64>>>,
    buf: Vec<u8>,
    /// The error the thread stopped on, once given.
    failed: Option<io::Error>,
}

/// A copy of `e` (`io::Error` is not `Clone`): its errno, or its kind and text.
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl AppendBehind {
    /// Appends to `file` at `at` with `write`, as [`DirectAppend::new`], from a new thread.
    pub fn new(file: &File, at: u64, write: WriteAt) -> io::Result<Self> {
        let mut out = DirectAppend::new(file, at, write)?;
        let (tx, rx) = sync_channel::<Vec<u8>>(BEHIND_AHEAD);
        let thread = std::thread::Builder::new()
            .name("dupcore-write-big".into())
            .spawn(move || {
                for piece in rx {
                    out.push(&piece)?;
                }
                out.finish()
            })?;
        Ok(AppendBehind {
            tx: Some(tx),
            thread: Some(thread),
            buf: Vec::with_capacity(BEHIND_PIECE),
            failed: None,
        })
    }

    /// Appends `piece`; the error that stopped the thread, if it stopped.
    pub fn push(&mut self, piece: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(piece);
        if self.buf.len() < BEHIND_PIECE {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(BEHIND_PIECE));
        match &self.tx {
            Some(tx) if tx.send(full).is_ok() => Ok(()),
            _ => self.join().map(|_| ()),
        }
    }

    /// Writes what is left and waits for the thread: the file's end, or the first error.
    pub fn finish(mut self) -> io::Result<u64> {
        let rest = std::mem::take(&mut self.buf);
        if let Some(tx) = &self.tx {
            if !rest.is_empty() {
                // a closed channel: the thread stopped on an error, which join gives
                let _ = tx.send(rest);
            }
        }
        self.join()
    }

    fn join(&mut self) -> io::Result<u64> {
        self.tx = None;
        let result = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(self.failed.as_ref().map_or_else(
                || io::Error::other("the writing thread is gone"),
                copy_error,
            )),
        };
        if let Err(e) = &result {
            self.failed = Some(copy_error(e));
        }
        result
    }
}

impl Drop for AppendBehind {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dupcore-direct-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn appends_the_bytes_in_any_cut() {
        let dir = scratch("cut");
        for (len, cut) in [
            (0usize, 1usize),
            (1, 1),
            (DIRECT_ALIGN - 1, 100),
            (DIRECT_CHUNK, 1 << 20),
            (DIRECT_CHUNK * 2 + 12_345, 7_777),
            (DIRECT_CHUNK + DIRECT_ALIGN, DIRECT_CHUNK + 1),
        ] {
            let path = dir.join(format!("f{len}"));
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .expect("open");
            let data = pattern(len);
            let mut w = DirectAppend::new(&file, 0, write_at).expect("new");
            // every local disk file system takes O_DIRECT
            assert_eq!(w.direct, on_local_disk(&file));
            for piece in data.chunks(cut) {
                w.push(piece).expect("push");
            }
            assert_eq!(w.finish().expect("finish"), len as u64);
            // the flag is off again: an unaligned write works
            file.write_all_at(b"x", len as u64)
                .expect("unaligned write");
            let mut back = Vec::new();
            File::open(&path)
                .expect("reopen")
                .read_to_end(&mut back)
                .expect("read");
            assert_eq!(&back[..len], &data[..], "len {len} cut {cut}");
            assert_eq!(&back[len..], b"x");
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// A write that refuses direct I/O, as a file system wanting another alignment does.
    fn refuse_direct(file: &File, at: u64, data: &[u8]) -> io::Result<()> {
        // SAFETY: fcntl on an open descriptor; no pointers are passed.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        if flags & libc::O_DIRECT != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        write_at(file, at, data)
    }

    #[test]
    fn a_refused_direct_write_goes_through_the_cache_and_loses_nothing() {
        let dir = scratch("refused");
        let path = dir.join("f");
        let file = File::create(&path).expect("create");
        let data = pattern(2 * DIRECT_CHUNK + 5_000);
        let mut w = DirectAppend::new(&file, 0, refuse_direct).expect("new");
        for piece in data.chunks(300_000) {
            w.push(piece).expect("push");
        }
        assert_eq!(w.finish().expect("finish"), data.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read"), data);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn appends_behind_as_in_place_and_reports_a_write_error() {
        let dir = scratch("behind");
        let path = dir.join("f");
        let file = File::create(&path).expect("create");
        let data = pattern(3 * BEHIND_PIECE + 4_321);
        let mut w = AppendBehind::new(&file, 0, write_at).expect("new");
        for piece in data.chunks(70_000) {
            w.push(piece).expect("push");
        }
        assert_eq!(w.finish().expect("finish"), data.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read"), data);
        // a file opened read-only: the first write fails, and a later push says so. The
        // thread writes once it holds a window (at most DIRECT_CHUNK / BEHIND_PIECE pieces)
        // and fails there; BEHIND_AHEAD more fit in the channel, so the piece after those
        // finds the channel closed, however the threads are scheduled.
        let ro = File::open(&path).expect("open");
        let mut w = AppendBehind::new(&ro, 0, write_at).expect("new");
        let more = pattern((DIRECT_CHUNK / BEHIND_PIECE + BEHIND_AHEAD + 2) * BEHIND_PIECE);
        let pushed: io::Result<()> = more.chunks(70_000).try_for_each(|p| w.push(p));
        let e = pushed.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
        // and finish gives the same error again
        let e = w.finish().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn an_unaligned_start_writes_through_the_cache() {
        let dir = scratch("unaligned");
        let path = dir.join("f");
        let file = File::create(&path).expect("create");
        let data = pattern(DIRECT_CHUNK + 5);
        let mut w = DirectAppend::new(&file, 3, write_at).expect("new");
        assert!(!w.direct);
        w.push(&data).expect("push");
        assert_eq!(w.finish().expect("finish"), 3 + data.len() as u64);
        let back = std::fs::read(&path).expect("read");
        assert_eq!(&back[3..], &data[..]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
