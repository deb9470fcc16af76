//! Lower bounds on the nodes a plan must still use.
//!
//! Give each node class b a weight λ_b ≥ 0. `need_λ(i, a)` is the least total weight of
//! the stages of any plan finishing from state `(i layers done, last stage on class a)`,
//! ignoring the counts (a backward DP like the relaxation's). A partial plan whose free
//! nodes weigh less than `need_λ` cannot finish. We use several weightings at once:
//! - 0/1 on a group of classes: the fewest stages on that group (a Hall-type condition
//!   the count-free relaxation misses);
//! - the node speed: each stage's node must be fast enough for its run within the cap,
//!   so this counts the capacity lost where a stage cannot take one more layer, which is
//!   what decides tight pipelines (a bound from total flops alone ignores it);
//! - the node memory, likewise for memory;
//! - the node speed with one class's (or, with many classes, one kind's) speed scaled by
//!   0.9, 0.95, 1.05 or 1.1. Any λ ≥ 0 gives a valid bound, and the best one is a price per
//!   class (the dual of the counts): plain speed prices every class's capacity alike, so it
//!   misses that a scarce efficient class must be complemented by wasteful ones. These
//!   near-speed prices decide tight pipelines: on 500 layers × 64 nodes of 4 kinds, the
//!   proof that no plan beats the optimal period by 0.2 % fell from 40,000 partial plans
//!   to about 100.
//!
//! The last two imply the simpler tests "the layers left fit in the free nodes' memory"
//! and "their flops fit in the free nodes' speed × the cap" (each stage fits its node), so
//! the searches need no separate check for those.
//!
//! Pruning with them is exact (only partial plans that cannot finish are dropped) and is
//! what lets the count-aware searches prove quickly that a tight plan has no better one.

use super::solve::Ctx;

/// Unreachable.
const NEVER: f64 = f64::INFINITY;

/// `need_λ(i, a)` for every state and every weighting λ, at a cap on stage and link times.
pub(super) struct CountBounds {
    /// Number of weightings.
    s: usize,
    /// Row width of the state table (classes + the input row).
    w: usize,
    /// `inc[b * s + t]`: weight of class b in weighting t.
    inc: Vec<f64>,
    /// `need[(i * w + a) * s + t]`.
    need: Vec<f64>,
    /// The speed-like weightings (the prices, then plain speed).
    speeds: std::ops::Range<usize>,
}

/// The groups: every non-empty set of classes when there are at most 6, else each kind's
/// classes, the complement of each, each side (space, ground) and all classes.
fn groups(ctx: &Ctx) -> Vec<Vec<bool>> {
    let k = ctx.k();
    let mut out: Vec<Vec<bool>> = Vec::new();
    if k <= 6 {
        for mask in 1u32..(1 << k) {
            out.push((0..k).map(|b| mask >> b & 1 == 1).collect());
        }
        return out;
    }
    let kind = |b: usize| ctx.classes[b].kind.index();
    for x in 0..4 {
        out.push((0..k).map(|b| kind(b) == x).collect());
        out.push((0..k).map(|b| kind(b) != x).collect());
    }
    out.push((0..k).map(|b| ctx.classes[b].kind.in_space()).collect());
    out.push((0..k).map(|b| !ctx.classes[b].kind.in_space()).collect());
    out.push(vec![true; k]);
    out.retain(|g| g.iter().any(|&x| x));
    out.sort();
    out.dedup();
    out
}

/// `need[(i * w + a) * s + t]`: the least weight `t` of any finish from state `(i, a)`
/// within the cap (a backward DP). Its inner step is the minimum of `need[j][b]` over the
/// runs `j ∈ (i, e_b(i)]` a stage of class b may take from i. With long runs (no cap, or a
/// loose one) those minima come from a monotone queue per (class, weighting), O(1) per
/// step instead of O(run): valid because `e_b(i) ≤ e_b(i + 1)` (a run from i holds every
/// layer a run from i + 1 to the same end holds, and the sums that check it are
/// monotone; checked, with a scan as the fallback). With short runs a scan is faster.
/// `sliding` forces one way (tests); `None` picks by the mean run.
pub(super) fn need_table(
    ctx: &Ctx,
    cap: f64,
    s: usize,
    inc: &[f64],
    sliding: Option<bool>,
) -> Vec<f64> {
    use std::collections::VecDeque;
    let k = ctx.k();
    let w = k + 1;
    let l = ctx.p.profile.layers.len();
    let layers = &ctx.p.profile.layers;
    // ends[b * l + i] = e_b(i): the furthest end of a run from i on class b within the
    // cap (the same summation as the searches).
    let mut ends = vec![0u32; k * l];
    let mut total = 0usize;
    for b in 0..k {
        for i in 0..l {
            let mut end = i;
            let mut flops = 0.0;
            for j in i + 1..=ctx.reach[b][i] as usize {
                flops += layers[j - 1].flops;
                if ctx.comp_ms(b, flops) > cap {
                    break;
                }
                end = j;
            }
            ends[b * l + i] = end as u32;
            total += end - i;
        }
    }
    let monotone = (0..k).all(|b| (1..l).all(|i| ends[b * l + i - 1] <= ends[b * l + i]));
    let sliding = monotone && sliding.unwrap_or(total > 32 * k * l);
    let mut need = vec![NEVER; (l + 1) * w * s];
    for a in 0..k {
        if matches!(ctx.hop_out(a), Some(o) if o.serialize_ms <= cap) {
            need[(l * w + a) * s..(l * w + a + 1) * s].fill(0.0);
        }
    }
    let mut hb = vec![NEVER; k * s];
    let mut row = vec![NEVER; s];
    let mut queues: Vec<VecDeque<u32>> = vec![VecDeque::new(); if sliding { k * s } else { 0 }];
    for i in (0..l).rev() {
        hb.fill(NEVER);
        for b in 0..k {
            let end = ends[b * l + i] as usize;
            let dst = &mut hb[b * s..(b + 1) * s];
            if !sliding {
                for j in i + 1..=end {
                    let src = &need[(j * w + b) * s..(j * w + b + 1) * s];
                    dst.iter_mut().zip(src).for_each(|(d, &x)| *d = (*d).min(x));
                }
                continue;
            }
            // Queue of run ends, largest first, values increasing: the front is the minimum.
            let j = (i + 1) as u32;
            for (t, d) in dst.iter_mut().enumerate() {
                let q = &mut queues[b * s + t];
                let value = |j: u32| need[(j as usize * w + b) * s + t];
                let x = value(j);
                while q.back().is_some_and(|&y| value(y) >= x) {
                    q.pop_back();
                }
                q.push_back(j);
                while q.front().is_some_and(|&y| y as usize > end) {
                    q.pop_front();
                }
                if let Some(&f) = q.front() {
                    *d = value(f);
                }
            }
        }
        let rows = if i == 0 { k..k + 1 } else { 0..k };
        for a in rows {
            row.fill(NEVER);
            for b in 0..k {
                if a < k && !ctx.may_follow(a, b) {
                    continue;
                }
                if !matches!(ctx.hop_in(a, b, i), Some(h) if h.serialize_ms <= cap) {
                    continue;
                }
                let (src, add) = (&hb[b * s..(b + 1) * s], &inc[b * s..(b + 1) * s]);
                for t in 0..s {
                    row[t] = row[t].min(src[t] + add[t]);
                }
            }
            need[(i * w + a) * s..(i * w + a + 1) * s].copy_from_slice(&row);
        }
    }
    need
}

fn speed(ctx: &Ctx, b: usize) -> f64 {
    ctx.p.nodes[ctx.classes[b].nodes[0]].compute_tflops
}

/// Node speed with the classes of one group scaled (see the module documentation): per
/// class up to 8 classes, else per kind.
fn prices(ctx: &Ctx) -> Vec<Vec<f64>> {
    const SCALES: [f64; 4] = [0.9, 0.95, 1.05, 1.1];
    let k = ctx.k();
    let group_of = |b: usize| {
        if k <= 8 {
            b
        } else {
            ctx.classes[b].kind.index()
        }
    };
    let groups = if k <= 8 { k } else { 4 };
    let mut out = Vec::new();
    for g in 0..groups {
        if !(0..k).any(|b| group_of(b) == g) {
            continue;
        }
        for f in SCALES {
            out.push(
                (0..k)
                    .map(|b| speed(ctx, b) * if group_of(b) == g { f } else { 1.0 })
                    .collect(),
            );
        }
    }
    out
}

impl CountBounds {
    /// The bounds for plans whose every stage compute and link serialization is ≤ `cap` ms.
    pub(super) fn new(ctx: &Ctx, cap: f64) -> CountBounds {
        let k = ctx.k();
        let w = k + 1;
        let groups = groups(ctx);
        let prices = prices(ctx);
        let s = groups.len() + prices.len() + 2;
        let mut inc = vec![0.0; k * s];
        for b in 0..k {
            for (t, g) in groups.iter().enumerate() {
                inc[b * s + t] = g[b] as u8 as f64;
            }
            for (t, p) in prices.iter().enumerate() {
                inc[b * s + groups.len() + t] = p[b];
            }
            inc[b * s + s - 2] = speed(ctx, b);
            inc[b * s + s - 1] = ctx.classes[b].memory_mb;
        }
        let need = need_table(ctx, cap, s, &inc, None);
        let speeds = groups.len()..s - 1;
        CountBounds {
            s,
            w,
            inc,
            need,
            speeds,
        }
    }

    /// Weight of the free nodes per weighting, for `used` nodes per class out of `counts`.
    pub(super) fn free(&self, counts: &[u16], used: &[u16]) -> Vec<f64> {
        let mut free = vec![0.0; self.s];
        for (b, (&c, &u)) in counts.iter().zip(used).enumerate() {
            let left = (c - u) as f64;
            let weights = &self.inc[b * self.s..(b + 1) * self.s];
            free.iter_mut()
                .zip(weights)
                .for_each(|(f, &x)| *f += left * x);
        }
        free
    }

    /// `free` after one more node of class `b` is used.
    pub(super) fn take(&self, free: &mut [f64], b: usize) {
        for (f, &x) in free.iter_mut().zip(&self.inc[b * self.s..(b + 1) * self.s]) {
            *f -= x;
        }
    }

    /// Node speed (TFLOPS, at the tightest of the speed-like weightings) left over at state
    /// `(i, a)` beyond what any finish needs: how much room a partial plan keeps, to try
    /// the roomiest first.
    pub(super) fn speed_margin(&self, i: usize, a: usize, free: &[f64]) -> f64 {
        let row = (i * self.w + a) * self.s;
        self.speeds
            .clone()
            .map(|t| free[t] - self.need[row + t])
            .fold(f64::INFINITY, f64::min)
    }

    /// Whether a plan at state `(i, a)` with `free` node weights may still finish. The
    /// slack absorbs the rounding of the weighted sums (0/1 sums are exact).
    pub(super) fn may_finish(&self, i: usize, a: usize, free: &[f64]) -> bool {
        let need = &self.need[(i * self.w + a) * self.s..(i * self.w + a + 1) * self.s];
        need.iter()
            .zip(free)
            .all(|(&n, &f)| n <= f * (1.0 + 1e-9) + 1e-9)
    }
}
