//! Weighted sums of updates in one parallel pass over chunks of the output: each output
//! chunk (64 KiB) stays in cache while every input's matching slice streams through it
//! once. Sparse inputs touch only their own entries of each chunk (walked on from the
//! worker's previous chunk), so they are never densified and their scattered writes hit
//! cache. The finiteness of the result is checked on each chunk while it is still in
//! cache, so dense inputs are read exactly once (a non-finite input makes a non-finite
//! sum; the caller then looks for the culprit).

use rayon::prelude::*;

use super::input::{any_non_finite, SparseWalk, Update};
use super::stream;
use super::CHUNK;
use crate::core::error::Result;

/// Exponent bits of an f32: all set for NaN and ±Inf.
const EXP: u32 = 0x7f80_0000;

/// A sparse input's (indices, values) and its weight.
type Weighted<'a> = ((&'a [u32], &'a [f32]), f32);

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

/// `out += Σ wᵢ · updatesᵢ`; zero weights are skipped. Returns whether every value of
/// `out` is finite afterwards, given that it was before.
pub fn accumulate(out: &mut [f32], updates: &[Update], weights: &[f32]) -> bool {
    pass(out, updates, weights, false)
}

/// `out = Σ wᵢ · updatesᵢ` (whatever `out` held); returns whether every value is finite
/// (the updates must be).
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
    let dense: Vec<(&[f32], f32)> = live
        .iter()
        .filter(|(u, _)| !u.is_sparse())
        .map(|(u, w)| (u.values(), *w))
        .collect();
    let sparse: Vec<Weighted> = live
        .iter()
        .filter_map(|(u, w)| u.sparse_parts().map(|e| (e, *w)))
        .collect();
    if overwrite && dense.is_empty() {
        return overwrite_sparse(out, &sparse);
    }
    let kernel = |walk: &mut SparseWalk, ci: usize, o: &mut [f32]| -> bool {
        let start = ci * CHUNK;
        let len = o.len();
        if overwrite {
            o.fill(0.0);
        }
        // Dense inputs four at a time: one load and store of the output per four inputs.
        let mut k = 0;
        while k + 4 <= dense.len() {
            let ((a, wa), (b, wb), (c, wc), (d, wd)) =
                (dense[k], dense[k + 1], dense[k + 2], dense[k + 3]);
            let (a, b, c, d) = (
                &a[start..start + len],
                &b[start..start + len],
                &c[start..start + len],
                &d[start..start + len],
            );
            for j in 0..len {
                o[j] += wa * a[j] + wb * b[j] + wc * c[j] + wd * d[j];
            }
            k += 4;
        }
        for &(a, wa) in &dense[k..] {
            o.iter_mut()
                .zip(&a[start..start + len])
                .for_each(|(o, a)| *o += wa * a);
        }
        let finite = scatter(walk, &sparse, start, o);
        // Checked while the chunk is still in cache.
        finite && (dense.is_empty() || !any_non_finite(o))
    };
    // Each worker's walk resumes the sparse inputs where its previous chunk ended.
    let walk = || SparseWalk::new(sparse.len());
    if out.len() > CHUNK {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .map_init(walk, |walk, (ci, o)| kernel(walk, ci, o))
            .reduce(|| true, |a, b| a && b)
    } else {
        kernel(&mut walk(), 0, out)
    }
}

/// Runs of consecutive chunks per thread in [`overwrite_sparse`]: enough for the threads
/// to even out their loads, few enough that each run pipelines many chunks.
const RUNS_PER_THREAD: usize = 8;
/// Floats of the previous chunk streamed out per block of eight entries scattered (256
/// bytes): about the rate memory takes them at, so the stores drain during the scatter
/// (32 to 64 floats measured best; 8, 128 and more slower, as was an unrolled step that
/// issues its stores closer together).
const DRAIN_STEP: usize = 64;

/// `out = Σ w · sparse` for sparse inputs alone. Each chunk's sum is scattered into a
/// cache-resident scratch and then streamed to `out` with non-temporal stores: `out`'s old
/// contents are never read from memory, which halves the traffic of an output that is
/// mostly zeros. Streamed in one burst, a chunk stalls the core until memory has taken it;
/// so a run of chunks alternates two scratches, and the previous chunk drains a little
/// after every block of entries scattered into the next (10–15 % faster than the burst).
/// Returns whether every value is finite (the updates must be).
fn overwrite_sparse(out: &mut [f32], sparse: &[Weighted]) -> bool {
    type Scratch = Box<[f32; CHUNK]>;
    let scratch = || -> Scratch {
        vec![0.0f32; CHUNK]
            .into_boxed_slice()
            .try_into()
            .expect("CHUNK floats")
    };
    // Per worker: the walk, and two zeroed scratches (zero again after each run).
    let state = || (SparseWalk::new(sparse.len()), scratch(), scratch());
    let run = |(walk, next, prev): &mut (SparseWalk, Scratch, Scratch),
               base: usize,
               o: &mut [f32]|
     -> bool {
        let mut finite = true;
        let mut pending: Option<&mut [f32]> = None;
        for (ci, chunk) in o.chunks_mut(CHUNK).enumerate() {
            let start = base + ci * CHUNK;
            let end = start + chunk.len();
            // The previous chunk's sums (in `prev`) drain into `pending` while this chunk's
            // are scattered into `next`.
            let mut drain = pending.take().map(|p| {
                let len = p.len();
                stream::Drain::new(p, &mut prev[..len])
            });
            for (k, &(entries, w)) in sparse.iter().enumerate() {
                walk.for_each_then(
                    k,
                    entries,
                    start,
                    end,
                    // Masked: always in bounds, exact as j < end − start ≤ CHUNK.
                    |j, v| next[j & (CHUNK - 1)] += w * v,
                    || {
                        if let Some(d) = drain.as_mut() {
                            d.step(DRAIN_STEP)
                        }
                    },
                );
            }
            if let Some(d) = drain {
                finite &= d.finish();
            }
            std::mem::swap(next, prev);
            pending = Some(chunk);
        }
        if let Some(p) = pending {
            let len = p.len();
            finite &= stream::Drain::new(p, &mut prev[..len]).finish();
        }
        // Once per run: the caller reads `out` after the join that ends this task.
        stream::fence();
        finite
    };
    let chunks = out.len().div_ceil(CHUNK);
    let runs = (RUNS_PER_THREAD * rayon::current_num_threads()).min(chunks);
    if runs <= 1 {
        return run(&mut state(), 0, out);
    }
    let per = chunks.div_ceil(runs) * CHUNK;
    out.par_chunks_mut(per)
        .enumerate()
        .map_init(state, |st, (r, o)| run(st, r * per, o))
        .reduce(|| true, |a, b| a && b)
}

/// `o += Σ w · entries` over the sparse inputs' entries in `[start, start + o.len())`, in
/// list order; returns whether every value written is finite. Each value is checked as it
/// is written: with finite inputs, an overflowing partial sum stays non-finite, so a chunk
/// without dense inputs needs no second scan.
#[inline]
fn scatter(walk: &mut SparseWalk, sparse: &[Weighted], start: usize, o: &mut [f32]) -> bool {
    let end = start + o.len();
    let mut bad = 0u32;
    for (k, &(entries, w)) in sparse.iter().enumerate() {
        walk.for_each(k, entries, start, end, |j, v| {
            let x = o[j] + w * v;
            o[j] = x;
            bad |= ((x.to_bits() & EXP) == EXP) as u32;
        });
    }
    bad == 0
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
