//! Analog ensemble: forecast by what followed the most similar past situations.
//!
//! For an origin t we look for past origins t' at (nearly) the same time of day whose last
//! day of humidity looked most like ours (level and shape, on the model's transformed
//! scale, the last hours weighing most), and pool the changes that followed them:
//! `y[t'+h] - y[t']`. It is a non-parametric, strongly non-linear model (fog at 100 %, fast
//! drying after rain) that errs differently from the linear direct models, which is what a
//! forecast combination needs. Being a lazy learner it stores no data: it searches the
//! history it is given at forecast time, using only steps before the origin.

use serde::{Deserialize, Serialize};

use super::features::{FeatureFrame, LAGS_PER_DAY};

/// Columns of the linear row used as the situation description: level, lags 1..=24, 48, 168.
pub const DESCRIPTOR: usize = 27;
/// The differences from the level at lags 1..=24 (in 24ths of a day) count in the distance
/// with weight `exp(-lag / RECENCY_LAGS)`: what the last hours did says more about what comes
/// next than the shape of the night before. Equal weights were worse on five of seven
/// outdoor bench years at 1-24 h and six at 1-120 h; 8 and 4 weighed the last hours too
/// heavily (worse at 1-24 h on four and five stations).
const RECENCY_LAGS: f64 = 12.0;

/// The descriptor of a linear row, scaled so that plain Euclidean distance applies the
/// recency weights.
fn describe(row: &[f64]) -> Option<[f64; DESCRIPTOR]> {
    let mut d = [0.0; DESCRIPTOR];
    d.copy_from_slice(row.get(..DESCRIPTOR)?);
    // sqrt(exp(-k / RECENCY_LAGS)) for lag k, as a running product.
    let step = (-0.5 / RECENCY_LAGS).exp();
    let mut scale = 1.0;
    for v in &mut d[1..=LAGS_PER_DAY] {
        scale *= step;
        *v *= scale;
    }
    Some(d)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalogModel {
    /// How horizon h pools its neighbours' changes is `pooling[h-1]` (chosen by inner
    /// validation per block of horizons: far horizons want more averaging, i.e. more
    /// climatology).
    pub pooling: Vec<Pooling>,
    /// Candidates may start up to this many steps earlier/later in the day than the origin.
    pub hour_window: usize,
}

impl AnalogModel {
    /// Most neighbours any horizon pools.
    pub fn max_k(&self) -> usize {
        self.pooling.iter().map(|p| p.k).max().unwrap_or(1)
    }
}

/// The changes after the `k` nearest neighbours, summarised by their mean or their median.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pooling {
    pub k: usize,
    pub summary: Summary,
}

impl Pooling {
    /// Every pooling inner validation tries: each summary with each of [`K_GRID`].
    pub fn grid() -> Vec<Pooling> {
        Summary::ALL
            .iter()
            .flat_map(|&summary| K_GRID.iter().map(move |&k| Pooling { k, summary }))
            .collect()
    }
}

/// The median is the best constant under absolute error and ignores the odd neighbour whose
/// rain or fog came at another moment; the mean uses every neighbour's size. Which one
/// forecasts a sensor better is a property of its climate, so inner validation picks it
/// (the median alone was better on five of the seven outdoor bench years and worse on two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Summary {
    Mean,
    Median,
}

impl Summary {
    pub const ALL: [Summary; 2] = [Summary::Mean, Summary::Median];

    /// Summary of `values` (reordered in place); `None` when empty.
    fn of(self, values: &mut [f64]) -> Option<f64> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        Some(match self {
            Summary::Mean => values.iter().sum::<f64>() / n as f64,
            Summary::Median => {
                // Changes of finite values are finite, so `partial_cmp` is a total order
                // here (and much cheaper than `total_cmp` in this, the analog's hot loop).
                let (below, upper, _) = values.select_nth_unstable_by(n / 2, |a, b| {
                    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
                });
                let upper = *upper;
                if n % 2 == 1 {
                    upper
                } else {
                    // The lower middle is the largest of the values below the upper one.
                    let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (lower + upper) / 2.0
                }
            }
        })
    }
}

/// Candidate neighbour counts tried in inner validation.
pub const K_GRID: [usize; 6] = [10, 20, 40, 80, 160, 320];
/// Horizon blocks (first horizon of each) that share one neighbour count.
pub const K_BLOCKS: [usize; 4] = [1, 7, 25, 49];
pub const HOUR_WINDOW: usize = 1;

/// Situation descriptor of every step of `frame` (`None` where it touches a gap).
pub fn descriptors(frame: &FeatureFrame<'_>, len: usize) -> Vec<Option<[f64; DESCRIPTOR]>> {
    (0..len).map(|c| describe(&frame.lag_row(c)?)).collect()
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
    let Some(q) = query.lag_row(t).and_then(|row| describe(&row)) else {
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
        let d: f64 = q.iter().zip(row).map(|(a, b)| (a - b) * (a - b)).sum();
        if d.is_finite() {
            scored.push((d, c));
        }
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.truncate(max_k);
    scored.into_iter().map(|(_, c)| c).collect()
}

/// Change after the neighbours pooled as `pooling(h)` says, per horizon (0 when none is
/// known).
pub fn pooled_changes(
    raw: &FeatureFrame<'_>,
    nbrs: &[usize],
    pooling: impl Fn(usize) -> Pooling,
    horizon: usize,
) -> Vec<f64> {
    let mut changes = Vec::with_capacity(nbrs.len());
    (1..=horizon)
        .map(|h| {
            let p = pooling(h);
            changes.clear();
            changes.extend(
                nbrs[..p.k.min(nbrs.len())]
                    .iter()
                    .filter_map(|&c| raw.target(c, h)),
            );
            p.summary.of(&mut changes).unwrap_or(0.0)
        })
        .collect()
}

/// Change after the neighbours under every pooling of `candidates`: `out[c][h-1]`, equal to
/// [`pooled_changes`] with that pooling at every horizon. Inner validation scores them all,
/// so each horizon's changes are gathered once for all of them.
pub fn pooled_changes_grid(
    raw: &FeatureFrame<'_>,
    nbrs: &[usize],
    candidates: &[Pooling],
    horizon: usize,
) -> Vec<Vec<f64>> {
    let max_k = candidates
        .iter()
        .map(|p| p.k)
        .max()
        .unwrap_or(0)
        .min(nbrs.len());
    let mut out = vec![Vec::with_capacity(horizon); candidates.len()];
    // The known changes, nearest first, and how many of them the nearest r neighbours hold.
    let mut known = Vec::with_capacity(max_k);
    let mut known_within = Vec::with_capacity(max_k + 1);
    let mut scratch = Vec::with_capacity(max_k);
    for h in 1..=horizon {
        known.clear();
        known_within.clear();
        known_within.push(0);
        for &c in &nbrs[..max_k] {
            known.extend(raw.target(c, h));
            known_within.push(known.len());
        }
        for (row, p) in out.iter_mut().zip(candidates) {
            let n = known_within.get(p.k.min(max_k)).copied().unwrap_or(0);
            scratch.clear();
            scratch.extend_from_slice(&known[..n]);
            row.push(p.summary.of(&mut scratch).unwrap_or(0.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_match_hand_computed_values() {
        assert_eq!(Summary::Mean.of(&mut [3.0, -1.0, 10.0]), Some(4.0));
        assert_eq!(Summary::Median.of(&mut [3.0, -1.0, 10.0]), Some(3.0));
        // Even count: the mean of the two middle values, whatever the input order.
        assert_eq!(Summary::Median.of(&mut [7.0, -2.0, 100.0, 1.0]), Some(4.0));
        // One far-off neighbour moves the mean, not the median.
        assert_eq!(Summary::Median.of(&mut [1.0, 2.0, 60.0]), Some(2.0));
        assert_eq!(Summary::Mean.of(&mut []), None);
        assert_eq!(Summary::Median.of(&mut []), None);
    }

    #[test]
    fn the_last_hours_count_more_in_the_distance_than_the_night_before() {
        let dist = |a: &[f64], b: &[f64]| -> f64 {
            let (a, b) = (describe(a).expect("a"), describe(b).expect("b"));
            a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum()
        };
        let base = [0.0; DESCRIPTOR];
        let differs_at = |i: usize| {
            let mut d = base;
            d[i] = 5.0;
            d
        };
        // Lag 1 against lag 20: weights exp(-1/12) and exp(-20/12).
        let (recent, night) = (dist(&base, &differs_at(1)), dist(&base, &differs_at(20)));
        assert!(
            (recent - 25.0 * (-1.0f64 / 12.0).exp()).abs() < 1e-9,
            "{recent}"
        );
        assert!(
            (night - 25.0 * (-20.0f64 / 12.0).exp()).abs() < 1e-9,
            "{night}"
        );
        // The level and the lags of two days and a week ago count in full.
        for i in [0, DESCRIPTOR - 2, DESCRIPTOR - 1] {
            assert!(
                (dist(&base, &differs_at(i)) - 25.0).abs() < 1e-9,
                "column {i}"
            );
        }
        assert_eq!(describe(&[1.0; DESCRIPTOR - 1]), None);
    }

    #[test]
    fn the_validation_grid_pools_exactly_as_the_served_forecast_does() {
        // A noisy daily cycle with gaps, so some neighbours' targets are missing.
        let values: Vec<Option<f64>> = (0..24 * 60)
            .map(|i: usize| {
                let hour = (i % 24) as f64;
                let wiggle = ((i * 7919) % 23) as f64;
                (i % 241 != 5)
                    .then_some(60.0 + 15.0 * (hour / 24.0 * std::f64::consts::TAU).sin() + wiggle)
            })
            .collect();
        let raw = FeatureFrame::build(&values, 0, 3600, 24);
        let table = descriptors(&raw, values.len());
        let t = (0..values.len())
            .rev()
            .find(|&t| raw.lag_row(t).is_some())
            .expect("an origin clear of gaps");
        let nbrs = neighbours(&raw, &table, &raw, t, 48, HOUR_WINDOW, 320);
        assert!(
            nbrs.len() > 20,
            "too few neighbours to compare: {}",
            nbrs.len()
        );
        let candidates = Pooling::grid();
        let grid = pooled_changes_grid(&raw, &nbrs, &candidates, 48);
        for (row, &p) in grid.iter().zip(&candidates) {
            assert_eq!(row, &pooled_changes(&raw, &nbrs, |_| p, 48), "{p:?}");
        }
        // Mean and median differ somewhere, or the comparison above proves little.
        assert_ne!(grid[0], grid[K_GRID.len()]);
    }
}
