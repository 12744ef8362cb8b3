//! A regular file's patch sequence: its snapshot, then the delta of every later backup set.
//!
//! duplicity writes every intermediate state of the file to a temporary file and patches the
//! next delta against it, so a large file changed in 30 incrementals is written and read 30
//! times. Here the deltas before the last are composed instead: a state is a list of pieces,
//! each a range of the snapshot or of the literal data the deltas carry, and a delta's copy
//! command only slices the previous list. The snapshot is spooled once (in memory up to
//! [`SPOOL_IN_MEMORY`], else in an unlinked temporary file), so are the literal bytes, and the
//! last delta is applied by the ordinary patcher against the composed state, so that its
//! output, and where it stops on a damaged delta, are those of the step-by-step patch. A
//! state cut into more than [`MAX_PIECES`] pieces is written out once and starts anew.
//! Between deltas, a state that can be written into its snapshot's file in place (pages
//! rewritten where they are, as in a database file) is written there ([`Composed::settle`]),
//! so that the literal bytes of 30 incrementals are not all spooled and copied again.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::direct::AppendBehind;
use super::entry::{Entry, EntryStream};
use super::error::{RestoreError, RestoreResult};
use super::Host;
use crate::rsync::{Basis, Command, CommandReader, PatchMaker, RsError, COPY_PAST_END};

/// File data up to this size stays in memory; larger data goes to a temporary file.
pub const SPOOL_IN_MEMORY: usize = 16 << 20;
/// Pieces a composed state may have before it is written out.
pub const MAX_PIECES: usize = 1 << 18;
/// Delta bytes read at a time, at most.
const DELTA_CHUNK: usize = 1 << 20;
/// Delta bytes read at a time at first (most deltas are small); doubled while reads fill it.
const FIRST_CHUNK: usize = 16 << 10;

/// Grows a read buffer that a read has just filled, up to `max`.
fn grow(buf: &mut Vec<u8>, filled: usize, max: usize) {
    if filled == buf.len() && buf.len() < max {
        buf.resize((buf.len() * 2).min(max), 0);
    }
}

/// File data kept for random access: in memory, or in an unlinked temporary file.
enum Spool {
    Memory(Vec<u8>),
    Disk(File),
}

static SPOOL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A [`Spool`] being appended to.
struct SpoolWriter {
    tempdir: PathBuf,
    /// A directory on the restore target's file system, where a spool leaving memory is
    /// made as an unnamed file (`O_TMPFILE`) that can become the restored file itself.
    near: Option<PathBuf>,
    spool: Spool,
    len: u64,
    in_memory: usize,
    /// The spool is an unnamed file in `near`.
    unnamed_near: bool,
    /// Appends to that unnamed file, with direct I/O (it becomes a restored file), on a
    /// thread of its own while the walk reads on.
    direct: Option<AppendBehind>,
}

impl SpoolWriter {
    fn new(tempdir: &Path, in_memory: usize) -> Self {
        SpoolWriter {
            tempdir: tempdir.to_path_buf(),
            near: None,
            spool: Spool::Memory(Vec::new()),
            len: 0,
            in_memory,
            unnamed_near: false,
            direct: None,
        }
    }

    /// A spool for a state's literal data: a quarter of what a snapshot may keep in memory
    /// (a chain's file keeps one delta's literal data while the one before is settled, and
    /// its last one while it is placed and the walk goes on with the next file).
    fn literals(tempdir: &Path, limits: Limits) -> Self {
        Self::new(tempdir, limits.in_memory / 4)
    }

    /// An unnamed read-write file in `near`, if the file system there has them.
    fn unnamed_in(near: &Path) -> Option<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o666)
            .custom_flags(libc::O_TMPFILE)
            .open(near)
            .ok()
    }

    fn write(&mut self, piece: &[u8]) -> RestoreResult<()> {
        if let Spool::Memory(v) = &mut self.spool {
            if v.len() + piece.len() <= self.in_memory {
                v.extend_from_slice(piece);
                self.len += piece.len() as u64;
                return Ok(());
            }
            let path = self.tempdir.join(format!(
                "dupcore-restore-{}-{}",
                std::process::id(),
                SPOOL_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let os = |e: std::io::Error| RestoreError::os(&e, path.as_os_str().as_encoded_bytes());
            let f = match self.near.as_deref().and_then(Self::unnamed_in) {
                Some(f) => {
                    self.unnamed_near = true;
                    f
                }
                None => {
                    let f = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(os)?;
                    std::fs::remove_file(&path).map_err(os)?;
                    f
                }
            };
            if self.unnamed_near {
                let mut out = AppendBehind::new(&f, 0, write_sparse).map_err(os)?;
                out.push(v).map_err(os)?;
                self.direct = Some(out);
            } else {
                write_sparse(&f, 0, v).map_err(os)?;
            }
            self.spool = Spool::Disk(f);
        }
        match (&mut self.direct, &self.spool) {
            (Some(out), _) => out.push(piece),
            (None, Spool::Disk(f)) => write_sparse(f, self.len, piece),
            (None, Spool::Memory(_)) => Ok(()), // moved to disk above
        }
        .map_err(temporary)?;
        self.len += piece.len() as u64;
        Ok(())
    }

    /// The spool, all written, and whether it is an unnamed file in `near`.
    fn finish(mut self) -> RestoreResult<(Spool, bool, u64)> {
        if let Some(out) = self.direct.take() {
            out.finish().map_err(temporary)?;
        }
        Ok((self.spool, self.unnamed_near, self.len))
    }
}

/// Zeros are looked for in blocks this large (aligned in the file) and not written: a file
/// reads zeros where nothing was written, and blocks never written take no disk.
const HOLE_BLOCK: u64 = 64 << 10;

/// Whether `bytes` are all zero.
fn is_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(64)
        .all(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// Writes `piece` at `offset` of the file (which ends at `offset`), skipping its blocks of
/// zeros, whole or cut by the piece's ends: a 16 GiB disk image of zeros costs no disk in the
/// spool.
fn write_sparse(f: &File, offset: u64, piece: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let end = offset + piece.len() as u64;
    let bytes = |from: u64, to: u64| &piece[(from - offset) as usize..(to - offset) as usize];
    let (mut at, mut run) = (offset, offset);
    while at < end {
        let block_end = ((at / HOLE_BLOCK + 1) * HOLE_BLOCK).min(end);
        if is_zero(bytes(at, block_end)) {
            f.write_all_at(bytes(run, at), run)?;
            run = block_end;
        }
        at = block_end;
    }
    f.write_all_at(bytes(run, end), run)?;
    if run == end && end > offset {
        f.set_len(end)?;
    }
    Ok(())
}

impl Basis for Spool {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Spool::Memory(v) => v.as_slice().read_at(pos, buf),
            Spool::Disk(f) => f.read_at(pos, buf),
        }
    }
}

/// Where a piece of a composed state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The snapshot (or the last written-out state), from this offset.
    Base(u64),
    /// The literal store, from this offset.
    Literal(u64),
}

impl Source {
    fn at(self, skip: u64) -> Source {
        match self {
            Source::Base(o) => Source::Base(o + skip),
            Source::Literal(o) => Source::Literal(o + skip),
        }
    }
}

/// A piece of a state: its bytes end at `end` in the state and come from `source`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    end: u64,
    source: Source,
}

/// A file state as pieces of the snapshot and of the deltas' literal data.
pub struct Composed {
    base: Spool,
    /// `base` is an unnamed file on the restore target's file system.
    base_near: bool,
    literals: SpoolWriter,
    pieces: Vec<Piece>,
    tempdir: PathBuf,
    near: Option<PathBuf>,
    limits: Limits,
    /// The snapshot is not read yet (a [`Plan`]): `base` is empty and its length unknown.
    unread: bool,
    /// The writes of the last [`Composed::settle`], while they run.
    settling: Option<std::thread::JoinHandle<RestoreResult<()>>>,
}

/// Memory bounds of a composed state.
#[derive(Debug, Clone, Copy)]
struct Limits {
    in_memory: usize,
    max_pieces: usize,
}

const LIMITS: Limits = Limits {
    in_memory: SPOOL_IN_MEMORY,
    max_pieces: MAX_PIECES,
};

impl Composed {
    /// The state of a snapshot whose data `fill` gives to the writer it is called with.
    fn from_snapshot(
        tempdir: &Path,
        near: Option<&Path>,
        limits: Limits,
        fill: impl FnOnce(&mut SpoolWriter) -> RestoreResult<()>,
    ) -> RestoreResult<Self> {
        let mut w = SpoolWriter::new(tempdir, limits.in_memory);
        w.near = near.map(Path::to_path_buf);
        fill(&mut w)?;
        let (base, base_near, len) = w.finish()?;
        let mut state = Composed {
            base,
            base_near,
            literals: SpoolWriter::literals(tempdir, limits),
            pieces: Vec::new(),
            tempdir: tempdir.to_path_buf(),
            near: near.map(Path::to_path_buf),
            limits,
            unread: false,
            settling: None,
        };
        push(&mut state.pieces, &mut 0, len, Source::Base(0));
        Ok(state)
    }

    /// The state's length in bytes.
    pub fn len(&self) -> u64 {
        self.pieces.last().map_or(0, |p| p.end)
    }

    /// Whether the state has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn start_of(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.pieces[i - 1].end
        }
    }

    /// The index of the piece holding byte `pos` (`pos` < len).
    fn find(&self, pos: u64) -> usize {
        self.pieces.partition_point(|p| p.end <= pos)
    }

    /// Appends the pieces of `[pos, pos + len)` of this state to `out` (ending at `out_end`).
    fn slice_into(&self, pos: u64, len: u64, out: &mut Vec<Piece>, mut out_end: u64) {
        let stop = pos + len;
        let mut at = pos;
        let mut i = self.find(pos);
        while at < stop {
            let piece = self.pieces[i];
            let start = self.start_of(i);
            let take = piece.end.min(stop) - at;
            push(out, &mut out_end, take, piece.source.at(at - start));
            at += take;
            i += 1;
        }
    }

    /// Applies the delta that `read` gives (0 at its end) to this state, in place.
    fn compose(
        &mut self,
        read: &mut dyn FnMut(&mut [u8]) -> RestoreResult<usize>,
    ) -> RestoreResult<()> {
        let mut next: Vec<Piece> = Vec::new();
        let mut next_end = 0u64;
        let mut commands = CommandReader::new();
        let mut input = vec![0u8; FIRST_CHUNK];
        let (mut start, mut end, mut eof) = (0usize, 0usize, false);
        let mut literal_left = 0u64;
        let old_len = self.len();
        loop {
            if start == end && !eof {
                end = read(&mut input)?;
                start = 0;
                eof = end == 0;
                grow(&mut input, end, DELTA_CHUNK);
            }
            if literal_left > 0 {
                if start == end {
                    return Err(librsync(RsError::InputEnded(
                        "delta ends inside literal data",
                    )));
                }
                let n = (literal_left.min((end - start) as u64)) as usize;
                let at = self.literals.len;
                self.literals.write(&input[start..start + n])?;
                push(&mut next, &mut next_end, n as u64, Source::Literal(at));
                start += n;
                literal_left -= n as u64;
                continue;
            }
            let (used, command) = commands.next(&input[start..end], eof).map_err(librsync)?;
            start += used;
            match command {
                None => {} // all input used: more is read above
                Some(Command::End) => break,
                Some(Command::Literal(n)) => literal_left = n,
                Some(Command::Copy { pos, len }) => {
                    let available = old_len.saturating_sub(pos).min(len);
                    if available > 0 {
                        self.slice_into(pos, available, &mut next, next_end);
                        next_end += available;
                    }
                    if available < len {
                        return Err(librsync(RsError::InputEnded(COPY_PAST_END)));
                    }
                }
            }
        }
        self.pieces = next;
        if self.pieces.len() > self.limits.max_pieces && !self.unread {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the state to a new spool, which becomes its only piece.
    fn write_out(&mut self) -> RestoreResult<()> {
        let len = self.len();
        let mut w = SpoolWriter::new(&self.tempdir, self.limits.in_memory);
        w.near.clone_from(&self.near);
        let mut buf = vec![0u8; DELTA_CHUNK];
        let mut pos = 0u64;
        while pos < len {
            let n = self
                .read_at(pos, &mut buf)
                .map_err(|e| RestoreError::os(&e, b"<temporary file>"))?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n])?;
            pos += n as u64;
        }
        (self.base, self.base_near, _) = w.finish()?;
        self.literals = SpoolWriter::literals(&self.tempdir, self.limits);
        self.pieces.clear();
        push(&mut self.pieces, &mut 0, len, Source::Base(0));
        Ok(())
    }
}

impl Composed {
    /// Applies a delta held in memory to this state; on an error the state stays as it was.
    pub fn compose_bytes(&mut self, delta: &[u8]) -> RestoreResult<()> {
        let mut at = 0;
        self.compose(&mut |buf: &mut [u8]| {
            let n = buf.len().min(delta.len() - at);
            buf[..n].copy_from_slice(&delta[at..at + n]);
            at += n;
            Ok(n)
        })
    }

    /// Gives the state's bytes to `sink`, in order.
    pub fn pipe(&mut self, sink: &mut dyn FnMut(&[u8]) -> RestoreResult<()>) -> RestoreResult<()> {
        let len = self.len();
        let mut buf = vec![0u8; DELTA_CHUNK];
        let mut pos = 0u64;
        while pos < len {
            let n = self.read_at(pos, &mut buf).map_err(temporary)?;
            if n == 0 {
                return Err(temporary(std::io::ErrorKind::UnexpectedEof.into()));
            }
            sink(&buf[..n])?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Makes the state the content of the unnamed file its snapshot was spooled to, writing
    /// only what differs from the snapshot there (and the zeros the spool left out, so that
    /// the file is dense as a written one): the file, of [`Composed::len`] bytes. The state
    /// itself back when its snapshot is elsewhere, or when a byte would be needed after it
    /// was overwritten.
    pub fn place(mut self) -> RestoreResult<Result<File, Composed>> {
        self.wait_settled()?;
        let plan = if self.base_near {
            self.settle_plan()
        } else {
            None
        };
        let Some(plan) = plan else {
            return Ok(Err(self));
        };
        let len = self.len();
        let (mut literals, _, _) = self.reset_to_base().finish()?;
        let Spool::Disk(file) = self.base else {
            return Err(RestoreError::Aborted);
        };
        write_plan(&file, &mut literals, &plan, len).map_err(temporary)?;
        fill_holes(&file, len).map_err(temporary)?;
        Ok(Ok(file))
    }

    /// Writes the state into the file its snapshot was spooled to, where that can be done in
    /// place, and makes it that file's bytes again (one piece; the literal data spooled so
    /// far let go): between the deltas of a long chain, each delta's literal data is then
    /// written once where it belongs instead of piling up in a spool that the final state
    /// is then copied from. The writes run on a thread of their own while the next delta is
    /// read and composed; whatever reads the state's bytes waits for them first
    /// ([`Composed::wait_settled`]). A state whose snapshot is in memory or not read, or
    /// that moves bytes where writing in place would overwrite them first, stays as it is.
    /// After an error the state is unusable (its file is partly written): the caller gives
    /// it up.
    pub fn settle(&mut self) -> RestoreResult<()> {
        self.wait_settled()?;
        let Some(plan) = self.settle_plan() else {
            return Ok(());
        };
        let Spool::Disk(file) = &self.base else {
            return Ok(());
        };
        if plan.is_empty() && self.literals.len == 0 {
            return Ok(()); // the file's bytes already
        }
        let file = file.try_clone().map_err(temporary)?;
        let len = self.len();
        let (mut literals, _, _) = self.reset_to_base().finish()?;
        let write = move || write_plan(&file, &mut literals, &plan, len).map_err(temporary);
        let thread = std::thread::Builder::new()
            .name("dupcore-settle".into())
            .spawn(write)
            .map_err(|e| RestoreError::os(&e, b"<settle thread>"))?;
        self.settling = Some(thread);
        Ok(())
    }

    /// Waits for the writes of the last [`Composed::settle`]; their error is the state's.
    pub fn wait_settled(&mut self) -> RestoreResult<()> {
        match self.settling.take() {
            None => Ok(()),
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(RestoreError::Assertion(
                    "writing a file's state in place failed".into(),
                ))
            }),
        }
    }

    /// The writes that make the snapshot's file this state in place (none when the state
    /// is that file's bytes already); None when the state cannot be written so.
    fn settle_plan(&self) -> Option<Vec<(Source, u64, u64)>> {
        if self.unread || !matches!(self.base, Spool::Disk(_)) {
            return None;
        }
        self.in_place_plan()
    }

    /// Makes the state one piece, its snapshot file's bytes, for when its plan is written
    /// there: the literal data, which the plan reads, is given back.
    fn reset_to_base(&mut self) -> SpoolWriter {
        let len = self.len();
        self.pieces.clear();
        push(&mut self.pieces, &mut 0, len, Source::Base(0));
        let fresh = SpoolWriter::literals(&self.tempdir, self.limits);
        std::mem::replace(&mut self.literals, fresh)
    }

    /// The writes that turn the snapshot into this state in place, as (source, offset in
    /// the state, length), in order; None when a piece reads bytes of the snapshot that an
    /// earlier write has replaced.
    fn in_place_plan(&self) -> Option<Vec<(Source, u64, u64)>> {
        let mut plan = Vec::new();
        // the ranges written so far, increasing and apart
        let mut written: Vec<(u64, u64)> = Vec::new();
        let mut at = 0u64;
        for piece in &self.pieces {
            let len = piece.end - at;
            match piece.source {
                Source::Base(from) if from == at => {}
                Source::Base(from) => {
                    let end = from + len;
                    let first = written.partition_point(|w| w.1 <= from);
                    let clobbered = written.get(first).is_some_and(|w| w.0 < end);
                    if clobbered || (from < at && end > at) {
                        return None;
                    }
                    plan.push((piece.source, at, len));
                }
                Source::Literal(_) => plan.push((piece.source, at, len)),
            }
            if plan.last().is_some_and(|p| p.1 == at) {
                match written.last_mut() {
                    Some(w) if w.1 == at => w.1 = piece.end,
                    _ => written.push((at, piece.end)),
                }
            }
            at = piece.end;
        }
        Some(plan)
    }
}

impl Composed {
    /// Bytes of memory the state holds (its spools kept in memory and its pieces).
    pub fn memory(&self) -> usize {
        let spooled = |s: &Spool| match s {
            Spool::Memory(v) => v.len(),
            Spool::Disk(_) => 0,
        };
        spooled(&self.base)
            + spooled(&self.literals.spool)
            + self.pieces.len() * std::mem::size_of::<Piece>()
    }
}

fn temporary(e: std::io::Error) -> RestoreError {
    RestoreError::os(&e, b"<temporary file>")
}

/// Carries out the writes of an in-place plan (see [`Composed::settle`]) in `file`, reading
/// from the file itself and from `literals`, and cuts the file to `len` bytes.
fn write_plan(
    file: &File,
    literals: &mut Spool,
    plan: &[(Source, u64, u64)],
    len: u64,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; DELTA_CHUNK];
    for &(source, to, n) in plan {
        let mut done = 0u64;
        while done < n {
            let want = usize::try_from(n - done).map_or(buf.len(), |k| k.min(buf.len()));
            let got = match source {
                Source::Base(from) => file.read_at(&mut buf[..want], from + done),
                Source::Literal(from) => literals.read_at(from + done, &mut buf[..want]),
            }?;
            if got == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            file.write_all_at(&buf[..got], to + done)?;
            done += got as u64;
        }
    }
    file.set_len(len)
}

/// Writes zeros into the holes of the first `len` bytes of `f`.
fn fill_holes(f: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let seek = |pos: u64, whence: libc::c_int| -> std::io::Result<Option<u64>> {
        let pos = libc::off_t::try_from(pos).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        // SAFETY: lseek on a descriptor this function borrows.
        let r = unsafe { libc::lseek(f.as_raw_fd(), pos, whence) };
        match u64::try_from(r) {
            Ok(at) => Ok(Some(at)),
            Err(_) => match std::io::Error::last_os_error() {
                // no data after pos; or a file system without holes
                e if matches!(e.raw_os_error(), Some(libc::ENXIO | libc::EINVAL)) => Ok(None),
                e => Err(e),
            },
        }
    };
    let zeros = vec![0u8; DELTA_CHUNK];
    let mut pos = 0u64;
    while pos < len {
        let Some(hole) = seek(pos, libc::SEEK_HOLE)? else {
            return Ok(());
        };
        if hole >= len {
            return Ok(());
        }
        let end = seek(hole, libc::SEEK_DATA)?.map_or(len, |d| d.min(len));
        let mut at = hole;
        while at < end {
            let n = usize::try_from(end - at).map_or(zeros.len(), |n| n.min(zeros.len()));
            f.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        pos = end.max(hole + 1);
    }
    Ok(())
}

/// The start of an entry's data, read before the entry is written, as [`apply_delta`]
/// reads it; given back by [`DeltaRead::read`], the patcher sees the same reads.
pub struct DeltaRead {
    /// The bytes read.
    pub data: Vec<u8>,
    /// What each read gave.
    reads: Vec<usize>,
    /// How the reading ended.
    pub end: ReadEnd,
    /// Reads given back so far, and their bytes.
    given: (usize, usize),
}

/// Where [`DeltaRead::ahead`] stopped.
#[derive(Debug)]
pub enum ReadEnd {
    /// At the end of the data.
    Complete,
    /// At this error.
    Failed(RestoreError),
    /// Before the data goes on in a volume not fetched yet, or at the size limit.
    More,
}

impl DeltaRead {
    /// Reads the current entry of `stream`, up to about `max` bytes, without asking the host
    /// for a volume.
    pub fn ahead(stream: &mut EntryStream, host: &mut dyn Host, max: usize) -> DeltaRead {
        let mut data = Vec::new();
        let mut reads = Vec::new();
        let mut chunk = FIRST_CHUNK;
        let end = loop {
            if data.len() >= max {
                break ReadEnd::More;
            }
            let at = data.len();
            data.resize(at + chunk, 0);
            match stream.read_data_here(host, &mut data[at..]) {
                Ok(Some(n)) => {
                    data.truncate(at + n);
                    reads.push(n);
                    if n == 0 {
                        break ReadEnd::Complete;
                    }
                    if n == chunk && chunk < DELTA_CHUNK {
                        chunk *= 2;
                    }
                }
                Ok(None) => {
                    data.truncate(at);
                    break ReadEnd::More;
                }
                Err(e) => {
                    data.truncate(at);
                    break ReadEnd::Failed(e);
                }
            }
        };
        DeltaRead {
            data,
            reads,
            end,
            given: (0, 0),
        }
    }

    /// Nothing read ahead: every read goes to the stream.
    pub fn none() -> DeltaRead {
        DeltaRead {
            data: Vec::new(),
            reads: Vec::new(),
            end: ReadEnd::More,
            given: (0, 0),
        }
    }

    /// The next read: what the read ahead gave, then its error, or more from `stream`.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        stream: &mut EntryStream,
        host: &mut dyn Host,
    ) -> RestoreResult<usize> {
        let (k, at) = self.given;
        if let Some(n) = self.reads.get_mut(k) {
            // the same request sizes come back, so a read is given back whole
            let give = (*n).min(buf.len());
            buf[..give].copy_from_slice(&self.data[at..at + give]);
            *n -= give;
            self.given = (if *n == 0 { k + 1 } else { k }, at + give);
            return Ok(give);
        }
        match std::mem::replace(&mut self.end, ReadEnd::Complete) {
            ReadEnd::Complete => Ok(0),
            ReadEnd::Failed(e) => Err(e),
            ReadEnd::More => {
                self.end = ReadEnd::More;
                stream.read_data(host, buf)
            }
        }
    }
}

/// Appends a piece of `len` bytes from `source`, merged with the last when contiguous.
fn push(out: &mut Vec<Piece>, out_end: &mut u64, len: u64, source: Source) {
    if len == 0 {
        return;
    }
    let start = *out_end;
    *out_end += len;
    if let Some(n) = out.len().checked_sub(1) {
        let prev_start = if n == 0 { 0 } else { out[n - 1].end };
        if out[n].source.at(start - prev_start) == source {
            out[n].end = *out_end;
            return;
        }
    }
    out.push(Piece {
        end: *out_end,
        source,
    });
}

impl Basis for Composed {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.wait_settled()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let len = self.len();
        let mut done = 0usize;
        let mut at = pos;
        while done < buf.len() && at < len {
            let i = self.find(at);
            let piece = self.pieces[i];
            let start = self.start_of(i);
            let want = ((piece.end - at) as usize).min(buf.len() - done);
            let got = match piece.source.at(at - start) {
                Source::Base(o) => self.base.read_at(o, &mut buf[done..done + want])?,
                Source::Literal(o) => self
                    .literals
                    .spool
                    .read_at(o, &mut buf[done..done + want])?,
            };
            if got == 0 {
                break;
            }
            done += got;
            at += got as u64;
        }
        Ok(done)
    }
}

fn librsync(e: RsError) -> RestoreError {
    RestoreError::Librsync(format!(
        "librsync error {} ({}) while in patch cycle",
        e.code(),
        e
    ))
}

/// Applies the delta that `read` gives (0 at its end) to `basis`, giving the result to
/// `sink`.
pub fn apply_delta(
    basis: &mut dyn Basis,
    read: &mut dyn FnMut(&mut [u8]) -> RestoreResult<usize>,
    sink: &mut dyn FnMut(&[u8]) -> RestoreResult<()>,
) -> RestoreResult<()> {
    let mut maker = PatchMaker::new(basis);
    let mut chunk = FIRST_CHUNK;
    let mut input = vec![0u8; chunk * 2];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    let mut out = Vec::new();
    loop {
        if !eof && end - start < chunk {
            input.copy_within(start..end, 0);
            end -= start;
            start = 0;
            let n = read(&mut input[end..end + chunk])?;
            if n == 0 {
                eof = true;
            }
            end += n;
            if n == chunk && chunk < DELTA_CHUNK {
                chunk *= 2;
                input.resize(chunk * 2, 0);
            }
        }
        let (used, done) = maker
            .cycle(&input[start..end], eof, &mut out, DELTA_CHUNK)
            .map_err(librsync)?;
        start += used;
        if !out.is_empty() {
            sink(&out)?;
            out.clear();
        }
        if done {
            return Ok(());
        }
    }
}

impl Basis for &mut dyn Basis {
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        (**self).read_at(pos, buf)
    }
}

/// The state of a regular file before its last delta (`patch_seq2ropath` up to the final
/// `PatchedFile`): the snapshot of `seq[0]` with the deltas of `seq[1..len - 1]` composed,
/// each read through its [`DeltaRead`] in `reads`, and settled after each.
/// A snapshot leaving memory is spooled to an unnamed file in `near` when it is given and
/// its file system has them, else in `tempdir`.
#[allow(clippy::too_many_arguments)]
pub fn before_last(
    seq: &[(usize, Entry)],
    streams: &mut [EntryStream],
    reads: &mut [DeltaRead],
    host: &mut dyn Host,
    tempdir: &Path,
    near: Option<&Path>,
    in_memory: usize,
) -> RestoreResult<Composed> {
    let (first, _) = &seq[0];
    let limits = Limits {
        in_memory,
        ..LIMITS
    };
    let mut state = Composed::from_snapshot(tempdir, near, limits, |w| {
        streams[*first].pipe_data(host, &mut |piece| w.write(piece))
    })?;
    for ((set, _), ahead) in seq[1..seq.len() - 1].iter().zip(reads.iter_mut()) {
        let stream = &mut streams[*set];
        state.compose(&mut |buf| ahead.read(buf, stream, host))?;
        state.settle()?;
    }
    state.wait_settled()?;
    Ok(state)
}

/// Length taken for a snapshot not read yet: larger than any file, far from overflowing.
const UNKNOWN_LEN: u64 = u64::MAX / 4;

/// A regular file's final state planned before its snapshot is read: every delta composed
/// over the snapshot's bytes, which are then only read once, in order ([`Plan::compare`]).
pub struct Plan {
    state: Composed,
    /// The snapshot bytes the first delta copies: the snapshot must be this long.
    reach: u64,
}

/// What [`Plan::compare`] found.
#[derive(Debug)]
pub enum Compared {
    /// Whether the local file has the final state's bytes, or the error reading it.
    Data(std::io::Result<bool>),
    /// Reading the snapshot failed (as `patch_seq2ropath` fails).
    SnapshotFailed(RestoreError),
    /// The snapshot is shorter than the first delta needs (as its patch fails).
    PatchFailed(RestoreError),
}

impl Plan {
    /// The final state of the deltas `deltas` (each read in full) applied in turn to a
    /// snapshot not read yet; None when one of them does not apply to a snapshot of any
    /// length, or the state would need more than [`MAX_PIECES`] pieces.
    pub fn new(tempdir: &Path, deltas: &[&[u8]], in_memory: usize) -> Option<Plan> {
        let limits = Limits {
            in_memory,
            ..LIMITS
        };
        let mut state = Composed::from_snapshot(tempdir, None, limits, |_| Ok(())).ok()?;
        state.pieces.clear();
        push(&mut state.pieces, &mut 0, UNKNOWN_LEN, Source::Base(0));
        state.unread = true;
        let mut reach = 0;
        for (k, delta) in deltas.iter().enumerate() {
            state.compose_bytes(delta).ok()?;
            if state.pieces.len() > state.limits.max_pieces {
                return None;
            }
            if k == 0 {
                reach = state.base_reach();
            }
        }
        Some(Plan { state, reach })
    }

    /// Compares the final state with the local file `local` while `snapshot` gives the
    /// snapshot's bytes, in order, to the sink it is called with (without a local file, the
    /// snapshot is only read).
    pub fn compare(
        mut self,
        snapshot: impl FnOnce(&mut dyn FnMut(&[u8]) -> RestoreResult<()>) -> RestoreResult<()>,
        local: Option<&File>,
    ) -> Compared {
        use std::os::unix::fs::FileExt;
        let len = self.state.len();
        let mut local_error = None;
        let mut equal = match local.map(File::metadata) {
            Some(Ok(m)) => m.len() == len,
            Some(Err(e)) => {
                local_error = Some(e);
                false
            }
            None => false,
        };
        // (offset in the snapshot, offset in the file, length), by snapshot offset
        let mut from_base: Vec<(u64, u64, u64)> = Vec::new();
        let mut at = 0;
        for piece in &self.state.pieces {
            if let Source::Base(from) = piece.source {
                from_base.push((from, at, piece.end - at));
            }
            at = piece.end;
        }
        from_base.sort_unstable();
        let (mut next, mut active) = (0usize, Vec::new());
        let mut pos = 0u64;
        let mut buf = Vec::new();
        let mut check = |want: &[u8], at: u64, equal: &mut bool, error: &mut Option<_>| {
            let Some(local) = local else {
                *equal = false;
                return;
            };
            buf.resize(want.len(), 0);
            match local.read_exact_at(&mut buf, at) {
                Ok(()) => *equal = buf == want,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => *equal = false,
                Err(e) => {
                    *error = Some(e);
                    *equal = false;
                }
            }
        };
        let read = snapshot(&mut |chunk: &[u8]| {
            let end = pos + chunk.len() as u64;
            while next < from_base.len() && from_base[next].0 < end {
                active.push(from_base[next]);
                next += 1;
            }
            active.retain(|&(from, to, n)| {
                let (a, b) = (from.max(pos), (from + n).min(end));
                if a < b && equal {
                    let want = &chunk[(a - pos) as usize..(b - pos) as usize];
                    check(want, to + (a - from), &mut equal, &mut local_error);
                }
                from + n > end
            });
            pos = end;
            Ok(())
        });
        if let Err(e) = read {
            return Compared::SnapshotFailed(e);
        }
        if pos < self.reach {
            return Compared::PatchFailed(librsync(RsError::InputEnded(COPY_PAST_END)));
        }
        let mut at = 0;
        for piece in &self.state.pieces {
            if let (Source::Literal(from), true) = (piece.source, equal) {
                let mut want = vec![0u8; (piece.end - at) as usize];
                match self.state.literals.spool.read_at(from, &mut want) {
                    Ok(n) if n == want.len() => check(&want, at, &mut equal, &mut local_error),
                    Ok(_) => equal = false,
                    Err(e) => return Compared::SnapshotFailed(temporary(e)),
                }
            }
            at = piece.end;
        }
        Compared::Data(local_error.map_or(Ok(equal), Err))
    }
}

impl Composed {
    /// The end of the last snapshot byte the state uses.
    fn base_reach(&self) -> u64 {
        let mut at = 0;
        let mut reach = 0;
        for piece in &self.pieces {
            if let Source::Base(from) = piece.source {
                reach = reach.max(from + (piece.end - at));
            }
            at = piece.end;
        }
        reach
    }
}

#[cfg(test)]
mod tests;
