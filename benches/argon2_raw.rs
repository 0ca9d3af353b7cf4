//! Raw argon2id verifies per second of the `argon2` crate chipflap uses, on T threads: the ceiling for logins/s.
//!
//! `scripts/bench` runs it (`cargo bench --bench argon2_raw -- --threads T --seconds S`) with
//! the cost chipflap is given (`CHIPFLAP_ARGON2_MEMORY_KIB`, `_ITERATIONS`, `_PARALLELISM`;
//! chipflap's defaults 19456 / 2 / 1 when unset) and T = `CHIPFLAP_HASH_CONCURRENCY`. Each thread
//! verifies the correct password against one PHC hash in a loop, two ways, one after the other:
//! - `reused`: the thread allocates the argon2 working memory once and hashes into it
//!   (`Argon2::hash_password_into_with_memory`), the fastest the crate can go;
//! - `allocating`: `PasswordVerifier::verify_password` on the parsed PHC string, which
//!   allocates the working memory on every call.
//!
//! Last line, for scripts: `argon2_raw threads=T reused=<verifies/s> allocating=<verifies/s>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic,
    reason = "a benchmark program: it prints its report and fails loudly"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

const PASSWORD: &[u8] = b"bench password, correct";

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v:?}"))
        })
        .unwrap_or(default)
}

/// `--name value` from the command line (cargo adds `--bench`, which is ignored).
fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One verify into `memory`, as argon2's verifier does, without allocating.
fn verify_reused(phc: &PasswordHash, memory: &mut [Block]) -> bool {
    let salt = phc.salt.as_ref().expect("the hash has a salt");
    let expected = phc.hash.as_ref().expect("the hash has an output");
    let params = Params::try_from(phc).expect("argon2 parameters");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 64];
    let out = &mut out[..expected.len()];
    argon2
        .hash_password_into_with_memory(PASSWORD, salt.as_ref(), out, memory)
        .expect("argon2");
    bool::from(out.ct_eq(expected.as_bytes()))
}

/// Runs `threads` loops of `verify` for `seconds`; answers verifies per second.
fn run(
    threads: usize,
    seconds: f64,
    phc: &Arc<PasswordHash>,
    block_count: usize,
    reuse: bool,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, done, phc) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(phc));
            std::thread::spawn(move || {
                let mut memory = if reuse {
                    vec![Block::default(); block_count]
                } else {
                    Vec::new()
                };
                while !stop.load(Ordering::Relaxed) {
                    let ok = if reuse {
                        verify_reused(&phc, &mut memory)
                    } else {
                        Argon2::default().verify_password(PASSWORD, &*phc).is_ok()
                    };
                    assert!(ok, "the correct password must verify");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    #[allow(
        clippy::disallowed_methods,
        reason = "plain threads, no async runtime to block"
    )]
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    // Verifies still running at the stop signal finish and count: divide by the real time.
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let memory_kib = env_or("CHIPFLAP_ARGON2_MEMORY_KIB", 19_456);
    let iterations = env_or("CHIPFLAP_ARGON2_ITERATIONS", 2);
    let parallelism = env_or("CHIPFLAP_ARGON2_PARALLELISM", 1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = arg("--threads")
        .or_else(|| std::env::var("CHIPFLAP_HASH_CONCURRENCY").ok())
        .filter(|v| !v.trim().is_empty())
        .map_or(cores, |v| v.trim().parse().expect("--threads: a count"));
    let seconds: f64 = arg("--seconds").map_or(5.0, |v| v.parse().expect("--seconds"));

    let params = Params::new(memory_kib, iterations, parallelism, None).expect("argon2 params");
    let block_count = params.block_count();
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let phc = Arc::new(hasher.hash_password(PASSWORD).expect("hashing"));
    println!(
        "argon2 {} (m={memory_kib} KiB, t={iterations}, p={parallelism}), {threads} threads, {seconds} s each",
        phc.algorithm
    );
    let reused = run(threads, seconds, &phc, block_count, true);
    println!("  memory reused per thread: {reused:>8.1} verifies/s");
    let allocating = run(threads, seconds, &phc, block_count, false);
    println!("  memory allocated per call: {allocating:>7.1} verifies/s");
    println!("argon2_raw threads={threads} reused={reused:.1} allocating={allocating:.1}");
}
