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
        Ok(self.verify_and_upgrade(password, hash).await?.matched)
    }

    /// Like `verify`, and when the password matches a hash made with a lower cost than the
    /// configured one (or another argon2 variant), also hashes it again with the configured
    /// cost, in the same blocking task, so the caller can store the stronger hash (ASVS 5.0
    /// V11.4.2). A wrong password never costs a second run.
    pub async fn verify_and_upgrade(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<Verification, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Closed)?;
        self.evaluations.fetch_add(1, Ordering::SeqCst);
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.dummy).as_str().to_owned();
        let secret = password.expose().to_owned();
        let params = self.params.clone();
        let evaluations = Arc::clone(&self.evaluations);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let Ok(parsed) = PhcHash::new(&phc) else {
                    return Ok(Verification::default());
                };
                let matched = known
                    && Argon2::default()
                        .verify_password(secret.as_bytes(), &parsed)
                        .is_ok();
                let upgraded = if matched && below(&parsed, &params) {
                    evaluations.fetch_add(1, Ordering::SeqCst);
                    Some(hash_now(&params, &secret)?)
                } else {
                    None
                };
                Ok(Verification { matched, upgraded })
            })
        })
        .await?
    }
}

/// What checking a password found.
#[derive(Debug, Default)]
pub struct Verification {
    pub matched: bool,
    /// The same password hashed with the configured cost, when the stored hash was weaker.
    pub upgraded: Option<PasswordHash>,
}

/// True when `hash` is not argon2id v1.3 or any of its costs is below `params`.
fn below(hash: &PhcHash, params: &Params) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return true;
    };
    hash.algorithm.as_str() != Algorithm::Argon2id.as_str()
        || hash.version != Some(u32::from(Version::V0x13))
        || stored.m_cost() < params.m_cost()
        || stored.t_cost() < params.t_cost()
        || stored.p_cost() < params.p_cost()
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
    async fn a_match_against_a_weaker_or_other_variant_hash_is_upgraded_once() {
        let h = hasher();
        let pw = Password::for_login("correct horse").unwrap();
        let other_variant = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let argon2i = PasswordHash::from_phc(
            other_variant
                .hash_password(pw.expose().as_bytes())
                .unwrap()
                .to_string(),
        );
        let cheaper = PasswordHasher::new(&PasswordHashingSettings {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
        })
        .unwrap();
        let stronger = PasswordHasher::new(&PasswordHashingSettings {
            memory_kib: 16,
            iterations: 2,
            parallelism: 1,
            concurrency: 1,
        })
        .unwrap();
        let weak = cheaper.hash(&pw).await.unwrap();

        let v = h.verify_and_upgrade(&pw, Some(&argon2i)).await.unwrap();
        assert!(v.matched);
        let upgraded = v.upgraded.unwrap();
        assert!(upgraded.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(h.verify(&pw, Some(&upgraded)).await.unwrap());

        let before = stronger.evaluations();
        let v = stronger.verify_and_upgrade(&pw, Some(&weak)).await.unwrap();
        assert!(v.upgraded.unwrap().as_str().contains("$m=16,t=2,p=1$"));
        assert_eq!(
            stronger.evaluations() - before,
            2,
            "one check, one new hash"
        );

        // A wrong password, or a hash at the configured cost, is never re-hashed.
        let wrong = Password::for_login("wrong horse").unwrap();
        let v = stronger
            .verify_and_upgrade(&wrong, Some(&weak))
            .await
            .unwrap();
        assert!(!v.matched && v.upgraded.is_none());
        let v = cheaper.verify_and_upgrade(&pw, Some(&weak)).await.unwrap();
        assert!(v.matched && v.upgraded.is_none());
    }

    #[tokio::test]
    async fn no_hash_never_verifies_even_for_the_dummy_password() {
        let h = hasher();
        let pw = Password::for_login("chipflap dummy password").unwrap();
        assert!(!h.verify(&pw, None).await.unwrap());
    }
}
