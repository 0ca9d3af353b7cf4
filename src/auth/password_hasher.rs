//! argon2id hashing on the blocking pool, at most `concurrency` at once, so a flood of logins
//! never starves the async workers (DESIGN §9).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::phc::PasswordHash as PhcHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordHashingSettings;
use crate::domain::password::{Password, PasswordHash};

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verified against when the account is unknown or has no password, so those cases cost
    /// the same work as a wrong password (z2p's dummy hash).
    dummy: Arc<PasswordHash>,
    /// argon2 runs started (hashes and verifications), shared by every clone.
    evaluations: Arc<AtomicU64>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 parameters are invalid: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("the hashing pool is closed")]
    Closed,
}

impl PasswordHasher {
    /// Builds the hasher and, once, the dummy hash with the configured cost.
    pub fn new(settings: &PasswordHashingSettings) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        let dummy = hash_now(&params, "chipflap dummy password")?;
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(settings.concurrency)),
            dummy: Arc::new(dummy),
            evaluations: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many argon2 evaluations (hashes and verifications) this hasher has started, so tests
    /// can prove that a throttled guess costs none.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::SeqCst)
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        self.evaluations.fetch_add(1, Ordering::SeqCst);
        let params = self.params.clone();
        let secret = password.expose().to_owned();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| hash_now(&params, &secret))).await?
    }

    /// True when `password` matches `hash`. With `None` (unknown user, or no password set) it
    /// verifies against the dummy hash and answers false, spending the same time.
    pub async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        self.evaluations.fetch_add(1, Ordering::SeqCst);
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.dummy).as_str().to_owned();
        let secret = password.expose().to_owned();
        let span = tracing::Span::current();
        let matched = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                PhcHash::new(&phc).is_ok_and(|parsed| {
                    Argon2::default()
                        .verify_password(secret.as_bytes(), &parsed)
                        .is_ok()
                })
            })
        })
        .await?;
        Ok(known && matched)
    }
}

fn hash_now(params: &Params, secret: &str) -> Result<PasswordHash, HashError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash = argon2
        .hash_password(secret.as_bytes())
        .map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(PasswordHash::from_phc(hash.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&PasswordHashingSettings {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
            concurrency: 2,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() {
        let h = hasher();
        let pw = Password::for_login("correct horse").unwrap();
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(h.verify(&pw, Some(&hash)).await.unwrap());
        let wrong = Password::for_login("wrong horse").unwrap();
        assert!(!h.verify(&wrong, Some(&hash)).await.unwrap());
        assert_eq!(h.evaluations(), 3, "one hash and two verifications");
    }

    #[tokio::test]
    async fn no_hash_never_verifies_even_for_the_dummy_password() {
        let h = hasher();
        let pw = Password::for_login("chipflap dummy password").unwrap();
        assert!(!h.verify(&pw, None).await.unwrap());
    }
}
