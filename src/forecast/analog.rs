//! Analog ensemble: forecast by what followed the most similar past situations.
//!
//! For an origin t we look for past origins t' at (nearly) the same time of day whose last
//! day of humidity looked most like ours (level and shape, on the model's transformed
//! scale), and average the changes that followed them: `y[t'+h] - y[t']`. It is a
//! non-parametric, strongly non-linear model (fog at 100 %, fast drying after rain) that
//! errs differently from the linear direct models, which is what a forecast combination
//! needs. Being a lazy learner it stores no data: it searches the history it is given at
//! forecast time, using only steps before the origin.

use serde::{Deserialize, Serialize};

use super::features::FeatureFrame;

/// Columns of the linear row used as the situation description: level, lags 1..=24, 48, 168.
pub const DESCRIPTOR: usize = 27;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalogModel {
    /// Neighbours averaged at horizon h is `k[h-1]` (chosen by inner validation per block of
    /// horizons: far horizons want more averaging, i.e. more climatology).
    pub k: Vec<usize>,
    /// Candidates may start up to this many steps earlier/later in the day than the origin.
    pub hour_window: usize,
}

/// Candidate neighbour counts tried in inner validation.
pub const K_GRID: [usize; 6] = [10, 20, 40, 80, 160, 320];
/// Horizon blocks (first horizon of each) that share one neighbour count.
pub const K_BLOCKS: [usize; 4] = [1, 7, 25, 49];
pub const HOUR_WINDOW: usize = 1;

/// Situation descriptor of every step of `frame` (`None` where it touches a gap).
pub fn descriptors(frame: &FeatureFrame<'_>, len: usize) -> Vec<Option<[f64; DESCRIPTOR]>> {
    (0..len)
        .map(|c| {
            let row = frame.lag_row(c)?;
            let mut d = [0.0; DESCRIPTOR];
            d.copy_from_slice(&row[..DESCRIPTOR]);
            Some(d)
        })
        .collect()
}

/// Past origins most similar to the situation at `t`, nearest first (at most `max_k`).
///
/// `query` is the (gap-filled) frame the forecast is made from; `raw` has the same values
/// with gaps and `table` its [`descriptors`]: only candidates whose description and final
/// target avoid gaps qualify. Candidates end their trajectory at or before `t`, so nothing
/// after the origin is used.
pub fn neighbours(
    raw: &FeatureFrame<'_>,
    table: &[Option<[f64; DESCRIPTOR]>],
    query: &FeatureFrame<'_>,
    t: usize,
    horizon: usize,
    hour_window: usize,
    max_k: usize,
) -> Vec<usize> {
    let Some(q) = query.lag_row(t) else {
        return Vec::new();
    };
    let p = raw.period();
    let Some(last) = t.checked_sub(horizon) else {
        return Vec::new();
    };
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for (c, desc) in table.iter().enumerate().take(last + 1) {
        let diff = (c % p + p - t % p) % p;
        if diff.min(p - diff) > hour_window {
            continue;
        }
        let Some(row) = desc else { continue };
        if raw.target(c, horizon).is_none() {
            continue;
        }
        let d: f64 = q[..DESCRIPTOR]
            .iter()
            .zip(row)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        if d.is_finite() {
            scored.push((d, c));
        }
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.truncate(max_k);
    scored.into_iter().map(|(_, c)| c).collect()
}

/// Mean change after the first `k(h)` neighbours, per horizon (0 when none is known).
pub fn mean_changes(
    raw: &FeatureFrame<'_>,
    nbrs: &[usize],
    k: impl Fn(usize) -> usize,
    horizon: usize,
) -> Vec<f64> {
    (1..=horizon)
        .map(|h| {
            let used = &nbrs[..k(h).min(nbrs.len())];
            let (sum, n) = used
                .iter()
                .filter_map(|&c| raw.target(c, h))
                .fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
            if n == 0 {
                0.0
            } else {
                sum / n as f64
            }
        })
        .collect()
}
