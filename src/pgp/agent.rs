//! Secret-key operations through the user's gpg-agent (sequoia-gpg-agent): decrypting session
//! keys of PKESK packets and signing. Secret keys never leave the agent; dupcore only holds the
//! public certificates (`gpg --export`) to know which keys to ask for.

use std::path::PathBuf;

use openpgp::crypto::{self, mpi, Password, SessionKey};
use openpgp::packet::key::{PublicParts, UnspecifiedRole};
use openpgp::packet::{Key, PKESK};
use openpgp::types::{HashAlgorithm, SymmetricAlgorithm};
use openpgp::{Cert, KeyID};
use sequoia_gpg_agent::KeyPair;
use sequoia_openpgp as openpgp;

use super::{one_line, PgpError, PgpErrorKind};

/// Where the agent listens and how to unlock keys.
#[derive(Clone, Debug, Default)]
pub struct AgentConfig {
    /// The agent's socket (`gpgconf --list-dirs agent-socket`).
    pub socket: PathBuf,
    /// Passphrase handed over by loopback pinentry (duplicity without `--use-agent`); None lets
    /// the agent use its cache or its own pinentry.
    pub passphrase: Option<String>,
}

impl AgentConfig {
    /// A key pair for `key` whose secret half stays in the agent.
    pub fn keypair(&self, key: &Key<PublicParts, UnspecifiedRole>) -> Result<KeyPair, PgpError> {
        let kp = KeyPair::new_for_socket(&self.socket, key).map_err(|e| {
            PgpError::new(
                PgpErrorKind::Unsupported,
                format!("gpg-agent is not usable: {e}"),
            )
        })?;
        Ok(match &self.passphrase {
            Some(p) => kp.with_password(Password::from(p.as_str())),
            None => kp,
        })
    }
}

/// A decryptor that remembers why the agent refused, since PKESK decryption only says "no".
struct Recording {
    inner: KeyPair,
    error: Option<String>,
}

impl crypto::Decryptor for Recording {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        crypto::Decryptor::public(&self.inner)
    }

    fn decrypt(
        &mut self,
        ciphertext: &mpi::Ciphertext,
        plaintext_len: Option<usize>,
    ) -> openpgp::Result<SessionKey> {
        self.inner
            .decrypt(ciphertext, plaintext_len)
            .inspect_err(|e| self.error = Some(one_line(e)))
    }
}

/// Encryption-capable keys of `certs` that `pkesk` may be addressed to: the named one, or all of
/// them for a hidden recipient (key id 0), as gpg tries its secret keys in turn.
fn candidates(certs: &[Cert], recipient: Option<KeyID>) -> Vec<&Key<PublicParts, UnspecifiedRole>> {
    let hidden = recipient.as_ref().is_none_or(|id| *id == KeyID::wildcard());
    certs
        .iter()
        .flat_map(|c| c.keys())
        .map(|ka| ka.key().role_as_unspecified())
        .filter(|k| k.pk_algo().for_encryption())
        .filter(|k| hidden || recipient.as_ref() == Some(&k.keyid()))
        .collect()
}

/// The outcome of asking the agent for a message's session key.
pub enum Unlocked {
    /// The session key was decrypted and accepted by `try_key`.
    Key,
    /// No PKESK is addressed to a key in `certs` (the secret keys gpg lists).
    NoKey(String),
    /// The agent refused every candidate; the last reason.
    Refused(String),
}

/// Asks the agent to decrypt the PKESKs addressed to keys in `certs`, handing each session key
/// to `try_key` until one decrypts the data.
pub fn unlock(
    agent: &AgentConfig,
    certs: &[Cert],
    pkesks: &[PKESK],
    sym_algo: Option<SymmetricAlgorithm>,
    try_key: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
) -> Result<Unlocked, PgpError> {
    let mut asked = false;
    let mut last_refusal = None;
    for pkesk in pkesks {
        let recipient = pkesk.recipient().map(KeyID::from);
        for key in candidates(certs, recipient) {
            asked = true;
            let mut dec = Recording {
                inner: agent.keypair(key)?,
                error: None,
            };
            if let Some((algo, sk)) = pkesk.decrypt(&mut dec, sym_algo) {
                if try_key(algo, &sk) {
                    return Ok(Unlocked::Key);
                }
            }
            if let Some(e) = dec.error {
                last_refusal = Some(format!("key {}: {e}", key.keyid()));
            }
        }
    }
    if !asked {
        let ids: Vec<String> = pkesks
            .iter()
            .map(|p| p.recipient().map(KeyID::from).unwrap_or(KeyID::wildcard()))
            .map(|id| id.to_hex())
            .collect();
        return Ok(Unlocked::NoKey(format!(
            "no secret key: encrypted to key id {}, and gpg --list-secret-keys has none of them",
            ids.join(", ")
        )));
    }
    Ok(Unlocked::Refused(last_refusal.unwrap_or_else(|| {
        "the secret keys did not decrypt the session key".into()
    })))
}

/// Whether an agent refusal means a wrong passphrase (gpg-agent's "Bad passphrase").
pub fn is_bad_passphrase(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("bad passphrase") || r.contains("no passphrase given")
}

/// The digest used for signatures: SHA-256, as gpg 2.2 uses for RSA and EdDSA keys.
pub const SIGN_HASH: HashAlgorithm = HashAlgorithm::SHA256;
