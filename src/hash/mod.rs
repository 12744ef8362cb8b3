//! Volume hashes as duplicity records them in manifests (SHA1) and checks them (SHA1 or MD5).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use md5::Md5;
use sha1::{Digest, Sha1};

/// Both digests duplicity may ask for, fed in one pass over the bytes.
#[derive(Clone, Default)]
pub struct VolumeHasher {
    sha1: Sha1,
    md5: Md5,
    len: u64,
}

/// Finished digests of a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// Number of bytes hashed.
    pub len: u64,
    /// SHA-1 digest.
    pub sha1: [u8; 20],
    /// MD5 digest.
    pub md5: [u8; 16],
}

impl VolumeHasher {
    /// Adds bytes to both digests.
    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.md5.update(data);
        self.len += data.len() as u64;
    }

    /// Finishes both digests.
    pub fn finish(self) -> Digests {
        Digests {
            len: self.len,
            sha1: self.sha1.finalize().into(),
            md5: self.md5.finalize().into(),
        }
    }
}

/// Which digest `hash_file` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-1, the manifest's `Hash SHA1`.
    Sha1,
    /// MD5.
    Md5,
}

impl Algorithm {
    /// Parses duplicity's names "SHA1" and "MD5".
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SHA1" => Some(Algorithm::Sha1),
            "MD5" => Some(Algorithm::Md5),
            _ => None,
        }
    }
}

/// Digest of a whole file, read in 1 MiB pieces.
pub fn hash_file(path: &Path, algo: Algorithm) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut sha = Sha1::new();
    let mut md = Md5::new();
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match algo {
            Algorithm::Sha1 => sha.update(&buf[..n]),
            Algorithm::Md5 => md.update(&buf[..n]),
        }
    }
    Ok(match algo {
        Algorithm::Sha1 => sha.finalize().to_vec(),
        Algorithm::Md5 => md.finalize().to_vec(),
    })
}

/// Lower-case hex of a digest, as duplicity's manifests spell it.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let mut h = VolumeHasher::default();
        h.update(b"ab");
        h.update(b"c");
        let d = h.finish();
        assert_eq!(to_hex(&d.sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(to_hex(&d.md5), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.len, 3);
    }
}
