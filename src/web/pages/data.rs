//! The queries behind the pages. Each page reads what is stored with a few set-based
//! queries; nothing here fits or runs a model (the sensor page's forecast comes from the
//! cached serving path).

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use super::error::PageError;
use crate::templates::dashboard::SensorRow;

/// Sparkline length: hourly means of the last 48 hours.
pub const SPARK_HOURS: i64 = 48;
/// Most points the sensor chart draws; longer histories are averaged into wider buckets.
pub const MAX_CHART_POINTS: i64 = 720;

/// Every sensor with its last reading, 48 h of hourly means, the range of its latest issued
/// forecast over the next `next_secs` seconds, its champion and its latest live score — one query, each part
/// an index range scan per sensor (readings by (sensor_id, ts), forecasts by
/// (sensor_id, issued_at, …), live scores by (sensor_id, scored_at)).
pub async fn dashboard_rows(
    client: &impl GenericClient,
    now: DateTime<Utc>,
    next_secs: i64,
) -> Result<Vec<SensorRow>, PageError> {
    // Slot i covers the hour starting at spark_start + i h; the last slot is the current hour.
    let hour_start = now.timestamp() - now.timestamp().rem_euclid(3600);
    let spark_start = (hour_start - (SPARK_HOURS - 1) * 3600) as f64;
    let rows = client
        .query(
            "SELECT s.name, s.kind, s.unit, s.location, l.ts, l.value, sp.hs, sp.vs, \
                    fc.lo, fc.hi, v.version, v.algorithm, v.baseline, v.mase_1_24, ls.mase_1_24, ls.n \
             FROM sensors s \
             LEFT JOIN LATERAL (SELECT r.ts, r.value FROM readings r WHERE r.sensor_id = s.id \
                                ORDER BY r.ts DESC LIMIT 1) l ON true \
             LEFT JOIN LATERAL ( \
                 SELECT array_agg(x.b ORDER BY x.b) AS hs, array_agg(x.v ORDER BY x.b) AS vs FROM ( \
                     SELECT floor((extract(epoch FROM r.ts)::float8 - $1) / 3600)::int AS b, avg(r.value) AS v \
                     FROM readings r WHERE r.sensor_id = s.id AND r.ts >= to_timestamp($1) \
                     GROUP BY 1) x) sp ON true \
             LEFT JOIN LATERAL ( \
                 SELECT min(f.value) AS lo, max(f.value) AS hi FROM issued_forecasts f \
                 WHERE f.sensor_id = s.id \
                   AND f.issued_at = (SELECT max(i.issued_at) FROM issued_forecasts i WHERE i.sensor_id = s.id) \
                   AND f.target_ts > $2 AND f.target_ts <= $2 + make_interval(secs => $3)) fc ON true \
             LEFT JOIN model_versions v ON v.sensor_id = s.id AND v.status = 'champion' \
             LEFT JOIN LATERAL (SELECT x.mase_1_24, x.n FROM live_scores x \
                                WHERE x.sensor_id = s.id AND x.window_hours = 168 \
                                ORDER BY x.scored_at DESC LIMIT 1) ls ON true \
             ORDER BY s.name",
            &[&spark_start, &now, &(next_secs as f64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let hs: Option<Vec<i32>> = r.get(6);
            let vs: Option<Vec<f64>> = r.get(7);
            let mut spark = vec![None; SPARK_HOURS as usize];
            for (h, v) in hs
                .unwrap_or_default()
                .into_iter()
                .zip(vs.unwrap_or_default())
            {
                if let Some(slot) = usize::try_from(h).ok().and_then(|h| spark.get_mut(h)) {
                    *slot = Some(v);
                }
            }
            let lo: Option<f64> = r.get(8);
            let hi: Option<f64> = r.get(9);
            let version: Option<i32> = r.get(10);
            let algorithm: Option<String> = r.get(11);
            let baseline: Option<bool> = r.get(12);
            SensorRow {
                name: r.get(0),
                kind: r.get(1),
                unit: r.get(2),
                location: r.get(3),
                last_ts: r.get(4),
                last_value: r.get(5),
                spark,
                next: lo.zip(hi),
                champion: version
                    .zip(algorithm)
                    .map(|(v, a)| (v, a, baseline.unwrap_or(false))),
                backtest_mase: r.get(13),
                live_mase: r.get(14),
                live_n: r.get(15),
            }
        })
        .collect())
}

/// A sensor's identity and last reading.
pub struct SensorInfo {
    pub id: i64,
    pub kind: String,
    pub unit: String,
    pub location: Option<String>,
    pub last: Option<(DateTime<Utc>, f64)>,
}

pub async fn sensor_info(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<SensorInfo>, PageError> {
    let row = client
        .query_opt(
            "SELECT s.id, s.kind, s.unit, s.location, l.ts, l.value FROM sensors s \
             LEFT JOIN LATERAL (SELECT r.ts, r.value FROM readings r WHERE r.sensor_id = s.id \
                                ORDER BY r.ts DESC LIMIT 1) l ON true \
             WHERE s.name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| {
        let ts: Option<DateTime<Utc>> = r.get(4);
        let value: Option<f64> = r.get(5);
        SensorInfo {
            id: r.get(0),
            kind: r.get(1),
            unit: r.get(2),
            location: r.get(3),
            last: ts.zip(value),
        }
    }))
}

/// The width, seconds, of the chart's history buckets: the grid step, widened so that
/// `days` of history make at most [`MAX_CHART_POINTS`] points.
pub fn history_bucket(days: u32, step_secs: i64) -> i64 {
    let step = step_secs.max(1);
    let steps = (i64::from(days) * 86_400).div_euclid(step).max(1);
    let per_point = (steps + MAX_CHART_POINTS - 1) / MAX_CHART_POINTS;
    step * per_point.max(1)
}

/// Means of the readings per `bucket` seconds since `since`: (bucket start, mean).
/// Buckets without readings are absent, so the chart shows them as gaps.
pub async fn history(
    client: &impl GenericClient,
    sensor_id: i64,
    since: DateTime<Utc>,
    bucket: i64,
) -> Result<Vec<(i64, f64)>, PageError> {
    let rows = client
        .query(
            "SELECT (floor(extract(epoch FROM ts)::float8 / $3) * $3)::bigint AS b, avg(value) \
             FROM readings WHERE sensor_id = $1 AND ts >= $2 GROUP BY 1 ORDER BY 1",
            &[&sensor_id, &since, &(bucket as f64)],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_buckets_keep_the_chart_small() {
        assert_eq!(history_bucket(7, 3600), 3600);
        assert_eq!(history_bucket(30, 3600), 3600);
        assert_eq!(history_bucket(90, 3600), 3 * 3600);
        assert_eq!(history_bucket(366, 3600), 13 * 3600);
    }
}
