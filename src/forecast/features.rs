//! Feature rows for direct multi-horizon models.
//!
//! A row describes the history up to and including origin step `t` (never anything later)
//! and is used to predict the change `y[t+h] - y[t]`. Every level-type feature is expressed
//! relative to the current value `y[t]`, so models learn shapes and reversion rather than
//! absolute levels, which transfers across seasons and sensors.

use serde::{Deserialize, Serialize};

/// Bumped whenever what a fitted model is fed from the history changes: the meaning or
/// order of feature columns, or which horizons a Blend member forecasts. A stored model
/// keeps the version it was fitted with and its inputs are rebuilt by that version's
/// rules, so a change that only alters what new fits see needs no new model format.
/// 3: on a finer grid than hourly the Blend's first block is 24 steps, not a day
/// (`combine::blend_first_block`); hourly and coarser steps are as in version 2.
pub const FEATURE_VERSION: u32 = 3;

/// Names of the columns produced by [`FeatureFrame::row`], in order.
pub const FEATURE_NAMES: [&str; 20] = [
    "level",
    "lag1_minus_level",
    "lag2_minus_level",
    "lag3_minus_level",
    "lag_quarter_day_minus_level",
    "lag_half_day_minus_level",
    "lag_day_minus_level",
    "same_hour_last_day_minus_level",
    "same_hour_day_before_minus_level",
    "same_hour_last_week_minus_level",
    "same_hour_week_mean_minus_level",
    "day_mean_minus_level",
    "week_mean_minus_level",
    "day_range",
    "day_step_mean_abs",
    "long_mean_minus_level",
    "target_hour_sin",
    "target_hour_cos",
    "target_hour_sin2",
    "target_hour_cos2",
];

/// Number of feature columns.
pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// Number of features that depend only on the origin (computed once per step).
const N_ORIGIN: usize = 12;

/// Value transform applied before features are built and undone on the forecasts.
///
/// `Log` works on `ln(y - lower + 1)`. For relative humidity this is the physically natural
/// scale: by the Magnus formula `ln RH` is close to linear in the dew-point depression, so
/// the daily temperature cycle becomes an additive, level-independent shape and saturation
/// near 100 % compresses instead of overshooting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    Identity,
    Log { lower: f64 },
}

impl Transform {
    pub fn forward(self, y: f64) -> f64 {
        match self {
            Transform::Identity => y,
            Transform::Log { lower } => (y - lower).max(0.0).ln_1p(),
        }
    }

    pub fn inverse(self, z: f64) -> f64 {
        match self {
            Transform::Identity => z,
            // Bounded so a wild extrapolation cannot overflow; clamping happens later.
            Transform::Log { lower } => z.min(700.0).exp_m1() + lower,
        }
    }

    /// [`Transform::inverse`] of every forecast in an `[h-1][k]` matrix.
    pub fn inverse_rows(self, rows: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        rows.into_iter()
            .map(|r| r.into_iter().map(|z| self.inverse(z)).collect())
            .collect()
    }
}

/// Columns of the origin-only row used by the linear model ([`FeatureFrame::lag_row`]):
/// level, 24 hourly lags, 2 daily lags, 2 time-of-day terms, the time-of-day interactions
/// of the columns in [`INTERACTED`], then the long-range columns: the week's mean profile
/// at each of the 24 lag offsets and the slow seasonal mean.
pub const N_LAG_FEATURES: usize = N_SHORT_LAG_FEATURES + LAGS_PER_DAY + 1;
/// Columns of the row before the long-range ones (the analog's descriptor is a prefix).
pub const N_SHORT_LAG_FEATURES: usize = N_PLAIN_LAG_FEATURES + 2 * INTERACTED.len();
/// The row's first columns, before the interactions: level, the lags 1-24, 48 and 168 and
/// the two time-of-day terms (the Blend's plain ridge uses these alone).
pub const N_PLAIN_LAG_FEATURES: usize = LAGS_PER_DAY + 5;
/// Columns of the linear row whose effect may vary with the time of day of the origin:
/// level and lags 1, 2, 3, 6, 12, 18, 23, 24, 48, 168. (Interacting all 27 scored the same
/// at 1.6× the cost; adding a second harmonic gained nothing.)
const INTERACTED: [usize; 11] = [0, 1, 2, 3, 6, 12, 18, 23, 24, 25, 26];
/// Days of history a feature row looks back (the 7-day lag and the week's profile).
pub(crate) const LOOKBACK_DAYS: usize = 7;
/// Lags (and profile offsets) per day covered by the linear row.
pub(crate) const LAGS_PER_DAY: usize = 24;

/// What a fitted model needs to rebuild its features exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub version: u32,
    pub transform: Transform,
    /// Steps per day (24 for hourly data).
    pub period: usize,
    /// Steps of history a row needs (one week).
    pub lookback: usize,
    /// Columns of the forest row (horizon-specific; the forest adds the horizon itself).
    pub names: Vec<String>,
    /// Columns of the ridge row (origin-only, shared by all horizons).
    pub linear_names: Vec<String>,
}

impl FeatureSpec {
    pub fn new(step_secs: i64, transform: Transform) -> Self {
        let period = period_for_step(step_secs);
        FeatureSpec {
            version: FEATURE_VERSION,
            transform,
            period,
            lookback: LOOKBACK_DAYS * period,
            names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            linear_names: linear_names(),
        }
    }
}

/// Names of the [`FeatureFrame::lag_row`] columns, in order.
fn linear_names() -> Vec<String> {
    let mut names = vec!["level".to_string()];
    names.extend((1..=LAGS_PER_DAY).map(|k| format!("lag{k}_minus_level")));
    names.push("lag_2d_minus_level".into());
    names.push("lag_7d_minus_level".into());
    names.push("hour_sin".into());
    names.push("hour_cos".into());
    for &j in &INTERACTED {
        let base = names[j].clone();
        names.push(format!("{base}_x_hour_sin"));
        names.push(format!("{base}_x_hour_cos"));
    }
    names.extend((0..LAGS_PER_DAY).map(|k| format!("week_mean_at_lag{k}_minus_level")));
    names.push("long_mean_minus_level".into());
    names
}

/// Column sets of the linear row among which the ridge chooses per block of horizons on its
/// inner holdout (see `training::validate_ridge`), as ascending indices into
/// [`FeatureFrame::lag_row`]:
/// 0. the short-range row (everything before the long-range columns);
/// 1. the full row;
/// 2. the full row less the hourly lags that are neither interacted nor a day apart
///    (lags 4, 5, 7–11, 13–17, 19–22): at long horizons they mostly add variance.
pub fn ridge_column_sets() -> [Vec<usize>; 3] {
    let short: Vec<usize> = (0..N_SHORT_LAG_FEATURES).collect();
    let full: Vec<usize> = (0..N_LAG_FEATURES).collect();
    let long = full
        .iter()
        .copied()
        .filter(|&j| !(1..=LAGS_PER_DAY).contains(&j) || INTERACTED.contains(&j))
        .collect();
    [short, full, long]
}

/// Steps per day; 24 for hourly data. Falls back to 24 when the step does not divide a day,
/// so the code still runs (the daily features then only approximate a day).
pub fn period_for_step(step_secs: i64) -> usize {
    steps_per_day(step_secs).unwrap_or(24)
}

/// Steps per day when `step_secs` divides a day into at least two steps.
pub fn steps_per_day(step_secs: i64) -> Option<usize> {
    (step_secs > 0 && step_secs <= 43_200 && 86_400 % step_secs == 0)
        .then(|| (86_400 / step_secs) as usize)
}

/// Precomputed origin-only features for every step of a series, plus what is needed for the
/// horizon-dependent part.
pub struct FeatureFrame<'a> {
    values: &'a [Option<f64>],
    start_unix: i64,
    step_secs: i64,
    period: usize,
    /// The [`FEATURE_VERSION`] whose rules the frame follows (a stored model's, or the
    /// current one).
    version: u32,
    origin: Vec<Option<[f64; N_ORIGIN]>>,
    /// Exponentially weighted mean of the observed values up to each step (see
    /// [`ewm_levels`]).
    long_mean: Vec<Option<f64>>,
}

impl<'a> FeatureFrame<'a> {
    /// `values` may contain gaps; rows touching a gap are `None`. Features of the current
    /// [`FEATURE_VERSION`].
    #[cfg(test)]
    pub(crate) fn build(
        values: &'a [Option<f64>],
        start_unix: i64,
        step_secs: i64,
        period: usize,
    ) -> Self {
        Self::with_version(values, start_unix, step_secs, period, FEATURE_VERSION)
    }

    /// Features as `spec` (a stored model's) defines them, whichever version made it.
    pub fn for_spec(
        values: &'a [Option<f64>],
        start_unix: i64,
        step_secs: i64,
        spec: &FeatureSpec,
    ) -> Self {
        Self::with_version(values, start_unix, step_secs, spec.period, spec.version)
    }

    fn with_version(
        values: &'a [Option<f64>],
        start_unix: i64,
        step_secs: i64,
        period: usize,
        version: u32,
    ) -> Self {
        // One pass of the slow mean serves both the origin row and the linear row.
        let long_mean = ewm_levels(values, period);
        let origin = origin_features(values, &long_mean, period);
        FeatureFrame {
            values,
            start_unix,
            step_secs,
            period,
            version,
            origin,
            long_mean,
        }
    }

    /// The same history on another scale (`values` index for index), features rebuilt.
    pub fn rescaled<'b>(&self, values: &'b [Option<f64>]) -> FeatureFrame<'b> {
        FeatureFrame::with_version(
            values,
            self.start_unix,
            self.step_secs,
            self.period,
            self.version,
        )
    }

    /// The feature version whose rules built this frame.
    pub fn feature_version(&self) -> u32 {
        self.version
    }

    /// The values the frame was built from.
    pub fn values(&self) -> &'a [Option<f64>] {
        self.values
    }

    /// Steps per day.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Current value at `t`.
    pub fn level(&self, t: usize) -> Option<f64> {
        self.values.get(t).copied().flatten()
    }

    /// Target `y[t+h] - y[t]` if both are observed.
    pub fn target(&self, t: usize, h: usize) -> Option<f64> {
        Some(self.values.get(t + h).copied().flatten()? - self.level(t)?)
    }

    /// Feature row at origin `t` for horizon `h`; uses only `values[..=t]`.
    pub fn row(&self, t: usize, h: usize) -> Option<[f64; N_FEATURES]> {
        let base = (*self.origin.get(t)?)?;
        let level = base[0];
        let p = self.period;
        let tau = t + h;
        // Most recent day whose same hour as the target is already observed.
        let d = h.div_ceil(p);
        let at = |back: usize| -> Option<f64> {
            let i = tau.checked_sub(back)?;
            debug_assert!(i <= t, "look-ahead in feature row");
            self.values.get(i).copied().flatten()
        };
        let s1 = at(p * d)?;
        let s2 = at(p * (d + 1))?;
        let week = 7 * p;
        let sw = at(week * h.div_ceil(week))?;
        let mut prof = 0.0;
        for k in d..d + 7 {
            prof += at(p * k)?;
        }
        prof /= 7.0;
        let phase = self.day_phase(tau);
        let two_pi = std::f64::consts::TAU;
        let mut row = [0.0; N_FEATURES];
        row[..7].copy_from_slice(&base[..7]);
        row[7] = s1 - level;
        row[8] = s2 - level;
        row[9] = sw - level;
        row[10] = prof - level;
        row[11..16].copy_from_slice(&base[7..12]);
        row[16] = (two_pi * phase).sin();
        row[17] = (two_pi * phase).cos();
        row[18] = (2.0 * two_pi * phase).sin();
        row[19] = (2.0 * two_pi * phase).cos();
        Some(row)
    }

    /// Origin-only row for the linear model; uses only `values[..=t]` and does not depend on
    /// the horizon, so all horizons share one design matrix (and one Gram matrix).
    ///
    /// Layout: `[level, y[t-k·s]-level for k=1..=24, y[t-2·period]-level,
    /// y[t-7·period]-level, sin, cos of the time of day, then (sin, cos) × each INTERACTED
    /// column, then mean(y[t-k·s-d·period] for d=0..7)-level for k=0..24, then the
    /// 10-day-half-life mean of the history minus level]` with `s = period/24` (1 for hourly
    /// data). The last 25 columns carry the level at long range (the week's mean at the
    /// target's time of day, the season's mean); the ridge chooses per block of horizons
    /// whether to use them ([`ridge_column_sets`]). A horizon-h model combines these
    /// into "same hour as the target" terms: the target's hour of day was last seen at lag
    /// `24⌈h/24⌉-h`. The interactions let the weights depend on the origin's time of day
    /// (humidity evolves differently after an evening origin than after a morning one);
    /// they cut backtest MASE 1-24 by ~4 %. Other richer rows (rolling ranges, more
    /// harmonics) scored worse: with one model per horizon their variance costs more than
    /// their information gains.
    pub fn lag_row(&self, t: usize) -> Option<[f64; N_LAG_FEATURES]> {
        let level = self.level(t)?;
        let p = self.period;
        let s = (p / LAGS_PER_DAY).max(1);
        let get = |back: usize| self.values.get(t.checked_sub(back)?).copied().flatten();
        let mut row = [0.0; N_LAG_FEATURES];
        row[0] = level;
        for (k, slot) in row.iter_mut().enumerate().take(LAGS_PER_DAY + 1).skip(1) {
            *slot = get(k * s)? - level;
        }
        row[LAGS_PER_DAY + 1] = get(2 * p)? - level;
        row[LAGS_PER_DAY + 2] = get(7 * p)? - level;
        let phase = std::f64::consts::TAU * self.day_phase(t);
        row[LAGS_PER_DAY + 3] = phase.sin();
        row[LAGS_PER_DAY + 4] = phase.cos();
        // Interactions with the time of day: the dynamics after an evening origin differ from
        // those after a morning one.
        let (sn, cs) = (phase.sin(), phase.cos());
        for (k, &j) in INTERACTED.iter().enumerate() {
            row[N_PLAIN_LAG_FEATURES + 2 * k] = row[j] * sn;
            row[N_PLAIN_LAG_FEATURES + 2 * k + 1] = row[j] * cs;
        }
        // Long range: the mean over the last 7 days of the value at each lag offset k
        // (k = 0..24, so horizon h finds its target's time of day at k = (-h) mod 24), and
        // the slow seasonal mean. Days missing from the raw series are skipped; the most
        // recent one (lag k, or the level) is always present, so the means are finite.
        for k in 0..LAGS_PER_DAY {
            let (mut sum, mut cnt) = (0.0, 0usize);
            for d in 0..7 {
                if let Some(v) = get(k * s + d * p) {
                    sum += v;
                    cnt += 1;
                }
            }
            row[N_SHORT_LAG_FEATURES + k] = if cnt > 0 { sum / cnt as f64 } else { level } - level;
        }
        row[N_LAG_FEATURES - 1] = self.long_mean.get(t).copied().flatten().unwrap_or(level) - level;
        Some(row)
    }

    /// The share of the variance of `values` (this frame's calendar, any scale) that the
    /// mean daily cycle holds: each value's departure from the mean of the day centred on
    /// it, averaged by time of day, and the variance of that profile over the variance of
    /// the values themselves. Outdoor humidity's strong cycle holds about 0.24–0.34 of it,
    /// a room's 0.005–0.17. `None` when fewer than two days of values have a complete
    /// centred day.
    pub fn daily_cycle_share(&self, values: &[Option<f64>]) -> Option<f64> {
        let p = self.period;
        let half = p / 2;
        // Prefix sums of the values and of the gaps: any day's mean is two lookups.
        let (mut sums, mut gaps) = (vec![0.0], vec![0usize]);
        for v in values {
            sums.push(sums[sums.len() - 1] + v.unwrap_or(0.0));
            gaps.push(gaps[gaps.len() - 1] + usize::from(v.is_none()));
        }
        // Per time of day: the summed departures from the centred day's mean and their
        // count; over all points, the sums of the values and of their squares.
        let mut profile = vec![(0.0, 0usize); p];
        let (mut n, mut sy, mut syy) = (0usize, 0.0, 0.0);
        let last = (values.len() + half + 1).saturating_sub(p);
        for (t, v) in values.iter().enumerate().take(last).skip(half) {
            let (lo, hi) = (t - half, t - half + p);
            let Some(y) = v.filter(|_| gaps[hi] == gaps[lo]) else {
                continue;
            };
            let k = (self.day_phase(t) * p as f64).round() as usize % p;
            profile[k].0 += y - (sums[hi] - sums[lo]) / p as f64;
            profile[k].1 += 1;
            (n, sy, syy) = (n + 1, sy + y, syy + y * y);
        }
        if n < 2 * p {
            return None;
        }
        let n = n as f64;
        let at = profile
            .iter()
            .map(|&(d, c)| (d / c.max(1) as f64, c as f64));
        let mp = at.clone().map(|(a, c)| a * c).sum::<f64>() / n;
        let var_p = at.map(|(a, c)| c * (a - mp).powi(2)).sum::<f64>() / n;
        let var_y = syy / n - (sy / n).powi(2);
        (var_y > 0.0).then(|| var_p / var_y)
    }

    /// Fraction of the UTC day at step `i`.
    fn day_phase(&self, i: usize) -> f64 {
        let secs = self
            .start_unix
            .saturating_add(self.step_secs.saturating_mul(i as i64));
        secs.rem_euclid(86_400) as f64 / 86_400.0
    }
}

/// Exponentially weighted mean with a 10-day half-life over the observed values up to each
/// step (`None` before the first observation).
fn ewm_levels(values: &[Option<f64>], period: usize) -> Vec<Option<f64>> {
    let decay = 0.5f64.powf(1.0 / (10.0 * period as f64));
    let mut long_mean = Vec::with_capacity(values.len());
    let mut ewm: Option<f64> = None;
    for v in values {
        if let Some(v) = v {
            ewm = Some(ewm.map_or(*v, |m| decay * m + (1.0 - decay) * v));
        }
        long_mean.push(ewm);
    }
    long_mean
}

/// Layout: [level, lag1-L, lag2-L, lag3-L, lag(p/4)-L, lag(p/2)-L, lag(p)-L,
///          day_mean-L, week_mean-L, day_range, day_step_mean_abs, long_mean-L].
///
/// `long_mean` ([`ewm_levels`] of `values`) is an exponentially weighted mean with a 10-day
/// half-life over the observed values up to t: the current season's climate, which a model
/// trained on a whole year otherwise replaces by the all-year mean (and so reverts toward
/// the wrong level).
fn origin_features(
    values: &[Option<f64>],
    long_mean: &[Option<f64>],
    period: usize,
) -> Vec<Option<[f64; N_ORIGIN]>> {
    let n = values.len();
    let week = 7 * period;
    // Prefix sums over observed values and counts of gaps, so window means are O(1).
    let mut sum = vec![0.0f64; n + 1];
    let mut gaps = vec![0usize; n + 1];
    let mut abs_step = vec![0.0f64; n + 1];
    for i in 0..n {
        sum[i + 1] = sum[i] + values[i].unwrap_or(0.0);
        gaps[i + 1] = gaps[i] + usize::from(values[i].is_none());
        let step = match (i.checked_sub(1).and_then(|j| values[j]), values[i]) {
            (Some(a), Some(b)) => (b - a).abs(),
            _ => 0.0,
        };
        abs_step[i + 1] = abs_step[i] + step;
    }
    let window_mean = |t: usize, w: usize| -> Option<f64> {
        let lo = (t + 1).checked_sub(w)?;
        (gaps[t + 1] == gaps[lo]).then(|| (sum[t + 1] - sum[lo]) / w as f64)
    };
    let lags = [1, 2, 3, (period / 4).max(4), (period / 2).max(5), period];
    (0..n)
        .map(|t| {
            if t + 1 < week {
                return None;
            }
            let level = values[t]?;
            let mut f = [0.0; N_ORIGIN];
            f[0] = level;
            for (k, lag) in lags.iter().enumerate() {
                f[1 + k] = values[t - lag]? - level;
            }
            f[7] = window_mean(t, period)? - level;
            f[8] = window_mean(t, week)? - level;
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for v in &values[t + 1 - period..=t] {
                let v = (*v)?;
                lo = lo.min(v);
                hi = hi.max(v);
            }
            f[9] = hi - lo;
            let first = t + 1 - period;
            f[10] = (abs_step[t + 1] - abs_step[first + 1]) / (period - 1).max(1) as f64;
            f[11] = long_mean[t]? - level;
            Some(f)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::synthetic::{generate, SyntheticSpec};

    #[test]
    fn rows_do_not_look_ahead() {
        let s = generate(&SyntheticSpec {
            days: 12,
            gap_rate: 0.0,
            ..SyntheticSpec::default()
        });
        let t = 200;
        let frame = FeatureFrame::build(&s.values, s.start_unix(), 3600, 24);
        let before: Vec<_> = (1..=120).map(|h| frame.row(t, h)).collect();
        let mut perturbed = s.values.clone();
        for v in perturbed.iter_mut().skip(t + 1) {
            *v = Some(v.unwrap_or(0.0) + 37.0);
        }
        let frame2 = FeatureFrame::build(&perturbed, s.start_unix(), 3600, 24);
        let after: Vec<_> = (1..=120).map(|h| frame2.row(t, h)).collect();
        assert!(before.iter().all(Option::is_some));
        assert_eq!(before, after);
        // The linear row, long-range columns (week profile, slow mean) included.
        assert!(frame.lag_row(t).is_some());
        assert_eq!(frame.lag_row(t), frame2.lag_row(t));
        // ... while the target does see the future (sanity check of the perturbation).
        assert_ne!(frame.target(t, 1), frame2.target(t, 1));
    }

    #[test]
    fn the_daily_cycles_share_of_the_variance_tells_a_strong_cycle_from_a_weak_one() {
        let share = |values: &[Option<f64>]| {
            FeatureFrame::build(values, 0, 3600, 24).daily_cycle_share(values)
        };
        // A pure daily cycle is all cycle; on a trend it is a part.
        let cycle = |i: usize| 10.0 * (std::f64::consts::TAU * i as f64 / 24.0).sin();
        let pure: Vec<Option<f64>> = (0..24 * 20).map(|i| Some(50.0 + cycle(i))).collect();
        let pure_share = share(&pure).expect("share");
        assert!((pure_share - 1.0).abs() < 1e-6, "{pure_share}");
        let on_trend: Vec<Option<f64>> = (0..24 * 20)
            .map(|i| Some(20.0 + 0.1 * i as f64 + cycle(i)))
            .collect();
        let trend_share = share(&on_trend).expect("share");
        assert!(trend_share > 0.01 && trend_share < 0.5, "{trend_share}");
        // Synthetic outdoor-like weather against the same weather with a faint cycle, with
        // gaps (days touching one are left out, not invented).
        let weather = |amplitude: f64| {
            generate(&SyntheticSpec {
                days: 60,
                daily_amplitude: amplitude,
                ..SyntheticSpec::default()
            })
            .values
        };
        let strong = share(&weather(16.0)).expect("share");
        let weak = share(&weather(1.0)).expect("share");
        assert!(strong > 0.2 && weak < 0.2, "strong {strong}, weak {weak}");
        // Under two complete days: no verdict.
        assert_eq!(share(&pure[..40]), None);
        let holey: Vec<Option<f64>> = pure
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 20 == 0 { None } else { *v })
            .collect();
        assert_eq!(share(&holey), None);
    }

    #[test]
    fn same_hour_features_align() {
        // y = index, so every "value at i minus level" equals i - t.
        let values: Vec<Option<f64>> = (0..500).map(|i| Some(i as f64)).collect();
        let frame = FeatureFrame::build(&values, 0, 3600, 24);
        let t = 300;
        for h in [1usize, 23, 24, 25, 48, 120] {
            let r = frame.row(t, h).expect("complete row");
            let d = h.div_ceil(24);
            assert_eq!(r[0], 300.0);
            assert_eq!(r[1], -1.0);
            assert_eq!(r[6], -24.0);
            assert_eq!(r[7], (h as f64) - 24.0 * d as f64);
            assert_eq!(r[8], (h as f64) - 24.0 * (d + 1) as f64);
            assert_eq!(r[9], h as f64 - 168.0);
            assert_eq!(r[11], -11.5); // day mean of t-23..=t
            assert_eq!(r[13], 23.0); // day range
            assert_eq!(r[14], 1.0); // mean |step|
            assert_eq!(frame.target(t, h), Some(h as f64));
        }
        assert!(frame.row(166, 1).is_none());
        assert!(frame.row(167, 1).is_some());
        assert_eq!(linear_names().len(), N_LAG_FEATURES);
        let lag = frame.lag_row(t).expect("lag row");
        assert_eq!(lag[0], 300.0);
        for (k, v) in lag.iter().enumerate().take(25).skip(1) {
            assert_eq!(*v, -(k as f64));
        }
        assert_eq!(lag[25], -48.0);
        assert_eq!(lag[26], -168.0);
        // Week profile at lag offset k: mean of t-k-24d for d=0..7 is t-k-72.
        for k in 0..24 {
            assert_eq!(lag[N_SHORT_LAG_FEATURES + k], -(k as f64) - 72.0);
        }
        // The slow mean of a rising series lags behind it (and is finite).
        let slow = lag[N_LAG_FEATURES - 1];
        assert!(slow.is_finite() && slow < -100.0 && slow > -300.0, "{slow}");
    }

    #[test]
    fn the_blends_first_block_follows_the_step_and_a_stored_models_version() {
        use super::super::combine::{blend_analog_horizon, blend_first_block};
        let values: Vec<Option<f64>> = (0..2000).map(|i| Some(i as f64)).collect();
        // 10-minute steps: 4 hours from version 3 on; a model fitted by version 2 keeps
        // the first day its weights were learned for.
        let now = FeatureFrame::build(&values, 0, 600, 144);
        assert_eq!(now.feature_version(), FEATURE_VERSION);
        assert_eq!(blend_first_block(&now), 24);
        assert_eq!(blend_analog_horizon(12, &now), 12);
        let spec = FeatureSpec {
            version: 2,
            ..FeatureSpec::new(600, Transform::Identity)
        };
        let old = FeatureFrame::for_spec(&values, 0, 600, &spec);
        assert_eq!(blend_first_block(&old), 144);
        // Rescaling keeps the version.
        assert_eq!(blend_first_block(&old.rescaled(&values)), 144);
        // Hourly and coarser: the first day, in every version.
        assert_eq!(
            blend_first_block(&FeatureFrame::build(&values, 0, 3600, 24)),
            24
        );
        assert_eq!(
            blend_first_block(&FeatureFrame::build(&values, 0, 7200, 12)),
            12
        );
        // The feature rows themselves are the same in both versions.
        assert_eq!(now.lag_row(1500), old.lag_row(1500));
    }

    #[test]
    fn rows_touching_a_gap_are_excluded() {
        let mut values: Vec<Option<f64>> = (0..600).map(|i| Some((i % 24) as f64)).collect();
        for v in &mut values[250..260] {
            *v = None;
        }
        let frame = FeatureFrame::build(&values, 0, 3600, 24);
        assert!(frame.row(249, 1).is_some());
        assert!(frame.row(255, 1).is_none());
        // The week window of origin 426 still covers step 259; 427 is clear of the gap.
        assert!(frame.row(426, 1).is_none());
        assert!(frame.row(427, 1).is_some());
        // The linear row needs lags 1..=24, 48 and 168 only.
        assert!(frame.lag_row(249).is_some());
        assert!(frame.lag_row(283).is_none()); // lag 24 is step 259
        assert!(frame.lag_row(284).is_some());
        assert!(frame.lag_row(300).is_none()); // lag 48 hits the gap
        assert!(frame.lag_row(308).is_some());
        assert!(frame.lag_row(427).is_none()); // lag 168 is step 259
        assert!(frame.lag_row(428).is_some());
        // Days of the week profile that fall in the gap are skipped, not invented.
        let row = frame
            .lag_row(290)
            .expect("lags 1..=24, 48, 168 are clear of the gap");
        assert!(row.iter().all(|v| v.is_finite()));
        assert_eq!(row[N_SHORT_LAG_FEATURES], 0.0);
        for k in 1..24 {
            // Values repeat daily, so the profile equals the lag-k value.
            assert_eq!(row[N_SHORT_LAG_FEATURES + k], row[k], "offset {k}");
        }
        // A target inside the gap makes the training pair unusable.
        assert!(frame.target(240, 12).is_none());
        assert!(frame.target(240, 9).is_some());
    }
}
