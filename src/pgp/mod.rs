//! OpenPGP messages as duplicity's gpg writes and reads them, done in-process with
//! sequoia-openpgp: symmetric and public-key encryption (SEIPD v1 with MDC, like gpg 2.2), a
//! deflate layer compressed in parallel, and streaming decryption with read-ahead.

pub(crate) mod agent;
pub(crate) mod keys;
pub(crate) mod literal;
pub(crate) mod packets;
pub(crate) mod policy;
pub mod reader;
pub(crate) mod s2k;
pub(crate) mod seipd;
pub mod writer;

use std::fmt;

pub use agent::AgentConfig;
pub use reader::{DecryptOptions, PgpReader, DEFAULT_AHEAD_MIB};
pub use writer::{EncryptOptions, PgpWriter, SignOptions};

use openpgp::types::SymmetricAlgorithm;
pub(crate) use policy::gpg_policy;
use sequoia_openpgp as openpgp;

/// gpg 2.2's default payload cipher.
pub const DEFAULT_CIPHER: SymmetricAlgorithm = SymmetricAlgorithm::AES256;
/// gpg 2.2's default S2K digest.
pub const DEFAULT_S2K_HASH: openpgp::types::HashAlgorithm = openpgp::types::HashAlgorithm::SHA1;
/// gpg 2.2's S2K iteration count on a fast machine, and the largest one the format encodes.
pub const DEFAULT_S2K_COUNT: u32 = 65_011_712;

/// Why an OpenPGP operation failed; `Unsupported` means "let stock gpg handle this file".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgpErrorKind {
    /// Not served in-process (e.g. SED packets, public-key decryption): use gpg instead.
    Unsupported,
    /// Wrong passphrase or no usable key.
    BadKey,
    /// Damaged, manipulated or truncated data, failed MDC.
    Corrupt,
    /// Reading or writing the file failed.
    Io,
    /// Invalid parameters (unknown algorithm, unusable recipient key).
    Config,
}

/// An OpenPGP error with a one-line human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgpError {
    /// The class of failure.
    pub kind: PgpErrorKind,
    /// What went wrong, in one line.
    pub message: String,
    /// The OS error number, for I/O failures.
    pub errno: Option<i32>,
}

impl PgpError {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: PgpErrorKind, message: impl Into<String>) -> Self {
        PgpError {
            kind,
            message: message.into(),
            errno: None,
        }
    }
}

impl fmt::Display for PgpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PgpError {}

impl From<std::io::Error> for PgpError {
    fn from(e: std::io::Error) -> Self {
        PgpError {
            kind: PgpErrorKind::Io,
            message: e.to_string(),
            errno: e.raw_os_error(),
        }
    }
}

/// One line out of a sequoia error chain.
pub(crate) fn one_line(e: &openpgp::anyhow::Error) -> String {
    let mut s = String::new();
    for (i, c) in e.chain().enumerate() {
        if i > 0 {
            s.push_str(": ");
        }
        s.push_str(&c.to_string());
    }
    s.replace('\n', " ")
}

/// Parses a gpg cipher name or number (`AES256`, `CAST5`, `9`, ...).
#[allow(deprecated)]
pub fn cipher_from_name(name: &str) -> Option<SymmetricAlgorithm> {
    let n = name.trim().to_ascii_uppercase().replace('-', "");
    let algo = match n.as_str() {
        "IDEA" | "1" => SymmetricAlgorithm::IDEA,
        "3DES" | "TRIPLEDES" | "2" => SymmetricAlgorithm::TripleDES,
        "CAST5" | "3" => SymmetricAlgorithm::CAST5,
        "BLOWFISH" | "4" => SymmetricAlgorithm::Blowfish,
        "AES" | "AES128" | "7" => SymmetricAlgorithm::AES128,
        "AES192" | "8" => SymmetricAlgorithm::AES192,
        "AES256" | "9" => SymmetricAlgorithm::AES256,
        "TWOFISH" | "10" => SymmetricAlgorithm::Twofish,
        "CAMELLIA128" | "11" => SymmetricAlgorithm::Camellia128,
        "CAMELLIA192" | "12" => SymmetricAlgorithm::Camellia192,
        "CAMELLIA256" | "13" => SymmetricAlgorithm::Camellia256,
        _ => return None,
    };
    algo.is_supported().then_some(algo)
}

/// Parses a gpg digest name or number for `--s2k-digest-algo`.
pub fn hash_from_name(name: &str) -> Option<openpgp::types::HashAlgorithm> {
    use openpgp::types::HashAlgorithm as H;
    let n = name.trim().to_ascii_uppercase().replace('-', "");
    let algo = match n.as_str() {
        "MD5" | "1" => H::MD5,
        "SHA1" | "2" => H::SHA1,
        "RIPEMD160" | "RMD160" | "3" => H::RipeMD,
        "SHA256" | "8" => H::SHA256,
        "SHA384" | "9" => H::SHA384,
        "SHA512" | "10" => H::SHA512,
        "SHA224" | "11" => H::SHA224,
        _ => return None,
    };
    algo.is_supported().then_some(algo)
}

#[cfg(test)]
mod tests;
