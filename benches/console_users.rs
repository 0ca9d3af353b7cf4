//! Latency of the admin console's users pages over a store of 1,000,000 users, the time of
//! `chipflap migrate` on that store, and the Ably endpoint's rate on it next to its rate on a
//! store of 1,000 users.
//!
//! `cargo bench --bench console_users` builds the release binary, migrates a temporary SQLite
//! file up to the last migration before issue 10's (`SEEDED_SCHEMA`, through the binary's own
//! migrator), writes the users straight into the `users` table in one transaction of batched
//! inserts, then times `chipflap migrate` bringing that full store to the current schema (the
//! upgrade an existing deployment runs) (deterministic data: names, emails over a dozen domains,
//! creation times over a year, ~10% unconfirmed, ~1% banned, ~0.1% admins), adds one console
//! admin with `chipflap users add`, starts the server on a free loopback port and logs into the
//! console like a browser (login form, CSRF cookie, session cookie). Then it requests each page
//! one after the other and prints p50, p95 and mean latency. Every answer must be a 200 showing
//! the number of users the bench computed from the data it wrote, and the first answer of each
//! page is checked row by row (how many rows, which user first), so the figures are of real work.
//! Then one confirmed ordinary user of the store (added with `chipflap users add`, like the admin)
//! logs in, and wrk (a separate process) drives `GET /.netlify/functions/ably-jwt` with its
//! bearer token; the same against a second server over a store of `BENCH_ABLY_SMALL` users seeded
//! the same way, alternating, `BENCH_ABLY_ROUNDS` times each; it prints every round, and the
//! ratio of the two medians, which issue 10 wants within 10%. The median, not the mean: on the
//! 2-core build machine one round of two identical servers once ran 30% faster than the next
//! (108.8k against 83.6k req/s), and one such round decided a mean of two.
//! Knobs: BENCH_USERS (default 1000000), BENCH_SAMPLES (default 200), BENCH_WARMUP (default 10),
//! BENCH_KEEP_DB (a path: keep a copy of the seeded database there), BENCH_KEEP_SEEDED (a path:
//! keep a copy of the store as seeded, before the timed `chipflap migrate`), BENCH_SERVER_BIN (a
//! path: migrate and serve with that chipflap binary instead, e.g. a build from before a change),
//! BENCH_ABLY_SECONDS (default 10 per wrk run), BENCH_ABLY_CONNECTIONS (default 32),
//! BENCH_ABLY_ROUNDS (default 5), BENCH_ABLY_SMALL (default 1000 users; 0 skips the Ably part).
//! Traffic goes to 127.0.0.1 only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "a benchmark program: it prints its report and fails loudly"
)]

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use chipflap::domain::email_address::mailbox_key;

const JWT_SECRET: &str = "bench-jwt-secret-bench-jwt-secret-0123";
const ADMIN_EMAIL: &str = "admin@example.org";
const ADMIN_PASSWORD: &str = "bench admin password";
/// The ordinary user whose bearer token the Ably runs use.
const ABLY_USER_EMAIL: &str = "ably-user@example.org";
const ABLY_USER_PASSWORD: &str = "bench ably user password";
/// Any key of Ably's `appId.keyId:secret` shape: tokens are signed locally, nothing calls Ably.
const ABLY_KEY: &str = "appBench.keyBench:bench-secret-bench-secret";
const PER_PAGE: usize = 50;
const DAY: i64 = 86_400;
/// Rows per insert statement: 14 parameters each, under SQLite's 32,766 variables.
const BATCH: usize = 1000;
/// The schema the users are written at: every migration before issue 10's (20261201000030 on),
/// so that the timed `chipflap migrate` builds their indexes over a full table.
const SEEDED_SCHEMA: i64 = 20_261_201_000_029;

const FIRST_NAMES: [&str; 64] = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Liam",
    "Maria",
    "Noah",
    "Olivia",
    "Pablo",
    "Quentin",
    "Rosa",
    "Samuel",
    "Tara",
    "Umar",
    "Vera",
    "William",
    "Xenia",
    "Yusuf",
    "Zoë",
    "Aisha",
    "Bruno",
    "Camille",
    "Dmitri",
    "Elena",
    "Farid",
    "Giulia",
    "Hannah",
    "Ivan",
    "Julia",
    "Kenji",
    "Lucía",
    "Mateo",
    "Nadia",
    "Oscar",
    "Priya",
    "Rafael",
    "Sofia",
    "Thomas",
    "Ursula",
    "Viktor",
    "Wei",
    "Yara",
    "Zara",
    "Ahmed",
    "Björn",
    "Clara",
    "Diego",
    "Eva",
    "François",
    "Gabriel",
    "Helga",
    "Isaac",
    "Jürgen",
    "Leila",
    "Marco",
    "Nina",
    "Søren",
];

const LAST_NAMES: [&str; 64] = [
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Nakamura",
    "Okafor",
    "Kowalski",
    "Johansson",
    "Novak",
    "Silva",
    "Jensen",
    "Petrov",
    "Yilmaz",
    "Murphy",
    "O'Brien",
    "Fischer",
    "Martin",
    "Lopez",
    "Bianchi",
    "Lefebvre",
    "Tanaka",
    "Mensah",
    "Nowak",
    "Andersson",
    "Horvat",
    "Santos",
    "Nielsen",
    "Ivanova",
    "Demir",
    "Kelly",
    "Schneider",
    "Fernández",
    "Romano",
    "Moreau",
    "Sato",
    "Adeyemi",
    "Wiśniewski",
    "Lindqvist",
    "Kovač",
    "Pereira",
    "Hansen",
    "Sokolov",
    "Kaya",
    "Byrne",
    "Weber",
    "Sánchez",
    "Ricci",
    "Laurent",
    "Suzuki",
    "Abara",
    "Zieliński",
    "Berg",
    "Jovanović",
    "Costa",
    "Larsen",
    "Volkov",
    "Aydın",
    "Walsh",
    "Wagner",
    "Ramírez",
    "Greco",
    "Fontaine",
    "Chen",
];

/// Email domains and how many users in a thousand use each.
const DOMAINS: [(&str, u32); 13] = [
    ("gmail.com", 380),
    ("outlook.com", 110),
    ("icloud.com", 90),
    ("yahoo.com", 80),
    ("hotmail.com", 70),
    ("proton.me", 40),
    ("gmx.de", 40),
    ("acme-corp.com", 40),
    ("mail.uni-example.edu", 40),
    ("web.de", 30),
    ("orange.fr", 30),
    ("globex.io", 30),
    ("initech.example", 20),
];

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

fn chipflap(dir: &Path, port: u16, database_url: &str) -> Command {
    // BENCH_SERVER_BIN: another build of chipflap (an older one, for figures before a change),
    // which migrates and serves the same seeded store.
    let bin = std::env::var("BENCH_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_chipflap").to_owned());
    let mut command = Command::new(bin);
    command
        .current_dir(dir)
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATABASE_URL", database_url)
        .env("GOTRUE_JWT_SECRET", JWT_SECRET)
        .env("ABLY_APIKEY", ABLY_KEY)
        .env("RUST_LOG", "error");
    command
}

/// `chipflap users add --email … --password-stdin --confirmed [extra]`.
fn add_user(
    dir: &Path,
    port: u16,
    database_url: &str,
    email: &str,
    password: &str,
    extra: &[&str],
) {
    let mut add = chipflap(dir, port, database_url);
    add.args([
        "users",
        "add",
        "--email",
        email,
        "--password-stdin",
        "--confirmed",
    ])
    .args(extra);
    run_with_input(add, &format!("{password}\n"));
}

/// The 1, 5 and 15 minute load averages (other work on the machine skews every figure).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `chipflap` serving `database_url` on `port` and waits until it answers.
async fn serve(dir: &Path, port: u16, database_url: &str) -> Server {
    let server = Server(
        chipflap(dir, port, database_url)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/.netlify/identity/health"))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

/// A password grant for `email`: its access token.
async fn access_token(base: &str, email: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/.netlify/identity/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "login of {email}");
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// One wrk run (a separate process) against `url` with the bearer `token`: requests per second,
/// p50 and p99 in ms. Every answer must be a 2xx.
fn wrk_rate(url: &str, token: &str, seconds: u64, connections: u64) -> (f64, f64, f64) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk/report.lua");
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
            script,
            "-H",
            &format!("Authorization: Bearer {token}"),
            url,
        ])
        .output()
        .expect("wrk is needed for the Ably figures (apt-get install wrk, or BENCH_ABLY_SMALL=0)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("WRK "))
        .unwrap_or_else(|| panic!("no summary from wrk: {text}"));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let failed = field("non2xx") + field("socket_errors") + field("timeouts");
    assert!(failed == 0.0, "failed Ably requests: {line}");
    (field("rps"), field("p50_ms"), field("p99_ms"))
}

fn run(mut command: Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` with `input` on its standard input (a password for `--password-stdin`).
fn run_with_input(mut command: Command, input: &str) {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One seeded row of `users`.
struct Seed {
    id: String,
    role: &'static str,
    email: String,
    full_name: String,
    password_hash: Option<String>,
    confirmed_at: Option<i64>,
    invited_at: Option<i64>,
    confirmation_sent_at: Option<i64>,
    last_sign_in_at: Option<i64>,
    banned_until: Option<i64>,
    app_metadata: String,
    user_metadata: String,
    created_at: i64,
    updated_at: i64,
    /// What the console should make of the row (`now` being the seeding time).
    banned: bool,
}

impl Seed {
    fn admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The address part of a name: ASCII letters only, as most providers allow.
fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let ascii = match c {
            'á' | 'à' | 'ä' | 'â' | 'å' => "a",
            'é' | 'è' | 'ë' | 'ê' => "e",
            'í' | 'ï' | 'ı' => "i",
            'ó' | 'ö' | 'ô' | 'ø' => "o",
            'ú' | 'ü' => "u",
            'ñ' => "n",
            'ç' | 'č' | 'ć' => "c",
            'ś' | 'š' => "s",
            'ń' => "n",
            'ł' => "l",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => continue,
        };
        out.push_str(ascii);
    }
    out
}

fn random_chars(rng: &mut StdRng, n: usize) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n)
        .map(|_| char::from(B64[rng.random_range(0..B64.len())]))
        .collect()
}

fn pick_domain(rng: &mut StdRng) -> &'static str {
    let mut roll = rng.random_range(0..1000);
    for (domain, weight) in DOMAINS {
        if roll < weight {
            return domain;
        }
        roll -= weight;
    }
    DOMAINS[0].0
}

fn seed_users(n: usize, now: i64) -> Vec<Seed> {
    let mut rng = StdRng::seed_from_u64(20_261_128);
    let mut taken = HashSet::with_capacity(n);
    let mut seeds = Vec::with_capacity(n);
    for _ in 0..n {
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let (f, l) = (fold(first), fold(last));
        let mut local = match rng.random_range(0..5) {
            0 => format!("{f}.{l}"),
            1 => format!("{f}{l}"),
            2 => format!("{}{l}", &f[..1]),
            3 => format!("{f}_{l}"),
            _ => format!("{l}.{f}"),
        };
        if rng.random_bool(0.6) {
            local.push_str(&rng.random_range(1..10_000).to_string());
        }
        let domain = pick_domain(&mut rng);
        let mut email = format!("{local}@{domain}");
        while !taken.insert(email.clone()) {
            local.push_str(&rng.random_range(0..10).to_string());
            email = format!("{local}@{domain}");
        }

        let id = uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string();
        // Over the last year, at least a minute before the admin the CLI adds afterwards.
        let created_at = now - rng.random_range(60..365 * DAY);
        let invited = rng.random_bool(0.01);
        let confirmed = !invited && rng.random_bool(0.91);
        let admin = confirmed && rng.random_bool(0.001);
        let confirmed_at = confirmed.then(|| (created_at + rng.random_range(30..2 * DAY)).min(now));
        let last_sign_in_at = confirmed_at
            .filter(|_| rng.random_bool(0.8))
            .map(|c| rng.random_range(c..=now));
        let password_hash = (!invited).then(|| {
            format!(
                "$argon2id$v=19$m=19456,t=2,p=1${}${}",
                random_chars(&mut rng, 22),
                random_chars(&mut rng, 43)
            )
        });

        let mut roles: Vec<&str> = Vec::new();
        let mut banned_until = None;
        let mut banned = false;
        if !admin {
            match rng.random_range(0..1000) {
                // Banned for a while, or until unbanned (the role), or a ban that has run out.
                0..5 => {
                    banned_until = Some(now + rng.random_range(DAY..90 * DAY));
                    banned = true;
                }
                5..10 => {
                    roles.push("banned");
                    banned = true;
                }
                10..15 => banned_until = Some(now - rng.random_range(DAY..90 * DAY)),
                _ => {}
            }
        }
        if rng.random_bool(0.05) {
            roles.push(["editor", "member", "beta"][rng.random_range(0..3)]);
        }
        let mut app = serde_json::json!({ "provider": "email" });
        if !roles.is_empty() {
            app["roles"] = serde_json::json!(roles);
        }
        let full_name = format!("{first} {last}");
        let mut user = serde_json::json!({ "full_name": full_name });
        if rng.random_bool(0.2) {
            user["avatar_url"] = format!("https://avatars.example.net/{}.png", &id[..8]).into();
        }
        let updated_at = [Some(created_at), confirmed_at, last_sign_in_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(created_at);
        seeds.push(Seed {
            role: if admin { "admin" } else { "" },
            email,
            full_name,
            password_hash,
            confirmed_at,
            invited_at: invited.then_some(created_at),
            confirmation_sent_at: (!confirmed && !invited).then_some(created_at),
            last_sign_in_at,
            banned_until,
            app_metadata: app.to_string(),
            user_metadata: user.to_string(),
            created_at,
            updated_at,
            banned,
            id,
        });
    }
    seeds
}

/// Migrates a new database up to `SEEDED_SCHEMA` and writes `seeds` into it (with their
/// mailbox keys, as every write since that migration sets them), in one transaction.
async fn insert_users(db_path: &Path, seeds: &[Seed]) {
    let options = SqliteConnectOptions::new()
        .filename(db_path)
        .create_if_missing(true)
        // A scratch file written once: no journal, no sync, and a page cache (1 GiB) that holds
        // every b-tree the random ids and addresses insert into, so seeding stays linear.
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Off)
        .pragma("cache_size", "-1048576")
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    chipflap::db::MIGRATOR
        .run_to(SEEDED_SCHEMA, &mut conn)
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    let full = vec!["(?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; BATCH].join(", ");
    for chunk in seeds.chunks(BATCH) {
        let values = if chunk.len() == BATCH {
            full.clone()
        } else {
            vec!["(?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        };
        let sql = format!(
            "insert into users (id, aud, role, email, email_key, password_hash, confirmed_at, invited_at,
                 confirmation_sent_at, last_sign_in_at, banned_until, app_metadata, user_metadata,
                 created_at, updated_at) values {values}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            query = query
                .bind(s.id.as_str())
                .bind(s.role)
                .bind(s.email.as_str())
                .bind(mailbox_key(&s.email))
                .bind(s.password_hash.as_deref())
                .bind(s.confirmed_at)
                .bind(s.invited_at)
                .bind(s.confirmation_sent_at)
                .bind(s.last_sign_in_at)
                .bind(s.banned_until)
                .bind(s.app_metadata.as_str())
                .bind(s.user_metadata.as_str())
                .bind(s.created_at)
                .bind(s.updated_at);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    conn.close().await.unwrap();
}

/// What the bench expects of one user on the list pages.
struct Probe {
    email: String,
    name: String,
    created_at: i64,
    id: String,
    unconfirmed: bool,
    banned: bool,
    admin: bool,
}

impl Probe {
    /// `email like '%q%' or full_name like '%q%'`: SQLite's LIKE folds ASCII case only.
    fn matches(&self, q: &str) -> bool {
        let q = q.to_ascii_lowercase();
        self.email.to_ascii_lowercase().contains(&q) || self.name.to_ascii_lowercase().contains(&q)
    }
}

/// The expected answer of a list page: the total, the rows shown and the first row's email.
struct Expected {
    total: usize,
    rows: usize,
    first: Option<String>,
}

/// `probes` newest first (`order by created_at desc, id desc`, as the console lists).
fn expect(probes: &[Probe], keep: impl Fn(&Probe) -> bool, page: usize) -> Expected {
    let kept: Vec<&Probe> = probes.iter().filter(|p| keep(p)).collect();
    let offset = (page - 1) * PER_PAGE;
    Expected {
        total: kept.len(),
        rows: kept.len().saturating_sub(offset).min(PER_PAGE),
        first: kept.get(offset).map(|p| p.email.clone()),
    }
}

/// The rows of a list page: the email of each user link in the table.
fn listed_emails(html: &str) -> Vec<&str> {
    html.split(r#"<td><a href="/console/users/"#)
        .skip(1)
        .filter_map(|part| part.split_once("\">")?.1.split_once("</a>"))
        .map(|(email, _)| email)
        .collect()
}

/// The console counts a list up to `COUNT_CAP` users, then says "more than" (a build from
/// before issue 10, `BENCH_SERVER_BIN`, shows every total exactly: either is accepted there).
const COUNT_CAP: usize = 10_000;

fn total_markers(total: usize) -> Vec<String> {
    let word = if total == 1 { "user" } else { "users" };
    let exact = format!(r#"<p class="muted">{total} {word}"#);
    if total > COUNT_CAP {
        vec![
            format!(r#"<p class="muted">more than {COUNT_CAP} users"#),
            exact,
        ]
    } else {
        vec![exact]
    }
}

struct Case {
    label: String,
    path: String,
    /// Text every answer must contain (one of them).
    markers: Vec<String>,
    /// Checked on the first answer of a list page.
    expected: Option<Expected>,
}

fn list_case(label: String, path: String, expected: Expected) -> Case {
    Case {
        label,
        path,
        markers: total_markers(expected.total),
        expected: Some(expected),
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.unwrap()
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(client: &reqwest::Client, base: &str, case: &Case, warmup: u64, samples: u64) {
    let url = format!("{base}{}", case.path);
    let first = fetch(client, &url).await;
    let shows = |body: &str| case.markers.iter().any(|m| body.contains(m.as_str()));
    assert!(
        shows(&first),
        "{}: expected one of {:?}",
        case.path,
        case.markers
    );
    if let Some(expected) = &case.expected {
        let emails = listed_emails(&first);
        assert_eq!(emails.len(), expected.rows, "{}: rows", case.path);
        assert_eq!(
            emails.first().map(|e| (*e).to_owned()),
            expected.first,
            "{}: first row",
            case.path
        );
    }
    for _ in 1..warmup {
        fetch(client, &url).await;
    }
    let mut latencies = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let started = Instant::now();
        let body = fetch(client, &url).await;
        latencies.push(started.elapsed());
        assert!(shows(&body), "{}", case.path);
    }
    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / u32::try_from(samples.max(1)).unwrap();
    let shown = case
        .expected
        .as_ref()
        .map_or_else(String::new, |e| format!("total {}", e.total));
    println!(
        "{:<56} p50 {:>8.2} ms   p95 {:>8.2} ms   mean {:>8.2} ms   {shown}",
        case.label,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.95)),
        ms(mean),
    );
}

/// The first value of `<input … name="csrf" value="…">` in a page.
fn csrf_of(html: &str) -> String {
    let (_, rest) = html.split_once(r#"name="csrf" value=""#).unwrap();
    rest.split_once('"').unwrap().0.to_owned()
}

#[tokio::main]
async fn main() {
    let users = usize::try_from(env_or("BENCH_USERS", 1_000_000)).unwrap();
    let samples = env_or("BENCH_SAMPLES", 200).max(1);
    let warmup = env_or("BENCH_WARMUP", 10).max(1);
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("db.sqlite");
    let database_url = format!("sqlite://{}", db_path.display());
    let port = free_port();

    // The schema before issue 10, the users straight into the table, then the timed upgrade to
    // the current schema, then the console admin.
    let now = chipflap::clock::Clock::System.now().unix();
    let started = Instant::now();
    let seeds = seed_users(users, now);
    let generated = started.elapsed();
    insert_users(&db_path, &seeds).await;
    let inserted = started.elapsed() - generated;
    if let Ok(keep) = std::env::var("BENCH_KEEP_SEEDED") {
        // The store before the timed upgrade, to time the statements of the schema it had.
        std::fs::copy(&db_path, keep).unwrap();
    }
    let mut migrate = chipflap(dir.path(), port, &database_url);
    migrate.arg("migrate");
    let started = Instant::now();
    run(migrate);
    let migrated = started.elapsed();
    add_user(
        dir.path(),
        port,
        &database_url,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        &["--admin"],
    );
    if let Ok(keep) = std::env::var("BENCH_KEEP_DB") {
        // A copy to study the query plans in the sqlite3 shell (`explain query plan …`).
        let options = SqliteConnectOptions::new().filename(&db_path);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("vacuum into ?")
            .bind(keep)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let db_bytes = std::fs::metadata(&db_path).unwrap().len();

    let server = serve(dir.path(), port, &database_url).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Log in like a browser: the form and its CSRF cookie, then the session cookie.
    let form = client
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.cookies().any(|c| c.name() == "chipflap_login_csrf"));
    let csrf = csrf_of(&form.text().await.unwrap());
    let login = client
        .post(format!("{base}/console/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_redirection(), "login: {}", login.status());
    assert_eq!(login.headers()["location"], "/console/users");
    assert!(login.cookies().any(|c| c.name() == "chipflap_console"));

    // What each page should show, from the rows written above (the admin is the newest user).
    let mut probes: Vec<Probe> = seeds
        .iter()
        .map(|s| Probe {
            email: s.email.clone(),
            name: s.full_name.clone(),
            created_at: s.created_at,
            id: s.id.clone(),
            unconfirmed: s.confirmed_at.is_none(),
            banned: s.banned,
            admin: s.admin(),
        })
        .collect();
    probes.push(Probe {
        email: ADMIN_EMAIL.to_owned(),
        name: String::new(),
        created_at: i64::MAX,
        id: String::new(),
        unconfirmed: false,
        banned: false,
        admin: true,
    });
    probes.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

    // A rare search: the address of one user up to the `@`, one with digits in it.
    let rare = seeds[users / 3..]
        .iter()
        .map(|s| &s.email[..=s.email.find('@').unwrap()])
        .find(|local| local.bytes().any(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned();
    // A user page: a user whose name prints as is (no apostrophe to escape).
    let shown = seeds[users / 2..]
        .iter()
        .find(|s| s.full_name.chars().all(|c| c.is_alphabetic() || c == ' '))
        .unwrap();

    let mut cases = vec![
        list_case(
            "GET /console/users".to_owned(),
            "/console/users".to_owned(),
            expect(&probes, |_| true, 1),
        ),
        list_case(
            "GET /console/users?page=1000".to_owned(),
            "/console/users?page=1000".to_owned(),
            expect(&probes, |_| true, 1000),
        ),
    ];
    // The deepest page of a full listing at 1M (offset 499,950), or the last page of a smaller one.
    let deep = 10_000.min(probes.len().div_ceil(PER_PAGE));
    cases.push(list_case(
        format!("GET /console/users?page={deep}"),
        format!("/console/users?page={deep}"),
        expect(&probes, |_| true, deep),
    ));
    // The same deep page reached the way the console's links reach it: after the last user of
    // the page before (a keyset seek instead of an offset).
    if deep > 1 {
        let last = &probes[(deep - 1) * PER_PAGE - 1];
        cases.push(list_case(
            format!("GET /console/users?page={deep}&after=… (cursor)"),
            format!(
                "/console/users?page={deep}&after={}.{}",
                last.created_at, last.id
            ),
            expect(&probes, |_| true, deep),
        ));
    }
    for (label, q) in [
        ("common email part", "gmail"),
        ("rare email part", rare.as_str()),
        ("name", "Nakamura"),
        ("name with a space", "Maria S"),
        ("name with an accent", "Müller"),
        ("no match", "zzqx"),
    ] {
        let query = serde_urlencoded::to_string([("q", q)]).unwrap();
        cases.push(list_case(
            format!("GET /console/users?q={q} ({label})"),
            format!("/console/users?{query}"),
            expect(&probes, |p| p.matches(q), 1),
        ));
    }
    cases.push(list_case(
        "GET /console/users?status=banned".to_owned(),
        "/console/users?status=banned".to_owned(),
        expect(&probes, |p| p.banned, 1),
    ));
    cases.push(list_case(
        "GET /console/users?status=unconfirmed".to_owned(),
        "/console/users?status=unconfirmed".to_owned(),
        expect(&probes, |p| p.unconfirmed, 1),
    ));
    cases.push(list_case(
        "GET /console/users?status=admins".to_owned(),
        "/console/users?status=admins".to_owned(),
        expect(&probes, |p| p.admin, 1),
    ));
    // A search with a status filter: common and rare searches with rare and common statuses.
    type Keep = fn(&Probe) -> bool;
    for (q, status, keep) in [
        ("gmail", "banned", (|p| p.banned) as Keep),
        ("gmail", "unconfirmed", |p| p.unconfirmed),
        ("Nakamura", "unconfirmed", |p| p.unconfirmed),
        ("Maria S", "banned", |p| p.banned),
        ("Müller", "admins", |p| p.admin),
        ("ma", "banned", |p| p.banned),
    ] {
        let query = serde_urlencoded::to_string([("q", q), ("status", status)]).unwrap();
        cases.push(list_case(
            format!("GET /console/users?q={q}&status={status}"),
            format!("/console/users?{query}"),
            expect(&probes, |p| keep(p) && p.matches(q), 1),
        ));
    }
    cases.push(Case {
        label: "GET /console/users/<id>".to_owned(),
        path: format!("/console/users/{}", shown.id),
        markers: vec![format!("<h1>{}</h1>", shown.email)],
        expected: None,
    });

    println!(
        "chipflap {} · {} cores · {users} seeded users (+1 admin) · {samples} sequential samples per page after {warmup} warm-up · loopback",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    println!(
        "seeding: generated in {:.2} s, inserted in {:.2} s (one transaction, {BATCH} rows per statement); database {:.1} MiB",
        generated.as_secs_f64(),
        inserted.as_secs_f64(),
        db_bytes as f64 / (1024.0 * 1024.0),
    );
    println!(
        "chipflap migrate from schema {SEEDED_SCHEMA} over {users} users: {:.2} s",
        migrated.as_secs_f64()
    );
    println!("load average before the pages: {}", load_average());
    for case in &cases {
        measure(&client, &base, case, warmup, samples).await;
    }
    println!("load average after the pages: {}", load_average());
    drop(server);

    // The Ably endpoint at this size and at a small one, each store seeded the same way, with one
    // confirmed ordinary user added by the CLI (after the console figures, whose expected lists
    // it would change), each server alone on its store.
    let small = usize::try_from(env_or("BENCH_ABLY_SMALL", 1000)).unwrap();
    if small == 0 {
        return;
    }
    let seconds = env_or("BENCH_ABLY_SECONDS", 10).max(1);
    let connections = env_or("BENCH_ABLY_CONNECTIONS", 32).max(1);
    let rounds = env_or("BENCH_ABLY_ROUNDS", 5).max(1);
    add_user(
        dir.path(),
        port,
        &database_url,
        ABLY_USER_EMAIL,
        ABLY_USER_PASSWORD,
        &[],
    );
    let big = serve(dir.path(), port, &database_url).await;
    let small_dir = tempfile::tempdir().unwrap();
    let small_path = small_dir.path().join("db.sqlite");
    let small_url = format!("sqlite://{}", small_path.display());
    let small_port = free_port();
    insert_users(&small_path, &seed_users(small, now)).await;
    let mut migrate = chipflap(small_dir.path(), small_port, &small_url);
    migrate.arg("migrate");
    run(migrate);
    add_user(
        small_dir.path(),
        small_port,
        &small_url,
        ABLY_USER_EMAIL,
        ABLY_USER_PASSWORD,
        &[],
    );
    let small_server = serve(small_dir.path(), small_port, &small_url).await;
    let targets = [(users, port), (small, small_port)];
    let mut urls_tokens = Vec::new();
    for (_, port) in targets {
        let base = format!("http://127.0.0.1:{port}");
        let token = access_token(&base, ABLY_USER_EMAIL, ABLY_USER_PASSWORD).await;
        let url = format!("{base}/.netlify/functions/ably-jwt");
        // A short warm-up run: connections, caches, the first tokens.
        wrk_rate(&url, &token, 2, connections);
        urls_tokens.push((url, token));
    }
    println!(
        "Ably endpoint (JWT): wrk -t2 -c{connections} -d{seconds}s, one logged-in user, {rounds} alternating rounds; load average {}",
        load_average()
    );
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for (i, ((size, _), (url, token))) in targets.iter().zip(&urls_tokens).enumerate() {
            let (rps, p50, p99) = wrk_rate(url, token, seconds, connections);
            rates[i].push(rps);
            println!(
                "  round {round}: {size:>8} users  {rps:>9.1} req/s   p50 {p50:>6.2} ms   p99 {p99:>6.2} ms"
            );
        }
    }
    let [big_rps, small_rps] = rates.map(|mut r| median(&mut r));
    let ratio = big_rps / small_rps;
    println!(
        "Ably endpoint at {users} users: median {big_rps:.1} req/s; at {small} users: median {small_rps:.1} req/s; ratio {ratio:.3} ({}: within 10% means at least 0.900)",
        if ratio >= 0.9 { "PASS" } else { "FAIL" }
    );
    drop(small_server);
    drop(big);
}
