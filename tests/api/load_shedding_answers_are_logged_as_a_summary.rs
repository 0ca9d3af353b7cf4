//! Rule: an answer that sheds load (429 throttled, 503 busy) writes no log line of its own, so
//! a flood of refusals cannot become a flood of log writes; a `WARN` summary counts them, at
//! most once per `SUMMARY_EVERY`. Every other failed request is still logged one by one.

use std::time::{Duration, Instant};

use crate::binary::{free_port, start_logging};

#[tokio::test]
async fn throttled_requests_are_counted_in_one_summary_not_logged_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A low verify limit: past its burst (30), the rest of the 80 attempts are throttled.
    let server = start_logging(
        dir.path(),
        port,
        &[("GOTRUE_RATE_LIMIT_VERIFY", "2"), ("RUST_LOG", "warn")],
    );
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..80 {
        let r = client
            .post(format!("http://127.0.0.1:{port}/.netlify/identity/verify"))
            .json(&serde_json::json!({"type": "signup", "token": "not-a-token"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(throttled >= 40, "{statuses:?}");
    let refused_otherwise = statuses.iter().filter(|s| **s != 429).count();
    assert!(refused_otherwise >= 1, "{statuses:?}");

    // Read the log until it has been quiet for a moment.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match server.log.recv_timeout(Duration::from_millis(300)) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let per_request_429 = lines
        .iter()
        .filter(|l| l.contains("incoming HTTP request: 429"))
        .count();
    assert_eq!(per_request_429, 0, "{lines:#?}");
    let summaries: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("requests refused to shed load"))
        .collect();
    // The first refusal after a quiet spell is reported at once; the others wait for the
    // next summary, at least `SUMMARY_EVERY` later.
    assert_eq!(summaries.len(), 1, "{lines:#?}");
    assert!(summaries[0].contains("1 throttled (429)"), "{summaries:?}");
    // The attempts that were not throttled failed for another reason: one line each.
    let others = lines
        .iter()
        .filter(|l| l.contains("Error encountered"))
        .count();
    assert_eq!(others, refused_otherwise, "{lines:#?}");
}
