//! Password hashing settings: argon2id cost and the hashing threads' concurrency and queue.

use super::{ConfigError, Source, invalid};

/// argon2id cost and the hashing pool (DESIGN §9).
#[derive(Debug, Clone)]
pub struct PasswordHashingSettings {
    /// `CHIPFLAP_ARGON2_MEMORY_KIB` (KiB, default 19456 = 19 MiB; at least 8 × parallelism,
    /// and 19456 in production).
    pub memory_kib: u32,
    /// `CHIPFLAP_ARGON2_ITERATIONS` (passes, default 2; at least 2 in production).
    pub iterations: u32,
    /// `CHIPFLAP_ARGON2_PARALLELISM` (lanes, default 1).
    pub parallelism: u32,
    /// Hashing threads (`CHIPFLAP_HASH_CONCURRENCY`, default one per core): password hashes
    /// running at once, each holding its argon2 memory (`memory_kib`) for the life of the
    /// process (DESIGN §9).
    pub concurrency: usize,
    /// Jobs that may wait for a hashing thread (`CHIPFLAP_HASH_QUEUE`, default 16 ×
    /// `concurrency`); one more is refused at once with 503 and `Retry-After: 1`, so a flood
    /// cannot queue without bound.
    pub queue: usize,
}

/// `CHIPFLAP_ARGON2_*`, `CHIPFLAP_HASH_CONCURRENCY` (default `cores`) and `CHIPFLAP_HASH_QUEUE`.
/// Production refuses a cost below OWASP's argon2id floor.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
    cores: usize,
) -> Result<PasswordHashingSettings, ConfigError> {
    let concurrency = env.parsed("CHIPFLAP_HASH_CONCURRENCY", cores, "a count (at least 1)")?;
    let hashing = PasswordHashingSettings {
        memory_kib: env.parsed("CHIPFLAP_ARGON2_MEMORY_KIB", 19_456, "KiB (at least 8)")?,
        iterations: env.parsed("CHIPFLAP_ARGON2_ITERATIONS", 2, "a count (at least 1)")?,
        parallelism: env.parsed("CHIPFLAP_ARGON2_PARALLELISM", 1, "a count (at least 1)")?,
        concurrency,
        // 16 waiting jobs per thread: at the default cost a hash takes 10-20 ms, so the
        // last job admitted waits a fraction of a second, a burst of honest logins fits,
        // and a flood gets its 503 at once instead of a wait that ends in a client timeout.
        queue: env.parsed(
            "CHIPFLAP_HASH_QUEUE",
            concurrency.saturating_mul(16),
            "a count (at least 1)",
        )?,
    };
    if hashing.memory_kib < 8 * hashing.parallelism.max(1) {
        return Err(invalid(
            "CHIPFLAP_ARGON2_MEMORY_KIB",
            "must be at least 8 × parallelism",
        ));
    }
    if hashing.iterations == 0 {
        return Err(invalid("CHIPFLAP_ARGON2_ITERATIONS", "must be at least 1"));
    }
    if hashing.parallelism == 0 {
        return Err(invalid("CHIPFLAP_ARGON2_PARALLELISM", "must be at least 1"));
    }
    if hashing.concurrency == 0 {
        return Err(invalid("CHIPFLAP_HASH_CONCURRENCY", "must be at least 1"));
    }
    if hashing.queue == 0 {
        return Err(invalid("CHIPFLAP_HASH_QUEUE", "must be at least 1"));
    }
    // OWASP's argon2id floor (Password Storage Cheat Sheet): 19 MiB and 2 passes.
    if production && hashing.memory_kib < 19_456 {
        return Err(invalid(
            "CHIPFLAP_ARGON2_MEMORY_KIB",
            "must be at least 19456 (OWASP's minimum) when CHIPFLAP_ENV=production",
        ));
    }
    if production && hashing.iterations < 2 {
        return Err(invalid(
            "CHIPFLAP_ARGON2_ITERATIONS",
            "must be at least 2 (OWASP's minimum) when CHIPFLAP_ENV=production",
        ));
    }
    Ok(hashing)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error_names, production_with, settings};

    #[test]
    fn production_refuses_argon2_below_the_owasp_floor() {
        let names = |extra: &[(&'static str, &'static str)]| {
            production_with(extra).unwrap_err().to_string()
        };
        assert!(
            names(&[("CHIPFLAP_ARGON2_MEMORY_KIB", "19455")])
                .contains("CHIPFLAP_ARGON2_MEMORY_KIB")
        );
        assert!(
            names(&[("CHIPFLAP_ARGON2_ITERATIONS", "1")]).contains("CHIPFLAP_ARGON2_ITERATIONS")
        );
    }

    #[test]
    fn hashing_threads_and_queue_come_from_the_environment() {
        let s = settings(&[
            ("CHIPFLAP_HASH_CONCURRENCY", "3"),
            ("CHIPFLAP_HASH_QUEUE", "7"),
        ])
        .unwrap();
        assert_eq!((s.hashing.concurrency, s.hashing.queue), (3, 7));
        // The queue defaults to 16 jobs per thread.
        let s = settings(&[("CHIPFLAP_HASH_CONCURRENCY", "3")]).unwrap();
        assert_eq!(s.hashing.queue, 48);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.hashing.concurrency, s.hashing.queue),
            (cores, 16 * cores)
        );
        for (name, value) in [
            ("CHIPFLAP_HASH_QUEUE", "0"),
            ("CHIPFLAP_HASH_QUEUE", "many"),
            ("CHIPFLAP_HASH_CONCURRENCY", "0"),
        ] {
            assert!(
                error_names(&[(name, value)]).contains(name),
                "{name}={value}"
            );
        }
    }
}
