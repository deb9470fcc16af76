//! Weighted sums of sparse updates as a sparse result, in O(total nnz + n/64).
//!
//! The index space is cut into chunks of [`CHUNK`] positions. For each chunk, every input's
//! entries in it (found by walking on from the previous chunk, no search) are scattered as w·v
//! into a cache-resident f32 scratch of the chunk's size while a u64 bitmap records the
//! positions touched; the set bits are then emitted in ascending order (index and sum) and
//! cleared, with the scratch, for the next chunk. Ranges of chunks run in parallel: a first
//! pass counts each range's positions (bitmap only), so that the second writes straight
//! into the range's slot of one exactly sized output.
//!
//! Exactness: every position sums its inputs in list order starting from 0.0, as
//! [`super::linear`] does for sparse inputs, so densifying the result gives the dense
//! result bit for bit. The result holds the union of the indices of the inputs with a
//! non-zero weight, **including entries whose sum is exactly 0.0** (cancellation, or zeros
//! sent): the index set depends only on the inputs' indices, never on their values, and a
//! round with at least one non-empty contributing input never yields an empty result.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::input::SparseWalk;
use super::PAR_THRESHOLD;

/// One sparse input: ascending indices (each < n), their values, and its weight.
#[derive(Debug, Clone, Copy)]
pub struct SparseInput<'a> {
    /// Ascending positions.
    pub indices: &'a [u32],
    /// The value at each position.
    pub values: &'a [f32],
    /// Its weight; inputs of weight 0 are skipped (their indices are not in the result).
    pub weight: f32,
}

/// A weighted sum in sparse form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseSum {
    /// Ascending positions: the union of the contributing inputs' indices.
    pub indices: Vec<u32>,
    /// Σ wᵢ·vᵢ at each position.
    pub values: Vec<f32>,
    /// False when a value is NaN or ±Inf.
    pub finite: bool,
}

/// Positions per chunk: 64 KiB of f32 scratch (L2) and a 2 KiB bitmap.
const CHUNK: usize = 1 << 14;
const WORDS: usize = CHUNK / 64;
/// Exponent bits of an f32: all set for NaN and ±Inf.
const EXP: u32 = 0x7f80_0000;

/// `Σ wᵢ · inputsᵢ` over positions `0..n`, as ascending (index, value) pairs. Indices at or
/// beyond `n` are ignored.
pub fn weighted_sum(inputs: &[SparseInput], n: usize) -> SparseSum {
    let mut s = SparseSum::default();
    s.finite = weighted_sum_into(inputs, n, &mut s.indices, &mut s.values);
    s
}

/// [`weighted_sum`] written into `indices` and `values` (their contents replaced, their
/// capacity reused: no allocation when it suffices). Returns whether every sum is finite.
///
/// Two passes over ranges of chunks, in parallel: the first counts each range's positions
/// (the bitmap alone), so that the second writes its indices and sums straight into their
/// final place in one exactly sized output (no concatenation, no growth, no zeroing).
pub fn weighted_sum_into(
    inputs: &[SparseInput],
    n: usize,
    indices: &mut Vec<u32>,
    values: &mut Vec<f32>,
) -> bool {
    let live: Vec<SparseInput> = inputs
        .iter()
        .filter(|u| u.weight != 0.0)
        .map(|u| {
            let k = u.indices.len().min(u.values.len());
            SparseInput {
                indices: &u.indices[..k],
                values: &u.values[..k],
                weight: u.weight,
            }
        })
        .collect();
    let chunks = n.div_ceil(CHUNK);
    let nnz: usize = live.iter().map(|u| u.indices.len()).sum();
    let parts = if nnz < PAR_THRESHOLD || chunks < 2 {
        1
    } else {
        chunks.min(4 * rayon::current_num_threads())
    };
    let range = |p: usize| {
        let b = |p: usize| ((p * chunks / parts) * CHUNK).min(n);
        (b(p), b(p + 1))
    };
    let counts: Vec<usize> = if parts == 1 {
        vec![count_range(&live, 0, n)]
    } else {
        (0..parts)
            .into_par_iter()
            .map(|p| {
                let (lo, hi) = range(p);
                count_range(&live, lo, hi)
            })
            .collect()
    };
    let total: usize = counts.iter().sum();
    indices.clear();
    values.clear();
    indices.reserve_exact(total);
    values.reserve_exact(total);
    // Each range's exact slot of the output.
    let mut slots = Vec::with_capacity(parts);
    let (mut ri, mut rv) = (
        &mut indices.spare_capacity_mut()[..total],
        &mut values.spare_capacity_mut()[..total],
    );
    for (p, &c) in counts.iter().enumerate() {
        let (a, b) = std::mem::take(&mut ri).split_at_mut(c);
        let (x, y) = std::mem::take(&mut rv).split_at_mut(c);
        slots.push((range(p), a, x));
        ri = b;
        rv = y;
    }
    type Slot<'s> = (
        (usize, usize),
        &'s mut [MaybeUninit<u32>],
        &'s mut [MaybeUninit<f32>],
    );
    let fill = |((lo, hi), idx, val): Slot| fill_range(&live, lo, hi, idx, val);
    // Every slot is filled (no short-circuit: the length is set below).
    let finite = if parts == 1 {
        slots.into_iter().map(fill).fold(true, |a, b| a & b)
    } else {
        slots
            .into_par_iter()
            .map(fill)
            .reduce(|| true, |a, b| a & b)
    };
    // SAFETY: `fill_range` wrote every element of every slot (it asserts so before
    // returning, and a panic never gets here), and the slots tile `0..total` of the spare
    // capacity reserved above.
    unsafe {
        indices.set_len(total);
        values.set_len(total);
    }
    finite
}

/// Number of distinct positions the inputs carry in [lo, hi) (`lo` a multiple of [`CHUNK`]).
fn count_range(live: &[SparseInput], lo: usize, hi: usize) -> usize {
    let mut walk = SparseWalk::new(live.len());
    let mut bits = [0u64; WORDS];
    let mut count = 0;
    let mut start = lo;
    while start < hi {
        let end = (start + CHUNK).min(hi);
        for (k, u) in live.iter().enumerate() {
            walk.for_each_position(k, u.indices, start, end, |j| {
                // Masked: always in bounds, exact as j < end − start ≤ CHUNK.
                let j = j & (CHUNK - 1);
                bits[j >> 6] |= 1u64 << (j & 63);
            });
        }
        for w in bits.iter_mut() {
            count += w.count_ones() as usize;
            *w = 0;
        }
        start = end;
    }
    count
}

/// Writes the positions in [lo, hi) and their sums into `idx` and `val`, which must be
/// exactly [`count_range`] long; returns whether every sum is finite. Each position sums
/// its inputs in list order from 0.0, as the dense kernel does.
fn fill_range(
    live: &[SparseInput],
    lo: usize,
    hi: usize,
    idx: &mut [MaybeUninit<u32>],
    val: &mut [MaybeUninit<f32>],
) -> bool {
    assert_eq!(idx.len(), val.len());
    let mut walk = SparseWalk::new(live.len());
    let mut scratch: Box<[f32; CHUNK]> = vec![0.0f32; CHUNK]
        .into_boxed_slice()
        .try_into()
        .expect("CHUNK floats");
    let mut bits = [0u64; WORDS];
    let mut at = 0;
    let mut top_exp = 0u32;
    let mut start = lo;
    while start < hi {
        let end = (start + CHUNK).min(hi);
        let mut scattered = 0;
        for (k, u) in live.iter().enumerate() {
            let w = u.weight;
            scattered += walk.for_each(k, (u.indices, u.values), start, end, |j, v| {
                let j = j & (CHUNK - 1);
                scratch[j] += w * v;
                bits[j >> 6] |= 1u64 << (j & 63);
            });
        }
        // This chunk emits at most `scattered` entries: when they fit, the writes need no
        // bounds checks (the common case: all but a range's last chunk or so).
        let unchecked = at + scattered <= idx.len();
        for (wi, word) in bits.iter_mut().enumerate() {
            let mut b = std::mem::take(word);
            while b != 0 {
                let j = (wi * 64 + b.trailing_zeros() as usize) & (CHUNK - 1);
                b &= b - 1;
                let v = std::mem::take(&mut scratch[j]);
                top_exp = top_exp.max(v.to_bits() & EXP);
                let i = (start + j) as u32;
                if unchecked {
                    // SAFETY: at < (at at the chunk's start) + scattered ≤ idx.len() = val.len():
                    // a chunk emits one entry per distinct position scattered into it.
                    unsafe {
                        idx.get_unchecked_mut(at).write(i);
                        val.get_unchecked_mut(at).write(v);
                    }
                } else {
                    idx[at].write(i);
                    val[at].write(v);
                }
                at += 1;
            }
        }
        start = end;
    }
    assert_eq!(at, idx.len(), "sparse sum: count and fill disagree");
    top_exp != EXP
}
