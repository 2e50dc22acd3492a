//! Direct ridge regression, one model per horizon, fitted by smartcore from sufficient
//! statistics.
//!
//! All horizons share one origin-only design matrix (see `FeatureFrame::lag_row`); horizon
//! h uses the rows whose target `y[t+h]` is observed and before the end of the training data.
//! Those row sets are nested (a longer horizon loses the latest origins), so one pass over
//! the rows builds every horizon's Gram matrix `ZᵀZ` incrementally, and each horizon only
//! adds its own `Zᵀy`. smartcore's ridge would form `XᵀX` with a generic matmul for each of
//! 120 horizons (~15 ms each); instead we hand it the exactly equivalent compressed problem
//! `A = Lᵀ` (plus a zero row, as smartcore wants n > p) and `z = L⁻¹c` where `G = LLᵀ`:
//! `AᵀA = G` and `Aᵀz = c`, so smartcore returns the very same coefficients.
//! The penalty is chosen on held-out origins with a small Cholesky solver of our own (it
//! solves the same equations; a unit test checks they agree), so only the final models go
//! through smartcore.

use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{
    RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName,
};

use super::{guarded, ForecastError};

type SmartRidge = RidgeRegression<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// Training rows (row-major, `p` columns) with the origin step of each row.
#[derive(Debug, Default)]
pub struct Design {
    pub p: usize,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

impl Design {
    pub fn new(p: usize) -> Self {
        Design {
            p,
            x: Vec::new(),
            y: Vec::new(),
        }
    }

    pub fn push(&mut self, row: &[f64], target: f64) {
        self.x.extend_from_slice(row);
        self.y.push(target);
    }

    pub fn rows(&self) -> usize {
        self.y.len()
    }
}

/// Sufficient statistics of one horizon's centred, standardised ridge problem.
#[derive(Debug, Clone)]
pub struct RidgeStats {
    n: usize,
    /// Column centre and scale in feature space (prediction uses `(x - mean) / scale`).
    mean: Vec<f64>,
    scale: Vec<f64>,
    y_mean: f64,
    /// Centred `ZᵀZ` (p × p, row-major) and `Zᵀy`.
    g: Vec<f64>,
    c: Vec<f64>,
    /// Columns of the full feature row this problem uses (all of them unless `subset`).
    cols: Vec<usize>,
}

/// Build the statistics of every horizon `1..=horizon`.
///
/// `x` holds one row per origin in `origins` (ascending). `target(i, h)` is the target of row
/// `i` at horizon `h`, or `None` when it is missing or at/after the end of the training data
/// (such rows are left out of that horizon only).
pub fn horizon_stats(
    x: &[f64],
    p: usize,
    origins: &[usize],
    end: usize,
    horizon: usize,
    target: impl Fn(usize, usize) -> Option<f64>,
) -> Result<Vec<RidgeStats>, ForecastError> {
    let n = origins.len();
    if n < 2 || p == 0 || x.len() != n * p {
        return Err(ForecastError::TooLittleData(format!(
            "ridge needs at least 2 training rows, got {n}"
        )));
    }
    // Fixed standardisation over all rows; each horizon re-centres exactly below.
    let nf = n as f64;
    let mut m = vec![0.0; p];
    for row in x.chunks_exact(p) {
        m.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    m.iter_mut().for_each(|a| *a /= nf);
    let mut var = vec![0.0; p];
    for row in x.chunks_exact(p) {
        for ((s, v), mu) in var.iter_mut().zip(row).zip(&m) {
            *s += (v - mu) * (v - mu);
        }
    }
    // A constant column is left unscaled: it centres to zeros and the penalty keeps its
    // coefficient at zero.
    let scale: Vec<f64> = var
        .iter()
        .map(|v| {
            let sd = (v / nf).sqrt();
            if sd > 1e-9 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    let z: Vec<f64> = x
        .chunks_exact(p)
        .flat_map(|row| {
            (0..p)
                .map(|j| (row[j] - m[j]) / scale[j])
                .collect::<Vec<_>>()
        })
        .collect();

    // Rows usable at horizon h have origin t with t + h < end; walk h downwards so the row
    // set only grows.
    let mut g_acc = vec![0.0; p * p]; // lower triangle
    let mut s_acc = vec![0.0; p];
    let mut k = 0usize; // rows 0..k are in the accumulator
    let mut out: Vec<RidgeStats> = Vec::with_capacity(horizon);
    for h in (1..=horizon).rev() {
        while k < n && origins[k] + h < end {
            add_outer(&mut g_acc, &mut s_acc, &z[k * p..(k + 1) * p], 1.0);
            k += 1;
        }
        let mut g = g_acc.clone();
        let mut s = s_acc.clone();
        let mut c = vec![0.0; p];
        let (mut sy, mut cnt) = (0.0, 0usize);
        for i in 0..k {
            let zi = &z[i * p..(i + 1) * p];
            match target(i, h) {
                Some(y) => {
                    sy += y;
                    cnt += 1;
                    c.iter_mut().zip(zi).for_each(|(a, v)| *a += v * y);
                }
                // Missing target: take the row back out of this horizon's statistics.
                None => add_outer(&mut g, &mut s, zi, -1.0),
            }
        }
        if cnt < 2 {
            return Err(ForecastError::TooLittleData(format!(
                "ridge horizon {h} has {cnt} training rows"
            )));
        }
        let nh = cnt as f64;
        let y_mean = sy / nh;
        let zbar: Vec<f64> = s.iter().map(|v| v / nh).collect();
        // Centre: G - n z̄z̄ᵀ, c - n z̄ ȳ; fill the upper triangle.
        for i in 0..p {
            for j in 0..=i {
                let v = g[i * p + j] - nh * zbar[i] * zbar[j];
                g[i * p + j] = v;
                g[j * p + i] = v;
            }
            c[i] -= nh * zbar[i] * y_mean;
        }
        if !(g.iter().all(|v| v.is_finite()) && c.iter().all(|v| v.is_finite())) {
            return Err(ForecastError::FitFailed(
                "ridge statistics are not finite".into(),
            ));
        }
        let mean = (0..p).map(|j| m[j] + scale[j] * zbar[j]).collect();
        out.push(RidgeStats {
            n: cnt,
            mean,
            scale: scale.clone(),
            y_mean,
            g,
            c,
            cols: (0..p).collect(),
        });
    }
    out.reverse();
    Ok(out)
}

/// `g += sign·zzᵀ` (lower triangle) and `s += sign·z`.
fn add_outer(g: &mut [f64], s: &mut [f64], z: &[f64], sign: f64) {
    let p = z.len();
    for i in 0..p {
        let zi = sign * z[i];
        s[i] += zi;
        for (gij, zj) in g[i * p..i * p + i + 1].iter_mut().zip(&z[..=i]) {
            *gij += zi * zj;
        }
    }
}

impl RidgeStats {
    /// Training rows the statistics were taken over.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The same problem restricted to the feature columns `cols` (ascending, in range): the
    /// sub-blocks of the centred statistics are exactly the statistics of the smaller design.
    pub fn subset(&self, cols: &[usize]) -> Result<RidgeStats, ForecastError> {
        let p = self.c.len();
        if cols.is_empty() || cols.iter().any(|&j| j >= p) {
            return Err(ForecastError::FitFailed(
                "ridge column subset out of range".into(),
            ));
        }
        let pick = |v: &[f64]| cols.iter().map(|&j| v[j]).collect::<Vec<_>>();
        let g = cols
            .iter()
            .flat_map(|&i| cols.iter().map(move |&j| (i, j)))
            .map(|(i, j)| self.g[i * p + j])
            .collect();
        Ok(RidgeStats {
            n: self.n,
            mean: pick(&self.mean),
            scale: pick(&self.scale),
            y_mean: self.y_mean,
            g,
            c: pick(&self.c),
            cols: cols.iter().map(|&j| self.cols[j]).collect(),
        })
    }

    /// Coefficients for penalty `alpha_per_row * n`, by our own Cholesky solve (used for
    /// choosing the penalty; the persisted model comes from [`RidgeStats::fit`]).
    pub fn solve(&self, alpha_per_row: f64) -> Result<LinearCoefs, ForecastError> {
        let p = self.c.len();
        let alpha = alpha_per_row * self.n as f64;
        let mut a = self.g.clone();
        for i in 0..p {
            a[i * p + i] += alpha;
        }
        let l = cholesky_with_jitter(&a, p)?;
        let y = forward(&l, &self.c, p);
        let w = backward(&l, &y, p);
        Ok(LinearCoefs {
            mean: self.mean.clone(),
            scale: self.scale.clone(),
            y_mean: self.y_mean,
            w,
            cols: self.cols.clone(),
        })
    }

    /// The persisted smartcore model for penalty `alpha_per_row * n`.
    pub fn fit(&self, alpha_per_row: f64) -> Result<RidgeHorizon, ForecastError> {
        let p = self.c.len();
        let l = cholesky_with_jitter(&self.g, p)?;
        let mut z = forward(&l, &self.c, p);
        z.push(0.0);
        // A = Lᵀ (upper triangular), plus a zero row.
        let mut a = vec![0.0; (p + 1) * p];
        for i in 0..p {
            for j in i..p {
                a[i * p + j] = l[j * p + i];
            }
        }
        let a = DenseMatrix::new(p + 1, p, a, false)
            .map_err(|e| ForecastError::FitFailed(e.to_string()))?;
        let params = RidgeRegressionParameters::default()
            .with_alpha(alpha_per_row * self.n as f64)
            .with_normalize(false)
            .with_solver(RidgeRegressionSolverName::Cholesky);
        let model = guarded("ridge fit", || {
            SmartRidge::fit(&a, &z, params).map_err(|e| ForecastError::FitFailed(e.to_string()))
        })?;
        Ok(RidgeHorizon {
            model,
            mean: self.mean.clone(),
            scale: self.scale.clone(),
            y_mean: self.y_mean,
            cols: self.cols.clone(),
        })
    }
}

/// Solve `L y = b` (L lower triangular, row-major).
fn forward(l: &[f64], b: &[f64], p: usize) -> Vec<f64> {
    let mut y = vec![0.0; p];
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    y
}

/// Solve `Lᵀ x = y`.
fn backward(l: &[f64], y: &[f64], p: usize) -> Vec<f64> {
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    x
}

/// Lower-triangular `L` with `LLᵀ = G + εI`; ε grows until the factorisation succeeds.
fn cholesky_with_jitter(g: &[f64], p: usize) -> Result<Vec<f64>, ForecastError> {
    let trace: f64 = (0..p).map(|i| g[i * p + i]).sum();
    let mut eps = 1e-10 * (trace / p as f64).max(1.0);
    for _ in 0..8 {
        if let Some(l) = cholesky(g, p, eps) {
            return Ok(l);
        }
        eps *= 100.0;
    }
    Err(ForecastError::FitFailed(
        "ridge gram matrix is not positive definite".into(),
    ))
}

fn cholesky(g: &[f64], p: usize, eps: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = g[i * p + j] + if i == j { eps } else { 0.0 };
            // Sliced rather than indexed, so the hot loop has no bounds checks; the same
            // operations in the same order, so the same result to the bit.
            for (a, b) in l[i * p..i * p + j].iter().zip(&l[j * p..j * p + j]) {
                s -= a * b;
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    Some(l)
}

/// Plain coefficients, used only during inner validation.
#[derive(Debug, Clone)]
pub struct LinearCoefs {
    mean: Vec<f64>,
    scale: Vec<f64>,
    y_mean: f64,
    w: Vec<f64>,
    cols: Vec<usize>,
}

impl LinearCoefs {
    /// Prediction for one full feature row (the coefficients pick their own columns).
    pub fn predict_one(&self, x: &[f64]) -> f64 {
        let mut s = self.y_mean;
        for (k, (&j, w)) in self.cols.iter().zip(&self.w).enumerate() {
            s += w * (x.get(j).copied().unwrap_or(0.0) - self.mean[k]) / self.scale[k];
        }
        s
    }
}

/// A horizon's linear model applied to row-major full feature rows: the persisted
/// [`RidgeHorizon`] when serving, [`LinearCoefs`] during inner validation, so both go
/// through the same `models::ridge_levels`.
pub trait PredictRows {
    fn predict_rows(&self, x: &[f64], width: usize) -> Result<Vec<f64>, ForecastError>;
}

impl PredictRows for LinearCoefs {
    fn predict_rows(&self, x: &[f64], width: usize) -> Result<Vec<f64>, ForecastError> {
        if width == 0 || x.len() % width != 0 {
            return Err(ForecastError::PredictFailed("ridge: bad row width".into()));
        }
        Ok(x.chunks_exact(width).map(|r| self.predict_one(r)).collect())
    }
}

impl PredictRows for RidgeHorizon {
    fn predict_rows(&self, x: &[f64], width: usize) -> Result<Vec<f64>, ForecastError> {
        self.predict(x, width)
    }
}

/// One fitted horizon: smartcore coefficients on standardised features plus the scaling,
/// and which columns of the full feature row it uses (chosen per block of horizons).
#[derive(Debug, Serialize, Deserialize)]
pub struct RidgeHorizon {
    model: SmartRidge,
    mean: Vec<f64>,
    scale: Vec<f64>,
    y_mean: f64,
    cols: Vec<usize>,
}

impl RidgeHorizon {
    /// Predict for row-major `x` with `width` columns (full feature rows).
    pub fn predict(&self, x: &[f64], width: usize) -> Result<Vec<f64>, ForecastError> {
        let p = self.mean.len();
        if p == 0
            || width == 0
            || x.len() % width != 0
            || self.cols.len() != p
            || self.scale.len() != p
            || self.cols.iter().any(|&j| j >= width)
        {
            return Err(ForecastError::PredictFailed("ridge: bad row width".into()));
        }
        let n = x.len() / width;
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut z = Vec::with_capacity(n * p);
        for row in x.chunks_exact(width) {
            z.extend(
                self.cols
                    .iter()
                    .zip(&self.mean)
                    .zip(&self.scale)
                    .map(|((&j, m), s)| (row[j] - m) / s),
            );
        }
        let m = DenseMatrix::new(n, p, z, false)
            .map_err(|e| ForecastError::PredictFailed(e.to_string()))?;
        let pred = guarded("ridge predict", || {
            self.model
                .predict(&m)
                .map_err(|e| ForecastError::PredictFailed(e.to_string()))
        })?;
        Ok(pred.into_iter().map(|v| v + self.y_mean).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn compressed_smartcore_fit_matches_direct_fit_and_own_solver() {
        let mut rnd = lcg(7);
        let p = 3;
        let n = 200;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let r = [rnd(), rnd() * 10.0, 5.0];
            y.push(2.0 * r[0] - 0.3 * r[1] + 1.0 + 0.01 * rnd());
            x.extend_from_slice(&r);
        }
        let origins: Vec<usize> = (0..n).collect();
        // One horizon, every target present.
        let stats = horizon_stats(&x, p, &origins, n + 1, 1, |i, _| Some(y[i])).expect("stats");
        let fitted = stats[0].fit(0.01).expect("fit");
        let pred = fitted.predict(&x, p).expect("predict");
        let own = stats[0].solve(0.01).expect("solve");
        // Reference: smartcore on the full standardised design.
        let st = &stats[0];
        let z: Vec<f64> = x
            .chunks_exact(p)
            .flat_map(|r| {
                (0..p)
                    .map(|j| (r[j] - st.mean[j]) / st.scale[j])
                    .collect::<Vec<_>>()
            })
            .collect();
        let zm = DenseMatrix::new(n, p, z, false).expect("matrix");
        let yc: Vec<f64> = y.iter().map(|v| v - st.y_mean).collect();
        let reference = SmartRidge::fit(
            &zm,
            &yc,
            RidgeRegressionParameters::default()
                .with_alpha(0.01 * n as f64)
                .with_normalize(false),
        )
        .expect("reference fit");
        let ref_pred = reference.predict(&zm).expect("reference predict");
        for (i, (a, b)) in pred.iter().zip(&ref_pred).enumerate() {
            assert!((a - (b + st.y_mean)).abs() < 1e-6, "{a} vs {b}");
            let o = own.predict_one(&x[i * p..(i + 1) * p]);
            assert!((a - o).abs() < 1e-6, "{a} vs own {o}");
        }
        let mae: f64 = pred.iter().zip(&y).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
        assert!(mae < 0.05, "mae {mae}");
    }

    #[test]
    fn nested_rows_and_missing_targets_match_a_fresh_computation() {
        let mut rnd = lcg(3);
        let p = 2;
        let n = 60;
        let x: Vec<f64> = (0..n * p).map(|_| rnd()).collect();
        let y: Vec<Option<f64>> = (0..n + 5).map(|i| (i % 7 != 3).then(&mut rnd)).collect();
        let origins: Vec<usize> = (0..n).collect();
        let end = n;
        let target = |i: usize, h: usize| -> Option<f64> {
            let t = origins[i];
            if t + h < end {
                y[t + h]
            } else {
                None
            }
        };
        let stats = horizon_stats(&x, p, &origins, end, 3, target).expect("stats");
        for h in 1..=3 {
            // Fresh: only the rows valid at h.
            let rows: Vec<usize> = (0..n).filter(|&i| target(i, h).is_some()).collect();
            let xs: Vec<f64> = rows
                .iter()
                .flat_map(|&i| x[i * p..(i + 1) * p].to_vec())
                .collect();
            let fresh_origins: Vec<usize> = rows.clone();
            let fresh = horizon_stats(&xs, p, &fresh_origins, usize::MAX, 1, |k, _| {
                target(rows[k], h)
            })
            .expect("fresh");
            // (Near-)unpenalised, so the differing standardisation cannot matter.
            let a = stats[h - 1].solve(1e-12).expect("a");
            let b = fresh[0].solve(1e-12).expect("b");
            for i in 0..n {
                let r = &x[i * p..(i + 1) * p];
                assert!((a.predict_one(r) - b.predict_one(r)).abs() < 1e-6);
            }
        }
    }
}
