//! Weighted sums of updates in one parallel pass over chunks of the output: each output
//! chunk (64 KiB) stays in cache while every input's matching slice streams through it
//! once. Sparse inputs touch only their own entries of each chunk (found by binary
//! search), so they are never densified and their scattered writes hit cache. The
//! finiteness of the result is checked on each chunk while it is still in cache, so dense
//! inputs are read exactly once (a non-finite input makes a non-finite sum; the caller
//! then looks for the culprit).

use rayon::prelude::*;

use super::input::Update;
use super::CHUNK;
use crate::core::error::Result;

/// A zeroed output of `n` floats. (Transparent huge pages were tried for fresh outputs
/// and dropped: on a 2-core VM their faults took 3 to 140 ms per 40 MB depending on how
/// fragmented memory was, against a steady 12–17 ms for ordinary pages.)
/// `ERR_OUT_OF_MEMORY` when the process cannot hold it (the length may come from a
/// forged message).
pub fn zeroed(n: usize) -> Result<Vec<f32>> {
    crate::core::alloc::zeroed(n, "the aggregate")
}

/// `Σ wᵢ · updatesᵢ` as a new vector of length `n`; false in `.1` when a value of the
/// result is NaN or ±Inf.
pub fn weighted_sum(updates: &[Update], weights: &[f32], n: usize) -> Result<(Vec<f32>, bool)> {
    let mut out = zeroed(n)?;
    let ok = accumulate(&mut out, updates, weights);
    Ok((out, ok))
}

#[inline]
fn chunk_finite(o: &[f32]) -> bool {
    !o.iter().fold(0.0f32, |a, &x| a + x * 0.0).is_nan()
}

/// `out += Σ wᵢ · updatesᵢ`; zero weights are skipped. Returns whether every value of
/// `out` is finite afterwards.
pub fn accumulate(out: &mut [f32], updates: &[Update], weights: &[f32]) -> bool {
    pass(out, updates, weights, false)
}

/// `out = Σ wᵢ · updatesᵢ` (whatever `out` held); returns whether every value is finite.
/// Each chunk is zeroed while in cache, so `out` is written once.
pub fn sum_into(out: &mut [f32], updates: &[Update], weights: &[f32]) -> bool {
    pass(out, updates, weights, true)
}

fn pass(out: &mut [f32], updates: &[Update], weights: &[f32], overwrite: bool) -> bool {
    debug_assert_eq!(updates.len(), weights.len());
    let live: Vec<(Update, f32)> = updates
        .iter()
        .zip(weights)
        .filter(|(_, &w)| w != 0.0)
        .map(|(u, &w)| (*u, w))
        .collect();
    let kernel = |ci: usize, o: &mut [f32]| -> bool {
        let start = ci * CHUNK;
        if overwrite {
            o.fill(0.0);
        }
        // Dense inputs four at a time: one load and store of the output per four inputs.
        let dense: Vec<(&[f32], f32)> = live
            .iter()
            .filter(|(u, _)| !u.is_sparse())
            .map(|(u, w)| (&u.values()[start..start + o.len()], *w))
            .collect();
        let mut k = 0;
        while k + 4 <= dense.len() {
            let ((a, wa), (b, wb), (c, wc), (d, wd)) =
                (dense[k], dense[k + 1], dense[k + 2], dense[k + 3]);
            for j in 0..o.len() {
                o[j] += wa * a[j] + wb * b[j] + wc * c[j] + wd * d[j];
            }
            k += 4;
        }
        for &(a, wa) in &dense[k..] {
            o.iter_mut().zip(a).for_each(|(o, a)| *o += wa * a);
        }
        for (u, w) in live.iter().filter(|(u, _)| u.is_sparse()) {
            u.add_chunk(start, o, *w);
        }
        if dense.is_empty() {
            // Only the scattered entries can have overflowed (sparse values are checked
            // before): look at those alone instead of the whole chunk.
            let end = start + o.len();
            return live.iter().all(|(u, _)| match u {
                Update::Compressed(c) => {
                    let (lo, hi) = super::input::sparse_range(&c.indices, start, end);
                    c.indices[lo..hi]
                        .iter()
                        .all(|&i| o[i as usize - start].is_finite())
                }
                Update::Dense(_) => true,
            });
        }
        chunk_finite(o)
    };
    if out.len() > CHUNK {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(ci, o)| kernel(ci, o))
            .reduce(|| true, |a, b| a && b)
    } else {
        kernel(0, out)
    }
}

/// `out *= s`, in parallel.
pub fn scale(out: &mut [f32], s: f32) {
    if out.len() > CHUNK {
        out.par_chunks_mut(CHUNK)
            .for_each(|o| o.iter_mut().for_each(|x| *x *= s));
    } else {
        out.iter_mut().for_each(|x| *x *= s);
    }
}
