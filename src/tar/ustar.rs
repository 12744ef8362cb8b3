//! One 512-byte ustar header block, as CPython's `TarInfo._create_header` writes it.
//!
//! Field layout comes from the `tar` crate's [`::tar::UstarHeader`]; the values and the checksum
//! format (`"%06o\0 "`, where the `tar` crate writes `"%07o\0"`) follow CPython.

use super::error::TarError;
use super::number::write_octal;
use super::text::write_ascii_replace;

/// Already-converted values of one ustar header block.
#[derive(Debug, Clone, Default)]
pub struct UstarFields<'a> {
    /// Name (surrogatepass UTF-8, written ascii/replace, cut at 100 bytes).
    pub name: &'a [u8],
    /// Permission bits.
    pub mode: u64,
    /// Owner id (already in range).
    pub uid: u64,
    /// Group id (already in range).
    pub gid: u64,
    /// Size (already in range).
    pub size: u64,
    /// Modification time (already in range).
    pub mtime: u64,
    /// Type flag byte.
    pub typeflag: u8,
    /// Link target (written ascii/replace).
    pub linkname: &'a [u8],
    /// Owner name (written ascii/replace).
    pub uname: &'a [u8],
    /// Group name (written ascii/replace).
    pub gname: &'a [u8],
    /// Device numbers, only for character and block devices.
    pub device: Option<(u64, u64)>,
}

/// Appends one 512-byte ustar block exactly as CPython's `_create_header(..., "ascii", "replace")`.
pub fn write_ustar(out: &mut Vec<u8>, f: &UstarFields<'_>) -> Result<(), TarError> {
    let mut header = ::tar::Header::new_ustar();
    let Some(u) = header.as_ustar_mut() else {
        return Err(TarError::BadType);
    };
    write_ascii_replace(&mut u.name, f.name);
    write_octal(&mut u.mode, f.mode & 0o7777);
    write_octal(&mut u.uid, f.uid);
    write_octal(&mut u.gid, f.gid);
    write_octal(&mut u.size, f.size);
    write_octal(&mut u.mtime, f.mtime);
    u.cksum = *b"        ";
    u.typeflag = [f.typeflag];
    write_ascii_replace(&mut u.linkname, f.linkname);
    write_ascii_replace(&mut u.uname, f.uname);
    write_ascii_replace(&mut u.gname, f.gname);
    if let Some((major, minor)) = f.device {
        write_octal(&mut u.dev_major, major);
        write_octal(&mut u.dev_minor, minor);
    }
    let sum: u32 = header.as_bytes().iter().map(|&b| u32::from(b)).sum();
    if let Some(u) = header.as_ustar_mut() {
        let mut ck = [0u8; 7];
        write_octal(&mut ck, u64::from(sum));
        u.cksum[..7].copy_from_slice(&ck);
    }
    out.extend_from_slice(header.as_bytes());
    Ok(())
}
