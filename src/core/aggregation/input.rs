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

    /// `out += w · self[start .. start + out.len()]`.
    #[inline]
    pub fn add_chunk(&self, start: usize, out: &mut [f32], w: f32) {
        match self {
            Update::Dense(s) => {
                let len = out.len();
                axpy(out, &s[start..start + len], w)
            }
            Update::Compressed(c) if c.dense => {
                let len = out.len();
                axpy(out, &c.values[start..start + len], w)
            }
            Update::Compressed(c) => {
                let (lo, hi) = sparse_range(&c.indices, start, start + out.len());
                for (&i, &v) in c.indices[lo..hi].iter().zip(&c.values[lo..hi]) {
                    out[i as usize - start] += w * v;
                }
            }
        }
    }

    /// `out = scale · self[start .. start + out.len()]` (zeros where a sparse update is silent).
    pub fn fill_chunk(&self, start: usize, out: &mut [f32], scale: f32) {
        match self {
            Update::Dense(s) => {
                let len = out.len();
                out.iter_mut()
                    .zip(&s[start..start + len])
                    .for_each(|(o, v)| *o = scale * v)
            }
            Update::Compressed(c) if c.dense => {
                let len = out.len();
                out.iter_mut()
                    .zip(&c.values[start..start + len])
                    .for_each(|(o, v)| *o = scale * v)
            }
            Update::Compressed(c) => {
                out.fill(0.0);
                let (lo, hi) = sparse_range(&c.indices, start, start + out.len());
                for (&i, &v) in c.indices[lo..hi].iter().zip(&c.values[lo..hi]) {
                    out[i as usize - start] = scale * v;
                }
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
                if acc.len() >= PAR_THRESHOLD {
                    acc.par_chunks_mut(CHUNK)
                        .enumerate()
                        .for_each(|(ci, o)| self.add_chunk(ci * CHUNK, o, w));
                } else {
                    self.add_chunk(0, acc, w);
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
fn any_non_finite(c: &[f32]) -> bool {
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

/// The positions of `indices` (ascending) that fall in [start, end).
#[inline]
pub(crate) fn sparse_range(indices: &[u32], start: usize, end: usize) -> (usize, usize) {
    let lo = indices.partition_point(|&i| (i as usize) < start);
    let hi = lo + indices[lo..].partition_point(|&i| (i as usize) < end);
    (lo, hi)
}
