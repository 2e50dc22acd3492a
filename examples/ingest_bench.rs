//! Load generator and reference points for `benches/ingest.sh` (see there for the whole
//! run). Not part of the server: it talks to a running `hygrocast serve` over HTTP and to
//! its PostgreSQL directly.
//!
//! Subcommands:
//! - `setup`: create the benchmark sensors, write their tokens to a file (for wrk);
//! - `batch`: post pre-encoded JSON or line-protocol batches from N concurrent clients;
//! - `copy`: load the same rows with one binary COPY (the database's ceiling);
//! - `bare`: an actix endpoint that parses the one-reading body exactly like the real
//!   one and answers without the database (the HTTP ceiling);
//! - `truncate` / `count`: reset and check the readings table between phases.
//!
//! Every figure is printed as `RESULT <key> <value>` for the script to collect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt;
use hygrocast::domain::{Reading, SensorKind, SensorName, Token};
use hygrocast::ingest::{process, IngestLimits};
use hygrocast::sensors::{self, NewSensor};
use hygrocast::simulate::{to_json_batch, to_line_protocol};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Line,
}

#[derive(Subcommand)]
enum Cmd {
    Setup {
        #[arg(long)]
        db: String,
        #[arg(long, default_value_t = 1000)]
        sensors: usize,
        /// Output: one `token sensor_id` per line.
        #[arg(long)]
        tokens: String,
    },
    Batch {
        #[arg(long)]
        url: String,
        #[arg(long)]
        db: String,
        #[arg(long)]
        tokens: String,
        #[arg(long, value_enum)]
        format: Format,
        #[arg(long, default_value_t = 1_000_000)]
        readings: usize,
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    Copy {
        #[arg(long)]
        db: String,
        #[arg(long)]
        tokens: String,
        #[arg(long, default_value_t = 1_000_000)]
        readings: usize,
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
    },
    Bare {
        #[arg(long)]
        bind: String,
        /// HTTP workers (0: one per core, like `serve`).
        #[arg(long, default_value_t = 0)]
        workers: usize,
    },
    Truncate {
        #[arg(long)]
        db: String,
    },
    Count {
        #[arg(long)]
        db: String,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Setup {
                db,
                sensors,
                tokens,
            } => setup(&db, sensors, &tokens).await,
            Cmd::Batch {
                url,
                db,
                tokens,
                format,
                readings,
                batch,
                clients,
            } => batch_load(&url, &db, &tokens, format, readings, batch, clients).await,
            Cmd::Copy {
                db,
                tokens,
                readings,
                batch,
            } => copy_load(&db, &tokens, readings, batch).await,
            Cmd::Bare { bind, workers } => bare(&bind, workers).await,
            Cmd::Truncate { db } => {
                reset(&connect(&db).await?).await?;
                Ok(())
            }
            Cmd::Count { db } => {
                let n = count(&connect(&db).await?).await?;
                println!("RESULT rows {n}");
                Ok(())
            }
        }
    })
}

async fn connect(db: &str) -> Result<tokio_postgres::Client, BoxError> {
    let (client, conn) = db.parse::<tokio_postgres::Config>()?.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Empty table, clean buffers: every phase starts from the same state.
async fn reset(client: &tokio_postgres::Client) -> Result<(), BoxError> {
    // Separate statements: VACUUM refuses to run in the implicit transaction of a batch.
    for sql in ["TRUNCATE readings", "VACUUM ANALYZE readings", "CHECKPOINT"] {
        client.batch_execute(sql).await?;
    }
    Ok(())
}

async fn count(client: &tokio_postgres::Client) -> Result<i64, BoxError> {
    Ok(client
        .query_one("SELECT count(*) FROM readings", &[])
        .await?
        .get(0))
}

async fn setup(db: &str, n: usize, out: &str) -> Result<(), BoxError> {
    let client = connect(db).await?;
    let mut lines = String::new();
    for i in 0..n {
        let new = NewSensor {
            name: SensorName::parse(&format!("bench-{i:05}"))?,
            kind: SensorKind::Humidity,
            unit: None,
            location: None,
        };
        let (sensor, token) = sensors::create(&client, &new).await?;
        lines.push_str(&format!("{} {}\n", token.expose(), sensor.id));
    }
    std::fs::write(out, lines)?;
    println!("created {n} sensors");
    Ok(())
}

fn read_tokens(path: &str) -> Result<Vec<(String, i64)>, BoxError> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|l| {
            let (token, id) = l.split_once(' ').ok_or("bad tokens line")?;
            Ok((token.to_owned(), id.parse()?))
        })
        .collect()
}

/// The benchmark's rows: batch `b` belongs to sensor `b mod sensors` and holds `batch`
/// readings one second apart, so every row is new (no duplicates).
fn batches(
    tokens: &[(String, i64)],
    readings: usize,
    batch: usize,
) -> Result<Vec<(usize, Vec<Reading>)>, BoxError> {
    let start = Utc::now().timestamp() - 400 * 86_400;
    let mut out = Vec::new();
    let mut made = 0;
    let mut b = 0;
    while made < readings {
        let size = batch.min(readings - made);
        let sensor = b % tokens.len();
        // Later rounds over the same sensor continue after its previous batch.
        let offset = (b / tokens.len() * batch) as i64;
        let rs = (0..size)
            .map(|i| {
                let ts = DateTime::from_timestamp(start + offset + i as i64, 0)
                    .ok_or("timestamp out of range")?;
                let value = ((i * 7919 + b * 104_729) % 1000) as f64 / 10.0;
                Ok(Reading::from_parts(SensorKind::Humidity, ts, value)?)
            })
            .collect::<Result<Vec<_>, BoxError>>()?;
        out.push((sensor, rs));
        made += size;
        b += 1;
    }
    Ok(out)
}

async fn batch_load(
    url: &str,
    db: &str,
    tokens_path: &str,
    format: Format,
    readings: usize,
    batch: usize,
    clients: usize,
) -> Result<(), BoxError> {
    let tokens = read_tokens(tokens_path)?;
    let client = connect(db).await?;
    reset(&client).await?;
    // Encoded before the clock starts: we measure the server, not this generator.
    let (path, scheme, content_type) = match format {
        Format::Json => ("/api/v1/readings", "Bearer", "application/json"),
        Format::Line => ("/api/v2/write?precision=ns", "Token", "text/plain"),
    };
    let bodies: Vec<(String, String)> = batches(&tokens, readings, batch)?
        .into_iter()
        .map(|(sensor, rs)| {
            let body = match format {
                Format::Json => to_json_batch(&rs),
                Format::Line => to_line_protocol("humidity", &rs),
            };
            (format!("{scheme} {}", tokens[sensor].0), body)
        })
        .collect();
    let bytes: usize = bodies.iter().map(|(_, b)| b.len()).sum();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let endpoint = format!("{}{path}", url.trim_end_matches('/'));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (bodies, next, http, endpoint) =
                (bodies.clone(), next.clone(), http.clone(), endpoint.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((auth, body)) = bodies.get(i) else {
                        return Ok::<(), String>(());
                    };
                    let res = http
                        .post(&endpoint)
                        .header("Authorization", auth)
                        .header("Content-Type", content_type)
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !res.status().is_success() {
                        let status = res.status();
                        return Err(format!(
                            "{status}: {}",
                            res.text().await.unwrap_or_default()
                        ));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let stored = count(&client).await?;
    if stored != readings as i64 {
        return Err(format!("{stored} rows stored, expected {readings}").into());
    }
    let name = match format {
        Format::Json => "json",
        Format::Line => "line",
    };
    println!(
        "{name}: {readings} readings in {} requests of {batch} ({:.1} MB) by {clients} clients: {secs:.2} s",
        bodies.len(),
        bytes as f64 / 1e6
    );
    println!("RESULT {name}_rps {:.0}", readings as f64 / secs);
    Ok(())
}

async fn copy_load(
    db: &str,
    tokens_path: &str,
    readings: usize,
    batch: usize,
) -> Result<(), BoxError> {
    let tokens = read_tokens(tokens_path)?;
    let mut client = connect(db).await?;
    reset(&client).await?;
    let rows = batches(&tokens, readings, batch)?;
    let started = Instant::now();
    let tx = client.transaction().await?;
    let sink = tx
        .copy_in("COPY readings (sensor_id, ts, value) FROM STDIN (FORMAT binary)")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TIMESTAMPTZ, Type::FLOAT8]);
    futures_util::pin_mut!(writer);
    for (sensor, rs) in &rows {
        let id = tokens[*sensor].1;
        for r in rs {
            let ts = r.ts();
            let value = r.value();
            writer.as_mut().write(&[&id, &ts, &value]).await?;
        }
    }
    writer.finish().await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    let stored = count(&client).await?;
    if stored != readings as i64 {
        return Err(format!("{stored} rows stored, expected {readings}").into());
    }
    println!("copy: {readings} rows in one binary COPY: {secs:.2} s");
    println!("RESULT copy_rps {:.0}", readings as f64 / secs);
    Ok(())
}

/// The HTTP ceiling: the same token check, bounded body read and parse/validate as
/// `POST /api/v1/readings`, then an answer without any database work.
async fn bare(bind: &str, workers: usize) -> Result<(), BoxError> {
    let limits = IngestLimits {
        max_body: 8 << 20,
        max_batch: 10_000,
        max_future: chrono::Duration::seconds(300),
    };
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(limits))
            .route("/api/v1/readings", web::post().to(bare_readings))
    });
    if workers > 0 {
        server = server.workers(workers);
    }
    eprintln!("bare endpoint on {bind}");
    server.bind(bind)?.run().await?;
    Ok(())
}

async fn bare_readings(
    req: HttpRequest,
    mut payload: web::Payload,
    limits: web::Data<IngestLimits>,
) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| Token::is_well_formed(t));
    let Some(token) = token else {
        return HttpResponse::Unauthorized().finish();
    };
    let _hash = Token::hash(token);
    let mut body = web::BytesMut::new();
    while let Some(Ok(chunk)) = payload.next().await {
        if body.len() + chunk.len() > limits.max_body {
            return HttpResponse::PayloadTooLarge().finish();
        }
        body.extend_from_slice(&chunk);
    }
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    match process(
        SensorKind::Humidity,
        ct,
        None,
        None,
        &body,
        Utc::now(),
        &limits,
    ) {
        Ok(batch) => HttpResponse::Ok().json(serde_json::json!({
            "accepted": batch.readings.len(),
            "duplicates": batch.duplicates,
        })),
        Err(e) => HttpResponse::BadRequest().body(e.to_string()),
    }
}
