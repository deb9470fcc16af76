//! Gradient compression for thin space links: exact top-k, seeded random-k, stochastic
//! (unbiased) quantization, and error feedback (EF-SGD / DGC style).
//!
//! Everything here is O(n) and allocation-light: the client's residual doubles as the
//! accumulator (`residual += g`), top-k selects by radix histograms over the f32 bit
//! patterns (no copy of the input, no sort), and large inputs are split across threads
//! with rayon.

use rayon::prelude::*;

use crate::core::error::{check_finite, Code, Error, Result};
use crate::core::half::{f16_bits_to_f32, f32_to_f16_bits};
use crate::core::rng::Rng;

/// Below this many elements the work stays on the calling thread.
const PAR_THRESHOLD: usize = 1 << 17;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 16;
/// Values per quantization block; each block carries its own f32 scale.
pub const QUANT_BLOCK: usize = 1024;

/// How a gradient is reduced before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Every value, as f32 (or f16).
    None,
    /// The k values of largest magnitude.
    TopK,
    /// k positions drawn uniformly without replacement from a seeded generator.
    RandomK,
    /// Every value, stochastically quantized to `bits` bits.
    Quantization,
    /// Top-k, then the kept values quantized.
    TopKQuantized,
}

impl CompressionType {
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionType::None => "none",
            CompressionType::TopK => "top_k",
            CompressionType::RandomK => "random_k",
            CompressionType::Quantization => "quantization",
            CompressionType::TopKQuantized => "top_k_quantized",
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            CompressionType::None => 0,
            CompressionType::TopK => 1,
            CompressionType::RandomK => 2,
            CompressionType::Quantization => 3,
            CompressionType::TopKQuantized => 4,
        }
    }
    pub fn from_u8(x: u8) -> Option<Self> {
        Some(match x {
            0 => CompressionType::None,
            1 => CompressionType::TopK,
            2 => CompressionType::RandomK,
            3 => CompressionType::Quantization,
            4 => CompressionType::TopKQuantized,
            _ => return None,
        })
    }
    fn sparse(self) -> bool {
        matches!(
            self,
            CompressionType::TopK | CompressionType::RandomK | CompressionType::TopKQuantized
        )
    }
    fn uses_top_k(self) -> bool {
        matches!(self, CompressionType::TopK | CompressionType::TopKQuantized)
    }
    fn quantized(self) -> bool {
        matches!(
            self,
            CompressionType::Quantization | CompressionType::TopKQuantized
        )
    }
}

/// How the kept values are stored on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueEncoding {
    F32,
    F16,
    /// Stochastic quantization: `bits` per value (sign and magnitude), one f32 scale per
    /// block of [`QUANT_BLOCK`] values.
    Quantized {
        bits: u8,
    },
}

/// A validated compression configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionConfig {
    pub compression_type: CompressionType,
    /// Fraction of values dropped, in [0, 1).
    pub sparsity: f64,
    pub error_feedback: bool,
    /// 1..=16 bits per quantized value.
    pub quantization_bits: u8,
    pub seed: u64,
    /// Send unquantized values as IEEE half floats instead of f32.
    pub fp16_values: bool,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            compression_type: CompressionType::TopK,
            sparsity: 0.99,
            error_feedback: true,
            quantization_bits: 8,
            seed: 0,
            fp16_values: false,
        }
    }
}

impl CompressionConfig {
    /// Checks every field; messages name the option and the value.
    pub fn validate(&self) -> Result<()> {
        if !(self.sparsity.is_finite() && (0.0..1.0).contains(&self.sparsity)) {
            return Err(Error::invalid_arg(format!(
                "sparsity must be in [0, 1) (the fraction of values dropped), got {}",
                self.sparsity
            )));
        }
        if !(1..=16).contains(&self.quantization_bits) {
            return Err(Error::invalid_arg(format!(
                "quantizationBits must be an integer from 1 to 16, got {}",
                self.quantization_bits
            )));
        }
        Ok(())
    }

    /// Number of values kept for a gradient of `n` values: clamp(round(n·(1−sparsity)), 1, n).
    pub fn k_for(&self, n: usize) -> usize {
        if !self.compression_type.sparse() {
            return n;
        }
        let k = (n as f64 * (1.0 - self.sparsity)).round() as usize;
        k.clamp(1, n.max(1)).min(n)
    }

    fn value_encoding(&self) -> ValueEncoding {
        if self.compression_type.quantized() {
            ValueEncoding::Quantized {
                bits: self.quantization_bits,
            }
        } else if self.fp16_values {
            ValueEncoding::F16
        } else {
            ValueEncoding::F32
        }
    }
}

/// Quantized values as sent: per-block scales and a packed little-endian bit stream of
/// `bits`-bit codes.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedBlock {
    pub bits: u8,
    pub scales: Vec<f32>,
    pub packed: Vec<u8>,
}

/// A compressed gradient: what one client sends for one round.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressedGradient {
    /// Length of the original gradient.
    pub length: usize,
    /// Kept positions, strictly ascending. Empty when `dense` (every position is kept).
    pub indices: Vec<u32>,
    /// The values as the receiver decodes them (after f16 rounding or dequantization).
    pub values: Vec<f32>,
    pub dense: bool,
    pub compression_type: CompressionType,
    pub encoding: ValueEncoding,
    /// The quantized payload, when `encoding` is `Quantized`.
    pub quantized: Option<QuantizedBlock>,
    /// The client's round counter when this was produced (0-based).
    pub round: u32,
}

impl CompressedGradient {
    /// True when every position is present (NONE and QUANTIZATION).
    pub fn is_dense(&self) -> bool {
        self.dense
    }

    /// Number of values carried.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// `out += w · decompress(self)`, in O(nnz) for sparse gradients.
    pub fn add_scaled_into(&self, out: &mut [f32], w: f32) {
        assert_eq!(out.len(), self.length, "add_scaled_into: length mismatch");
        if self.dense {
            if out.len() >= PAR_THRESHOLD {
                out.par_chunks_mut(CHUNK)
                    .zip(self.values.par_chunks(CHUNK))
                    .for_each(|(o, v)| {
                        o.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
                    });
            } else {
                out.iter_mut()
                    .zip(&self.values)
                    .for_each(|(o, v)| *o += w * v);
            }
        } else {
            for (&i, &v) in self.indices.iter().zip(&self.values) {
                out[i as usize] += w * v;
            }
        }
    }

    /// The full-length gradient this message stands for (zeros where nothing was sent).
    pub fn to_dense(&self) -> Vec<f32> {
        if self.dense {
            return self.values.clone();
        }
        let mut out = vec![0.0f32; self.length];
        self.add_scaled_into(&mut out, 1.0);
        out
    }
}

/// Per-client compression state: configuration, error-feedback residual, round counter
/// and traffic counters.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientState {
    pub config: CompressionConfig,
    /// What has been accumulated but not yet sent (error feedback). Empty until the first
    /// round, or when error feedback is off.
    pub residual: Vec<f32>,
    pub rounds: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// An upper bound on max |residual| (not serialised: recomputed on restore), used to
    /// rule out f32 overflow of residual + gradient without an extra pass.
    pub residual_bound: f64,
}

impl ClientState {
    pub fn new(config: CompressionConfig) -> Result<Self> {
        config.validate()?;
        Ok(ClientState {
            config,
            residual: Vec::new(),
            rounds: 0,
            bytes_in: 0,
            bytes_out: 0,
            residual_bound: 0.0,
        })
    }

    /// Forgets the residual (the next round starts from zero error).
    pub fn reset_residual(&mut self) {
        self.residual = Vec::new();
        self.residual_bound = 0.0;
    }

    /// Compresses one gradient. Under error feedback the residual is added first and what
    /// is not sent (including quantization and f16 rounding error) stays in it. A
    /// non-finite value or a length different from the residual's is an error and leaves
    /// the state untouched.
    pub fn compress(&mut self, gradient: &[f32]) -> Result<CompressedGradient> {
        let n = gradient.len();
        if n == 0 {
            return Err(Error::invalid_arg("gradients must not be empty (length 0)"));
        }
        if n > u32::MAX as usize {
            return Err(Error::invalid_arg(format!(
                "gradients has {n} values; at most 4294967295 are supported"
            )));
        }
        let g_max = scan_finite_max("gradients", gradient)?;
        let cfg = self.config.clone();
        let round = self.rounds as u32;
        let out = if cfg.error_feedback {
            if !self.residual.is_empty() && self.residual.len() != n {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!(
                        "gradients has length {n} but the error-feedback residual has length {}; call resetResidual() before changing the model size",
                        self.residual.len()
                    ),
                ));
            }
            let mut hist = None;
            if self.residual.is_empty() {
                self.residual =
                    crate::core::alloc::copy_of(gradient, "the error-feedback residual")?;
                self.residual_bound = g_max as f64;
            } else {
                // residual + gradient must stay finite. A cheap bound settles it almost
                // always; near f32::MAX an exact read-only check runs before anything is
                // written, so a refused round leaves the residual bit-for-bit unchanged.
                if self.residual_bound + g_max as f64 > f32::MAX as f64 {
                    self.residual_bound = check_sum_finite(&self.residual, gradient)? as f64;
                } else {
                    self.residual_bound += g_max as f64;
                }
                if cfg.compression_type.uses_top_k() {
                    hist = Some(add_assign_with_histogram(&mut self.residual, gradient));
                } else {
                    add_assign(&mut self.residual, gradient);
                }
            }
            let msg = compress_values_with(&self.residual, &cfg, round, hist.as_deref())?;
            subtract_sent(&mut self.residual, &msg);
            msg
        } else {
            compress_values(gradient, &cfg, round)?
        };
        self.rounds += 1;
        self.bytes_in += 4 * n as u64;
        self.bytes_out += crate::core::wire::encoded_len(&out) as u64;
        Ok(out)
    }
}

/// Compresses `acc` (no error feedback involved) for `round`.
pub fn compress_values(
    acc: &[f32],
    cfg: &CompressionConfig,
    round: u32,
) -> Result<CompressedGradient> {
    compress_values_with(acc, cfg, round, None)
}

/// [`compress_values`], reusing the first-digit histogram of `acc` when the caller has it.
fn compress_values_with(
    acc: &[f32],
    cfg: &CompressionConfig,
    round: u32,
    hist: Option<&[u32]>,
) -> Result<CompressedGradient> {
    let n = acc.len();
    let k = cfg.k_for(n);
    let encoding = cfg.value_encoding();
    let (dense, indices, raw): (bool, Vec<u32>, Vec<f32>) = match cfg.compression_type {
        CompressionType::None | CompressionType::Quantization => (
            true,
            Vec::new(),
            crate::core::alloc::copy_of(acc, "the compressed values")?,
        ),
        CompressionType::TopK | CompressionType::TopKQuantized => {
            let idx = match hist {
                Some(h) => top_k_with_histogram(acc, k, h),
                None => top_k_indices(acc, k),
            };
            let vals = gather(acc, &idx);
            (false, idx, vals)
        }
        CompressionType::RandomK => {
            let mut rng = Rng::for_stream(cfg.seed, round as u64, 0);
            let idx = random_k_indices(n, k, &mut rng);
            let vals = gather(acc, &idx);
            (false, idx, vals)
        }
    };
    let (values, quantized) = match encoding {
        ValueEncoding::F32 => (raw, None),
        ValueEncoding::F16 => {
            let mut v = raw;
            v.iter_mut()
                .for_each(|x| *x = f16_bits_to_f32(f32_to_f16_bits(*x)));
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::new(
                    Code::NonFinite,
                    format!("value {} at position {i} overflows half precision (|x| > 65504); disable fp16Values", acc[if dense { i } else { indices[i] as usize }]),
                ));
            }
            (v, None)
        }
        ValueEncoding::Quantized { bits } => {
            let q = quantize(&raw, bits, cfg.seed, round as u64);
            let decoded = dequantize(&q, raw.len())?;
            (decoded, Some(q))
        }
    };
    Ok(CompressedGradient {
        length: n,
        indices,
        values,
        dense,
        compression_type: cfg.compression_type,
        encoding,
        quantized,
        round,
    })
}

/// Fails with `ERR_NON_FINITE` naming the first NaN/±Inf index; else returns max |x|.
pub fn scan_finite_max(name: &str, x: &[f32]) -> Result<f32> {
    // The largest magnitude bit pattern: it is ≥ 0x7f80_0000 exactly when some value is
    // NaN or ±Inf, and otherwise is max |x|. Integer max vectorises; no branches.
    let scan = |c: &[f32]| c.iter().fold(0u32, |m, &v| m.max(mag_bits(v)));
    let m = if x.len() < PAR_THRESHOLD {
        scan(x)
    } else {
        x.par_chunks(CHUNK).map(scan).reduce(|| 0, u32::max)
    };
    if m >= 0x7f80_0000 {
        let i = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::new(
            Code::NonFinite,
            format!("{name}[{i}] is {} (gradients must be finite)", x[i]),
        ));
    }
    Ok(f32::from_bits(m))
}

/// Read-only check that every `a[i] + b[i]` is finite; returns the max |a[i] + b[i]|.
fn check_sum_finite(a: &[f32], b: &[f32]) -> Result<f32> {
    let mut m = 0.0f32;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let s = x + y;
        if !s.is_finite() {
            return Err(Error::new(
                Code::NonFinite,
                format!("gradients[{i}] = {y} overflows when added to the error-feedback residual ({x})"),
            ));
        }
        m = m.max(s.abs());
    }
    Ok(m)
}

fn gather(acc: &[f32], idx: &[u32]) -> Vec<f32> {
    idx.iter().map(|&i| acc[i as usize]).collect()
}

fn add_assign(a: &mut [f32], b: &[f32]) {
    if a.len() >= PAR_THRESHOLD {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
    } else {
        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    }
}

fn sub_assign(a: &mut [f32], b: &[f32]) {
    if a.len() >= PAR_THRESHOLD {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a -= b));
    } else {
        a.iter_mut().zip(b).for_each(|(a, b)| *a -= b);
    }
}

/// residual -= what the receiver will decode.
fn subtract_sent(residual: &mut [f32], msg: &CompressedGradient) {
    if msg.dense {
        sub_assign(residual, &msg.values);
    } else {
        for (&i, &v) in msg.indices.iter().zip(&msg.values) {
            residual[i as usize] -= v;
        }
    }
}

/// |x| as an order-preserving integer: the f32 bits without the sign.
#[inline(always)]
fn mag_bits(x: f32) -> u32 {
    x.to_bits() & 0x7fff_ffff
}

/// Bits of the first radix digit: the top 11 of the 31 magnitude bits (the exponent and
/// three mantissa bits, i.e. eighth-octave buckets).
const TOP_SHIFT: u32 = 20;
const TOP_BINS: usize = 1 << 11;

/// Histogram of the first radix digit of |x|.
pub fn top_digit_histogram(x: &[f32]) -> Vec<u32> {
    let local = |chunk: &[f32]| {
        let mut h = vec![0u32; TOP_BINS];
        for &v in chunk {
            h[(mag_bits(v) >> TOP_SHIFT) as usize] += 1;
        }
        h
    };
    if x.len() < PAR_THRESHOLD {
        return local(x);
    }
    x.par_chunks(CHUNK)
        .map(local)
        .reduce(|| vec![0u32; TOP_BINS], merge_hist)
}

fn merge_hist(mut a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    a
}

/// `acc += g`, returning the first-digit histogram of the sums (one pass instead of two).
pub fn add_assign_with_histogram(acc: &mut [f32], g: &[f32]) -> Vec<u32> {
    let local = |(a, g): (&mut [f32], &[f32])| {
        let mut h = vec![0u32; TOP_BINS];
        for (a, &g) in a.iter_mut().zip(g) {
            *a += g;
            h[(mag_bits(*a) >> TOP_SHIFT) as usize] += 1;
        }
        h
    };
    if acc.len() < PAR_THRESHOLD {
        return local((acc, g));
    }
    acc.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .map(local)
        .reduce(|| vec![0u32; TOP_BINS], merge_hist)
}

/// The k positions of largest |x|, ascending. Ties at the threshold go to the lower
/// index. Exact and O(n), never a sort of the input, which is only read.
pub fn top_k_indices(x: &[f32], k: usize) -> Vec<u32> {
    if k == 0 || x.is_empty() {
        return Vec::new();
    }
    if k >= x.len() {
        return (0..x.len() as u32).collect();
    }
    top_k_with_histogram(x, k, &top_digit_histogram(x))
}

/// [`top_k_indices`] given the first-digit histogram of `x`.
///
/// The histogram locates the bucket `d` holding the k-th largest magnitude: every value
/// in a higher bucket is kept. One more pass collects those and the members of bucket `d`
/// (few, for real gradients); an exact selection among the members by (|x| desc, index
/// asc) finishes the job. If bucket `d` is huge (adversarial data, e.g. all equal),
/// narrowing continues by radix passes instead, so memory stays small.
pub fn top_k_with_histogram(x: &[f32], k: usize, hist: &[u32]) -> Vec<u32> {
    let n = x.len();
    if k >= n {
        return (0..n as u32).collect();
    }
    let mut need = k;
    let mut d = TOP_BINS;
    loop {
        d -= 1;
        let c = hist[d] as usize;
        if c >= need {
            break;
        }
        need -= c;
    }
    let bucket = hist[d] as usize;
    if bucket > (1 << 20).max(n / 16) {
        return top_k_radix(x, (d as u32) << TOP_SHIFT, need);
    }
    let lo = (d as u32) << TOP_SHIFT;
    let hi = lo + (1 << TOP_SHIFT); // exclusive upper bound of bucket d
                                    // Per chunk, in index order: positions above the bucket, and the bucket's members.
    let scan = |base: usize, c: &[f32]| {
        let mut above = Vec::new();
        let mut members = Vec::new();
        for (j, &v) in c.iter().enumerate() {
            let b = mag_bits(v);
            if b >= hi {
                above.push((base + j) as u32);
            } else if b >= lo {
                members.push((base + j) as u32);
            }
        }
        (above, members)
    };
    let (above, mut members) = if n < PAR_THRESHOLD {
        scan(0, x)
    } else {
        let parts: Vec<(Vec<u32>, Vec<u32>)> = x
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(i, c)| scan(i * CHUNK, c))
            .collect();
        let mut above = Vec::with_capacity(k - need);
        let mut members = Vec::with_capacity(bucket);
        for (a, m) in parts {
            above.extend_from_slice(&a);
            members.extend_from_slice(&m);
        }
        (above, members)
    };
    // Exact choice inside the bucket: larger magnitude first, then lower index.
    let key = |&i: &u32| (std::cmp::Reverse(mag_bits(x[i as usize])), i);
    if need < members.len() {
        members.select_nth_unstable_by_key(need - 1, key);
        members.truncate(need);
    }
    members.sort_unstable();
    merge_sorted(&above, &members)
}

fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Radix narrowing inside the bucket with prefix `prefix` (first digit fixed): two more
/// histogram passes (11 and 9 bits) find the exact k-th magnitude, then one pass collects.
fn top_k_radix(x: &[f32], mut prefix: u32, mut remaining: usize) -> Vec<u32> {
    let mut fixed_mask: u32 = 0x7ff << TOP_SHIFT;
    for &(shift, width) in &[(9u32, 11u32), (0, 9)] {
        let bins = 1usize << width;
        let hist = histogram(x, fixed_mask, prefix, shift, bins);
        let mut d = bins;
        loop {
            d -= 1;
            let c = hist[d] as usize;
            if c >= remaining {
                break;
            }
            remaining -= c;
        }
        prefix |= (d as u32) << shift;
        fixed_mask |= ((1u32 << width) - 1) << shift;
    }
    collect_top(x, prefix, remaining)
}

fn histogram(x: &[f32], fixed_mask: u32, prefix: u32, shift: u32, bins: usize) -> Vec<u32> {
    let width_mask = (bins - 1) as u32;
    let local = |chunk: &[f32]| {
        let mut h = vec![0u32; bins];
        for &v in chunk {
            let b = mag_bits(v);
            if b & fixed_mask == prefix {
                h[((b >> shift) & width_mask) as usize] += 1;
            }
        }
        h
    };
    if x.len() < PAR_THRESHOLD {
        return local(x);
    }
    x.par_chunks(CHUNK)
        .map(local)
        .reduce(|| vec![0u32; bins], merge_hist)
}

/// Positions with magnitude bits > thr, plus the first `ties` positions equal to thr.
fn collect_top(x: &[f32], thr: u32, ties: usize) -> Vec<u32> {
    if x.len() < PAR_THRESHOLD {
        let mut out = Vec::new();
        let mut t = ties;
        for (i, &v) in x.iter().enumerate() {
            let b = mag_bits(v);
            if b > thr || (b == thr && t > 0) {
                if b == thr {
                    t -= 1;
                }
                out.push(i as u32);
            }
        }
        return out;
    }
    // Pass 1 per chunk: the count of ties, to hand the tie quota to the lowest chunks.
    let tie_counts: Vec<usize> = x
        .par_chunks(CHUNK)
        .map(|c| c.iter().filter(|&&v| mag_bits(v) == thr).count())
        .collect();
    let mut quota = Vec::with_capacity(tie_counts.len());
    let mut left = ties;
    for c in tie_counts {
        let q = c.min(left);
        quota.push(q);
        left -= q;
    }
    let parts: Vec<Vec<u32>> = x
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(ci, c)| {
            let base = (ci * CHUNK) as u32;
            let mut t = quota[ci];
            let mut out = Vec::new();
            for (j, &v) in c.iter().enumerate() {
                let b = mag_bits(v);
                if b > thr || (b == thr && t > 0) {
                    if b == thr {
                        t -= 1;
                    }
                    out.push(base + j as u32);
                }
            }
            out
        })
        .collect();
    parts.concat()
}

/// k distinct positions in [0, n), uniform without replacement, ascending. Floyd's
/// algorithm over a bitmap: O(k) draws, O(n/64) to read the bitmap out.
pub fn random_k_indices(n: usize, k: usize, rng: &mut Rng) -> Vec<u32> {
    let k = k.min(n);
    let mut bits = vec![0u64; n.div_ceil(64)];
    for j in (n - k)..n {
        let t = rng.below(j as u64 + 1) as usize;
        let pick = if bits[t / 64] >> (t % 64) & 1 == 1 {
            j
        } else {
            t
        };
        bits[pick / 64] |= 1 << (pick % 64);
    }
    let mut out = Vec::with_capacity(k);
    for (w, &word) in bits.iter().enumerate() {
        let mut m = word;
        while m != 0 {
            let b = m.trailing_zeros() as usize;
            out.push((w * 64 + b) as u32);
            m &= m - 1;
        }
    }
    out
}

/// Stochastic, unbiased quantization of `values` to `bits` bits per value, with one
/// max-|x| scale per block of [`QUANT_BLOCK`] values.
///
/// Codes: for bits ≥ 2, sign and magnitude with M = 2^(bits−1) − 1 levels, so zero is
/// exact; |x|/s·M is rounded up with probability equal to its fractional part. For one
/// bit, the code picks +s or −s with probabilities that make the mean equal x. The
/// random stream depends only on (seed, round, block), so results do not depend on the
/// number of threads.
pub fn quantize(values: &[f32], bits: u8, seed: u64, round: u64) -> QuantizedBlock {
    let nblocks = values.len().div_ceil(QUANT_BLOCK);
    let per_block: Vec<(f32, Vec<u16>)> = (0..nblocks)
        .into_par_iter()
        .with_min_len(16)
        .map(|b| {
            let block = &values[b * QUANT_BLOCK..((b + 1) * QUANT_BLOCK).min(values.len())];
            let s = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let mut rng = Rng::for_stream(seed, round, 1 + b as u64);
            let codes = block
                .iter()
                .map(|&v| quantize_one(v, s, bits, &mut rng))
                .collect();
            (s, codes)
        })
        .collect();
    let mut scales = Vec::with_capacity(nblocks);
    let mut writer = BitWriter::with_capacity(values.len() * bits as usize);
    for (s, codes) in per_block {
        scales.push(s);
        for c in codes {
            writer.put(c as u32, bits);
        }
    }
    QuantizedBlock {
        bits,
        scales,
        packed: writer.finish(),
    }
}

#[inline]
fn quantize_one(v: f32, s: f32, bits: u8, rng: &mut Rng) -> u16 {
    if s == 0.0 {
        return if bits == 1 {
            rng.bernoulli(0.5) as u16
        } else {
            0
        };
    }
    let r = (v / s).clamp(-1.0, 1.0) as f64;
    if bits == 1 {
        // P(+s) = (1 + r) / 2 gives E = s·r = v.
        return rng.bernoulli((1.0 + r) / 2.0) as u16;
    }
    let m = ((1u32 << (bits - 1)) - 1) as f64;
    let level = r.abs() * m;
    let lo = level.floor();
    let q = lo + if rng.bernoulli(level - lo) { 1.0 } else { 0.0 };
    let q = (q as u32).min(m as u32);
    let sign = if r < 0.0 && q > 0 {
        1u32 << (bits - 1)
    } else {
        0
    };
    (q | sign) as u16
}

/// Decodes `count` values of a quantized payload.
pub fn dequantize(q: &QuantizedBlock, count: usize) -> Result<Vec<f32>> {
    let bits = q.bits;
    let mut reader = BitReader::new(&q.packed);
    // 1-bit codes expand 32×: a valid message of 100 MB holds 800 million values.
    let mut out = crate::core::alloc::with_capacity(count, "the quantized values")?;
    for i in 0..count {
        let s = q.scales[i / QUANT_BLOCK];
        let c = reader.get(bits);
        out.push(dequantize_one(c, s, bits));
    }
    Ok(out)
}

#[inline]
fn dequantize_one(code: u32, s: f32, bits: u8) -> f32 {
    if bits == 1 {
        return if code & 1 == 1 { s } else { -s };
    }
    let m = ((1u32 << (bits - 1)) - 1) as f32;
    let mag = code & ((1u32 << (bits - 1)) - 1);
    let v = s * (mag as f32 / m);
    if code >> (bits - 1) & 1 == 1 {
        -v
    } else {
        v
    }
}

/// Packs codes LSB-first into bytes.
pub struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    pub fn with_capacity(bits: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(bits.div_ceil(8)),
            acc: 0,
            nbits: 0,
        }
    }
    #[inline]
    pub fn put(&mut self, v: u32, bits: u8) {
        self.acc |= (v as u64) << self.nbits;
        self.nbits += bits as u32;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }
    pub fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Reads codes written by [`BitWriter`]; reads past the end yield zero bits (callers
/// check lengths first).
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            nbits: 0,
        }
    }
    #[inline]
    pub fn get(&mut self, bits: u8) -> u32 {
        while self.nbits < bits as u32 {
            let byte = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            self.acc |= (byte as u64) << self.nbits;
            self.nbits += 8;
        }
        let v = (self.acc & ((1u64 << bits) - 1)) as u32;
        self.acc >>= bits;
        self.nbits -= bits as u32;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(t: CompressionType, sparsity: f64, ef: bool) -> CompressionConfig {
        CompressionConfig {
            compression_type: t,
            sparsity,
            error_feedback: ef,
            ..Default::default()
        }
    }

    /// Brute force: sort all positions by (|x| desc, index asc), take k, sort ascending.
    fn brute_top_k(x: &[f32], k: usize) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..x.len() as u32).collect();
        idx.sort_by(|&a, &b| {
            x[b as usize]
                .abs()
                .partial_cmp(&x[a as usize].abs())
                .unwrap()
                .then(a.cmp(&b))
        });
        let mut top: Vec<u32> = idx[..k].to_vec();
        top.sort();
        top
    }

    #[test]
    fn top_k_matches_brute_force_with_many_ties() {
        let mut rng = Rng::new(42);
        for trial in 0..300 {
            let n = 1 + rng.below(if trial % 10 == 0 { 300_000 } else { 2000 }) as usize;
            // Few distinct magnitudes, both signs, zeros: lots of ties.
            let levels = 1 + rng.below(6);
            let x: Vec<f32> = (0..n)
                .map(|_| {
                    let m = rng.below(levels) as f32 * 0.5;
                    if rng.bernoulli(0.5) {
                        -m
                    } else {
                        m
                    }
                })
                .collect();
            let k = 1 + rng.below(n as u64) as usize;
            assert_eq!(top_k_indices(&x, k), brute_top_k(&x, k), "n={n} k={k}");
        }
    }

    #[test]
    fn top_k_of_continuous_values_and_extremes() {
        let mut rng = Rng::new(7);
        let x: Vec<f32> = (0..500_000).map(|_| rng.normal() as f32 * 1e-3).collect();
        for &k in &[1usize, 17, 5000, 499_999] {
            assert_eq!(top_k_indices(&x, k), brute_top_k(&x, k));
        }
        let y = [f32::MAX, -f32::MAX, 1e-45, -0.0, 0.0, f32::MIN_POSITIVE];
        assert_eq!(top_k_indices(&y, 2), vec![0, 1]);
        assert_eq!(top_k_indices(&y, 3), brute_top_k(&y, 3));
    }

    #[test]
    fn top_k_on_a_huge_tie_bucket_takes_the_radix_path() {
        // 2.2M values, nearly all ±1.0 (one bucket holding ~all of them), a few larger.
        let n = 2_200_000;
        let mut rng = Rng::new(9);
        let x: Vec<f32> = (0..n)
            .map(|i| {
                if i % 100_003 == 0 {
                    2.0 + rng.uniform() as f32
                } else if rng.bernoulli(0.5) {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        for &k in &[5usize, 50, 1_000_000] {
            assert_eq!(top_k_indices(&x, k), brute_top_k(&x, k), "k={k}");
        }
        // Nearby magnitudes in one bucket: the radix digits below the first must decide.
        let y: Vec<f32> = (0..n).map(|i| 1.0 + (i % 1000) as f32 * 1e-6).collect();
        assert_eq!(top_k_indices(&y, 12_345), brute_top_k(&y, 12_345));
    }

    #[test]
    fn fused_add_histogram_matches_separate_passes() {
        let mut rng = Rng::new(4);
        let g: Vec<f32> = (0..300_000).map(|_| rng.normal() as f32).collect();
        let mut a: Vec<f32> = (0..300_000).map(|_| rng.normal() as f32).collect();
        let mut b = a.clone();
        let h = add_assign_with_histogram(&mut a, &g);
        add_assign(&mut b, &g);
        assert_eq!(a, b);
        assert_eq!(h, top_digit_histogram(&b));
        assert_eq!(top_k_with_histogram(&a, 3000, &h), brute_top_k(&b, 3000));
    }

    #[test]
    fn top_k_by_magnitude_not_sign() {
        // CASES #14: the largest magnitude is negative.
        assert_eq!(top_k_indices(&[-10.0, 1.0, 2.0, 3.0], 1), vec![0]);
        // CASES #15: ties resolve to the lowest indices.
        assert_eq!(top_k_indices(&[1.0, -1.0, 1.0, -1.0], 2), vec![0, 1]);
    }

    #[test]
    fn k_rule() {
        let c = cfg(CompressionType::TopK, 0.99, false);
        assert_eq!(c.k_for(1000), 10);
        assert_eq!(c.k_for(10), 1); // round(0.1) = 0, clamped to 1
        assert_eq!(c.k_for(1), 1);
        assert_eq!(cfg(CompressionType::TopK, 0.75, false).k_for(4), 1);
        assert_eq!(cfg(CompressionType::TopK, 0.0, false).k_for(7), 7);
        assert_eq!(cfg(CompressionType::TopK, 0.5, false).k_for(5), 3); // round(2.5) = 3
    }

    #[test]
    fn random_k_is_uniform_distinct_and_reproducible() {
        let mut counts = vec![0u32; 50];
        for s in 0..4000u64 {
            let mut rng = Rng::new(s);
            let idx = random_k_indices(50, 5, &mut rng);
            assert_eq!(idx.len(), 5);
            assert!(idx.windows(2).all(|w| w[0] < w[1]));
            idx.iter().for_each(|&i| counts[i as usize] += 1);
        }
        // Each position is expected 4000·5/50 = 400 times; allow ±25%.
        assert!(
            counts.iter().all(|&c| (300..500).contains(&c)),
            "{counts:?}"
        );
        let a = random_k_indices(1000, 10, &mut Rng::for_stream(7, 3, 0));
        let b = random_k_indices(1000, 10, &mut Rng::for_stream(7, 3, 0));
        assert_eq!(a, b);
    }

    #[test]
    fn quantization_is_unbiased() {
        let x: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 2.0).collect();
        for &bits in &[1u8, 2, 3, 4, 8] {
            let draws = 4000;
            let mut mean = vec![0.0f64; x.len()];
            for r in 0..draws {
                let q = quantize(&x, bits, 99, r);
                for (m, v) in mean.iter_mut().zip(dequantize(&q, x.len()).unwrap()) {
                    *m += v as f64 / draws as f64;
                }
            }
            let s = 2.0f64; // max |x| bounds the per-draw spread
            for (m, &v) in mean.iter().zip(&x) {
                // Standard error of the mean ≤ s/sqrt(draws) ≈ 0.032; allow 5 σ.
                assert!(
                    (m - v as f64).abs() < 5.0 * s / (draws as f64).sqrt(),
                    "bits={bits} {m} vs {v}"
                );
            }
        }
    }

    #[test]
    fn quantization_of_zeros_and_subnormals() {
        let q = quantize(&vec![0.0; 1024], 8, 1, 0);
        assert!(dequantize(&q, 1024).unwrap().iter().all(|&v| v == 0.0));
        let q = quantize(&[-0.0, 0.0], 4, 1, 0);
        assert_eq!(dequantize(&q, 2).unwrap(), vec![0.0, 0.0]);
        let q = quantize(&[1e-45, -1e-45], 8, 1, 0);
        let d = dequantize(&q, 2).unwrap();
        assert!(d.iter().all(|v| v.is_finite()));
        // 8 bits: |x| = s exactly maps to level 127 exactly.
        assert_eq!(d, vec![1e-45, -1e-45]);
    }

    #[test]
    fn error_feedback_conserves_mass() {
        for t in [
            CompressionType::TopK,
            CompressionType::RandomK,
            CompressionType::TopKQuantized,
            CompressionType::Quantization,
        ] {
            let mut st = ClientState::new(CompressionConfig {
                quantization_bits: 4,
                fp16_values: false,
                ..cfg(t, 0.9, true)
            })
            .unwrap();
            let mut rng = Rng::new(3);
            let n = 2000;
            let mut sum_in = vec![0.0f64; n];
            let mut sum_sent = vec![0.0f64; n];
            for _ in 0..25 {
                let g: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
                g.iter().zip(&mut sum_in).for_each(|(g, s)| *s += *g as f64);
                let m = st.compress(&g).unwrap();
                m.to_dense()
                    .iter()
                    .zip(&mut sum_sent)
                    .for_each(|(v, s)| *s += *v as f64);
            }
            for i in 0..n {
                let lhs = sum_sent[i] + st.residual[i] as f64;
                assert!(
                    (lhs - sum_in[i]).abs() < 1e-3,
                    "{t:?} i={i}: {lhs} vs {}",
                    sum_in[i]
                );
            }
        }
    }

    #[test]
    fn non_finite_and_length_change_leave_state_untouched() {
        // CASES #17.
        let mut st = ClientState::new(cfg(CompressionType::TopK, 0.75, true)).unwrap();
        st.compress(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
            .unwrap();
        st.compress(&[1.0; 8]).unwrap();
        let before = st.clone();
        let mut bad = vec![0.0f32; 8];
        bad[3] = f32::NAN;
        let e = st.compress(&bad).unwrap_err();
        assert_eq!(e.code, Code::NonFinite);
        assert!(e.message.contains("gradients[3]"), "{}", e.message);
        assert_eq!(st, before);
        let e = st.compress(&[1.0; 9]).unwrap_err();
        assert_eq!(e.code, Code::LengthMismatch);
        assert_eq!(st, before);
        // Overflow of residual + gradient to infinity is refused and undone.
        let mut st = ClientState::new(cfg(CompressionType::TopK, 0.75, true)).unwrap();
        st.compress(&[f32::MAX, f32::MAX, 0.0, 0.0]).unwrap(); // sends index 0, keeps MAX at 1
        let before = st.clone();
        assert_eq!(
            st.compress(&[0.0, f32::MAX, 0.0, 0.0]).unwrap_err().code,
            Code::NonFinite
        );
        assert_eq!(st, before);
    }

    #[test]
    fn bit_packing_round_trips() {
        let mut rng = Rng::new(5);
        for bits in 1..=16u8 {
            let vals: Vec<u32> = (0..777).map(|_| rng.below(1 << bits) as u32).collect();
            let mut w = BitWriter::with_capacity(vals.len() * bits as usize);
            vals.iter().for_each(|&v| w.put(v, bits));
            let bytes = w.finish();
            assert_eq!(bytes.len(), (777 * bits as usize).div_ceil(8));
            let mut r = BitReader::new(&bytes);
            assert!(vals.iter().all(|&v| r.get(bits) == v));
        }
    }
}

/// Plain SGD step `params − lr·update` as a new vector. Non-finite inputs, or a step that
/// overflows f32, are `ERR_NON_FINITE` naming the first index; lengths must agree.
pub fn sgd_step(params: &[f32], update: &[f32], lr: f32) -> Result<Vec<f32>> {
    if params.len() != update.len() {
        return Err(Error::new(
            Code::LengthMismatch,
            format!(
                "update has length {} but params has {}",
                update.len(),
                params.len()
            ),
        ));
    }
    check_finite("params", params)?;
    check_finite("update", update)?;
    let out: Vec<f32> = params.iter().zip(update).map(|(p, u)| p - lr * u).collect();
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        return Err(Error::new(
            Code::NonFinite,
            format!("params[{i}] − learningRate × update[{i}] overflows float32"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod sgd_step_tests {
    use super::*;

    #[test]
    fn step_by_hand_and_errors() {
        assert_eq!(
            sgd_step(&[1.0, 2.0], &[10.0, -10.0], 0.1).unwrap(),
            vec![0.0, 3.0]
        );
        assert_eq!(
            sgd_step(&[f32::NAN, 2.0], &[1.0, 2.0], 0.1)
                .unwrap_err()
                .code,
            Code::NonFinite
        );
        assert_eq!(
            sgd_step(&[3e38], &[-3e38], 10.0).unwrap_err().code,
            Code::NonFinite
        );
        assert_eq!(
            sgd_step(&[1.0], &[1.0, 2.0], 0.1).unwrap_err().code,
            Code::LengthMismatch
        );
    }
}
