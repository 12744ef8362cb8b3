//! The previous backups' signatures as one stream of paths: each signature tar read as
//! `diffdir.sigtar2path_iter` reads it, and the tars of a chain combined as
//! `combine_path_iters` combines them (per index, the newest tar's entry wins).

use std::io::Read;

use super::{BackupError, Event, Index};
use crate::restore::entry::{meta_of, Meta, Owners};
use crate::restore::tarstream::SetStream;
use crate::restore::{self, Host, RestoreResult};

/// How a signature tar records a path (its member name prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigType {
    /// `signature/`: a regular file and its librsync signature.
    Signature,
    /// `snapshot/`: any other entry type.
    Snapshot,
    /// `deleted/`: the path is gone.
    Deleted,
}

impl SigType {
    /// duplicity's `difftype` string.
    pub fn name(self) -> &'static str {
        match self {
            SigType::Signature => "signature",
            SigType::Snapshot => "snapshot",
            SigType::Deleted => "deleted",
        }
    }
}

/// One path of the combined signatures.
#[derive(Debug, Clone)]
pub struct SigEntry {
    /// Path index.
    pub index: Index,
    /// Prefix of its member.
    pub sigtype: SigType,
    /// Attributes (`init_from_tarinfo`); None for `deleted/`.
    pub meta: Option<Meta>,
    /// Member data size (`st_size`).
    pub size: u64,
}

/// The one volume of a signature tar, and what reading it logs.
struct OneTar {
    source: Option<Box<dyn Read + Send>>,
    events: Vec<restore::Event>,
}

impl Host for OneTar {
    fn next_volume(&mut self, _set: usize) -> RestoreResult<Option<Box<dyn Read + Send>>> {
        Ok(self.source.take())
    }

    fn event(&mut self, event: restore::Event) {
        self.events.push(event);
    }
}

struct Tar {
    members: SetStream,
    host: OneTar,
    current: Option<SigEntry>,
}

impl Tar {
    /// `sigtar2path_iter`'s next path.
    fn advance(&mut self, owners: &mut Owners, events: &mut Vec<Event>) -> Result<(), BackupError> {
        self.current = None;
        let member = self.members.next_member(&mut self.host);
        self.forward(events);
        let Some(member) = member? else {
            return Ok(());
        };
        let mut tiname = member.name.clone();
        if member.is_dir() && !tiname.ends_with(b"/") {
            tiname.push(b'/');
        }
        let prefixes: [(&[u8], SigType); 3] = [
            (b"signature/", SigType::Signature),
            (b"snapshot/", SigType::Snapshot),
            (b"deleted/", SigType::Deleted),
        ];
        let Some((prefix, sigtype)) = prefixes.iter().find(|(p, _)| tiname.starts_with(p)) else {
            return Err(BackupError::BadSigName(tiname));
        };
        let name = &tiname[prefix.len()..];
        let mut index: Index = name.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        if index.last().is_some_and(Vec::is_empty) {
            index.pop();
        }
        let meta = match sigtype {
            SigType::Deleted => None,
            _ => {
                let meta = meta_of(&member, owners, &mut self.host);
                self.forward(events);
                Some(meta?)
            }
        };
        self.current = Some(SigEntry {
            index,
            sigtype: *sigtype,
            meta,
            size: member.size,
        });
        Ok(())
    }

    fn forward(&mut self, events: &mut Vec<Event>) {
        for e in self.host.events.drain(..) {
            if let restore::Event::NegativeMtime { name } = e {
                events.push(Event::NegativeMtime(name));
            }
        }
    }
}

/// The combined signature stream of a chain.
pub struct SigChain {
    /// Newest first (`combine_path_iters` reverses the list).
    tars: Vec<Tar>,
    owners: Owners,
    started: bool,
    /// Index yielded last: the tars still positioned on it move on at the next call.
    yielded: Option<Index>,
}

/// Read buffer of the full backup's signature tar.
const FULL_SIG_BUFFER: usize = 1 << 20;
/// Read buffer of each incremental's signature tar.
const INCREMENTAL_SIG_BUFFER: usize = 64 << 10;

impl SigChain {
    /// The signatures of `sources` (oldest first, as duplicity lists a chain's files);
    /// `numeric_owner` is `--numeric-owner`.
    pub fn new(sources: Vec<Box<dyn Read + Send>>, numeric_owner: bool) -> Self {
        // The full set's signatures hold every entry and get the large buffer; the
        // incrementals' hold the changed entries only, and a long chain has many of them.
        let tars = sources
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, s)| Tar {
                members: SetStream::new(0).with_buffer(if i == 0 {
                    FULL_SIG_BUFFER
                } else {
                    INCREMENTAL_SIG_BUFFER
                }),
                host: OneTar {
                    source: Some(s),
                    events: Vec::new(),
                },
                current: None,
            })
            .collect();
        SigChain {
            tars,
            owners: Owners::new(numeric_owner),
            started: false,
            yielded: None,
        }
    }

    /// The next combined path and the tar it comes from, or None after the last.
    pub fn next(
        &mut self,
        events: &mut Vec<Event>,
    ) -> Result<Option<(SigEntry, usize)>, BackupError> {
        if !self.started {
            self.started = true;
            for tar in &mut self.tars {
                tar.advance(&mut self.owners, events)?;
            }
        } else if let Some(done) = self.yielded.take() {
            for tar in &mut self.tars {
                if tar.current.as_ref().is_some_and(|c| c.index == done) {
                    tar.advance(&mut self.owners, events)?;
                }
            }
        }
        let mut best: Option<usize> = None;
        for (i, tar) in self.tars.iter().enumerate() {
            let Some(c) = &tar.current else { continue };
            let better = match best {
                None => true,
                Some(b) => self.tars[b]
                    .current
                    .as_ref()
                    .is_some_and(|bc| c.index < bc.index),
            };
            if better {
                best = Some(i);
            }
        }
        let Some(b) = best else {
            return Ok(None);
        };
        let entry = self.tars[b].current.clone();
        Ok(entry.map(|e| {
            self.yielded = Some(e.index.clone());
            (e, b)
        }))
    }

    /// The data of the entry last returned from tar `tar` (its signature), read whole.
    pub fn read_data(&mut self, tar: usize, size: u64) -> Result<Vec<u8>, BackupError> {
        let t = &mut self.tars[tar];
        let mut out = Vec::with_capacity(size.min(1 << 26) as usize);
        t.members.pipe_data(&mut |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }
}
