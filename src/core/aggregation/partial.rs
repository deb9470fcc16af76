//! A pending round serialised, so that another aggregator (another process, a plane
//! leader, the ground) can merge it. Merging every partial gives the same result as one
//! aggregator seeing every update (up to f32 rounding of the sums).
//!
//! Format, version 1 (little-endian):
//!
//! | size | field |
//! |---|---|
//! | 4 | magic `RSAG` |
//! | 1 | version (1) |
//! | 1 | strategy (0 fedavg … 9 async_fedavg, `AggregationStrategy` order) |
//! | 1 | flags: bit 0 = clip norm present |
//! | 1 | reserved, zero |
//! | 8 | clip norm (f64; 0 when absent) |
//! | 8 | length n of the updates (0 when the round is empty) |
//! | 8 | clipped-update count |
//! | 4 | node count N, then N × (u16 byte length + UTF-8 id) |
//! | 4 | bucket count B, then B × (u64 round, f64 weight, f64 max weight, f64 samples, u64 count, n × f32 sum) |
//! | 4 | kept-update count K, then K × (f64 weight, f64 samples, f32 clip factor, u64 round, u8 kind, u32 nnz, kind 1: nnz × u32 ascending indices; nnz × f32 values) |
//! | 4 | CRC32C of every byte before it |
//!
//! The decoder checks the checksum first, then every count against the bytes left before
//! it allocates.

use std::collections::{BTreeMap, HashSet};

use crate::core::compression::{CompressedGradient, CompressionType, ValueEncoding};
use crate::core::error::{Error, Result};

use super::streaming::{Aggregator, Bucket, OwnedUpdate, Pending, Stored};
use super::Strategy;

const MAGIC: &[u8; 4] = b"RSAG";
const VERSION: u8 = 1;

/// A decoded partial round.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// Strategy of the aggregator that produced it.
    pub strategy: Strategy,
    /// Clip norm its updates were clipped with.
    pub clip_norm: Option<f64>,
    /// Its pending round.
    pub pending: Pending,
}

/// Serialises the pending round of `agg`. The buffer is reserved at once (an upper bound
/// of its size) and fallibly: `ERR_OUT_OF_MEMORY` when the process cannot hold it.
pub fn encode(agg: &Aggregator) -> Result<Vec<u8>> {
    let p = &agg.pending;
    let n = p.length.unwrap_or(0);
    let stored: usize = p
        .stored
        .iter()
        .map(|s| {
            48 + match &s.data {
                OwnedUpdate::Dense(v) => 4 * v.len(),
                OwnedUpdate::Compressed(c) => 4 * c.values.len() + 4 * c.indices.len(),
            }
        })
        .sum();
    let names: usize = p.nodes.iter().map(|id| 2 + id.len()).sum();
    let size = 64 + names + p.buckets.len() * (48 + 4 * n) + stored;
    let mut out: Vec<u8> = crate::core::alloc::with_capacity(size, "the partial aggregate")?;
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(agg.config.strategy.to_u8());
    out.push(agg.config.clip_norm.is_some() as u8);
    out.push(0);
    out.extend_from_slice(&agg.config.clip_norm.unwrap_or(0.0).to_le_bytes());
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&p.clipped.to_le_bytes());
    out.extend_from_slice(&(p.nodes.len() as u32).to_le_bytes());
    for id in &p.nodes {
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(&(p.buckets.len() as u32).to_le_bytes());
    for (r, b) in &p.buckets {
        out.extend_from_slice(&r.to_le_bytes());
        out.extend_from_slice(&b.weight.to_le_bytes());
        out.extend_from_slice(&b.max_weight.to_le_bytes());
        out.extend_from_slice(&b.samples.to_le_bytes());
        out.extend_from_slice(&b.count.to_le_bytes());
        for v in &b.sum {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(&(p.stored.len() as u32).to_le_bytes());
    for s in &p.stored {
        out.extend_from_slice(&s.weight.to_le_bytes());
        out.extend_from_slice(&s.samples.to_le_bytes());
        out.extend_from_slice(&s.scale.to_le_bytes());
        out.extend_from_slice(&s.round.to_le_bytes());
        match &s.data {
            OwnedUpdate::Dense(v) => {
                out.push(0);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            OwnedUpdate::Compressed(c) if c.dense => {
                out.push(0);
                out.extend_from_slice(&(c.values.len() as u32).to_le_bytes());
                c.values
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
            OwnedUpdate::Compressed(c) => {
                out.push(1);
                out.extend_from_slice(&(c.values.len() as u32).to_le_bytes());
                c.indices
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
                c.values
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert!(out.len() <= size, "the reserved size is an upper bound");
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, k: usize, field: &str) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < k {
            return Err(Error::corrupt(format!(
                "partial aggregate: truncated at {field} (offset {})",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + k];
        self.pos += k;
        Ok(s)
    }
    fn u8(&mut self, f: &str) -> Result<u8> {
        Ok(self.take(1, f)?[0])
    }
    fn u16(&mut self, f: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, f)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self, f: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, f)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self, f: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, f)?.try_into().unwrap_or_default(),
        ))
    }
    fn f64(&mut self, f: &str) -> Result<f64> {
        let x = f64::from_le_bytes(self.take(8, f)?.try_into().unwrap_or_default());
        if !x.is_finite() || x < 0.0 {
            return Err(Error::corrupt(format!("partial aggregate: {f} is {x}")));
        }
        Ok(x)
    }
    fn f32s(&mut self, k: usize, f: &str) -> Result<Vec<f32>> {
        let b = self.take(
            k.checked_mul(4)
                .ok_or_else(|| Error::corrupt("partial aggregate: size overflow"))?,
            f,
        )?;
        let v: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::corrupt(format!(
                "partial aggregate: non-finite value in {f}"
            )));
        }
        Ok(v)
    }
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// Parses `encode`'s output; any truncation, alteration or forgery is `ERR_CORRUPT_DATA`.
pub fn decode(buf: &[u8]) -> Result<Partial> {
    if buf.len() < 4 + 4 + 24 + 12 + 4 {
        return Err(Error::corrupt(format!(
            "partial aggregate: {} bytes is too short",
            buf.len()
        )));
    }
    if &buf[..4] != MAGIC {
        return Err(Error::corrupt(
            "partial aggregate: bad magic (not a GradientAggregator.toBuffer() output)",
        ));
    }
    let (body, tail) = buf.split_at(buf.len() - 4);
    let stored_crc = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32c::crc32c(body) != stored_crc {
        return Err(Error::corrupt(
            "partial aggregate: checksum mismatch (damaged in transit?)",
        ));
    }
    let mut r = Reader { buf: body, pos: 4 };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(Error::corrupt(format!(
            "partial aggregate: unsupported version {version} (this library reads {VERSION})"
        )));
    }
    let st = r.u8("strategy")?;
    let strategy = Strategy::from_u8(st)
        .ok_or_else(|| Error::corrupt(format!("partial aggregate: unknown strategy {st}")))?;
    let flags = r.u8("flags")?;
    if flags > 1 || r.u8("reserved")? != 0 {
        return Err(Error::corrupt(
            "partial aggregate: bad flags or reserved byte",
        ));
    }
    let clip = r.f64("clip norm")?;
    let clip_norm = if flags & 1 == 1 {
        if clip <= 0.0 {
            return Err(Error::corrupt("partial aggregate: clip norm is 0"));
        }
        Some(clip)
    } else {
        None
    };
    let n64 = r.u64("length")?;
    if n64 > u32::MAX as u64 {
        return Err(Error::corrupt(format!(
            "partial aggregate: length {n64} is too large"
        )));
    }
    let n = n64 as usize;
    let clipped = r.u64("clipped count")?;
    let nn = r.u32("node count")? as usize;
    if nn > r.left() / 2 {
        return Err(Error::corrupt(format!(
            "partial aggregate: {nn} nodes cannot fit in {} bytes",
            r.left()
        )));
    }
    let mut nodes = Vec::with_capacity(nn);
    let mut node_set = HashSet::with_capacity(nn);
    for _ in 0..nn {
        let l = r.u16("node id length")? as usize;
        let id = std::str::from_utf8(r.take(l, "node id")?)
            .map_err(|_| Error::corrupt("partial aggregate: a node id is not UTF-8"))?
            .to_string();
        if id.is_empty() || !node_set.insert(id.clone()) {
            return Err(Error::corrupt(format!(
                "partial aggregate: empty or repeated node id {id:?}"
            )));
        }
        nodes.push(id);
    }
    let nb = r.u32("bucket count")? as usize;
    let bucket_bytes = 40usize + 4 * n;
    if nb.checked_mul(bucket_bytes).is_none_or(|b| b > r.left()) {
        return Err(Error::corrupt(format!(
            "partial aggregate: {nb} buckets of length {n} cannot fit in {} bytes",
            r.left()
        )));
    }
    let mut buckets = BTreeMap::new();
    let mut counted = 0u64;
    for _ in 0..nb {
        let round = r.u64("bucket round")?;
        let weight = r.f64("bucket weight")?;
        let max_weight = r.f64("bucket max weight")?;
        let samples = r.f64("bucket samples")?;
        let count = r.u64("bucket count")?;
        let sum = r.f32s(n, "bucket sum")?;
        counted = counted.saturating_add(count);
        if count == 0
            || buckets
                .insert(
                    round,
                    Bucket {
                        sum,
                        weight,
                        max_weight,
                        samples,
                        count,
                    },
                )
                .is_some()
        {
            return Err(Error::corrupt(format!(
                "partial aggregate: empty or repeated bucket for round {round}"
            )));
        }
    }
    let nk = r.u32("kept-update count")? as usize;
    if nk > r.left() / 33 {
        return Err(Error::corrupt(format!(
            "partial aggregate: {nk} kept updates cannot fit in {} bytes",
            r.left()
        )));
    }
    let mut stored = Vec::with_capacity(nk);
    for _ in 0..nk {
        let weight = r.f64("update weight")?;
        let samples = r.f64("update samples")?;
        let scale = f32::from_le_bytes(r.take(4, "clip factor")?.try_into().unwrap_or_default());
        if !(scale > 0.0 && scale <= 1.0) {
            return Err(Error::corrupt(format!(
                "partial aggregate: clip factor {scale} is outside (0, 1]"
            )));
        }
        let round = r.u64("update round")?;
        let kind = r.u8("update kind")?;
        let nnz = r.u32("update size")? as usize;
        let data = match kind {
            0 => {
                if nnz != n {
                    return Err(Error::corrupt(format!(
                        "partial aggregate: dense update of {nnz} values, length is {n}"
                    )));
                }
                OwnedUpdate::Dense(r.f32s(nnz, "update values")?)
            }
            1 => {
                if nnz > n || nnz.saturating_mul(8) > r.left() {
                    return Err(Error::corrupt(format!(
                        "partial aggregate: sparse update of {nnz} values does not fit"
                    )));
                }
                let ib = r.take(4 * nnz, "update indices")?;
                let indices: Vec<u32> = ib
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if indices.windows(2).any(|w| w[0] >= w[1])
                    || indices.last().is_some_and(|&i| i as usize >= n)
                {
                    return Err(Error::corrupt(
                        "partial aggregate: sparse indices are not ascending and in range",
                    ));
                }
                let values = r.f32s(nnz, "update values")?;
                OwnedUpdate::Compressed(CompressedGradient {
                    length: n,
                    indices,
                    values,
                    dense: false,
                    compression_type: CompressionType::TopK,
                    encoding: ValueEncoding::F32,
                    quantized: None,
                    round: 0,
                })
            }
            k => {
                return Err(Error::corrupt(format!(
                    "partial aggregate: unknown update kind {k}"
                )))
            }
        };
        stored.push(Stored {
            data,
            weight,
            samples,
            scale,
            round,
        });
    }
    if r.left() != 0 {
        return Err(Error::corrupt(format!(
            "partial aggregate: {} unexpected trailing bytes",
            r.left()
        )));
    }
    if counted + stored.len() as u64 != nodes.len() as u64 || (nodes.is_empty() != (n == 0)) {
        return Err(Error::corrupt(format!(
            "partial aggregate: {} node ids but {} updates, length {n}",
            nodes.len(),
            counted + stored.len() as u64
        )));
    }
    if strategy.is_robust() != buckets.is_empty() && !nodes.is_empty() {
        return Err(Error::corrupt(format!(
            "partial aggregate: content does not fit strategy {}",
            strategy.as_str()
        )));
    }
    let length = if n == 0 { None } else { Some(n) };
    Ok(Partial {
        strategy,
        clip_norm,
        pending: Pending {
            length,
            nodes,
            node_set,
            buckets,
            stored,
            clipped,
        },
    })
}
