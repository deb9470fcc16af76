//! Byzantine-robust aggregation: coordinate-wise median and trimmed mean, Krum and
//! Multi-Krum (Blanchard et al., NeurIPS 2017). Every update is read chunk by chunk into
//! a small transposed buffer; sparse updates are expanded one chunk at a time only.

use crate::core::error::Result;
use rayon::prelude::*;

use super::input::{SparseWalk, Update};

/// Coordinates per parallel block of the coordinate-wise kernels.
const BLOCK: usize = 1024;

/// Fills `buf` (n rows of `len`) with block `[start, start + len)` of every update, scaled.
/// `walk` finds the sparse updates' entries (a worker's blocks come in ascending order).
fn fill_block(
    updates: &[Update],
    scales: &[f32],
    start: usize,
    len: usize,
    buf: &mut [f32],
    walk: &mut SparseWalk,
) {
    for (r, (u, &s)) in updates.iter().zip(scales).enumerate() {
        u.fill_chunk(start, &mut buf[r * len..(r + 1) * len], s, walk, r);
    }
}

/// Sorts a short column in place (insertion sort below 24 values).
#[inline]
fn sort_small(c: &mut [f32]) {
    if c.len() <= 24 {
        for i in 1..c.len() {
            let x = c[i];
            let mut j = i;
            while j > 0 && c[j - 1] > x {
                c[j] = c[j - 1];
                j -= 1;
            }
            c[j] = x;
        }
    } else {
        c.sort_unstable_by(|a, b| a.total_cmp(b));
    }
}

/// Comparators (i < j) of Batcher's odd–even merge sort for `m` inputs: the network for
/// the next power of two with every comparator touching an index ≥ m dropped (valid:
/// those positions act as +∞ and the network never moves them down).
pub fn sorting_network(m: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let n = m.next_power_of_two();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) && a < m && b < m {
                        out.push((a, b));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    out
}

/// Largest count sorted by the vectorised network; above it, columns are sorted one by one.
const NETWORK_MAX: usize = 64;

/// Sorts every column of a block (`m` rows of `len`) in place: row r then holds the r-th
/// smallest value of each coordinate. Each comparator is an element-wise min/max of two
/// rows, which vectorises.
fn sort_columns(buf: &mut [f32], m: usize, len: usize, net: &[(usize, usize)], col: &mut [f32]) {
    if m <= NETWORK_MAX {
        for &(a, b) in net {
            let (lo, hi) = buf.split_at_mut(b * len);
            let ra = &mut lo[a * len..(a + 1) * len];
            let rb = &mut hi[..len];
            for (x, y) in ra.iter_mut().zip(rb.iter_mut()) {
                let (p, q) = (*x, *y);
                *x = p.min(q);
                *y = p.max(q);
            }
        }
    } else {
        for j in 0..len {
            for r in 0..m {
                col[r] = buf[r * len + j];
            }
            sort_small(col);
            for r in 0..m {
                buf[r * len + j] = col[r];
            }
        }
    }
}

/// Sorts each coordinate's values across updates, block by block, and lets `f` reduce the
/// sorted rows of a block (`rows`, `len`) into the output block.
fn coordinatewise(
    updates: &[Update],
    scales: &[f32],
    n: usize,
    f: impl Fn(&[f32], usize, usize, &mut [f32]) + Sync,
) -> Result<Vec<f32>> {
    let m = updates.len();
    let net = sorting_network(m);
    let mut out = super::linear::zeroed(n)?;
    out.par_chunks_mut(BLOCK).enumerate().for_each_init(
        || (vec![0.0f32; m * BLOCK], vec![0.0f32; m], SparseWalk::new(m)),
        |(buf, col, walk), (bi, o)| {
            let len = o.len();
            let b = &mut buf[..m * len];
            fill_block(updates, scales, bi * BLOCK, len, b, walk);
            sort_columns(b, m, len, &net, col);
            f(b, m, len, o);
        },
    );
    Ok(out)
}

/// Coordinate-wise median; for an even count, the mean of the two middle values.
pub fn median(updates: &[Update], scales: &[f32], n: usize) -> Result<Vec<f32>> {
    coordinatewise(updates, scales, n, |b, m, len, o| {
        if m % 2 == 1 {
            o.copy_from_slice(&b[(m / 2) * len..(m / 2 + 1) * len]);
        } else {
            let (lo, hi) = (
                &b[(m / 2 - 1) * len..(m / 2) * len],
                &b[(m / 2) * len..(m / 2 + 1) * len],
            );
            for j in 0..len {
                o[j] = ((lo[j] as f64 + hi[j] as f64) / 2.0) as f32;
            }
        }
    })
}

/// How many values `trimmed_mean` drops at each end: ⌊β·m⌋, at most (m − 1)/2.
pub fn trim_count(m: usize, beta: f64) -> usize {
    ((beta * m as f64).floor() as usize).min((m - 1) / 2)
}

/// Coordinate-wise mean of the values left after dropping the ⌊β·m⌋ lowest and highest.
pub fn trimmed_mean(updates: &[Update], scales: &[f32], n: usize, beta: f64) -> Result<Vec<f32>> {
    let k = trim_count(updates.len(), beta);
    coordinatewise(updates, scales, n, move |b, m, len, o| {
        let kept = m - 2 * k;
        let mut acc = vec![0.0f64; len];
        for r in k..m - k {
            acc.iter_mut()
                .zip(&b[r * len..(r + 1) * len])
                .for_each(|(a, &x)| *a += x as f64);
        }
        o.iter_mut()
            .zip(&acc)
            .for_each(|(o, a)| *o = (a / kept as f64) as f32);
    })
}

/// Squared distances ‖gᵢ − gⱼ‖² between every pair (row-major m × m, f64).
pub fn pairwise_sq_distances(updates: &[Update], scales: &[f32], n: usize) -> Vec<f64> {
    let m = updates.len();
    let nblocks = n.div_ceil(BLOCK);
    let d = (0..nblocks)
        .into_par_iter()
        .fold(
            || {
                (
                    vec![0.0f32; m * BLOCK],
                    vec![0.0f64; m * m],
                    SparseWalk::new(m),
                )
            },
            |(mut buf, mut d, mut walk), bi| {
                let start = bi * BLOCK;
                let len = BLOCK.min(n - start);
                fill_block(updates, scales, start, len, &mut buf[..m * len], &mut walk);
                for i in 0..m {
                    for j in i + 1..m {
                        let (a, b) = (&buf[i * len..(i + 1) * len], &buf[j * len..(j + 1) * len]);
                        let mut acc = [0.0f32; 8];
                        let mut ia = a.chunks_exact(8);
                        let mut ib = b.chunks_exact(8);
                        for (x, y) in (&mut ia).zip(&mut ib) {
                            for k in 0..8 {
                                let t = x[k] - y[k];
                                acc[k] += t * t;
                            }
                        }
                        let tail: f64 = ia
                            .remainder()
                            .iter()
                            .zip(ib.remainder())
                            .map(|(x, y)| ((x - y) as f64).powi(2))
                            .sum();
                        d[i * m + j] += acc.iter().map(|&v| v as f64).sum::<f64>() + tail;
                    }
                }
                (buf, d, walk)
            },
        )
        .map(|(_, d, _)| d)
        .reduce(
            || vec![0.0f64; m * m],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut full = d;
    for i in 0..m {
        for j in 0..i {
            full[i * m + j] = full[j * m + i];
        }
    }
    full
}

/// Krum scores: for each update, the sum of its squared distances to its m − f − 2
/// nearest other updates. Needs m > 2f + 2 (checked by the caller).
pub fn krum_scores(dist: &[f64], m: usize, f: usize) -> Vec<f64> {
    let nearest = m - f - 2;
    (0..m)
        .map(|i| {
            let mut row: Vec<f64> = (0..m)
                .filter(|&j| j != i)
                .map(|j| dist[i * m + j])
                .collect();
            row.sort_unstable_by(|a, b| a.total_cmp(b));
            row[..nearest].iter().sum()
        })
        .collect()
}

/// Indices of the `count` smallest scores, ties to the lower index, in that order.
pub fn select_lowest(scores: &[f64], count: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    idx.truncate(count);
    idx
}
