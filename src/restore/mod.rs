//! The restore engine: a backup chain's volumes in, files on disk out.
//!
//! It does what duplicity's `restore_get_patched_rop_iter` and `patchdir.Write_ROPaths` do
//! together: every backup set of the chain is read as a stream of tar members across its
//! volumes ([`tarstream`]), turned into entries ([`entry`]), collated by path; each path's
//! patch sequence is normalised (`normalize_ps`), the deltas before the last are composed
//! over the snapshot and the last is applied to that ([`chain`]), and the result is written
//! under the target ([`writer`]). Whatever duplicity logs
//! on the way is handed to the [`Host`] as an [`Event`], so that the caller can log it with
//! duplicity's own words; volumes are asked from the host when a set needs its next one.

pub mod chain;
pub mod direct;
pub mod entry;
pub mod error;
pub mod pool;
pub mod tarstream;
pub mod verify;
pub mod writer;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chain::{apply_delta, before_last, Compared, Composed, DeltaRead, Plan, ReadEnd};
use entry::{DiffType, Entry, EntryStream, Index, Kind, Meta, Owners};
pub use error::{RestoreError, RestoreResult};
use pool::{AfterWrites, Collector, FileJob, Ordered};
use verify::Verifier;
pub use verify::{LocalAttrs, LocalPath, LocalSide, LocalWalk};
use writer::{relative, Content, TreeWriter, WriteOptions};

/// A file's last delta is read before the file is written (so that its final state is
/// known first) when it is in one volume and no larger than this.
pub const LAST_DELTA_IN_MEMORY: u64 = 16 << 20;

/// What the restore needs to know.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The target directory (or file, when a single file is restored).
    pub target: Vec<u8>,
    /// Number of backup sets in the chain (full first).
    pub sets: usize,
    /// `--path-to-restore` as an index (empty: everything).
    pub restrict: Index,
    /// Where large snapshots and delta data are spooled.
    pub tempdir: PathBuf,
    /// `--numeric-owner`.
    pub numeric_owner: bool,
    /// Bytes of a file's snapshot kept in memory while its deltas are applied; a larger one
    /// is spooled to disk ([`chain::SPOOL_IN_MEMORY`] by default).
    pub spool_in_memory: usize,
    /// Restore (write) or verify (report and compare).
    pub mode: Mode,
}

/// What happens to the chain's final entries.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Written under the target, as duplicity's restore writes them.
    Restore(WriteOptions),
    /// Reported as [`Event::Entry`] for duplicity's verify; with `compare_data`, regular files
    /// are compared with the local file under the target.
    Verify {
        /// `--compare-data`.
        compare_data: bool,
    },
}

/// Where the final entries go, in index order.
pub trait Sink {
    /// One final entry; `content` produces a regular file's data, of `size` bytes when that
    /// is known before reading it.
    fn add(
        &mut self,
        index: Index,
        meta: &Meta,
        content: Option<Content<'_>>,
        size: Option<u64>,
        host: &mut dyn Host,
    ) -> RestoreResult<()>;
    /// One final regular file whose data is the composed state `state`: placed into its
    /// snapshot's unnamed file when it can be ([`chain::Composed::place`]), else piped.
    fn add_composed(
        &mut self,
        index: Index,
        meta: &Meta,
        state: Composed,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        let len = state.len();
        let mut placed = state.place();
        let size = placed.is_ok().then_some(len);
        self.add(
            index,
            meta,
            Some(&mut |_h, sink| writer::pipe_placed(&mut placed, len, sink)),
            size,
            host,
        )
    }
    /// One final regular file whose data was compared with the local file already (verify):
    /// the result, or the error the comparison met.
    fn add_compared(
        &mut self,
        index: Index,
        meta: &Meta,
        compared: RestoreResult<bool>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        let _ = (index, meta, compared, host);
        Err(RestoreError::Assertion(
            "a compared file given to a restore".into(),
        ))
    }
    /// After the last entry; true when there was any.
    fn finish(&mut self, host: &mut dyn Host) -> RestoreResult<bool>;
}

/// Something duplicity logs during a restore, in the order it logs it.
#[derive(Debug)]
pub enum Event {
    /// `Writing %s of type %s` (Info).
    Writing {
        /// Relative path.
        path: Vec<u8>,
        /// duplicity's type name.
        kind: &'static str,
    },
    /// `Error '%s' processing %s` (Warning): a common error, the walk goes on.
    ErrorProcessing {
        /// The error.
        error: RestoreError,
        /// Relative path, or `.`.
        filename: Vec<u8>,
    },
    /// `Error '%s' patching %s` (Warning): the path's patch sequence could not be applied.
    ErrorPatching {
        /// The error.
        error: RestoreError,
        /// Relative path.
        filename: Vec<u8>,
    },
    /// `Skipping %s because of previous error` (Warning).
    Skipping {
        /// Relative path.
        path: Vec<u8>,
    },
    /// `IGNORED_ERROR: …` (Warning, `--ignore-errors`).
    IgnoredError {
        /// The error.
        error: RestoreError,
    },
    /// `WARNING: %s has negative mtime, treating as 0.`
    NegativeMtime {
        /// Member name.
        name: Vec<u8>,
    },
    /// `WARNING: oldindex %s >= newindex %s`.
    OldIndex {
        /// Previous index.
        old: Index,
        /// This index.
        new: Index,
    },
    /// `Making directory %s` (Debug).
    MakingDirectory {
        /// Full path.
        path: Vec<u8>,
    },
    /// `Deleting tree %s` (Debug).
    DeletingTree {
        /// Full path.
        path: Vec<u8>,
    },
    /// A line the walk of the local tree logs (verify with a [`LocalSide`]), in the walk's own
    /// event type.
    Local(Box<dyn std::any::Any + Send>),
    /// A pair of the verify collation that may differ (verify with [`LocalSide`]):
    /// duplicity's `compare_verbose` judges it. `backup` is the chain's entry and whether its
    /// data equals the local file's; `local` whether the local tree has the path.
    Pair {
        /// Path index.
        index: Index,
        /// The chain's entry, if it has this path.
        backup: Option<(Meta, Option<bool>)>,
        /// Whether the walk of the local tree selected this path.
        local: bool,
    },
    /// Pairs found equal in every attribute `compare_verbose` checks (verify with
    /// [`LocalSide`]), counted at the end.
    Same(u64),
    /// A final entry of the chain (verify mode).
    Entry {
        /// Path index.
        index: Index,
        /// Its attributes.
        meta: Meta,
        /// With `--compare-data`: whether a regular file's data equals the local file's (None
        /// when there is no local regular file to compare with).
        data_equal: Option<bool>,
    },
}

/// The caller's side: volumes on request and the log.
pub trait Host {
    /// The next decoded volume of backup set `set` (its previous volume is finished with), or
    /// None after its last. Errors of a reader it returns must be [`SourceFailed`] when the
    /// caller holds the real exception.
    fn next_volume(&mut self, set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>>;
    /// Something to log.
    fn event(&mut self, event: Event);
    /// Hands a small regular file to a writer thread when the host has them; gives it back
    /// otherwise, for the caller to write itself.
    fn spawn_write(&mut self, job: FileJob) -> RestoreResult<Option<FileJob>> {
        Ok(Some(job))
    }
    /// Runs `op` once every file handed to [`Host::spawn_write`] before it is written (at
    /// once when there are no writer threads).
    fn after_writes(&mut self, op: AfterWrites) -> RestoreResult<()> {
        let mut collector = Collector::default();
        let result = op(&mut collector);
        for e in collector.events {
            self.event(e);
        }
        result
    }
    /// Waits until every file handed to [`Host::spawn_write`] is written.
    fn wait_writes(&mut self) -> RestoreResult<()> {
        Ok(())
    }
}

/// Marker inside an `io::Error` from a volume reader: the caller holds the real error.
#[derive(Debug)]
pub struct SourceFailed;

impl std::fmt::Display for SourceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reading the volume failed")
    }
}

impl std::error::Error for SourceFailed {}

/// Python's `repr()` of a bytes object.
pub fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::from("b");
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}

/// The data of a delta entry read ahead, as far as the volume at hand holds it and about
/// `max` bytes at most.
fn read_ahead(stream: &mut EntryStream, entry: &Entry, host: &mut dyn Host, max: u64) -> DeltaRead {
    if max > 0 && (entry.multivol || entry.size <= max) {
        DeltaRead::ahead(stream, host, usize::try_from(max).unwrap_or(usize::MAX))
    } else {
        DeltaRead::none()
    }
}

/// Restores (or verifies) the chain; true when any entry was found (`Write_ROPaths`' result).
pub fn restore(opts: &RestoreOptions, host: &mut dyn Host) -> RestoreResult<bool> {
    let writers = match &opts.mode {
        Mode::Restore(w) => w.writers,
        Mode::Verify { .. } => 0,
    };
    let mut ordered = Ordered::new(host, writers)?;
    let result = walk(opts, &mut ordered, None);
    ordered.finish(result)
}

/// Verifies the chain (`opts.mode` is [`Mode::Verify`]) against the local tree `local` walks,
/// collated and compared here; true when any entry was found.
pub fn verify_against(
    opts: &RestoreOptions,
    host: &mut dyn Host,
    local: LocalSide,
) -> RestoreResult<bool> {
    walk(opts, host, Some(local))
}

/// The restore walk over the chain's entries, in index order.
fn walk(
    opts: &RestoreOptions,
    host: &mut dyn Host,
    local: Option<LocalSide>,
) -> RestoreResult<bool> {
    let mut owners = Owners::new(opts.numeric_owner);
    let mut streams: Vec<EntryStream> = (0..opts.sets)
        .map(|s| EntryStream::new(s, opts.restrict.clone()))
        .collect();
    let mut heads: Vec<Option<Entry>> = vec![None; opts.sets];
    let mut live = vec![true; opts.sets];
    let mut sink: Box<dyn Sink> = match &opts.mode {
        Mode::Restore(w) => Box::new(TreeWriter::new(opts.target.clone(), w.clone())),
        Mode::Verify { compare_data } => {
            Box::new(Verifier::new(opts.target.clone(), *compare_data, local))
        }
    };
    let writer = sink.as_mut();
    loop {
        for s in 0..opts.sets {
            if heads[s].is_none() && live[s] {
                heads[s] = streams[s].next_entry(&mut owners, host)?;
                live[s] = heads[s].is_some();
            }
        }
        let Some(least) = heads.iter().flatten().map(|e| &e.index).min().cloned() else {
            break;
        };
        let group: Vec<(usize, Entry)> = (0..opts.sets)
            .filter_map(|s| match &heads[s] {
                Some(e) if e.index == least => heads[s].take().map(|e| (s, e)),
                _ => None,
            })
            .collect();
        // normalize_ps: from the last step back to the latest snapshot or deletion
        let mut first = group.len() - 1;
        while first > 0 && group[first].1.difftype == DiffType::Diff {
            first -= 1;
        }
        let seq = &group[first..];
        let (set0, head) = (seq[0].0, &seq[0].1);
        let last = &seq[seq.len() - 1].1;
        let patching_error = |error| Event::ErrorPatching {
            error,
            filename: relative(&last.index),
        };
        if head.difftype == DiffType::Diff {
            host.event(patching_error(RestoreError::Assertion(
                "First patch in sequence was a diff".into(),
            )));
            continue;
        }
        if head.meta.kind != Kind::Reg {
            if seq.len() != 1 {
                host.event(patching_error(RestoreError::Assertion(format!(
                    "Patch sequence isn't regular, but has {} entries",
                    seq.len()
                ))));
            } else if head.meta.kind != Kind::Missing {
                writer.add(least, &head.meta, None, None, host)?;
            }
            continue;
        }
        let meta = last.meta.clone();
        if seq.len() == 1 {
            let size = (!head.multivol).then_some(head.size);
            let stream = &mut streams[set0];
            writer.add(
                least,
                &meta,
                Some(&mut |h, sink| stream.pipe_data(h, sink)),
                size,
                host,
            )?;
            continue;
        }
        let deltas = seq.len() - 1;
        let mut reads: Vec<DeltaRead> = (0..deltas - 1).map(|_| DeltaRead::none()).collect();
        let mut last_read = None;
        let local = match &opts.mode {
            Mode::Verify { compare_data: true } => {
                let path = writer::join(&opts.target, &least);
                let p = Path::new(OsStr::from_bytes(&path));
                std::fs::symlink_metadata(p)
                    .is_ok_and(|m| m.is_file())
                    .then_some(path)
            }
            _ => None,
        };
        if let Some(path) = local {
            // verify: every delta read first, so that the snapshot is read once and compared
            // as it goes by, with nothing spooled
            // at most LAST_DELTA_IN_MEMORY bytes for all of them together
            let mut budget = LAST_DELTA_IN_MEMORY;
            let reads_all: Vec<DeltaRead> = seq[1..]
                .iter()
                .map(|(set, e)| {
                    let r = read_ahead(&mut streams[*set], e, host, budget);
                    budget = budget.saturating_sub(r.data.len() as u64);
                    r
                })
                .collect();
            let plan = match reads_all.iter().all(|r| matches!(r.end, ReadEnd::Complete)) {
                true => {
                    let bytes: Vec<&[u8]> = reads_all.iter().map(|r| &r.data[..]).collect();
                    Plan::new(&opts.tempdir, &bytes, opts.spool_in_memory)
                }
                false => None,
            };
            match plan {
                None => {
                    // as a restore goes on below, with what was read
                    reads = reads_all;
                    last_read = reads.pop();
                }
                Some(plan) => {
                    let opened = std::fs::File::open(Path::new(OsStr::from_bytes(&path)));
                    let stream = &mut streams[set0];
                    let compared =
                        plan.compare(|sink| stream.pipe_data(host, sink), opened.as_ref().ok());
                    let result = match (compared, opened) {
                        (Compared::SnapshotFailed(RestoreError::Aborted), _) => {
                            return Err(RestoreError::Aborted)
                        }
                        (Compared::SnapshotFailed(e), _) => {
                            host.event(patching_error(e));
                            continue;
                        }
                        (Compared::PatchFailed(e), _) if deltas > 1 => {
                            host.event(patching_error(e));
                            continue;
                        }
                        (Compared::PatchFailed(e), _) => Err(e),
                        (_, Err(e)) => Err(RestoreError::os(&e, &path)),
                        (Compared::Data(r), Ok(_)) => r.map_err(|e| RestoreError::os(&e, &path)),
                    };
                    writer.add_compared(least, &meta, result, host)?;
                    continue;
                }
            }
        }
        // a snapshot too large for memory goes where the restored file will be
        let near = match &opts.mode {
            Mode::Restore(_) => Some(Path::new(OsStr::from_bytes(&opts.target))),
            Mode::Verify { .. } => None,
        };
        let mut basis = match before_last(
            seq,
            &mut streams,
            &mut reads,
            host,
            &opts.tempdir,
            near,
            opts.spool_in_memory,
        ) {
            Ok(b) => b,
            Err(RestoreError::Aborted) => return Err(RestoreError::Aborted),
            Err(e) => {
                host.event(patching_error(e));
                continue;
            }
        };
        let stream = &mut streams[seq[seq.len() - 1].0];
        // the last delta read first, as far as it is in the volume at hand: when it is all
        // there and applies, the file's final state is known before it is written
        let mut ahead =
            last_read.unwrap_or_else(|| read_ahead(stream, last, host, LAST_DELTA_IN_MEMORY));
        if !matches!(ahead.end, ReadEnd::Complete) || basis.compose_bytes(&ahead.data).is_err() {
            // as the step-by-step patch goes: the output up to any damage, then the error
            writer.add(
                least,
                &meta,
                Some(&mut |h, sink| {
                    apply_delta(&mut basis, &mut |b| ahead.read(b, stream, h), sink)
                }),
                None,
                host,
            )?;
            continue;
        }
        writer.add_composed(least, &meta, basis, host)?;
    }
    writer.finish(host)
}

#[cfg(test)]
mod tests;
