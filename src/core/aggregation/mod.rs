//! Gradient aggregation on the server (ground station or lead satellite).
//!
//! - [`input`]: an update as the aggregator sees it, dense or sparse, read in place.
//! - [`linear`]: weighted sums over output chunks (FEDAVG, WEIGHTED_AVG, ASYNC_FEDAVG and
//!   the averaging step of the server optimisers).
//! - [`sparse_sum`]: weighted sums of sparse updates as a sparse result (`aggregate_sparse`).
//! - [`stream`]: copies with non-temporal stores, for large outputs written once.
//! - [`robust`]: coordinate-wise median, trimmed mean, Krum and Multi-Krum.
//! - [`server`]: server optimisers (FedAvgM, FedAdam, FedYogi) holding state across rounds.
//! - [`privacy`]: L2 clipping and seeded Gaussian noise (central DP).
//! - [`streaming`]: the aggregator itself: one-shot `aggregate`, and `add` / `finish`
//!   with O(model) memory for the linear strategies.
//! - [`partial`]: a pending round serialised to bytes and merged elsewhere.

pub mod input;
pub mod linear;
pub mod partial;
pub mod privacy;
pub mod robust;
pub mod server;
pub mod sparse_sum;
pub mod stream;
pub mod streaming;

pub use input::Update;
pub use streaming::{AddOptions, Aggregator, Stats};

use crate::core::error::{Error, Result};

/// Below this many elements the work stays on the calling thread.
pub(crate) const PAR_THRESHOLD: usize = 1 << 16;
/// Output elements per parallel chunk of the linear kernels (64 KiB of f32: stays in L2).
pub(crate) const CHUNK: usize = 1 << 14;

/// How client updates are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Σ wᵢ·gᵢ / Σ wᵢ with wᵢ = weight × samples.
    FedAvg,
    /// Σ wᵢ·gᵢ / Σ wᵢ with wᵢ = weight (samples ignored).
    WeightedAvg,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise mean after dropping ⌊β·n⌋ lowest and highest values.
    TrimmedMean,
    /// The update with the smallest Krum score.
    Krum,
    /// The weighted mean of the m updates with the smallest Krum scores.
    MultiKrum,
    /// FedAvg, then server momentum.
    FedAvgM,
    /// FedAvg, then a server Adam step.
    FedAdam,
    /// FedAvg, then a server Yogi step.
    FedYogi,
    /// FedAvg with weights multiplied by a decreasing function of staleness.
    AsyncFedAvg,
}

impl Strategy {
    /// Every strategy, in wire-code order (the `AggregationStrategy` order).
    pub const ALL: [Strategy; 10] = [
        Strategy::FedAvg,
        Strategy::WeightedAvg,
        Strategy::Median,
        Strategy::TrimmedMean,
        Strategy::Krum,
        Strategy::MultiKrum,
        Strategy::FedAvgM,
        Strategy::FedAdam,
        Strategy::FedYogi,
        Strategy::AsyncFedAvg,
    ];

    /// The lower-case name (the JS enum value).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::FedAvg => "fedavg",
            Strategy::WeightedAvg => "weighted_avg",
            Strategy::Median => "median",
            Strategy::TrimmedMean => "trimmed_mean",
            Strategy::Krum => "krum",
            Strategy::MultiKrum => "multi_krum",
            Strategy::FedAvgM => "fedavgm",
            Strategy::FedAdam => "fedadam",
            Strategy::FedYogi => "fedyogi",
            Strategy::AsyncFedAvg => "async_fedavg",
        }
    }

    /// Code used in the partial-aggregate format.
    pub fn to_u8(self) -> u8 {
        Strategy::ALL.iter().position(|&s| s == self).unwrap_or(0) as u8
    }

    /// Inverse of `to_u8`; `None` for an unknown code.
    pub fn from_u8(x: u8) -> Option<Self> {
        Strategy::ALL.get(x as usize).copied()
    }

    /// Strategies whose result is a weighted sum: streaming needs O(model) memory.
    pub fn is_linear(self) -> bool {
        !self.is_robust()
    }

    /// Strategies that need every update at once.
    pub fn is_robust(self) -> bool {
        matches!(
            self,
            Strategy::Median | Strategy::TrimmedMean | Strategy::Krum | Strategy::MultiKrum
        )
    }

    /// Strategies that hold optimiser state across rounds.
    pub fn is_server_optimizer(self) -> bool {
        matches!(
            self,
            Strategy::FedAvgM | Strategy::FedAdam | Strategy::FedYogi
        )
    }

    /// Whether `samples` multiplies the weight.
    pub fn uses_samples(self) -> bool {
        self != Strategy::WeightedAvg
    }
}

/// Configuration of an aggregator. `Config::new(strategy)` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How updates are combined.
    pub strategy: Strategy,
    /// TRIMMED_MEAN: fraction β trimmed at each end, in [0, 0.5). Default 0.1.
    pub trim_fraction: f64,
    /// KRUM / MULTI_KRUM: assumed number f of faulty updates; needs n > 2f + 2. Default 1.
    pub faulty: usize,
    /// MULTI_KRUM: how many updates are averaged; default n − f.
    pub multi_krum_count: Option<usize>,
    /// Server learning rate η: FEDAVGM 1.0, FEDADAM 0.1, FEDYOGI 0.01.
    pub server_lr: f64,
    /// FEDAVGM momentum μ. Default 0.9.
    pub momentum: f64,
    /// FEDADAM / FEDYOGI first-moment decay β₁. Default 0.9.
    pub beta1: f64,
    /// FEDADAM / FEDYOGI second-moment decay β₂. Default 0.99.
    pub beta2: f64,
    /// FEDADAM / FEDYOGI adaptivity τ. Default 1e-3.
    pub tau: f64,
    /// ASYNC_FEDAVG: s(τ) = (1 + τ)^(−a). Default a = 0.5.
    pub staleness_exponent: f64,
    /// ASYNC_FEDAVG: updates staler than this are dropped at `finish`. Default none.
    pub max_staleness: Option<u64>,
    /// L2 clip norm C applied to every update. Default none.
    pub clip_norm: Option<f64>,
    /// Gaussian noise multiplier σ (noise std on the sum = σ·C·max wᵢ). Default 0.
    pub noise_multiplier: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// `finish` refuses fewer updates than this. Default 1.
    pub min_participants: usize,
    /// The model's length, when known up front: every update of another length is refused
    /// before anything of its size is allocated (a forged wire header cannot make the
    /// aggregator allocate what the model does not need). Default: set by the first update.
    pub model_size: Option<usize>,
}

impl Config {
    /// The documented defaults for `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Config {
            strategy,
            trim_fraction: 0.1,
            faulty: 1,
            multi_krum_count: None,
            server_lr: match strategy {
                Strategy::FedAdam => 0.1,
                Strategy::FedYogi => 0.01,
                _ => 1.0,
            },
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3,
            staleness_exponent: 0.5,
            max_staleness: None,
            clip_norm: None,
            noise_multiplier: 0.0,
            seed: 0,
            min_participants: 1,
            model_size: None,
        }
    }

    /// Checks every field; messages name the option and its value.
    pub fn validate(&self) -> Result<()> {
        let unit = |name: &str, v: f64, lo: f64, hi_open: f64| -> Result<()> {
            if v.is_finite() && v >= lo && v < hi_open {
                Ok(())
            } else {
                Err(Error::invalid_arg(format!(
                    "{name} must be in [{lo}, {hi_open}), got {v}"
                )))
            }
        };
        unit("trimFraction", self.trim_fraction, 0.0, 0.5)?;
        unit("momentum", self.momentum, 0.0, 1.0)?;
        unit("beta1", self.beta1, 0.0, 1.0)?;
        unit("beta2", self.beta2, 0.0, 1.0)?;
        // The optimisers compute in f32: η and τ must survive the conversion (η finite, so
        // that a zero update steps by 0, not NaN; τ non-zero, so that √v + τ > 0).
        let lr32 = self.server_lr as f32;
        if !(lr32.is_finite() && lr32 > 0.0) {
            return Err(Error::invalid_arg(format!(
                "serverLearningRate must be > 0 and within f32's range (1.4e-45 to 3.4e38), got {}",
                self.server_lr
            )));
        }
        let tau32 = self.tau as f32;
        if !(tau32.is_finite() && tau32 > 0.0) {
            return Err(Error::invalid_arg(format!(
                "tau must be > 0 and within f32's range (1.4e-45 to 3.4e38), got {}",
                self.tau
            )));
        }
        if !(self.staleness_exponent.is_finite() && self.staleness_exponent >= 0.0) {
            return Err(Error::invalid_arg(format!(
                "stalenessExponent must be finite and ≥ 0, got {}",
                self.staleness_exponent
            )));
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid_arg(format!(
                    "clipNorm must be finite and > 0, got {c}"
                )));
            }
        }
        if !(self.noise_multiplier.is_finite() && self.noise_multiplier >= 0.0) {
            return Err(Error::invalid_arg(format!(
                "noiseMultiplier must be finite and ≥ 0, got {}",
                self.noise_multiplier
            )));
        }
        if self.noise_multiplier > 0.0 && self.clip_norm.is_none() {
            return Err(Error::invalid_arg(format!(
                "noiseMultiplier {} needs clipNorm: the noise is calibrated to the clip norm",
                self.noise_multiplier
            )));
        }
        if self.noise_multiplier > 0.0 && self.strategy.is_robust() {
            return Err(Error::invalid_arg(format!(
                "noiseMultiplier is only calibrated for the averaging strategies, not {} (clipNorm alone is allowed)",
                self.strategy.as_str()
            )));
        }
        if self.multi_krum_count == Some(0) {
            return Err(Error::invalid_arg("multiKrumCount must be ≥ 1, got 0"));
        }
        if self.min_participants == 0 {
            return Err(Error::invalid_arg("minParticipants must be ≥ 1, got 0"));
        }
        Ok(())
    }

    /// ASYNC_FEDAVG staleness factor s(τ) = (1 + τ)^(−a).
    pub fn staleness_factor(&self, staleness: u64) -> f64 {
        (1.0 + staleness as f64).powf(-self.staleness_exponent)
    }
}

#[cfg(test)]
mod tests;
