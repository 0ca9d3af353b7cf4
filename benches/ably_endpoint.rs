//! Load benchmark of the Ably token endpoint next to `/health`, on one server process.
//!
//! `cargo bench --bench ably_endpoint` builds the release binary, starts it on a free loopback
//! port with a temporary database and an Ably key, logs a user in, then drives each route with
//! the same number of concurrent keep-alive clients for the same time and prints requests/s and
//! latency percentiles. Knobs: BENCH_SECONDS (default 5), BENCH_CONCURRENCY (default 16).
//! Traffic goes to 127.0.0.1 only; nothing contacts Ably.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark program: it prints its report and fails loudly"
)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "appBench.keyBench:bench-secret-bench-secret";
const JWT_SECRET: &str = "bench-jwt-secret-bench-jwt-secret-0123";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn chipflap(dir: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chipflap"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PORT", port.to_string())
        .env("GOTRUE_JWT_SECRET", JWT_SECRET)
        .env("ABLY_APIKEY", KEY)
        .env("RUST_LOG", "error");
    command
}

struct Report {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(index).copied().unwrap_or_default()
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<34} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} errors)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0,
            self.requests,
            self.errors,
        );
    }
}

async fn drive(url: String, bearer: Option<String>, concurrency: u64, seconds: u64) -> Report {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let client = client.clone();
        let url = url.clone();
        let bearer = bearer.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let mut request = client.get(&url);
                if let Some(b) = &bearer {
                    request = request.bearer_auth(b);
                }
                let t = Instant::now();
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        })
    });
    let mut report = Report {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (latencies, errors) = worker.await.unwrap();
        report.requests += latencies.len();
        report.errors += errors;
        report.latencies.extend(latencies);
    }
    report.elapsed = started.elapsed();
    report.latencies.sort();
    report
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 5);
    let concurrency = env_or("BENCH_CONCURRENCY", 16);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let mut add = chipflap(dir.path(), port)
        .args([
            "users",
            "add",
            "--email",
            "bench@example.org",
            "--password-stdin",
            "--confirmed",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().unwrap();
        writeln!(stdin, "bench password").unwrap();
    }
    let added = add.wait_with_output().unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let _server = Server(
        chipflap(dir.path(), port)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/.netlify/identity/health"))
            .send()
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "server did not start");
    let token: serde_json::Value = client
        .post(format!("{base}/.netlify/identity/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "bench@example.org"),
            ("password", "bench password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();

    println!(
        "chipflap {} · {} cores · {concurrency} concurrent clients · {seconds} s per route · loopback",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    drive(
        format!("{base}/.netlify/identity/health"),
        None,
        concurrency,
        1,
    )
    .await; // warm-up
    drive(
        format!("{base}/.netlify/identity/health"),
        None,
        concurrency,
        seconds,
    )
    .await
    .print("GET /.netlify/identity/health");
    drive(
        format!("{base}/.netlify/functions/ably-jwt"),
        Some(access.clone()),
        concurrency,
        seconds,
    )
    .await
    .print("GET /.netlify/functions/ably-jwt");
    drive(
        format!("{base}/.netlify/functions/ably-jwt?format=token_request"),
        Some(access),
        concurrency,
        seconds,
    )
    .await
    .print("  … ?format=token_request");
}
