//! Random forest pooled over horizons (the horizon is a feature).
//!
//! One forest per horizon would cost 120 forest fits; a single forest over sampled
//! (origin, horizon) pairs learns the same non-linear effects (saturation at 100 %, fast
//! drying after fog) at a fraction of the cost, and trees split on the horizon as needed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::features::{FeatureFrame, N_FEATURES};
use super::ridge::Design;
use super::{guarded, ForecastError};

type SmartForest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// Columns of a forest row: the shared features plus the horizon.
pub const FOREST_COLUMNS: usize = N_FEATURES + 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// (origin, horizon) pairs sampled for training.
    pub samples: usize,
    /// Features tried per split; 0 = a third of the columns.
    pub features_per_split: usize,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 20,
            max_depth: 9,
            min_samples_leaf: 15,
            samples: 2000,
            features_per_split: 0,
            seed: 0x4879_6772_6f63_6173,
        }
    }
}

/// Feature row for the forest: shared features followed by the horizon.
pub fn forest_row(frame: &FeatureFrame<'_>, t: usize, h: usize) -> Option<[f64; FOREST_COLUMNS]> {
    let base = frame.row(t, h)?;
    let mut row = [0.0; FOREST_COLUMNS];
    row[..N_FEATURES].copy_from_slice(&base);
    row[N_FEATURES] = h as f64;
    Some(row)
}

/// Uniformly sampled training pairs with origins in `[t_lo, t_end)` and targets before `t_end`.
pub fn sample_design(
    frame: &FeatureFrame<'_>,
    t_lo: usize,
    t_end: usize,
    horizon: usize,
    params: &ForestParams,
) -> Design {
    let mut d = Design::new(FOREST_COLUMNS);
    if t_end <= t_lo + 1 {
        return d;
    }
    let mut rng = StdRng::seed_from_u64(params.seed);
    // Gaps make some pairs unusable; bound the attempts so a gappy series still terminates.
    let attempts = params.samples * 4;
    for _ in 0..attempts {
        if d.rows() >= params.samples {
            break;
        }
        let h = rng.gen_range(1..=horizon);
        if t_lo + h >= t_end {
            continue;
        }
        let t = rng.gen_range(t_lo..t_end - h);
        if let (Some(row), Some(y)) = (forest_row(frame, t, h), frame.target(t, h)) {
            d.push(&row, y);
        }
    }
    d
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ForestModel {
    model: SmartForest,
}

impl ForestModel {
    pub fn fit(d: &Design, params: &ForestParams) -> Result<Self, ForecastError> {
        let n = d.rows();
        // A leaf needs min_samples_leaf rows; with fewer rows a forest is meaningless.
        if n < 4 * params.min_samples_leaf.max(1) || d.p == 0 {
            return Err(ForecastError::TooLittleData(format!(
                "forest needs more training pairs, got {n}"
            )));
        }
        let x = DenseMatrix::new(n, d.p, d.x.clone(), false)
            .map_err(|e| ForecastError::FitFailed(e.to_string()))?;
        let sp = RandomForestRegressorParameters::default()
            .with_n_trees(params.trees)
            .with_max_depth(params.max_depth)
            .with_min_samples_leaf(params.min_samples_leaf)
            .with_min_samples_split(2 * params.min_samples_leaf)
            .with_m(if params.features_per_split == 0 {
                (d.p / 3).max(1)
            } else {
                params.features_per_split.min(d.p)
            })
            .with_seed(params.seed);
        let model = guarded("forest fit", || {
            SmartForest::fit(&x, &d.y, sp).map_err(|e| ForecastError::FitFailed(e.to_string()))
        })?;
        Ok(ForestModel { model })
    }

    /// Predict for row-major `x` with [`FOREST_COLUMNS`] columns.
    pub fn predict(&self, x: &[f64]) -> Result<Vec<f64>, ForecastError> {
        if x.len() % FOREST_COLUMNS != 0 {
            return Err(ForecastError::PredictFailed("forest: bad row width".into()));
        }
        let n = x.len() / FOREST_COLUMNS;
        if n == 0 {
            return Ok(Vec::new());
        }
        let m = DenseMatrix::new(n, FOREST_COLUMNS, x.to_vec(), false)
            .map_err(|e| ForecastError::PredictFailed(e.to_string()))?;
        guarded("forest predict", || {
            self.model
                .predict(&m)
                .map_err(|e| ForecastError::PredictFailed(e.to_string()))
        })
    }
}
