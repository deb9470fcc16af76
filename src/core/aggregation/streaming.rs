//! The aggregator: one-shot `aggregate`, streaming `add` / `finish`, and merging of
//! partial rounds.
//!
//! Linear strategies keep, per update round (one bucket, except for ASYNC_FEDAVG where
//! staleness is only known at `finish`), the running sum Σ wᵢ·cᵢ·gᵢ (cᵢ the clip factor)
//! and Σ wᵢ: memory is O(model) per distinct update round, whatever the number of
//! clients. Robust strategies keep every update (they need them all at once).

use std::collections::{BTreeMap, HashSet};

use crate::core::compression::{CompressedGradient, CompressionType, ValueEncoding};
use crate::core::error::{Code, Error, Result};

use super::input::{self, Update};
use super::server::ServerState;
use super::sparse_sum::{self, SparseInput};
use super::{linear, privacy, robust, Config, Strategy};

/// Options of one streamed update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddOptions {
    /// Weight (default 1).
    pub weight: f64,
    /// Number of local samples (default 1); multiplies the weight except for WEIGHTED_AVG.
    pub samples: f64,
    /// Server round the client started from; default the aggregator's current round.
    pub round: Option<u64>,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            weight: 1.0,
            samples: 1.0,
            round: None,
        }
    }
}

/// Running sum of the updates of one round (ASYNC_FEDAVG: of one base round).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Σ wᵢ·cᵢ·gᵢ.
    pub sum: Vec<f32>,
    /// Weight (Σ for a bucket).
    pub weight: f64,
    /// Largest single weight (noise calibration).
    pub max_weight: f64,
    /// Samples (Σ for a bucket).
    pub samples: f64,
    /// Updates folded in.
    pub count: u64,
}

/// A kept update, owned (robust strategies).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedUpdate {
    Dense(Vec<f32>),
    Compressed(CompressedGradient),
}

impl OwnedUpdate {
    /// Borrowed view for the kernels.
    pub fn as_update(&self) -> Update<'_> {
        match self {
            OwnedUpdate::Dense(v) => Update::Dense(v),
            OwnedUpdate::Compressed(c) => Update::Compressed(c),
        }
    }
}

/// One kept update with its weight, clip factor and base round.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The update as received.
    pub data: OwnedUpdate,
    /// Weight (Σ for a bucket).
    pub weight: f64,
    /// Samples (Σ for a bucket).
    pub samples: f64,
    /// Its clip factor cᵢ.
    pub scale: f32,
    /// Round (base round of an update; current server round in stats).
    pub round: u64,
}

/// Everything added since the last `finish`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    /// Length of the round's updates (none before the first).
    pub length: Option<usize>,
    /// Node ids in arrival order.
    pub nodes: Vec<String>,
    /// The same ids, for duplicate checks.
    pub node_set: HashSet<String>,
    /// Linear strategies: running sums per base round (one bucket except ASYNC_FEDAVG).
    pub buckets: BTreeMap<u64, Bucket>,
    /// Robust strategies: every update.
    pub stored: Vec<Stored>,
    /// Updates clipped.
    pub clipped: u64,
}

impl Pending {
    /// Updates pending.
    pub fn count(&self) -> usize {
        self.nodes.len()
    }
    /// Σ weights pending.
    pub fn total_weight(&self) -> f64 {
        self.buckets
            .values()
            .map(|b| b.weight)
            .fold(0.0, |a, b| a + b)
            + self.stored.iter().map(|s| s.weight).fold(0.0, |a, b| a + b)
    }
    /// Σ samples pending.
    pub fn total_samples(&self) -> f64 {
        self.buckets
            .values()
            .map(|b| b.samples)
            .fold(0.0, |a, b| a + b)
            + self
                .stored
                .iter()
                .map(|s| s.samples)
                .fold(0.0, |a, b| a + b)
    }
}

/// What the last completed round did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastRound {
    /// Updates in the round.
    pub participants: u64,
    /// Σ weights after staleness.
    pub total_weight: f64,
    /// Noise standard deviation added per coordinate.
    pub noise_std: f64,
    /// Updates clipped.
    pub clipped: u64,
    /// Updates dropped for staleness.
    pub dropped_stale: u64,
    /// KRUM / MULTI_KRUM: indices (in input / arrival order) of the updates kept.
    pub selected: Vec<u32>,
}

/// Counters for `getStats()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The strategy.
    pub strategy: Strategy,
    /// Round (base round of an update; current server round in stats).
    pub round: u64,
    /// Rounds completed.
    pub completed_rounds: u64,
    /// Updates pending.
    pub pending_participants: u64,
    /// `finish` refuses fewer.
    pub min_participants: u64,
    /// Σ weights pending.
    pub pending_weight: f64,
    /// Σ samples pending.
    pub pending_samples: f64,
    /// Length of the pending updates or of the model.
    pub model_length: Option<usize>,
    /// Updates aggregated, all rounds.
    pub updates_received: u64,
    /// Updates clipped, all rounds.
    pub clipped_updates: u64,
    /// L2 clip norm.
    pub clip_norm: Option<f64>,
    /// Noise multiplier σ.
    pub noise_multiplier: f64,
    /// What the last round did.
    pub last: LastRound,
    /// Whether a global model is held.
    pub has_global_model: bool,
    /// Server optimiser steps taken.
    pub optimizer_steps: u64,
}

/// A gradient aggregator with its configuration, pending round and optimiser state.
#[derive(Debug, Clone)]
pub struct Aggregator {
    /// The validated configuration.
    pub config: Config,
    /// The current server round (staleness reference). `finish` moves it to R + 1.
    pub round: u64,
    /// Rounds completed (also the noise stream index).
    pub completed: u64,
    /// The round being collected.
    pub pending: Pending,
    /// Server optimiser state and global model.
    pub server: ServerState,
    /// What the last round did.
    pub last: LastRound,
    /// Updates aggregated, all rounds.
    pub updates_received: u64,
    /// Updates clipped, all rounds.
    pub clipped_updates: u64,
}

/// The error for a non-finite weighted sum: the first input holding NaN/±Inf, or overflow
/// (at the gradient position `first_bad` gives).
fn non_finite_culprit(updates: &[Update], first_bad: impl FnOnce() -> usize) -> Error {
    for (i, u) in updates.iter().enumerate() {
        if let Err(e) = u.check_finite(&format!("grads[{i}]")) {
            return e;
        }
    }
    let j = first_bad();
    Error::new(
        Code::NonFinite,
        format!("the weighted sum overflowed f32 at index {j} (inputs too large)"),
    )
}

/// A clip norm as the options spell it.
fn clip_name(c: Option<f64>) -> String {
    c.map_or_else(|| "none".to_string(), |c| c.to_string())
}

/// A validated one-shot round: its length, weights and clip factors.
struct OneShot {
    /// Length of the updates.
    n: usize,
    /// Weight × staleness factor of each update, relative to the largest.
    eff: Vec<f64>,
    /// The largest weight × staleness factor (eff = raw / top).
    top: f64,
    /// Σ eff.
    total: f64,
    /// Clip factor of each update.
    scales: Vec<f32>,
    /// Updates clipped.
    clipped: u64,
    /// ASYNC_FEDAVG: updates dropped for staleness.
    dropped: u64,
}

impl OneShot {
    /// The f32 weight of each update in the averaging strategies' sum: wᵢ/Σw · cᵢ.
    fn linear_weights(&self) -> Vec<f32> {
        self.eff
            .iter()
            .zip(&self.scales)
            .map(|(w, s)| (w / self.total) as f32 * s)
            .collect()
    }

    /// max wᵢ / Σ wᵢ (noise calibration).
    fn rel_max_weight(&self) -> f64 {
        self.eff.iter().cloned().fold(0.0, f64::max) / self.total
    }
}

fn check_weight(name: &str, w: f64) -> Result<()> {
    if !(w.is_finite() && w >= 0.0) {
        return Err(Error::new(
            Code::InvalidWeight,
            format!("{name} is {w} (weights must be finite and ≥ 0)"),
        ));
    }
    Ok(())
}

impl Aggregator {
    /// Validates `config` (`ERR_INVALID_ARG`).
    pub fn new(config: Config) -> Result<Self> {
        config.validate()?;
        Ok(Aggregator {
            config,
            round: 0,
            completed: 0,
            pending: Pending::default(),
            server: ServerState::default(),
            last: LastRound::default(),
            updates_received: 0,
            clipped_updates: 0,
        })
    }

    /// Gives the server optimisers the global model they update (its length fixes the
    /// length of every later update).
    pub fn set_global_model(&mut self, model: Vec<f32>) -> Result<()> {
        crate::core::error::check_finite("model", &model)?;
        if let Some(n) = self.config.model_size {
            if n != model.len() {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!("model has length {} but modelSize is {n}", model.len()),
                ));
            }
        }
        if let Some(n) = self.pending.length {
            if n != model.len() {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!(
                        "model has length {} but the pending updates have length {n}",
                        model.len()
                    ),
                ));
            }
        }
        if self.server.steps > 0 && self.server.m.len() != model.len() {
            return Err(Error::new(
                Code::LengthMismatch,
                format!("model has length {} but the optimiser state has length {} (call resetState() first)", model.len(), self.server.m.len()),
            ));
        }
        self.server.model = Some(model);
        Ok(())
    }

    /// Drops the optimiser moments (m, v); the global model is kept.
    pub fn reset_state(&mut self) {
        let model = self.server.model.take();
        self.server = ServerState {
            model,
            ..Default::default()
        };
    }

    fn model_len(&self) -> Option<usize> {
        self.model_length().map(|(n, _)| n)
    }

    /// The length every update of a one-shot round must have when it is fixed already,
    /// and what fixes it (the global model, or `modelSize`).
    pub fn model_length(&self) -> Option<(usize, &'static str)> {
        match (&self.server.model, self.config.model_size) {
            (Some(m), _) => Some((m.len(), "the global model's length")),
            (None, Some(n)) => Some((n, "modelSize")),
            (None, None) => None,
        }
    }

    /// The length an `add`ed update must have when it is fixed already, and what fixes it
    /// (the pending round, the global model, or `modelSize`).
    pub fn add_length(&self) -> Option<(usize, &'static str)> {
        match self.pending.length {
            Some(n) => Some((n, "the length of this round's updates")),
            None => self.model_length(),
        }
    }

    /// wᵢ before staleness: weight × samples (weight alone for WEIGHTED_AVG).
    pub fn base_weight(&self, weight: f64, samples: f64) -> f64 {
        if self.config.strategy.uses_samples() {
            weight * samples
        } else {
            weight
        }
    }

    /// One-shot aggregation of `updates` with optional per-update weights (default equal)
    /// and, for ASYNC_FEDAVG, per-update staleness (default 0). Does not touch the
    /// pending streamed round.
    pub fn aggregate(
        &mut self,
        updates: &[Update],
        weights: Option<&[f64]>,
        staleness: Option<&[f64]>,
    ) -> Result<Vec<f32>> {
        self.aggregate_into(updates, weights, staleness, None)
    }

    /// Whether `aggregate_into` writes the result straight into `out` (the averaging
    /// strategies) rather than computing it apart and copying it in.
    pub fn writes_in_place(&self) -> bool {
        let s = self.config.strategy;
        !s.is_robust() && !s.is_server_optimizer()
    }

    /// `aggregate`, writing the result into `out` when given (then the returned vector is
    /// empty). `out` must have the updates' length and must not overlap a dense input.
    /// The averaging strategies write it directly (no allocation); the others copy into it.
    pub fn aggregate_into(
        &mut self,
        updates: &[Update],
        weights: Option<&[f64]>,
        staleness: Option<&[f64]>,
        mut out: Option<&mut [f32]>,
    ) -> Result<Vec<f32>> {
        let r = self.prepare(updates, weights, staleness, out.as_deref(), true)?;
        let n = r.n;
        let result = if self.config.strategy.is_robust() {
            self.robust(updates, &r.eff, &r.scales, n)?
        } else {
            let w = r.linear_weights();
            match out.as_deref_mut() {
                Some(o) if !self.config.strategy.is_server_optimizer() => {
                    if !linear::sum_into(o, updates, &w) {
                        return Err(non_finite_culprit(updates, || {
                            o.iter().position(|x| !x.is_finite()).unwrap_or(0)
                        }));
                    }
                    self.add_noise(o, r.rel_max_weight())?;
                    Vec::new()
                }
                _ => {
                    let (mean, finite) = linear::weighted_sum(updates, &w, n)?;
                    if !finite {
                        return Err(non_finite_culprit(updates, || {
                            mean.iter().position(|x| !x.is_finite()).unwrap_or(0)
                        }));
                    }
                    self.finish_linear(mean, r.rel_max_weight())?
                }
            }
        };
        self.record_one_shot(updates.len(), &r);
        match out {
            Some(o) if !result.is_empty() => {
                o.copy_from_slice(&result);
                Ok(Vec::new())
            }
            _ => Ok(result),
        }
    }

    /// `aggregate` of sparse updates with a sparse result: Σ wᵢ·cᵢ·gᵢ / Σ wᵢ as a
    /// `CompressedGradient` (top-k type, f32 values) holding the union of the indices of
    /// the inputs with a non-zero weight, entries whose sum is exactly 0.0 included.
    /// Densified, it equals `aggregate`'s result bit for bit. Same validation and weights as
    /// `aggregate`; only the averaging strategies without noise (FEDAVG, WEIGHTED_AVG,
    /// ASYNC_FEDAVG; `clipNorm` allowed) and only sparse inputs (top-k, random-k, top-k
    /// quantized) are accepted (`ERR_INVALID_ARG` otherwise). Its `round` is the
    /// aggregator's round this call completes; the aggregator's round then advances by one.
    pub fn aggregate_sparse(
        &mut self,
        updates: &[Update],
        weights: Option<&[f64]>,
        staleness: Option<&[f64]>,
    ) -> Result<CompressedGradient> {
        let mut out = CompressedGradient {
            length: 0,
            indices: Vec::new(),
            values: Vec::new(),
            dense: false,
            compression_type: CompressionType::TopK,
            encoding: ValueEncoding::F32,
            quantized: None,
            round: 0,
        };
        self.aggregate_sparse_into(updates, weights, staleness, &mut out)?;
        Ok(out)
    }

    /// [`Aggregator::aggregate_sparse`] written into `out`, whatever it held: its index and
    /// value buffers are reused (no allocation when their capacity suffices, so no fresh
    /// memory to fault in). Validation errors leave `out` unchanged; an overflowing sum
    /// (`ERR_NON_FINITE` after summing) leaves it holding that sum.
    pub fn aggregate_sparse_into(
        &mut self,
        updates: &[Update],
        weights: Option<&[f64]>,
        staleness: Option<&[f64]>,
        out: &mut CompressedGradient,
    ) -> Result<()> {
        let s = self.config.strategy;
        if !matches!(
            s,
            Strategy::FedAvg | Strategy::WeightedAvg | Strategy::AsyncFedAvg
        ) {
            return Err(Error::invalid_arg(format!(
                "aggregateSparse supports fedavg, weighted_avg and async_fedavg; {} needs the dense form (use aggregate)",
                s.as_str()
            )));
        }
        if self.config.noise_multiplier > 0.0 {
            return Err(Error::invalid_arg(format!(
                "aggregateSparse cannot add noise (noiseMultiplier {}): noise touches every coordinate, so the result is dense (use aggregate)",
                self.config.noise_multiplier
            )));
        }
        if let Some(i) = updates.iter().position(|u| !u.is_sparse()) {
            let what = match updates[i] {
                Update::Dense(_) => "a dense array".to_string(),
                Update::Compressed(c) => {
                    format!(
                        "a dense CompressedGradient ({})",
                        c.compression_type.as_str()
                    )
                }
            };
            return Err(Error::invalid_arg(format!(
                "aggregateSparse takes sparse updates (top-k, random-k); grads[{i}] is {what}: the sum would be dense (use aggregate)"
            )));
        }
        let r = self.prepare(updates, weights, staleness, None, false)?;
        let w = r.linear_weights();
        let inputs: Vec<SparseInput> = updates
            .iter()
            .zip(&w)
            .filter_map(|(u, &weight)| {
                u.sparse_parts().map(|(indices, values)| SparseInput {
                    indices,
                    values,
                    weight,
                })
            })
            .collect();
        let finite = sparse_sum::weighted_sum_into(&inputs, r.n, &mut out.indices, &mut out.values);
        out.length = r.n;
        out.dense = false;
        out.compression_type = CompressionType::TopK;
        out.encoding = ValueEncoding::F32;
        out.quantized = None;
        out.round = u32::try_from(self.round).unwrap_or(u32::MAX);
        if !finite {
            return Err(non_finite_culprit(updates, || {
                out.values
                    .iter()
                    .position(|x| !x.is_finite())
                    .map(|k| out.indices[k] as usize)
                    .unwrap_or(0)
            }));
        }
        self.last.noise_std = 0.0;
        self.last.selected.clear();
        self.record_one_shot(updates.len(), &r);
        Ok(())
    }

    /// The length of a one-shot round's result: checks there is at least one update, that
    /// all have the same non-zero length, and that it is the global model's when one is set.
    /// (The first checks of `aggregate`, so a caller can size the output before calling it.)
    pub fn round_length(&self, updates: &[Update]) -> Result<usize> {
        if updates.is_empty() {
            return Err(Error::new(
                Code::NoClients,
                "grads is empty: nothing to aggregate",
            ));
        }
        let n = updates[0].len();
        if n == 0 {
            return Err(Error::invalid_arg("grads[0] is empty (length 0)"));
        }
        for (i, u) in updates.iter().enumerate().skip(1) {
            if u.len() != n {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!(
                        "grads[{i}] has length {} but grads[0] has length {n}",
                        u.len()
                    ),
                ));
            }
        }
        if let Some((ml, by)) = self.model_length() {
            if ml != n {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!("grads have length {n} but {by} is {ml}"),
                ));
            }
        }
        Ok(n)
    }

    /// Validation and weights of a one-shot round (`aggregate`, `aggregate_sparse`):
    /// lengths, weights, staleness, `out`, finiteness of the inputs the summing pass does
    /// not check itself, clip factors. `sparse_checked_in_sum`: the caller's sum reports a
    /// sparse input's NaN or ±Inf itself (through a non-finite result).
    fn prepare(
        &self,
        updates: &[Update],
        weights: Option<&[f64]>,
        staleness: Option<&[f64]>,
        out: Option<&[f32]>,
        sparse_checked_in_sum: bool,
    ) -> Result<OneShot> {
        let m = updates.len();
        let n = self.round_length(updates)?;
        let base: Vec<f64> = match weights {
            Some(w) => {
                if w.len() != m {
                    return Err(Error::new(
                        Code::LengthMismatch,
                        format!("weights has {} entries but grads has {m}", w.len()),
                    ));
                }
                for (i, &x) in w.iter().enumerate() {
                    check_weight(&format!("weights[{i}]"), x)?;
                }
                w.to_vec()
            }
            None => vec![1.0; m],
        };
        let stale_f: Vec<f64> = match staleness {
            Some(s) => {
                if self.config.strategy != Strategy::AsyncFedAvg {
                    return Err(Error::invalid_arg(format!(
                        "staleness applies to ASYNC_FEDAVG only, not {}",
                        self.config.strategy.as_str()
                    )));
                }
                if s.len() != m {
                    return Err(Error::new(
                        Code::LengthMismatch,
                        format!("staleness has {} entries but grads has {m}", s.len()),
                    ));
                }
                let mut out = Vec::with_capacity(m);
                for (i, &x) in s.iter().enumerate() {
                    if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
                        return Err(Error::invalid_arg(format!(
                            "staleness[{i}] must be a non-negative integer, got {x}"
                        )));
                    }
                    let keep = self.config.max_staleness.is_none_or(|mx| x as u64 <= mx);
                    out.push(if keep {
                        self.config.staleness_factor(x as u64)
                    } else {
                        0.0
                    });
                }
                out
            }
            None => vec![1.0; m],
        };
        if base.iter().sum::<f64>() <= 0.0 {
            return Err(Error::new(
                Code::ZeroTotalWeight,
                format!(
                    "the weights sum to 0 ({:?}): the average is undefined",
                    base
                ),
            ));
        }
        if let Some(o) = out {
            if o.len() != n {
                return Err(Error::new(
                    Code::LengthMismatch,
                    if o.is_empty() {
                        // N-API reads a view of a transferred (detached) buffer as empty.
                        format!("out has length 0 but grads have length {n} (a Float32Array whose buffer was transferred also reads as empty)")
                    } else {
                        format!("out has length {} but grads have length {n}", o.len())
                    },
                ));
            }
            let (a, b) = (o.as_ptr() as usize, o.as_ptr() as usize + 4 * n);
            for (i, u) in updates.iter().enumerate() {
                if let Update::Dense(s) = u {
                    let (c, d) = (s.as_ptr() as usize, s.as_ptr() as usize + 4 * s.len());
                    if a < d && c < b {
                        return Err(Error::invalid_arg(format!(
                            "out shares memory with grads[{i}]; pass a separate array"
                        )));
                    }
                }
            }
        }
        let raw: Vec<f64> = base.iter().zip(&stale_f).map(|(w, s)| w * s).collect();
        // Weights relative to the largest, so that their sum cannot overflow f64 however
        // large the caller's weights are (only their ratios matter).
        let top = raw.iter().cloned().fold(0.0, f64::max);
        let eff: Vec<f64> = raw
            .iter()
            .map(|w| if top > 0.0 { w / top } else { 0.0 })
            .collect();
        // The averaging strategies check their inputs inside the summing pass (read once: a
        // NaN or ±Inf input makes its sum non-finite, and then the culprit is looked for),
        // dense inputs always, sparse ones when the caller says its sum does (the sparse
        // result of `aggregate_sparse_into` must not be touched by a refused call); the
        // rest are checked here.
        let fused = self.config.strategy.is_linear() && self.config.clip_norm.is_none();
        let checked: Vec<usize> = (0..m)
            .filter(|&i| {
                !fused || eff[i] == 0.0 || (updates[i].is_sparse() && !sparse_checked_in_sum)
            })
            .collect();
        let sel: Vec<Update> = checked.iter().map(|&i| updates[i]).collect();
        if input::any_non_finite_in(&sel) {
            for &i in &checked {
                updates[i].check_finite(&format!("grads[{i}]"))?;
            }
        }
        let dropped = stale_f.iter().filter(|&&s| s == 0.0).count() as u64;
        let total: f64 = eff.iter().sum();
        if total <= 0.0 {
            return Err(Error::new(
                Code::ZeroTotalWeight,
                format!(
                    "every update with a non-zero weight {}",
                    self.all_stale_reason()
                ),
            ));
        }
        let scales: Vec<f32> = updates.iter().map(|u| self.clip(u)).collect();
        let clipped = scales.iter().filter(|&&s| s < 1.0).count() as u64;

        Ok(OneShot {
            n,
            eff,
            top,
            total,
            scales,
            clipped,
            dropped,
        })
    }

    /// Counters of a completed one-shot round; advances the round.
    fn record_one_shot(&mut self, m: usize, r: &OneShot) {
        self.last.participants = m as u64;
        self.last.total_weight = r.total * r.top;
        self.last.clipped = r.clipped;
        self.last.dropped_stale = r.dropped;
        self.updates_received += m as u64;
        self.clipped_updates += r.clipped;
        self.round += 1;
        self.completed += 1;
    }

    /// Why every update got a staleness factor of 0 (ASYNC_FEDAVG): dropped by
    /// `maxStaleness`, or (1 + staleness)^−exponent below the range of f64.
    fn all_stale_reason(&self) -> String {
        let e = self.config.staleness_exponent;
        match self.config.max_staleness {
            Some(mx) => format!(
                "is staler than maxStaleness {mx}, or so stale that its factor (1 + staleness)^-{e} underflows to 0"
            ),
            None => format!(
                "is so stale that its factor (1 + staleness)^-{e} underflows to 0 (lower stalenessExponent or the staleness)"
            ),
        }
    }

    fn clip(&self, u: &Update) -> f32 {
        match self.config.clip_norm {
            Some(_) => privacy::clip_factor(u.norm2(), self.config.clip_norm),
            None => 1.0,
        }
    }

    /// Noise, then the server optimiser step when there is one. `rel_max_w` = max wᵢ / Σ wᵢ.
    /// Adds the round's DP noise (if configured) and records its size.
    /// Fails with `ERR_NON_FINITE` when noise of that size overflows f32 (a huge
    /// `clipNorm × noiseMultiplier`): never a non-finite model.
    fn add_noise(&mut self, mean: &mut [f32], rel_max_w: f64) -> Result<()> {
        self.last.noise_std = 0.0;
        self.last.selected.clear();
        if let (Some(c), s) = (self.config.clip_norm, self.config.noise_multiplier) {
            if s > 0.0 {
                let std = s * c * rel_max_w;
                privacy::add_noise(mean, std, self.config.seed, self.completed);
                self.last.noise_std = std;
                if crate::core::error::check_finite("aggregate", mean).is_err() {
                    return Err(Error::new(
                        Code::NonFinite,
                        format!("DP noise of std {std:e} (noiseMultiplier × clipNorm × weight share) overflows float32; lower clipNorm or noiseMultiplier"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn finish_linear(&mut self, mut mean: Vec<f32>, rel_max_w: f64) -> Result<Vec<f32>> {
        self.add_noise(&mut mean, rel_max_w)?;
        if self.config.strategy.is_server_optimizer() {
            let step = self.server.step(&self.config, &mean)?;
            return Ok(match &self.server.model {
                Some(x) => x.clone(),
                None => step,
            });
        }
        Ok(mean)
    }

    fn robust(
        &mut self,
        updates: &[Update],
        weights: &[f64],
        scales: &[f32],
        n: usize,
    ) -> Result<Vec<f32>> {
        let m = updates.len();
        self.last.noise_std = 0.0;
        self.last.selected.clear();
        Ok(match self.config.strategy {
            Strategy::Median => robust::median(updates, scales, n)?,
            Strategy::TrimmedMean => {
                robust::trimmed_mean(updates, scales, n, self.config.trim_fraction)?
            }
            _ => {
                let f = self.config.faulty;
                if m <= 2 * f + 2 {
                    return Err(Error::new(
                        Code::NoClients,
                        format!("{} with faultyNodes = {f} needs more than 2·{f} + 2 = {} updates, got {m}", self.config.strategy.as_str(), 2 * f + 2),
                    ));
                }
                let d = robust::pairwise_sq_distances(updates, scales, n);
                let scores = robust::krum_scores(&d, m, f);
                let count = if self.config.strategy == Strategy::Krum {
                    1
                } else {
                    self.config.multi_krum_count.unwrap_or(m - f)
                };
                if count > m {
                    return Err(Error::invalid_arg(format!(
                        "multiKrumCount is {count} but only {m} updates were given"
                    )));
                }
                let sel = robust::select_lowest(&scores, count);
                self.last.selected = sel.iter().map(|&i| i as u32).collect();
                if self.config.strategy == Strategy::Krum {
                    let mut out = linear::zeroed(n)?;
                    let i = sel[0];
                    updates[i].add_into(&mut out, scales[i]);
                    out
                } else {
                    let total: f64 = sel.iter().map(|&i| weights[i]).sum();
                    if total <= 0.0 {
                        return Err(Error::new(Code::ZeroTotalWeight, format!("the {count} updates MULTI_KRUM selected (inputs {sel:?}) all have weight 0")));
                    }
                    let us: Vec<Update> = sel.iter().map(|&i| updates[i]).collect();
                    let w: Vec<f32> = sel
                        .iter()
                        .map(|&i| (weights[i] / total) as f32 * scales[i])
                        .collect();
                    let (out, finite) = linear::weighted_sum(&us, &w, n)?;
                    if !finite {
                        return Err(non_finite_culprit(&us, || {
                            out.iter().position(|x| !x.is_finite()).unwrap_or(0)
                        }));
                    }
                    out
                }
            }
        })
    }

    /// Adds one client's update to the pending round.
    pub fn add(&mut self, node: &str, u: Update, o: AddOptions) -> Result<()> {
        if node.is_empty() {
            return Err(Error::invalid_arg("nodeId must be a non-empty string"));
        }
        if self.pending.node_set.contains(node) {
            return Err(Error::new(
                Code::DuplicateNode,
                format!("node {node:?} already sent an update in this round (call finish() before its next one)"),
            ));
        }
        check_weight("weight", o.weight)?;
        check_weight("samples", o.samples)?;
        let n = u.len();
        if n == 0 {
            return Err(Error::invalid_arg(format!(
                "the update of node {node:?} is empty (length 0)"
            )));
        }
        if let Some((e, by)) = self.add_length() {
            if e != n {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!("the update of node {node:?} has length {n} but {by} is {e}"),
                ));
            }
        }
        u.check_finite(&format!("update of node {node:?}"))?;
        let w = self.base_weight(o.weight, o.samples);
        if !w.is_finite() {
            return Err(Error::new(
                Code::InvalidWeight,
                format!(
                    "weight × samples of node {node:?} overflows ({} × {})",
                    o.weight, o.samples
                ),
            ));
        }
        let scale = self.clip(&u);
        let round = o.round.unwrap_or(self.round);
        if self.config.strategy.is_linear() {
            let key = if self.config.strategy == Strategy::AsyncFedAvg {
                round
            } else {
                0
            };
            let b = match self.pending.buckets.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(Bucket {
                    sum: linear::zeroed(n)?,
                    weight: 0.0,
                    max_weight: 0.0,
                    samples: 0.0,
                    count: 0,
                }),
            };
            u.add_into(&mut b.sum, (w as f32) * scale);
            b.weight += w;
            b.max_weight = b.max_weight.max(w);
            b.samples += o.samples;
            b.count += 1;
        } else {
            let data = match u {
                Update::Dense(s) => {
                    OwnedUpdate::Dense(crate::core::alloc::copy_of(s, "a copy of the update")?)
                }
                Update::Compressed(c) => OwnedUpdate::Compressed(c.clone()),
            };
            self.pending.stored.push(Stored {
                data,
                weight: w,
                samples: o.samples,
                scale,
                round,
            });
        }
        self.pending.length = Some(n);
        self.pending.nodes.push(node.to_string());
        self.pending.node_set.insert(node.to_string());
        if scale < 1.0 {
            self.pending.clipped += 1;
        }
        Ok(())
    }

    /// Whether `finish` would accept the pending round (at least `minParticipants`).
    pub fn ready(&self) -> bool {
        self.pending.count() >= self.config.min_participants
    }

    /// Aggregates the pending round. `round` is the current server round R (staleness of
    /// an update = R − its round); default the aggregator's own round. Afterwards the
    /// aggregator's round is R + 1 and the pending round is empty. On error nothing changes.
    pub fn finish(&mut self, round: Option<u64>) -> Result<Vec<f32>> {
        let r_now = round.unwrap_or(self.round);
        let count = self.pending.count();
        if count == 0 {
            return Err(Error::new(
                Code::NoClients,
                "no update was added since the last finish(): nothing to aggregate",
            ));
        }
        if count < self.config.min_participants {
            return Err(Error::new(
                Code::NoClients,
                format!(
                    "{count} update(s) received but minParticipants is {} (check ready() first)",
                    self.config.min_participants
                ),
            ));
        }
        let n = self.pending.length.unwrap_or(0);
        let result;
        let mut dropped = 0u64;
        let total;
        if self.config.strategy.is_linear() {
            // Staleness factor of each bucket.
            let mut factors = Vec::with_capacity(self.pending.buckets.len());
            for (&r, b) in &self.pending.buckets {
                let s = if self.config.strategy == Strategy::AsyncFedAvg {
                    if r > r_now {
                        return Err(Error::invalid_arg(format!(
                            "{} update(s) have round {r}, ahead of the finish round {r_now}",
                            b.count
                        )));
                    }
                    let tau = r_now - r;
                    if self.config.max_staleness.is_some_and(|mx| tau > mx) {
                        dropped += b.count;
                        0.0
                    } else {
                        self.config.staleness_factor(tau)
                    }
                } else {
                    1.0
                };
                factors.push(s);
            }
            let raw_total = self.pending.total_weight();
            total = self
                .pending
                .buckets
                .values()
                .zip(&factors)
                .map(|(b, s)| b.weight * s)
                .sum::<f64>();
            if total <= 0.0 {
                return Err(Error::new(
                    Code::ZeroTotalWeight,
                    if raw_total <= 0.0 {
                        format!("the {count} pending updates all have weight 0 (weight × samples): the average is undefined")
                    } else {
                        format!("every pending update {}", self.all_stale_reason())
                    },
                ));
            }
            let max_w = self
                .pending
                .buckets
                .values()
                .zip(&factors)
                .map(|(b, s)| b.max_weight * s)
                .fold(0.0, f64::max);
            let buckets = std::mem::take(&mut self.pending.buckets);
            let mean = if buckets.len() == 1 && factors[0] == 1.0 {
                let mut sum = buckets
                    .into_values()
                    .next()
                    .map(|b| b.sum)
                    .unwrap_or_default();
                linear::scale(&mut sum, (1.0 / total) as f32);
                sum
            } else {
                let bs: Vec<&Bucket> = buckets.values().collect();
                let us: Vec<Update> = bs.iter().map(|b| Update::Dense(&b.sum)).collect();
                let w: Vec<f32> = factors.iter().map(|s| (s / total) as f32).collect();
                linear::weighted_sum(&us, &w, n)?.0
            };
            if let Err(e) = crate::core::error::check_finite("aggregate", &mean) {
                // Only reachable with values near f32::MAX; the round cannot be kept consistent.
                self.pending = Pending::default();
                return Err(Error::new(
                    Code::NonFinite,
                    format!(
                        "the weighted sum overflowed f32 ({}); the round was discarded",
                        e.message
                    ),
                ));
            }
            result = self.finish_linear(mean, max_w / total).map_err(|e| {
                // The round's running sums were consumed: it cannot be kept half-done (its
                // node ids without their updates), so it is discarded whole. The server
                // optimiser's state is unchanged (`ServerState::step`).
                self.pending = Pending::default();
                Error::new(e.code, format!("{}; the round was discarded", e.message))
            });
        } else {
            total = self.pending.total_weight();
            if total <= 0.0 {
                return Err(Error::new(
                    Code::ZeroTotalWeight,
                    format!(
                        "the {count} pending updates all have weight 0: the average is undefined"
                    ),
                ));
            }
            let stored = std::mem::take(&mut self.pending.stored);
            let us: Vec<Update> = stored.iter().map(|s| s.data.as_update()).collect();
            let w: Vec<f64> = stored.iter().map(|s| s.weight).collect();
            let scales: Vec<f32> = stored.iter().map(|s| s.scale).collect();
            let r = self.robust(&us, &w, &scales, n);
            if r.is_err() {
                self.pending.stored = stored; // keep the round: the caller may add more updates
            }
            result = r;
        }
        let out = result?;
        self.last.participants = count as u64;
        self.last.total_weight = total;
        self.last.clipped = self.pending.clipped;
        self.last.dropped_stale = dropped;
        self.updates_received += count as u64;
        self.clipped_updates += self.pending.clipped;
        self.pending = Pending::default();
        self.round = r_now + 1;
        self.completed += 1;
        Ok(out)
    }

    /// Statistics for `getStats()`.
    pub fn stats(&self) -> Stats {
        Stats {
            strategy: self.config.strategy,
            round: self.round,
            completed_rounds: self.completed,
            pending_participants: self.pending.count() as u64,
            min_participants: self.config.min_participants as u64,
            pending_weight: self.pending.total_weight(),
            pending_samples: self.pending.total_samples(),
            model_length: self.pending.length.or(self.model_len()),
            updates_received: self.updates_received,
            clipped_updates: self.clipped_updates,
            clip_norm: self.config.clip_norm,
            noise_multiplier: self.config.noise_multiplier,
            last: self.last.clone(),
            has_global_model: self.server.model.is_some(),
            optimizer_steps: self.server.steps,
        }
    }

    /// Adds a decoded partial round (from another aggregator's `to_partial`) to this one's
    /// pending round. On error nothing changes.
    pub fn merge(&mut self, p: super::partial::Partial) -> Result<()> {
        if p.strategy != self.config.strategy {
            return Err(Error::invalid_arg(format!(
                "the partial aggregate uses strategy {} but this aggregator uses {}",
                p.strategy.as_str(),
                self.config.strategy.as_str()
            )));
        }
        if p.clip_norm != self.config.clip_norm {
            return Err(Error::invalid_arg(format!(
                "the partial aggregate was clipped with clipNorm {} but this aggregator uses {}",
                clip_name(p.clip_norm),
                clip_name(self.config.clip_norm)
            )));
        }
        if p.pending.count() == 0 {
            return Ok(());
        }
        if let (Some(a), Some(b)) = (self.pending.length.or(self.model_len()), p.pending.length) {
            if a != b {
                return Err(Error::new(Code::LengthMismatch, format!("the partial aggregate has length {b} but this aggregator's round has length {a}")));
            }
        }
        if let Some(dup) = p
            .pending
            .nodes
            .iter()
            .find(|id| self.pending.node_set.contains(*id))
        {
            return Err(Error::new(
                Code::DuplicateNode,
                format!("node {dup:?} is in the partial aggregate and already in this round"),
            ));
        }
        let q = p.pending;
        for (r, b) in q.buckets {
            match self.pending.buckets.get_mut(&r) {
                Some(a) => {
                    linear::accumulate(&mut a.sum, &[Update::Dense(&b.sum)], &[1.0]);
                    a.weight += b.weight;
                    a.max_weight = a.max_weight.max(b.max_weight);
                    a.samples += b.samples;
                    a.count += b.count;
                }
                None => {
                    self.pending.buckets.insert(r, b);
                }
            }
        }
        self.pending.stored.extend(q.stored);
        for id in q.nodes {
            self.pending.node_set.insert(id.clone());
            self.pending.nodes.push(id);
        }
        self.pending.length = self.pending.length.or(q.length);
        self.pending.clipped += q.clipped;
        Ok(())
    }
}
