//! The full `TarInfo.tobuf(format=PAX_FORMAT)` header sequence: PAX records when needed, then
//! the ustar block.
//!
//! Field layout comes from the `tar` crate's [`::tar::UstarHeader`]; the values follow CPython's
//! `TarInfo.create_pax_header` and `_create_header` (3.9–3.13), not the `tar` crate's setters
//! (its checksum is `"%07o\0"`, CPython's is `"%06o\0 "`).

use std::borrow::Cow;

use ::tar::EntryType;

use super::error::TarError;
use super::number::{device_number, pax_number, Number};
use super::pax::{push_extended_header, push_record, HDRCHARSET_BINARY};
use super::text::{analyze, pax_value};
use super::ustar::{write_ustar, UstarFields};

/// The fields duplicity's `ROPath.get_tarinfo()` sets on a `TarInfo` (the others keep defaults).
#[derive(Debug, Clone)]
pub struct TarEntry<'a> {
    /// `TarInfo.name` in surrogatepass UTF-8 (see the `text` module).
    pub name: &'a [u8],
    /// `TarInfo.type` (one byte).
    pub typeflag: u8,
    /// `TarInfo.mode` (masked with 0o7777 as `get_info` does).
    pub mode: i64,
    /// `TarInfo.uid`.
    pub uid: Number,
    /// `TarInfo.gid`.
    pub gid: Number,
    /// `TarInfo.size`.
    pub size: Number,
    /// `TarInfo.mtime`.
    pub mtime: Number,
    /// `TarInfo.linkname` in surrogatepass UTF-8.
    pub linkname: &'a [u8],
    /// `TarInfo.uname` in surrogatepass UTF-8.
    pub uname: &'a [u8],
    /// `TarInfo.gname` in surrogatepass UTF-8.
    pub gname: &'a [u8],
    /// `TarInfo.devmajor` (written only for character and block devices).
    pub devmajor: Number,
    /// `TarInfo.devminor` (written only for character and block devices).
    pub devminor: Number,
}

impl<'a> TarEntry<'a> {
    /// A `TarInfo(name)` with CPython's defaults (regular file, mode 0o644, everything else 0/"").
    pub fn new(name: &'a [u8]) -> Self {
        TarEntry {
            name,
            typeflag: EntryType::Regular.as_byte(),
            mode: 0o644,
            uid: Number::Int(0),
            gid: Number::Int(0),
            size: Number::Int(0),
            mtime: Number::Int(0),
            linkname: b"",
            uname: b"",
            gname: b"",
            devmajor: Number::Int(0),
            devminor: Number::Int(0),
        }
    }

    /// What duplicity writes for a path that no longer exists (`ROPath(index).get_tarinfo()`).
    pub fn deleted(name: &'a [u8]) -> Self {
        TarEntry {
            mode: 0,
            ..TarEntry::new(name)
        }
    }
}

/// Whether a text field needs a PAX record: non-ASCII, or longer than `limit` code points.
fn text_needs_pax(
    text: &[u8],
    limit: usize,
    field: &'static str,
) -> Result<(bool, bool), TarError> {
    let info = analyze(text, field)?;
    Ok((!info.ascii || info.chars > limit, info.surrogates))
}

/// Appends `TarInfo.tobuf(format=PAX_FORMAT, encoding="utf-8")` for `entry` to `out`.
pub fn write_pax_header(out: &mut Vec<u8>, entry: &TarEntry<'_>) -> Result<(), TarError> {
    let is_dir = entry.typeflag == EntryType::Directory.as_byte();
    let name: Cow<'_, [u8]> = if is_dir && !entry.name.ends_with(b"/") {
        let mut n = entry.name.to_vec();
        n.push(b'/');
        Cow::Owned(n)
    } else {
        Cow::Borrowed(entry.name)
    };
    let texts: [(&'static str, &[u8], usize); 4] = [
        ("path", &name, 100),
        ("linkpath", entry.linkname, 100),
        ("uname", entry.uname, 32),
        ("gname", entry.gname, 32),
    ];
    let mut text_pax = [false; 4];
    let mut binary = false;
    for (i, (key, text, limit)) in texts.iter().enumerate() {
        let (needs, surrogates) = text_needs_pax(text, *limit, key)?;
        text_pax[i] = needs;
        binary |= needs && surrogates;
    }
    let (uid, uid_pax) = pax_number(entry.uid, 8, "uid")?;
    let (gid, gid_pax) = pax_number(entry.gid, 8, "gid")?;
    let (size, size_pax) = pax_number(entry.size, 12, "size")?;
    let (mtime, mtime_pax) = pax_number(entry.mtime, 12, "mtime")?;
    let device = if entry.typeflag == EntryType::Char.as_byte()
        || entry.typeflag == EntryType::Block.as_byte()
    {
        Some((
            device_number(entry.devmajor, 8, "devmajor")?,
            device_number(entry.devminor, 8, "devminor")?,
        ))
    } else {
        None
    };

    let numbers = [
        ("uid", uid_pax),
        ("gid", gid_pax),
        ("size", size_pax),
        ("mtime", mtime_pax),
    ];
    if text_pax.iter().any(|&b| b) || numbers.iter().any(|(_, v)| v.is_some()) {
        let mut records = Vec::with_capacity(256);
        if binary {
            records.extend_from_slice(HDRCHARSET_BINARY);
        }
        for (i, (key, text, _)) in texts.iter().enumerate() {
            if text_pax[i] {
                push_record(&mut records, key.as_bytes(), &pax_value(text, binary, key)?);
            }
        }
        for (key, value) in &numbers {
            if let Some(v) = value {
                push_record(&mut records, key.as_bytes(), v.as_bytes());
            }
        }
        push_extended_header(out, &records)?;
    }
    write_ustar(
        out,
        &UstarFields {
            name: &name,
            mode: (entry.mode & 0o7777) as u64,
            uid,
            gid,
            size,
            mtime,
            typeflag: entry.typeflag,
            linkname: entry.linkname,
            uname: entry.uname,
            gname: entry.gname,
            device,
        },
    )
}

/// `TarInfo.tobuf(format=PAX_FORMAT, encoding="utf-8")` for `entry` as a new buffer.
pub fn pax_header_bytes(entry: &TarEntry<'_>) -> Result<Vec<u8>, TarError> {
    let mut out = Vec::with_capacity(512);
    write_pax_header(&mut out, entry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_checksum_ok(b: &[u8]) -> bool {
        let mut copy = b.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&x| u32::from(x)).sum();
        b[148..156] == *format!("{sum:06o}\0 ").as_bytes()
    }

    #[test]
    fn regular_file_header() {
        let e = TarEntry {
            size: Number::Int(2),
            mtime: Number::Int(1_700_000_000),
            uname: b"root",
            gname: b"root",
            ..TarEntry::new(b"snapshot/a.txt")
        };
        let h = pax_header_bytes(&e).unwrap();
        assert_eq!(h.len(), 512);
        assert_eq!(&h[..14], b"snapshot/a.txt");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[124..136], b"00000000002\0");
        assert_eq!(&h[136..148], b"14524770400\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], &[0u8; 16]);
        assert!(block_checksum_ok(&h));
    }

    #[test]
    fn long_non_utf8_name_gets_binary_pax() {
        let raw = [b"snapshot/".as_slice(), &[b'x'; 95], b"\xff"].concat();
        let text = super::super::text::from_fs_bytes(&raw);
        let e = TarEntry {
            typeflag: b'5',
            ..TarEntry::new(&text)
        };
        let h = pax_header_bytes(&e).unwrap();
        assert_eq!(h.len(), 1536);
        assert_eq!(&h[..14], b"././@PaxHeader");
        assert_eq!(h[156], b'x');
        let payload = &h[512..1024];
        let expected = [b"21 hdrcharset=BINARY\n116 path=".as_slice(), &raw, b"/\n"].concat();
        assert_eq!(&payload[..expected.len()], expected.as_slice());
        assert!(block_checksum_ok(&h[..512]) && block_checksum_ok(&h[1024..]));
        assert_eq!(&h[1024..1124], &raw[..100]);
    }

    #[test]
    fn device_overflow_is_an_error() {
        let e = TarEntry {
            typeflag: b'3',
            devmajor: Number::Int(1 << 21),
            ..TarEntry::new(b"dev")
        };
        assert_eq!(pax_header_bytes(&e), Err(TarError::Overflow("devmajor")));
    }
}
