//! gpg's acceptance rules as a sequoia policy, so that every key and signature gpg 2.2/2.4
//! accepts for encryption, decryption, signing and verification is accepted in-process.
//!
//! sequoia's standard policy is stricter than gpg's defaults: it rejects SHA-1 self-signatures
//! and subkey bindings made after 2013 (every key gpg made before about 2013 has them), RSA,
//! DSA and ElGamal keys under 2048 bits, the old ciphers and SED packets. gpg accepts all of
//! these, and duplicity archives made with such keys must restore as they do with gpg.
//! The one digest gpg rejects by default (`--weak-digest MD5`) stays rejected.

use openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation;
use openpgp::packet::key::PublicParts;
use openpgp::packet::Tag;
use openpgp::policy::{AsymmetricAlgorithm, StandardPolicy};
use openpgp::types::{HashAlgorithm, PublicKeyAlgorithm, SymmetricAlgorithm};
use sequoia_openpgp as openpgp;

/// Digests gpg accepts in self-signatures, bindings and data signatures.
const GPG_HASHES: [HashAlgorithm; 6] = [
    HashAlgorithm::SHA1,
    HashAlgorithm::RipeMD,
    HashAlgorithm::SHA224,
    HashAlgorithm::SHA256,
    HashAlgorithm::SHA384,
    HashAlgorithm::SHA512,
];

/// Public-key algorithms and sizes gpg uses, old ones included.
const GPG_ASYMMETRIC: [AsymmetricAlgorithm; 20] = [
    AsymmetricAlgorithm::RSA1024,
    AsymmetricAlgorithm::RSA2048,
    AsymmetricAlgorithm::RSA3072,
    AsymmetricAlgorithm::RSA4096,
    AsymmetricAlgorithm::ElGamal1024,
    AsymmetricAlgorithm::ElGamal2048,
    AsymmetricAlgorithm::ElGamal3072,
    AsymmetricAlgorithm::ElGamal4096,
    AsymmetricAlgorithm::DSA1024,
    AsymmetricAlgorithm::DSA2048,
    AsymmetricAlgorithm::DSA3072,
    AsymmetricAlgorithm::DSA4096,
    AsymmetricAlgorithm::NistP256,
    AsymmetricAlgorithm::NistP384,
    AsymmetricAlgorithm::NistP521,
    AsymmetricAlgorithm::BrainpoolP256,
    AsymmetricAlgorithm::BrainpoolP384,
    AsymmetricAlgorithm::BrainpoolP512,
    AsymmetricAlgorithm::Cv25519,
    AsymmetricAlgorithm::EdDSA,
];

/// Ciphers a legacy archive may use.
#[allow(deprecated)]
const GPG_CIPHERS: [SymmetricAlgorithm; 11] = [
    SymmetricAlgorithm::IDEA,
    SymmetricAlgorithm::TripleDES,
    SymmetricAlgorithm::CAST5,
    SymmetricAlgorithm::Blowfish,
    SymmetricAlgorithm::AES128,
    SymmetricAlgorithm::AES192,
    SymmetricAlgorithm::AES256,
    SymmetricAlgorithm::Twofish,
    SymmetricAlgorithm::Camellia128,
    SymmetricAlgorithm::Camellia192,
    SymmetricAlgorithm::Camellia256,
];

/// The policy every in-process OpenPGP operation uses: what gpg 2.2/2.4 accept by default.
pub(crate) fn gpg_policy() -> StandardPolicy<'static> {
    let mut p = StandardPolicy::new();
    for h in GPG_HASHES {
        p.accept_hash(h);
    }
    p.reject_hash(HashAlgorithm::MD5);
    for a in GPG_ASYMMETRIC {
        p.accept_asymmetric_algo(a);
    }
    for c in GPG_CIPHERS {
        p.accept_symmetric_algo(c);
    }
    // Symmetrically encrypted data without MDC, as gpg 1.x wrote it; duplicity always
    // passes --ignore-mdc-error, and damage still ends in a decompression or tar error.
    p.accept_packet_tag(Tag::SED);
    p
}

/// Whether gpg would sign with a key of this algorithm when its binding carries no key flags
/// (keys made by PGP and early gpg): gpg derives the usage from the algorithm.
#[allow(deprecated)]
fn signs_without_flags(algo: PublicKeyAlgorithm) -> bool {
    matches!(
        algo,
        PublicKeyAlgorithm::RSAEncryptSign
            | PublicKeyAlgorithm::RSASign
            | PublicKeyAlgorithm::DSA
            | PublicKeyAlgorithm::ECDSA
            | PublicKeyAlgorithm::EdDSA
            | PublicKeyAlgorithm::Ed25519
            | PublicKeyAlgorithm::Ed448
    )
}

/// Whether gpg would encrypt to a key of this algorithm when its binding carries no key flags.
#[allow(deprecated)]
fn encrypts_without_flags(algo: PublicKeyAlgorithm) -> bool {
    matches!(
        algo,
        PublicKeyAlgorithm::RSAEncryptSign
            | PublicKeyAlgorithm::RSAEncrypt
            | PublicKeyAlgorithm::ElGamalEncrypt
            | PublicKeyAlgorithm::ElGamalEncryptSign
            | PublicKeyAlgorithm::ECDH
            | PublicKeyAlgorithm::X25519
            | PublicKeyAlgorithm::X448
    )
}

/// Whether gpg would sign with this key: its key flags say so, or it has none and its
/// algorithm can sign.
pub(crate) fn can_sign(ka: &ValidErasedKeyAmalgamation<'_, PublicParts>) -> bool {
    match ka.key_flags() {
        Some(f) => f.for_signing(),
        None => signs_without_flags(ka.key().pk_algo()),
    }
}

/// Whether gpg would encrypt to this key: its key flags allow storage or transport
/// encryption, or it has none and its algorithm can encrypt.
pub(crate) fn can_encrypt(ka: &ValidErasedKeyAmalgamation<'_, PublicParts>) -> bool {
    match ka.key_flags() {
        Some(f) => f.for_storage_encryption() || f.for_transport_encryption(),
        None => encrypts_without_flags(ka.key().pk_algo()),
    }
}
