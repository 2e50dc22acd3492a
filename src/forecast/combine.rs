//! The Blend's combination: per-horizon weights over its members, learned out of sample.
//!
//! Members (in this order): the direct `Ridge`, the `Analog` ensemble, a plain lag ridge and
//! a recent climatology (the mean of the last [`CLIMATOLOGY_DAYS`] days at the target's time
//! of day). Ridge and Analog err differently at short horizons; further out neither knows
//! much more than "what this hour has looked like lately", and the climatology carries none
//! of their variance.
//!
//! The plain ridge is the established tool's model: one least-squares fit per horizon on the
//! last day's hourly lags, the 2- and 7-day lags and the time of day, on the original scale
//! (not the log scale of the others), with no penalty or column set chosen on the holdout.
//! `benches/peers.py` showed scikit-learn's version of it beating the engine at 1–120 h on
//! three of the seven bench stations (Sand Point 1.054 against the blend's 1.084): the rich
//! ridge's choices, made on four weeks of holdout, are noisy where the weather is, and the
//! plain model makes different errors. It joins from the second day on: inverse-MSE weights
//! also gave it a share in the first day, where it is the weakest, and the bench's mean MASE
//! 1–24 h went from 0.752 to 0.760.
//!
//! The analog leaves after the first day, the mirror image: it knows the next hours from
//! what followed similar hours, but days ahead its pooled changes are those of whatever
//! regime its library holds. In rooms going from March into April it scored like the ridges
//! on four weeks of holdout, took a third of the weight, then lost to them in the scored
//! window (one room at 1–120 h: analog 1.595, rich ridge 1.426). Without it past the first
//! day the bench's indoor rooms went from 1.440 to 1.414 at 1–120 h, the outdoor years from
//! 1.011 to 1.012, and young outdoor sensors from 1.107 to 1.118 (there its long-horizon
//! say helped): a trade made for the sensors where the engine lost to the established
//! tools (ratio 1.033 → 1.016), while it still beats them on young sensors (0.983 → 0.992).
//! With no say past the first day it forecasts no further ([`ANALOG_DAYS`]), so its library
//! may hold situations a day old instead of five: the same scores (outdoor years 0.752 /
//! 1.012 both, young sensors 0.830 / 1.118 → 0.829 / 1.117, indoor rooms 0.925 / 1.414 →
//! 0.926 / 1.415) for a fifth less time per backtest.
//!
//! On a grid finer than hourly, "the first day" of the analog's rule is the first 24 steps
//! ([`blend_first_block`]): there a 120-step forecast lies wholly within a day. There, and
//! on a series whose daily cycle is weak (a room's), the plain ridge has a say from the
//! first step ([`blend_plain_from`]): it is the weakest member only in the first hours of
//! a strong daily cycle.
//!
//! The weights are learned on the inner-validation forecasts that `training` already makes
//! (members fitted before the split forecast the origins after it, so every forecast is out
//! of sample and nothing after the end of the training data is used), in two stages, each
//! with very few degrees of freedom because a few weeks of weather are a small sample:
//! 1. Ridge vs Analog in the first day, Ridge vs the plain ridge after it: inverse mean
//!    squared error (Bates-Granger), per horizon with the errors of neighbouring horizons
//!    pooled (a window that widens with the horizon, cut to the horizons that every member
//!    weighed there forecasts, so they are compared on the same pairs). Weights by inverse
//!    squared mean absolute error, less swayed by a few fog misses, came out the same.
//! 2. Shrinkage of that mix toward the climatology by `λ(h)`: the λ in [0, 1] (a grid of
//!    0.05) with the least absolute error on the pooled held-out pairs, then made
//!    non-decreasing in the horizon (isotonic regression): what the present says about the
//!    future can only fade. Least absolute error because forecasts are judged by MAE and
//!    humidity errors are heavy-tailed (fog and rain pin it at 100 %); the least-squares
//!    optimum `Σ(y-b)(c-b) / Σ(c-b)²` it replaced scored 0.4 % worse at 1–120 h on the
//!    mean of the seven outdoor bench years. Half of that λ is served ([`CLIMATOLOGY_SHRINK`]):
//!    the estimate is noisy, and shrunk toward none it made the forecasts better on every
//!    bench set.
//!
//! In both stages a held-out pair's error counts half as much for every [`HALF_LIFE_DAYS`]
//! its origin lies before the last one: which member to trust drifts with the season, so the
//! latest weeks of a four-week holdout say most about the weeks ahead. Measured on the three
//! bench sets against counting every pair alike: outdoor years 0.752 / 1.012 → 0.751 / 1.010
//! (Greensboro 1.248 → 1.245), young sensors 0.829 / 1.117 → 0.829 / 1.117, indoor rooms
//! 0.926 / 1.415 → 0.926 / 1.410. A half-life of 7 days scored the same within 0.2 %.
//!
//! Free per-horizon weights fitted by minimum error (a simplex grid per horizon) and plain
//! inverse-MSE weights over the climatology too were tried first: both overfitted the holdout
//! (extreme, jumpy weights, or too much climatology in the first day) and lost MASE 1-24 on
//! several series. Every weight vector is non-negative and sums to 1; with too few held-out
//! pairs a horizon keeps the prior (equal Ridge and Analog, nothing else).

use std::ops::Range;

use super::features::{FeatureFrame, Transform, LAGS_PER_DAY};
use super::ForecastError;

/// Days ahead the Blend's analog forecasts (and may have weight): the first. Forecasting no
/// further also lets its library hold situations a day old rather than five.
pub const ANALOG_DAYS: usize = 1;

/// Steps of the Blend's first block, in which the analog has a say and after which the plain
/// ridge has one: the first day ([`ANALOG_DAYS`]) on hourly or coarser steps, and from
/// feature version 3 on the first 24 steps on a finer grid. The analog's edge is the next
/// hours, not the next day: on eight indoor rooms at 10-minute steps (`SERIES=indoor10`,
/// 120 steps = 20 hours, so all of it "the first day"), the analog alone scored MASE 1.081
/// at steps 1-120 against the rich ridge's 1.045, and with the block cut to 4 hours the
/// blend went from 0.693 / 1.046 to 0.693 / 1.021 (steps 1-24 / 1-120; at 1-120 five rooms
/// better by 3-7 %, three worse by at most 1.5 %). Models fitted before keep the block their
/// weights were learned for.
pub fn blend_first_block(frame: &FeatureFrame<'_>) -> usize {
    let day = ANALOG_DAYS * frame.period().max(1);
    if frame.feature_version() >= 3 {
        day.min(LAGS_PER_DAY)
    } else {
        day
    }
}

/// Below this share of its variance in the mean daily cycle
/// ([`FeatureFrame::daily_cycle_share`]) a series' cycle is weak, and the plain ridge has a
/// say in the Blend's first block too.
pub const WEAK_DAILY_CYCLE: f64 = 0.2;

/// First horizon index (0-based) at which the Blend's plain ridge may have weight: after
/// the first block ([`blend_first_block`]) where the series has a strong daily cycle, from
/// the first step where its cycle is weak (`cycle_share`, of the original values, below
/// [`WEAK_DAILY_CYCLE`]) or the grid is finer than hourly.
///
/// In the first hours of a strong cycle the rich ridge, whose weights depend on the
/// origin's time of day, and the analog know more than the plain ridge, whose share there
/// cost the outdoor years 0.751 → 0.759 at 1-24 h (Amsterdam 0.552 → 0.567). Where the
/// cycle is weak they know no more: the eight indoor rooms (hourly, shares 0.005–0.165)
/// all gained at 1-24 h, 0.926 → 0.910, and so did Sand Point (0.05, 0.836 → 0.834),
/// while the other outdoor years hold 0.24–0.34. On eight rooms at 10-minute steps
/// (`SERIES=indoor10`) a say in the first 24 steps took the blend from 0.693 / 1.020 to
/// 0.678 / 1.018 (steps 1-24 / 1-120): seven rooms better at steps 1-24, room 9, where
/// the last value beats every model in the first hours, most (0.695 → 0.658), room 4
/// 0.2 % worse, and no room worse at steps 1-120. Only the weights learned at training
/// follow this rule, so models fitted before it keep theirs.
pub fn blend_plain_from(frame: &FeatureFrame<'_>, cycle_share: Option<f64>) -> usize {
    let weak = cycle_share.is_some_and(|s| s < WEAK_DAILY_CYCLE);
    if frame.period() > LAGS_PER_DAY || weak {
        0
    } else {
        blend_first_block(frame)
    }
}

/// Horizons the Blend's analog forecasts when the Blend forecasts `horizon` steps of the
/// series of `frame`.
pub fn blend_analog_horizon(horizon: usize, frame: &FeatureFrame<'_>) -> usize {
    blend_first_block(frame).min(horizon)
}

/// Number of Blend members: ridge, analog, plain ridge, climatology.
pub const MEMBERS: usize = 4;
/// Members combined by inverse mean squared error (all but the climatology, the last).
const LEARNED: usize = MEMBERS - 1;
/// Weights when nothing can be learned: the equal Ridge/Analog blend.
pub const PRIOR: [f64; MEMBERS] = [0.5, 0.5, 0.0, 0.0];
/// Days averaged by the climatology member. Short, so it follows changes of season and
/// weather regime (14 and 7 days were worse on the outdoor bench years at both horizon blocks).
pub const CLIMATOLOGY_DAYS: usize = 3;
/// Age, in days before the last held-out origin, at which a held-out pair's errors count
/// half as much in both stages of the weights (Bates and Granger's discounted errors): which
/// member to trust drifts with the season, and the latest weeks say most about the next.
pub const HALF_LIFE_DAYS: f64 = 14.0;
/// Part of the climatology's learned share `λ(h)` that the Blend serves: half, the rest goes
/// back to the mix of the other members. λ is the argmin of a flat curve estimated on four
/// weeks of weather, a few independent episodes: from one day's origin to the next it jumps
/// (at 120 h, 0 → 0.85 → 0.45 → 0 on the NSRDB year), and the climatology, served in full,
/// helped as often as it hurt (outdoor years at 1–120 h: without it Greensboro, Miami, NSRDB
/// and Sand Point 0.2–1.8 % better, Amsterdam, Burlington and the PVGIS year 0.8–4.2 %
/// worse). Shrinking an estimated combination weight toward its prior (here none: the
/// climatology is the member with no say by default) is the textbook cure for such noise
/// (Diebold and Pauly 1990). Served at 0, 0.3, 0.5 and 1 times λ, the outdoor years' mean at
/// 1–120 h was 1.012, 1.009, 1.008 and 1.010; at a half, young sensors went from 1.117 to
/// 1.103, the indoor rooms from 1.406 to 1.399 and the rooms on 10-minute steps from 1.018
/// to 1.010.
pub const CLIMATOLOGY_SHRINK: f64 = 0.5;
/// Fewest pooled held-out pairs for which weights are learned at a horizon.
const MIN_PAIRS: usize = 100;
/// Points of the grid on which the climatology share λ is searched: 0, 0.05, …, 1.
const LAMBDA_GRID: usize = 21;

fn grid_lambda(g: usize) -> f64 {
    g as f64 / (LAMBDA_GRID - 1) as f64
}

/// Per-horizon weights, `w[h-1][m]` for member `m`.
pub type Weights = Vec<[f64; MEMBERS]>;

/// Mean of the last `days` observed same-time-of-day values before the target, original
/// scale: `out[h-1][k]` for origin `origins[k]`. Falls back to the level at the origin when
/// no such day is in the history.
pub fn climatology_levels(
    frame: &FeatureFrame<'_>,
    origins: &[usize],
    horizon: usize,
    days: usize,
    transform: Transform,
) -> Vec<Vec<f64>> {
    let p = frame.period().max(1);
    (1..=horizon)
        .map(|h| {
            let d0 = h.div_ceil(p);
            origins
                .iter()
                .map(|&t| {
                    let (mut sum, mut n) = (0.0, 0usize);
                    for d in d0..d0 + days.max(1) {
                        let Some(i) = (t + h).checked_sub(d * p) else {
                            break;
                        };
                        if let Some(v) = frame.level(i) {
                            sum += transform.inverse(v);
                            n += 1;
                        }
                    }
                    if n > 0 {
                        sum / n as f64
                    } else {
                        frame.level(t).map_or(0.0, |v| transform.inverse(v))
                    }
                })
                .collect()
        })
        .collect()
}

/// `Σ w[h][m] · members[m][h][k]`, horizon by horizon. A member without weight at a horizon
/// is left out there: it may have no forecasts for it (the analog past the first day), and a
/// non-finite forecast of one the holdout gave no say cannot make the blend NaN (0 × ∞).
/// A member with weight but without forecasts for that horizon is an error.
pub fn combine(
    members: &[Vec<Vec<f64>>; MEMBERS],
    weights: &[[f64; MEMBERS]],
) -> Result<Vec<Vec<f64>>, ForecastError> {
    weights
        .iter()
        .enumerate()
        .map(|(h, w)| {
            let weighted: Vec<(f64, &[f64])> = (0..MEMBERS)
                .filter(|&m| w[m] != 0.0)
                .map(|m| {
                    members[m]
                        .get(h)
                        .map(|rows| (w[m], rows.as_slice()))
                        .ok_or_else(|| {
                            ForecastError::PredictFailed(format!(
                                "blend member {m} has weight but no forecast at horizon {}",
                                h + 1
                            ))
                        })
                })
                .collect::<Result<_, _>>()?;
            let n = weighted
                .iter()
                .map(|(_, rows)| rows.len())
                .min()
                .unwrap_or(0);
            Ok((0..n)
                .map(|k| weighted.iter().map(|(w, rows)| w * rows[k]).sum())
                .collect())
        })
        .collect()
}

/// Horizons pooled with horizon index `h` (0-based): about ±25 %, at least ±2.
fn pool(h: usize, horizon: usize) -> (usize, usize) {
    let r = ((h + 1) / 4).max(2);
    (h.saturating_sub(r), (h + r).min(horizon.saturating_sub(1)))
}

/// Learn per-horizon weights from held-out forecasts (see the module docs):
/// `members[m][h-1][i]` is member m's forecast of `actual[h-1][i]`. A member has no weight at
/// a horizon for which it has no forecasts lined up with the actuals (the analog past the
/// first day, an absent plain ridge), nor outside `spans[m]`, the horizon indices (0-based)
/// at which learned member m may have weight: the analog's is the first day, the plain
/// ridge's from the second day on. Learned members are compared on the horizons of the
/// pooling window they all forecast.
/// `age_days[h-1][i]` is pair i's age in days (see [`HALF_LIFE_DAYS`]); a pair without one
/// (an empty `age_days`) counts in full.
/// Every returned vector is non-negative and sums to 1.
pub fn learn_weights(
    members: &[Vec<Vec<f64>>; MEMBERS],
    actual: &[Vec<f64>],
    age_days: &[Vec<f64>],
    spans: &[Range<usize>; LEARNED],
) -> Weights {
    let horizon = actual.len();
    // Each pair's say in both stages, computed once: half as much per HALF_LIFE_DAYS of age.
    let says: Vec<Vec<f64>> = actual
        .iter()
        .enumerate()
        .map(|(h, a)| {
            (0..a.len())
                .map(|i| {
                    let age = age_days.get(h).and_then(|a| a.get(i)).copied();
                    0.5f64.powf(age.unwrap_or(0.0).max(0.0) / HALF_LIFE_DAYS)
                })
                .collect()
        })
        .collect();
    let say = |h: usize, i: usize| says[h][i];
    // Horizons (from 0) for which each member's forecasts line up with the actuals.
    let lined_up: [usize; MEMBERS] = members.each_ref().map(|m| {
        m.iter()
            .zip(actual)
            .take_while(|(rows, a)| rows.len() == a.len())
            .count()
    });
    let has = |m: usize, h: usize| h < lined_up[m];
    // The pairs both stages learn from: a finite actual, and a finite forecast from every
    // member forecasting that horizon.
    let usable = |h: usize, i: usize| {
        actual[h][i].is_finite() && (0..MEMBERS).all(|m| !has(m, h) || members[m][h][i].is_finite())
    };
    // Stage 1 statistics: pairs and squared errors of the learned members per horizon.
    let mut cnt = vec![0usize; horizon];
    let mut sq = vec![[0.0; LEARNED]; horizon];
    for h in 0..horizon {
        for (i, &a) in actual[h].iter().enumerate().filter(|&(i, _)| usable(h, i)) {
            cnt[h] += 1;
            let w = say(h, i);
            for m in (0..LEARNED).filter(|&m| has(m, h)) {
                sq[h][m] += w * (a - members[m][h][i]) * (a - members[m][h][i]);
            }
        }
    }
    let pairs_in = |lo: usize, hi: usize| -> usize { cnt[lo..=hi].iter().sum() };
    let shares: Vec<[f64; LEARNED]> = (0..horizon)
        .map(|h| {
            let allowed: [bool; LEARNED] =
                std::array::from_fn(|m| spans[m].contains(&h) && has(m, h));
            // The pooling window, cut to the horizons every allowed member forecasts.
            let (lo, hi) = pool(h, horizon);
            let hi = (0..LEARNED)
                .filter(|&m| allowed[m])
                .map(|m| lined_up[m] - 1)
                .fold(hi, usize::min);
            let mut e = [0.0; LEARNED];
            for row in &sq[lo..=hi] {
                e.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            // An infinite error is a zero weight.
            for (e, _) in e.iter_mut().zip(allowed).filter(|(_, ok)| !ok) {
                *e = f64::INFINITY;
            }
            let ok = pairs_in(lo, hi) >= MIN_PAIRS && e.iter().all(|v| *v > 0.0 && !v.is_nan());
            let mut w = [0.0; LEARNED];
            if ok {
                let inv: f64 = e.iter().map(|v| 1.0 / v).sum();
                w.iter_mut().zip(&e).for_each(|(w, v)| *w = (1.0 / v) / inv);
            } else {
                // The prior, among the members this horizon may weigh (the ridge alone past
                // the others' spans).
                for ((wm, prior), ok) in w.iter_mut().zip(PRIOR).zip(allowed) {
                    *wm = if ok { prior } else { 0.0 };
                }
                let total: f64 = w.iter().sum();
                if total > 0.0 {
                    w.iter_mut().for_each(|v| *v /= total);
                } else {
                    w = [1.0, 0.0, 0.0];
                }
            }
            w
        })
        .collect();
    // Stage 2: the climatology's share, on the same pairs.
    let mut err = vec![[0.0; LAMBDA_GRID]; horizon];
    for h in 0..horizon {
        let w = shares[h];
        let weighted: Vec<usize> = (0..LEARNED).filter(|&m| w[m] != 0.0).collect();
        if !has(LEARNED, h) || !weighted.iter().all(|&m| has(m, h)) {
            continue;
        }
        for (i, &a) in actual[h].iter().enumerate().filter(|&(i, _)| usable(h, i)) {
            let b: f64 = weighted.iter().map(|&m| w[m] * members[m][h][i]).sum();
            let c = members[LEARNED][h][i];
            let w = say(h, i);
            for (g, e) in err[h].iter_mut().enumerate() {
                *e += w * (a - b - grid_lambda(g) * (c - b)).abs();
            }
        }
    }
    let (lambda, trust): (Vec<f64>, Vec<f64>) = (0..horizon)
        .map(|h| {
            let (lo, hi) = pool(h, horizon);
            let n = pairs_in(lo, hi);
            let mut pooled = [0.0; LAMBDA_GRID];
            for e in &err[lo..=hi] {
                pooled.iter_mut().zip(e).for_each(|(p, v)| *p += v);
            }
            let best = (0..LAMBDA_GRID).min_by(|&x, &y| pooled[x].total_cmp(&pooled[y]));
            match best {
                Some(g) if n >= MIN_PAIRS && pooled[g].is_finite() => (grid_lambda(g), n as f64),
                _ => (PRIOR[LEARNED], 0.0),
            }
        })
        .unzip();
    isotonic(&lambda, &trust)
        .into_iter()
        .zip(shares)
        .map(|(l, w)| {
            let l = CLIMATOLOGY_SHRINK * l.clamp(0.0, 1.0);
            let mut out = [0.0; MEMBERS];
            for m in 0..LEARNED {
                out[m] = (1.0 - l) * w[m];
            }
            out[LEARNED] = l;
            out
        })
        .collect()
}

/// Weighted least-squares non-decreasing fit (pool adjacent violators); zero weights count
/// as negligible, not as absent.
pub fn isotonic(y: &[f64], w: &[f64]) -> Vec<f64> {
    // blocks: (mean, weight, len)
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(y.len());
    for (&v, &wt) in y.iter().zip(w) {
        let wt = if wt > 0.0 { wt } else { 1e-9 };
        blocks.push((v, wt, 1));
        while blocks.len() >= 2 {
            let k = blocks.len();
            let (m2, w2, l2) = blocks[k - 1];
            let (m1, w1, l1) = blocks[k - 2];
            if m1 <= m2 {
                break;
            }
            blocks.truncate(k - 2);
            blocks.push(((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, l1 + l2));
        }
    }
    blocks
        .into_iter()
        .flat_map(|(m, _, l)| std::iter::repeat(m).take(l))
        .collect()
}
