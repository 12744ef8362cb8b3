//! A look at the outer packet headers of an OpenPGP message, before anything is decrypted.

use std::io::{self, Read};

/// What the outer layer of an encrypted file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outline {
    /// Public-key encrypted session key packets (tag 1), with their recipient key ids.
    pub pkesk_key_ids: Vec<u64>,
    /// Symmetric-key encrypted session key packets (tag 3).
    pub skesk: usize,
    /// Tag of the first packet that is not a session key or marker packet (0 at end of input).
    pub data_tag: u8,
}

impl Outline {
    /// Short name of the data packet for messages.
    pub fn data_name(&self) -> &'static str {
        match self.data_tag {
            0 => "no data packet",
            8 => "compressed data (not encrypted)",
            9 => "SED packet without MDC (tag 9)",
            11 => "literal data (not encrypted)",
            18 => "SEIPD packet",
            20 => "AEAD encrypted data packet (tag 20)",
            _ => "unexpected packet",
        }
    }
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated packet",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// S2K specifier type of Argon2 (RFC 9580): its memory parameter may ask for up to 2 TiB.
const S2K_ARGON2: u8 = 4;

/// Refuses the symmetric session key packets gpg is to read (`InvalidInput`): Argon2 S2K,
/// whose memory cost comes from the file, and the AEAD versions 5 and 6, which gpg 2.2 neither
/// writes nor reads. Version 4 with a simple, salted or iterated S2K (what gpg writes) passes,
/// and so does anything else, for the parser to judge.
fn check_skesk(body: &[u8]) -> io::Result<()> {
    let unsupported = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    match body {
        [4, _cipher, S2K_ARGON2, ..] => {
            unsupported("a session key protected with Argon2 (S2K type 4) is read by gpg".into())
        }
        [v @ (5 | 6), ..] => unsupported(format!(
            "a version {v} symmetric session key packet is read by gpg"
        )),
        _ => Ok(()),
    }
}

/// Reads packet headers up to the first data packet; errors on input that is not OpenPGP.
pub fn outline(mut r: impl Read) -> io::Result<Outline> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut out = Outline::default();
    loop {
        let mut ctb = [0u8; 1];
        if !read_exact_or_eof(&mut r, &mut ctb)? {
            return Ok(out);
        }
        let b = ctb[0];
        if b & 0x80 == 0 {
            if out.skesk == 0 && out.pkesk_key_ids.is_empty() {
                // maybe ASCII armor, which gpg reads
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not binary OpenPGP data (ASCII armor?)",
                ));
            }
            return Err(bad("invalid packet header"));
        }
        let (tag, len) = if b & 0x40 != 0 {
            let tag = b & 0x3f;
            let mut l = [0u8; 1];
            if !read_exact_or_eof(&mut r, &mut l)? {
                return Err(bad("truncated packet header"));
            }
            let len = match l[0] {
                0..=191 => Some(u64::from(l[0])),
                192..=223 => {
                    let mut l2 = [0u8; 1];
                    read_exact_or_eof(&mut r, &mut l2)?;
                    Some(((u64::from(l[0]) - 192) << 8) + u64::from(l2[0]) + 192)
                }
                255 => {
                    let mut l4 = [0u8; 4];
                    read_exact_or_eof(&mut r, &mut l4)?;
                    Some(be(&l4))
                }
                _ => None, // partial body: only data packets may use it
            };
            (tag, len)
        } else {
            let tag = (b >> 2) & 0x0f;
            let len = match b & 3 {
                0 => {
                    let mut l = [0u8; 1];
                    read_exact_or_eof(&mut r, &mut l)?;
                    Some(be(&l))
                }
                1 => {
                    let mut l = [0u8; 2];
                    read_exact_or_eof(&mut r, &mut l)?;
                    Some(be(&l))
                }
                2 => {
                    let mut l = [0u8; 4];
                    read_exact_or_eof(&mut r, &mut l)?;
                    Some(be(&l))
                }
                _ => None,
            };
            (tag, len)
        };
        match (tag, len) {
            (1 | 3 | 10, Some(len)) => {
                let mut body = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX).min(1 << 20)];
                if body.len() as u64 != len {
                    return Err(bad("session key packet too large"));
                }
                if !read_exact_or_eof(&mut r, &mut body)? && len > 0 {
                    return Err(bad("truncated session key packet"));
                }
                if tag == 1 {
                    if body.len() < 9 || body[0] != 3 {
                        return Err(bad("unsupported public-key encrypted session key packet"));
                    }
                    out.pkesk_key_ids.push(be(&body[1..9]));
                } else if tag == 3 {
                    check_skesk(&body)?;
                    out.skesk += 1;
                }
            }
            (1 | 3 | 10, None) => return Err(bad("session key packet with a partial length")),
            (t, _) => {
                out.data_tag = t;
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_header() {
        // SKESK v4 AES256, iterated S2K SHA1, then a partial-length SEIPD packet.
        let mut m = vec![0x8c, 0x0d, 4, 9, 3, 2];
        m.extend([0u8; 8]);
        m.push(0xff);
        m.extend([0xd2, 0xe9, 1, 2, 3]);
        let o = outline(&m[..]).unwrap();
        assert_eq!(o.skesk, 1);
        assert_eq!(o.data_tag, 18);
        assert!(o.pkesk_key_ids.is_empty());
    }

    #[test]
    fn argon2_and_aead_session_keys_go_to_gpg() {
        // SKESK v4 CAST5 with an Argon2 S2K asking for 2^27 KiB (found by the pgp_reader
        // fuzz target: sequoia allocated it), then an SED packet.
        let mut m = vec![0x8c, 0x18, 4, 3, S2K_ARGON2];
        m.extend([0xa4u8; 16]);
        m.extend([0xa4, 0xff, 27, 0xa4]);
        m.extend([0xa4, 0x02, 0, 0]);
        let err = outline(&m[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("Argon2"), "{err}");
        let v6 = [0x8c, 0x04, 6, 3, 9, 2, 0xd2, 0x01, 2];
        assert_eq!(
            outline(&v6[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn pkesk_and_sed() {
        let mut m = vec![0x84, 12, 3, 0, 0, 0, 0, 0, 0, 0, 0x2a, 1, 0xaa, 0xbb];
        m.extend([0xc9, 0xe0, 0]);
        let o = outline(&m[..]).unwrap();
        assert_eq!(o.pkesk_key_ids, vec![0x2a]);
        assert_eq!(o.data_tag, 9);
    }

    #[test]
    fn garbage_and_truncation() {
        assert_eq!(
            outline(&b"hello"[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(outline(&[0x8c, 0x0d, 4][..]).is_err());
        assert_eq!(outline(&[][..]).unwrap().data_tag, 0);
    }
}
