//! The local tree of a verify walked by the backup engine's walk ([`Walker`]): the restore
//! engine's [`LocalWalk`], so that the verify collates and compares without duplicity's
//! `Select` loop. The walk's log lines go to the restore host as boxed [`super::Event`]s.

use super::select::Selection;
use super::source::FileKind;
use super::walk::Walker;
use super::Source as _;
use crate::restore::entry::Kind;
use crate::restore::{Event, Host, LocalAttrs, LocalPath, LocalWalk, RestoreResult};

/// `Select.Iterate` of the local tree, for verify.
pub struct LocalTree {
    walker: Walker,
    events: Vec<super::Event>,
}

impl LocalTree {
    /// The walk of the tree at `root` with `selection` (`--copy-links`: `stat` instead of
    /// `lstat`; `debug`: with `Select`'s debug lines).
    pub fn new(root: Vec<u8>, selection: Selection, copy_links: bool, debug: bool) -> Self {
        LocalTree {
            walker: Walker::new(root, copy_links, debug).with_selection(selection),
            events: Vec::new(),
        }
    }
}

fn kind(k: FileKind) -> Kind {
    match k {
        FileKind::Reg => Kind::Reg,
        FileKind::Dir => Kind::Dir,
        FileKind::Sym(t) => Kind::Sym(t),
        FileKind::Fifo => Kind::Fifo,
        FileKind::Chr(a, b) => Kind::Chr(i128::from(a), i128::from(b)),
        FileKind::Blk(a, b) => Kind::Blk(i128::from(a), i128::from(b)),
    }
}

impl LocalWalk for LocalTree {
    fn next(&mut self, host: &mut dyn Host) -> RestoreResult<Option<LocalPath>> {
        let found = self.walker.next(&mut self.events);
        for e in self.events.drain(..) {
            host.event(Event::Local(Box::new(e)));
        }
        Ok(found?.map(|f| LocalPath {
            index: f.index,
            attrs: f.stat.map(|st| LocalAttrs {
                kind: kind(st.kind),
                mode: st.mode,
                uid: st.uid,
                gid: st.gid,
                mtime_float: st.mtime_float,
            }),
        }))
    }
}
