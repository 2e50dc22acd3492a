//! Group commit: validated requests wait in a bounded queue; writer tasks take as many as
//! fit in one flush and write them in a single transaction, then answer each request.
//!
//! Invariants (ARCHITECTURE.md repeats them):
//! - a request is answered `Ok` only after the transaction holding its readings committed;
//! - a request's readings are never split across flushes, so each request is all-or-nothing;
//! - a full queue answers at once (`Overloaded`), a database failure answers every request
//!   of the flush (`Unavailable`); nothing waits forever and nothing is dropped silently;
//! - the token that authenticated a request is re-checked against the stored hash inside
//!   the flush's transaction, with the sensor row locked, so a rotated or removed token can
//!   never write after its rotation or removal committed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::domain::Reading;

/// A flush that takes longer than this is abandoned and its requests get 503: a client
/// must not hang on a database that stopped answering. (The transaction may still
/// commit; the client's retry is then counted as a duplicate, never a second row.)
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed flush, so a down database is not hammered by every writer.
const FAILURE_PAUSE: Duration = Duration::from_millis(200);

/// One flush is this one statement, so it is one round trip and one transaction (commit
/// included) however many requests it carries. `$5` are the flush's distinct sensor ids;
/// `$1..$4` one entry per row: sensor, time, value and the hash of the request's token.
///
/// - `locked` takes FOR KEY SHARE on the sensor rows (index scan, in id order so
///   concurrent flushes cannot deadlock with a rotation); a rotation or removal either
///   committed before (and we see its result) or waits for this statement to commit.
/// - Only rows whose token hash is still the locked row's are inserted, so a token
///   rotated or a sensor removed after its request was authenticated writes nothing.
/// - The answer lists the locked rows (sensor id and stored hash, compared per request
///   in constant time to report 401) and the inserted rows (to count accepted readings).
const FLUSH_SQL: &str = "\
WITH locked AS MATERIALIZED (
    SELECT id, token_hash FROM sensors WHERE id = ANY($5::bigint[]) ORDER BY id FOR KEY SHARE
), inserted AS (
    INSERT INTO readings (sensor_id, ts, value)
    SELECT u.sensor_id, u.ts, u.value
    FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::bytea[])
         AS u(sensor_id, ts, value, token_hash)
    WHERE (u.sensor_id, u.token_hash) IN (SELECT id, token_hash FROM locked)
    ON CONFLICT DO NOTHING
    RETURNING sensor_id, ts
)
SELECT id, token_hash, NULL::timestamptz AS ts FROM locked
UNION ALL
SELECT sensor_id, NULL::bytea, ts FROM inserted";

/// The result of a committed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Readings stored by this request.
    pub accepted: usize,
    /// Readings that were already stored (same sensor and timestamp).
    pub duplicates: usize,
}

/// Why a request was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("ingestion queue is full; retry shortly")]
    Overloaded,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The token no longer belongs to the sensor (rotated, or the sensor was removed).
    #[error("token is not valid (rotated or revoked)")]
    Unauthorized,
    #[error("server is shutting down")]
    ShuttingDown,
}

struct Job {
    sensor_id: i64,
    token_hash: [u8; 32],
    readings: Vec<Reading>,
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

/// The cloneable handle request handlers use to submit writes.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
}

/// The writer tasks, to wait for on shutdown.
pub struct BatcherTasks {
    writers: Vec<JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy)]
pub struct BatcherConfig {
    pub queue_capacity: usize,
    pub writers: usize,
    pub max_flush_rows: usize,
}

/// Starts the writer tasks on the current Tokio runtime.
pub fn start(pool: Pool, config: BatcherConfig) -> (Batcher, BatcherTasks) {
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let writers = (0..config.writers.max(1))
        .map(|n| {
            let writer = Writer {
                n,
                pool: pool.clone(),
                rx: rx.clone(),
                max_rows: config.max_flush_rows.max(1),
                carry: None,
            };
            tokio::spawn(writer.run())
        })
        .collect();
    (Batcher { tx }, BatcherTasks { writers })
}

impl Batcher {
    /// Queues `readings` of one sensor and waits until they are committed.
    ///
    /// An empty batch goes through a flush too, so that a stale token gets its 401 rather
    /// than a 200 for writing nothing.
    ///
    /// `token_hash` is the SHA-256 of the token that authenticated the request; the write
    /// only happens if it is still the sensor's token when the flush runs.
    pub async fn write(
        &self,
        sensor_id: i64,
        token_hash: [u8; 32],
        readings: Vec<Reading>,
    ) -> Result<WriteOutcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            sensor_id,
            token_hash,
            readings,
            reply,
        };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WriteError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => WriteError::ShuttingDown,
        })?;
        crate::metrics::set_ingest_queue_depth(self.tx.max_capacity() - self.tx.capacity());
        // A dropped sender means the writer died before answering: not committed.
        answer.await.unwrap_or(Err(WriteError::ShuttingDown))
    }
}

impl BatcherTasks {
    /// Waits for the writers to finish the queued requests. They stop once every
    /// `Batcher` handle is dropped and the queue is empty; gives up after `timeout`.
    pub async fn drain(self, timeout: Duration) {
        let all = futures_util::future::join_all(self.writers);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("ingest writers did not finish within the shutdown timeout");
        }
    }
}

struct Writer {
    n: usize,
    pool: Pool,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_rows: usize,
    /// A job taken from the queue that did not fit in the previous flush.
    carry: Option<Job>,
}

impl Writer {
    async fn run(mut self) {
        while let Some(jobs) = self.collect().await {
            let rows: usize = jobs.iter().map(|j| j.readings.len()).sum();
            let requests = jobs.len();
            let started = std::time::Instant::now();
            let result = tokio::time::timeout(FLUSH_TIMEOUT, flush(&self.pool, &jobs)).await;
            let result = match result {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "write did not finish within {} s",
                    FLUSH_TIMEOUT.as_secs()
                )),
            };
            match result {
                Ok(outcomes) => {
                    crate::metrics::batcher_flush(rows, started.elapsed());
                    tracing::debug!(
                        writer = self.n,
                        requests,
                        rows,
                        ms = started.elapsed().as_secs_f64() * 1000.0,
                        "flushed"
                    );
                    for (job, outcome) in jobs.into_iter().zip(outcomes) {
                        // The client may have gone away; its readings are stored anyway.
                        let _ = job.reply.send(outcome);
                    }
                }
                Err(reason) => {
                    tracing::warn!(writer = self.n, requests, rows, %reason, "group commit failed");
                    for job in jobs {
                        let _ = job.reply.send(Err(WriteError::Unavailable(reason.clone())));
                    }
                    tokio::time::sleep(FAILURE_PAUSE).await;
                }
            }
        }
        tracing::debug!(writer = self.n, "ingest writer stopped");
    }

    /// Waits for at least one job, then takes every queued job that fits in `max_rows`
    /// without waiting further. None when the queue is closed and empty.
    async fn collect(&mut self) -> Option<Vec<Job>> {
        let mut rx = self.rx.lock().await;
        let first = match self.carry.take() {
            Some(job) => job,
            None => rx.recv().await?,
        };
        let mut rows = first.readings.len();
        let mut jobs = vec![first];
        while rows < self.max_rows {
            match rx.try_recv() {
                Ok(job) if rows + job.readings.len() <= self.max_rows => {
                    rows += job.readings.len();
                    jobs.push(job);
                }
                Ok(job) => {
                    // Requests are never split: this one starts the next flush.
                    self.carry = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        crate::metrics::set_ingest_queue_depth(rx.len());
        Some(jobs)
    }
}

/// Writes every job in one transaction (one statement, FLUSH_SQL); one outcome per job,
/// in order. `Err` means nothing of this flush may be acknowledged.
async fn flush(pool: &Pool, jobs: &[Job]) -> Result<Vec<Result<WriteOutcome, WriteError>>, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let result = flush_on(&client, jobs).await;
    if result.is_err() {
        // The connection may be broken or its state unknown: never hand it out again.
        drop(deadpool_postgres::Object::take(client));
    }
    result
}

async fn flush_on(
    client: &deadpool_postgres::Client,
    jobs: &[Job],
) -> Result<Vec<Result<WriteOutcome, WriteError>>, String> {
    let statement = client
        .prepare_cached(FLUSH_SQL)
        .await
        .map_err(|e| e.to_string())?;

    let mut sensor_ids: Vec<i64> = jobs.iter().map(|j| j.sensor_id).collect();
    sensor_ids.sort_unstable();
    sensor_ids.dedup();

    // Rows to insert, first occurrence of each (sensor, ts, token) only: two requests of
    // one flush repeating a reading must not both count it as accepted. The token is part
    // of the key so that a request with a stale token cannot shadow a valid one.
    let capacity: usize = jobs.iter().map(|j| j.readings.len()).sum();
    let mut ids = Vec::with_capacity(capacity);
    let mut tss: Vec<DateTime<Utc>> = Vec::with_capacity(capacity);
    let mut values = Vec::with_capacity(capacity);
    let mut hashes: Vec<&[u8]> = Vec::with_capacity(capacity);
    let mut in_flush = HashSet::with_capacity(capacity);
    let mut first_in_flush: Vec<Vec<bool>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut firsts = Vec::with_capacity(job.readings.len());
        for r in &job.readings {
            let first = in_flush.insert((job.sensor_id, r.ts().timestamp_micros(), job.token_hash));
            if first {
                ids.push(job.sensor_id);
                tss.push(r.ts());
                values.push(r.value());
                hashes.push(job.token_hash.as_slice());
            }
            firsts.push(first);
        }
        first_in_flush.push(firsts);
    }

    let rows = client
        .query(&statement, &[&ids, &tss, &values, &hashes, &sensor_ids])
        .await
        .map_err(|e| e.to_string())?;
    // Rows with a hash are the locked sensors; rows with a time are the inserted readings.
    let mut stored: HashMap<i64, Vec<u8>> = HashMap::new();
    let mut inserted: HashSet<(i64, i64)> = HashSet::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get(0).map_err(|e| e.to_string())?;
        let hash: Option<Vec<u8>> = row.try_get(1).map_err(|e| e.to_string())?;
        let ts: Option<DateTime<Utc>> = row.try_get(2).map_err(|e| e.to_string())?;
        if let Some(hash) = hash {
            stored.insert(id, hash);
        }
        if let Some(ts) = ts {
            inserted.insert((id, ts.timestamp_micros()));
        }
    }

    Ok(jobs
        .iter()
        .zip(first_in_flush)
        .map(|(job, firsts)| {
            let authorized = stored
                .get(&job.sensor_id)
                .is_some_and(|h| bool::from(h.as_slice().ct_eq(&job.token_hash)));
            if !authorized {
                return Err(WriteError::Unauthorized);
            }
            let accepted = job
                .readings
                .iter()
                .zip(firsts)
                .filter(|(r, first)| {
                    *first && inserted.contains(&(job.sensor_id, r.ts().timestamp_micros()))
                })
                .count();
            Ok(WriteOutcome {
                accepted,
                duplicates: job.readings.len() - accepted,
            })
        })
        .collect())
}
