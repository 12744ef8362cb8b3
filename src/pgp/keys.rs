//! Keys picked from keyrings as gpg picks them: recipients' encryption keys for
//! `--encrypt-key`, the signing key for `--sign-key`, under gpg's acceptance rules
//! ([`super::policy`]).

use openpgp::cert::prelude::*;
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::Key;
use openpgp::parse::Parse;
use openpgp::Cert;
use sequoia_openpgp as openpgp;

use super::policy::{self, gpg_policy};
use super::{one_line, PgpError, PgpErrorKind};

fn cfg_err(what: impl Into<String>) -> PgpError {
    PgpError::new(PgpErrorKind::Config, what)
}

fn sq_err(kind: PgpErrorKind) -> impl Fn(openpgp::anyhow::Error) -> PgpError {
    move |e| PgpError::new(kind.clone(), one_line(&e))
}

/// Parses a binary keyring (`gpg --export`), skipping certificates sequoia cannot read.
pub fn parse_certs(keyring: &[u8]) -> Vec<Cert> {
    if keyring.is_empty() {
        return Vec::new();
    }
    match openpgp::cert::CertParser::from_bytes(keyring) {
        Ok(parser) => parser.flatten().collect(),
        Err(_) => Vec::new(),
    }
}

/// A recipient's encryption key and whether its key id is hidden.
#[derive(Clone)]
pub struct ResolvedRecipient {
    pub(crate) key: Key<PublicParts, UnspecifiedRole>,
    pub(crate) hidden: bool,
}

/// A key id or fingerprint as gpg accepts it (`0x` prefix, `!` suffix, spaces), upper-case hex.
pub(crate) fn normalize_id(id: &str) -> Option<String> {
    let s = id.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let s = s.trim_end_matches('!');
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_uppercase())
}

/// Finds each recipient's newest valid encryption key in `keyring`, as gpg would pick it.
pub fn resolve_recipients(
    keyring: &[u8],
    recipients: &[(String, bool)],
) -> Result<Vec<ResolvedRecipient>, PgpError> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let policy = gpg_policy();
    let mut certs = Vec::new();
    for c in CertParser::from_bytes(keyring).map_err(sq_err(PgpErrorKind::Config))? {
        match c {
            Ok(c) => certs.push(c),
            Err(e) => return Err(cfg_err(format!("cannot parse keyring: {}", one_line(&e)))),
        }
    }
    let mut out = Vec::new();
    for (id, hidden) in recipients {
        let want = normalize_id(id).ok_or_else(|| {
            cfg_err(format!(
                "recipient {id:?} is not a hex key id or fingerprint"
            ))
        })?;
        let cert = certs
            .iter()
            .find(|c| {
                c.keys()
                    .any(|k| k.key().fingerprint().to_hex().ends_with(&want))
            })
            .ok_or_else(|| cfg_err(format!("no public key for recipient {id} in the keyring")))?;
        let vc = cert
            .with_policy(&policy, None)
            .map_err(|e| cfg_err(format!("key {id} is not valid: {}", one_line(&e))))?;
        let key = vc
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .filter(policy::can_encrypt)
            // the newest, and a subkey over the primary key, as gpg picks
            .max_by_key(|ka| (ka.key().creation_time(), !ka.primary()))
            .map(|ka| ka.key().clone())
            .ok_or_else(|| cfg_err(format!("key {id} has no usable encryption key")))?;
        out.push(ResolvedRecipient {
            key: key.parts_into_public().role_into_unspecified(),
            hidden: *hidden,
        });
    }
    Ok(out)
}

/// Picks the key gpg would sign with for `--sign-key id`: that exact subkey when `id` names a
/// signing-capable subkey, else the newest valid signing-capable key of the certificate.
pub fn signing_key(
    certs: &[Cert],
    id: &str,
) -> Result<Key<PublicParts, UnspecifiedRole>, PgpError> {
    let want = normalize_id(id).ok_or_else(|| {
        PgpError::new(
            PgpErrorKind::Config,
            format!("sign key {id:?} is not a hex key id or fingerprint"),
        )
    })?;
    let policy = gpg_policy();
    let cert = certs
        .iter()
        .find(|c| {
            c.keys()
                .any(|k| k.key().fingerprint().to_hex().ends_with(&want))
        })
        .ok_or_else(|| {
            PgpError::new(
                PgpErrorKind::Config,
                format!("no public key for sign key {id} in the keyring"),
            )
        })?;
    let vc = cert.with_policy(&policy, None).map_err(|e| {
        PgpError::new(
            PgpErrorKind::Config,
            format!("sign key {id} is not valid: {}", one_line(&e)),
        )
    })?;
    let signing: Vec<_> = vc
        .keys()
        .alive()
        .revoked(false)
        .filter(policy::can_sign)
        .map(|ka| ka.key().clone().role_into_unspecified())
        .collect();
    let exact = signing.iter().find(|k| {
        k.fingerprint() != cert.fingerprint() && k.fingerprint().to_hex().ends_with(&want)
    });
    exact
        .or_else(|| signing.iter().max_by_key(|k| k.creation_time()))
        .cloned()
        .ok_or_else(|| {
            PgpError::new(
                PgpErrorKind::Config,
                format!("sign key {id} has no usable signing key"),
            )
        })
}
