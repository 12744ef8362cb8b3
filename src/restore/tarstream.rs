//! The tar members of one backup set, read across its volumes as CPython's `tarfile` reads
//! them for duplicity (`patchdir.TarFile_FromFileobjs`): each volume is its own archive; a
//! header that cannot be read ends that volume's archive; a volume without a single member
//! (empty, or unreadable from its first header, which `util.make_tarfile` turns into an empty
//! `FakeTarFile`) ends the backup set's stream; PAX (`x`, `g`) and GNU long name (`L`, `K`)
//! headers apply to the member that follows, the earliest one winning; only regular members
//! and unknown types carry data.
//!
//! The `tar` crate reads the same format, but its errors differ from `tarfile`'s at every
//! damaged header and its entry iterator borrows its archive, while duplicity's restore needs
//! one owned stream per backup set advancing in lockstep with the others.

use std::io::{BufRead, BufReader, ErrorKind, Read};

use super::error::{RestoreError, RestoreResult};
use super::{Host, SourceFailed};
use crate::tar::parse::{nts, parse_full, FullHeader, HeaderProblem};
use crate::tar::BLOCKSIZE;

/// Bytes buffered from a volume (unless [`SetStream::with_buffer`] says otherwise).
const CHUNK: usize = 1 << 20;

/// One tar member's header, after PAX and GNU long-name processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member name (PAX `path`, GNU long name, or ustar prefix + name).
    pub name: Vec<u8>,
    /// Type flag byte.
    pub typeflag: u8,
    /// Mode field.
    pub mode: i128,
    /// Owner id.
    pub uid: i128,
    /// Group id.
    pub gid: i128,
    /// Data size.
    pub size: u64,
    /// Modification time in whole seconds.
    pub mtime: i128,
    /// Link target.
    pub linkname: Vec<u8>,
    /// Owner name.
    pub uname: Vec<u8>,
    /// Group name.
    pub gname: Vec<u8>,
    /// Device major number.
    pub devmajor: i128,
    /// Device minor number.
    pub devminor: i128,
}

impl Member {
    /// Whether data blocks follow the header (`isreg()` or a type `tarfile` does not know).
    pub fn has_data(&self) -> bool {
        matches!(self.typeflag, b'0' | 0 | b'7' | b'S')
            || !matches!(
                self.typeflag,
                b'1' | b'2' | b'3' | b'4' | b'5' | b'6' | b'L' | b'K' | b'x' | b'g' | b'X'
            )
    }

    /// Whether `tarfile` sees a directory.
    pub fn is_dir(&self) -> bool {
        self.typeflag == b'5'
    }

    fn from_header(h: &FullHeader<'_>) -> RestoreResult<Self> {
        let mut typeflag = h.typeflag;
        let mut name = h.name.to_vec();
        if typeflag == 0 && name.ends_with(b"/") {
            typeflag = b'5';
        }
        if typeflag == b'5' {
            rstrip_slashes(&mut name);
        }
        if !h.prefix.is_empty() && !matches!(typeflag, b'L' | b'K' | b'S') {
            let mut full = h.prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
        let size = u64::try_from(h.size)
            .map_err(|_| RestoreError::TarRead(format!("negative member size {}", h.size)))?;
        Ok(Member {
            name,
            typeflag,
            mode: h.mode,
            uid: h.uid,
            gid: h.gid,
            size,
            mtime: h.mtime,
            linkname: h.linkname.to_vec(),
            uname: h.uname.to_vec(),
            gname: h.gname.to_vec(),
            devmajor: h.devmajor,
            devminor: h.devminor,
        })
    }
}

fn rstrip_slashes(name: &mut Vec<u8>) {
    while name.last() == Some(&b'/') {
        name.pop();
    }
}

/// Rounds a data size up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCKSIZE as u64) * BLOCKSIZE as u64
}

/// One volume's decoded bytes, read through a buffer (of [`CHUNK`] bytes by default).
struct Volume {
    reader: BufReader<Box<dyn Read + Send>>,
    /// Bytes consumed so far (the `tarfile` offset).
    offset: u64,
}

fn read_error(e: std::io::Error) -> RestoreError {
    if e.get_ref().is_some_and(|inner| inner.is::<SourceFailed>()) {
        RestoreError::Source
    } else {
        RestoreError::Os {
            errno: e.raw_os_error(),
            message: e.to_string(),
            filename: None,
            filename2: None,
        }
    }
}

impl Volume {
    fn new(reader: Box<dyn Read + Send>, buffer: usize) -> Self {
        Volume {
            reader: BufReader::with_capacity(buffer, reader),
            offset: 0,
        }
    }

    /// Copies up to `out.len()` bytes; fewer only at the end of the volume.
    fn read(&mut self, out: &mut [u8]) -> RestoreResult<usize> {
        let mut got = 0;
        while got < out.len() {
            match self.reader.read(&mut out[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        }
        self.offset += got as u64;
        Ok(got)
    }

    /// Bytes available now (at least one unless the volume has ended).
    fn available(&mut self, max: u64) -> RestoreResult<&[u8]> {
        let buf = loop {
            match self.reader.fill_buf() {
                Ok(_) => break self.reader.buffer(),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        };
        let n = buf.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        Ok(&buf[..n])
    }

    fn consume(&mut self, n: usize) {
        self.reader.consume(n);
        self.offset += n as u64;
    }

    /// Skips up to `n` bytes; returns how many.
    fn skip(&mut self, n: u64) -> RestoreResult<u64> {
        let mut left = n;
        while left > 0 {
            let take = self.available(left)?.len();
            if take == 0 {
                break;
            }
            self.consume(take);
            left -= take as u64;
        }
        Ok(n - left)
    }

    fn block(&mut self) -> RestoreResult<Vec<u8>> {
        let mut b = vec![0u8; BLOCKSIZE];
        let n = self.read(&mut b)?;
        b.truncate(n);
        Ok(b)
    }

    /// The data of an extended header, all its blocks read (memory grows with the data read,
    /// not with the size the header claims).
    fn extension_data(&mut self, size: u64) -> RestoreResult<Vec<u8>> {
        if size > 64 << 20 {
            return Err(RestoreError::TarRead(format!(
                "extended header of {size} bytes"
            )));
        }
        let mut data = Vec::new();
        let mut left = size as usize;
        let mut piece = [0u8; 8192];
        while left > 0 {
            let want = left.min(piece.len());
            let got = self.read(&mut piece[..want])?;
            data.extend_from_slice(&piece[..got]);
            if got < want {
                break;
            }
            left -= got;
        }
        self.skip(padded(size) - size)?;
        Ok(data)
    }
}

/// PAX records (`"%d %s=%s\n"`) as `tarfile._proc_pax` reads them; None if malformed.
fn pax_records(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || rest.get(digits) != Some(&b' ') {
            break; // the regular expression no longer matches: the records end here
        }
        let length: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        let key_start = digits + 1;
        let eq = rest[key_start..].iter().position(|&b| b == b'=')? + key_start;
        if eq == key_start || length == 0 {
            return None;
        }
        let value_end = length.checked_sub(1)?;
        if value_end < eq + 1 || value_end > rest.len() {
            return None;
        }
        out.push((
            rest[key_start..eq].to_vec(),
            rest[eq + 1..value_end].to_vec(),
        ));
        pos += length;
    }
    Some(out)
}

/// Python's `int(text)` for PAX numbers (spaces, sign and underscores allowed); 0 if invalid.
fn pax_int(v: &[u8]) -> i128 {
    let s = String::from_utf8_lossy(v);
    s.trim().replace('_', "").parse::<i128>().unwrap_or(0)
}

/// `int(float(text))` for the PAX mtime; 0 if invalid.
fn pax_time(v: &[u8]) -> i128 {
    let s = String::from_utf8_lossy(v);
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() => f.trunc() as i128,
        _ => 0,
    }
}

/// What an extended header changes on the member that follows.
enum Extension {
    Pax(Vec<(Vec<u8>, Vec<u8>)>),
    LongName(Vec<u8>),
    LongLink(Vec<u8>),
}

fn apply(member: &mut Member, ext: &Extension) -> RestoreResult<()> {
    match ext {
        Extension::LongName(n) => {
            member.name = nts(n).to_vec();
            if member.is_dir() {
                rstrip_slashes(&mut member.name);
            }
        }
        Extension::LongLink(n) => member.linkname = nts(n).to_vec(),
        Extension::Pax(records) => {
            for (k, v) in records {
                match k.as_slice() {
                    b"path" => {
                        member.name = v.clone();
                        rstrip_slashes(&mut member.name);
                    }
                    b"linkpath" => member.linkname = v.clone(),
                    b"size" => {
                        member.size = u64::try_from(pax_int(v)).map_err(|_| {
                            RestoreError::TarRead("negative size in a PAX header".into())
                        })?
                    }
                    b"mtime" => member.mtime = pax_time(v),
                    b"uid" => member.uid = pax_int(v),
                    b"gid" => member.gid = pax_int(v),
                    b"uname" => member.uname = v.clone(),
                    b"gname" => member.gname = v.clone(),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// The members of one backup set, volume after volume (a volume with no member ends the set).
pub struct SetStream {
    set: usize,
    vol: Option<Volume>,
    /// Read buffer of each volume.
    buffer: usize,
    /// Members read from the current volume.
    vol_members: u64,
    done: bool,
    data_left: u64,
    pad_left: u64,
    global_pax: Vec<(Vec<u8>, Vec<u8>)>,
    /// The next member (or the error reading it), read ahead by [`SetStream::member_here`].
    peeked: Option<RestoreResult<Member>>,
}

impl SetStream {
    /// The stream of backup set number `set` (0 is the full backup).
    pub fn new(set: usize) -> Self {
        SetStream {
            set,
            buffer: CHUNK,
            vol: None,
            vol_members: 0,
            done: false,
            data_left: 0,
            pad_left: 0,
            global_pax: Vec::new(),
            peeked: None,
        }
    }

    /// The same stream reading its volumes through buffers of `bytes` (each is filled, so
    /// resident, in full).
    pub fn with_buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes.max(crate::tar::BLOCKSIZE);
        self
    }

    /// The next member, the unread data of the current one skipped; None after the last volume.
    pub fn next_member(&mut self, host: &mut dyn Host) -> RestoreResult<Option<Member>> {
        if let Some(peeked) = self.peeked.take() {
            return peeked.map(Some);
        }
        if let Some(v) = self.vol.as_mut() {
            v.skip(self.data_left + self.pad_left)?;
        }
        self.data_left = 0;
        self.pad_left = 0;
        loop {
            if self.done {
                return Ok(None);
            }
            if self.vol.is_none() {
                match host.next_volume(self.set)? {
                    Some(r) => {
                        self.vol = Some(Volume::new(r, self.buffer));
                        self.vol_members = 0;
                        self.global_pax.clear();
                    }
                    None => {
                        self.done = true;
                        return Ok(None);
                    }
                }
            }
            let Some(vol) = self.vol.as_mut() else {
                continue;
            };
            let read = read_member(vol, &mut self.global_pax);
            match read {
                Ok(Some(m)) => {
                    self.started(&m);
                    return Ok(Some(m));
                }
                // A volume without a single member (empty, or unreadable from its first
                // header: `util.make_tarfile` gives duplicity an empty `FakeTarFile` for the
                // `ReadError`) ends the set, as `TarFile_FromFileobjs` stops there.
                Ok(None) | Err(RestoreError::TarRead(_)) if self.vol_members == 0 => {
                    self.vol = None;
                    self.done = true;
                    return Ok(None);
                }
                Ok(None) => self.vol = None,
                Err(e) => return Err(e),
            }
        }
    }

    /// Counts member `m` as read from the current volume, its data and padding ahead.
    fn started(&mut self, m: &Member) {
        self.vol_members += 1;
        if m.has_data() {
            self.data_left = m.size;
            self.pad_left = padded(m.size) - m.size;
        }
    }

    /// Whether [`SetStream::next_member`] can give the next member without a volume from the
    /// host: the member is read ahead (the unread data of the current one skipped), and so
    /// is an error reading it, which `next_member` then returns.
    pub fn member_here(&mut self) -> bool {
        if self.peeked.is_some() || self.done {
            return true;
        }
        let Some(vol) = self.vol.as_mut() else {
            return false;
        };
        let skip = vol.skip(self.data_left + self.pad_left);
        self.data_left = 0;
        self.pad_left = 0;
        let read = skip.and_then(|_| read_member(vol, &mut self.global_pax));
        match read {
            Ok(Some(m)) => {
                self.started(&m);
                self.peeked = Some(Ok(m));
                true
            }
            // as in next_member: the end of the set
            Ok(None) | Err(RestoreError::TarRead(_)) if self.vol_members == 0 => {
                self.vol = None;
                self.done = true;
                true
            }
            Ok(None) => {
                self.vol = None;
                false
            }
            Err(e) => {
                self.peeked = Some(Err(e));
                false
            }
        }
    }

    /// Data of the current member; 0 at its end. Data cut short is `ReadError`, as in `tarfile`.
    pub fn read_data(&mut self, out: &mut [u8]) -> RestoreResult<usize> {
        if self.data_left == 0 || out.is_empty() {
            return Ok(0);
        }
        let Some(vol) = self.vol.as_mut() else {
            return Err(RestoreError::TarRead("unexpected end of data".into()));
        };
        let want = (out.len() as u64).min(self.data_left) as usize;
        let got = vol.read(&mut out[..want])?;
        if got < want {
            return Err(RestoreError::TarRead("unexpected end of data".into()));
        }
        self.data_left -= got as u64;
        Ok(got)
    }

    /// Hands the current member's data to `sink` in the pieces already in memory.
    pub fn pipe_data(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> RestoreResult<()>,
    ) -> RestoreResult<()> {
        while self.data_left > 0 {
            let Some(vol) = self.vol.as_mut() else {
                return Err(RestoreError::TarRead("unexpected end of data".into()));
            };
            let piece = vol.available(self.data_left)?;
            if piece.is_empty() {
                return Err(RestoreError::TarRead("unexpected end of data".into()));
            }
            let n = piece.len();
            sink(piece)?;
            vol.consume(n);
            self.data_left -= n as u64;
        }
        Ok(())
    }
}

/// CPython's `TarFile.next()` on one volume: a member, or None where the archive ends.
fn read_member(
    vol: &mut Volume,
    global_pax: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> RestoreResult<Option<Member>> {
    let at_start = vol.offset == 0;
    let block = vol.block()?;
    let header = match parse_full(&block) {
        Ok(h) => h,
        Err(HeaderProblem::EndOfArchive) => return Ok(None),
        Err(HeaderProblem::Empty) if at_start => {
            return Err(RestoreError::TarRead("empty file".into()))
        }
        Err(p) if at_start => return Err(RestoreError::TarRead(p.message().into())),
        Err(_) => return Ok(None),
    };
    let mut member = Member::from_header(&header)?;
    let mut extensions = Vec::new();
    loop {
        let ext = match member.typeflag {
            b'x' | b'X' | b'g' => {
                let data = vol.extension_data(member.size)?;
                let Some(records) = pax_records(&data) else {
                    if at_start && extensions.is_empty() {
                        return Err(RestoreError::TarRead("invalid header".into()));
                    }
                    return Ok(None);
                };
                if member.typeflag == b'g' {
                    for (k, v) in records {
                        global_pax.retain(|(gk, _)| *gk != k);
                        global_pax.push((k, v));
                    }
                    None
                } else {
                    let mut merged = global_pax.clone();
                    for (k, v) in records {
                        merged.retain(|(gk, _)| *gk != k);
                        merged.push((k, v));
                    }
                    Some(Extension::Pax(merged))
                }
            }
            b'L' => Some(Extension::LongName(vol.extension_data(member.size)?)),
            b'K' => Some(Extension::LongLink(vol.extension_data(member.size)?)),
            _ => break,
        };
        extensions.extend(ext);
        let block = vol.block()?;
        let next = parse_full(&block).map_err(|p| RestoreError::TarRead(p.message().into()))?;
        member = Member::from_header(&next)?;
    }
    // The header read first wins: apply the innermost (last read) first.
    for ext in extensions.iter().rev() {
        apply(&mut member, ext)?;
    }
    Ok(Some(member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_parse_like_tarfile() {
        let r = pax_records(b"21 path=snapshot/abc\n10 uid=42\n\0\0\0").unwrap();
        assert_eq!(r[0], (b"path".to_vec(), b"snapshot/abc".to_vec()));
        assert_eq!(pax_int(&r[1].1), 42);
        assert!(pax_records(b"0 path=x\n").is_none());
        assert_eq!(pax_time(b"1700000000.75"), 1_700_000_000);
        assert_eq!(pax_time(b"-0.5"), 0);
        assert_eq!(pax_time(b"nan"), 0);
    }

    #[test]
    fn data_bearing_types() {
        let mut m = Member {
            name: vec![],
            typeflag: b'0',
            mode: 0,
            uid: 0,
            gid: 0,
            size: 3,
            mtime: 0,
            linkname: vec![],
            uname: vec![],
            gname: vec![],
            devmajor: 0,
            devminor: 0,
        };
        assert!(m.has_data());
        m.typeflag = b'5';
        assert!(!m.has_data());
        m.typeflag = b'V';
        assert!(m.has_data());
    }
}
