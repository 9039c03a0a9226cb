//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane), off the async runtime.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// Checks the length rules (in characters, so a Unicode passphrase is measured as the user sees it).
pub fn validate(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(Error::invalid("weak_password", format!("the password must have at least {MIN_LEN} characters")));
    }
    if n > MAX_LEN {
        return Err(Error::invalid("invalid_password", format!("the password may have at most {MAX_LEN} characters")));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Hashes a password (argon2id, random salt) on the blocking pool.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
}

/// Verifies a password against a stored hash. With `None` it still does the full work against a fixed
/// hash, so an unknown email takes as long as a wrong password.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = match stored {
            Some(s) => s,
            None => dummy_hash()?.to_owned(),
        };
        Ok(Argon2::default().verify_password(password.as_bytes(), stored.as_str()).is_ok())
    })
    .await
    .map_err(|e| Error::internal(format!("password verification task failed: {e}")))?
}

fn dummy_hash() -> Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h);
    }
    let h = hash_blocking("confctl timing equaliser")?;
    Ok(DUMMY.get_or_init(|| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("wrong horse!".into(), Some(h)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn length_rules_count_characters() {
        assert!(validate("short").is_err());
        assert!(validate("пароль12").is_ok(), "8 Cyrillic characters are 16 bytes but 8 characters");
        assert!(validate(&"x".repeat(129)).is_err());
    }
}
