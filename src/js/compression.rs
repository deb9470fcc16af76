//! JS classes for gradient compression: `CompressionType`, `CompressionConfig`,
//! `FederatedClient` and `CompressedGradient`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::arrays::{
    engine_buffer, engine_f32_copy, engine_u32, new_engine_f32, read_bytes, read_f32,
};
use super::task::CoreTask;
use super::{invalid_arg, js_err};
use crate::core::compression as core;
use crate::core::error::{Code, Error as CoreError};
use crate::core::wire;

/// How gradients are reduced before transmission.
#[napi(string_enum)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum CompressionType {
    /// Every value as f32 (or f16 with `fp16Values`).
    #[napi(value = "none")]
    NONE,
    /// The k values of largest magnitude (exact; ties go to the lower index).
    #[napi(value = "top_k")]
    TOP_K,
    /// k positions drawn uniformly without replacement from the seeded generator.
    #[napi(value = "random_k")]
    RANDOM_K,
    /// Every value, stochastically quantized (unbiased) to `quantizationBits` bits.
    #[napi(value = "quantization")]
    QUANTIZATION,
    /// Top-k, then the kept values quantized.
    #[napi(value = "top_k_quantized")]
    TOP_K_QUANTIZED,
}

impl From<CompressionType> for core::CompressionType {
    fn from(t: CompressionType) -> Self {
        match t {
            CompressionType::NONE => core::CompressionType::None,
            CompressionType::TOP_K => core::CompressionType::TopK,
            CompressionType::RANDOM_K => core::CompressionType::RandomK,
            CompressionType::QUANTIZATION => core::CompressionType::Quantization,
            CompressionType::TOP_K_QUANTIZED => core::CompressionType::TopKQuantized,
        }
    }
}

impl From<core::CompressionType> for CompressionType {
    fn from(t: core::CompressionType) -> Self {
        match t {
            core::CompressionType::None => CompressionType::NONE,
            core::CompressionType::TopK => CompressionType::TOP_K,
            core::CompressionType::RandomK => CompressionType::RANDOM_K,
            core::CompressionType::Quantization => CompressionType::QUANTIZATION,
            core::CompressionType::TopKQuantized => CompressionType::TOP_K_QUANTIZED,
        }
    }
}

/// Options of `new CompressionConfig({...})`; every field is optional.
#[napi(object)]
pub struct CompressionConfigOptions {
    /// Default `CompressionType.TOP_K`.
    #[napi(ts_type = "CompressionType | `${CompressionType}`")]
    pub compression_type: Option<CompressionType>,
    /// Fraction of values dropped, in [0, 1); k = clamp(round(n·(1−sparsity)), 1, n). Default 0.99.
    pub sparsity: Option<f64>,
    /// Keep what was not sent and add it to the next gradient (EF-SGD). Default true.
    pub error_feedback: Option<bool>,
    /// Bits per quantized value, an integer from 1 to 16. Default 8.
    pub quantization_bits: Option<f64>,
    /// Seed of random-k and stochastic rounding (a non-negative integer ≤ 2^53). Default 0.
    pub seed: Option<f64>,
    /// Send unquantized values as IEEE half floats (halves the value bytes). Default false.
    pub fp16_values: Option<bool>,
}

fn integer_option(
    name: &str,
    v: f64,
    lo: f64,
    hi: f64,
) -> std::result::Result<f64, napi::Error<String>> {
    if !(v.is_finite() && v.fract() == 0.0 && v >= lo && v <= hi) {
        return Err(invalid_arg(format!(
            "{name} must be an integer from {lo} to {hi}, got {v}"
        )));
    }
    Ok(v)
}

fn config_from_options(
    o: CompressionConfigOptions,
) -> std::result::Result<core::CompressionConfig, napi::Error<String>> {
    let d = core::CompressionConfig::default();
    let bits = match o.quantization_bits {
        Some(b) => integer_option("quantizationBits", b, 1.0, 16.0)? as u8,
        None => d.quantization_bits,
    };
    let seed = match o.seed {
        Some(s) => integer_option("seed", s, 0.0, 9_007_199_254_740_992.0)? as u64,
        None => d.seed,
    };
    let c = core::CompressionConfig {
        compression_type: o
            .compression_type
            .map(Into::into)
            .unwrap_or(d.compression_type),
        sparsity: o.sparsity.unwrap_or(d.sparsity),
        error_feedback: o.error_feedback.unwrap_or(d.error_feedback),
        quantization_bits: bits,
        seed,
        fp16_values: o.fp16_values.unwrap_or(d.fp16_values),
    };
    c.validate().map_err(js_err)?;
    Ok(c)
}

/// A validated gradient-compression configuration.
#[napi]
#[derive(Clone)]
pub struct CompressionConfig {
    pub(crate) inner: core::CompressionConfig,
}

#[napi]
impl CompressionConfig {
    /// Validates the options: `ERR_INVALID_ARG` for sparsity outside [0, 1), bits outside 1–16, a bad seed.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<CompressionConfigOptions>) -> napi::Result<Self, String> {
        let o = options.unwrap_or(CompressionConfigOptions {
            compression_type: None,
            sparsity: None,
            error_feedback: None,
            quantization_bits: None,
            seed: None,
            fp16_values: None,
        });
        Ok(CompressionConfig {
            inner: config_from_options(o)?,
        })
    }

    /// Top-0.1% with 4-bit values and error feedback: for the thinnest links.
    #[napi(factory)]
    pub fn high_compression() -> Self {
        CompressionConfig {
            inner: core::CompressionConfig {
                compression_type: core::CompressionType::TopKQuantized,
                sparsity: 0.999,
                quantization_bits: 4,
                ..Default::default()
            },
        }
    }

    /// Top-1% with 8-bit values and error feedback.
    #[napi(factory)]
    pub fn balanced() -> Self {
        CompressionConfig {
            inner: core::CompressionConfig {
                compression_type: core::CompressionType::TopKQuantized,
                sparsity: 0.99,
                ..Default::default()
            },
        }
    }

    /// Every value, 16-bit stochastic quantization, no error feedback.
    #[napi(factory)]
    pub fn low_compression() -> Self {
        CompressionConfig {
            inner: core::CompressionConfig {
                compression_type: core::CompressionType::Quantization,
                sparsity: 0.0,
                quantization_bits: 16,
                error_feedback: false,
                ..Default::default()
            },
        }
    }

    /// How gradients are reduced.
    #[napi(getter)]
    pub fn compression_type(&self) -> CompressionType {
        self.inner.compression_type.into()
    }

    /// Fraction of values dropped.
    #[napi(getter)]
    pub fn sparsity(&self) -> f64 {
        self.inner.sparsity
    }

    /// Whether the client keeps and re-adds what it did not send.
    #[napi(getter)]
    pub fn error_feedback(&self) -> bool {
        self.inner.error_feedback
    }

    /// Bits per quantized value.
    #[napi(getter)]
    pub fn quantization_bits(&self) -> u32 {
        self.inner.quantization_bits as u32
    }

    /// Seed of random-k and stochastic rounding.
    #[napi(getter)]
    pub fn seed(&self) -> f64 {
        self.inner.seed as f64
    }

    /// Whether unquantized values are sent as half floats.
    #[napi(getter)]
    pub fn fp16_values(&self) -> bool {
        self.inner.fp16_values
    }

    /// How many values a gradient of `n` values keeps under this configuration.
    #[napi(catch_unwind)]
    pub fn k_for(&self, n: f64) -> napi::Result<f64, String> {
        let n = integer_option("n", n, 0.0, wire::MAX_LENGTH as f64)?;
        Ok(self.inner.k_for(n as usize) as f64)
    }

    /// Plain-object form, for `JSON.stringify`.
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> CompressionConfigOptions {
        CompressionConfigOptions {
            compression_type: Some(self.inner.compression_type.into()),
            sparsity: Some(self.inner.sparsity),
            error_feedback: Some(self.inner.error_feedback),
            quantization_bits: Some(self.inner.quantization_bits as f64),
            seed: Some(self.inner.seed as f64),
            fp16_values: Some(self.inner.fp16_values),
        }
    }
}

/// One client's compressed gradient for one round: sparse (indices + values) or dense.
#[napi]
pub struct CompressedGradient {
    pub(crate) inner: core::CompressedGradient,
}

#[napi]
impl CompressedGradient {
    /// Kept positions, ascending (a new `Uint32Array`; for dense types, every position).
    #[napi(getter, catch_unwind)]
    pub fn indices<'a>(&self, env: &'a Env) -> napi::Result<Uint32ArraySlice<'a>, String> {
        if self.inner.dense {
            let all: Vec<u32> = (0..self.inner.length as u32).collect();
            engine_u32(env, &all, "indices")
        } else {
            engine_u32(env, &self.inner.indices, "indices")
        }
    }
    /// The values as the receiver decodes them (a new `Float32Array`).
    #[napi(getter, catch_unwind)]
    pub fn values(&self, env: Env) -> napi::Result<Float32Array, String> {
        engine_f32_copy(&env, &self.inner.values, "values")
    }
    /// Length of the original gradient.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.inner.length as u32
    }
    /// Number of values carried.
    #[napi(getter)]
    pub fn nnz(&self) -> u32 {
        self.inner.nnz() as u32
    }
    /// True when every position is carried (NONE, QUANTIZATION).
    #[napi(getter)]
    pub fn is_dense(&self) -> bool {
        self.inner.dense
    }
    /// The compression that produced it.
    #[napi(getter)]
    pub fn compression_type(&self) -> CompressionType {
        self.inner.compression_type.into()
    }
    /// The sending client's round counter (0-based).
    #[napi(getter)]
    pub fn round(&self) -> u32 {
        self.inner.round
    }
    /// Size of `toBuffer()` in bytes.
    #[napi(getter)]
    pub fn wire_bytes(&self) -> f64 {
        wire::encoded_len(&self.inner) as f64
    }
    /// Original bytes (4·length) ÷ the bytes of its wire encoding.
    #[napi(getter)]
    pub fn compression_ratio(&self) -> f64 {
        4.0 * self.inner.length as f64 / wire::encoded_len(&self.inner) as f64
    }

    /// The wire encoding: versioned, CRC32C-checked (see the README's wire-format section).
    /// `ERR_NON_FINITE` for a gradient holding NaN or ±Inf (what an overflowing
    /// `aggregateSparse` leaves in its `out`): the decoder would refuse those bytes.
    #[napi(catch_unwind)]
    pub fn to_buffer<'a>(&self, env: &'a Env) -> napi::Result<BufferSlice<'a>, String> {
        crate::core::aggregation::Update::Compressed(&self.inner)
            .check_finite("this CompressedGradient")
            .map_err(js_err)?;
        engine_buffer(env, &wire::encode(&self.inner), "toBuffer()")
    }

    /// Parses a wire encoding; any truncation, alteration or forgery is `ERR_CORRUPT_DATA`.
    #[napi(factory, catch_unwind, ts_args_type = "buffer: Uint8Array")]
    pub fn from_buffer(env: Env, buffer: Unknown) -> napi::Result<CompressedGradient, String> {
        let bytes = read_bytes(&env, &buffer, "buffer")?;
        Ok(CompressedGradient {
            inner: wire::decode(bytes).map_err(js_err)?,
        })
    }

    /// The full-length gradient it stands for (zeros where nothing was sent).
    #[napi(catch_unwind)]
    pub fn decompress(&self, env: Env) -> napi::Result<Float32Array, String> {
        // Engine-owned, so the GC frees it even inside a synchronous loop.
        let mut out = new_engine_f32(&env, self.inner.length, "decompress()")?;
        // SAFETY: a new array that no one else holds yet.
        let slice: &mut [f32] = unsafe { out.as_mut() };
        if self.inner.dense {
            slice.copy_from_slice(&self.inner.values);
        } else {
            // The engine zero-fills new arrays.
            self.inner.add_scaled_into(slice, 1.0);
        }
        Ok(out)
    }
}

/// Options of `new FederatedClient({...})`.
#[napi(object)]
pub struct FederatedClientOptions<'a> {
    /// This client's id, e.g. `'sat-001'`.
    pub node_id: String,
    /// A `CompressionConfig`, or its options; default `new CompressionConfig()` (top-1% with error feedback).
    #[napi(ts_type = "CompressionConfig | CompressionConfigOptions")]
    pub compression: Option<Unknown<'a>>,
}

/// Traffic and round counters of a client.
#[napi(object)]
pub struct FederatedClientStats {
    /// The client's node id.
    pub node_id: String,
    /// Rounds compressed so far.
    pub rounds: f64,
    /// Bytes of gradients given to `compress` (4 per value).
    pub bytes_in: f64,
    /// Bytes of the wire encodings produced.
    pub bytes_out: f64,
    /// bytesIn ÷ bytesOut (0 before the first round).
    pub compression_ratio: f64,
    /// L2 norm of the error-feedback residual.
    pub residual_norm: f64,
    /// The configured compression type.
    pub compression_type: CompressionType,
}

/// A federated-learning client: compresses its gradients for transmission and keeps the
/// error-feedback residual between rounds.
#[napi]
pub struct FederatedClient {
    node_id: String,
    state: Arc<Mutex<core::ClientState>>,
    /// Set from a `compressAsync` call until its work has finished, so calls apply in order.
    busy: Arc<AtomicBool>,
}

fn busy() -> napi::Error<String> {
    js_err(CoreError::new(
        Code::Busy,
        "this client is busy with a compressAsync call; await it before using the client again",
    ))
}

/// Clears the busy flag when the async work ends, even by a panic.
struct BusyGuard(Arc<AtomicBool>);
impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl FederatedClient {
    fn lock(
        &self,
    ) -> std::result::Result<std::sync::MutexGuard<'_, core::ClientState>, napi::Error<String>>
    {
        if self.busy.load(Ordering::Acquire) {
            return Err(busy());
        }
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(busy()),
            // A panic while the lock was held: the state may be half-updated, refuse it.
            Err(TryLockError::Poisoned(_)) => Err(js_err(CoreError::new(
                Code::Internal,
                "client state was poisoned by an internal error",
            ))),
        }
    }
}

fn config_from_unknown(
    env: &Env,
    v: Option<Unknown>,
) -> std::result::Result<core::CompressionConfig, napi::Error<String>> {
    let Some(v) = v else {
        return Ok(core::CompressionConfig::default());
    };
    match v.get_type().map_err(|e| invalid_arg(e.reason.clone()))? {
        ValueType::Undefined | ValueType::Null => return Ok(core::CompressionConfig::default()),
        ValueType::Object => {}
        t => {
            return Err(invalid_arg(format!(
                "compression must be a CompressionConfig or an options object, got {t}"
            )))
        }
    }
    if CompressionConfig::instance_of(env, &v).unwrap_or(false) {
        let c = unsafe { ClassInstance::<CompressionConfig>::from_napi_value(env.raw(), v.raw()) }
            .map_err(|e| invalid_arg(format!("compression: {}", e.reason)))?;
        return Ok(c.inner.clone());
    }
    let o = unsafe { CompressionConfigOptions::from_napi_value(env.raw(), v.raw()) }
        .map_err(|e| invalid_arg(format!("compression: {}", e.reason)))?;
    config_from_options(o)
}

#[napi]
impl FederatedClient {
    /// Creates a client; `nodeId` must be a non-empty string.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: FederatedClientOptions) -> napi::Result<Self, String> {
        if options.node_id.is_empty() || options.node_id.len() > u16::MAX as usize {
            return Err(invalid_arg(format!(
                "nodeId must be a non-empty string of at most 65535 bytes, got {:?}",
                options.node_id
            )));
        }
        let config = config_from_unknown(&env, options.compression)?;
        Ok(FederatedClient {
            node_id: options.node_id,
            state: Arc::new(Mutex::new(core::ClientState::new(config).map_err(js_err)?)),
            busy: Arc::new(AtomicBool::new(false)),
        })
    }

    /// This client's id.
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.node_id.clone()
    }

    /// A copy of this client's configuration.
    #[napi(getter)]
    pub fn compression(&self) -> napi::Result<CompressionConfig, String> {
        Ok(CompressionConfig {
            inner: self.lock()?.config.clone(),
        })
    }

    /// Compresses one gradient (a `Float32Array`, read without copying; a `number[]` is
    /// accepted and converted). Under error feedback the residual is added first and what
    /// is not sent stays in it. NaN/±Inf is `ERR_NON_FINITE` naming the first index; a
    /// length different from the residual's is `ERR_LENGTH_MISMATCH`; both leave the state
    /// unchanged.
    #[napi(catch_unwind, ts_args_type = "gradients: Float32Array | number[]")]
    pub fn compress(
        &self,
        env: Env,
        gradients: Unknown,
    ) -> napi::Result<CompressedGradient, String> {
        let g = read_f32(&env, &gradients, "gradients")?;
        let mut st = self.lock()?;
        Ok(CompressedGradient {
            inner: st.compress(g.as_slice()).map_err(js_err)?,
        })
    }

    /// `compress` on the libuv thread pool, for large gradients. The input is copied before
    /// the call returns, so the caller may reuse its array at once.
    #[napi(
        catch_unwind,
        ts_args_type = "gradients: Float32Array | number[]",
        ts_return_type = "Promise<CompressedGradient>"
    )]
    pub fn compress_async(
        &self,
        env: Env,
        gradients: Unknown,
    ) -> napi::Result<AsyncTask<CoreTask<CompressedGradient>>, String> {
        let g = read_f32(&env, &gradients, "gradients")?.into_owned()?;
        drop(self.lock()?);
        self.busy.store(true, Ordering::Release);
        let guard = BusyGuard(self.busy.clone());
        let state = self.state.clone();
        Ok(CoreTask::new(move || {
            let _guard = guard;
            let mut st = state
                .lock()
                .map_err(|_| CoreError::new(Code::Internal, "client state was poisoned"))?;
            Ok(CompressedGradient {
                inner: st.compress(&g)?,
            })
        }))
    }

    /// A copy of the error-feedback residual, or `null` before the first round (or without
    /// error feedback).
    #[napi(getter, catch_unwind)]
    pub fn residual(&self, env: Env) -> napi::Result<Option<Float32Array>, String> {
        let st = self.lock()?;
        Ok(if st.residual.is_empty() {
            None
        } else {
            Some(engine_f32_copy(&env, &st.residual, "residual")?)
        })
    }

    /// Drops the residual: the next round starts with no carried error (and may change length).
    #[napi(catch_unwind)]
    pub fn reset_residual(&self) -> napi::Result<(), String> {
        self.lock()?.reset_residual();
        Ok(())
    }

    /// Counters: rounds, bytes in and out, ratio, residual norm.
    #[napi(getter)]
    pub fn stats(&self) -> napi::Result<FederatedClientStats, String> {
        let st = self.lock()?;
        Ok(FederatedClientStats {
            node_id: self.node_id.clone(),
            rounds: st.rounds as f64,
            bytes_in: st.bytes_in as f64,
            bytes_out: st.bytes_out as f64,
            compression_ratio: if st.bytes_out == 0 {
                0.0
            } else {
                st.bytes_in as f64 / st.bytes_out as f64
            },
            residual_norm: st
                .residual
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt(),
            compression_type: st.config.compression_type.into(),
        })
    }

    /// Same as the `stats` getter (the published JS package's name).
    #[napi(catch_unwind)]
    pub fn get_stats(&self) -> napi::Result<FederatedClientStats, String> {
        self.stats()
    }

    /// The whole state (id, configuration, round, counters, residual) as a CRC32C-checked
    /// Buffer, so a satellite that reboots between passes loses nothing.
    #[napi(catch_unwind)]
    pub fn save_state<'a>(&self, env: &'a Env) -> napi::Result<BufferSlice<'a>, String> {
        let st = self.lock()?;
        engine_buffer(env, &wire::encode_state(&self.node_id, &st), "saveState()")
    }

    /// Rebuilds a client from `saveState()`; a damaged buffer is `ERR_CORRUPT_DATA`.
    #[napi(factory, catch_unwind, ts_args_type = "state: Uint8Array")]
    pub fn restore_state(env: Env, state: Unknown) -> napi::Result<FederatedClient, String> {
        let bytes = read_bytes(&env, &state, "state")?;
        let (node_id, st) = wire::decode_state(bytes).map_err(js_err)?;
        Ok(FederatedClient {
            node_id,
            state: Arc::new(Mutex::new(st)),
            busy: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Plain SGD step, `params − learningRate·update` (default rate 0.01), as a new array.
    #[napi(
        catch_unwind,
        ts_args_type = "params: Float32Array | number[], update: Float32Array | number[], learningRate?: number"
    )]
    pub fn apply_update(
        &self,
        env: Env,
        params: Unknown,
        update: Unknown,
        learning_rate: Option<f64>,
    ) -> napi::Result<Float32Array, String> {
        // A `number[]` is copied first: reading it can run the caller's code (a getter), which
        // must not run while the other argument's memory is borrowed (it could transfer it).
        let (p, u) = if update.is_array().unwrap_or(false) {
            let u = read_f32(&env, &update, "update")?;
            (read_f32(&env, &params, "params")?, u)
        } else {
            let p = read_f32(&env, &params, "params")?;
            (p, read_f32(&env, &update, "update")?)
        };
        let lr = learning_rate.unwrap_or(0.01);
        if !lr.is_finite() {
            return Err(invalid_arg(format!(
                "learningRate must be finite, got {lr}"
            )));
        }
        let step = core::sgd_step(p.as_slice(), u.as_slice(), lr as f32).map_err(js_err)?;
        engine_f32_copy(&env, &step, "applyUpdate")
    }
}
