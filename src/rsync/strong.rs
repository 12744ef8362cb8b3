//! The MD4 strong checksum of a block, truncated to the signature's strong length.

use md4::{Digest, Md4};

/// Full 16-byte MD4 digest of `data`.
#[inline]
pub fn md4(data: &[u8]) -> [u8; 16] {
    Md4::digest(data).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc1320_vectors() {
        assert_eq!(
            super::md4(b"abc")[..8],
            [0xa4, 0x48, 0x01, 0x7a, 0xaf, 0x21, 0xd8, 0x52]
        );
        assert_eq!(
            super::md4(b""),
            [
                0x31, 0xd6, 0xcf, 0xe0, 0xd1, 0x6a, 0xe9, 0x31, 0xb7, 0x3c, 0x59, 0xd7, 0xe0, 0xc0,
                0x89, 0xc0
            ]
        );
    }
}
