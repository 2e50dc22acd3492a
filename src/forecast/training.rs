//! Fitting: inner validation (penalty, blend weights), interval calibration, final fit.
//!
//! Every learned model is fitted twice. First on the history up to a split point, then it
//! forecasts from origins after the split (its own held-out rolling-origin backtest); those
//! out-of-sample forecasts choose the ridge penalties and the blend weights (`combine`) and
//! give the residuals the intervals are calibrated from. Then the model is refitted on all
//! the history with the chosen settings. Nothing after the end of the given series is used, so
//! inside an outer backtest the intervals never peek past the origin.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Instant;

use super::analog::{
    descriptors, neighbours, pooled_changes_grid, AnalogModel, Pooling, HOUR_WINDOW, K_BLOCKS,
};
use super::combine::{
    blend_analog_horizon, blend_plain_from, climatology_levels, combine, learn_weights,
    CLIMATOLOGY_DAYS,
};
use super::features::{
    ridge_column_sets, FeatureFrame, FeatureSpec, Transform, LOOKBACK_DAYS, N_LAG_FEATURES,
    N_PLAIN_LAG_FEATURES,
};
use super::forest::{sample_design, ForestModel, ForestParams};
use super::intervals::{calibrate, HorizonQuantiles};
use super::models::{
    plain_levels, predict_levels, ridge_levels, smooth_same_hour, Algorithm, Estimator,
    FittedModel, Frames, ModelParams, MODEL_FORMAT_VERSION, SMARTCORE_VERSION,
};
use super::ridge::{horizon_stats, RidgeHorizon, RidgeStats};
use super::series::causal_fill;
use super::{ForecastConfig, ForecastError, Series};

/// Candidate ridge penalties (per training row, on standardised features).
const RIDGE_ALPHAS: [f64; 6] = [1e-5, 1e-3, 1e-2, 1e-1, 1.0, 10.0];
/// Its penalty per row (on standardised features): next to none.
const PLAIN_ALPHA: f64 = 1e-5;
/// Fewest training rows per horizon for the plain ridge to join the Blend (ten per column).
const PLAIN_MIN_ROWS: usize = 10 * N_PLAIN_LAG_FEATURES;
/// Longest inner-validation span, in days.
const CALIBRATION_DAYS: usize = 28;
/// Inner-validation origins are taken every this many steps (neighbours are near-duplicates).
const CALIBRATION_STRIDE: usize = 2;
/// Holdout stride for the forest, whose predictions are ~100× dearer than ridge's.
const FOREST_CALIBRATION_STRIDE: usize = 6;
/// Horizons pooled either side when estimating interval quantiles.
const INTERVAL_POOL: usize = 2;
/// Length of each run of holdout origins of one half (see [`Holdout`]), in days: a week, so
/// each half sees every weekday and the halves' weather is nearly independent.
const FOLD_DAYS: usize = 7;

/// Training settings that are not part of the public configuration (exposed, hidden, for
/// experiments; the defaults are what hygrocast serves).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Trailing window of training origins, in days.
    pub train_window_days: usize,
    /// Inner-validation span, in days.
    pub calibration_days: usize,
    /// Model `ln(y - lower + 1)` instead of `y` (learned models only).
    pub log_transform: bool,
    pub forest: ForestParams,
    /// Days averaged by the Blend's climatology member.
    pub climatology_days: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            train_window_days: 730,
            calibration_days: CALIBRATION_DAYS,
            log_transform: true,
            forest: ForestParams::default(),
            climatology_days: CLIMATOLOGY_DAYS,
        }
    }
}

fn opts_cal_days(ctx: &Context<'_>) -> usize {
    ctx.opts.calibration_days.max(1)
}

pub(crate) fn check_finite(values: &[Option<f64>]) -> Result<(), ForecastError> {
    match values
        .iter()
        .position(|v| v.is_some_and(|x| !x.is_finite()))
    {
        Some(index) => Err(ForecastError::NonFiniteInput { index }),
        None => Ok(()),
    }
}

/// Fit `algo` on all of `series` and calibrate its intervals (see the module docs).
pub fn fit(
    series: &Series,
    algo: Algorithm,
    cfg: &ForecastConfig,
) -> Result<FittedModel, ForecastError> {
    fit_with(series, algo, cfg, &TrainOptions::default())
}

#[doc(hidden)]
pub fn fit_with(
    series: &Series,
    algo: Algorithm,
    cfg: &ForecastConfig,
    opts: &TrainOptions,
) -> Result<FittedModel, ForecastError> {
    fit_each(series, &[algo], cfg, opts).pop().map_or_else(
        || Err(ForecastError::FitFailed("nothing fitted".into())),
        |f| f.model,
    )
}

/// One candidate fitted by [`fit_each`]: the model or why it could not be fitted, and the
/// seconds it took beyond the work an earlier candidate of the same call had already done.
#[derive(Debug)]
pub struct CandidateFit {
    pub algo: Algorithm,
    pub model: Result<FittedModel, ForecastError>,
    pub seconds: f64,
}

/// Fit every algorithm of `algos` on all of `series`, as [`fit_with`] fits each alone (the
/// same models, to the bit), doing the work they have in common once: the feature frames,
/// and the ridge that the Ridge candidate is and the Blend holds as a member (the same
/// penalties chosen on the same holdout, fitted on the same rows). The backtest fits all
/// candidates at each origin this way.
#[doc(hidden)]
pub fn fit_each(
    series: &Series,
    algos: &[Algorithm],
    cfg: &ForecastConfig,
    opts: &TrainOptions,
) -> Vec<CandidateFit> {
    let started = Instant::now();
    let n = match check_series(series, cfg) {
        Ok(n) => n,
        Err(e) => {
            let seconds = started.elapsed().as_secs_f64();
            return algos
                .iter()
                .map(|&algo| CandidateFit {
                    algo,
                    model: Err(e.clone()),
                    seconds,
                })
                .collect();
        }
    };
    let learned_transform = if opts.log_transform {
        Transform::Log { lower: cfg.lower }
    } else {
        Transform::Identity
    };
    // Built when the first candidate needing them is fitted, so that one is timed with them.
    let (baseline_data, learned_data) = (OnceCell::new(), OnceCell::new());
    let (baseline_ctx, learned_ctx) = (OnceCell::new(), OnceCell::new());
    let mut shared = SharedRidge::default();
    let mut lap = started;
    algos
        .iter()
        .map(|&algo| {
            let model = if algo.is_baseline() {
                let ctx = baseline_ctx.get_or_init(|| {
                    Context::new(series, n, Transform::Identity, &baseline_data, cfg, opts)
                });
                fit_baseline(ctx, algo).map(|f| f.into_model(ctx, series, algo))
            } else {
                let ctx = learned_ctx.get_or_init(|| {
                    Context::new(series, n, learned_transform, &learned_data, cfg, opts)
                });
                fit_learned(ctx, algo, &mut shared).map(|f| f.into_model(ctx, series, algo))
            };
            let seconds = lap.elapsed().as_secs_f64();
            lap = Instant::now();
            CandidateFit {
                algo,
                model,
                seconds,
            }
        })
        .collect()
}

/// The checks every fit starts with; the number of steps up to the last observed one.
fn check_series(series: &Series, cfg: &ForecastConfig) -> Result<usize, ForecastError> {
    cfg.validate()?;
    if series.step_secs <= 0 {
        return Err(ForecastError::InvalidConfig(
            "series step must be > 0".into(),
        ));
    }
    check_finite(&series.values)?;
    match series.observed_len() {
        0 => Err(ForecastError::TooLittleData(
            "the series has no observed value".into(),
        )),
        n => Ok(n),
    }
}

/// The series on a model's scale, owned for the frames of a [`Context`] to borrow.
struct Scaled {
    spec: FeatureSpec,
    transformed: Vec<Option<f64>>,
    filled: Vec<Option<f64>>,
}

struct Context<'a> {
    /// Frame over the transformed raw values: training rows touching a gap are excluded.
    raw: FeatureFrame<'a>,
    /// Frame over the causally gap-filled transformed values, as `forecast` sees them.
    filled: FeatureFrame<'a>,
    /// Original values (the actuals of the inner backtest).
    values: &'a [Option<f64>],
    spec: &'a FeatureSpec,
    cfg: &'a ForecastConfig,
    opts: &'a TrainOptions,
    n: usize,
}

impl<'a> Context<'a> {
    /// The first `n` steps of `series` on the `transform` scale, owned by `data`.
    fn new(
        series: &'a Series,
        n: usize,
        transform: Transform,
        data: &'a OnceCell<Scaled>,
        cfg: &'a ForecastConfig,
        opts: &'a TrainOptions,
    ) -> Self {
        let values = &series.values[..n];
        let data = data.get_or_init(|| {
            let spec = FeatureSpec::new(series.step_secs, transform);
            Scaled {
                transformed: values
                    .iter()
                    .map(|v| v.map(|y| transform.forward(y)))
                    .collect(),
                filled: causal_fill(values, spec.period)
                    .into_iter()
                    .map(|y| Some(transform.forward(y)))
                    .collect(),
                spec,
            }
        });
        let frame =
            |v| FeatureFrame::for_spec(v, series.start_unix(), series.step_secs, &data.spec);
        Context {
            raw: frame(&data.transformed),
            filled: frame(&data.filled),
            values,
            spec: &data.spec,
            cfg,
            opts,
            n,
        }
    }
}

struct Fitted {
    params: ModelParams,
    intervals: Vec<HorizonQuantiles>,
    estimator: Estimator,
}

impl Fitted {
    /// The model `algo` fitted in `ctx`, on the first `ctx.n` steps of `series`.
    fn into_model(self, ctx: &Context<'_>, series: &Series, algo: Algorithm) -> FittedModel {
        let (n, cfg) = (ctx.n, ctx.cfg);
        FittedModel {
            format_version: MODEL_FORMAT_VERSION,
            smartcore_version: SMARTCORE_VERSION.to_string(),
            algorithm: algo,
            params: self.params,
            feature_spec: ctx.spec.clone(),
            step_secs: series.step_secs,
            horizon: cfg.horizon,
            lower: cfg.lower,
            upper: cfg.upper,
            trained_steps: n,
            trained_until: series.ts(n - 1),
            intervals: self.intervals,
            estimator: self.estimator,
        }
    }
}

/// What the Ridge candidate and the Blend have in common when fitted on one history (see
/// [`fit_each`]), kept by the first of them to make it. The Blend's ridge member is the Ridge
/// candidate: validated on the same holdout (same split, stride and window) and refitted on
/// the same rows; `key` holds the split, window and stride it was made for, so nothing is
/// reused for another.
#[derive(Default)]
struct SharedRidge {
    key: Option<(usize, usize, usize)>,
    validated: Option<RidgeChoice>,
    fitted: Option<Arc<[RidgeHorizon]>>,
}

/// Held-out (origin, actual) pairs per horizon: `pairs[h-1]`.
///
/// The origins fall in two halves, alternate weeks ([`Holdout::fold`]). Where a member's
/// setting (ridge penalty and columns, analog pooling) is chosen on the holdout, the held-out
/// forecasts of each half are those of the setting chosen on the other half (cross-fitting):
/// a setting picked for scoring best on some origins is flattered by its score there, and the
/// Blend's weights and the intervals, learned from these forecasts, would trust it too much.
struct Holdout {
    /// The forecast origins, `first..n-1` every `stride` steps.
    origins: Vec<usize>,
    stride: usize,
    /// Steps in each run of origins of one half (a week).
    fold_steps: usize,
    /// Per horizon, the origins whose target is observed, with that target.
    pairs: Vec<Vec<(usize, f64)>>,
}

impl Holdout {
    fn new(ctx: &Context<'_>, first: usize, stride: usize) -> Self {
        let h_max = ctx.cfg.horizon;
        let origins = (first..ctx.n.saturating_sub(1)).step_by(stride).collect();
        let pairs = (1..=h_max)
            .map(|h| {
                (first..ctx.n.saturating_sub(h))
                    .step_by(stride)
                    .filter_map(|t| Some((t, (*ctx.values.get(t + h)?)?)))
                    .collect()
            })
            .collect();
        Holdout {
            origins,
            stride,
            fold_steps: FOLD_DAYS * ctx.spec.period,
            pairs,
        }
    }

    /// The half (0 or 1) origin `t` belongs to.
    fn fold(&self, t: usize) -> usize {
        let first = self.origins.first().copied().unwrap_or(0);
        (t.saturating_sub(first) / self.fold_steps.max(1)) % 2
    }

    /// Settings chosen per block of horizons from each candidate's absolute errors per half,
    /// `err[h-1][half][c]`, falling back to `fallback` where a block has no pairs: returns
    /// the choice on the whole holdout (what is served) and the held-out predictions
    /// (aligned with `pairs`) that `forecast` makes for a choice, each half's made with the
    /// choice on the other half (see [`Holdout`]).
    fn choose_cross_fitted(
        &self,
        err: &[[Vec<f64>; 2]],
        fallback: &[usize],
        forecast: impl Fn(&[usize]) -> Result<Vec<Vec<f64>>, ForecastError>,
    ) -> Result<(Vec<usize>, Vec<Vec<f64>>), ForecastError> {
        let n_cand = err.first().map_or(0, |e| e[0].len());
        // Pairs per horizon and half.
        let counts: Vec<[usize; 2]> = self
            .pairs
            .iter()
            .map(|p| {
                let mut n = [0; 2];
                p.iter().for_each(|(t, _)| n[self.fold(*t)] += 1);
                n
            })
            .collect();
        let chosen = choose_per_block(
            n_cand,
            |h, c| err[h][0][c] + err[h][1][c],
            |h| counts[h] != [0, 0],
            fallback,
        );
        let [on_1, on_0] = [1, 0].map(|other| {
            choose_per_block(
                n_cand,
                |h, c| err[h][other][c],
                |h| counts[h][other] > 0,
                &chosen,
            )
        });
        let preds = if on_1 == on_0 {
            forecast(&on_1)?
        } else {
            let by_half = [forecast(&on_1)?, forecast(&on_0)?];
            // As many horizons as `forecast` makes (the Blend's analog: the first day).
            self.pairs
                .iter()
                .zip(by_half[0].iter().zip(&by_half[1]))
                .map(|(p, rows)| {
                    let rows = [rows.0, rows.1];
                    p.iter()
                        .enumerate()
                        .map(|(i, (t, _))| rows[self.fold(*t)][i])
                        .collect()
                })
                .collect()
        };
        Ok((chosen, preds))
    }

    /// The (causally filled) level at each origin, which forecasts are changes from.
    fn levels(&self, filled: &FeatureFrame<'_>) -> Vec<f64> {
        self.origins
            .iter()
            .map(|&t| filled.level(t).unwrap_or(0.0))
            .collect()
    }

    /// Residuals `actual - prediction` per horizon.
    fn residuals(&self, preds: &[Vec<f64>]) -> Vec<Vec<f64>> {
        self.pairs
            .iter()
            .zip(preds)
            .map(|(p, f)| p.iter().zip(f).map(|((_, a), f)| a - f).collect())
            .collect()
    }

    /// Interval quantiles from the held-out predictions `preds` (aligned with `pairs`): their
    /// residuals, scaled by the spread at each prediction.
    fn intervals(&self, preds: &[Vec<f64>], cfg: &ForecastConfig) -> Vec<HorizonQuantiles> {
        calibrate(
            &self.residuals(preds),
            preds,
            INTERVAL_POOL,
            cfg.lower,
            cfg.upper,
        )
    }

    /// Each pair's age, `age_days[h-1][i]`: days from its origin to the last origin.
    fn age_days(&self, period: usize) -> Vec<Vec<f64>> {
        let last = self.origins.last().copied().unwrap_or(0);
        self.pairs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(t, _)| last.saturating_sub(*t) as f64 / period.max(1) as f64)
                    .collect()
            })
            .collect()
    }

    /// Predictions aligned with `pairs` from a full `origins` × horizon prediction.
    fn align(&self, all: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let first = self.origins.first().copied().unwrap_or(0);
        self.pairs
            .iter()
            .zip(all)
            .map(|(p, row)| {
                p.iter()
                    .map(|(t, _)| row[(t - first) / self.stride])
                    .collect()
            })
            .collect()
    }
}

fn fit_baseline(ctx: &Context<'_>, algo: Algorithm) -> Result<Fitted, ForecastError> {
    let estimator = match algo {
        Algorithm::Naive => Estimator::Naive,
        _ => Estimator::SeasonalNaive,
    };
    // No fitting: every past origin is out of sample, so calibrate on the latest ones.
    let first = ctx.n.saturating_sub(CALIBRATION_DAYS * ctx.spec.period + 1);
    let holdout = Holdout::new(ctx, first, 1);
    let preds = if holdout.origins.is_empty() {
        vec![Vec::new(); ctx.cfg.horizon]
    } else {
        let frames = Frames {
            filled: &ctx.filled,
            raw: &ctx.raw,
        };
        let all = predict_levels(
            &estimator,
            &frames,
            &holdout.origins,
            ctx.cfg.horizon,
            ctx.spec.transform,
        )?;
        holdout.align(&all)
    };
    Ok(Fitted {
        params: ModelParams {
            train_window_steps: 0,
            calibration_steps: ctx.n - first,
            ridge_alpha: Vec::new(),
            forest: None,
            analog: None,
            blend_weights: Vec::new(),
            climatology_days: None,
        },
        intervals: holdout.intervals(&preds, ctx.cfg),
        estimator,
    })
}

/// Steps of history a learned model needs: a week of lookback, a horizon of training
/// targets before the inner split and a horizon of held-out targets after it, with two days
/// of slack each (and never less than `min_history_steps`).
pub(crate) fn learned_history(period: usize, cfg: &ForecastConfig) -> usize {
    cfg.min_history_steps
        .max(LOOKBACK_DAYS * period + 2 * cfg.horizon + 4 * period)
}

fn fit_learned(
    ctx: &Context<'_>,
    algo: Algorithm,
    shared: &mut SharedRidge,
) -> Result<Fitted, ForecastError> {
    let filled = &ctx.filled;
    let (n, p, h_max) = (ctx.n, ctx.spec.period, ctx.cfg.horizon);
    let lookback = ctx.spec.lookback;
    let need = learned_history(p, ctx.cfg);
    if n < need {
        return Err(ForecastError::TooLittleData(format!(
            "{algo} needs {need} steps of history, got {n}"
        )));
    }
    let cal = (opts_cal_days(ctx) * p).min(n - lookback - h_max - 2 * p);
    let split = n - cal;
    let window = ctx.opts.train_window_days * p;
    let mut holdout = Holdout::new(ctx, split - 1, CALIBRATION_STRIDE);

    let use_ridge = matches!(algo, Algorithm::Ridge | Algorithm::Blend);
    let use_forest = matches!(algo, Algorithm::Forest);
    let use_analog = matches!(algo, Algorithm::Analog | Algorithm::Blend);
    // Inside the Blend the analog forecasts only the horizons where it may have weight.
    let analog_horizon = match algo {
        Algorithm::Blend => blend_analog_horizon(h_max, filled),
        _ => h_max,
    };
    let transform = ctx.spec.transform;
    // Inner validation: fit on targets before `split`, forecast the held-out origins.
    let mut ridge_alpha = Vec::new();
    let mut ridge_cols = Vec::new();
    let mut member_preds: Vec<Vec<Vec<f64>>> = Vec::new();
    let ridge_key = (split, window, holdout.stride);
    if shared.key != Some(ridge_key) {
        *shared = SharedRidge {
            key: Some(ridge_key),
            ..SharedRidge::default()
        };
    }
    if use_ridge {
        let (alpha, cols, preds) = match &shared.validated {
            Some(choice) => choice.clone(),
            None => {
                let choice = validate_ridge(ctx, filled, &holdout, split, window)?;
                shared.validated.insert(choice).clone()
            }
        };
        ridge_alpha = alpha;
        ridge_cols = cols;
        member_preds.push(preds);
    }
    if use_forest {
        // Forest predictions are the costly part, so its holdout is thinned further.
        holdout = Holdout::new(ctx, split - 1, FOREST_CALIBRATION_STRIDE);
        let model = fit_forest(ctx, split, window)?;
        let levels = holdout.levels(filled);
        let all = super::models::forest_levels(&model, filled, &holdout.origins, &levels, h_max)?;
        member_preds.push(transform.inverse_rows(holdout.align(&all)));
    }
    let plain_preds = if matches!(algo, Algorithm::Blend) {
        validate_plain(ctx, filled, &holdout, split, window)?
    } else {
        None
    };
    let mut analog = None;
    if use_analog {
        let (model, preds) = validate_analog(ctx, filled, &holdout, analog_horizon)?;
        analog = Some(model);
        member_preds.push(preds);
    }
    let mut weights = Vec::new();
    let clim_days = ctx.opts.climatology_days.max(1);
    let preds = match <[Vec<Vec<f64>>; 2]>::try_from(member_preds) {
        Ok([r, a]) => {
            // The Blend: learn its member weights on the same held-out origins.
            let c = holdout.align(&climatology_levels(
                filled,
                &holdout.origins,
                h_max,
                clim_days,
                transform,
            ));
            // Without a trustworthy plain ridge its place holds no forecasts, and no weight.
            let (plain, plain_span) = match plain_preds {
                Some(plain) => {
                    let share = filled.daily_cycle_share(ctx.values);
                    tracing::debug!(?share, "daily cycle's share of the variance");
                    (plain, blend_plain_from(filled, share)..usize::MAX)
                }
                None => (Vec::new(), 0..0),
            };
            let members = [r, a, plain, c];
            let actual: Vec<Vec<f64>> = holdout
                .pairs
                .iter()
                .map(|p| p.iter().map(|(_, a)| *a).collect())
                .collect();
            // Ridge at every horizon, analog in the first block, plain ridge after it (where
            // the daily cycle is weak or the grid finer than hourly, everywhere).
            let spans = [0..usize::MAX, 0..analog_horizon, plain_span];
            weights = learn_weights(
                &members,
                &actual,
                &holdout.age_days(ctx.spec.period),
                &spans,
            );
            tracing::debug!(?weights, "blend weights learned");
            combine(&members, &weights)?
        }
        Err(mut member_preds) => member_preds
            .pop()
            .ok_or_else(|| ForecastError::FitFailed("no learned member".into()))?,
    };
    let intervals = holdout.intervals(&preds, ctx.cfg);

    // Final fit on everything.
    let ridge = match (&shared.fitted, ridge_alpha.is_empty()) {
        (_, true) => None,
        (Some(ridge), false) => Some(Arc::clone(ridge)),
        (None, false) => {
            let ridge: Arc<[RidgeHorizon]> = chosen_ridge(
                &ridge_stats(ctx, n, window)?,
                &ridge_alpha,
                &ridge_cols,
                RidgeStats::fit,
            )?
            .into();
            Some(Arc::clone(shared.fitted.insert(ridge)))
        }
    };
    let estimator = match (ridge, analog.clone()) {
        (Some(ridge), Some(analog)) => Estimator::Blend {
            ridge,
            plain: plain_ridge(ctx, n, window, RidgeStats::fit)?,
            analog,
            climatology_days: clim_days,
            weights: weights.clone(),
        },
        (Some(ridge), None) => Estimator::Ridge(ridge),
        (None, Some(analog)) => Estimator::Analog(analog),
        (None, None) => Estimator::Forest(fit_forest(ctx, n, window)?),
    };
    Ok(Fitted {
        params: ModelParams {
            train_window_steps: window,
            calibration_steps: cal,
            ridge_alpha,
            forest: use_forest.then(|| ctx.opts.forest.clone()),
            analog,
            climatology_days: (!weights.is_empty()).then_some(clim_days),
            blend_weights: weights,
        },
        intervals,
        estimator,
    })
}

/// Choose how the analog pools its neighbours (how many, mean or median) per block of
/// horizons on the held-out origins (each searches only its own past); returns the model and
/// its held-out predictions (original scale) for horizons `1..=h_max`.
fn validate_analog(
    ctx: &Context<'_>,
    filled: &FeatureFrame<'_>,
    holdout: &Holdout,
    h_max: usize,
) -> Result<(AnalogModel, Vec<Vec<f64>>), ForecastError> {
    let origins = &holdout.origins;
    let transform = ctx.spec.transform;
    let candidates = Pooling::grid();
    let max_k = candidates.iter().map(|p| p.k).max().unwrap_or(1);
    let table = descriptors(&ctx.raw, ctx.n);
    let nbrs: Vec<Vec<usize>> = origins
        .iter()
        .map(|&t| neighbours(&ctx.raw, &table, filled, t, h_max, HOUR_WINDOW, max_k))
        .collect();
    // changes[o][c][h-1]: origin `o`'s pooled change under candidate `c`.
    let changes: Vec<Vec<Vec<f64>>> = nbrs
        .iter()
        .map(|nb| pooled_changes_grid(&ctx.raw, nb, &candidates, h_max))
        .collect();
    // Held-out forecasts as `analog_levels` serves them (smoothed on the model's scale),
    // aligned with the holdout pairs, original scale, for candidate `pick(h)` at horizon h.
    let levels = holdout.levels(filled);
    let served = |pick: &dyn Fn(usize) -> usize| -> Vec<Vec<f64>> {
        let all: Vec<Vec<f64>> = (0..h_max)
            .map(|h| {
                let c = pick(h + 1);
                levels
                    .iter()
                    .zip(&changes)
                    .map(|(level, ch)| level + ch.get(c).and_then(|row| row.get(h)).unwrap_or(&0.0))
                    .collect()
            })
            .collect();
        let all = transform.inverse_rows(smooth_same_hour(&all, ctx.spec.period));
        holdout.align(&all)
    };
    let preds_by_candidate: Vec<Vec<Vec<f64>>> =
        (0..candidates.len()).map(|c| served(&|_| c)).collect();
    // err[h-1][f][c]: candidate c's absolute error at horizon h over half f's pairs.
    let err: Vec<[Vec<f64>; 2]> = (0..h_max)
        .map(|h| {
            let mut halves = [vec![0.0; candidates.len()], vec![0.0; candidates.len()]];
            for (c, preds) in preds_by_candidate.iter().enumerate() {
                for ((t, a), f) in holdout.pairs[h].iter().zip(&preds[h]) {
                    halves[holdout.fold(*t)][c] += (a - f).abs();
                }
            }
            halves
        })
        .collect();
    // Smoothing mixes neighbouring blocks' pooling, so the held-out forecasts are made anew.
    let (chosen, preds) = holdout.choose_cross_fitted(&err, &vec![0; h_max], |choice| {
        Ok(served(&|h| choice.get(h - 1).copied().unwrap_or(0)))
    })?;
    // `chosen` holds indices of `candidates`, so none is dropped.
    let pooling = chosen
        .iter()
        .filter_map(|&c| candidates.get(c).copied())
        .collect();
    Ok((
        AnalogModel {
            pooling,
            hour_window: HOUR_WINDOW,
        },
        preds,
    ))
}

/// Statistics of every horizon's ridge problem over origins in the trailing window whose
/// targets are before `end`. Rows touching a gap (in features or target) are left out.
fn ridge_stats(
    ctx: &Context<'_>,
    end: usize,
    window: usize,
) -> Result<Vec<RidgeStats>, ForecastError> {
    frame_ridge_stats(ctx, &ctx.raw, end, window)
}

fn frame_ridge_stats(
    ctx: &Context<'_>,
    frame: &FeatureFrame<'_>,
    end: usize,
    window: usize,
) -> Result<Vec<RidgeStats>, ForecastError> {
    let lo = (ctx.spec.lookback - 1).max(end.saturating_sub(window));
    let mut origins = Vec::new();
    let mut x = Vec::new();
    for t in lo..end.saturating_sub(1) {
        if let Some(row) = frame.lag_row(t) {
            origins.push(t);
            x.extend_from_slice(&row);
        }
    }
    horizon_stats(
        &x,
        N_LAG_FEATURES,
        &origins,
        end,
        ctx.cfg.horizon,
        |i, h| {
            let t = origins[i];
            if t + h < end {
                frame.target(t, h)
            } else {
                None
            }
        },
    )
}

/// Choose the ridge penalty and column set (one pair per block of horizons) on the
/// held-out origins; returns them per horizon (the set as an index into
/// [`ridge_column_sets`]) with the held-out predictions of the chosen models (original
/// scale, aligned with the holdout pairs), made by the serving code path
/// ([`ridge_levels`], smoothing included).
fn validate_ridge(
    ctx: &Context<'_>,
    filled: &FeatureFrame<'_>,
    holdout: &Holdout,
    split: usize,
    window: usize,
) -> Result<RidgeChoice, ForecastError> {
    let stats = ridge_stats(ctx, split, window)?;
    let transform = ctx.spec.transform;
    let sets = ridge_column_sets();
    // Candidates are (column set, penalty) pairs, index `s * RIDGE_ALPHAS.len() + a`.
    let n_cand = sets.len() * RIDGE_ALPHAS.len();
    // err_h[h-1][f][c]: candidate c's absolute error at horizon h over half f's pairs.
    let mut err_h: Vec<[Vec<f64>; 2]> = Vec::new();
    for (st, pairs) in stats.iter().zip(&holdout.pairs) {
        let mut halves = [vec![0.0; n_cand], vec![0.0; n_cand]];
        let rows: Vec<([f64; N_LAG_FEATURES], f64)> = pairs
            .iter()
            .map(|&(t, _)| {
                let row = filled.lag_row(t);
                let level = filled.level(t);
                row.zip(level)
                    .ok_or_else(|| ForecastError::FitFailed(format!("no features at {t}")))
            })
            .collect::<Result<_, _>>()?;
        for (si, cols) in sets.iter().enumerate() {
            let sub = st.subset(cols)?;
            for (ai, &alpha) in RIDGE_ALPHAS.iter().enumerate() {
                let ci = si * RIDGE_ALPHAS.len() + ai;
                let coefs = sub.solve(alpha)?;
                for ((row, level), (t, a)) in rows.iter().zip(pairs) {
                    let e = (a - transform.inverse(level + coefs.predict_one(row))).abs();
                    halves[holdout.fold(*t)][ci] += e;
                }
            }
        }
        err_h.push(halves);
    }
    let h_max = err_h.len();
    // Outside the blocks with pairs: the candidate best over every horizon.
    let best = (0..n_cand)
        .map(|c| err_h.iter().map(|e| e[0][c] + e[1][c]).sum::<f64>())
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    let settings = |choice: &[usize]| -> (Vec<f64>, Vec<usize>) {
        choice
            .iter()
            .map(|&i| (RIDGE_ALPHAS[i % RIDGE_ALPHAS.len()], i / RIDGE_ALPHAS.len()))
            .unzip()
    };
    // One (set, penalty) per block of horizons (the analog's blocks): far horizons may want
    // other columns and more shrinkage than near ones, but one choice per horizon would
    // chase noise. The held-out forecasts the blend weights and intervals are learned from
    // are those the chosen models serve.
    let levels = holdout.levels(filled);
    let (chosen, preds) = holdout.choose_cross_fitted(&err_h, &vec![best; h_max], |choice| {
        let (alphas, cols) = settings(choice);
        let models = chosen_ridge(&stats, &alphas, &cols, RidgeStats::solve)?;
        let all = ridge_levels(&models, filled, &holdout.origins, &levels, h_max)?;
        Ok(holdout.align(&transform.inverse_rows(all)))
    })?;
    tracing::debug!(?chosen, "ridge column sets and penalties chosen");
    let (alphas, cols) = settings(&chosen);
    Ok((alphas, cols, preds))
}

/// Per horizon, the candidate with the least error `err(h, c)` (horizon index h, candidate
/// c) summed over its block of horizons ([`K_BLOCKS`]); a block where no horizon
/// `has_pairs` keeps `fallback` (one entry per horizon).
fn choose_per_block(
    n_cand: usize,
    err: impl Fn(usize, usize) -> f64,
    has_pairs: impl Fn(usize) -> bool,
    fallback: &[usize],
) -> Vec<usize> {
    let h_max = fallback.len();
    let mut chosen = fallback.to_vec();
    for (b, &first) in K_BLOCKS.iter().enumerate() {
        let lo = first - 1;
        let hi = K_BLOCKS.get(b + 1).map_or(h_max, |n| n - 1).min(h_max);
        if lo >= hi || !(lo..hi).any(&has_pairs) {
            continue;
        }
        // Each candidate's error over the block, once (not once per comparison).
        let block_err: Vec<f64> = (0..n_cand)
            .map(|c| (lo..hi).map(|h| err(h, c)).sum())
            .collect();
        if let Some(best) = (0..n_cand).min_by(|&x, &y| block_err[x].total_cmp(&block_err[y])) {
            chosen[lo..hi].fill(best);
        }
    }
    chosen
}

/// One ridge per horizon with its chosen penalty and column set (an index into
/// [`ridge_column_sets`]), made by `make`: [`RidgeStats::solve`] for the inner holdout,
/// [`RidgeStats::fit`] for the persisted model.
fn chosen_ridge<M>(
    stats: &[RidgeStats],
    alphas: &[f64],
    sets: &[usize],
    make: impl Fn(&RidgeStats, f64) -> Result<M, ForecastError>,
) -> Result<Vec<M>, ForecastError> {
    let all = ridge_column_sets();
    stats
        .iter()
        .zip(alphas)
        .zip(sets)
        .map(|((s, &alpha), &set)| {
            let cols = all
                .get(set)
                .ok_or_else(|| ForecastError::FitFailed("ridge column set out of range".into()))?;
            make(&s.subset(cols)?, alpha)
        })
        .collect()
}

/// The Blend's plain ridge (see `combine`) fitted on targets before `end`, one model per
/// horizon made by `make` (as in [`chosen_ridge`]). It sees the original scale: its frame
/// is rebuilt from the untransformed values.
fn plain_ridge<M>(
    ctx: &Context<'_>,
    end: usize,
    window: usize,
    make: impl Fn(&RidgeStats, f64) -> Result<M, ForecastError>,
) -> Result<Vec<M>, ForecastError> {
    let original = ctx.raw.rescaled(ctx.values);
    let cols: Vec<usize> = (0..N_PLAIN_LAG_FEATURES).collect();
    frame_ridge_stats(ctx, &original, end, window)?
        .iter()
        .map(|s| make(&s.subset(&cols)?, PLAIN_ALPHA))
        .collect()
}

/// The plain ridge's held-out predictions (original scale, aligned with the holdout pairs),
/// made by the serving code path (`models::plain_levels`).
fn validate_plain(
    ctx: &Context<'_>,
    filled: &FeatureFrame<'_>,
    holdout: &Holdout,
    split: usize,
    window: usize,
) -> Result<Option<Vec<Vec<f64>>>, ForecastError> {
    let fitted = plain_ridge(ctx, split, window, |s, alpha| {
        Ok((s.rows(), s.solve(alpha)?))
    })?;
    if fitted.iter().any(|(rows, _)| *rows < PLAIN_MIN_ROWS) {
        return Ok(None);
    }
    let models: Vec<_> = fitted.into_iter().map(|(_, m)| m).collect();
    let all = plain_levels(
        &models,
        filled,
        &holdout.origins,
        ctx.cfg.horizon,
        ctx.spec.transform,
    )?;
    Ok(Some(holdout.align(&all)))
}

/// Per-horizon penalties, column-set indices and held-out predictions.
type RidgeChoice = (Vec<f64>, Vec<usize>, Vec<Vec<f64>>);

/// Forest on (origin, horizon) pairs sampled from the trailing window before `end`.
fn fit_forest(ctx: &Context<'_>, end: usize, window: usize) -> Result<ForestModel, ForecastError> {
    let lo = (ctx.spec.lookback - 1).max(end.saturating_sub(window));
    let d = sample_design(&ctx.raw, lo, end, ctx.cfg.horizon, &ctx.opts.forest);
    ForestModel::fit(&d, &ctx.opts.forest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_of_horizons_takes_its_least_error_candidate_or_keeps_the_fallback() {
        // 60 horizons, blocks 1-6, 7-24, 25-48, 49-60; 3 candidates. Candidate 1 is best in
        // the first block, 2 in the second; the third block has no pairs; candidate 0 is
        // best in the last.
        let err = |h: usize, c: usize| -> f64 {
            let best = match h {
                0..=5 => 1,
                6..=23 => 2,
                _ => 0,
            };
            if c == best {
                1.0
            } else {
                2.0
            }
        };
        let chosen = choose_per_block(3, err, |h| !(24..48).contains(&h), &[7; 60]);
        assert_eq!(&chosen[..6], &[1; 6]);
        assert_eq!(&chosen[6..24], &[2; 18]);
        assert_eq!(&chosen[24..48], &[7; 24], "no pairs: the fallback stays");
        assert_eq!(&chosen[48..], &[0; 12]);
    }
}
