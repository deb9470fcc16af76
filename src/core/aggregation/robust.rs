//! Byzantine-robust aggregation: coordinate-wise median and trimmed mean, Krum and
//! Multi-Krum (Blanchard et al., NeurIPS 2017). Every update is read chunk by chunk into
//! a small transposed buffer; sparse updates are expanded one chunk at a time only.

use rayon::prelude::*;

use super::input::Update;

/// Coordinates per parallel block of the coordinate-wise kernels.
const BLOCK: usize = 2048;

/// Fills `buf` (n rows of `len`) with block `[start, start + len)` of every update, scaled.
fn fill_block(updates: &[Update], scales: &[f32], start: usize, len: usize, buf: &mut [f32]) {
    for (r, (u, &s)) in updates.iter().zip(scales).enumerate() {
        u.fill_chunk(start, &mut buf[r * len..(r + 1) * len], s);
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

/// Applies `f` to the sorted column of every coordinate, writing its result.
fn coordinatewise(updates: &[Update], scales: &[f32], n: usize, f: impl Fn(&[f32]) -> f32 + Sync) -> Vec<f32> {
    let m = updates.len();
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(BLOCK).enumerate().for_each_init(
        || (vec![0.0f32; m * BLOCK], vec![0.0f32; m]),
        |(buf, col), (bi, o)| {
            let len = o.len();
            fill_block(updates, scales, bi * BLOCK, len, &mut buf[..m * len]);
            for (j, oj) in o.iter_mut().enumerate() {
                for r in 0..m {
                    col[r] = buf[r * len + j];
                }
                sort_small(col);
                *oj = f(col);
            }
        },
    );
    out
}

/// Coordinate-wise median; for an even count, the mean of the two middle values.
pub fn median(updates: &[Update], scales: &[f32], n: usize) -> Vec<f32> {
    coordinatewise(updates, scales, n, |c| {
        let m = c.len();
        if m % 2 == 1 {
            c[m / 2]
        } else {
            ((c[m / 2 - 1] as f64 + c[m / 2] as f64) / 2.0) as f32
        }
    })
}

/// How many values `trimmed_mean` drops at each end: ⌊β·m⌋.
pub fn trim_count(m: usize, beta: f64) -> usize {
    ((beta * m as f64).floor() as usize).min((m - 1) / 2)
}

/// Coordinate-wise mean of the values left after dropping the ⌊β·m⌋ lowest and highest.
pub fn trimmed_mean(updates: &[Update], scales: &[f32], n: usize, beta: f64) -> Vec<f32> {
    let k = trim_count(updates.len(), beta);
    coordinatewise(updates, scales, n, move |c| {
        let kept = &c[k..c.len() - k];
        (kept.iter().map(|&x| x as f64).sum::<f64>() / kept.len() as f64) as f32
    })
}

/// Squared distances ‖gᵢ − gⱼ‖² between every pair (row-major m × m, f64).
pub fn pairwise_sq_distances(updates: &[Update], scales: &[f32], n: usize) -> Vec<f64> {
    let m = updates.len();
    let nblocks = n.div_ceil(BLOCK);
    let d = (0..nblocks)
        .into_par_iter()
        .fold(
            || (vec![0.0f32; m * BLOCK], vec![0.0f64; m * m]),
            |(mut buf, mut d), bi| {
                let start = bi * BLOCK;
                let len = BLOCK.min(n - start);
                fill_block(updates, scales, start, len, &mut buf[..m * len]);
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
                        let tail: f64 =
                            ia.remainder().iter().zip(ib.remainder()).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
                        d[i * m + j] += acc.iter().map(|&v| v as f64).sum::<f64>() + tail;
                    }
                }
                (buf, d)
            },
        )
        .map(|(_, d)| d)
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
            let mut row: Vec<f64> = (0..m).filter(|&j| j != i).map(|j| dist[i * m + j]).collect();
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
