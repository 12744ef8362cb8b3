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

/// Reports entries instead of writing them.
pub struct Verifier {
    base: Vec<u8>,
    compare_data: bool,
    found: bool,
}

impl Verifier {
    /// Entries compared against the tree at `base`; data too with `compare_data`.
    pub fn new(base: Vec<u8>, compare_data: bool) -> Self {
        Verifier {
            base,
            compare_data,
            found: false,
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

impl Sink for Verifier {
    fn add(
        &mut self,
        index: Index,
        meta: &Meta,
        content: Option<Content<'_>>,
        _size: Option<u64>,
        host: &mut dyn Host,
    ) -> RestoreResult<()> {
        self.found = true;
        let mut data_equal = None;
        if let (true, Kind::Reg, Some(content)) = (self.compare_data, &meta.kind, content) {
            let path = join(&self.base, &index);
            let p = Path::new(OsStr::from_bytes(&path));
            let is_file = std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
            if is_file {
                let mut file = File::open(p).map_err(|e| RestoreError::os(&e, &path))?;
                data_equal = Some(same_data(&mut file, &path, content, host)?);
            }
        }
        host.event(Event::Entry {
            index,
            meta: meta.clone(),
            data_equal,
        });
        Ok(())
    }

    fn finish(&mut self, _host: &mut dyn Host) -> RestoreResult<bool> {
        Ok(self.found)
    }
}
