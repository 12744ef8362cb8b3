//! Big-endian integers of width 1, 2, 4 or 8 as librsync's delta commands use them.

/// Smallest of {1, 2, 4, 8} bytes that holds `v` (librsync `rs_int_len`).
pub fn int_len(v: u64) -> usize {
    if v <= 0xFF {
        1
    } else if v <= 0xFFFF {
        2
    } else if v <= 0xFFFF_FFFF {
        4
    } else {
        8
    }
}

/// Index 0..=3 of a width in {1, 2, 4, 8}, as used in opcode arithmetic.
pub fn width_index(width: usize) -> u8 {
    match width {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    }
}

/// Width in bytes of opcode parameter index 0..=3.
pub fn width_of_index(idx: u8) -> usize {
    1 << idx
}

/// Appends `v` big-endian in `width` bytes.
pub fn put(out: &mut Vec<u8>, v: u64, width: usize) {
    out.extend_from_slice(&v.to_be_bytes()[8 - width..]);
}

/// Reads a big-endian unsigned value of `bytes.len()` (≤ 8) bytes.
pub fn get(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}
