//! Generator of realistic hourly humidity for tests: a daily cycle whose amplitude follows
//! the weather, slowly wandering fronts with occasional abrupt changes, saturation at 100 %,
//! sensor noise, outliers and missing readings.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{resample, ForecastConfig, Series};

#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    pub days: usize,
    pub seed: u64,
    /// Unix seconds of the first reading (hour aligned).
    pub start_unix: i64,
    /// Mean humidity the weather reverts to.
    pub base: f64,
    /// Half the typical dawn-to-afternoon swing.
    pub daily_amplitude: f64,
    /// Hourly innovation of the weather state (fronts).
    pub front_sd: f64,
    /// Probability per hour of an abrupt front (a jump of up to ±25).
    pub jump_rate: f64,
    pub noise_sd: f64,
    /// Probability per hour that a gap starts (gaps last 1-30 h).
    pub gap_rate: f64,
    /// Probability per reading of a wild outlier.
    pub outlier_rate: f64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            days: 90,
            seed: 7,
            start_unix: 1_735_689_600, // 2025-01-01T00:00:00Z
            base: 68.0,
            daily_amplitude: 16.0,
            front_sd: 2.0,
            jump_rate: 0.01,
            noise_sd: 1.5,
            gap_rate: 0.004,
            outlier_rate: 0.002,
        }
    }
}

/// Raw readings (gaps are missing rows), hourly.
pub fn generate_readings(spec: &SyntheticSpec) -> Vec<(DateTime<Utc>, f64)> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut weather = 0.0f64; // anomaly of the daily mean
    let mut cloud = 0.5f64; // 0 = clear (big daily swing), 1 = overcast (small swing)
    let mut gap_left = 0usize;
    let mut out = Vec::with_capacity(spec.days * 24);
    for i in 0..spec.days * 24 {
        weather = 0.985 * weather + spec.front_sd * normal(&mut rng);
        if rng.gen::<f64>() < spec.jump_rate {
            weather += rng.gen_range(-25.0..25.0);
        }
        cloud = (0.97 * cloud + 0.03 * 0.5 + 0.08 * normal(&mut rng)).clamp(0.0, 1.0);
        let hour = (i % 24) as f64;
        // Humidity peaks near dawn (05 h) and bottoms out mid-afternoon.
        let cycle = (std::f64::consts::TAU * (hour - 5.0) / 24.0).cos();
        let amp = spec.daily_amplitude * (1.2 - 0.9 * cloud);
        let mut v = spec.base + weather + amp * cycle + spec.noise_sd * normal(&mut rng);
        if rng.gen::<f64>() < spec.outlier_rate {
            v += rng.gen_range(-40.0..40.0);
        }
        let v = v.clamp(0.0, 100.0);
        if gap_left == 0 && rng.gen::<f64>() < spec.gap_rate {
            gap_left = rng.gen_range(1..=30);
        }
        if gap_left > 0 {
            gap_left -= 1;
            continue;
        }
        let ts = DateTime::<Utc>::from_timestamp(spec.start_unix + 3600 * i as i64, 0)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        out.push((ts, v));
    }
    out
}

/// The readings resampled with the default configuration.
pub fn generate(spec: &SyntheticSpec) -> Series {
    resample(&generate_readings(spec), &ForecastConfig::default())
}

/// Standard normal by Box-Muller (keeps us off extra distribution crates).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
