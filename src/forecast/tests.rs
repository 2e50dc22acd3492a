//! Engine-level tests: fit/forecast contracts, persistence, degenerate input, protocol.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::synthetic::{generate, SyntheticSpec};
use super::*;

fn small_cfg() -> ForecastConfig {
    cfg_with_horizon(24)
}

/// The defaults with a three-day evaluation window and `horizon` steps.
fn cfg_with_horizon(horizon: usize) -> ForecastConfig {
    ForecastConfig {
        horizon,
        window_days: 3,
        ..ForecastConfig::default()
    }
}

fn synthetic(days: usize, seed: u64) -> Series {
    generate(&SyntheticSpec {
        days,
        seed,
        ..SyntheticSpec::default()
    })
}

fn hourly(values: Vec<Option<f64>>) -> Series {
    Series {
        start: Utc
            .timestamp_opt(1_735_689_600, 0)
            .single()
            .expect("valid start"),
        step_secs: 3600,
        values,
    }
}

fn assert_well_formed(f: &Forecast, cfg: &ForecastConfig, horizon: usize) {
    assert_eq!(f.steps.len(), horizon);
    for (k, s) in f.steps.iter().enumerate() {
        assert_eq!(s.ts, f.origin + Duration::hours(k as i64 + 1));
        for v in [s.value, s.lo80, s.hi80, s.lo95, s.hi95] {
            assert!(v.is_finite() && v >= cfg.lower && v <= cfg.upper, "{s:?}");
        }
        assert!(s.lo95 <= s.lo80 && s.lo80 <= s.value && s.value <= s.hi80 && s.hi80 <= s.hi95);
    }
}

#[test]
fn algorithm_names_round_trip() {
    for a in Algorithm::ALL {
        assert_eq!(a.to_string().parse::<Algorithm>().expect("parse"), a);
        let json = serde_json::to_string(&a).expect("json");
        assert_eq!(json, format!("\"{a}\""));
    }
    assert!(Algorithm::SeasonalNaive.is_baseline());
    assert!(!Algorithm::Ridge.is_baseline());
    assert!("nonsense".parse::<Algorithm>().is_err());
}

#[test]
fn every_algorithm_fits_and_forecasts_within_bounds() {
    let cfg = small_cfg();
    let s = synthetic(40, 1);
    for a in Algorithm::ALL {
        let m = fit(&s, a, &cfg).unwrap_or_else(|e| panic!("{a}: {e}"));
        let f = m.forecast(&s, 24).expect("forecast");
        assert_eq!(f.origin, s.ts(s.observed_len() - 1));
        assert_well_formed(&f, &cfg, 24);
        assert!(matches!(
            m.forecast(&s, 25),
            Err(ForecastError::HorizonTooLong { .. })
        ));
    }
}

#[test]
fn serialisation_round_trip_gives_identical_forecasts() {
    let cfg = small_cfg();
    let s = generate(&SyntheticSpec {
        days: 40,
        seed: 2,
        gap_rate: 0.0,
        ..SyntheticSpec::default()
    });
    for a in [Algorithm::SeasonalNaive, Algorithm::Ridge, Algorithm::Blend] {
        let m = fit(&s, a, &cfg).expect("fit");
        let bytes = m.to_bytes().expect("to_bytes");
        let back = FittedModel::from_bytes(&bytes).expect("from_bytes");
        let (f1, f2) = (
            m.forecast(&s, 24).expect("f1"),
            back.forecast(&s, 24).expect("f2"),
        );
        for (x, y) in f1.steps.iter().zip(&f2.steps) {
            for (u, v) in [
                (x.value, y.value),
                (x.lo80, y.lo80),
                (x.hi80, y.hi80),
                (x.lo95, y.lo95),
                (x.hi95, y.hi95),
            ] {
                assert_eq!(u.to_bits(), v.to_bits());
            }
        }
        assert_eq!(back.to_bytes().expect("again"), bytes);
    }
}

#[test]
fn fitting_the_candidates_together_gives_each_the_model_it_gets_alone() {
    // The Blend reuses the ridge the Ridge candidate validated and fitted, and all learned
    // candidates share one set of feature frames: none of that may change a model.
    let cfg = small_cfg();
    let s = synthetic(40, 3);
    let opts = TrainOptions::default();
    let together = fit_each(&s, &Algorithm::ALL, &cfg, &opts);
    assert_eq!(together.len(), Algorithm::ALL.len());
    for (fit, a) in together.into_iter().zip(Algorithm::ALL) {
        assert_eq!(fit.algo, a);
        assert!(fit.seconds >= 0.0);
        let shared = fit.model.unwrap_or_else(|e| panic!("{a} together: {e}"));
        let alone = fit_with(&s, a, &cfg, &opts).unwrap_or_else(|e| panic!("{a} alone: {e}"));
        assert_eq!(
            shared.to_bytes().expect("bytes"),
            alone.to_bytes().expect("bytes"),
            "{a}"
        );
    }
    // The Blend first, then the Ridge that reuses its member: the same again.
    let blend_first = fit_each(&s, &[Algorithm::Blend, Algorithm::Ridge], &cfg, &opts);
    let ridge = fit_with(&s, Algorithm::Ridge, &cfg, &opts).expect("ridge");
    let reused = blend_first[1].model.as_ref().expect("ridge after blend");
    assert_eq!(
        reused.to_bytes().expect("bytes"),
        ridge.to_bytes().expect("bytes")
    );
}

#[test]
fn a_fit_that_cannot_start_fails_every_candidate_with_the_reason() {
    let cfg = small_cfg();
    let mut s = synthetic(40, 3);
    s.values[100] = Some(f64::NAN);
    let fits = fit_each(
        &s,
        &[Algorithm::Naive, Algorithm::Blend],
        &cfg,
        &TrainOptions::default(),
    );
    assert_eq!(fits.len(), 2);
    for fit in fits {
        assert!(
            matches!(fit.model, Err(ForecastError::NonFiniteInput { index: 100 })),
            "{}: {:?}",
            fit.algo,
            fit.model.map(|m| m.algorithm)
        );
    }
}

#[test]
fn forecast_steps_serialise_rounded_to_hundredths() {
    let step = ForecastStep {
        ts: Utc.timestamp_opt(1_735_689_600, 0).single().expect("ts"),
        value: 63.126_999,
        lo80: 60.004,
        hi80: 66.2,
        lo95: 0.001,
        hi95: 99.999,
    };
    let json = serde_json::to_string(&step).expect("json");
    assert_eq!(
        json,
        r#"{"ts":"2025-01-01T00:00:00Z","value":63.13,"lo80":60.0,"hi80":66.2,"lo95":0.0,"hi95":100.0}"#
    );
}

#[test]
fn bad_bytes_and_other_format_versions_are_rejected() {
    let cfg = small_cfg();
    let m = fit(&synthetic(10, 3), Algorithm::SeasonalNaive, &cfg).expect("fit");
    let mut bytes = m.to_bytes().expect("bytes");
    assert!(matches!(
        FittedModel::from_bytes(&bytes[..bytes.len() / 2]),
        Err(ForecastError::BadModelBytes(_))
    ));
    assert!(matches!(
        FittedModel::from_bytes(&[1, 2]),
        Err(ForecastError::BadModelBytes(_))
    ));
    bytes[..4].copy_from_slice(&(MODEL_FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        FittedModel::from_bytes(&bytes),
        Err(ForecastError::FormatVersion { found, .. }) if found == MODEL_FORMAT_VERSION + 1
    ));
}

#[test]
fn forecasts_are_clamped_to_the_bounds() {
    // A steep climb that a trend-following model would carry past 100.
    let values: Vec<Option<f64>> = (0..40 * 24)
        .map(|i| {
            let day = (i / 24) as f64;
            Some((40.0 + day * 1.6 + 10.0 * ((i % 24) as f64 / 3.8).sin()).min(100.0))
        })
        .collect();
    let s = hourly(values);
    for cfg in [
        small_cfg(),
        ForecastConfig {
            lower: 45.0,
            upper: 90.0,
            ..small_cfg()
        },
    ] {
        for a in [Algorithm::Naive, Algorithm::SeasonalNaive, Algorithm::Ridge] {
            let f = fit(&s, a, &cfg)
                .and_then(|m| m.forecast(&s, 24))
                .expect("forecast");
            assert_well_formed(&f, &cfg, 24);
        }
    }
}

#[test]
fn new_sensor_gets_a_baseline_forecast_from_a_few_hours() {
    let cfg = ForecastConfig::default();
    let s = hourly(vec![Some(55.0), Some(57.0), None, Some(60.0), None]);
    let m = fit(&s, Algorithm::SeasonalNaive, &cfg).expect("baseline fit");
    let f = m.forecast(&s, 120).expect("forecast");
    assert_eq!(f.origin, s.ts(3)); // trailing gap dropped
    assert!(f.steps.iter().all(|st| st.value == 60.0));
    assert_well_formed(&f, &cfg, 120);
    assert!(matches!(
        fit(&s, Algorithm::Ridge, &cfg),
        Err(ForecastError::TooLittleData(_))
    ));
    // select_and_fit falls back to the baseline instead of failing.
    let t = select_and_fit(&s, &Algorithm::ALL, &cfg).expect("select");
    assert_eq!(t.chosen, Algorithm::SeasonalNaive);
    assert!(t.reports.is_empty());
}

#[test]
fn degenerate_inputs_error_or_fall_back_without_panicking() {
    let cfg = small_cfg();
    // All gaps.
    let gaps = hourly(vec![None; 500]);
    for a in Algorithm::ALL {
        assert!(matches!(
            fit(&gaps, a, &cfg),
            Err(ForecastError::TooLittleData(_))
        ));
    }
    assert!(backtest(&gaps, Algorithm::Naive, &cfg).is_err());
    // Empty.
    let empty = hourly(Vec::new());
    assert!(fit(&empty, Algorithm::SeasonalNaive, &cfg).is_err());
    assert!(series_digest(&empty).len() == 64);
    // Non-finite values smuggled into a Series.
    let mut nan = synthetic(30, 4);
    nan.values[100] = Some(f64::NAN);
    assert!(matches!(
        fit(&nan, Algorithm::Ridge, &cfg),
        Err(ForecastError::NonFiniteInput { index: 100 })
    ));
    // Constant series: learned models fit (constant columns), backtests report the zero
    // MASE scale, and selection falls back to the baseline.
    let flat = hourly(vec![Some(100.0); 40 * 24]);
    for a in Algorithm::ALL {
        if let Ok(m) = fit(&flat, a, &cfg) {
            let f = m.forecast(&flat, 24).expect("forecast");
            assert!(f.steps.iter().all(|s| (s.value - 100.0).abs() < 1e-6));
        }
    }
    assert!(matches!(
        backtest(&flat, Algorithm::Naive, &cfg),
        Err(ForecastError::Degenerate(_))
    ));
    let t = select_and_fit(&flat, &[Algorithm::Ridge], &cfg).expect("select");
    assert_eq!(t.chosen, Algorithm::SeasonalNaive);
    // Nonsense configuration.
    let bad = ForecastConfig {
        lower: 5.0,
        upper: 5.0,
        ..cfg
    };
    assert!(matches!(
        fit(&flat, Algorithm::Naive, &bad),
        Err(ForecastError::InvalidConfig(_))
    ));
}

#[test]
fn smartcore_panics_become_fit_errors() {
    let r: Result<(), ForecastError> = guarded("test", || panic!("boom"));
    assert!(matches!(r, Err(ForecastError::FitFailed(m)) if m.contains("boom")));
}

#[test]
fn forecast_uses_only_the_history_it_is_given() {
    let cfg = small_cfg();
    let s = synthetic(40, 5);
    let head = s.head(30 * 24);
    let mut changed = s.clone();
    for v in changed.values.iter_mut().skip(30 * 24) {
        *v = Some(3.0);
    }
    for algo in [Algorithm::Ridge, Algorithm::Analog, Algorithm::Blend] {
        let m = fit(&s, algo, &cfg).expect("fit");
        let a = m.forecast(&head, 24).expect("a");
        let b = m.forecast(&changed.head(30 * 24), 24).expect("b");
        assert_eq!(a, b);
    }
    // The analog search only considers situations whose whole future is before the origin.
    let t = 30 * 24 - 1;
    let filled: Vec<Option<f64>> = series::causal_fill(&s.values, 24)
        .into_iter()
        .map(Some)
        .collect();
    let raw = features::FeatureFrame::build(&s.values, s.start_unix(), 3600, 24);
    let query = features::FeatureFrame::build(&filled, s.start_unix(), 3600, 24);
    let table = analog::descriptors(&raw, s.len());
    let nbrs = analog::neighbours(&raw, &table, &query, t, 24, 1, 50);
    assert!(!nbrs.is_empty());
    assert!(nbrs.iter().all(|&c| c + 24 <= t));
}

#[test]
fn protocol_origins_follow_the_issue() {
    let cfg = ForecastConfig::default();
    let floor = backtest::history_floor(&Algorithm::ALL, 8760, 24, &cfg);
    let o = backtest::origins(8760, 24, &cfg, floor);
    assert_eq!(o.first(), Some(&(8760 - 1440)));
    assert!(o.windows(2).all(|w| w[1] - w[0] == 24));
    assert!(o
        .last()
        .is_some_and(|&l| l + 120 <= 8760 && l + 24 + 120 > 8760));
    assert_eq!(o.len(), 56);
}

#[test]
fn backtest_scores_a_perfectly_periodic_series_exactly() {
    // Seasonal naive is exact on a pure daily cycle: MAE 0, full coverage.
    let values: Vec<Option<f64>> = (0..30 * 24)
        .map(|i| Some(50.0 + 20.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()))
        .collect();
    let s = hourly(values);
    // The scale needs variation at lag 24; add one bump early on.
    let mut s = s;
    s.values[30] = Some(90.0);
    let m = backtest(&s, Algorithm::SeasonalNaive, &small_cfg()).expect("backtest");
    assert!(m.mae_1_24 < 1e-9, "{m:?}");
    assert_eq!(m.coverage_80, 1.0);
    assert_eq!(m.origins, 3);
}

#[test]
fn backtesting_the_candidates_together_scores_each_as_its_own_backtest_does() {
    let cfg = small_cfg();
    let s = synthetic(40, 4);
    let opts = TrainOptions::default();
    let algos = [Algorithm::SeasonalNaive, Algorithm::Ridge, Algorithm::Blend];
    let floor = backtest::history_floor(&algos, s.len(), 24, &cfg);
    let together = backtest::backtest_each(&s, &algos, &cfg, &opts, floor);
    assert_eq!(together.scores.len(), algos.len());
    assert!(!together.joint_fit_seconds.is_empty());
    for ((a, m), &asked) in together.scores.into_iter().zip(&algos) {
        assert_eq!(a, asked);
        let m = m.unwrap_or_else(|e| panic!("{a} together: {e}"));
        let alone = backtest::backtest_from(&s, a, &cfg, &opts, floor).expect("backtest alone");
        let scores = |m: &Metrics| {
            [
                m.mase_1_24,
                m.mase_1_120,
                m.rmse_1_24,
                m.coverage_80,
                m.coverage_95,
            ]
            .map(f64::to_bits)
        };
        assert_eq!(scores(&m), scores(&alone), "{a}");
        assert_eq!(m.origins, alone.origins);
    }
}

#[test]
fn select_and_fit_chooses_by_backtest() {
    let cfg = small_cfg();
    let s = synthetic(40, 6);
    let t =
        select_and_fit(&s, &[Algorithm::Naive, Algorithm::SeasonalNaive], &cfg).expect("select");
    assert_eq!(t.reports.len(), 2);
    let best = t
        .reports
        .iter()
        .min_by(|a, b| backtest::selection_score(&a.1).total_cmp(&backtest::selection_score(&b.1)))
        .map(|r| r.0);
    assert_eq!(Some(t.chosen), best);
    assert_eq!(t.model.algorithm, t.chosen);
}

#[test]
fn evaluate_report_gives_its_bounds_as_timestamps_and_a_table_row_per_model() {
    let dir = std::env::temp_dir().join(format!("hygro-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.csv");
    let mut csv = String::from("ts,value\n");
    for (ts, v) in synthetic::generate_readings(&SyntheticSpec {
        days: 30,
        ..SyntheticSpec::default()
    }) {
        csv.push_str(&format!("{},{v}\n", ts.to_rfc3339()));
    }
    std::fs::write(&path, csv).expect("write");
    let report = evaluate_csv(&EvaluateOptions {
        csv: path,
        horizon: 24,
        window_days: 3,
        models: Some(vec![Algorithm::Naive, Algorithm::SeasonalNaive]),
        ..EvaluateOptions::default()
    })
    .expect("evaluate");
    let v = serde_json::to_value(&report).expect("json");
    // The JSON's shape, key by key, is checked on the real binary's output in
    // tests/evaluate_cli.rs.
    assert!(v["chosen"].is_string());
    let first: DateTime<Utc> = serde_json::from_value(v["series"]["first"].clone()).expect("ts");
    assert_eq!(first.timestamp(), 1_735_689_600);
    let table = report.to_table();
    // Header lines, a row per model, the joint fit time, the choice.
    assert_eq!(table.lines().count(), 2 + 2 + 1 + 1, "{table}");
    assert!(table.contains("all 2 models at one origin"), "{table}");
    assert!(table.contains('*'));
}

#[test]
#[ignore = "slow: full-size backtests (run with --release -- --ignored)"]
fn learned_models_beat_seasonal_naive_on_synthetic_series() {
    let cfg = ForecastConfig {
        window_days: 20,
        ..ForecastConfig::default()
    };
    for seed in [11, 12] {
        let s = synthetic(150, seed);
        let base = backtest(&s, Algorithm::SeasonalNaive, &cfg).expect("snaive");
        for a in [Algorithm::Ridge, Algorithm::Analog, Algorithm::Blend] {
            let m = backtest(&s, a, &cfg).expect("learned");
            assert!(m.mase_1_24 < base.mase_1_24, "{a} {m:?} vs {base:?}");
            assert!(
                m.mase_1_120 < base.mase_1_120 * 1.02,
                "{a} {m:?} vs {base:?}"
            );
            assert!((0.65..=0.95).contains(&m.coverage_80), "{a} {m:?}");
        }
    }
}

/// Held-out forecasts of the four members for `n` origins and `horizon` horizons: member 0
/// is good early and drifts later, member 1 is noisier, member 2 (the plain ridge) is as
/// good as member 0, member 3 (a climatology) is poor early and the best late.
fn holdout_members(n: usize, horizon: usize) -> ([Vec<Vec<f64>>; 4], Vec<Vec<f64>>) {
    let mut s = 42u64;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut members: [Vec<Vec<f64>>; 4] = Default::default();
    let mut actual = Vec::new();
    for h in 1..=horizon {
        let f = h as f64 / horizon as f64;
        let a: Vec<f64> = (0..n).map(|_| 60.0 + 30.0 * rnd()).collect();
        for (m, scale) in [
            (0, 2.0 + 30.0 * f),
            (1, 4.0 + 30.0 * f),
            (2, 2.0 + 30.0 * f),
            (3, 25.0 - 10.0 * f),
        ] {
            members[m].push(a.iter().map(|v| v + scale * rnd()).collect());
        }
        actual.push(a);
    }
    (members, actual)
}

#[test]
fn blend_weights_are_a_convex_combination_that_follows_the_holdout() {
    use super::combine::{learn_weights, MEMBERS};
    let (members, actual) = holdout_members(300, 48);
    let w = learn_weights(
        &members,
        &actual,
        &[],
        &[0..usize::MAX, 0..24, 24..usize::MAX],
    );
    assert_eq!(w.len(), 48);
    for wh in &w {
        assert!(wh.iter().all(|v| (0.0..=1.0).contains(v)), "{wh:?}");
        assert!((wh.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{wh:?}");
        assert_eq!(wh.len(), MEMBERS);
    }
    // Early the good model dominates the climatology; late the climatology gains weight.
    assert!(w[0][0] > w[0][3], "{:?}", w[0]);
    assert!(w[47][3] > w[0][3], "{:?} vs {:?}", w[47], w[0]);
    // The plain ridge has no say in the first day, and as much as its twin after it; the
    // analog has a say in the first day only.
    assert!(w[..24].iter().all(|wh| wh[2] == 0.0), "{:?}", &w[..24]);
    assert!(w[..24].iter().all(|wh| wh[1] > 0.0), "{:?}", &w[..24]);
    assert!(w[24..].iter().all(|wh| wh[1] == 0.0), "{:?}", &w[24..]);
    for wh in &w[24..] {
        let (plain, twin) = (wh[2], wh[0]);
        assert!(plain > 0.0 && (plain - twin).abs() < 0.25 * twin, "{wh:?}");
    }
}

#[test]
fn the_climatology_share_minimises_absolute_not_squared_error() {
    use super::combine::{learn_weights, CLIMATOLOGY_SHRINK};
    // Ridge and analog say 0, the climatology says 1. Four pairs in five come out at 1; the
    // fifth is a -20 outlier. Least absolute error: all climatology (λ = 1), of which the
    // blend serves CLIMATOLOGY_SHRINK. Least squares would follow the mean (-3.2) and give
    // the climatology nothing.
    let (n, horizon) = (200, 12);
    let actual: Vec<Vec<f64>> = (0..horizon)
        .map(|_| {
            (0..n)
                .map(|i| if i % 5 == 0 { -20.0 } else { 1.0 })
                .collect()
        })
        .collect();
    let members = [
        vec![vec![0.0; n]; horizon],
        vec![vec![0.0; n]; horizon],
        vec![vec![0.0; n]; horizon],
        vec![vec![1.0; n]; horizon],
    ];
    for w in learn_weights(
        &members,
        &actual,
        &[],
        &[0..usize::MAX, 0..8, 4..usize::MAX],
    ) {
        assert!((w[3] - CLIMATOLOGY_SHRINK).abs() < 1e-9, "{w:?}");
    }
}

#[test]
fn the_blend_serves_half_the_climatology_share_the_holdout_asks_for() {
    use super::combine::learn_weights;
    // Every held-out actual is 10; the ridge and the plain ridge say 0 and the climatology
    // says 10, so the holdout asks for all climatology (λ = 1) at every horizon. Served: half
    // of it, the other half left to the mix of the others in their own proportions (the
    // ridge and the plain ridge err alike, so they share it equally).
    let (n, horizon) = (200, 48);
    let actual = vec![vec![10.0; n]; horizon];
    let members = [
        vec![vec![0.0; n]; horizon],
        vec![vec![0.0; n]; 24],
        vec![vec![0.0; n]; horizon],
        vec![vec![10.0; n]; horizon],
    ];
    let w = learn_weights(
        &members,
        &actual,
        &[],
        &[0..usize::MAX, 0..24, 24..usize::MAX],
    );
    assert_eq!(w.len(), horizon);
    for (h, wh) in w.iter().enumerate() {
        assert!((wh[3] - 0.5).abs() < 1e-9, "{h}: {wh:?}");
        assert!((wh.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{h}: {wh:?}");
        let other = if h < 24 { wh[1] } else { wh[2] };
        assert!(
            (wh[0] - 0.25).abs() < 1e-9 && (other - 0.25).abs() < 1e-9,
            "{h}: {wh:?}"
        );
    }
}

#[test]
fn blend_weights_trust_the_member_that_did_better_lately() {
    use super::combine::{learn_weights, HALF_LIFE_DAYS};
    // 56 held-out origins, one a day. Over the first 28 the ridge errs by 1 and the analog by
    // 2; over the last 28 the other way round. Counted alike the two are tied; with the older
    // weeks discounted the analog, better lately, leads.
    let (n, horizon) = (56, 12);
    let actual = vec![vec![50.0; n]; horizon];
    let off = |early: f64, late: f64| -> Vec<Vec<f64>> {
        let row = (0..n).map(|i| 50.0 + if i < n / 2 { early } else { late });
        vec![row.collect(); horizon]
    };
    // The climatology errs to the same side, by more: it gets no share.
    let members = [off(1.0, 2.0), off(2.0, 1.0), vec![], off(5.0, 5.0)];
    let ages: Vec<Vec<f64>> = vec![(0..n).map(|i| (n - 1 - i) as f64).collect(); horizon];
    let spans = [0..usize::MAX, 0..usize::MAX, 0..0];
    let alike = learn_weights(&members, &actual, &[], &spans);
    let recent = learn_weights(&members, &actual, &ages, &spans);
    for (a, r) in alike.iter().zip(&recent) {
        assert!((a[0] - a[1]).abs() < 1e-9, "{a:?}");
        assert!(r[1] > 1.5 * r[0], "{r:?}");
    }
    // The say of a pair halves every HALF_LIFE_DAYS: ages all beyond the holdout change nothing.
    let old: Vec<Vec<f64>> = vec![vec![10.0 * HALF_LIFE_DAYS; n]; horizon];
    assert_eq!(learn_weights(&members, &actual, &old, &spans), alike);
}

#[test]
fn blend_weights_fall_back_to_the_prior_with_too_little_holdout() {
    use super::combine::{learn_weights, PRIOR};
    let spans = [0..usize::MAX, 0..8, 4..usize::MAX];
    // The prior among the members a horizon may weigh: past the analog's span, the ridge.
    let is_prior = |w: &[[f64; 4]]| {
        w.iter()
            .enumerate()
            .all(|(h, w)| *w == if h < 8 { PRIOR } else { [1.0, 0.0, 0.0, 0.0] })
    };
    // A handful of held-out origins: nothing is learned.
    let (members, actual) = holdout_members(3, 24);
    let w = learn_weights(&members, &actual, &[], &spans);
    assert!(w.len() == 24 && is_prior(&w), "{w:?}");
    // No holdout at all.
    assert!(learn_weights(&Default::default(), &[], &[], &spans).is_empty());
}

#[test]
fn a_member_without_forecasts_for_a_horizon_has_no_weight_there() {
    use super::combine::learn_weights;
    let spans = [0..usize::MAX, 0..usize::MAX, 0..usize::MAX];
    let (mut members, actual) = holdout_members(300, 24);
    // The ridge's errors grow with the horizon; the analog's are the same errors mirrored,
    // so the two are equally good wherever both forecast. The analog forecasts the first 8
    // horizons only, and the plain ridge none at all.
    for (h, (rows, a)) in members[0].iter_mut().zip(&actual).enumerate() {
        for (f, a) in rows.iter_mut().zip(a) {
            *f = a + 0.5 * (1.0 + h as f64) * (*f - a);
        }
    }
    members[1] = members[0]
        .iter()
        .zip(&actual)
        .take(8)
        .map(|(rows, a)| rows.iter().zip(a).map(|(f, a)| 2.0 * a - f).collect())
        .collect();
    members[2] = Vec::new();
    let w = learn_weights(&members, &actual, &[], &spans);
    assert_eq!(w.len(), 24);
    for (h, wh) in w.iter().enumerate() {
        assert!((wh.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{h}: {wh:?}");
        assert_eq!(wh[2], 0.0, "{h}: {wh:?}");
        if h < 8 {
            // Compared on the horizons both forecast, not the ridge's worse later ones too.
            assert!((wh[0] - wh[1]).abs() < 1e-9 && wh[1] > 0.0, "{h}: {wh:?}");
        } else {
            assert_eq!(wh[1], 0.0, "{h}: {wh:?}");
        }
    }
}

#[test]
fn a_blend_fitted_on_a_short_history_has_valid_weights() {
    let cfg = small_cfg();
    let m = fit(&synthetic(30, 5), Algorithm::Blend, &cfg).expect("fit");
    assert_eq!(m.params.blend_weights.len(), cfg.horizon);
    for w in &m.params.blend_weights {
        assert!(w.iter().all(|v| *v >= 0.0) && (w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    assert_eq!(m.params.ridge_alpha.len(), cfg.horizon);
}

#[test]
fn the_blends_analog_forecasts_the_first_day_only() {
    let cfg = cfg_with_horizon(48);
    let m = fit(&synthetic(30, 6), Algorithm::Blend, &cfg).expect("fit");
    // Pooling chosen for the 24 hourly horizons of the first day, and no weight after it.
    let analog = m.params.analog.as_ref().expect("the blend has an analog");
    assert_eq!(analog.pooling.len(), 24);
    let w = &m.params.blend_weights;
    assert!(
        w.len() == 48 && w[24..].iter().all(|w| w[1] == 0.0),
        "{w:?}"
    );
    let f = m.forecast(&synthetic(30, 6), 48).expect("forecast");
    assert_eq!(f.steps.len(), 48);
    assert!(f.steps.iter().all(|s| s.value.is_finite()));
}

#[test]
fn same_hour_smoothing_averages_a_day_either_side_after_the_first_day() {
    // Period 2, horizons 1..=6; values grow geometrically so any wrong neighbour shows.
    let f: Vec<Vec<f64>> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
        .iter()
        .map(|&v| vec![v, -v])
        .collect();
    let s = super::models::smooth_same_hour(&f, 2);
    let want = [1.0, 2.0, 7.0, 14.0, 10.0, 20.0];
    for (row, w) in s.iter().zip(want) {
        assert_eq!(row, &vec![w, -w]);
    }
}

#[test]
fn a_short_forecast_is_the_start_of_the_full_one() {
    // The smoothing of day 2 onwards looks a day past the requested horizon, so asking for
    // fewer steps must not change the ones returned.
    let cfg = cfg_with_horizon(72);
    let s = generate(&SyntheticSpec {
        days: 40,
        seed: 5,
        gap_rate: 0.0,
        ..SyntheticSpec::default()
    });
    let m = fit(&s, Algorithm::Ridge, &cfg).expect("fit");
    let full = m.forecast(&s, 72).expect("full");
    let short = m.forecast(&s, 30).expect("short");
    assert_eq!(short.steps.len(), 30);
    for (a, b) in short.steps.iter().zip(&full.steps) {
        assert_eq!(a.value.to_bits(), b.value.to_bits(), "{a:?} vs {b:?}");
    }
}

#[test]
fn a_series_too_short_to_backtest_is_told_how_much_history_it_needs() {
    let cfg = ForecastConfig::default();
    let short = hourly(vec![Some(50.0); 100]);
    let Err(ForecastError::TooLittleData(msg)) = backtest(&short, Algorithm::Naive, &cfg) else {
        panic!("a 100-step series cannot be backtested at horizon 120");
    };
    // 14 days of least history plus the 120-step horizon.
    assert!(msg.contains("100 steps"), "{msg}");
    assert!(msg.contains("at least 456 steps (19.0 days"), "{msg}");
}

#[test]
fn a_window_shorter_than_the_horizon_is_named_as_the_problem_not_the_history() {
    let cfg = ForecastConfig {
        window_days: 3,
        ..ForecastConfig::default()
    };
    // Ample history: only the 72-step window is too short for the 120-step horizon.
    let long = hourly(vec![Some(50.0); 24 * 60]);
    let Err(ForecastError::InvalidConfig(msg)) = backtest(&long, Algorithm::Naive, &cfg) else {
        panic!("a 3-day window has no origin with 120 actuals after it");
    };
    assert!(msg.contains("window of 3 days (72 steps)"), "{msg}");
    assert!(msg.contains("at least 5 days"), "{msg}");
}

#[test]
fn a_young_series_is_backtested_from_the_first_origin_its_learned_models_can_fit() {
    // 30 days against the default 60-day window: before, the window was cut at 14 days of
    // history, where no learned model can be fitted, so every one was skipped and a young
    // sensor was served seasonal naive until it had 81 days.
    let cfg = ForecastConfig::default();
    let s = synthetic(30, 11);
    let need = training::learned_history(24, &cfg);
    assert_eq!(need, 504, "a week, two horizons and four days");
    let floor = backtest::history_floor(&Algorithm::ALL, s.len(), 24, &cfg);
    assert_eq!(floor, need);
    let m = backtest(&s, Algorithm::Ridge, &cfg).expect("ridge is backtested at 30 days");
    assert_eq!(m.origins, (s.len() - cfg.horizon - need) / 24 + 1);
    let (_, reports) = backtest::select(
        &s,
        &[Algorithm::SeasonalNaive, Algorithm::Blend],
        &cfg,
        &training::TrainOptions::default(),
    );
    let scored: Vec<Algorithm> = reports.iter().map(|(a, _)| *a).collect();
    assert_eq!(scored, [Algorithm::SeasonalNaive, Algorithm::Blend]);
    // Both on the same origins, so their scores are comparable.
    assert_eq!(reports[0].1.origins, reports[1].1.origins);
}

#[test]
fn the_blend_preference_widens_as_the_origins_behind_the_scores_get_fewer() {
    let pref = backtest::combination_preference;
    assert_eq!(pref(56), backtest::COMBINATION_PREFERENCE);
    // More origins than the full window's never narrow it below 2 %.
    assert_eq!(pref(200), backtest::COMBINATION_PREFERENCE);
    assert!((pref(14) - 0.04).abs() < 1e-12, "{}", pref(14));
    assert!((pref(10) - 0.02 * 5.6f64.sqrt()).abs() < 1e-12);
    assert!(pref(0).is_finite());
}

#[test]
fn the_blend_is_passed_over_only_on_four_weeks_of_origins() {
    use super::metrics::Metrics;
    // Hand-made scores: the analog 10 % ahead of the blend (selection score = mean MASE).
    let scored = |algo, mase: f64, origins| {
        let m = Metrics {
            mase_1_24: mase,
            mase_1_120: mase,
            mae_1_24: 0.0,
            mae_1_120: 0.0,
            rmse_1_24: 0.0,
            rmse_1_120: 0.0,
            coverage_80: 0.8,
            coverage_95: 0.95,
            msis_80: 0.0,
            msis_95: 0.0,
            fit_seconds: 0.0,
            mae_by_horizon: Vec::new(),
            origins,
        };
        (algo, m)
    };
    let reports = |origins| {
        vec![
            scored(Algorithm::SeasonalNaive, 1.3, origins),
            scored(Algorithm::Analog, 1.0, origins),
            scored(Algorithm::Blend, 1.1, origins),
        ]
    };
    let min = backtest::FEWEST_ORIGINS_TO_PASS_OVER_BLEND;
    assert_eq!(min, 28);
    assert_eq!(backtest::pick(&reports(min - 1)), Algorithm::Blend);
    assert_eq!(backtest::pick(&reports(10)), Algorithm::Blend);
    assert_eq!(backtest::pick(&reports(min)), Algorithm::Analog);
    assert_eq!(backtest::pick(&reports(56)), Algorithm::Analog);
    // Within the margin the blend wins on a full window too; without it, the best does.
    let mut close = reports(56);
    close[2].1.mase_1_24 = 1.015;
    close[2].1.mase_1_120 = 1.015;
    assert_eq!(backtest::pick(&close), Algorithm::Blend);
    close.pop();
    assert_eq!(backtest::pick(&close[..]), Algorithm::Analog);
    // A blend that could not be scored is not chosen for its young age.
    let mut broken = reports(10);
    broken[2].1.mase_1_24 = f64::NAN;
    assert_eq!(backtest::pick(&broken), Algorithm::Analog);
    assert_eq!(backtest::pick(&[]), Algorithm::SeasonalNaive);
}

#[test]
fn too_young_to_backtest_the_learned_models_the_untested_default_serves() {
    let cfg = ForecastConfig::default();
    let opts = training::TrainOptions::default();
    // 22 days: a backtest origin after 14 days exists, one after 21 does not, yet 21 days
    // are enough to fit a learned model.
    let s = synthetic(22, 12);
    let floor = backtest::history_floor(&Algorithm::ALL, s.len(), 24, &cfg);
    assert_eq!(floor, cfg.min_history_steps);
    let candidates = [Algorithm::SeasonalNaive, Algorithm::Ridge];
    let (chosen, reports) = backtest::select(&s, &candidates, &cfg, &opts);
    // The baselines are still scored, but their scores do not decide.
    let scored: Vec<Algorithm> = reports.iter().map(|(a, _)| *a).collect();
    assert_eq!(scored, [Algorithm::SeasonalNaive]);
    assert_eq!(chosen, Algorithm::Ridge);
    // Among all candidates the blend comes first, and it does fit on this history.
    let t = select_and_fit(&s, &Algorithm::ALL, &cfg).expect("select");
    assert_eq!(t.chosen, Algorithm::Blend);
    assert_eq!(t.model.algorithm, Algorithm::Blend);
    assert!(t.reports.iter().all(|(a, _)| a.is_baseline()));
    // Its intervals come from its own held-out forecasts, so they are not empty.
    let f = t.model.forecast(&s, cfg.horizon).expect("forecast");
    assert_well_formed(&f, &cfg, cfg.horizon);
    assert!(f.steps.iter().all(|st| st.hi95 - st.lo95 > 1.0), "{f:?}");
    // 20 days cannot fit a learned model: the baseline serves.
    let younger = synthetic(20, 12);
    let (chosen, _) = backtest::select(&younger, &Algorithm::ALL, &cfg, &opts);
    assert_eq!(chosen, Algorithm::SeasonalNaive);
    // With a learned model backtested, the backtest decides, as before.
    let older = synthetic(30, 12);
    let (chosen, reports) = backtest::select(&older, &candidates, &cfg, &opts);
    assert!(reports.iter().any(|(a, _)| *a == Algorithm::Ridge));
    let best = reports
        .iter()
        .min_by(|a, b| backtest::selection_score(&a.1).total_cmp(&backtest::selection_score(&b.1)))
        .map(|(a, _)| *a);
    assert_eq!(Some(chosen), best);
}

/// Writes `body` under a fresh temporary directory and evaluates it with `opts`.
fn evaluate_text(
    name: &str,
    body: &str,
    opts: EvaluateOptions,
) -> Result<EvaluateReport, ForecastError> {
    let dir = std::env::temp_dir().join(format!("hygro-eval-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.csv");
    std::fs::write(&path, body).expect("write");
    evaluate_csv(&EvaluateOptions { csv: path, ..opts })
}

#[test]
fn evaluate_on_a_series_shorter_than_the_window_chooses_what_a_young_sensor_is_served() {
    // 40 days against a 60-day window: the scored window starts at the first origin the
    // learned model can be fitted at, so the history before it cannot backtest that model.
    let mut csv = String::from("ts,value\n");
    for (ts, v) in synthetic::generate_readings(&SyntheticSpec {
        days: 40,
        ..SyntheticSpec::default()
    }) {
        csv.push_str(&format!("{},{v}\n", ts.to_rfc3339()));
    }
    let report = evaluate_text(
        "young",
        &csv,
        EvaluateOptions {
            horizon: 24,
            models: Some(vec![Algorithm::SeasonalNaive, Algorithm::Ridge]),
            ..EvaluateOptions::default()
        },
    )
    .expect("evaluate");
    assert_eq!(report.chosen, Algorithm::Ridge);
    let scored: Vec<Algorithm> = report.models.iter().map(|m| m.model).collect();
    assert_eq!(scored, [Algorithm::SeasonalNaive, Algorithm::Ridge]);
    assert!(
        report.to_table().contains("ridge was chosen untested"),
        "{}",
        report.to_table()
    );
}

#[test]
fn evaluate_says_when_humidity_looks_like_a_fraction() {
    let readings = synthetic::generate_readings(&SyntheticSpec {
        days: 20,
        ..SyntheticSpec::default()
    });
    let as_csv = |scale: f64| {
        let mut csv = String::from("ts,value\n");
        for (ts, v) in &readings {
            csv.push_str(&format!("{},{}\n", ts.to_rfc3339(), v * scale));
        }
        csv
    };
    let fraction = evaluate_text("fraction", &as_csv(0.01), quick_evaluate()).expect("evaluate");
    assert!(
        fraction
            .notes
            .iter()
            .any(|n| n.contains("multiply them by 100")),
        "{:?}",
        fraction.notes
    );
    let percent = evaluate_text("percent", &as_csv(1.0), quick_evaluate()).expect("evaluate");
    assert!(percent.notes.is_empty(), "{:?}", percent.notes);
}

fn quick_evaluate() -> EvaluateOptions {
    EvaluateOptions {
        horizon: 24,
        window_days: 3,
        models: Some(vec![Algorithm::Naive, Algorithm::SeasonalNaive]),
        ..EvaluateOptions::default()
    }
}

#[test]
fn evaluate_reads_the_usual_timestamp_forms_and_leaves_out_missing_and_impossible_values() {
    let readings = synthetic::generate_readings(&SyntheticSpec {
        days: 20,
        ..SyntheticSpec::default()
    });
    let mut csv = String::from("Timestamp,Value\n");
    let (mut missing, mut impossible) = (0, 0);
    for (i, (ts, v)) in readings.iter().enumerate() {
        let ts = match i % 4 {
            0 => ts.to_rfc3339(),
            1 => ts.format("%Y-%m-%d %H:%M:%S").to_string(),
            2 => ts.timestamp().to_string(),
            _ => ts.timestamp_millis().to_string(),
        };
        let v = match i % 50 {
            7 => {
                missing += 1;
                String::new()
            }
            8 => {
                missing += 1;
                "NaN".to_string()
            }
            9 => {
                impossible += 1;
                "-999".to_string()
            }
            _ => v.to_string(),
        };
        csv.push_str(&format!("{ts},{v}\n"));
    }
    let report = evaluate_text(
        "forms",
        &csv,
        EvaluateOptions {
            ts_col: "timestamp".into(),
            value_col: "value".into(),
            ..quick_evaluate()
        },
    )
    .expect("evaluate");
    assert_eq!(report.series.rows, readings.len() - missing - impossible);
    assert_eq!(report.series.first, readings[0].0, "naive times are UTC");
    let last = readings.last().map(|r| r.0);
    assert_eq!(
        Some(report.series.last),
        last,
        "milliseconds are told from seconds"
    );
    assert_eq!(report.models.len(), 2);
    assert!(report.models.iter().all(|m| m.mase_1_24.is_finite()));
    let table = report.to_table();
    assert!(
        table.contains(&format!("{missing} rows without a value")),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "{impossible} values outside the humidity range 0..=100 %RH left out as gaps (the first at row 11: -999)"
        )),
        "{table}"
    );
}

#[test]
fn evaluate_reads_semicolon_and_tab_separated_files_and_decimal_commas() {
    let readings = synthetic::generate_readings(&SyntheticSpec {
        days: 20,
        ..SyntheticSpec::default()
    });
    let as_csv = |sep: &str, decimal: &str| {
        let mut csv = format!("\u{feff}ts{sep}value\r\n");
        for (ts, v) in &readings {
            let v = format!("{v:.2}").replace('.', decimal);
            csv.push_str(&format!("{}{sep}{v}\r\n", ts.to_rfc3339()));
        }
        csv
    };
    // Everything but the fit times, which vary from run to run.
    let scores = |r: &EvaluateReport| {
        r.models
            .iter()
            .map(|m| {
                (
                    m.model,
                    m.mase_1_24,
                    m.mase_1_120,
                    m.coverage_80,
                    m.coverage_95,
                )
            })
            .collect::<Vec<_>>()
    };
    let comma = evaluate_text("sep-comma", &as_csv(",", "."), quick_evaluate()).expect("comma");
    assert!(comma.series.rows > 400, "{:?}", comma.series);
    for (name, sep, decimal) in [("semicolon", ";", ","), ("tab", "\t", ".")] {
        let report =
            evaluate_text(name, &as_csv(sep, decimal), quick_evaluate()).expect("evaluate");
        assert_eq!(report.series, comma.series, "{name}");
        assert_eq!(scores(&report), scores(&comma), "{name}");
    }
    // With commas separating fields, a decimal comma is a field too many, not a value.
    let body = "ts,value\n2025-01-01T00:00:00Z,50\n2025-01-01T01:00:00Z,\"50,5\"\n";
    let Err(ForecastError::Input(msg)) = evaluate_text("comma-decimal", body, quick_evaluate())
    else {
        panic!("a decimal comma in a comma-separated file is ambiguous");
    };
    assert!(msg.contains("row 3: bad value \"50,5\""), "{msg}");
}

#[test]
fn evaluate_names_the_row_of_a_cell_that_is_no_value_or_no_time() {
    let body = "ts,value\n2025-01-01T00:00:00Z,50\n2025-01-01T01:00:00Z,fifty\n";
    let Err(ForecastError::Input(msg)) = evaluate_text("bad-value", body, quick_evaluate()) else {
        panic!("a word is not a value");
    };
    assert!(msg.contains("row 3: bad value \"fifty\""), "{msg}");
    let body = "ts,value\n2025-01-01T00:00:00Z,50\n01/01/2025 1am,51\n";
    let Err(ForecastError::Input(msg)) = evaluate_text("bad-ts", body, quick_evaluate()) else {
        panic!("an ambiguous local date is not accepted");
    };
    assert!(
        msg.contains("row 3: bad timestamp \"01/01/2025 1am\""),
        "{msg}"
    );
    let Err(ForecastError::Input(msg)) = evaluate_text(
        "no-col",
        body,
        EvaluateOptions {
            value_col: "rh".into(),
            ..quick_evaluate()
        },
    ) else {
        panic!("there is no column rh");
    };
    assert!(
        msg.contains("no column \"rh\" in the CSV (its columns: ts, value); name the one to read with --value-col"),
        "{msg}"
    );
}

#[test]
fn evaluate_scores_what_a_short_series_allows_and_names_the_model_it_could_not_score() {
    let mut csv = String::from("ts,value\n");
    for (ts, v) in synthetic::generate_readings(&SyntheticSpec {
        days: 22,
        ..SyntheticSpec::default()
    }) {
        csv.push_str(&format!("{},{v}\n", ts.to_rfc3339()));
    }
    let report = evaluate_text(
        "short",
        &csv,
        EvaluateOptions {
            models: Some(vec![Algorithm::SeasonalNaive, Algorithm::Ridge]),
            ..EvaluateOptions::default()
        },
    )
    .expect("the baseline is scored");
    let scored: Vec<Algorithm> = report.models.iter().map(|m| m.model).collect();
    assert_eq!(scored, [Algorithm::SeasonalNaive]);
    assert!(
        report
            .to_table()
            .contains("ridge not scored: too little data"),
        "{}",
        report.to_table()
    );
}

#[test]
fn the_plain_ridge_joins_the_blend_only_with_ten_rows_per_column() {
    let cfg = ForecastConfig::default();
    let plain_weights = |days: usize| -> Vec<f64> {
        let m = fit(&synthetic(days, 11), Algorithm::Blend, &cfg).expect("fit");
        m.params.blend_weights.iter().map(|w| w[2]).collect()
    };
    // A month: before the inner split the 120-h ridge has far fewer rows than it needs.
    let young = plain_weights(30);
    assert!(young.iter().all(|w| *w == 0.0), "{young:?}");
    // Four months: enough rows, and it has a say from the second day on, never before.
    let grown = plain_weights(120);
    assert!(grown[..24].iter().all(|w| *w == 0.0), "{:?}", &grown[..24]);
    assert!(grown[24..].iter().all(|w| *w > 0.0), "{:?}", &grown[24..]);
}

#[test]
fn a_member_without_weight_cannot_spoil_the_blend() {
    use super::combine::{combine, MEMBERS, PRIOR};
    let members: [Vec<Vec<f64>>; MEMBERS] = [
        vec![vec![40.0, 50.0]],
        vec![vec![60.0, 70.0]],
        vec![vec![f64::INFINITY, f64::NAN]],
        vec![vec![f64::NEG_INFINITY, 55.0]],
    ];
    assert_eq!(
        combine(&members, &[PRIOR]).ok(),
        Some(vec![vec![50.0, 60.0]])
    );
    // Nor can one without forecasts at all; but one with weight and no forecasts is an error.
    let members: [Vec<Vec<f64>>; MEMBERS] = [
        vec![vec![40.0, 50.0]],
        vec![vec![60.0, 70.0]],
        vec![],
        vec![],
    ];
    assert_eq!(
        combine(&members, &[PRIOR]).ok(),
        Some(vec![vec![50.0, 60.0]])
    );
    assert!(combine(&members, &[[0.5, 0.0, 0.5, 0.0]]).is_err());
}

#[test]
fn a_band_is_as_much_narrower_near_saturation_as_the_spread_says() {
    // The naive model forecasts the last value with the same residual quantiles whatever
    // that value is, so the bands from two histories that end at 50 and at 90 %RH differ
    // only by the spread at those levels.
    let cfg = ForecastConfig {
        horizon: 24,
        ..ForecastConfig::default()
    };
    let s = synthetic(30, 21);
    let model = fit(&s, Algorithm::Naive, &cfg).expect("fit");
    let half_width = |level: f64| {
        let mut history = s.clone();
        if let Some(last) = history.values.last_mut() {
            *last = Some(level);
        }
        let f = model.forecast(&history, 1).expect("forecast");
        let step = &f.steps[0];
        assert_eq!(step.value, level);
        // Below the point, where the 100 %RH bound does not cut the band.
        step.value - step.lo80
    };
    let (mid, humid) = (half_width(50.0), half_width(90.0));
    assert!(mid > 0.0 && humid > 0.0, "{mid} {humid}");
    let expected = intervals::spread(50.0, cfg.lower, cfg.upper)
        / intervals::spread(90.0, cfg.lower, cfg.upper);
    assert!(
        (mid / humid - expected).abs() < 1e-9,
        "{mid} / {humid} vs {expected}"
    );
}

#[test]
fn evaluate_averages_onto_the_step_it_is_given_and_refuses_one_that_does_not_divide_a_day() {
    // Readings every half hour that alternate 20 %RH apart around a slow weekly drift: on
    // hourly steps the alternation averages out and the last value forecasts well; on
    // half-hour steps every other step misses by 20.
    let mut csv = String::from("ts,value\n");
    let start = 1_735_689_600i64;
    for i in 0..20 * 48 {
        let drift = 5.0 * (std::f64::consts::TAU * i as f64 / (7.0 * 48.0)).sin();
        let v = 50.0 + drift + if i % 2 == 0 { -10.0 } else { 10.0 };
        let ts = DateTime::from_timestamp(start + 1800 * i, 0).expect("ts");
        csv.push_str(&format!("{},{v}\n", ts.to_rfc3339()));
    }
    let naive_mae = |step_secs: i64| {
        let report = evaluate_text(
            &format!("step{step_secs}"),
            &csv,
            EvaluateOptions {
                step_secs,
                ..quick_evaluate()
            },
        )
        .expect("evaluate");
        let naive = report.models.iter().find(|m| m.model == Algorithm::Naive);
        naive.expect("naive scored").mae_1_24
    };
    let (hourly, half_hourly) = (naive_mae(3600), naive_mae(1800));
    assert!(hourly < 2.0, "hourly means hide the alternation: {hourly}");
    assert!(half_hourly > 8.0, "half-hour steps see it: {half_hourly}");
    for bad in [0, 7, 86_400] {
        let err = evaluate_text(
            "badstep",
            &csv,
            EvaluateOptions {
                step_secs: bad,
                ..quick_evaluate()
            },
        )
        .expect_err("refused");
        assert!(err.to_string().contains(&format!("step {bad} s")), "{err}");
    }
}

#[test]
fn on_ten_minute_steps_the_blends_analog_weighs_the_first_24_steps_and_the_plain_ridge_every_step()
{
    // 40 days of synthetic humidity on 10-minute steps: the hourly generator, interpolated.
    let hourly = synthetic::generate_readings(&SyntheticSpec {
        days: 40,
        gap_rate: 0.0,
        ..SyntheticSpec::default()
    });
    let mut readings = Vec::new();
    for pair in hourly.windows(2) {
        let ((t0, a), (_, b)) = (pair[0], pair[1]);
        for k in 0..6 {
            let v = a + (b - a) * f64::from(k) / 6.0;
            readings.push((t0 + Duration::minutes(10 * i64::from(k)), v));
        }
    }
    let cfg = ForecastConfig {
        step_secs: 600,
        min_history_steps: 14 * 144,
        ..ForecastConfig::default()
    };
    let series = resample(&readings, &cfg);
    let model = fit(&series, Algorithm::Blend, &cfg).expect("fit");
    let models::Estimator::Blend { weights, .. } = &model.estimator else {
        panic!("a blend");
    };
    assert_eq!(weights.len(), 120);
    for (i, w) in weights.iter().enumerate() {
        if i >= 24 {
            assert_eq!(w[1], 0.0, "no analog at step {}: {w:?}", i + 1);
        }
    }
    assert!(
        weights[24..].iter().any(|w| w[2] > 0.0),
        "the plain ridge has a say past the first 24 steps: {:?}",
        &weights[24..30]
    );
    // On a grid finer than hourly the plain ridge has a say from the first step too.
    assert!(
        weights[..24].iter().any(|w| w[2] > 0.0),
        "the plain ridge has a say in the first 24 steps: {:?}",
        &weights[..6]
    );
}

#[test]
fn the_blends_plain_ridge_has_a_say_in_the_first_day_only_where_the_daily_cycle_is_weak() {
    // The same synthetic weather, with the outdoor-like daily swing and with a faint one.
    let first_day_plain_weight = |amplitude: f64| {
        let series = generate(&SyntheticSpec {
            days: 60,
            daily_amplitude: amplitude,
            gap_rate: 0.0,
            ..SyntheticSpec::default()
        });
        let model = fit(&series, Algorithm::Blend, &ForecastConfig::default()).expect("fit");
        let models::Estimator::Blend { weights, .. } = &model.estimator else {
            panic!("a blend");
        };
        weights[..24].iter().map(|w| w[2]).fold(0.0, f64::max)
    };
    assert_eq!(first_day_plain_weight(16.0), 0.0, "strong cycle: none");
    assert!(first_day_plain_weight(1.0) > 0.0, "weak cycle: a say");
}
