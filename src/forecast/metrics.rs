//! Accuracy and coverage metrics of a rolling-origin backtest.

use serde::{Deserialize, Serialize};

use super::models::ForecastStep;
use super::ForecastError;

/// Backtest scores. "1_24" means averaged over all origins and horizons 1..=24 (pooled over
/// (origin, horizon) pairs with an observed target); "1_120" over 1..=120 (or the backtest
/// horizon if shorter). MASE divides by the in-sample seasonal-naive MAE before the first
/// origin. Coverage is over all horizons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub mase_1_24: f64,
    pub mase_1_120: f64,
    pub mae_1_24: f64,
    pub mae_1_120: f64,
    pub rmse_1_24: f64,
    pub rmse_1_120: f64,
    pub coverage_80: f64,
    pub coverage_95: f64,
    /// Mean interval score of the 80 % and 95 % intervals over all horizons, divided by the
    /// MASE scale (the M4 competition's MSIS, at two levels): how good the bands are, where
    /// coverage alone says only how often they hold.
    #[serde(default)]
    pub msis_80: f64,
    #[serde(default)]
    pub msis_95: f64,
    /// Median wall-clock seconds of one fit (one origin).
    pub fit_seconds: f64,
    /// MAE at horizon h is `mae_by_horizon[h - 1]`.
    pub mae_by_horizon: Vec<f64>,
    pub origins: usize,
}

/// The label of a block of horizons, steps 1..=`last` of `step_secs` each, by the time they
/// reach: "1–24 h" on the default hourly grid, "10 min–4 h" on 10-minute steps. The scores'
/// blocks count steps, so on any other grid "1–24 h" would misname them.
pub fn horizon_block(last: usize, step_secs: i64) -> String {
    let first = step_secs.max(1);
    let end = first.saturating_mul(last as i64);
    let time = |secs: i64| {
        if secs % 3600 == 0 {
            format!("{} h", secs / 3600)
        } else if secs % 60 == 0 {
            format!("{} min", secs / 60)
        } else {
            format!("{secs} s")
        }
    };
    if first % 3600 == 0 {
        format!("{}–{} h", first / 3600, end / 3600)
    } else {
        format!("{}–{}", time(first), time(end))
    }
}

/// MASE denominator: mean |y[t] - y[t-period]| over `period <= t < end`, skipping gaps.
pub fn mase_scale(values: &[Option<f64>], end: usize, period: usize) -> Result<f64, ForecastError> {
    let end = end.min(values.len());
    let (mut sum, mut count) = (0.0, 0usize);
    for t in period..end {
        if let (Some(a), Some(b)) = (values[t], values[t - period]) {
            sum += (a - b).abs();
            count += 1;
        }
    }
    if count == 0 {
        return Err(ForecastError::TooLittleData(
            "no seasonal differences before the first origin to scale MASE".into(),
        ));
    }
    let scale = sum / count as f64;
    if scale <= 1e-12 {
        return Err(ForecastError::Degenerate(
            "the series does not vary before the first origin (MASE scale is 0)".into(),
        ));
    }
    Ok(scale)
}

/// Collects errors over origins and horizons.
#[derive(Debug, Clone)]
pub struct Accumulator {
    scale: f64,
    abs: Vec<f64>,
    sq: Vec<f64>,
    count: Vec<usize>,
    in80: usize,
    in95: usize,
    /// Summed interval scores, 80 % and 95 %.
    interval: [f64; 2],
    fit_seconds: Vec<f64>,
    origins: usize,
}

impl Accumulator {
    pub fn new(horizon: usize, scale: f64) -> Self {
        Accumulator {
            scale,
            abs: vec![0.0; horizon],
            sq: vec![0.0; horizon],
            count: vec![0; horizon],
            in80: 0,
            in95: 0,
            interval: [0.0; 2],
            fit_seconds: Vec::new(),
            origins: 0,
        }
    }

    /// Record one origin: `actuals[h-1]` against `steps[h-1]`; gaps are skipped.
    pub fn add_origin(&mut self, actuals: &[Option<f64>], steps: &[ForecastStep], fit_secs: f64) {
        self.origins += 1;
        self.fit_seconds.push(fit_secs);
        for (h, (a, s)) in actuals.iter().zip(steps).enumerate().take(self.abs.len()) {
            let Some(a) = *a else { continue };
            let e = a - s.value;
            self.abs[h] += e.abs();
            self.sq[h] += e * e;
            self.count[h] += 1;
            self.in80 += usize::from(s.covers_80(a));
            self.in95 += usize::from(s.covers_95(a));
            for (sum, score) in self.interval.iter_mut().zip(s.interval_scores(a)) {
                *sum += score;
            }
        }
    }

    pub fn finish(mut self) -> Metrics {
        let pooled = |k: usize, v: &[f64]| -> (f64, usize) {
            let k = k.min(v.len());
            (v[..k].iter().sum(), self.count[..k].iter().sum())
        };
        let mean = |(s, c): (f64, usize)| if c == 0 { f64::NAN } else { s / c as f64 };
        let mae_1_24 = mean(pooled(24, &self.abs));
        let mae_1_120 = mean(pooled(120, &self.abs));
        let rmse_1_24 = mean(pooled(24, &self.sq)).sqrt();
        let rmse_1_120 = mean(pooled(120, &self.sq)).sqrt();
        let total: usize = self.count.iter().sum();
        let cov = |k: usize| {
            if total == 0 {
                f64::NAN
            } else {
                k as f64 / total as f64
            }
        };
        let fit_seconds = median(std::mem::take(&mut self.fit_seconds)).unwrap_or(0.0);
        Metrics {
            mase_1_24: mae_1_24 / self.scale,
            mase_1_120: mae_1_120 / self.scale,
            mae_1_24,
            mae_1_120,
            rmse_1_24,
            rmse_1_120,
            coverage_80: cov(self.in80),
            coverage_95: cov(self.in95),
            msis_80: mean((self.interval[0], total)) / self.scale,
            msis_95: mean((self.interval[1], total)) / self.scale,
            fit_seconds,
            mae_by_horizon: self
                .abs
                .iter()
                .zip(&self.count)
                .map(|(s, &c)| if c == 0 { f64::NAN } else { s / c as f64 })
                .collect(),
            origins: self.origins,
        }
    }
}

/// The middle value (the mean of the middle two for an even count), `None` for none.
pub(crate) fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some(0.5 * (xs[n / 2 - 1] + xs[n / 2])),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn horizon_blocks_name_the_time_they_reach() {
        use super::horizon_block;
        assert_eq!(horizon_block(24, 3600), "1–24 h");
        assert_eq!(horizon_block(120, 3600), "1–120 h");
        assert_eq!(horizon_block(24, 600), "10 min–4 h");
        assert_eq!(horizon_block(120, 900), "15 min–30 h");
        assert_eq!(horizon_block(24, 7200), "2–48 h");
        assert_eq!(horizon_block(24, 90), "90 s–36 min");
    }

    use super::*;
    use chrono::{DateTime, Utc};

    fn step(value: f64, lo80: f64, hi80: f64, lo95: f64, hi95: f64) -> ForecastStep {
        ForecastStep {
            ts: DateTime::<Utc>::UNIX_EPOCH,
            value,
            lo80,
            hi80,
            lo95,
            hi95,
        }
    }

    #[test]
    fn scale_by_hand() {
        // period 2: |3-1| + |2-2| + |7-3| = 6 over 3 pairs; t=5 is excluded by `end`.
        let v = [
            Some(1.0),
            Some(2.0),
            Some(3.0),
            Some(2.0),
            Some(7.0),
            Some(100.0),
        ];
        assert_eq!(mase_scale(&v, 5, 2).expect("scale"), 2.0);
        let gappy = [Some(1.0), None, Some(3.0), Some(2.0)];
        assert_eq!(mase_scale(&gappy, 4, 2).expect("scale"), 2.0);
        assert!(mase_scale(&[Some(5.0); 10], 10, 2).is_err());
    }

    #[test]
    fn pooled_metrics_by_hand() {
        let mut acc = Accumulator::new(2, 2.0);
        // origin 1: errors +1 (h1, inside both), -3 (h2, outside 80, inside 95)
        acc.add_origin(
            &[Some(11.0), Some(7.0)],
            &[
                step(10.0, 9.0, 12.0, 8.0, 13.0),
                step(10.0, 8.0, 12.0, 6.0, 14.0),
            ],
            0.5,
        );
        // origin 2: h1 error 2 (outside both); h2 is a gap and must be skipped
        acc.add_origin(
            &[Some(12.0), None],
            &[
                step(10.0, 9.0, 11.0, 9.0, 11.5),
                step(0.0, 0.0, 0.0, 0.0, 0.0),
            ],
            1.5,
        );
        let m = acc.finish();
        assert_eq!(m.origins, 2);
        assert_eq!(m.mae_by_horizon, vec![1.5, 3.0]);
        assert_eq!(m.mae_1_24, 2.0); // (1 + 3 + 2) / 3
        assert_eq!(m.mase_1_24, 1.0);
        assert_eq!(m.mae_1_120, 2.0);
        assert!((m.rmse_1_24 - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.coverage_80 - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.coverage_95 - 2.0 / 3.0).abs() < 1e-12);
        // 80 %: widths 3, 4, 2; misses 0, 1 (7 < 8), 1 (12 > 11), each counted 2/0.2 = 10
        // times: (3 + 4 + 10 + 2 + 10) / 3 pairs / scale 2.
        assert!((m.msis_80 - 29.0 / 6.0).abs() < 1e-12);
        // 95 %: widths 5, 8, 2.5; one miss by 0.5 (12 > 11.5), counted 40 times.
        assert!((m.msis_95 - 35.5 / 6.0).abs() < 1e-12);
        assert_eq!(m.fit_seconds, 1.0);
    }
}
