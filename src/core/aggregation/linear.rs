//! Weighted sums of updates, parallel over chunks of the output: each output chunk
//! (64 KiB) stays in cache while every input's matching slice streams through it once.
//! Sparse inputs touch only their own entries of each chunk (found by binary search), so
//! they are never densified.

use rayon::prelude::*;

use super::input::Update;
use super::CHUNK;

/// `Σ wᵢ · updatesᵢ` as a new vector of length `n` (every update has length `n`).
pub fn weighted_sum(updates: &[Update], weights: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    accumulate(&mut out, updates, weights);
    out
}

/// `out += Σ wᵢ · updatesᵢ`. Zero weights are skipped.
pub fn accumulate(out: &mut [f32], updates: &[Update], weights: &[f32]) {
    debug_assert_eq!(updates.len(), weights.len());
    let dense: Vec<(Update, f32)> =
        updates.iter().zip(weights).filter(|(u, &w)| !u.is_sparse() && w != 0.0).map(|(u, &w)| (*u, w)).collect();
    let sparse: Vec<(Update, f32)> =
        updates.iter().zip(weights).filter(|(u, &w)| u.is_sparse() && w != 0.0).map(|(u, &w)| (*u, w)).collect();
    if !dense.is_empty() {
        let kernel = |ci: usize, o: &mut [f32]| {
            let start = ci * CHUNK;
            for (u, w) in &dense {
                u.add_chunk(start, o, *w);
            }
        };
        if out.len() > CHUNK {
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, o)| kernel(ci, o));
        } else {
            kernel(0, out);
        }
    }
    // Sparse updates: O(nnz) scatter each, no per-chunk search needed.
    for (u, w) in &sparse {
        u.add_into(out, *w);
    }
}

/// `out *= s`, in parallel.
pub fn scale(out: &mut [f32], s: f32) {
    if out.len() > CHUNK {
        out.par_chunks_mut(CHUNK).for_each(|o| o.iter_mut().for_each(|x| *x *= s));
    } else {
        out.iter_mut().for_each(|x| *x *= s);
    }
}
