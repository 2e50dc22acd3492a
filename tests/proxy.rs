//! `server.trusted_proxies`: X-Forwarded-For is believed only from trusted peers, and the
//! request log line shows the resolved client address. The log is captured by installing
//! this test binary's own tracing subscriber, writing into a buffer.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::spawn_app_with;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("hygrocast=info")
            .with_writer(move || writer.clone())
            .init();
        log
    })
}

/// The log line of the request to `path` (unique per test), once it appears.
async fn log_line_for(path: &str) -> String {
    for _ in 0..50 {
        let text = captured()
            .0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(path)) {
            return line.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no log line for {path}");
}

async fn client_logged(trusted: Option<Vec<String>>, forwarded_for: &str) -> String {
    captured();
    let app = spawn_app_with(|s| {
        if let Some(t) = trusted {
            s.server.trusted_proxies = t;
        }
    })
    .await;
    let path = format!("/probe-{}", uuid::Uuid::new_v4().simple());
    app.http
        .get(app.url(&path))
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .expect("request");
    log_line_for(&path).await
}

#[tokio::test]
async fn loopback_proxy_is_trusted_by_default() {
    let line = client_logged(None, "198.51.100.1, 203.0.113.7").await;
    assert!(line.contains("client=203.0.113.7"), "{line}");
}

#[tokio::test]
async fn an_empty_trust_list_ignores_forwarded_headers() {
    let line = client_logged(Some(vec![]), "203.0.113.7").await;
    assert!(line.contains("client=127.0.0.1"), "{line}");
    assert!(!line.contains("203.0.113.7"), "{line}");
}

#[tokio::test]
async fn only_listed_networks_are_trusted() {
    let line = client_logged(Some(vec!["10.0.0.0/8".into()]), "203.0.113.7").await;
    assert!(line.contains("client=127.0.0.1"), "{line}");
    let line = client_logged(Some(vec!["127.0.0.0/8".into()]), "203.0.113.8").await;
    assert!(line.contains("client=203.0.113.8"), "{line}");
}
