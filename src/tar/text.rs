//! Text fields as CPython's tarfile sees them: a Python `str`, carried here as UTF-8 that may
//! contain lone surrogates (Python's `surrogatepass` form), so every `str` maps to one byte string.
//!
//! Duplicity's names are `os.fsdecode`d bytes: undecodable bytes become surrogates U+DC80–U+DCFF
//! (`surrogateescape`), which `from_fs_bytes` reproduces in the tests.

use std::borrow::Cow;

use super::error::TarError;

/// What the PAX decision needs to know about a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextInfo {
    /// Length in code points (Python's `len(str)`).
    pub chars: usize,
    /// Every code point is below U+0080.
    pub ascii: bool,
    /// At least one code point is a surrogate (U+D800–U+DFFF).
    pub surrogates: bool,
}

/// Decodes the code point starting at `b[i]`; returns it and its encoded length.
fn decode_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let b0 = *b.get(i)?;
    let cont = |k: usize| -> Option<u32> {
        let c = *b.get(i + k)?;
        (c & 0xC0 == 0x80).then_some(u32::from(c & 0x3F))
    };
    match b0 {
        0x00..=0x7F => Some((u32::from(b0), 1)),
        0xC2..=0xDF => Some(((u32::from(b0 & 0x1F) << 6) | cont(1)?, 2)),
        0xE0..=0xEF => {
            let cp = (u32::from(b0 & 0x0F) << 12) | (cont(1)? << 6) | cont(2)?;
            (cp >= 0x800).then_some((cp, 3))
        }
        0xF0..=0xF4 => {
            let cp = (u32::from(b0 & 0x07) << 18) | (cont(1)? << 12) | (cont(2)? << 6) | cont(3)?;
            (0x10000..=0x10FFFF).contains(&cp).then_some((cp, 4))
        }
        _ => None,
    }
}

/// Iterates the code points of surrogate-allowing UTF-8; `Err` on malformed input.
fn code_points(b: &[u8]) -> impl Iterator<Item = Result<u32, ()>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= b.len() {
            return None;
        }
        match decode_at(b, i) {
            Some((cp, n)) => {
                i += n;
                Some(Ok(cp))
            }
            None => {
                i = b.len();
                Some(Err(()))
            }
        }
    })
}

/// Length, ASCII-ness and surrogates of a text field (`field` names it in errors).
pub fn analyze(text: &[u8], field: &'static str) -> Result<TextInfo, TarError> {
    if text.is_ascii() {
        return Ok(TextInfo {
            chars: text.len(),
            ascii: true,
            surrogates: false,
        });
    }
    if let Ok(s) = std::str::from_utf8(text) {
        return Ok(TextInfo {
            chars: s.chars().count(),
            ascii: false,
            surrogates: false,
        });
    }
    let mut info = TextInfo {
        chars: 0,
        ascii: false,
        surrogates: false,
    };
    for cp in code_points(text) {
        let cp = cp.map_err(|()| TarError::InvalidText(field))?;
        info.chars += 1;
        info.surrogates |= (0xD800..=0xDFFF).contains(&cp);
    }
    Ok(info)
}

/// Writes `text.encode("ascii", "replace")` truncated to `dst` (which must be NUL-filled).
pub fn write_ascii_replace(dst: &mut [u8], text: &[u8]) {
    if text.is_ascii() {
        let n = text.len().min(dst.len());
        dst[..n].copy_from_slice(&text[..n]);
        return;
    }
    for (slot, cp) in dst.iter_mut().zip(code_points(text)) {
        *slot = match cp {
            Ok(c) if c < 0x80 => c as u8,
            _ => b'?',
        };
    }
}

/// The bytes of a PAX value: UTF-8 as is, or with `binary` (`hdrcharset=BINARY`) the
/// `encode("utf-8", "surrogateescape")` form, which turns U+DC80–U+DCFF back into raw bytes.
pub fn pax_value<'a>(
    text: &'a [u8],
    binary: bool,
    field: &'static str,
) -> Result<Cow<'a, [u8]>, TarError> {
    if !binary || std::str::from_utf8(text).is_ok() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let (cp, n) = decode_at(text, i).ok_or(TarError::InvalidText(field))?;
        if (0xD800..=0xDFFF).contains(&cp) {
            if !(0xDC80..=0xDCFF).contains(&cp) {
                return Err(TarError::Unencodable(field));
            }
            out.push((cp - 0xDC00) as u8);
        } else {
            out.extend_from_slice(&text[i..i + n]);
        }
        i += n;
    }
    Ok(Cow::Owned(out))
}

/// `os.fsdecode` of raw filesystem bytes (UTF-8 with `surrogateescape`), in surrogatepass form
/// (used by the tests; names reach the writer already decoded by Python).
#[cfg(test)]
pub fn from_fs_bytes(raw: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(raw).is_ok() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + 8);
    let mut rest = raw;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.extend_from_slice(s.as_bytes());
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.extend_from_slice(&rest[..good]);
                let bad = e.error_len().unwrap_or(rest.len() - good);
                for &b in &rest[good..good + bad] {
                    let cp = 0xDC00 + u32::from(b);
                    out.extend_from_slice(&[
                        0xE0 | (cp >> 12) as u8,
                        0x80 | ((cp >> 6) & 0x3F) as u8,
                        0x80 | (cp & 0x3F) as u8,
                    ]);
                }
                rest = &rest[good + bad..];
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_bytes_round_trip_through_surrogateescape() {
        let raw = b"caf\xe9/ok\xc3\xa9/\xf0\x90\x80/\xed\xa0\x80";
        let text = from_fs_bytes(raw);
        let info = analyze(&text, "name").unwrap();
        assert!(info.surrogates && !info.ascii);
        // "caf" + 1 + "/ok" + "é" + "/" + 3 + "/" + 3
        assert_eq!(info.chars, 3 + 1 + 3 + 1 + 1 + 3 + 1 + 3);
        assert_eq!(&*pax_value(&text, true, "name").unwrap(), &raw[..]);
    }

    #[test]
    fn ascii_replace_counts_code_points() {
        let mut dst = [0u8; 6];
        write_ascii_replace(&mut dst, "aé€😀bc".as_bytes());
        assert_eq!(&dst, b"a???bc");
    }

    #[test]
    fn low_surrogates_below_dc80_are_unencodable() {
        // U+DC41 in surrogatepass form
        let text = [0xED, 0xB1, 0x81];
        assert_eq!(
            pax_value(&text, true, "name"),
            Err(TarError::Unencodable("name"))
        );
        assert!(analyze(&[0xC0, 0x80], "name").is_err());
    }
}
