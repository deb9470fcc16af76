//! The wire format of a compressed gradient, and the saved state of a client.
//!
//! Gradient message, version 1 (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `RSGD` |
//! | 4 | 1 | version (1) |
//! | 5 | 1 | compression type (0 none, 1 top-k, 2 random-k, 3 quantization, 4 top-k quantized) |
//! | 6 | 1 | value encoding (0 f32, 1 f16, 2 quantized) |
//! | 7 | 1 | bits per quantized value (1–16; 0 otherwise) |
//! | 8 | 1 | index encoding (0 every position, 1 delta + LEB128 varint, 2 bitmap) |
//! | 9 | 3 | reserved, zero |
//! | 12 | 4 | length n of the gradient |
//! | 16 | 4 | count k of values carried |
//! | 20 | 4 | round |
//! | 24 | 4 | index block size B, then B bytes |
//! | | 4 | value block size V, then V bytes: k f32, or k f16, or ⌈k/1024⌉ f32 scales followed by ⌈k·bits/8⌉ bytes of packed codes |
//! | end−4 | 4 | CRC32C of every byte before it |
//!
//! The index block is whichever of delta-varint (gap − 1 per index) or bitmap (⌈n/8⌉
//! bytes) is smaller. The decoder checks the checksum first (every 1-bit error and every
//! burst up to 32 bits is detected), then every size against the buffer before it
//! allocates, so a forged header cannot make it allocate more than the buffer justifies.

use crate::core::compression::ClientState;
use crate::core::compression::{
    dequantize, CompressedGradient, CompressionConfig, CompressionType, QuantizedBlock,
    ValueEncoding, QUANT_BLOCK,
};
use crate::core::error::{Error, Result};
use crate::core::half::{f16_bits_to_f32, f32_to_f16_bits};

const MAGIC: &[u8; 4] = b"RSGD";
const VERSION: u8 = 1;
const HEADER: usize = 28;
const STATE_MAGIC: &[u8; 4] = b"RSFC";
const STATE_VERSION: u8 = 1;

/// The largest gradient a message may describe (the largest JS typed array length).
pub const MAX_LENGTH: usize = u32::MAX as usize;

fn varint_len(mut v: u32) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn delta_varint_len(indices: &[u32]) -> usize {
    let mut prev: i64 = -1;
    indices
        .iter()
        .map(|&i| {
            let gap = (i as i64 - prev - 1) as u32;
            prev = i as i64;
            varint_len(gap)
        })
        .sum()
}

enum IndexEncoding {
    All,
    Varint(usize),
    Bitmap(usize),
}

fn choose_index_encoding(m: &CompressedGradient) -> IndexEncoding {
    if m.dense {
        return IndexEncoding::All;
    }
    let v = delta_varint_len(&m.indices);
    let b = m.length.div_ceil(8);
    if v <= b {
        IndexEncoding::Varint(v)
    } else {
        IndexEncoding::Bitmap(b)
    }
}

fn value_block_len(m: &CompressedGradient) -> usize {
    let k = m.values.len();
    match &m.encoding {
        ValueEncoding::F32 => 4 * k,
        ValueEncoding::F16 => 2 * k,
        ValueEncoding::Quantized { bits } => {
            4 * k.div_ceil(QUANT_BLOCK) + (k * *bits as usize).div_ceil(8)
        }
    }
}

/// Exact size in bytes of [`encode`]'s output, computed without encoding.
pub fn encoded_len(m: &CompressedGradient) -> usize {
    let ib = match choose_index_encoding(m) {
        IndexEncoding::All => 0,
        IndexEncoding::Varint(n) | IndexEncoding::Bitmap(n) => n,
    };
    HEADER + ib + 4 + value_block_len(m) + 4
}

/// Serialises a compressed gradient.
pub fn encode(m: &CompressedGradient) -> Vec<u8> {
    let total = encoded_len(m);
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.compression_type.to_u8());
    let (enc, bits) = match &m.encoding {
        ValueEncoding::F32 => (0u8, 0u8),
        ValueEncoding::F16 => (1, 0),
        ValueEncoding::Quantized { bits } => (2, *bits),
    };
    out.push(enc);
    out.push(bits);
    let ie = choose_index_encoding(m);
    out.push(match ie {
        IndexEncoding::All => 0,
        IndexEncoding::Varint(_) => 1,
        IndexEncoding::Bitmap(_) => 2,
    });
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(m.length as u32).to_le_bytes());
    out.extend_from_slice(&(m.values.len() as u32).to_le_bytes());
    out.extend_from_slice(&m.round.to_le_bytes());
    match ie {
        IndexEncoding::All => out.extend_from_slice(&0u32.to_le_bytes()),
        IndexEncoding::Varint(len) => {
            out.extend_from_slice(&(len as u32).to_le_bytes());
            let mut prev: i64 = -1;
            for &i in &m.indices {
                let mut gap = (i as i64 - prev - 1) as u32;
                prev = i as i64;
                while gap >= 0x80 {
                    out.push((gap as u8) | 0x80);
                    gap >>= 7;
                }
                out.push(gap as u8);
            }
        }
        IndexEncoding::Bitmap(len) => {
            out.extend_from_slice(&(len as u32).to_le_bytes());
            let start = out.len();
            out.resize(start + len, 0);
            for &i in &m.indices {
                out[start + (i as usize >> 3)] |= 1 << (i & 7);
            }
        }
    }
    out.extend_from_slice(&(value_block_len(m) as u32).to_le_bytes());
    match &m.encoding {
        ValueEncoding::F32 => m
            .values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        ValueEncoding::F16 => m
            .values
            .iter()
            .for_each(|v| out.extend_from_slice(&f32_to_f16_bits(*v).to_le_bytes())),
        ValueEncoding::Quantized { .. } => {
            let q = m
                .quantized
                .as_ref()
                .expect("quantized message without payload");
            q.scales
                .iter()
                .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
            out.extend_from_slice(&q.packed);
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len(), total);
    out
}

/// A bounds-checked reader: every read past the end is `ERR_CORRUPT_DATA`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.buf.len() - self.pos {
            return Err(Error::corrupt(format!(
                "{}: truncated at byte {} reading {field} ({n} bytes needed, {} left)",
                self.what,
                self.pos,
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }
    fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, field)?.try_into().unwrap()))
    }
    fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, field)?.try_into().unwrap()))
    }
    fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, field)?.try_into().unwrap()))
    }
    fn f64(&mut self, field: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take(8, field)?.try_into().unwrap()))
    }
}

/// Checks magic and the trailing CRC32C; returns the body without the checksum.
fn check_frame<'a>(buf: &'a [u8], magic: &[u8; 4], what: &str, min: usize) -> Result<&'a [u8]> {
    if buf.len() < min {
        return Err(Error::corrupt(format!(
            "{what}: {} bytes is shorter than the smallest valid encoding ({min} bytes)",
            buf.len()
        )));
    }
    if &buf[..4] != magic {
        return Err(Error::corrupt(format!(
            "{what}: bad magic {:02x?} (expected {:?})",
            &buf[..4],
            std::str::from_utf8(magic).unwrap()
        )));
    }
    let (body, tail) = buf.split_at(buf.len() - 4);
    let stored = u32::from_le_bytes(tail.try_into().unwrap());
    let actual = crc32c::crc32c(body);
    if stored != actual {
        return Err(Error::corrupt(format!(
            "{what}: checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        )));
    }
    Ok(body)
}

/// Parses and fully validates a gradient message (`ERR_CORRUPT_DATA` on any defect).
pub fn decode(buf: &[u8]) -> Result<CompressedGradient> {
    decode_expecting(buf, None)
}

/// [`decode`], refusing with `ERR_LENGTH_MISMATCH` a message whose declared length is not
/// `expected.0` (`expected.1` says what fixes it) before anything of its size is allocated.
pub fn decode_expecting(buf: &[u8], expected: Option<(usize, &str)>) -> Result<CompressedGradient> {
    let body = check_frame(buf, MAGIC, "compressed gradient", HEADER + 4 + 4)?;
    let mut r = Reader {
        buf: body,
        pos: 4,
        what: "compressed gradient",
    };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(Error::corrupt(format!("compressed gradient: unsupported version {version} (this library reads version {VERSION})")));
    }
    let ct = r.u8("compression type")?;
    let compression_type = CompressionType::from_u8(ct).ok_or_else(|| {
        Error::corrupt(format!(
            "compressed gradient: unknown compression type {ct}"
        ))
    })?;
    let enc = r.u8("value encoding")?;
    let bits = r.u8("bits")?;
    let ienc = r.u8("index encoding")?;
    if r.take(3, "reserved")? != [0, 0, 0] {
        return Err(Error::corrupt(
            "compressed gradient: reserved bytes are not zero",
        ));
    }
    let n = r.u32("length")? as usize;
    if let Some((e, by)) = expected {
        if n != e {
            return Err(Error::new(
                crate::core::error::Code::LengthMismatch,
                format!("compressed gradient of length {n}, but {by} is {e}"),
            ));
        }
    }
    let k = r.u32("count")? as usize;
    let round = r.u32("round")?;
    let encoding = match (enc, bits) {
        (0, 0) => ValueEncoding::F32,
        (1, 0) => ValueEncoding::F16,
        (2, 1..=16) => ValueEncoding::Quantized { bits },
        _ => {
            return Err(Error::corrupt(format!(
                "compressed gradient: invalid value encoding {enc} with {bits} bits"
            )))
        }
    };
    let quantized_type = matches!(
        compression_type,
        CompressionType::Quantization | CompressionType::TopKQuantized
    );
    if quantized_type != matches!(encoding, ValueEncoding::Quantized { .. }) {
        return Err(Error::corrupt(format!(
            "compressed gradient: value encoding {enc} does not fit compression type {}",
            compression_type.as_str()
        )));
    }
    if n == 0 || k == 0 || k > n {
        return Err(Error::corrupt(format!(
            "compressed gradient: invalid sizes (length {n}, count {k})"
        )));
    }
    let dense_type = matches!(
        compression_type,
        CompressionType::None | CompressionType::Quantization
    );
    let dense = ienc == 0;
    if dense != dense_type || (dense && k != n) || ienc > 2 {
        return Err(Error::corrupt(format!("compressed gradient: index encoding {ienc} does not fit {} with length {n} and count {k}", compression_type.as_str())));
    }
    let ib_len = r.u32("index block size")? as usize;
    let ib = r.take(ib_len, "index block")?;
    let vb_len = r.u32("value block size")? as usize;
    let vb = r.take(vb_len, "value block")?;
    if r.pos != body.len() {
        return Err(Error::corrupt(format!(
            "compressed gradient: {} unexpected trailing bytes",
            body.len() - r.pos
        )));
    }
    // The value block's size pins k to what the buffer holds, before anything is allocated.
    let expected_vb = match encoding {
        ValueEncoding::F32 => k.checked_mul(4),
        ValueEncoding::F16 => k.checked_mul(2),
        ValueEncoding::Quantized { bits } => {
            Some(4 * k.div_ceil(QUANT_BLOCK) + (k * bits as usize).div_ceil(8))
        }
    };
    if expected_vb != Some(vb_len) {
        return Err(Error::corrupt(format!(
            "compressed gradient: value block is {vb_len} bytes, {k} values need {}",
            expected_vb.unwrap_or(usize::MAX)
        )));
    }
    let indices = match ienc {
        0 => {
            if ib_len != 0 {
                return Err(Error::corrupt(
                    "compressed gradient: dense message with a non-empty index block",
                ));
            }
            Vec::new()
        }
        1 => decode_varints(ib, n, k)?,
        _ => decode_bitmap(ib, n, k)?,
    };
    // The encoding is canonical: the index block must be the smaller of the two forms
    // (varint on a tie), so every message has exactly one byte representation.
    if !dense {
        let varint = if ienc == 1 {
            ib_len
        } else {
            delta_varint_len(&indices)
        };
        let canonical = if varint <= n.div_ceil(8) { 1 } else { 2 };
        if ienc != canonical {
            return Err(Error::corrupt(
                "compressed gradient: index block is not in its canonical (smaller) form",
            ));
        }
    }
    let (values, quantized) = match encoding {
        ValueEncoding::F32 => (
            vb.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            None,
        ),
        ValueEncoding::F16 => (
            vb.chunks_exact(2)
                .map(|c| f16_bits_to_f32(u16::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            None,
        ),
        ValueEncoding::Quantized { bits } => {
            let ns = k.div_ceil(QUANT_BLOCK);
            let scales: Vec<f32> = vb[..4 * ns]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
                return Err(Error::corrupt(format!(
                    "compressed gradient: invalid quantization scale {s}"
                )));
            }
            let q = QuantizedBlock {
                bits,
                scales,
                packed: vb[4 * ns..].to_vec(),
            };
            (dequantize(&q, k)?, Some(q))
        }
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::corrupt(format!(
            "compressed gradient: value {i} is {}",
            values[i]
        )));
    }
    Ok(CompressedGradient {
        length: n,
        indices,
        values,
        dense,
        compression_type,
        encoding,
        quantized,
        round,
    })
}

fn decode_varints(ib: &[u8], n: usize, k: usize) -> Result<Vec<u32>> {
    if k > ib.len() {
        return Err(Error::corrupt(format!(
            "compressed gradient: {k} indices cannot fit in {} bytes",
            ib.len()
        )));
    }
    let mut out = Vec::with_capacity(k);
    let mut pos = 0usize;
    let mut prev: i64 = -1;
    while out.len() < k {
        let mut gap: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *ib.get(pos).ok_or_else(|| {
                Error::corrupt("compressed gradient: index block ends inside a varint")
            })?;
            pos += 1;
            if shift == 35 || (shift == 28 && b > 0x0f) {
                return Err(Error::corrupt(
                    "compressed gradient: varint longer than 32 bits",
                ));
            }
            gap |= ((b & 0x7f) as u64) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if b == 0 && shift > 7 {
                    return Err(Error::corrupt("compressed gradient: overlong varint"));
                }
                break;
            }
        }
        let idx = prev + 1 + gap as i64;
        if idx >= n as i64 {
            return Err(Error::corrupt(format!(
                "compressed gradient: index {idx} is out of range for length {n}"
            )));
        }
        out.push(idx as u32);
        prev = idx;
    }
    if pos != ib.len() {
        return Err(Error::corrupt(format!(
            "compressed gradient: {} unused bytes in the index block",
            ib.len() - pos
        )));
    }
    Ok(out)
}

fn decode_bitmap(ib: &[u8], n: usize, k: usize) -> Result<Vec<u32>> {
    if ib.len() != n.div_ceil(8) {
        return Err(Error::corrupt(format!(
            "compressed gradient: bitmap is {} bytes, length {n} needs {}",
            ib.len(),
            n.div_ceil(8)
        )));
    }
    if !n.is_multiple_of(8) && ib[ib.len() - 1] >> (n % 8) != 0 {
        return Err(Error::corrupt(
            "compressed gradient: bitmap has bits set past the gradient length",
        ));
    }
    let count: usize = ib.iter().map(|b| b.count_ones() as usize).sum();
    if count != k {
        return Err(Error::corrupt(format!(
            "compressed gradient: bitmap holds {count} positions, header says {k}"
        )));
    }
    // Up to 32 bytes of indices per bitmap byte: fallible.
    let mut out = crate::core::alloc::with_capacity(k, "the indices")?;
    for (j, &b) in ib.iter().enumerate() {
        let mut m = b;
        while m != 0 {
            out.push((j * 8) as u32 + m.trailing_zeros());
            m &= m - 1;
        }
    }
    Ok(out)
}

/// Serialises a client's whole state (node id, configuration, round, counters, residual).
pub fn encode_state(node_id: &str, st: &ClientState) -> Vec<u8> {
    let c = &st.config;
    let id = node_id.as_bytes();
    let mut out = Vec::with_capacity(64 + id.len() + 4 * st.residual.len());
    out.extend_from_slice(STATE_MAGIC);
    out.push(STATE_VERSION);
    out.push(c.compression_type.to_u8());
    out.push(c.error_feedback as u8);
    out.push(c.quantization_bits);
    out.push(c.fp16_values as u8);
    out.extend_from_slice(&(id.len() as u16).to_le_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&c.sparsity.to_le_bytes());
    out.extend_from_slice(&c.seed.to_le_bytes());
    out.extend_from_slice(&st.rounds.to_le_bytes());
    out.extend_from_slice(&st.bytes_in.to_le_bytes());
    out.extend_from_slice(&st.bytes_out.to_le_bytes());
    out.extend_from_slice(&(st.residual.len() as u32).to_le_bytes());
    st.residual
        .iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Parses a saved client state; any defect is `ERR_CORRUPT_DATA`.
pub fn decode_state(buf: &[u8]) -> Result<(String, ClientState)> {
    let body = check_frame(buf, STATE_MAGIC, "client state", 4 + 5 + 2 + 8 * 5 + 4 + 4)?;
    let mut r = Reader {
        buf: body,
        pos: 4,
        what: "client state",
    };
    let version = r.u8("version")?;
    if version != STATE_VERSION {
        return Err(Error::corrupt(format!(
            "client state: unsupported version {version}"
        )));
    }
    let ct = r.u8("compression type")?;
    let compression_type = CompressionType::from_u8(ct)
        .ok_or_else(|| Error::corrupt(format!("client state: unknown compression type {ct}")))?;
    let ef = r.u8("error feedback")?;
    let bits = r.u8("bits")?;
    let fp16 = r.u8("fp16")?;
    if ef > 1 || fp16 > 1 {
        return Err(Error::corrupt("client state: invalid flag byte"));
    }
    let id_len = r.u16("node id length")? as usize;
    let id = std::str::from_utf8(r.take(id_len, "node id")?)
        .map_err(|_| Error::corrupt("client state: node id is not UTF-8"))?
        .to_string();
    let sparsity = r.f64("sparsity")?;
    let seed = r.u64("seed")?;
    let rounds = r.u64("rounds")?;
    let bytes_in = r.u64("bytes in")?;
    let bytes_out = r.u64("bytes out")?;
    let n = r.u32("residual length")? as usize;
    let raw = r.take(
        n.checked_mul(4)
            .ok_or_else(|| Error::corrupt("client state: residual length overflows"))?,
        "residual",
    )?;
    if r.pos != body.len() {
        return Err(Error::corrupt("client state: unexpected trailing bytes"));
    }
    let config = CompressionConfig {
        compression_type,
        sparsity,
        error_feedback: ef == 1,
        quantization_bits: bits,
        seed,
        fp16_values: fp16 == 1,
    };
    config
        .validate()
        .map_err(|e| Error::corrupt(format!("client state: {}", e.message)))?;
    let residual: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    if residual.iter().any(|v| !v.is_finite()) {
        return Err(Error::corrupt(
            "client state: residual holds a non-finite value",
        ));
    }
    let residual_bound = residual.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    Ok((
        id,
        ClientState {
            config,
            residual,
            rounds,
            bytes_in,
            bytes_out,
            residual_bound,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::compression::compress_values;
    use crate::core::rng::Rng;

    fn sample_messages() -> Vec<CompressedGradient> {
        let mut rng = Rng::new(11);
        let g: Vec<f32> = (0..3000).map(|_| rng.normal() as f32).collect();
        let mut out = Vec::new();
        for (t, sp, bits, fp16) in [
            (CompressionType::None, 0.0, 8, false),
            (CompressionType::None, 0.0, 8, true),
            (CompressionType::TopK, 0.99, 8, false),
            (CompressionType::TopK, 0.5, 8, true), // dense enough for a bitmap
            (CompressionType::RandomK, 0.9, 8, false),
            (CompressionType::Quantization, 0.0, 3, false),
            (CompressionType::TopKQuantized, 0.95, 1, false),
            (CompressionType::TopKQuantized, 0.2, 16, false),
        ] {
            let cfg = CompressionConfig {
                compression_type: t,
                sparsity: sp,
                error_feedback: false,
                quantization_bits: bits,
                seed: 5,
                fp16_values: fp16,
            };
            out.push(compress_values(&g, &cfg, 7).unwrap());
        }
        out
    }

    #[test]
    fn round_trip_is_exact_and_size_is_predicted() {
        for m in sample_messages() {
            let buf = encode(&m);
            assert_eq!(buf.len(), encoded_len(&m));
            let d = decode(&buf).unwrap();
            assert_eq!(d, m);
        }
    }

    #[test]
    fn index_block_picks_the_smaller_encoding() {
        let ms = sample_messages();
        // top 1% of 3000 = 30 indices: varint (~2 bytes each) beats a 375-byte bitmap.
        assert_eq!(encode(&ms[2])[8], 1);
        // top 50%: 1500 indices as varints (≥1500 bytes) lose to the bitmap.
        assert_eq!(encode(&ms[3])[8], 2);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for m in sample_messages().iter().take(4) {
            let buf = encode(m);
            for byte in 0..buf.len() {
                for bit in 0..8 {
                    let mut b = buf.clone();
                    b[byte] ^= 1 << bit;
                    assert_eq!(
                        decode(&b).unwrap_err().code,
                        crate::core::error::Code::CorruptData
                    );
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        for m in sample_messages() {
            let buf = encode(&m);
            for len in 0..buf.len() {
                assert!(decode(&buf[..len]).is_err());
            }
        }
    }

    /// Rewrites a field and fixes the checksum, as a forger would.
    fn forge(mut b: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
        b[at..at + bytes.len()].copy_from_slice(bytes);
        let n = b.len() - 4;
        let crc = crc32c::crc32c(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn forged_headers_are_refused_without_big_allocations() {
        let m = &sample_messages()[2];
        let buf = encode(m);
        // Huge count: the value block size no longer matches.
        assert!(decode(&forge(buf.clone(), 16, &u32::MAX.to_le_bytes())).is_err());
        // Huge index block size.
        assert!(decode(&forge(buf.clone(), 24, &u32::MAX.to_le_bytes())).is_err());
        // Count larger than length.
        assert!(decode(&forge(buf.clone(), 12, &5u32.to_le_bytes())).is_err());
        // Unknown version, type and encodings.
        assert!(decode(&forge(buf.clone(), 4, &[2])).is_err());
        assert!(decode(&forge(buf.clone(), 5, &[9])).is_err());
        assert!(decode(&forge(buf.clone(), 6, &[2])).is_err());
        assert!(decode(&forge(buf.clone(), 8, &[0])).is_err());
        // A NaN value with a valid checksum.
        let vstart = buf.len() - 4 - 4 * m.values.len();
        assert!(decode(&forge(buf.clone(), vstart, &f32::NAN.to_le_bytes())).is_err());
    }

    #[test]
    fn state_round_trip_and_corruption() {
        let cfg = CompressionConfig {
            compression_type: CompressionType::TopKQuantized,
            sparsity: 0.9,
            error_feedback: true,
            quantization_bits: 4,
            seed: 9,
            fp16_values: false,
        };
        let mut st = ClientState::new(cfg).unwrap();
        st.compress(&(0..100).map(|i| i as f32 * 0.1).collect::<Vec<_>>())
            .unwrap();
        let buf = encode_state("sat-ü1", &st);
        let (id, back) = decode_state(&buf).unwrap();
        assert_eq!(id, "sat-ü1");
        assert_eq!(
            (
                back.config,
                back.residual,
                back.rounds,
                back.bytes_in,
                back.bytes_out
            ),
            (
                st.config.clone(),
                st.residual.clone(),
                st.rounds,
                st.bytes_in,
                st.bytes_out
            )
        );
        assert!(
            back.residual_bound <= st.residual_bound && back.residual_bound == 8.900001f32 as f64
        );
        for byte in 0..buf.len() {
            let mut b = buf.clone();
            b[byte] ^= 0x10;
            assert!(decode_state(&b).is_err());
        }
    }
}
