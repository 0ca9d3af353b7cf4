//! `CHIPFLAP_MAX_CONNECTIONS` bounds the connections served at once; one more waits (it is
//! neither refused nor served) until a place frees, so a flood of connections cannot grow memory.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;
use chipflap::mail::Mailer;

const REQUEST: &[u8] = b"GET /.netlify/identity/health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Sends a keep-alive request and reads until the first bytes of the answer (or the timeout).
async fn ask(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream.write_all(REQUEST).await.unwrap();
    let mut buffer = [0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        Ok(_) => Some(String::new()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_connection_beyond_the_bound_waits_and_is_served_when_a_place_frees() {
    let app = spawn_app_with(
        |s| {
            s.http.workers = Some(1);
            s.http.max_connections = 2;
        },
        Mailer::memory(crate::helpers::test_from()),
    )
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut first = TcpStream::connect(&address).await.unwrap();
    let mut second = TcpStream::connect(&address).await.unwrap();
    for stream in [&mut first, &mut second] {
        let answer = ask(stream, Duration::from_secs(10)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // Both places are held by live keep-alive connections: the third is accepted by the kernel
    // (it waits in the backlog) but gets no answer, not even a refusal.
    let mut third = TcpStream::connect(&address).await.unwrap();
    assert_eq!(ask(&mut third, Duration::from_millis(700)).await, None);
    drop(first);
    let mut buffer = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buffer))
        .await
        .expect("served once a place freed")
        .unwrap();
    let answer = String::from_utf8_lossy(&buffer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The second connection was kept all along.
    let answer = ask(&mut second, Duration::from_secs(10)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
