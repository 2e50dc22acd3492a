//! Regular time grid: resampling raw readings, short-gap filling, digests and export.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ForecastConfig;

/// A series on a regular grid. `values[i]` belongs to `start + i * step_secs`;
/// `None` is a gap that was too long to fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub start: DateTime<Utc>,
    pub step_secs: i64,
    pub values: Vec<Option<f64>>,
}

impl Series {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Timestamp of grid step `i` (may be past the end: used for forecast steps).
    pub fn ts(&self, i: usize) -> DateTime<Utc> {
        let offset = self.step_secs.saturating_mul(i as i64);
        self.start + chrono::Duration::seconds(offset)
    }

    /// The first `n` steps (the history available at origin `n`).
    pub fn head(&self, n: usize) -> Series {
        Series {
            start: self.start,
            step_secs: self.step_secs,
            values: self.values[..n.min(self.values.len())].to_vec(),
        }
    }

    /// Number of steps up to and including the last observed (non-gap) value.
    pub fn observed_len(&self) -> usize {
        self.values
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1)
    }

    /// Unix seconds of step 0 (grid steps are whole multiples of `step_secs`).
    pub fn start_unix(&self) -> i64 {
        self.start.timestamp()
    }
}

/// Mean of readings per step bucket (bucket = floor(unix_ts / step)); gaps of at most
/// `cfg.max_fill` steps between two observed buckets are linearly interpolated, longer gaps
/// stay `None`. Readings may be unsorted. Non-finite readings are dropped (they are sensor
/// faults, not humidity), as are readings whose bucket would overflow the grid.
pub fn resample(readings: &[(DateTime<Utc>, f64)], cfg: &ForecastConfig) -> Series {
    let step = cfg.step_secs.max(1);
    let mut buckets: Vec<(i64, f64)> = readings
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(ts, v)| (ts.timestamp().div_euclid(step), *v))
        .collect();
    let dropped = readings.len() - buckets.len();
    if dropped > 0 {
        tracing::warn!(dropped, "resample: dropped non-finite readings");
    }
    buckets.sort_by_key(|(b, _)| *b);
    let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) else {
        return Series {
            start: epoch(),
            step_secs: step,
            values: Vec::new(),
        };
    };
    // A grid longer than this is a clock fault upstream; refuse to allocate it.
    const MAX_STEPS: i64 = 50_000_000;
    let span = (last - first).min(MAX_STEPS);
    let len = (span + 1) as usize;
    let mut sums = vec![0.0f64; len];
    let mut counts = vec![0u32; len];
    for (b, v) in buckets {
        let i = b - first;
        if i <= span {
            sums[i as usize] += v;
            counts[i as usize] += 1;
        }
    }
    let mut values: Vec<Option<f64>> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| (c > 0).then(|| s / f64::from(c)))
        .collect();
    fill_short_gaps(&mut values, cfg.max_fill);
    let start = Utc
        .timestamp_opt(first.saturating_mul(step), 0)
        .single()
        .unwrap_or_else(epoch);
    Series {
        start,
        step_secs: step,
        values,
    }
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// Linearly interpolate interior runs of `None` no longer than `max_fill`.
pub(crate) fn fill_short_gaps(values: &mut [Option<f64>], max_fill: usize) {
    let mut prev: Option<(usize, f64)> = None;
    for i in 0..values.len() {
        let Some(v) = values[i] else { continue };
        if let Some((p, pv)) = prev {
            let gap = i - p - 1;
            if gap > 0 && gap <= max_fill {
                for (k, slot) in values.iter_mut().enumerate().take(i).skip(p + 1) {
                    let frac = (k - p) as f64 / (i - p) as f64;
                    *slot = Some(pv + (v - pv) * frac);
                }
            }
        }
        prev = Some((i, v));
    }
}

/// SHA-256 (lower-case hex) of the canonical encoding of a series:
///
/// ```text
/// b"hygrocast-series-v1\n"
/// start       i64 little-endian (unix seconds)
/// step_secs   i64 little-endian
/// len         u64 little-endian
/// per value   0x00 for a gap, or 0x01 followed by the f64 IEEE-754 bits little-endian
/// ```
///
/// Two series have the same digest exactly when they are bit-identical on the grid.
pub fn series_digest(series: &Series) -> String {
    let mut h = Sha256::new();
    h.update(b"hygrocast-series-v1\n");
    h.update(series.start.timestamp().to_le_bytes());
    h.update(series.step_secs.to_le_bytes());
    h.update((series.values.len() as u64).to_le_bytes());
    for v in &series.values {
        match v {
            None => h.update([0u8]),
            Some(x) => {
                h.update([1u8]);
                h.update(x.to_bits().to_le_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

/// One `(timestamp, value-or-gap)` row per grid step, for CSV export.
pub fn series_to_csv_rows(series: &Series) -> Vec<(DateTime<Utc>, Option<f64>)> {
    series
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| (series.ts(i), *v))
        .collect()
}

/// Causally filled copy of the values: a gap takes the (filled) value one period earlier,
/// or the last known value during the first period. Only past values are used, so a feature computed from
/// this at step t never depends on anything after t. Leading gaps take the first value.
pub(crate) fn causal_fill(values: &[Option<f64>], period: usize) -> Vec<f64> {
    let first = values.iter().flatten().next().copied().unwrap_or(0.0);
    let mut out: Vec<f64> = Vec::with_capacity(values.len());
    let mut last = first;
    for (i, v) in values.iter().enumerate() {
        let x = match v {
            Some(x) => *x,
            None if i >= period => out[i - period],
            None => last,
        };
        last = x;
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 - 1_700_000_000 % 3600 + h * 3600, 0)
            .single()
            .expect("valid ts")
    }

    #[test]
    fn mean_per_bucket_and_unsorted_input() {
        let cfg = ForecastConfig::default();
        let r = vec![
            (at(1) + chrono::Duration::seconds(10), 60.0),
            (at(0) + chrono::Duration::seconds(5), 40.0),
            (at(0) + chrono::Duration::seconds(3000), 50.0),
            (at(1), 70.0),
        ];
        let s = resample(&r, &cfg);
        assert_eq!(s.start, at(0));
        assert_eq!(s.values, vec![Some(45.0), Some(65.0)]);
    }

    #[test]
    fn short_gap_filled_long_gap_left() {
        let cfg = ForecastConfig::default(); // max_fill = 3
        let mut r = vec![(at(0), 10.0), (at(4), 50.0)]; // gap of 3 -> filled
        r.push((at(9), 0.0)); // gap of 4 -> left
        let s = resample(&r, &cfg);
        assert_eq!(s.len(), 10);
        assert_eq!(
            &s.values[..5],
            &[Some(10.0), Some(20.0), Some(30.0), Some(40.0), Some(50.0)]
        );
        assert!(s.values[5..9].iter().all(Option::is_none));
        assert_eq!(s.values[9], Some(0.0));
    }

    #[test]
    fn non_finite_and_empty() {
        let cfg = ForecastConfig::default();
        let s = resample(&[(at(0), f64::NAN), (at(1), f64::INFINITY)], &cfg);
        assert!(s.is_empty());
        let s = resample(&[], &cfg);
        assert!(s.is_empty());
    }

    #[test]
    fn digest_is_exact() {
        let cfg = ForecastConfig::default();
        let a = resample(&[(at(0), 1.0), (at(5), 2.0)], &cfg);
        let mut b = a.clone();
        assert_eq!(series_digest(&a), series_digest(&b));
        assert_eq!(series_digest(&a).len(), 64);
        b.values[0] = Some(1.0 + 1e-12);
        assert_ne!(series_digest(&a), series_digest(&b));
        assert_eq!(series_to_csv_rows(&a).len(), 6);
        assert_eq!(series_to_csv_rows(&a)[5], (at(5), Some(2.0)));
    }

    #[test]
    fn causal_fill_uses_only_the_past() {
        let v = vec![Some(1.0), Some(2.0), None, Some(4.0), None, None];
        let f = causal_fill(&v, 2);
        assert_eq!(f, vec![1.0, 2.0, 1.0, 4.0, 1.0, 4.0]);
        // changing the future does not change the past
        let mut w = v.clone();
        w[5] = Some(99.0);
        assert_eq!(&causal_fill(&w, 2)[..5], &f[..5]);
    }
}
