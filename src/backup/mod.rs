//! The backup engine's scan: what duplicity's `diffdir.get_delta_iter` does with the source
//! tree and the previous signatures before any data is read. The tree is walked as
//! `selection.Select.Iterate` walks it without selection functions ([`walk`]), the previous
//! signature tars are read and combined ([`sigchain`]), both are collated by index as
//! `collate2iters` does and each pair is compared as `ROPath.__eq__` compares ([`compare`]).
//! Unchanged paths are only counted; every other pair (new, changed, deleted) goes back to
//! the caller, which makes its delta, logs it and writes its signature with duplicity's own
//! code, so that the archive and the log stay stock's.

pub mod compare;
pub mod local_tree;
pub mod select;
pub mod sigchain;
pub mod source;
pub mod walk;

use std::io::Read;

use crate::restore::entry::Kind;
use crate::restore::RestoreError;
use sigchain::{SigChain, SigEntry, SigType};
use walk::{Found, Walker};

/// A path below the backup root, one component per element (`()` is the root).
pub type Index = Vec<Vec<u8>>;

/// What stops a scan; the bindings raise what duplicity raises in the same place.
#[derive(Debug)]
pub enum BackupError {
    /// Reading a signature tar or the source tree (`OSError`, `PathException`, the source's
    /// own exception).
    Restore(RestoreError),
    /// `DiffDirException("Bad tarinfo name …")`: a signature member with an unknown prefix.
    BadSigName(Vec<u8>),
}

impl From<RestoreError> for BackupError {
    fn from(e: RestoreError) -> Self {
        BackupError::Restore(e)
    }
}

/// Something duplicity logs during the scan, or a pair for the caller, in duplicity's order.
#[derive(Debug)]
pub enum Event {
    /// `Selection: examining path %s` (Debug), with the full name.
    Examining(Vec<u8>),
    /// `Selection:     + no selection functions found. Including` (Debug).
    NoSelectionFunctions,
    /// `Selection:     result: %s from function: %s` (Debug): function number and result.
    SelectionResult(usize, Option<u8>),
    /// `Selection:     - excluding file` / `+ including file` / `? scanning directory for
    /// matches` (Debug) for 0, 1, 2.
    SelectionVerdict(u8),
    /// `Error accessing possibly locked file %s` (Warning, `cannot_read`) from
    /// `--exclude-if-present` on a directory it cannot list; one more error.
    PresentUnreadable(Vec<u8>),
    /// `Selecting %s` (Debug).
    Selecting(Vec<u8>),
    /// `Selecting %s` (log level 6): a scanned directory, yielded before a path inside it.
    SelectingScanned(Vec<u8>),
    /// `Skipping socket %s` (Info).
    SkippingSocket(Vec<u8>),
    /// `Error initializing file %s` (Warning).
    ErrorInitializing(Vec<u8>),
    /// `Error accessing possibly locked file %s` (Warning, `cannot_stat`).
    CannotStat(Vec<u8>),
    /// `Error accessing possibly locked file %s` (Warning, `cannot_read`); one more error.
    CannotRead(Vec<u8>),
    /// `Error listing directory %s` (Warning).
    ErrorListing(Vec<u8>),
    /// `WARNING: base %s doesn't exist, continuing`.
    BaseMissing(Vec<u8>),
    /// `WARNING: %s has negative mtime, treating as 0.` (a signature member name).
    NegativeMtime(Vec<u8>),
    /// `Comparing %s and %s` (Debug): the indexes of the pair.
    Comparing(Option<Index>, Option<Index>),
    /// A pair that is not unchanged: the new path (None when the walk did not yield it) and
    /// the signature entry with, for a changed regular file, its signature data.
    Pair {
        /// The pair's index.
        index: Index,
        /// Whether the walk yielded the path (it may have vanished since).
        new: bool,
        /// The signature side.
        sig: Option<(SigEntry, Option<Vec<u8>>)>,
    },
}

/// Where the paths of the source tree come from, in `Select`'s order.
pub trait Source: Send {
    /// The next selected path, or None after the last.
    fn next(&mut self, events: &mut Vec<Event>) -> Result<Option<Found>, RestoreError>;
    /// Whether asking for a path runs code that logs on its own (duplicity's selection): the
    /// scan then hands over its events first, so that the log keeps duplicity's order.
    fn logs_itself(&self) -> bool {
        false
    }
}

/// Totals of the paths found unchanged (`StatsDeltaProcess.add_unchanged_file`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unchanged {
    /// Paths.
    pub files: u64,
    /// Their `st_size` sum.
    pub size: u64,
}

/// What the scan needs to know.
#[derive(Debug)]
pub struct ScanOptions {
    /// The source directory (`Path.base`).
    pub root: Vec<u8>,
    /// `--copy-links`.
    pub copy_links: bool,
    /// `--numeric-owner`.
    pub numeric_owner: bool,
    /// Whether the debug lines are wanted.
    pub debug: bool,
    /// The selection functions (none: every path).
    pub selection: select::Selection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collate {
    Both,
    /// The signatures ended: the rest of the walk.
    DrainNew,
    /// The walk ended: the rest of the signatures.
    DrainSig,
    Done,
}

/// A pair of `collate2iters`: the walk's path and the signature entry with its tar.
type Collated = (Option<Found>, Option<(SigEntry, usize)>);

/// The scan of one backup: pairs out, in index order.
pub struct Scanner {
    walk: Box<dyn Source>,
    sigs: SigChain,
    new: Option<Found>,
    sig: Option<(SigEntry, usize)>,
    state: Collate,
    debug: bool,
    unchanged: Unchanged,
    /// Set when `collate` stopped to let the events out first.
    flush: bool,
}

/// What `next_pair` found.
enum Step {
    Pair(Box<Collated>),
    Flush,
    End,
}

impl Scanner {
    /// A scan of `options.root` against the signature tars `sigs` (oldest first).
    pub fn new(mut options: ScanOptions, sigs: Vec<Box<dyn Read + Send>>) -> Self {
        let walk = Walker::new(options.root.clone(), options.copy_links, options.debug)
            .with_selection(std::mem::take(&mut options.selection));
        Self::with_source(options, sigs, Box::new(walk))
    }

    /// A scan of the paths `source` yields against the signature tars `sigs`.
    pub fn with_source(
        options: ScanOptions,
        sigs: Vec<Box<dyn Read + Send>>,
        source: Box<dyn Source>,
    ) -> Self {
        Scanner {
            walk: source,
            sigs: SigChain::new(sigs, options.numeric_owner),
            new: None,
            sig: None,
            state: Collate::Both,
            debug: options.debug,
            unchanged: Unchanged::default(),
            flush: false,
        }
    }

    /// The unchanged totals so far, reset.
    pub fn take_unchanged(&mut self) -> Unchanged {
        std::mem::take(&mut self.unchanged)
    }

    /// `collate2iters`'s next pair, or a stop to let the events out first when the walk logs
    /// on its own.
    fn next_pair(&mut self, events: &mut Vec<Event>) -> Result<Step, BackupError> {
        match self.collate(events)? {
            Some(pair) => Ok(Step::Pair(Box::new(pair))),
            None if self.flush => {
                self.flush = false;
                Ok(Step::Flush)
            }
            None => Ok(Step::End),
        }
    }

    /// `collate2iters`: the next pair, pulling from the walk and the signatures in its order
    /// (None also when stopping for [`Step::Flush`]).
    fn collate(&mut self, events: &mut Vec<Event>) -> Result<Option<Collated>, BackupError> {
        loop {
            let pulls_walk = self.state == Collate::DrainNew
                || (self.state == Collate::Both && self.new.is_none());
            if pulls_walk && !events.is_empty() && self.walk.logs_itself() {
                self.flush = true;
                return Ok(None);
            }
            match self.state {
                Collate::Done => return Ok(None),
                Collate::DrainNew => {
                    return match self.walk.next(events)? {
                        Some(f) => Ok(Some((Some(f), None))),
                        None => {
                            self.state = Collate::Done;
                            Ok(None)
                        }
                    }
                }
                Collate::DrainSig => {
                    return match self.sigs.next(events)? {
                        Some(s) => Ok(Some((None, Some(s)))),
                        None => {
                            self.state = Collate::Done;
                            Ok(None)
                        }
                    }
                }
                Collate::Both => {}
            }
            if self.new.is_none() {
                match self.walk.next(events)? {
                    Some(f) => self.new = Some(f),
                    None => {
                        self.state = Collate::DrainSig;
                        if let Some(s) = self.sig.take() {
                            return Ok(Some((None, Some(s))));
                        }
                        continue;
                    }
                }
            }
            if self.sig.is_none() {
                match self.sigs.next(events)? {
                    Some(s) => self.sig = Some(s),
                    None => {
                        self.state = Collate::DrainNew;
                        if let Some(f) = self.new.take() {
                            return Ok(Some((Some(f), None)));
                        }
                        continue;
                    }
                }
            }
            let (Some(new), Some(sig)) = (&self.new, &self.sig) else {
                continue;
            };
            return Ok(Some(match new.index.cmp(&sig.0.index) {
                std::cmp::Ordering::Less => (self.new.take(), None),
                std::cmp::Ordering::Equal => (self.new.take(), self.sig.take()),
                std::cmp::Ordering::Greater => (None, self.sig.take()),
            }));
        }
    }

    /// Runs until at least `max` events are ready or the scan ends; false after the last pair.
    pub fn fill(&mut self, events: &mut Vec<Event>, max: usize) -> Result<bool, BackupError> {
        while events.len() < max {
            let (new, sig) = match self.next_pair(events)? {
                Step::Pair(p) => *p,
                Step::Flush => return Ok(true),
                Step::End => return Ok(false),
            };
            if self.debug {
                events.push(Event::Comparing(
                    new.as_ref().map(|n| n.index.clone()),
                    sig.as_ref().map(|s| s.0.index.clone()),
                ));
            }
            let new_stat = new.as_ref().and_then(|n| n.stat.as_ref());
            let Some(stat) = new_stat else {
                // gone (or never here): a deletion when the signatures had it
                let Some((entry, _)) = sig else { continue };
                if entry.sigtype != SigType::Deleted && !entry.index.is_empty() {
                    events.push(Event::Pair {
                        index: entry.index.clone(),
                        new: new.is_some(),
                        sig: Some((entry, None)),
                    });
                }
                continue;
            };
            let same = sig
                .as_ref()
                .is_some_and(|(e, _)| compare::unchanged(stat, e));
            if same {
                self.unchanged.files += 1;
                self.unchanged.size += stat.size;
                continue;
            }
            let new_is_reg = matches!(stat.kind, source::FileKind::Reg);
            let index = new.map(|n| n.index).unwrap_or_default();
            let sig = match sig {
                None => None,
                Some((entry, tar)) => {
                    let wants_data = entry.sigtype == SigType::Signature
                        && new_is_reg
                        && entry.meta.as_ref().is_some_and(|m| m.kind == Kind::Reg);
                    let data = match wants_data {
                        true => Some(self.sigs.read_data(tar, entry.size)?),
                        false => None,
                    };
                    Some((entry, data))
                }
            };
            events.push(Event::Pair {
                index,
                new: true,
                sig,
            });
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
