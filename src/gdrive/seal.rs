//! Refresh tokens at rest: sealed with AES-256-GCM under a key derived (HKDF-SHA256) from versioned,
//! instance-wide key material, and bound to the account they belong to. Rotation adds a version, re-seals
//! every token with it and drops the versions nothing uses any more.
//!
//! The key material lives in the database (`drive_token_keys`), like the instance's other keys, so every
//! replica can open what another sealed. Sealing keeps the token out of anything that shows rows — query
//! output, a table export, a log line — but a copy of the whole database holds both halves: after such a
//! leak, hosts disconnect and reconnect (see docs/security.md).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ids;
use crate::secret::Secret;
use crate::store::DriveKeyRecord;

const NONCE_LEN: usize = 12;

/// One version's sealing key. Its `Debug` shows only the version.
pub(crate) struct SealKey {
    pub version: i64,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey(v{})", self.version)
    }
}

impl SealKey {
    fn derive(record: &DriveKeyRecord) -> Result<Self> {
        let material = URL_SAFE_NO_PAD
            .decode(record.material.expose())
            .map_err(|_| Error::internal(format!("Drive token key version {} is not base64url", record.version)))?;
        // A dedicated key for this one purpose and version, so the material could serve others later.
        let hkdf = Hkdf::<Sha256>::new(Some(b"confctl drive token key"), &material);
        let mut key = [0u8; 32];
        hkdf.expand(format!("refresh-token v{}", record.version).as_bytes(), &mut key)
            .map_err(|_| Error::internal("HKDF refused a 32-byte key"))?;
        Ok(Self { version: record.version, cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)) })
    }

    /// The account id is authenticated with the token, so a sealed token copied to another account's row
    /// does not open.
    fn aad(user_id: &str) -> Vec<u8> {
        format!("confctl drive refresh token\n{user_id}").into_bytes()
    }

    /// base64url(nonce ‖ ciphertext ‖ tag), with a fresh random nonce.
    pub fn seal(&self, user_id: &str, plaintext: &Secret) -> Result<String> {
        let nonce = ids::random_bytes::<NONCE_LEN>();
        let aad = Self::aad(user_id);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.expose().as_bytes(), aad: &aad })
            .map_err(|_| Error::internal("AES-GCM refused to seal a refresh token"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The token, or `None` when the text was not sealed by this key for this account.
    pub fn open(&self, user_id: &str, sealed: &str) -> Option<Secret> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let aad = Self::aad(user_id);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad }).ok()?;
        String::from_utf8(plain).ok().map(Secret::new)
    }
}

/// Every key version, oldest first.
async fn keys(app: &App) -> Result<Vec<SealKey>> {
    app.store().drive_token_keys().await?.iter().map(SealKey::derive).collect()
}

/// Adds key version `version` made of fresh random material; `false` when another process added it first.
async fn add_version(app: &App, version: i64) -> Result<bool> {
    let material = URL_SAFE_NO_PAD.encode(ids::random_bytes::<32>());
    app.store().insert_drive_token_key(version, &material).await
}

/// The newest key, which seals; made on first use.
pub(crate) async fn current(app: &App) -> Result<SealKey> {
    if let Some(key) = keys(app).await?.pop() {
        return Ok(key);
    }
    add_version(app, 1).await?;
    keys(app).await?.pop().ok_or_else(|| Error::internal("the first Drive token key was not stored"))
}

/// The key of one version, if it still exists.
pub(crate) async fn version(app: &App, version: i64) -> Result<Option<SealKey>> {
    Ok(keys(app).await?.into_iter().find(|k| k.version == version))
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// The key version that seals from now on.
    pub version: i64,
    /// Tokens re-sealed with it.
    pub resealed: usize,
    /// Accounts whose sealed token no key opens (their key is gone or the row was damaged): they must
    /// reconnect; their old version is kept so nothing is lost by a retry.
    pub unreadable: Vec<String>,
    /// Old versions deleted because no token uses them any more.
    pub removed_versions: Vec<i64>,
}

/// Rotates the sealing key: a new version, every token re-sealed with it, unused versions deleted.
pub(crate) async fn rotate(app: &App) -> Result<Rotation> {
    let newest = keys(app).await?.last().map_or(0, |k| k.version);
    let version = newest + 1;
    if !add_version(app, version).await? {
        return Err(Error::conflict("rotation_in_progress", "another key rotation is under way; try again"));
    }
    let all = keys(app).await?;
    let new_key = all
        .iter()
        .find(|k| k.version == version)
        .ok_or_else(|| Error::internal("the new Drive token key was not stored"))?;
    let mut resealed = 0;
    let mut unreadable = Vec::new();
    for row in app.store().drive_connections_sealed_before(version).await? {
        let token =
            all.iter().find(|k| k.version == row.key_version).and_then(|k| k.open(&row.user_id, &row.refresh_token));
        let Some(token) = token else {
            unreadable.push(row.user_id);
            continue;
        };
        let sealed = new_key.seal(&row.user_id, &token)?;
        // A host who reconnected meanwhile already has a token sealed with a current key: leave it.
        if app.store().reseal_drive_connection(&row.user_id, &row.refresh_token, &sealed, version).await? {
            resealed += 1;
        }
    }
    let removed_versions = app.store().delete_unused_drive_token_keys(version).await?;
    Ok(Rotation { version, resealed, unreadable, removed_versions })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(version: i64, material: &[u8; 32]) -> SealKey {
        SealKey::derive(&DriveKeyRecord { version, material: Secret::new(URL_SAFE_NO_PAD.encode(material)) }).unwrap()
    }

    #[test]
    fn sealed_tokens_open_only_with_their_key_and_account() {
        let k1 = key(1, &[7; 32]);
        let token = Secret::new("1//0refresh-token-text");
        let sealed = k1.seal("user-a", &token).unwrap();
        assert!(!sealed.contains("refresh-token-text"));
        assert_ne!(sealed, k1.seal("user-a", &token).unwrap(), "a fresh nonce every time");
        assert_eq!(k1.open("user-a", &sealed).unwrap().expose(), token.expose());
        assert!(k1.open("user-b", &sealed).is_none(), "bound to the account");
        assert!(key(2, &[7; 32]).open("user-a", &sealed).is_none(), "each version derives its own key");
        assert!(key(1, &[8; 32]).open("user-a", &sealed).is_none());
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k1.open("user-a", &URL_SAFE_NO_PAD.encode(tampered)).is_none(), "authenticated");
        assert!(k1.open("user-a", "short").is_none());
        assert_eq!(format!("{k1:?}"), "SealKey(v1)");
    }
}
