//! One client update as the aggregator reads it: a dense slice (borrowed, never copied)
//! or a compressed gradient (sparse or dense), read in place.

use rayon::prelude::*;

use crate::core::compression::CompressedGradient;
use crate::core::error::{Code, Error, Result};

use super::{CHUNK, PAR_THRESHOLD};

/// A client update, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Update<'a> {
    Dense(&'a [f32]),
    Compressed(&'a CompressedGradient),
}

impl<'a> Update<'a> {
    /// Length of the full gradient.
    pub fn len(&self) -> usize {
        match self {
            Update::Dense(s) => s.len(),
            Update::Compressed(c) => c.length,
        }
    }

    /// True for a zero-length update.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when only some positions are carried.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Update::Compressed(c) if !c.dense)
    }

    /// The indices and values of a sparse update; `None` when every position is carried.
    pub fn sparse_parts(&self) -> Option<(&'a [u32], &'a [f32])> {
        match self {
            Update::Compressed(c) if !c.dense => Some((&c.indices, &c.values)),
            _ => None,
        }
    }

    /// The values carried (every value when dense).
    pub fn values(&self) -> &'a [f32] {
        match self {
            Update::Dense(s) => s,
            Update::Compressed(c) => &c.values,
        }
    }

    /// `ERR_NON_FINITE` naming `name` and the gradient position of the first NaN/±Inf.
    pub fn check_finite(&self, name: &str) -> Result<()> {
        let v = self.values();
        if let Some(k) = first_non_finite(v) {
            let pos = match self {
                Update::Compressed(c) if !c.dense => {
                    c.indices.get(k).map(|&i| i as usize).unwrap_or(k)
                }
                _ => k,
            };
            return Err(Error::new(
                Code::NonFinite,
                format!("{name}[{pos}] is {} (gradients must be finite)", v[k]),
            ));
        }
        Ok(())
    }

    /// Squared L2 norm, in f64.
    pub fn norm2(&self) -> f64 {
        let v = self.values();
        let fast = if v.len() >= PAR_THRESHOLD {
            v.par_chunks(CHUNK).map(sum_sq).sum()
        } else {
            sum_sq(v)
        };
        if fast.is_finite() {
            fast
        } else {
            // Squares of values above ~1.8e19 overflow f32 lanes; f64 holds any f32 squared.
            v.iter().map(|&x| (x as f64) * (x as f64)).sum()
        }
    }

    /// `out = scale · self[start .. start + out.len()]` (zeros where a sparse update is
    /// silent); `walk` and `k` as for [`Update::add_chunk`].
    pub(crate) fn fill_chunk(
        &self,
        start: usize,
        out: &mut [f32],
        scale: f32,
        walk: &mut SparseWalk,
        k: usize,
    ) {
        match self.sparse_parts() {
            None => {
                let len = out.len();
                out.iter_mut()
                    .zip(&self.values()[start..start + len])
                    .for_each(|(o, v)| *o = scale * v)
            }
            Some(entries) => {
                out.fill(0.0);
                let end = start + out.len();
                walk.for_each(k, entries, start, end, |j, v| out[j] = scale * v);
            }
        }
    }

    /// `acc += w · self`, whole length; O(nnz) for sparse updates.
    pub fn add_into(&self, acc: &mut [f32], w: f32) {
        match self {
            Update::Compressed(c) if !c.dense => {
                for (&i, &v) in c.indices.iter().zip(&c.values) {
                    if let Some(o) = acc.get_mut(i as usize) {
                        *o += w * v;
                    }
                }
            }
            _ => {
                let v = self.values();
                if acc.len() >= PAR_THRESHOLD {
                    acc.par_chunks_mut(CHUNK)
                        .zip(v.par_chunks(CHUNK))
                        .for_each(|(o, x)| axpy(o, x, w));
                } else {
                    axpy(acc, v, w);
                }
            }
        }
    }
}

/// Whether any of `updates` holds a NaN or ±Inf, in one parallel pass over all their
/// values (one pass per update would pay the thread pool's hand-off once per update).
pub fn any_non_finite_in(updates: &[Update]) -> bool {
    let total: usize = updates.iter().map(|u| u.values().len()).sum();
    if total >= PAR_THRESHOLD {
        updates
            .par_iter()
            .flat_map(|u| u.values().par_chunks(CHUNK))
            .any(any_non_finite)
    } else {
        updates.iter().any(|u| any_non_finite(u.values()))
    }
}

/// True when `c` holds a NaN or ±Inf: all exponent bits set. Integer lanes, so the
/// reduction vectorises (a float fold would be one long dependency chain).
#[inline]
pub(crate) fn any_non_finite(c: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    c.iter()
        .fold(0u32, |a, &x| a | ((x.to_bits() & EXP) == EXP) as u32)
        != 0
}

fn first_non_finite(v: &[f32]) -> Option<usize> {
    let bad = if v.len() >= PAR_THRESHOLD {
        v.par_chunks(CHUNK).any(any_non_finite)
    } else {
        any_non_finite(v)
    };
    if bad {
        v.iter().position(|x| !x.is_finite())
    } else {
        None
    }
}

fn sum_sq(v: &[f32]) -> f64 {
    // Eight f32 lanes of partial sums, folded into f64 per 4096 values: fast and accurate enough.
    v.chunks(4096)
        .map(|c| {
            let mut acc = [0.0f32; 8];
            let mut it = c.chunks_exact(8);
            for b in &mut it {
                for k in 0..8 {
                    acc[k] += b[k] * b[k];
                }
            }
            let tail: f32 = it.remainder().iter().map(|x| x * x).sum();
            acc.iter().map(|&a| a as f64).sum::<f64>() + tail as f64
        })
        .sum()
}

#[inline]
fn axpy(out: &mut [f32], x: &[f32], w: f32) {
    out.iter_mut().zip(x).for_each(|(o, x)| *o += w * x);
}

/// Entries ahead of a walk that are fetched into cache as it goes: more than a chunk of the
/// linear kernels holds of a top-1 % update (~164 of 16 Ki positions), so the next chunk's
/// entries are on their way while this one's are summed. A walk jumps from update to
/// update, more streams at once than the hardware prefetcher follows (16 updates: 32
/// arrays); measured 7–14 % off a 16-update sparse sum.
const PREFETCH_AHEAD: usize = 256;

/// Asks for the cache line holding `s[at]` (an index past the end is harmless: a prefetch
/// never faults).
#[inline(always)]
fn prefetch<T>(s: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and never faults, whatever the address; the address
    // is computed with wrapping arithmetic, which claims nothing about bounds. SSE is part
    // of x86-64.
    unsafe {
        use std::arch::x86_64::*;
        _mm_prefetch::<_MM_HINT_T0>(s.as_ptr().wrapping_add(at).cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, at);
}

/// Walks several sparse updates' entries window by window. Windows usually come in
/// ascending order (a worker's run of chunks), so each update's walk resumes where its
/// previous window ended and steps over the window's entries as the caller reads them:
/// O(entries) per window, no search. (A binary search over all of an update's indices per
/// window cost a dozen cache misses each, most of the time of a sparse sum.)
#[derive(Debug, Clone)]
pub(crate) struct SparseWalk {
    /// Per update: the window start its cursor is valid for, and the cursor.
    resume: Vec<(usize, usize)>,
}

impl SparseWalk {
    /// A walk over `m` updates, with no window seen yet.
    pub fn new(m: usize) -> Self {
        SparseWalk {
            resume: vec![(usize::MAX, 0); m],
        }
    }

    /// Calls `f(position − start, value)` for each entry of update `k` (ascending
    /// `indices`, their `values`) in [start, end); returns how many there were.
    #[inline]
    pub fn for_each(
        &mut self,
        k: usize,
        entries: (&[u32], &[f32]),
        start: usize,
        end: usize,
        f: impl FnMut(usize, f32),
    ) -> usize {
        self.walk(k, entries, start, end, f, || {})
    }

    /// [`SparseWalk::for_each`], calling `between()` after each block of eight entries:
    /// a place to interleave other work with the caller's (the staged sparse sum streams
    /// the previous chunk out there).
    #[inline]
    pub fn for_each_then(
        &mut self,
        k: usize,
        entries: (&[u32], &[f32]),
        start: usize,
        end: usize,
        f: impl FnMut(usize, f32),
        between: impl FnMut(),
    ) -> usize {
        self.walk(k, entries, start, end, f, between)
    }

    /// Calls `f(position − start)` for each of update `k`'s positions (ascending
    /// `indices`) in [start, end); returns how many there were.
    #[inline]
    pub fn for_each_position(
        &mut self,
        k: usize,
        indices: &[u32],
        start: usize,
        end: usize,
        mut f: impl FnMut(usize),
    ) -> usize {
        // The positions stand in for the values, which are not read.
        self.walk(k, (indices, indices), start, end, |j, _| f(j), || {})
    }

    #[inline]
    fn walk<V: Copy>(
        &mut self,
        k: usize,
        (indices, values): (&[u32], &[V]),
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, V),
        mut between: impl FnMut(),
    ) -> usize {
        let (from, at) = self.resume[k];
        let n = indices.len().min(values.len());
        let (indices, values) = (&indices[..n], &values[..n]);
        let lo = if from == start {
            at
        } else {
            indices.partition_point(|&i| (i as usize) < start)
        };
        // Eight entries at a time while the eighth is still in the window (no test per
        // entry), then one at a time up to the window's end.
        let mut p = lo;
        while let (Some(ib), Some(vb)) = (indices.get(p..p + 8), values.get(p..p + 8)) {
            if ib[7] as usize >= end {
                break;
            }
            prefetch(indices, p + PREFETCH_AHEAD);
            prefetch(values, p + PREFETCH_AHEAD);
            for q in 0..8 {
                f(ib[q] as usize - start, vb[q]);
            }
            between();
            p += 8;
        }
        for (&i, &v) in indices[p..].iter().zip(&values[p..]) {
            let i = i as usize;
            if i >= end {
                break;
            }
            f(i - start, v);
            p += 1;
        }
        self.resume[k] = (end, p);
        p - lo
    }
}
