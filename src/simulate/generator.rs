//! Synthetic relative-humidity series.
//!
//! value = base + weather + daily cycle + noise, clamped to 0..=100 %RH, where
//! - base: a per-seed climate mean (55–75 %RH);
//! - weather: an Ornstein–Uhlenbeck process (mean-reverting random walk, correlation
//!   time ~2 days) standing in for passing fronts;
//! - daily cycle: relative humidity peaks around dawn (coolest air) and bottoms out mid
//!   afternoon (warmest), so the curve falls for 9 h (06→15) and rises for 15 h;
//! - noise: Gaussian sensor noise (σ 0.8 %RH), values rounded to the 0.1 %RH resolution
//!   of typical sensors;
//! - dropouts: occasionally the sensor misses a run of readings.
//!
//! The same seed, start and interval always give the same series (StdRng from rand 0.8).

use chrono::{DateTime, Duration, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::{Reading, SensorKind};

const WEATHER_TAU_SECS: f64 = 2.0 * 86_400.0;
const WEATHER_SD: f64 = 10.0;
const DAILY_AMPLITUDE: f64 = 12.0;
const NOISE_SD: f64 = 0.8;
const DROPOUT_START_P: f64 = 0.005;
const DROPOUT_MAX_LEN: u32 = 12;

pub struct HumiditySimulator {
    rng: StdRng,
    interval: Duration,
    interval_secs: f64,
    /// Timestamp of the next slot.
    next_ts: DateTime<Utc>,
    base: f64,
    weather: f64,
    dropout_left: u32,
}

impl HumiditySimulator {
    /// `interval_secs` of 0 is treated as 1 so the stream always advances.
    pub fn new(seed: u64, start: DateTime<Utc>, interval_secs: u32) -> HumiditySimulator {
        let mut rng = StdRng::seed_from_u64(seed);
        let base = rng.gen_range(55.0..75.0);
        let weather = gaussian(&mut rng) * WEATHER_SD;
        let secs = interval_secs.max(1);
        HumiditySimulator {
            rng,
            interval: Duration::seconds(i64::from(secs)),
            interval_secs: f64::from(secs),
            next_ts: start,
            base,
            weather,
            dropout_left: 0,
        }
    }

    /// Advances one interval. `None` means the sensor dropped this slot (or the slot's
    /// time cannot be a reading, e.g. before 1970); the stream itself never ends.
    pub fn next_reading(&mut self) -> Option<Reading> {
        let ts = self.next_ts;
        self.next_ts = ts.checked_add_signed(self.interval).unwrap_or(ts);

        // Weather evolves whether or not the sensor reports.
        let decay = (-self.interval_secs / WEATHER_TAU_SECS).exp();
        let shock = WEATHER_SD * (1.0 - decay * decay).sqrt();
        self.weather = self.weather * decay + shock * gaussian(&mut self.rng);
        let noise = NOISE_SD * gaussian(&mut self.rng);

        if self.dropout_left > 0 {
            self.dropout_left -= 1;
            return None;
        }
        if self.rng.gen_bool(DROPOUT_START_P) {
            self.dropout_left = self.rng.gen_range(0..DROPOUT_MAX_LEN);
            return None;
        }

        let raw = self.base + self.weather + daily_cycle(ts) + noise;
        let value = ((raw.clamp(0.0, 100.0)) * 10.0).round() / 10.0;
        Reading::from_parts(SensorKind::Humidity, ts, value).ok()
    }

    /// Timestamp of the slot the next call to `next_reading` will produce.
    pub fn next_ts(&self) -> DateTime<Utc> {
        self.next_ts
    }

    /// Readings for slots in `[from, to)`. The simulator only moves forward: slots before
    /// its current position are not regenerated, slots before `from` are generated (to
    /// keep the series identical) but dropped.
    pub fn readings_between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Reading> {
        let mut out = Vec::new();
        while self.next_ts < to {
            let before = self.next_ts;
            if let Some(r) = self.next_reading() {
                if r.ts() >= from {
                    out.push(r);
                }
            }
            if self.next_ts == before {
                break; // end of representable time: stop rather than spin
            }
        }
        out
    }
}

/// Yields the readings the sensor actually sends (dropouts skipped). Infinite: use
/// `take` or `take_while`.
impl Iterator for HumiditySimulator {
    type Item = Reading;
    fn next(&mut self) -> Option<Reading> {
        loop {
            let before = self.next_ts;
            if let Some(r) = self.next_reading() {
                return Some(r);
            }
            if self.next_ts == before {
                return None;
            }
        }
    }
}

/// Daily swing in %RH: +A at 06:00, −A at 15:00 (UTC used as solar time).
fn daily_cycle(ts: DateTime<Utc>) -> f64 {
    let hour = f64::from(ts.num_seconds_from_midnight()) / 3600.0;
    let phase = if (6.0..15.0).contains(&hour) {
        std::f64::consts::PI * (hour - 6.0) / 9.0
    } else {
        let since_min = (hour - 15.0).rem_euclid(24.0);
        std::f64::consts::PI * (1.0 + since_min / 15.0)
    };
    DAILY_AMPLITUDE * phase.cos()
}

/// Standard normal sample (Box–Muller); rand 0.8 alone has no normal distribution.
fn gaussian(rng: &mut StdRng) -> f64 {
    // 1 - gen() is in (0, 1], so ln never sees 0.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn reproducible_for_a_seed() {
        let a: Vec<_> = HumiditySimulator::new(42, start(), 300)
            .take(2000)
            .collect();
        let b: Vec<_> = HumiditySimulator::new(42, start(), 300)
            .take(2000)
            .collect();
        assert_eq!(a, b);
        let c: Vec<_> = HumiditySimulator::new(43, start(), 300)
            .take(2000)
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn within_range_and_on_the_grid() {
        for seed in 0..5 {
            let mut sim = HumiditySimulator::new(seed, start(), 600);
            let end = start() + Duration::days(60);
            let rs = sim.readings_between(start(), end);
            assert!(!rs.is_empty());
            for r in &rs {
                assert!((0.0..=100.0).contains(&r.value()), "{}", r.value());
                assert_eq!((r.ts() - start()).num_seconds() % 600, 0);
                assert!(r.ts() >= start() && r.ts() < end);
                assert_eq!(r.kind(), SensorKind::Humidity);
            }
            let strictly_increasing = rs.windows(2).all(|w| w[0].ts() < w[1].ts());
            assert!(strictly_increasing);
        }
    }

    #[test]
    fn has_dropouts_but_not_too_many() {
        let mut sim = HumiditySimulator::new(7, start(), 60);
        let slots = 30 * 24 * 60;
        let got = (0..slots).filter(|_| sim.next_reading().is_some()).count();
        assert!(got < slots, "expected some dropouts");
        assert!(got > slots * 9 / 10, "too many dropouts: {got}/{slots}");
    }

    #[test]
    fn daily_cycle_shape() {
        let at = |h: u32| daily_cycle(Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap());
        assert!((at(6) - DAILY_AMPLITUDE).abs() < 1e-9, "peak at dawn");
        assert!(
            (at(15) + DAILY_AMPLITUDE).abs() < 1e-9,
            "minimum mid-afternoon"
        );
        assert!(at(3) > at(12) && at(21) < at(3));
        // Averaged over many days, dawn is clearly more humid than mid-afternoon.
        let mut sim = HumiditySimulator::new(1, start(), 3600);
        let rs = sim.readings_between(start(), start() + Duration::days(120));
        let mean_at = |h: u32| {
            let v: Vec<f64> = rs
                .iter()
                .filter(|r| r.ts().hour() == h)
                .map(|r| r.value())
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(
            mean_at(6) > mean_at(15) + 10.0,
            "{} vs {}",
            mean_at(6),
            mean_at(15)
        );
    }

    #[test]
    fn readings_between_filters_and_moves_forward() {
        let mut sim = HumiditySimulator::new(3, start(), 3600);
        let from = start() + Duration::hours(5);
        let rs = sim.readings_between(from, start() + Duration::hours(10));
        assert!(rs.iter().all(|r| r.ts() >= from));
        assert_eq!(sim.next_ts(), start() + Duration::hours(10));
        // Same seed: the series is identical however it is chunked.
        let mut whole = HumiditySimulator::new(3, start(), 3600);
        let all = whole.readings_between(start(), start() + Duration::hours(10));
        assert_eq!(
            all.into_iter()
                .filter(|r| r.ts() >= from)
                .collect::<Vec<_>>(),
            rs
        );
    }

    #[test]
    fn zero_interval_and_pre_1970_start_do_not_hang_or_panic() {
        let mut sim = HumiditySimulator::new(1, start(), 0);
        sim.next_reading();
        assert_eq!(sim.next_ts(), start() + Duration::seconds(1));
        let early = Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap();
        let mut sim = HumiditySimulator::new(1, early, 3600);
        assert!(
            sim.next_reading().is_none(),
            "pre-1970 slot cannot be a reading"
        );
    }
}
