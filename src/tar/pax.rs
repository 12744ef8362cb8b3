//! PAX extended headers as `TarInfo._create_pax_generic_header` writes them.

use super::error::TarError;
use super::ustar::{write_ustar, UstarFields};

/// The `hdrcharset=BINARY` record CPython puts first when a value holds surrogates.
pub const HDRCHARSET_BINARY: &[u8] = b"21 hdrcharset=BINARY\n";

/// Number of decimal digits of `n`.
fn decimal_len(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Total length of a record whose key and value take `kv` bytes: the fixed point of
/// `len = kv + 3 + digits(len)`, found by the same iteration CPython uses.
pub fn record_len(key_len: usize, value_len: usize) -> usize {
    let l = key_len + value_len + 3;
    let mut p = 0;
    loop {
        let n = l + decimal_len(p);
        if n == p {
            return n;
        }
        p = n;
    }
}

/// Appends the record `"<len> <key>=<value>\n"` to `out`.
pub fn push_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let len = record_len(key.len(), value.len());
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends the extended header (type `x`, name `././@PaxHeader`) and the NUL-padded records.
pub fn push_extended_header(out: &mut Vec<u8>, records: &[u8]) -> Result<(), TarError> {
    write_ustar(
        out,
        &UstarFields {
            name: b"././@PaxHeader",
            typeflag: b'x',
            size: records.len() as u64,
            ..UstarFields::default()
        },
    )?;
    out.extend_from_slice(records);
    let rem = records.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths_cross_digit_boundaries() {
        // 4 + 4 + 3 = 11 bytes plus a 2-digit length: "13 path=abcd\n"
        let mut out = Vec::new();
        push_record(&mut out, b"path", b"abcd");
        assert_eq!(out, b"13 path=abcd\n");
        for vlen in 0..2000 {
            let n = record_len(4, vlen);
            assert_eq!(n, 4 + vlen + 3 + n.to_string().len(), "{vlen}");
        }
        // 4 + 91 + 3 = 98 → "100" does not fit in 2 digits: 98 + 2 = 100 → 3 digits → 101
        assert_eq!(record_len(4, 91), 101);
        assert_eq!(record_len(4, 90), 99);
    }
}
