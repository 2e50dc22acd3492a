//! Ingestion end to end: the real app on a real database, over HTTP.

mod common;

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use common::{spawn_app, spawn_app_with, test_settings, TestApp, TestDatabase};
use flate2::write::GzEncoder;
use flate2::Compression;
use hygrocast::domain::{SensorKind, SensorName};
use hygrocast::sensors::{self, NewSensor};
use serde_json::{json, Value};

/// Creates a sensor straight through the registry; returns its id and token.
async fn add_sensor(app: &TestApp, name: &str, kind: SensorKind) -> (i64, String) {
    let client = app.client().await;
    let new = NewSensor {
        name: SensorName::parse(name).expect("name"),
        kind,
        unit: None,
        location: None,
    };
    let (sensor, token) = sensors::create(&client, &new).await.expect("create sensor");
    (sensor.id, token.expose().to_owned())
}

async fn post(
    app: &TestApp,
    path: &str,
    auth: Option<String>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = app.http.post(app.url(path)).body(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req.send().await.expect("POST")
}

async fn post_json(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    post(
        app,
        "/api/v1/readings",
        Some(format!("Bearer {token}")),
        Some("application/json"),
        body.to_owned(),
    )
    .await
}

async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.expect("JSON body")
}

/// The sensor's stored readings, oldest first, as (unix micros, value).
async fn stored(app: &TestApp, sensor_id: i64) -> Vec<(i64, f64)> {
    let client = app.client().await;
    client
        .query(
            "SELECT ts, value FROM readings WHERE sensor_id = $1 ORDER BY ts",
            &[&sensor_id],
        )
        .await
        .expect("query readings")
        .iter()
        .map(|r| (r.get::<_, DateTime<Utc>>(0).timestamp_micros(), r.get(1)))
        .collect()
}

async fn total_rows(app: &TestApp) -> i64 {
    app.client()
        .await
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .expect("count")
        .get(0)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A whole-second time `secs_ago` seconds before now.
fn ago(secs_ago: i64) -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    DateTime::from_timestamp(now - secs_ago, 0).expect("time")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// POSTs a chunked body (no Content-Length) over a raw socket; returns the status code.
async fn chunked_post(app: &TestApp, token: &str, chunks: &[&[u8]]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/readings HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    for chunk in chunks {
        // The server may answer and close early; later writes failing is fine.
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

// ---------------------------------------------------------------- success paths

#[tokio::test]
async fn json_single_reading_is_acknowledged_and_stored() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "kitchen", SensorKind::Humidity).await;
    let t = ago(60);
    let res = post_json(
        &app,
        &token,
        &json!({"ts": ts(t), "value": 54.2}).to_string(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await, json!({"accepted": 1, "duplicates": 0}));
    assert_eq!(stored(&app, id).await, vec![(t.timestamp_micros(), 54.2)]);
}

#[tokio::test]
async fn json_batch_with_unix_seconds_and_missing_ts() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "cellar", SensorKind::Humidity).await;
    let t1 = ago(120);
    let before = Utc::now();
    let body = json!([
        {"ts": t1.timestamp(), "value": 60.0},
        {"ts": ts(ago(60)), "value": 61.5},
        {"value": 62.0}
    ]);
    let res = post_json(&app, &token, &body.to_string()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await, json!({"accepted": 3, "duplicates": 0}));
    let rows = stored(&app, id).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], (t1.timestamp_micros(), 60.0));
    // The reading without ts got the time of receipt.
    assert!(
        rows[2].0 >= before.timestamp_micros() - 1_000_000,
        "{rows:?}"
    );
    assert!(rows[2].0 <= Utc::now().timestamp_micros());
}

#[tokio::test]
async fn an_empty_batch_is_fine() {
    let app = spawn_app().await;
    let (_, token) = add_sensor(&app, "empty", SensorKind::Humidity).await;
    let res = post_json(&app, &token, "[]").await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await, json!({"accepted": 0, "duplicates": 0}));
}

#[tokio::test]
async fn repeated_readings_are_counted_as_duplicates_never_stored_twice() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "retrying", SensorKind::Humidity).await;
    let (a, b) = (ts(ago(300)), ts(ago(240)));
    let body = json!([{"ts": a, "value": 50.0}, {"ts": b, "value": 51.0}]).to_string();
    let first = post_json(&app, &token, &body).await;
    assert_eq!(
        json_of(first).await,
        json!({"accepted": 2, "duplicates": 0})
    );
    // The same request again (a sensor retrying after a timeout): nothing new.
    let again = post_json(&app, &token, &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        json_of(again).await,
        json!({"accepted": 0, "duplicates": 2})
    );
    // Overlapping batch, with a repeat inside the batch as well.
    let c = ts(ago(180));
    let body = json!([
        {"ts": b, "value": 99.0},
        {"ts": c, "value": 52.0},
        {"ts": c, "value": 52.0}
    ]);
    let res = post_json(&app, &token, &body.to_string()).await;
    assert_eq!(json_of(res).await, json!({"accepted": 1, "duplicates": 2}));
    let rows = stored(&app, id).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].1, 51.0, "the first value stays: {rows:?}");
}

#[tokio::test]
async fn senml_pack_is_stored() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "museum", SensorKind::Humidity).await;
    let bt = ago(600).timestamp();
    let pack = json!([
        {"bn": "urn:dev:museum:", "bt": bt, "bu": "%RH", "n": "humidity", "v": 45.5},
        {"n": "humidity", "v": 46.0, "t": 60},
        {"n": "humidity", "v": 46.5, "t": 120}
    ]);
    let res = post(
        &app,
        "/api/v1/readings",
        Some(format!("Bearer {token}")),
        Some("application/senml+json"),
        pack.to_string(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await, json!({"accepted": 3, "duplicates": 0}));
    let rows = stored(&app, id).await;
    assert_eq!(
        rows,
        vec![
            (bt * 1_000_000, 45.5),
            ((bt + 60) * 1_000_000, 46.0),
            ((bt + 120) * 1_000_000, 46.5)
        ]
    );
}

#[tokio::test]
async fn senml_record_of_another_quantity_is_refused_naming_it() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "museum", SensorKind::Humidity).await;
    let pack = json!([
        {"bn": "dev:", "n": "humidity", "v": 45.5, "t": -60},
        {"n": "temperature", "v": 21.0, "t": -30}
    ]);
    let res = post(
        &app,
        "/api/v1/readings",
        Some(format!("Bearer {token}")),
        Some("application/senml+json"),
        pack.to_string(),
    )
    .await;
    assert_eq!(res.status(), 400);
    let body = json_of(res).await;
    assert_eq!(body["reason"], "wrong_quantity");
    let msg = body["error"].as_str().expect("message");
    assert!(msg.starts_with("record 1"), "{msg}");
    assert!(msg.contains("temperature"), "{msg}");
    assert!(stored(&app, id).await.is_empty(), "nothing half-written");
}

#[tokio::test]
async fn influx_v2_line_protocol_is_stored_with_204() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "greenhouse", SensorKind::Humidity).await;
    let t = ago(90).timestamp();
    let body = format!(
        "climate,room=north humidity=55.5,temperature=21.3 {t}\n\
         climate,room=north humidity=56 {}\n",
        t + 30
    );
    let res = post(
        &app,
        "/api/v2/write?org=home&bucket=sensors&precision=s",
        Some(format!("Token {token}")),
        Some("text/plain; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        stored(&app, id).await,
        vec![(t * 1_000_000, 55.5), ((t + 30) * 1_000_000, 56.0)]
    );
    // Nanoseconds by default; the Content-Type does not matter (InfluxDB ignores it too).
    let ns = ago(30).timestamp_nanos_opt().expect("ns");
    let res = post(
        &app,
        "/api/v2/write?bucket=x",
        Some(format!("Token {token}")),
        Some("application/x-www-form-urlencoded"),
        format!("m value=57 {ns}"),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(stored(&app, id).await.len(), 3);
}

#[tokio::test]
async fn influx_v1_write_takes_the_token_from_p_or_the_header() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "station", SensorKind::Humidity).await;
    let t = ago(100).timestamp_millis();
    let res = post(
        &app,
        &format!("/write?db=weather&u=anyone&p={token}&precision=ms"),
        None,
        None,
        format!("weather value=70.1 {t}"),
    )
    .await;
    assert_eq!(res.status(), 204);
    let res = post(
        &app,
        "/write?db=weather&precision=u",
        Some(format!("Token {token}")),
        None,
        format!("weather value=70.2 {}", (t + 1000) * 1000),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        stored(&app, id).await,
        vec![(t * 1000, 70.1), ((t + 1000) * 1000, 70.2)]
    );
    let res = post(&app, "/write?db=weather&p=", None, None, "weather value=1").await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn gzip_bodies_are_accepted_on_every_endpoint() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "zipped", SensorKind::Humidity).await;
    let t = ago(500).timestamp();
    let lines: String = (0..100)
        .map(|i| format!("h value=50 {}\n", t + i))
        .collect();
    let res = app
        .http
        .post(app.url("/api/v2/write?precision=s"))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Encoding", "gzip")
        .body(gzip(lines.as_bytes()))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 204);
    let body = json!([{"ts": t + 200, "value": 51.0}]).to_string();
    let res = app
        .http
        .post(app.url("/api/v1/readings"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["accepted"], 1);
    assert_eq!(stored(&app, id).await.len(), 101);
}

// ---------------------------------------------------------------- refusals

#[tokio::test]
async fn gzip_bomb_is_refused_with_413() {
    let app = spawn_app_with(|s| s.ingest.max_body = 1 << 20).await;
    let (id, token) = add_sensor(&app, "bomb", SensorKind::Humidity).await;
    // 64 MiB of a valid-looking line inflating from ~64 KiB.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let chunk = b"h value=50\n".repeat(100_000);
    let mut written = 0;
    while written < 64 << 20 {
        e.write_all(&chunk).expect("gzip");
        written += chunk.len();
    }
    let bomb = e.finish().expect("gzip");
    assert!(bomb.len() < 1 << 20, "the bomb itself fits the limit");
    let res = app
        .http
        .post(app.url("/api/v2/write"))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 413);
    let body = json_of(res).await;
    assert_eq!(body["reason"], "too_large");
    assert!(stored(&app, id).await.is_empty());
}

#[tokio::test]
async fn oversize_body_and_oversize_batch_get_413() {
    let app = spawn_app_with(|s| {
        s.ingest.max_body = 2_000;
        s.ingest.max_batch = 5;
    })
    .await;
    let (id, token) = add_sensor(&app, "big", SensorKind::Humidity).await;
    let big: Vec<Value> = (0..60)
        .map(|i| json!({"ts": ts(ago(1000 + i)), "value": 50.0}))
        .collect();
    let body = Value::Array(big).to_string();
    assert!(body.len() > 2_000);
    let res = post_json(&app, &token, &body).await;
    assert_eq!(res.status(), 413);
    assert!(json_of(res).await["error"]
        .as_str()
        .is_some_and(|m| m.contains("2000 bytes")));

    let six: Vec<Value> = (0..6)
        .map(|i| json!({"ts": ago(1000 + i).timestamp(), "value": 50.0}))
        .collect();
    let res = post_json(&app, &token, &Value::Array(six).to_string()).await;
    assert_eq!(res.status(), 413);
    let body = json_of(res).await;
    assert_eq!(
        body["error"], "batch has 6 readings; the limit is 5",
        "{body}"
    );
    // A chunked body (no Content-Length) over the limit is cut off too.
    let status = chunked_post(&app, &token, &[&[b' '; 500][..]; 10]).await;
    assert_eq!(status, 413);
    assert!(stored(&app, id).await.is_empty());
}

#[tokio::test]
async fn wrong_content_type_or_encoding_gets_415() {
    let app = spawn_app().await;
    let (_, token) = add_sensor(&app, "typed", SensorKind::Humidity).await;
    for ct in [Some("text/csv"), Some("application/xml"), None] {
        let res = post(
            &app,
            "/api/v1/readings",
            Some(format!("Bearer {token}")),
            ct,
            r#"{"value": 50}"#,
        )
        .await;
        assert_eq!(res.status(), 415, "{ct:?}");
        assert_eq!(json_of(res).await["reason"], "unsupported_media_type");
    }
    let res = app
        .http
        .post(app.url("/api/v1/readings"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "br")
        .body("x")
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 415);
    assert_eq!(json_of(res).await["reason"], "unsupported_encoding");
}

#[tokio::test]
async fn bad_readings_get_400_naming_the_reading_and_nothing_is_written() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "strict", SensorKind::Humidity).await;
    let good = |i: i64| json!({"ts": ago(1000 + i).timestamp(), "value": 50.0});
    let future = ts(Utc::now() + chrono::Duration::minutes(10));
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!([good(0), good(1), {"ts": ago(5).timestamp(), "value": 140.0}]),
            "out_of_range",
            "reading 2: humidity value 140 is outside the valid range 0..=100 %RH",
        ),
        (
            json!([good(0), {"ts": future, "value": 50.0}]),
            "future_timestamp",
            "reading 1: timestamp",
        ),
        (
            json!([{"ts": "1969-12-31T23:59:59Z", "value": 50.0}]),
            "before_1970",
            "reading 0: timestamp 1969-12-31T23:59:59Z is before 1970",
        ),
        (
            json!([good(0), {"ts": "yesterday", "value": 5}]),
            "malformed",
            "reading 1",
        ),
        (json!([good(0), {"valeu": 5}]), "malformed", "reading 1"),
    ];
    for (body, reason, message) in cases {
        let res = post_json(&app, &token, &body.to_string()).await;
        assert_eq!(res.status(), 400, "{body}");
        let err = json_of(res).await;
        assert_eq!(err["reason"], reason, "{err}");
        let text = err["error"].as_str().expect("error text");
        assert!(
            text.starts_with(message),
            "{text:?} should start with {message:?}"
        );
    }
    let res = post_json(&app, &token, r#"[{"ts": 1, "value": 5},"#).await;
    assert_eq!(res.status(), 400);
    assert!(json_of(res).await["error"]
        .as_str()
        .is_some_and(|m| m.contains("malformed JSON")));
    // Line protocol: the line number and why.
    let t = ago(50).timestamp();
    let body = format!("h value=50 {t}\n\n# comment\nh value=oops {t}\n");
    let res = post(
        &app,
        "/api/v2/write?precision=s",
        Some(format!("Token {token}")),
        None,
        body,
    )
    .await;
    assert_eq!(res.status(), 400);
    let err = json_of(res).await;
    let text = err["error"].as_str().expect("error text");
    assert!(text.starts_with("line 4"), "{text}");
    let res = post(
        &app,
        "/api/v2/write?precision=s",
        Some(format!("Token {token}")),
        None,
        format!("h value=50 {t}\nh value=1e999 {}\n", t + 1),
    )
    .await;
    assert_eq!(res.status(), 400);
    let err = json_of(res).await;
    assert_eq!(err["reason"], "non_finite", "{err}");
    assert!(err["error"]
        .as_str()
        .is_some_and(|m| m.starts_with("line 2")));
    // Temperature sensors have their own range.
    let (tid, ttoken) = add_sensor(&app, "thermo", SensorKind::Temperature).await;
    let res = post_json(&app, &ttoken, r#"{"value": 75}"#).await;
    assert_eq!(res.status(), 400);
    assert!(json_of(res).await["error"]
        .as_str()
        .is_some_and(|m| m.contains("-90..=60")));
    let res = post_json(&app, &ttoken, r#"{"value": -12.5}"#).await;
    assert_eq!(res.status(), 200);

    assert!(stored(&app, id).await.is_empty(), "nothing half-written");
    assert_eq!(stored(&app, tid).await.len(), 1);
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_get_401() {
    let app = spawn_app().await;
    let (_, _token) = add_sensor(&app, "guarded", SensorKind::Humidity).await;
    let body = r#"{"value": 50}"#;
    let unknown = hygrocast::domain::Token::generate();
    for auth in [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer not-a-token".to_owned()),
        Some(format!("Basic {}", unknown.expose())),
        Some(format!("Bearer {}", unknown.expose())),
    ] {
        let res = post(
            &app,
            "/api/v1/readings",
            auth.clone(),
            Some("application/json"),
            body,
        )
        .await;
        assert_eq!(res.status(), 401, "{auth:?}");
        assert!(res.headers().contains_key("www-authenticate"));
        assert_eq!(json_of(res).await["reason"], "unauthorized");
    }
    assert_eq!(total_rows(&app).await, 0);
}

#[tokio::test]
async fn a_token_writes_only_its_own_sensor() {
    let app = spawn_app().await;
    let (a, token_a) = add_sensor(&app, "sensor-a", SensorKind::Humidity).await;
    let (b, _token_b) = add_sensor(&app, "sensor-b", SensorKind::Humidity).await;
    let t = ago(30).timestamp();
    // Whatever the body names (measurement, tags, SenML base name), the token decides.
    let res = post(
        &app,
        "/api/v2/write?precision=s",
        Some(format!("Token {token_a}")),
        None,
        format!("sensor-b,sensor=sensor-b value=50 {t}"),
    )
    .await;
    assert_eq!(res.status(), 204);
    let pack = json!([{"bn": "sensor-b:", "n": "humidity", "v": 51, "t": -10}]);
    let res = post(
        &app,
        "/api/v1/readings",
        Some(format!("Bearer {token_a}")),
        Some("application/senml+json"),
        pack.to_string(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(stored(&app, a).await.len(), 2);
    assert!(stored(&app, b).await.is_empty(), "B got A's readings");
}

#[tokio::test]
async fn a_rotated_token_is_refused_at_once_and_the_new_one_works() {
    let app = spawn_app().await;
    let (id, old) = add_sensor(&app, "rotating", SensorKind::Humidity).await;
    // Used once, so the server has seen (and may remember) the old token.
    let res = post_json(
        &app,
        &old,
        &json!({"ts": ago(60).timestamp(), "value": 50}).to_string(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let client = app.client().await;
    let new = sensors::rotate_token(&client, &SensorName::parse("rotating").expect("name"))
        .await
        .expect("rotate");
    // Even an empty batch is refused with the old token.
    assert_eq!(post_json(&app, &old, "[]").await.status(), 401);
    let res = post_json(
        &app,
        &old,
        &json!({"ts": ago(50).timestamp(), "value": 51}).to_string(),
    )
    .await;
    assert_eq!(res.status(), 401, "old token still works after rotation");
    let res = post_json(
        &app,
        new.expose(),
        &json!({"ts": ago(40).timestamp(), "value": 52}).to_string(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let values: Vec<f64> = stored(&app, id).await.iter().map(|r| r.1).collect();
    assert_eq!(values, vec![50.0, 52.0]);
}

#[tokio::test]
async fn a_removed_sensors_token_is_refused() {
    let app = spawn_app().await;
    let (_, token) = add_sensor(&app, "doomed", SensorKind::Humidity).await;
    let res = post_json(
        &app,
        &token,
        &json!({"ts": ago(60).timestamp(), "value": 50}).to_string(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut client = app.client().await;
    let name = SensorName::parse("doomed").expect("name");
    let err = sensors::remove(&mut client, &name, false)
        .await
        .expect_err("has readings");
    assert!(err.to_string().contains("has 1 readings"), "{err}");
    assert_eq!(
        sensors::remove(&mut client, &name, true)
            .await
            .expect("purge"),
        1
    );
    let res = post_json(
        &app,
        &token,
        &json!({"ts": ago(50).timestamp(), "value": 50}).to_string(),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(total_rows(&app).await, 0);
}

// ---------------------------------------------------------------- group commit

#[tokio::test]
async fn a_hundred_concurrent_single_reading_clients_are_all_acknowledged_and_stored() {
    let app = spawn_app().await;
    let mut sensors_ = Vec::new();
    for i in 0..10 {
        sensors_.push(add_sensor(&app, &format!("s{i}"), SensorKind::Humidity).await);
    }
    let base = ago(3600).timestamp();
    let requests = (0..100).map(|i| {
        let (_, token) = &sensors_[i % 10];
        let body = json!({"ts": base + i as i64, "value": 40.0 + (i % 50) as f64}).to_string();
        let req = app
            .http
            .post(app.url("/api/v1/readings"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body);
        async move {
            let res = req.send().await.expect("POST");
            (
                res.status().as_u16(),
                res.json::<Value>().await.expect("json"),
            )
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(*body, json!({"accepted": 1, "duplicates": 0}));
    }
    assert_eq!(total_rows(&app).await, 100);
    for (id, _) in &sensors_ {
        assert_eq!(stored(&app, *id).await.len(), 10);
    }
}

#[tokio::test]
async fn concurrent_requests_repeating_each_other_count_each_row_once() {
    let app = spawn_app().await;
    let (id, token) = add_sensor(&app, "twins", SensorKind::Humidity).await;
    let body = json!([
        {"ts": ago(100).timestamp(), "value": 50},
        {"ts": ago(99).timestamp(), "value": 50}
    ])
    .to_string();
    let sends = (0..20).map(|_| post_json(&app, &token, &body));
    let answers = futures_util::future::join_all(sends).await;
    let mut accepted = 0;
    for res in answers {
        assert_eq!(res.status(), 200);
        let b = json_of(res).await;
        assert_eq!(
            b["accepted"].as_u64().unwrap_or(99) + b["duplicates"].as_u64().unwrap_or(99),
            2
        );
        accepted += b["accepted"].as_u64().unwrap_or(0);
    }
    assert_eq!(
        accepted, 2,
        "each stored row acknowledged as accepted exactly once"
    );
    assert_eq!(stored(&app, id).await.len(), 2);
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_at_once() {
    let app = spawn_app_with(|s| {
        s.ingest.queue_capacity = 1;
        s.ingest.writers = 1;
    })
    .await;
    let (id, token) = add_sensor(&app, "busy", SensorKind::Humidity).await;
    // Hold the sensor row so the writer's flush blocks on it.
    let mut blocker = app.client().await;
    let tx = blocker.transaction().await.expect("begin");
    tx.execute("SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .expect("lock");

    let send = |i: i64| {
        let req = app
            .http
            .post(app.url("/api/v1/readings"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(json!({"ts": ago(1000 - i).timestamp(), "value": 50}).to_string());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let res = req.send().await.expect("POST");
            let elapsed = started.elapsed();
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = res.json::<Value>().await.unwrap_or_default();
            (status, elapsed, retry_after, body)
        })
    };
    // The first request's flush blocks on the lock (the writer is busy)...
    let first = send(0);
    wait_for_blocked_flush(&app).await;
    // ...so of five more, exactly one fits the queue (capacity 1) and four are refused
    // at once.
    let more: Vec<_> = (1..=5).map(send).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut refused = 0;
    let mut waiting = Vec::new();
    for task in more {
        if task.is_finished() {
            let (status, elapsed, retry_after, body) = task.await.expect("join");
            assert_eq!(status, 503, "{body}");
            assert!(elapsed < Duration::from_secs(2), "503 must not wait");
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert_eq!(body["reason"], "overloaded");
            refused += 1;
        } else {
            waiting.push(task);
        }
    }
    assert_eq!(refused, 4, "a full queue must refuse at once");
    assert!(!first.is_finished(), "acknowledged before its commit");

    tx.rollback().await.expect("release");
    for task in std::iter::once(first).chain(waiting) {
        let (status, _, _, body) = task.await.expect("join");
        assert_eq!(status, 200, "queued requests are written: {body}");
    }
    assert_eq!(stored(&app, id).await.len(), 2);
}

/// Waits until a group commit is blocked on a row lock held by the test.
async fn wait_for_blocked_flush(app: &TestApp) {
    let client = app.client().await;
    for _ in 0..200 {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no flush blocked on the lock");
}

#[tokio::test]
async fn graceful_shutdown_answers_every_queued_request_after_committing_it() {
    common::init_test_logging();
    let db = TestDatabase::create().await;
    let mut settings = test_settings();
    settings.server.shutdown_timeout_secs = 20;
    let settings = std::sync::Arc::new(settings);
    let pool = hygrocast::db::pool(db.pg_config.clone(), &settings.database).expect("pool");
    let app = hygrocast::web::Application::build(settings, pool).expect("app");
    let (port, handle) = (app.port(), app.handle());
    let server = tokio::spawn(app.run_until_stopped());
    let client = db.client().await;
    let new = NewSensor {
        name: SensorName::parse("draining").expect("name"),
        kind: SensorKind::Humidity,
        unit: None,
        location: None,
    };
    let (sensor, token) = sensors::create(&client, &new).await.expect("sensor");
    // Hold the sensor row: the requests below are accepted, queued, and cannot commit yet.
    let mut blocker = db.client().await;
    let tx = blocker.transaction().await.expect("begin");
    tx.execute(
        "SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE",
        &[&sensor.id],
    )
    .await
    .expect("lock");
    let http = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let req = http
                .post(format!("http://127.0.0.1:{port}/api/v1/readings"))
                .header("Authorization", format!("Bearer {}", token.expose()))
                .header("Content-Type", "application/json")
                .body(json!({"ts": ago(500 + i).timestamp(), "value": 50}).to_string());
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let probe = db.client().await;
    for _ in 0..200 {
        let blocked: i64 = probe
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if blocked > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Time for the other requests to be accepted and queued behind the blocked flush.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = tokio::spawn(handle.stop(true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "stopped before answering queued requests"
    );
    tx.rollback().await.expect("release");
    for r in requests {
        assert_eq!(r.await.expect("join").expect("answer"), 200);
    }
    stopping.await.expect("stop");
    server.await.expect("join").expect("server");
    let n: i64 = client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 20, "every acknowledged reading is stored");
}

// ---------------------------------------------------------------- reading back

#[tokio::test]
async fn readings_come_back_as_json_pages_and_csv() {
    let app = spawn_app().await;
    let (_, token) = add_sensor(&app, "reader", SensorKind::Humidity).await;
    let base = ago(10_000).timestamp();
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"ts": base + i * 60, "value": 50.0 + i as f64}))
        .collect();
    assert_eq!(
        post_json(&app, &token, &Value::Array(batch).to_string())
            .await
            .status(),
        200
    );
    let t = |i: i64| ts(DateTime::from_timestamp(base + i * 60, 0).expect("t"));

    let res = app.get("/api/v1/sensors/reader/readings").await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["sensor"], "reader");
    assert_eq!(body["unit"], "%RH");
    assert_eq!(body["readings"].as_array().map(Vec::len), Some(5));
    assert_eq!(body["readings"][0], json!({"ts": t(0), "value": 50.0}));
    assert_eq!(body["next"], Value::Null);

    let url = format!(
        "/api/v1/sensors/reader/readings?from={}&to={}&limit=2",
        t(1),
        t(4)
    );
    let body = json_of(app.get(&url).await).await;
    let values: Vec<f64> = body["readings"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect();
    assert_eq!(values, vec![51.0, 52.0]);
    assert_eq!(
        body["next"],
        ts(DateTime::from_timestamp(base + 120, 1_000).expect("t"))
    );
    let body = json_of(
        app.get(&format!(
            "/api/v1/sensors/reader/readings?from={}&to={}&limit=2",
            base + 121,
            base + 240
        ))
        .await,
    )
    .await;
    assert_eq!(
        body["readings"],
        json!([{"ts": t(3), "value": 53.0}]),
        "from/to as unix seconds, to exclusive"
    );

    let res = app
        .http
        .get(app.url("/api/v1/sensors/reader/readings?limit=2"))
        .header("Accept", "text/csv")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/csv")));
    let csv = res.text().await.expect("text");
    assert_eq!(csv, format!("ts,value\n{},50\n{},51\n", t(0), t(1)));

    assert_eq!(
        app.get("/api/v1/sensors/nobody/readings").await.status(),
        404
    );
    assert_eq!(
        app.get("/api/v1/sensors/Bad%20Name/readings")
            .await
            .status(),
        404
    );
    for q in ["limit=0", "limit=abc", "from=yesterday", "color=red"] {
        let res = app
            .get(&format!("/api/v1/sensors/reader/readings?{q}"))
            .await;
        assert_eq!(res.status(), 400, "{q}");
        assert!(json_of(res).await["error"].is_string());
    }
}
