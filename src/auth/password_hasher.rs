//! argon2id on a fixed set of hashing threads, each reusing its own working memory, fed by a
//! bounded queue that answers `Busy` when full, so no flood grows memory or starves the async
//! workers (DESIGN §9).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as PhcHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;

use crate::config::PasswordHashingSettings;
use crate::domain::password::{Password, PasswordHash};

/// A handle on the hashing threads; clones share them. The threads end when the last clone is
/// dropped (the queue closes).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    jobs: SyncSender<Job>,
    /// Verified against when the account is unknown or has no password, so those cases cost
    /// the same work as a wrong password (z2p's dummy hash).
    dummy: Arc<PasswordHash>,
    /// argon2 runs started (hashes and verifications), shared by every clone.
    evaluations: Arc<AtomicU64>,
    /// One permit per job the engine takes: `concurrency` running plus `queue` waiting. A
    /// caller holds one (`HashSlot`) from `reserve` until its job has run, so it learns it
    /// would be `Busy` before doing anything else (a login then writes no throttle count).
    slots: Arc<tokio::sync::Semaphore>,
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
    /// Every hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs already wait: the caller
    /// answers 503 with `Retry-After: 1` at once. Nothing was hashed.
    #[error("{BUSY}")]
    Busy,
    #[error("the hashing threads are gone")]
    Closed,
}

/// The public text of a `Busy` answer, in every endpoint's shape and in the CLI.
pub const BUSY: &str = "The server is busy checking other passwords; try again in a moment";

/// A unit of work for one hashing thread, given that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

impl PasswordHasher {
    /// Starts `settings.concurrency` hashing threads behind a queue of `settings.queue` jobs,
    /// and makes the dummy hash (no argon2 run: see [`dummy_hash`]).
    pub fn new(settings: &PasswordHashingSettings) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        // The threads' own memory is only taken when they first hash, so an idle server holds
        // none of it.
        let dummy = dummy_hash(&params)?;
        let concurrency = settings.concurrency.max(1);
        let queued = settings.queue.max(1);
        // Room for every permit's job, so a reserved slot never finds the channel full.
        let (jobs, queue) = mpsc::sync_channel::<Job>(queued + concurrency);
        let queue = Arc::new(Mutex::new(queue));
        let blocks = params.block_count();
        for n in 0..concurrency {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("chipflap-argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    run_jobs(&queue, blocks);
                })
                .map_err(|e| HashError::Hash(format!("starting a hashing thread: {e}")))?;
        }
        Ok(PasswordHasher {
            params,
            jobs,
            dummy: Arc::new(dummy),
            evaluations: Arc::new(AtomicU64::new(0)),
            slots: Arc::new(tokio::sync::Semaphore::new(queued + concurrency)),
        })
    }

    /// A place in the engine for one job, or `Busy` at once when every hashing thread is busy
    /// and `CHIPFLAP_HASH_QUEUE` jobs already wait. Dropping an unused slot gives it back.
    pub fn reserve(&self) -> Result<HashSlot, HashError> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Ok(HashSlot {
                hasher: self.clone(),
                permit,
            }),
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(HashError::Busy),
            Err(tokio::sync::TryAcquireError::Closed) => Err(HashError::Closed),
        }
    }

    /// How many argon2 evaluations (hashes and verifications) this hasher has started, so tests
    /// can prove that a throttled guess costs none.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::SeqCst)
    }

    /// A PHC string (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`) of `password` with a fresh
    /// random salt and the configured cost. `Busy` when the queue is full.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.reserve()?.hash(password).await
    }

    /// True when `password` matches `hash`. With `None` (unknown user, or no password set) it
    /// verifies against the dummy hash and answers false, spending the same time.
    pub async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, HashError> {
        Ok(self
            .reserve()?
            .verify_and_upgrade(password, hash)
            .await?
            .matched)
    }
}

/// A reserved place in the hashing engine (`PasswordHasher::reserve`), spent by one job.
pub struct HashSlot {
    hasher: PasswordHasher,
    permit: tokio::sync::OwnedSemaphorePermit,
}

impl HashSlot {
    /// `PasswordHasher::hash` in this slot.
    pub async fn hash(self, password: &Password) -> Result<PasswordHash, HashError> {
        let params = self.hasher.params.clone();
        let secret = password.expose().to_owned();
        let evaluations = Arc::clone(&self.hasher.evaluations);
        self.submit(move |memory| {
            evaluations.fetch_add(1, Ordering::SeqCst);
            hash_into(&params, secret.as_bytes(), memory)
        })
        .await
    }

    /// Like `verify`, and when the password matches a hash made with a lower cost than the
    /// configured one (or another argon2 variant), also hashes it again with the configured
    /// cost, in the same job, so the caller can store the stronger hash (ASVS 5.0 V11.4.2). A
    /// wrong password never costs a second run.
    pub async fn verify_and_upgrade(
        self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<Verification, HashError> {
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.hasher.dummy).as_str().to_owned();
        let secret = password.expose().to_owned();
        let params = self.hasher.params.clone();
        let evaluations = Arc::clone(&self.hasher.evaluations);
        self.submit(move |memory| {
            evaluations.fetch_add(1, Ordering::SeqCst);
            let Ok(parsed) = PhcHash::new(&phc) else {
                return Ok(Verification::default());
            };
            // `&`, not `&&`: the dummy is computed too, so an unknown account costs the same
            // argon2 run as a wrong password (no enumeration by timing).
            let matched = verify_into(&parsed, secret.as_bytes(), memory) & known;
            let upgraded = if matched && below(&parsed, &params) {
                evaluations.fetch_add(1, Ordering::SeqCst);
                Some(hash_into(&params, secret.as_bytes(), memory)?)
            } else {
                None
            };
            Ok(Verification { matched, upgraded })
        })
        .await
    }

    /// Queues `work` in this slot and awaits its answer. The slot is given back once the job
    /// has run, or been skipped: a job whose caller has gone (client disconnected) is not
    /// computed.
    async fn submit<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (answer, answered) = oneshot::channel();
        let span = tracing::Span::current();
        let permit = self.permit;
        let job: Job = Box::new(move |memory| {
            let _permit = permit;
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(span.in_scope(|| work(memory)));
        });
        match self.hasher.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(HashError::Closed),
        }
        answered.await.map_err(|_| HashError::Closed)?
    }
}

/// The nice value of the hashing threads: the kernel then gives a runnable async worker about
/// nine times a hashing thread's share of a core (CFS weights 1024 against 110), and hashing
/// still gets its share when the CPU is busy.
pub const HASHING_NICE: i32 = 10;

/// Lowers the calling hashing thread to [`HASHING_NICE`], so the async workers (Ably tokens,
/// refreshes, `/user`) do not wait behind argon2.
///
/// Chosen by measurement (release build, 2 cores shared with other builds at load 13-20, so
/// only ratios within one run count): the Ably JWT endpoint (`wrk -t1 -c8 -d10s`) while a
/// second wrk floods `/token` with wrong passwords at 16 connections, two rounds per mode.
/// Ably alone: 2,403 req/s. Plain threads: 1,761 and 1,733 req/s (logins 38 and 45/s). nice 10:
/// 2,408 and 2,305 (logins 29 and 33/s). SCHED_IDLE: 2,994 and 2,461 (logins 23 and 21/s).
/// p50 fell from 3.0 ms (plain) to 2.1-2.5 ms with either; p99 was the machine's noise (72 ms
/// with no flood at all). nice 10 keeps the Ably rate at its no-flood level, as SCHED_IDLE
/// does within the noise, but SCHED_IDLE starves logins whenever anything else wants the CPU
/// (a signup in the test suite waited over 5 s during a parallel build): nice 10 never does.
/// Confirmed with this code in a later run: Ably alone 2,738 req/s; under the flood 2,858 at
/// nice 10 (logins 33/s) against 2,057 and 2,141 with the threads reset to plain.
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), HASHING_NICE) {
        tracing::warn!(error = %e, "password hashing runs at normal priority (setpriority refused)");
    }
}

/// One hashing thread: takes jobs until the queue closes. Its argon2 memory, `blocks` blocks
/// of 1 KiB (the configured m_cost), is allocated on its first job and reused by every later
/// one: the allocator sees no other argon2-sized request from this thread (but for a stored
/// hash costlier than configured, see `verify_into`).
fn run_jobs(queue: &Mutex<Receiver<Job>>, blocks: usize) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while waiting for the next job; the others wait on it.
        let next = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else {
            return;
        };
        if memory.is_empty() {
            memory = vec![Block::new(); blocks];
        }
        // A panicking job drops its answer (the caller gets `Closed`); the thread lives on and
        // its memory, plain blocks that every run overwrites, stays usable.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            tracing::error!("a password hashing job panicked");
        }
    }
}

/// What checking a password found.
#[derive(Debug, Default)]
pub struct Verification {
    pub matched: bool,
    /// The same password hashed with the configured cost, when the stored hash was weaker.
    pub upgraded: Option<PasswordHash>,
}

/// argon2id v1.3 of `secret` with a fresh OS-random salt, computed in `memory`.
fn hash_into(
    params: &Params,
    secret: &[u8],
    memory: &mut Vec<Block>,
) -> Result<PasswordHash, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
    let salt = argon2::password_hash::try_generate_salt().map_err(|e| failed(&e))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = params.block_count();
    if memory.len() < blocks {
        // Only unit tests come here: threads arrive sized.
        *memory = vec![Block::new(); blocks];
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(secret, &salt, &mut output, memory.as_mut_slice())
        .map_err(|e| failed(&e))?;
    phc_string(params, &salt, &output)
}

/// The hash verified against when the account is unknown or has no password: a PHC string
/// with the configured cost, a random salt and a random output, made without running argon2.
/// Verifying against it runs argon2 at exactly the configured cost, like any stored hash, and
/// no password can match it but with 2^-256 chance (and `known = false` forces the answer to
/// false anyway). Making it by hashing would cost a full argon2 run and its memory at startup,
/// memory the allocator then keeps (glibc raises its mmap threshold to a freed mmapped block).
fn dummy_hash(params: &Params) -> Result<PasswordHash, HashError> {
    let salt =
        argon2::password_hash::try_generate_salt().map_err(|e| HashError::Hash(e.to_string()))?;
    let output: [u8; Params::DEFAULT_OUTPUT_LEN] = rand::random();
    phc_string(params, &salt, &output)
}

/// `$argon2id$v=19$m=..,t=..,p=..$salt$output` for the given parts.
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> Result<PasswordHash, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
    let phc = PhcHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(output).map_err(|e| failed(&e))?),
    };
    Ok(PasswordHash::from_phc(phc.to_string()))
}

/// Recomputes `stored` (its variant, version, cost and salt) for `secret` and compares the
/// outputs in constant time. A malformed hash never matches.
fn verify_into(stored: &PhcHash, secret: &[u8], memory: &mut [Block]) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::new(stored.algorithm.as_str()) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(output) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let blocks = params.block_count();
    let computed = if let Some(memory) = memory.get_mut(..blocks) {
        argon2.hash_password_into_with_memory(secret, salt.as_ref(), output, memory)
    } else {
        // A hash stored with more memory than configured now (the operator lowered the cost):
        // a temporary allocation for this job alone. Bounded: at most one per hashing thread
        // at a time, only for hashes this server once made at a cost the operator had chosen,
        // and rare, since the first right password rewrites the hash at the configured cost.
        let mut larger = vec![Block::new(); blocks];
        argon2.hash_password_into_with_memory(secret, salt.as_ref(), output, larger.as_mut_slice())
    };
    computed.is_ok() && bool::from(output.ct_eq(expected.as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    fn settings(memory_kib: u32, iterations: u32, concurrency: usize) -> PasswordHashingSettings {
        PasswordHashingSettings {
            memory_kib,
            iterations,
            parallelism: 1,
            concurrency,
            queue: 16,
        }
    }

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(&settings(8, 1, 2)).unwrap()
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
    async fn our_hashes_match_the_argon2_crates_own_format_and_verifier() {
        let h = hasher();
        let pw = Password::for_login("correct horse").unwrap();
        let ours = h.hash(&pw).await.unwrap();
        let parsed = PhcHash::new(ours.as_str()).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), 16, "a 16-byte random salt");
        assert_eq!(parsed.hash.unwrap().len(), 32, "a 32-byte output");
        Argon2::default()
            .verify_password(pw.expose().as_bytes(), &parsed)
            .unwrap();
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        )
        .hash_password(pw.expose().as_bytes())
        .unwrap()
        .to_string();
        assert!(
            h.verify(&pw, Some(&PasswordHash::from_phc(theirs)))
                .await
                .unwrap()
        );
        assert_ne!(h.hash(&pw).await.unwrap().as_str(), ours.as_str(), "salted");
    }

    #[tokio::test]
    async fn each_thread_allocates_its_memory_once_and_reuses_it() {
        use std::collections::HashMap;
        let h = PasswordHasher::new(&settings(64, 1, 1)).unwrap();
        let pw = Password::for_login("correct horse").unwrap();
        /// Each thread's name, and where its memory was (address, blocks) at each job.
        type Seen = HashMap<String, Vec<(usize, usize)>>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        for _ in 0..3 {
            let hash = h.hash(&pw).await.unwrap();
            assert!(h.verify(&pw, Some(&hash)).await.unwrap());
            let seen = Arc::clone(&seen);
            h.reserve()
                .unwrap()
                .submit(move |memory| {
                    let name = std::thread::current().name().unwrap_or("").to_owned();
                    let place = (memory.as_ptr() as usize, memory.capacity());
                    seen.lock().unwrap().entry(name).or_default().push(place);
                    Ok(())
                })
                .await
                .unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one thread: {seen:?}");
        let (name, places) = seen.iter().next().unwrap();
        assert_eq!(name, "chipflap-argon2-0");
        assert_eq!(places.len(), 3);
        assert!(places.iter().all(|p| *p == places[0]), "moved: {places:?}");
        assert_eq!(places[0].1, 64, "m_cost blocks of 1 KiB, no more");
    }

    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority_than_the_async_workers() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        let nice = hasher()
            .reserve()
            .unwrap()
            .submit(|_| Ok(rustix::process::getpriority_process(None).map_err(|e| e.to_string())))
            .await
            .unwrap()
            .unwrap();
        assert!(nice >= HASHING_NICE.max(caller), "nice {nice}");
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            caller,
            "the caller's thread keeps its priority"
        );
    }

    #[test]
    fn outputs_are_compared_in_constant_time_over_every_byte() {
        let params = Params::new(8, 1, 1, None).unwrap();
        let mut memory = Vec::new();
        let stored = hash_into(&params, b"correct horse", &mut memory).unwrap();
        let parsed = PhcHash::new(stored.as_str()).unwrap();
        assert!(verify_into(&parsed, b"correct horse", &mut memory));
        assert!(!verify_into(&parsed, b"correct horsf", &mut memory));
        // An output that differs only in its last byte is refused too (`ct_eq` reads it all).
        let mut tampered = parsed.clone();
        let mut bytes = parsed.hash.unwrap().as_bytes().to_vec();
        *bytes.last_mut().unwrap() ^= 1;
        tampered.hash = Some(Output::new(&bytes).unwrap());
        assert!(!verify_into(&tampered, b"correct horse", &mut memory));
    }

    #[tokio::test]
    async fn a_stored_hash_costlier_than_configured_still_verifies() {
        let costly = PasswordHasher::new(&settings(256, 1, 1)).unwrap();
        let cheap = PasswordHasher::new(&settings(8, 1, 1)).unwrap();
        let pw = Password::for_login("correct horse").unwrap();
        let hash = costly.hash(&pw).await.unwrap();
        let v = cheap
            .reserve()
            .unwrap()
            .verify_and_upgrade(&pw, Some(&hash))
            .await
            .unwrap();
        assert!(v.matched && v.upgraded.is_none(), "never downgraded");
        let wrong = Password::for_login("wrong horse").unwrap();
        assert!(!cheap.verify(&wrong, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once_and_hashes_nothing() {
        let h = PasswordHasher::new(&PasswordHashingSettings {
            queue: 1,
            ..settings(8, 1, 1)
        })
        .unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        // The unit test may hold the thread: it is the engine under test, not a caller's mock.
        let held = tokio::spawn({
            let h = h.clone();
            async move {
                h.reserve()
                    .unwrap()
                    .submit(move |_| {
                        let _ = started.send(());
                        let _ = wait.recv();
                        Ok(())
                    })
                    .await
            }
        });
        running.await.unwrap();
        // The one place in the queue, reserved and not yet used.
        let queued = h.reserve().unwrap();
        let pw = Password::for_login("correct horse").unwrap();
        assert!(matches!(h.verify(&pw, None).await, Err(HashError::Busy)));
        assert!(matches!(h.hash(&pw).await, Err(HashError::Busy)));
        assert_eq!(h.evaluations(), 0, "a refused job costs no argon2");
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        drop(queued);
        // Room again: the next job is served.
        assert!(!h.verify(&pw, None).await.unwrap());
        assert_eq!(h.evaluations(), 1);
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
        let cheaper = PasswordHasher::new(&settings(8, 1, 1)).unwrap();
        let stronger = PasswordHasher::new(&settings(16, 2, 1)).unwrap();
        let weak = cheaper.hash(&pw).await.unwrap();

        let v = h
            .reserve()
            .unwrap()
            .verify_and_upgrade(&pw, Some(&argon2i))
            .await
            .unwrap();
        assert!(v.matched);
        let upgraded = v.upgraded.unwrap();
        assert!(upgraded.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(h.verify(&pw, Some(&upgraded)).await.unwrap());

        let before = stronger.evaluations();
        let v = stronger
            .reserve()
            .unwrap()
            .verify_and_upgrade(&pw, Some(&weak))
            .await
            .unwrap();
        assert!(v.upgraded.unwrap().as_str().contains("$m=16,t=2,p=1$"));
        assert_eq!(
            stronger.evaluations() - before,
            2,
            "one check, one new hash"
        );

        // A wrong password, or a hash at the configured cost, is never re-hashed.
        let wrong = Password::for_login("wrong horse").unwrap();
        let v = stronger
            .reserve()
            .unwrap()
            .verify_and_upgrade(&wrong, Some(&weak))
            .await
            .unwrap();
        assert!(!v.matched && v.upgraded.is_none());
        let v = cheaper
            .reserve()
            .unwrap()
            .verify_and_upgrade(&pw, Some(&weak))
            .await
            .unwrap();
        assert!(v.matched && v.upgraded.is_none());
    }

    #[tokio::test]
    async fn the_dummy_hash_has_the_configured_cost_and_never_verifies() {
        let h = PasswordHasher::new(&PasswordHashingSettings {
            parallelism: 2,
            ..settings(16, 3, 1)
        })
        .unwrap();
        let dummy = PhcHash::new(h.dummy.as_str()).unwrap();
        assert_eq!(dummy.algorithm.as_str(), "argon2id");
        assert_eq!(dummy.version, Some(0x13));
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (16, 3, 2)
        );
        assert_eq!(
            dummy.salt.unwrap().len(),
            16,
            "a 16-byte salt, like a real hash"
        );
        assert_eq!(
            dummy.hash.unwrap().len(),
            32,
            "a 32-byte output, like a real hash"
        );
        let other = PasswordHasher::new(&settings(16, 3, 1)).unwrap();
        assert_ne!(
            h.dummy.as_str(),
            other.dummy.as_str(),
            "random, not a constant"
        );
        for guess in ["", "chipflap dummy password", "password", "correct horse"] {
            let pw = Password::for_login(guess).unwrap();
            assert!(!h.verify(&pw, None).await.unwrap(), "{guess:?}");
            // Even the unconstrained check (what `known = true` would ask) finds no match.
            let parsed = PhcHash::new(h.dummy.as_str()).unwrap();
            let mut memory = vec![Block::new(); params.block_count()];
            assert!(!verify_into(&parsed, pw.expose().as_bytes(), &mut memory));
        }
    }

    #[tokio::test]
    async fn an_unknown_account_costs_the_same_argon2_run_as_a_wrong_password() {
        // One thread: the memory its jobs see is the memory the dummy verification ran in.
        let h = PasswordHasher::new(&settings(64, 1, 1)).unwrap();
        let pw = Password::for_login("correct horse").unwrap();
        assert!(!h.verify(&pw, None).await.unwrap());
        let written = h
            .reserve()
            .unwrap()
            .submit(|memory| {
                let zero = Block::new();
                Ok(memory
                    .iter()
                    .filter(|b| b.as_ref() != zero.as_ref())
                    .count())
            })
            .await
            .unwrap();
        assert_eq!(
            written, 64,
            "argon2 filled every block for the unknown account"
        );
    }

    #[tokio::test]
    async fn no_hash_never_verifies_even_for_the_dummy_password() {
        let h = hasher();
        let pw = Password::for_login("chipflap dummy password").unwrap();
        assert!(!h.verify(&pw, None).await.unwrap());
    }
}
