//! Reading a tar header the way CPython's `TarInfo.frombuf` does, for the common case only:
//! a 512-byte ustar/PAX/GNU header with octal numbers and a valid checksum. Anything else
//! (end-of-archive blocks, base-256 numbers, odd number text, bad checksums, old GNU sparse
//! headers) is declined, so that Python's own parser handles it with its own errors.

use super::block::BLOCKSIZE;

/// The fields of a header, as `frombuf` reads them; text fields cut at the first NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader<'a> {
    /// `name` (bytes 0..100).
    pub name: &'a [u8],
    /// Permission bits and the rest of the mode field.
    pub mode: u64,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Data size.
    pub size: u64,
    /// Modification time.
    pub mtime: u64,
    /// The stored checksum.
    pub chksum: u64,
    /// Type flag byte.
    pub typeflag: u8,
    /// Link target.
    pub linkname: &'a [u8],
    /// Owner name.
    pub uname: &'a [u8],
    /// Group name.
    pub gname: &'a [u8],
    /// Device major number.
    pub devmajor: u64,
    /// Device minor number.
    pub devminor: u64,
    /// ustar name prefix.
    pub prefix: &'a [u8],
}

/// Bytes up to the first NUL, as CPython's `nts` cuts them.
fn cut(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(p) => &field[..p],
        None => field,
    }
}

/// Whitespace `str.strip()` removes among ASCII characters.
fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// An octal number field as CPython's `nti` reads it, or None when it would take another path
/// (base-256, signs, underscores, `0o` prefixes, non-octal text, overflow).
fn octal(field: &[u8]) -> Option<u64> {
    if matches!(field.first(), Some(0o200) | Some(0o377)) {
        return None;
    }
    let text = cut(field);
    let start = text
        .iter()
        .position(|&b| !is_py_space(b))
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|&b| !is_py_space(b))
        .map_or(start, |p| p + 1);
    let digits = &text[start..end];
    let mut n: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        n = n.checked_mul(8)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// Parses `buf` when CPython's `frombuf` would accept it without special handling.
pub fn parse_simple(buf: &[u8]) -> Option<RawHeader<'_>> {
    if buf.len() != BLOCKSIZE || buf.iter().all(|&b| b == 0) {
        return None;
    }
    let chksum = octal(&buf[148..156])?;
    let (mut unsigned, mut signed) = (256i64, 256i64);
    for (i, &b) in buf.iter().enumerate() {
        if !(148..156).contains(&i) {
            unsigned += i64::from(b);
            signed += i64::from(b as i8);
        }
    }
    if chksum as i64 != unsigned && chksum as i64 != signed {
        return None;
    }
    let typeflag = buf[156];
    if typeflag == b'S' {
        return None; // old GNU sparse: its extra structures are Python's business
    }
    Some(RawHeader {
        name: cut(&buf[0..100]),
        mode: octal(&buf[100..108])?,
        uid: octal(&buf[108..116])?,
        gid: octal(&buf[116..124])?,
        size: octal(&buf[124..136])?,
        mtime: octal(&buf[136..148])?,
        chksum,
        typeflag,
        linkname: cut(&buf[157..257]),
        uname: cut(&buf[265..297]),
        gname: cut(&buf[297..329]),
        devmajor: octal(&buf[329..337])?,
        devminor: octal(&buf[337..345])?,
        prefix: cut(&buf[345..500]),
    })
}

/// Why CPython's `frombuf` rejects a header block (its `HeaderError` subclasses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// No bytes at all (`EmptyHeaderError`).
    Empty,
    /// Fewer than 512 bytes (`TruncatedHeaderError`).
    Truncated,
    /// 512 zero bytes: the end-of-archive marker (`EOFHeaderError`).
    EndOfArchive,
    /// A number field that is not a number (`InvalidHeaderError("invalid header")`).
    Invalid,
    /// The checksum does not match (`InvalidHeaderError("bad checksum")`).
    BadChecksum,
}

impl HeaderProblem {
    /// The message CPython's exception carries.
    pub fn message(self) -> &'static str {
        match self {
            HeaderProblem::Empty => "empty header",
            HeaderProblem::Truncated => "truncated header",
            HeaderProblem::EndOfArchive => "end of file header",
            HeaderProblem::Invalid => "invalid header",
            HeaderProblem::BadChecksum => "bad checksum",
        }
    }
}

/// A number field as CPython's `nti` reads it: base-256 (GNU) or octal text.
pub fn number(field: &[u8]) -> Result<i128, HeaderProblem> {
    match field.first() {
        Some(&lead @ (0o200 | 0o377)) => {
            let mut n: i128 = 0;
            for &b in &field[1..] {
                n = n.checked_mul(256).ok_or(HeaderProblem::Invalid)? + i128::from(b);
            }
            if lead == 0o377 {
                n -= 1i128 << (8 * (field.len() - 1));
            }
            Ok(n)
        }
        _ => octal(field).map(i128::from).ok_or(HeaderProblem::Invalid),
    }
}

/// A header field with its numbers, as CPython's `frombuf` reads any valid block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullHeader<'a> {
    /// `name` (bytes 0..100), cut at the first NUL.
    pub name: &'a [u8],
    /// Mode field.
    pub mode: i128,
    /// Owner id.
    pub uid: i128,
    /// Group id.
    pub gid: i128,
    /// Data size.
    pub size: i128,
    /// Modification time.
    pub mtime: i128,
    /// Type flag byte.
    pub typeflag: u8,
    /// Link target.
    pub linkname: &'a [u8],
    /// Owner name.
    pub uname: &'a [u8],
    /// Group name.
    pub gname: &'a [u8],
    /// Device major number.
    pub devmajor: i128,
    /// Device minor number.
    pub devminor: i128,
    /// ustar name prefix.
    pub prefix: &'a [u8],
}

/// Parses any header block `frombuf` accepts, or says which `HeaderError` it raises.
pub fn parse_full(buf: &[u8]) -> Result<FullHeader<'_>, HeaderProblem> {
    if buf.is_empty() {
        return Err(HeaderProblem::Empty);
    }
    if buf.len() != BLOCKSIZE {
        return Err(HeaderProblem::Truncated);
    }
    if buf.iter().all(|&b| b == 0) {
        return Err(HeaderProblem::EndOfArchive);
    }
    let chksum = number(&buf[148..156])?;
    let (mut unsigned, mut signed) = (256i128, 256i128);
    for (i, &b) in buf.iter().enumerate() {
        if !(148..156).contains(&i) {
            unsigned += i128::from(b);
            signed += i128::from(b as i8);
        }
    }
    if chksum != unsigned && chksum != signed {
        return Err(HeaderProblem::BadChecksum);
    }
    Ok(FullHeader {
        name: cut(&buf[0..100]),
        mode: number(&buf[100..108])?,
        uid: number(&buf[108..116])?,
        gid: number(&buf[116..124])?,
        size: number(&buf[124..136])?,
        mtime: number(&buf[136..148])?,
        typeflag: buf[156],
        linkname: cut(&buf[157..257]),
        uname: cut(&buf[265..297]),
        gname: cut(&buf[297..329]),
        devmajor: number(&buf[329..337])?,
        devminor: number(&buf[337..345])?,
        prefix: cut(&buf[345..500]),
    })
}

/// Bytes up to the first NUL (CPython's `nts`).
pub fn nts(field: &[u8]) -> &[u8] {
    cut(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], size: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..name.len()].copy_from_slice(name);
        b[100..108].copy_from_slice(b"0000644\0");
        b[124..124 + size.len()].copy_from_slice(size);
        b[156] = b'0';
        b[257..263].copy_from_slice(b"ustar\0");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum::<u32>() + 256;
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    #[test]
    fn full_parse_reads_base256_and_names_problems() {
        let mut b = header(b"f", b"");
        b[124] = 0x80;
        b[135] = 5;
        let sum: u32 = b
            .iter()
            .enumerate()
            .filter(|(i, _)| !(148..156).contains(i))
            .map(|(_, &x)| u32::from(x))
            .sum::<u32>()
            + 256;
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(parse_full(&b).unwrap().size, 5);
        assert_eq!(number(&[0o377, 0xff, 0xff]).unwrap(), -1);
        assert_eq!(parse_full(&[]).unwrap_err(), HeaderProblem::Empty);
        assert_eq!(parse_full(&b[..100]).unwrap_err(), HeaderProblem::Truncated);
        assert_eq!(
            parse_full(&[0u8; 512]).unwrap_err(),
            HeaderProblem::EndOfArchive
        );
        b[0] = b'g';
        assert_eq!(parse_full(&b).unwrap_err(), HeaderProblem::BadChecksum);
        assert_eq!(
            parse_full(&header(b"f", b"19")).unwrap_err(),
            HeaderProblem::Invalid
        );
    }

    #[test]
    fn reads_a_plain_header() {
        let b = header(b"snapshot/f", b"00000001750\0");
        let h = parse_simple(&b).unwrap();
        assert_eq!(h.name, b"snapshot/f");
        assert_eq!((h.mode, h.size, h.typeflag), (0o644, 1000, b'0'));
    }

    #[test]
    fn declines_what_python_handles_differently() {
        let good = header(b"f", b"1750");
        assert!(parse_simple(&good).is_some());
        assert!(parse_simple(&good[..511]).is_none());
        assert!(parse_simple(&[0u8; 512]).is_none());
        let mut bad_sum = good.clone();
        bad_sum[0] = b'g';
        assert!(parse_simple(&bad_sum).is_none());
        for size in [&b"+17"[..], b"1_0", b"0o17", b"18", b"-1"] {
            assert!(parse_simple(&header(b"f", size)).is_none(), "{size:?}");
        }
        let mut b256 = header(b"f", b"");
        b256[124] = 0x80;
        assert!(parse_simple(&b256).is_none());
        // spaces around digits and an empty field are fine, as int(s.strip() or "0", 8)
        assert_eq!(parse_simple(&header(b"f", b" 17 ")).unwrap().size, 0o17);
        assert_eq!(parse_simple(&header(b"f", b"")).unwrap().size, 0);
    }
}
