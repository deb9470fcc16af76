//! JS classes for gradient aggregation: `AggregationStrategy` and `GradientAggregator`.
//! Conversion, validation and error mapping only; the algorithms are in
//! `crate::core::aggregation`.

use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::arrays::{
    describe, engine_buffer, engine_f32_copy, new_engine_f32, read_bytes, read_f32, read_f32_out,
    type_of, typed_array_kind, F32Input,
};
use super::compression::CompressedGradient;
use super::task::guard;
use super::{invalid_arg, js_err};
use crate::core::aggregation::{self as core, partial, AddOptions, Aggregator, Update};
use crate::core::compression::CompressedGradient as CoreCompressed;
use crate::core::error::{Code, Error as CoreError};
use crate::core::wire;

/// How a `GradientAggregator` combines client updates.
#[napi(string_enum)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum AggregationStrategy {
    /// Federated averaging: Σ wᵢ·gᵢ / Σ wᵢ with wᵢ = weight × samples.
    #[napi(value = "fedavg")]
    FEDAVG,
    /// Weighted average: Σ wᵢ·gᵢ / Σ wᵢ with wᵢ = weight (samples ignored).
    #[napi(value = "weighted_avg")]
    WEIGHTED_AVG,
    /// Coordinate-wise median (robust to a minority of arbitrary updates).
    #[napi(value = "median")]
    MEDIAN,
    /// Coordinate-wise mean after dropping the ⌊β·n⌋ lowest and highest values (`trimFraction` β).
    #[napi(value = "trimmed_mean")]
    TRIMMED_MEAN,
    /// The single update with the smallest Krum score (`faultyNodes` f; needs n > 2f + 2).
    #[napi(value = "krum")]
    KRUM,
    /// The weighted mean of the `multiKrumCount` (default n − f) updates with the smallest Krum scores.
    #[napi(value = "multi_krum")]
    MULTI_KRUM,
    /// FedAvg, then server momentum on the global model.
    #[napi(value = "fedavgm")]
    FEDAVGM,
    /// FedAvg, then a server Adam step on the global model.
    #[napi(value = "fedadam")]
    FEDADAM,
    /// FedAvg, then a server Yogi step on the global model.
    #[napi(value = "fedyogi")]
    FEDYOGI,
    /// FedAvg with each weight multiplied by s(τ) = (1 + τ)^(−stalenessExponent), τ = staleness in rounds.
    #[napi(value = "async_fedavg")]
    ASYNC_FEDAVG,
}

impl From<AggregationStrategy> for core::Strategy {
    fn from(s: AggregationStrategy) -> Self {
        use core::Strategy as S;
        match s {
            AggregationStrategy::FEDAVG => S::FedAvg,
            AggregationStrategy::WEIGHTED_AVG => S::WeightedAvg,
            AggregationStrategy::MEDIAN => S::Median,
            AggregationStrategy::TRIMMED_MEAN => S::TrimmedMean,
            AggregationStrategy::KRUM => S::Krum,
            AggregationStrategy::MULTI_KRUM => S::MultiKrum,
            AggregationStrategy::FEDAVGM => S::FedAvgM,
            AggregationStrategy::FEDADAM => S::FedAdam,
            AggregationStrategy::FEDYOGI => S::FedYogi,
            AggregationStrategy::ASYNC_FEDAVG => S::AsyncFedAvg,
        }
    }
}

impl From<core::Strategy> for AggregationStrategy {
    fn from(s: core::Strategy) -> Self {
        use core::Strategy as S;
        match s {
            S::FedAvg => AggregationStrategy::FEDAVG,
            S::WeightedAvg => AggregationStrategy::WEIGHTED_AVG,
            S::Median => AggregationStrategy::MEDIAN,
            S::TrimmedMean => AggregationStrategy::TRIMMED_MEAN,
            S::Krum => AggregationStrategy::KRUM,
            S::MultiKrum => AggregationStrategy::MULTI_KRUM,
            S::FedAvgM => AggregationStrategy::FEDAVGM,
            S::FedAdam => AggregationStrategy::FEDADAM,
            S::FedYogi => AggregationStrategy::FEDYOGI,
            S::AsyncFedAvg => AggregationStrategy::ASYNC_FEDAVG,
        }
    }
}

/// Options of `new GradientAggregator({...})`; every field is optional.
#[napi(object, object_to_js = false)]
pub struct GradientAggregatorOptions<'a> {
    /// Default `AggregationStrategy.FEDAVG`.
    #[napi(ts_type = "AggregationStrategy | `${AggregationStrategy}`")]
    pub strategy: Option<AggregationStrategy>,
    /// TRIMMED_MEAN: fraction trimmed at each end, in [0, 0.5). Default 0.1.
    pub trim_fraction: Option<f64>,
    /// KRUM / MULTI_KRUM: assumed number f of faulty updates (integer ≥ 0); a round needs more than 2f + 2 updates. Default 1.
    pub faulty_nodes: Option<f64>,
    /// MULTI_KRUM: how many of the best-scored updates are averaged. Default n − f.
    pub multi_krum_count: Option<f64>,
    /// Server learning rate η (> 0): default 1.0 for FEDAVGM, 0.1 for FEDADAM, 0.01 for FEDYOGI.
    pub server_learning_rate: Option<f64>,
    /// FEDAVGM momentum μ in [0, 1). Default 0.9.
    pub momentum: Option<f64>,
    /// FEDADAM / FEDYOGI β₁ in [0, 1). Default 0.9.
    pub beta1: Option<f64>,
    /// FEDADAM / FEDYOGI β₂ in [0, 1). Default 0.99.
    pub beta2: Option<f64>,
    /// FEDADAM / FEDYOGI adaptivity τ (> 0). Default 1e-3.
    pub tau: Option<f64>,
    /// The server optimisers' global model (copied): `aggregate`/`finish` then return the updated model.
    #[napi(ts_type = "Float32Array | number[]")]
    pub global_model: Option<Unknown<'a>>,
    /// ASYNC_FEDAVG: exponent a of s(τ) = (1 + τ)^(−a), a ≥ 0 (0 = no discount). Default 0.5.
    pub staleness_exponent: Option<f64>,
    /// ASYNC_FEDAVG: updates more than this many rounds stale are dropped (integer ≥ 0). Default: none dropped.
    pub max_staleness: Option<f64>,
    /// Clip every update to this L2 norm (> 0) before it is weighted. Default: no clipping.
    pub clip_norm: Option<f64>,
    /// Gaussian noise multiplier σ ≥ 0 (needs `clipNorm`; averaging strategies only). Default 0.
    pub noise_multiplier: Option<f64>,
    /// Seed of the noise (integer 0 … 2^53). Default 0.
    pub seed: Option<f64>,
    /// `finish()` refuses a round with fewer updates (integer ≥ 1). Default 1.
    pub min_participants: Option<f64>,
    /// The model's length (integer ≥ 1). Every update of another length, dense or a wire
    /// buffer whose header claims another length, is ERR_LENGTH_MISMATCH before anything of
    /// its size is allocated. Set it on servers that take buffers from the network.
    /// Default: the first update (or `globalModel`) fixes the length.
    pub model_size: Option<f64>,
}

// The array fields of these options are read by `numbers` and `read_f32_out` rather than
// converted by napi, so that a bad one is named with its index and what was found there.
/// Options of `aggregate(grads, {...})`.
#[napi(object, object_to_js = false)]
pub struct AggregateOptions<'a> {
    /// One weight per input, finite and ≥ 0, normalised to sum 1. Default: equal weights.
    #[napi(ts_type = "Array<number>")]
    pub weights: Option<Unknown<'a>>,
    /// ASYNC_FEDAVG only: staleness of each input in rounds (integers ≥ 0). Default 0.
    #[napi(ts_type = "Array<number>")]
    pub staleness: Option<Unknown<'a>>,
    /// Write the result into this array (of the inputs' length, not sharing memory with a
    /// dense input) and return it, instead of allocating a new one: saves the page faults of
    /// a fresh output when aggregating round after round. `aggregate` only.
    #[napi(ts_type = "Float32Array")]
    pub out: Option<Unknown<'a>>,
}

/// Options of `aggregateSparse(grads, {...})`.
#[napi(object, object_to_js = false)]
pub struct AggregateSparseOptions<'a> {
    /// One weight per input, finite and ≥ 0, normalised to sum 1. Default: equal weights.
    #[napi(ts_type = "Array<number>")]
    pub weights: Option<Unknown<'a>>,
    /// ASYNC_FEDAVG only: staleness of each input in rounds (integers ≥ 0). Default 0.
    #[napi(ts_type = "Array<number>")]
    pub staleness: Option<Unknown<'a>>,
    /// A `CompressedGradient` to overwrite with the result and return (not one of `grads`),
    /// e.g. the previous round's once it has been sent: its buffers are reused, which saves
    /// the page faults of a fresh result. `aggregateSparse` only.
    #[napi(ts_type = "CompressedGradient")]
    pub out: Option<Unknown<'a>>,
}

/// `v` unless it is absent, `undefined` or `null`.
fn present(v: Option<Unknown>) -> Option<Unknown> {
    v.filter(|v| !matches!(v.get_type(), Ok(ValueType::Undefined) | Ok(ValueType::Null)))
}

/// The `weights` and `staleness` options, read and checked.
#[allow(clippy::type_complexity)]
fn weights_and_staleness(
    env: &Env,
    weights: Option<Unknown>,
    staleness: Option<Unknown>,
) -> napi::Result<(Option<Vec<f64>>, Option<Vec<f64>>), String> {
    Ok((
        numbers(env, weights, "weights")?,
        numbers(env, staleness, "staleness")?,
    ))
}

/// An optional array of numbers (`options.weights`, `options.staleness`); errors name
/// `what[i]` and what was found there.
fn numbers(env: &Env, v: Option<Unknown>, what: &str) -> napi::Result<Option<Vec<f64>>, String> {
    let Some(v) = present(v) else { return Ok(None) };
    if !v.is_array().unwrap_or(false) {
        return Err(invalid_arg(format!(
            "{what} must be an array of numbers, got {}",
            describe(env, &v)
        )));
    }
    let arr: Array = unsafe { Array::from_napi_value(v.env(), v.raw()) }
        .map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))?;
    let mut out = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let x: Option<Unknown> = arr
            .get(i)
            .map_err(|e| invalid_arg(format!("{what}[{i}]: {}", e.reason)))?;
        let x = x.ok_or_else(|| invalid_arg(format!("{what}[{i}] is missing")))?;
        match x.get_type().map_err(|e| invalid_arg(e.reason.clone()))? {
            ValueType::Number => {
                out.push(unsafe { x.cast::<f64>() }.map_err(|e| invalid_arg(e.reason.clone()))?)
            }
            ValueType::String => {
                let s = unsafe { x.cast::<String>() }.unwrap_or_default();
                return Err(invalid_arg(format!(
                    "{what}[{i}] must be a number, got the string {s:?}"
                )));
            }
            t => {
                return Err(invalid_arg(format!(
                    "{what}[{i}] must be a number, got {}",
                    type_of(t)
                )))
            }
        }
    }
    Ok(Some(out))
}

/// Options of `add(nodeId, grad, {...})`.
#[napi(object, object_to_js = false)]
pub struct AggregatorAddOptions {
    /// Weight, finite and ≥ 0. Default 1.
    pub weight: Option<f64>,
    /// Local sample count, finite and ≥ 0; multiplies the weight (except WEIGHTED_AVG). Default 1.
    pub samples: Option<f64>,
    /// Server round (model version) the client trained from; staleness = finish round − this. Default: the aggregator's current round.
    pub round: Option<f64>,
}

/// Options of `finish({...})`.
#[napi(object, object_to_js = false)]
pub struct FinishOptions {
    /// The current server round (model version) R; staleness of an update = R − its round. Default: the aggregator's `round`.
    pub round: Option<f64>,
}

/// `getStats()`: counters, the privacy parameters and what the last round did.
#[napi(object, object_from_js = false)]
pub struct AggregatorStats {
    /// The aggregator's strategy.
    pub strategy: AggregationStrategy,
    /// Current server round (after a finish with round R it is R + 1).
    pub round: f64,
    /// Rounds completed by `aggregate` or `finish`.
    pub completed_rounds: f64,
    /// Updates added since the last `finish()`.
    pub pending_participants: f64,
    /// `finish()` refuses fewer updates than this.
    pub min_participants: f64,
    /// Σ weights of the pending updates (before staleness).
    pub pending_weight: f64,
    /// Σ samples of the pending updates.
    pub pending_samples: f64,
    /// Length of the pending updates or of the global model; absent when unknown.
    pub model_length: Option<f64>,
    /// Updates aggregated so far, all rounds.
    pub updates_received: f64,
    /// Updates scaled down by `clipNorm`, all rounds.
    pub clipped_updates: f64,
    /// L2 clip norm C; absent without clipping.
    pub clip_norm: Option<f64>,
    /// Noise multiplier σ.
    pub noise_multiplier: f64,
    /// Standard deviation of the noise added per coordinate in the last round (σ·C·max wᵢ/Σ wᵢ).
    pub last_noise_std: f64,
    /// Updates in the last round.
    pub last_participants: f64,
    /// Σ weights of the last round (after staleness).
    pub last_total_weight: f64,
    /// Updates clipped in the last round.
    pub last_clipped: f64,
    /// ASYNC_FEDAVG: updates dropped for staleness in the last round.
    pub last_dropped_stale: f64,
    /// KRUM / MULTI_KRUM: positions (input order, or arrival order for `finish`) of the updates kept last round.
    pub last_selected: Vec<u32>,
    /// Whether a global model is held (server optimisers then return it).
    pub has_global_model: bool,
    /// Server optimiser steps taken.
    pub optimizer_steps: f64,
}

fn integer(name: &str, v: f64, lo: f64, hi: f64) -> std::result::Result<f64, napi::Error<String>> {
    if !(v.is_finite() && v.fract() == 0.0 && v >= lo && v <= hi) {
        return Err(invalid_arg(format!(
            "{name} must be an integer from {lo} to {hi}, got {v}"
        )));
    }
    Ok(v)
}

const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// A gradient held for one call: a borrowed Float32Array, a CompressedGradient instance
/// (borrowed), or a decoded wire buffer.
enum Held<'a> {
    Dense(F32Input<'a>),
    Instance(ClassInstance<'a, CompressedGradient>),
    Decoded(CoreCompressed),
}

impl Held<'_> {
    fn update(&self) -> Update<'_> {
        match self {
            Held::Dense(f) => Update::Dense(f.as_slice()),
            Held::Instance(c) => Update::Compressed(&c.inner),
            Held::Decoded(c) => Update::Compressed(c),
        }
    }
    fn into_owned(self) -> napi::Result<OwnedHeld, String> {
        Ok(match self {
            Held::Dense(f) => OwnedHeld::Dense(f.into_owned()?),
            Held::Instance(c) => OwnedHeld::Compressed(c.inner.clone()),
            Held::Decoded(c) => OwnedHeld::Compressed(c),
        })
    }
}

/// A snapshot for work off the main thread.
enum OwnedHeld {
    Dense(Vec<f32>),
    Compressed(CoreCompressed),
}

impl OwnedHeld {
    fn update(&self) -> Update<'_> {
        match self {
            OwnedHeld::Dense(v) => Update::Dense(v),
            OwnedHeld::Compressed(c) => Update::Compressed(c),
        }
    }
}

fn is_byte_view(env: &Env, value: &Unknown) -> bool {
    typed_array_kind(env, value) == Some(sys::TypedarrayType::uint8_array)
}

/// The length inputs must have when the aggregator fixes it already, and what fixes it
/// (checked in a wire buffer's header before it is decoded).
type Expected = Option<(usize, &'static str)>;

/// Reads one gradient: `Float32Array | number[] | CompressedGradient | Uint8Array` (wire encoding).
fn read_grad<'a>(
    env: &Env,
    value: Unknown<'a>,
    what: &str,
    expected: Expected,
) -> napi::Result<Held<'a>, String> {
    if value
        .get_type()
        .map_err(|e| invalid_arg(e.reason.clone()))?
        == ValueType::Object
        && CompressedGradient::instance_of(env, &value).unwrap_or(false)
    {
        let c =
            unsafe { ClassInstance::<CompressedGradient>::from_napi_value(env.raw(), value.raw()) }
                .map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))?;
        return Ok(Held::Instance(c));
    }
    if is_byte_view(env, &value) {
        let bytes = read_bytes(env, &value, what)?;
        let c = wire::decode_expecting(bytes, expected)
            .map_err(|e| js_err(CoreError::new(e.code, format!("{what}: {}", e.message))))?;
        return Ok(Held::Decoded(c));
    }
    read_f32(env, &value, what).map(Held::Dense).map_err(|e| {
        // A value of the wrong type: say what else would do. (Not for a bad value inside a
        // right type, such as a number beyond the f32 range.)
        if e.status == Code::InvalidArg.as_str() {
            napi::Error::new(
                e.status,
                format!(
                    "{} (or a CompressedGradient, or its toBuffer() bytes)",
                    e.reason
                ),
            )
        } else {
            e
        }
    })
}

/// Reads every gradient of `grads`, in two phases. Reading a JS value can run the caller's
/// code (an index getter, a Proxy trap), and that code could transfer (and so free) an
/// array already borrowed: so every element is fetched, and every `number[]` copied, before
/// the first typed array, buffer or `CompressedGradient` is borrowed; after that no JS runs.
/// The caller must likewise read its other JS arguments before calling this, and borrow
/// nothing before.
fn read_grads<'a>(
    env: &Env,
    grads: Unknown<'a>,
    expected: Expected,
) -> napi::Result<Vec<Held<'a>>, String> {
    let mut is_array = false;
    unsafe { sys::napi_is_array(env.raw(), grads.raw(), &mut is_array) };
    if !is_array {
        let t = grads
            .get_type()
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "unknown".into());
        return Err(invalid_arg(format!(
            "grads must be an array of gradients, got {t}"
        )));
    }
    let arr: Array = unsafe { Array::from_napi_value(env.raw(), grads.raw()) }
        .map_err(|e| invalid_arg(format!("grads: {}", e.reason)))?;
    // Phase 1: fetch (and classify) every element; copy the plain arrays of numbers.
    let mut fetched: Vec<(Unknown, Option<Held>)> = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let what = format!("grads[{i}]");
        let v: Option<Unknown> = arr
            .get(i)
            .map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))?;
        let v = v.ok_or_else(|| invalid_arg(format!("{what} is missing")))?;
        let copied = if v.is_array().unwrap_or(false) {
            Some(read_grad(env, v, &what, expected)?)
        } else {
            None
        };
        fetched.push((v, copied));
    }
    // Phase 2: borrow the rest; no JS code runs from here on.
    fetched
        .into_iter()
        .enumerate()
        .map(|(i, (v, copied))| match copied {
            Some(held) => Ok(held),
            None => read_grad(env, v, &format!("grads[{i}]"), expected),
        })
        .collect()
}

fn config_from_options(
    env: &Env,
    o: GradientAggregatorOptions,
) -> napi::Result<(core::Config, Option<Vec<f32>>), String> {
    let strategy: core::Strategy = o.strategy.map(Into::into).unwrap_or(core::Strategy::FedAvg);
    let mut c = core::Config::new(strategy);
    if let Some(v) = o.trim_fraction {
        c.trim_fraction = v;
    }
    if let Some(v) = o.faulty_nodes {
        c.faulty = integer("faultyNodes", v, 0.0, 1e9)? as usize;
    }
    if let Some(v) = o.multi_krum_count {
        c.multi_krum_count = Some(integer("multiKrumCount", v, 1.0, 1e9)? as usize);
    }
    if let Some(v) = o.server_learning_rate {
        c.server_lr = v;
    }
    if let Some(v) = o.momentum {
        c.momentum = v;
    }
    if let Some(v) = o.beta1 {
        c.beta1 = v;
    }
    if let Some(v) = o.beta2 {
        c.beta2 = v;
    }
    if let Some(v) = o.tau {
        c.tau = v;
    }
    if let Some(v) = o.staleness_exponent {
        c.staleness_exponent = v;
    }
    if let Some(v) = o.max_staleness {
        c.max_staleness = Some(integer("maxStaleness", v, 0.0, MAX_SAFE)? as u64);
    }
    if let Some(v) = o.clip_norm {
        c.clip_norm = Some(v);
    }
    if let Some(v) = o.noise_multiplier {
        c.noise_multiplier = v;
    }
    if let Some(v) = o.seed {
        c.seed = integer("seed", v, 0.0, MAX_SAFE)? as u64;
    }
    if let Some(v) = o.min_participants {
        c.min_participants = integer("minParticipants", v, 1.0, 1e9)? as usize;
    }
    if let Some(v) = o.model_size {
        c.model_size = Some(integer("modelSize", v, 1.0, u32::MAX as f64)? as usize);
    }
    c.validate().map_err(js_err)?;
    let model = match o.global_model {
        Some(u) if !matches!(u.get_type(), Ok(ValueType::Undefined) | Ok(ValueType::Null)) => {
            let m = read_f32(env, &u, "globalModel")?.into_owned()?;
            if m.is_empty() {
                return Err(invalid_arg("globalModel is empty (length 0)"));
            }
            Some(m)
        }
        _ => None,
    };
    Ok((c, model))
}

/// Combines client updates into one: FedAvg and its weighted, robust, server-optimiser and
/// staleness-aware variants. Use `aggregate(grads)` for a round held in memory, or
/// `add(nodeId, grad)` per update as contacts happen and `finish()` at the end of the
/// round; partial rounds move between aggregators with `toBuffer()` / `merge()`.
#[napi]
pub struct GradientAggregator {
    state: Arc<Mutex<Aggregator>>,
    /// Set from an `aggregateAsync` call until its work has finished.
    busy: Arc<AtomicBool>,
}

fn busy() -> napi::Error<String> {
    js_err(CoreError::new(Code::Busy, "this aggregator is busy with an aggregateAsync call; await it before using the aggregator again"))
}

/// Clears the busy flag when the async work ends, even by a panic.
struct BusyGuard(Arc<AtomicBool>);
impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

type AggregateJob<O> = Box<dyn FnOnce() -> std::result::Result<O, CoreError> + Send>;

/// Snapshots `grads`, marks the aggregator busy and runs `run` on its state on the libuv
/// thread pool (the shared body of `aggregateAsync` and `aggregateSparseAsync`).
fn spawn<O: AggregateOutput>(
    agg: &GradientAggregator,
    env: &Env,
    grads: Unknown,
    run: impl FnOnce(&mut Aggregator, &[Update]) -> std::result::Result<O, CoreError> + Send + 'static,
) -> napi::Result<AsyncTask<AggregateTask<O>>, String> {
    let expected = agg.lock()?.model_length();
    let owned: Vec<OwnedHeld> = read_grads(env, grads, expected)?
        .into_iter()
        .map(Held::into_owned)
        .collect::<napi::Result<_, String>>()?;
    drop(agg.lock()?);
    agg.busy.store(true, Ordering::Release);
    let state = agg.state.clone();
    Ok(AsyncTask::new(AggregateTask {
        job: Some(Box::new(move || {
            let ups: Vec<Update> = owned.iter().map(|h| h.update()).collect();
            let mut st = state
                .lock()
                .map_err(|_| CoreError::new(Code::Internal, "aggregator state was poisoned"))?;
            run(&mut st, &ups)
        })),
        _busy: BusyGuard(agg.busy.clone()),
    }))
}

/// What an aggregate task hands back to JavaScript.
pub trait AggregateOutput: Send + 'static {
    /// The JS value the Promise resolves to.
    type Js: ToNapiValue + TypeName;
    /// Wraps the core result (on the main thread).
    fn into_js(self) -> Self::Js;
}

impl AggregateOutput for Vec<f32> {
    type Js = Float32Array;
    fn into_js(self) -> Float32Array {
        Float32Array::new(self)
    }
}

impl AggregateOutput for CoreCompressed {
    type Js = CompressedGradient;
    fn into_js(self) -> CompressedGradient {
        CompressedGradient { inner: self }
    }
}

/// The work of `aggregateAsync` and `aggregateSparseAsync`. The busy flag is held by the
/// task itself, so it is released only when the task is dropped on the main thread, after
/// the Promise settled: a call made before then always sees `ERR_BUSY`.
pub struct AggregateTask<O: AggregateOutput> {
    job: Option<AggregateJob<O>>,
    _busy: BusyGuard,
}

impl<O: AggregateOutput> Task for AggregateTask<O> {
    type Output = std::result::Result<O, CoreError>;
    type JsValue = O::Js;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        // Guarded here: napi-rs calls compute from an extern "C" function (see task.rs).
        Ok(match self.job.take() {
            Some(job) => guard(job),
            None => Err(CoreError::new(Code::Internal, "task ran twice")),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        match output {
            Ok(v) => Ok(v.into_js()),
            Err(e) => {
                let js =
                    JsError::from(napi::Error::new(e.code.as_str(), e.message)).into_unknown(env);
                Err(napi::Error::from(js))
            }
        }
    }
}

impl GradientAggregator {
    fn lock(&self) -> std::result::Result<MutexGuard<'_, Aggregator>, napi::Error<String>> {
        if self.busy.load(Ordering::Acquire) {
            return Err(busy());
        }
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(busy()),
            Err(TryLockError::Poisoned(_)) => Err(js_err(CoreError::new(
                Code::Internal,
                "aggregator state was poisoned by an internal error",
            ))),
        }
    }
}

/// Converts an optional options object, mapping napi's conversion errors (wrong field
/// types, unknown enum values) to `ERR_INVALID_ARG` naming the argument.
fn options_arg<T: FromNapiValue>(
    env: &Env,
    v: Option<Unknown>,
    what: &str,
) -> napi::Result<Option<T>, String> {
    let Some(v) = v else { return Ok(None) };
    match v.get_type().map_err(|e| invalid_arg(e.reason.clone()))? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Object => unsafe { T::from_napi_value(env.raw(), v.raw()) }
            .map(Some)
            .map_err(|e| invalid_arg(format!("{what}: {}", e.reason))),
        t => Err(invalid_arg(format!("{what} must be an object, got {t}"))),
    }
}

fn round_option(name: &str, v: Option<f64>) -> napi::Result<Option<u64>, String> {
    v.map(|r| integer(name, r, 0.0, MAX_SAFE).map(|r| r as u64))
        .transpose()
}

/// Weights and staleness of `aggregate`'s options, read and checked, and its `out` (not
/// yet read: an array is borrowed only once every JS value has been read).
#[allow(clippy::type_complexity)]
fn aggregate_options<'a>(
    env: &Env,
    o: Option<AggregateOptions<'a>>,
) -> napi::Result<(Option<Vec<f64>>, Option<Vec<f64>>, Option<Unknown<'a>>), String> {
    let Some(o) = o else {
        return Ok((None, None, None));
    };
    let (w, s) = weights_and_staleness(env, o.weights, o.staleness)?;
    Ok((w, s, present(o.out)))
}

#[napi]
impl GradientAggregator {
    /// Validates the options (`ERR_INVALID_ARG` naming the option and its value).
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options?: GradientAggregatorOptions"
    )]
    pub fn new(env: Env, options: Option<Unknown>) -> napi::Result<Self, String> {
        let options: Option<GradientAggregatorOptions> = options_arg(&env, options, "options")?;
        let (config, model) = match options {
            Some(o) => config_from_options(&env, o)?,
            None => (core::Config::new(core::Strategy::FedAvg), None),
        };
        let mut agg = Aggregator::new(config).map_err(js_err)?;
        if let Some(m) = model {
            agg.set_global_model(m).map_err(js_err)?;
        }
        Ok(GradientAggregator {
            state: Arc::new(Mutex::new(agg)),
            busy: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The strategy.
    #[napi(getter, catch_unwind)]
    pub fn strategy(&self) -> napi::Result<AggregationStrategy, String> {
        Ok(self.lock()?.config.strategy.into())
    }

    /// The current server round: starts at 0; `aggregate` adds 1; `finish({ round: R })` sets it to R + 1.
    #[napi(getter, catch_unwind)]
    pub fn round(&self) -> napi::Result<f64, String> {
        Ok(self.lock()?.round as f64)
    }

    /// `finish()` refuses a round with fewer updates than this.
    #[napi(getter, catch_unwind)]
    pub fn min_participants(&self) -> napi::Result<u32, String> {
        Ok(self.lock()?.config.min_participants as u32)
    }

    /// Aggregates a whole round at once. `grads` mixes `Float32Array` (read in place),
    /// `CompressedGradient` (sparse ones are added without being densified) and their
    /// `toBuffer()` bytes. `weights` (default equal) are normalised. Returns the aggregate
    /// (a new array, or `out` when given);
    /// for FEDAVGM/FEDADAM/FEDYOGI the updated global model if one was given, otherwise
    /// the server step to add to your model. Does not touch updates pending from `add`.
    #[napi(
        catch_unwind,
        ts_args_type = "grads: Array<Float32Array | CompressedGradient | Uint8Array | number[]>, options?: AggregateOptions"
    )]
    pub fn aggregate(
        &self,
        env: Env,
        grads: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<Float32Array, String> {
        let options: Option<AggregateOptions> = options_arg(&env, options, "options")?;
        // Every JS value is read before any array is borrowed (see `read_grads`).
        let (w, s, out) = aggregate_options(&env, options)?;
        let held = read_grads(&env, grads, self.lock()?.model_length())?;
        let ups: Vec<Update> = held.iter().map(|h| h.update()).collect();
        let out = match out {
            Some(v) => Some(read_f32_out(&env, &v, "out")?),
            None => None,
        };
        let mut st = self.lock()?;
        match out {
            Some(mut o) => {
                // SAFETY: written only during this synchronous call; overlap with a dense input is
                // refused by the core before anything is written.
                let slice: &mut [f32] = unsafe { o.as_mut() };
                st.aggregate_into(&ups, w.as_deref(), s.as_deref(), Some(slice))
                    .map_err(js_err)?;
                Ok(o)
            }
            // The averaging strategies write straight into an engine-owned result.
            None if st.writes_in_place() => {
                let n = st.round_length(&ups).map_err(js_err)?;
                let mut o = new_engine_f32(&env, n, "aggregate")?;
                // SAFETY: a new array that no one else holds yet.
                let slice: &mut [f32] = unsafe { o.as_mut() };
                st.aggregate_into(&ups, w.as_deref(), s.as_deref(), Some(slice))
                    .map_err(js_err)?;
                Ok(o)
            }
            // Robust strategies and server optimisers compute into a Vec: copied into an
            // engine-owned array so the GC can free it in a synchronous loop.
            None => {
                let v = st
                    .aggregate(&ups, w.as_deref(), s.as_deref())
                    .map_err(js_err)?;
                engine_f32_copy(&env, &v, "aggregate")
            }
        }
    }

    /// `aggregate` on the libuv thread pool. The inputs are copied before the call returns,
    /// so the caller may change its arrays at once. Other calls on this aggregator throw
    /// `ERR_BUSY` until the Promise settles.
    #[napi(
        catch_unwind,
        ts_args_type = "grads: Array<Float32Array | CompressedGradient | Uint8Array | number[]>, options?: AggregateOptions",
        ts_return_type = "Promise<Float32Array>"
    )]
    pub fn aggregate_async(
        &self,
        env: Env,
        grads: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<AsyncTask<AggregateTask<Vec<f32>>>, String> {
        let options: Option<AggregateOptions> = options_arg(&env, options, "options")?;
        let (w, s, out) = aggregate_options(&env, options)?;
        if out.is_some() {
            return Err(invalid_arg(
                "out is not supported by aggregateAsync (the result is a new array); use aggregate",
            ));
        }
        spawn(self, &env, grads, move |st, ups| {
            st.aggregate(ups, w.as_deref(), s.as_deref())
        })
    }

    /// `aggregate` with a sparse result, for sparse inputs (`CompressedGradient`s of type
    /// TOP_K, RANDOM_K or TOP_K_QUANTIZED, or their `toBuffer()` bytes): the weighted mean as a
    /// `CompressedGradient` (type TOP_K, f32 values) over the union of the indices of the
    /// inputs with a non-zero weight, entries whose sum is exactly 0 included; its
    /// `decompress()` equals `aggregate`'s result bit for bit, and `toBuffer()` sends it on.
    /// Time is O(total entries + length/64), with no dense array. FEDAVG, WEIGHTED_AVG and
    /// ASYNC_FEDAVG only (with `clipNorm`, without noise); other strategies and dense inputs
    /// are `ERR_INVALID_ARG` (use `aggregate`). Same validation and round counting as
    /// `aggregate`; the result's `round` is the round it completes. With `out`, that
    /// gradient is overwritten and returned.
    #[napi(
        catch_unwind,
        ts_args_type = "grads: Array<CompressedGradient | Uint8Array>, options?: AggregateSparseOptions",
        ts_return_type = "CompressedGradient"
    )]
    pub fn aggregate_sparse<'a>(
        &self,
        env: Env,
        grads: Unknown<'a>,
        options: Option<Unknown<'a>>,
    ) -> napi::Result<Either<Unknown<'a>, CompressedGradient>, String> {
        let options: Option<AggregateSparseOptions> = options_arg(&env, options, "options")?;
        let (w, s, out) = match options {
            Some(o) => {
                let (w, s) = weights_and_staleness(&env, o.weights, o.staleness)?;
                (w, s, present(o.out))
            }
            None => (None, None, None),
        };
        if let Some(v) = &out {
            if !CompressedGradient::instance_of(&env, v).unwrap_or(false) {
                return Err(invalid_arg(format!(
                    "out must be a CompressedGradient, got {} (for a dense result in a Float32Array, use aggregate)",
                    describe(&env, v)
                )));
            }
        }
        // Every JS value is read before any array is borrowed (see `read_grads`).
        let held = read_grads(&env, grads, self.lock()?.model_length())?;
        let ups: Vec<Update> = held.iter().map(|h| h.update()).collect();
        let out = match out {
            Some(v) => {
                let c = unsafe {
                    ClassInstance::<CompressedGradient>::from_napi_value(env.raw(), v.raw())
                }
                .map_err(|e| invalid_arg(format!("out: {}", e.reason)))?;
                let target: *const CompressedGradient = &*c;
                for (i, h) in held.iter().enumerate() {
                    if matches!(h, Held::Instance(g) if ptr::eq(&**g, target)) {
                        return Err(invalid_arg(format!(
                            "out is grads[{i}]; pass another CompressedGradient (or none)"
                        )));
                    }
                }
                Some((v, c))
            }
            _ => None,
        };
        let mut st = self.lock()?;
        match out {
            Some((v, mut c)) => {
                // `c` is none of the inputs (checked above), so this is its only borrow.
                st.aggregate_sparse_into(&ups, w.as_deref(), s.as_deref(), &mut c.inner)
                    .map_err(js_err)?;
                Ok(Either::A(v))
            }
            None => Ok(Either::B(CompressedGradient {
                inner: st
                    .aggregate_sparse(&ups, w.as_deref(), s.as_deref())
                    .map_err(js_err)?,
            })),
        }
    }

    /// `aggregateSparse` on the libuv thread pool (without `out`). The inputs are copied
    /// before the call returns; other calls on this aggregator throw `ERR_BUSY` until the
    /// Promise settles.
    #[napi(
        catch_unwind,
        ts_args_type = "grads: Array<CompressedGradient | Uint8Array>, options?: AggregateSparseOptions",
        ts_return_type = "Promise<CompressedGradient>"
    )]
    pub fn aggregate_sparse_async(
        &self,
        env: Env,
        grads: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<AsyncTask<AggregateTask<CoreCompressed>>, String> {
        let options: Option<AggregateSparseOptions> = options_arg(&env, options, "options")?;
        let (w, s) = match options {
            Some(o) => {
                if present(o.out).is_some() {
                    return Err(invalid_arg(
                        "out is not supported by aggregateSparseAsync (the result is a new CompressedGradient); use aggregateSparse",
                    ));
                }
                weights_and_staleness(&env, o.weights, o.staleness)?
            }
            None => (None, None),
        };
        spawn(self, &env, grads, move |st, ups| {
            st.aggregate_sparse(ups, w.as_deref(), s.as_deref())
        })
    }

    /// Adds one client's update to the pending round (streaming). Linear strategies fold it
    /// into a running sum at once (nothing kept); robust ones keep a copy. A second update
    /// from the same `nodeId` before `finish()` is `ERR_DUPLICATE_NODE`; a bad update leaves
    /// the round unchanged.
    #[napi(
        catch_unwind,
        ts_args_type = "nodeId: string, grad: Float32Array | CompressedGradient | Uint8Array | number[], options?: AggregatorAddOptions"
    )]
    pub fn add(
        &self,
        env: Env,
        node_id: String,
        grad: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<(), String> {
        let options: Option<AggregatorAddOptions> = options_arg(&env, options, "options")?;
        self.add_with(&env, node_id, grad, options)
    }

    fn add_with(
        &self,
        env: &Env,
        node_id: String,
        grad: Unknown,
        options: Option<AggregatorAddOptions>,
    ) -> napi::Result<(), String> {
        let env = *env;
        let held = read_grad(&env, grad, "grad", self.lock()?.add_length())?;
        let o = options.unwrap_or(AggregatorAddOptions {
            weight: None,
            samples: None,
            round: None,
        });
        let round = round_option("round", o.round)?;
        let add = AddOptions {
            weight: o.weight.unwrap_or(1.0),
            samples: o.samples.unwrap_or(1.0),
            round,
        };
        self.lock()?
            .add(&node_id, held.update(), add)
            .map_err(js_err)
    }

    /// The published package's name for `add(nodeId, gradients, { samples })`.
    #[napi(
        catch_unwind,
        ts_args_type = "nodeId: string, gradients: Float32Array | CompressedGradient | Uint8Array | number[], samples?: number"
    )]
    pub fn receive_gradients(
        &self,
        env: Env,
        node_id: String,
        gradients: Unknown,
        samples: Option<f64>,
    ) -> napi::Result<(), String> {
        self.add_with(
            &env,
            node_id,
            gradients,
            Some(AggregatorAddOptions {
                weight: None,
                samples,
                round: None,
            }),
        )
    }

    /// Updates added since the last `finish()`.
    #[napi(getter, catch_unwind)]
    pub fn num_participants(&self) -> napi::Result<u32, String> {
        Ok(self.lock()?.pending.count() as u32)
    }

    /// True when at least `minParticipants` updates are pending.
    #[napi(catch_unwind)]
    pub fn ready(&self) -> napi::Result<bool, String> {
        Ok(self.lock()?.ready())
    }

    /// The published package's name for `ready()`.
    #[napi(catch_unwind)]
    pub fn ready_to_aggregate(&self) -> napi::Result<bool, String> {
        self.ready()
    }

    /// Aggregates the pending round and starts the next one (the published package's
    /// `aggregate()`). `round` is the current server round R (staleness = R − update round;
    /// default the aggregator's `round`); afterwards `round` is R + 1. Fewer than
    /// `minParticipants` updates is `ERR_NO_CLIENTS`. Returns what `aggregate` returns.
    #[napi(catch_unwind, ts_args_type = "options?: FinishOptions")]
    pub fn finish(&self, env: Env, options: Option<Unknown>) -> napi::Result<Float32Array, String> {
        let options: Option<FinishOptions> = options_arg(&env, options, "options")?;
        let round = round_option("round", options.and_then(|o| o.round))?;
        let v = self.lock()?.finish(round).map_err(js_err)?;
        engine_f32_copy(&env, &v, "finish")
    }

    /// The pending round as a versioned, CRC32C-checked Buffer, for `merge` into another
    /// aggregator. The pending round is kept here (so a failed transfer can be retried): call
    /// `clear()` once it is delivered. A receiver rejects node ids it already holds.
    #[napi(catch_unwind)]
    pub fn to_buffer<'a>(&self, env: &'a Env) -> napi::Result<BufferSlice<'a>, String> {
        let st = self.lock()?;
        engine_buffer(env, &partial::encode(&st).map_err(js_err)?, "toBuffer()")
    }

    /// Adds a partial round from another aggregator's `toBuffer()`. Same strategy and
    /// `clipNorm` required (`ERR_INVALID_ARG`); a damaged buffer is `ERR_CORRUPT_DATA`; a
    /// node already in this round is `ERR_DUPLICATE_NODE`. On error nothing changes.
    #[napi(catch_unwind, ts_args_type = "partial: Uint8Array")]
    pub fn merge(&self, env: Env, partial: Unknown) -> napi::Result<(), String> {
        let bytes = read_bytes(&env, &partial, "partial")?;
        let p = partial::decode(bytes).map_err(js_err)?;
        self.lock()?.merge(p).map_err(js_err)
    }

    /// Drops the pending round (for example once `toBuffer()` has been sent upstream).
    #[napi(catch_unwind)]
    pub fn clear(&self) -> napi::Result<(), String> {
        self.lock()?.pending = Default::default();
        Ok(())
    }

    /// Sets (copies) the global model the server optimisers update.
    #[napi(catch_unwind, ts_args_type = "model: Float32Array | number[]")]
    pub fn set_global_model(&self, env: Env, model: Unknown) -> napi::Result<(), String> {
        let m = read_f32(&env, &model, "model")?.into_owned()?;
        if m.is_empty() {
            return Err(invalid_arg("model is empty (length 0)"));
        }
        self.lock()?.set_global_model(m).map_err(js_err)
    }

    /// A copy of the global model, or null when none was given.
    #[napi(getter, catch_unwind)]
    pub fn global_model(&self, env: Env) -> napi::Result<Option<Float32Array>, String> {
        let st = self.lock()?;
        st.server
            .model
            .as_deref()
            .map(|m| engine_f32_copy(&env, m, "globalModel"))
            .transpose()
    }

    /// Drops the server optimiser's moments (the global model is kept).
    #[napi(catch_unwind)]
    pub fn reset_state(&self) -> napi::Result<(), String> {
        self.lock()?.reset_state();
        Ok(())
    }

    /// Counters, privacy parameters and what the last round did.
    #[napi(getter, catch_unwind)]
    pub fn stats(&self) -> napi::Result<AggregatorStats, String> {
        let s = self.lock()?.stats();
        Ok(AggregatorStats {
            strategy: s.strategy.into(),
            round: s.round as f64,
            completed_rounds: s.completed_rounds as f64,
            pending_participants: s.pending_participants as f64,
            min_participants: s.min_participants as f64,
            pending_weight: s.pending_weight,
            pending_samples: s.pending_samples,
            model_length: s.model_length.map(|n| n as f64),
            updates_received: s.updates_received as f64,
            clipped_updates: s.clipped_updates as f64,
            clip_norm: s.clip_norm,
            noise_multiplier: s.noise_multiplier,
            last_noise_std: s.last.noise_std,
            last_participants: s.last.participants as f64,
            last_total_weight: s.last.total_weight,
            last_clipped: s.last.clipped as f64,
            last_dropped_stale: s.last.dropped_stale as f64,
            last_selected: s.last.selected,
            has_global_model: s.has_global_model,
            optimizer_steps: s.optimizer_steps as f64,
        })
    }

    /// Same as the `stats` getter (the published package's name).
    #[napi(catch_unwind)]
    pub fn get_stats(&self) -> napi::Result<AggregatorStats, String> {
        self.stats()
    }
}
