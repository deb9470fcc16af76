//! The minimum pipeline period (slowest stage compute or link serialization) with node
//! counts.
//!
//! The optimal period is one of finitely many values: a stage's compute time on a class
//! (a run of layers) or one transfer's serialization time. We bisect over those values:
//! a probe at a cap asks whether some plan keeps every stage and transfer within it; a
//! plan found lowers the upper end to its own period, a proof that none exists raises
//! the lower end. The first probe is at the count-free optimum (a lower bound), which is
//! usually already feasible.
//!
//! A probe is a depth-first search over `(layers done, last class, nodes used per
//! class)`, longest stages first, dropping a partial plan when another at the same
//! `(layers done, class)` used no more nodes of any class (it finishes whenever this one
//! would) and when the [`CountBounds`] show that the nodes left cannot finish it.

use super::bounds::CountBounds;
use super::front::Front;
use super::solve::{
    furthest_relaxed, infeasible, period_of, relax, relaxed_if_fits, restate_limit, search_limit,
    ClassStages, Ctx, Mode,
};
use crate::core::error::{Error, Result};

/// Outcome of one probe.
pub(super) enum Probe {
    /// A plan whose every stage and transfer takes ≤ the cap.
    Found(ClassStages),
    /// None exists; the furthest layer boundary any partial plan reached.
    Impossible(usize),
}

struct Node {
    pos: u32,
    class: u32,
    parent: u32,
    /// Dominated after it was stacked: skip it.
    dead: bool,
}

/// Whether a plan keeps every stage compute and link serialization ≤ `cap` ms. Past
/// `limit` stored states, `ERR_SEARCH_LIMIT` without a bound (the caller states it).
pub(super) fn probe(ctx: &Ctx, cap: f64, limit: usize, expanded: &mut usize) -> Result<Probe> {
    let k = ctx.k();
    let l = ctx.p.profile.layers.len();
    let layers = &ctx.p.profile.layers;
    let counts = ctx.counts();
    let bounds = CountBounds::new(ctx, cap);
    let mut nodes = vec![Node {
        pos: 0,
        class: k as u32,
        parent: u32::MAX,
        dead: false,
    }];
    let mut used: Vec<u16> = vec![0; k];
    if !bounds.may_finish(0, k, &bounds.free(&counts, &used)) {
        return Ok(Probe::Impossible(0));
    }
    let mut fronts: Vec<Front> = (0..(l + 1) * k).map(|_| Front::default()).collect();
    let mut dropped = Vec::new();
    let mut stack = vec![0u32];
    let mut furthest = 0usize;
    let mut u = vec![0u16; k];
    // (room left, layers done, class) of each child; their counts side by side.
    let mut children: Vec<(f64, u32, u32)> = Vec::new();
    let mut child_used: Vec<u16> = Vec::new();
    while let Some(idx) = stack.pop() {
        if nodes[idx as usize].dead {
            continue;
        }
        let (i, a) = (
            nodes[idx as usize].pos as usize,
            nodes[idx as usize].class as usize,
        );
        let here = idx as usize * k..idx as usize * k + k;
        *expanded += 1;
        furthest = furthest.max(i);
        let free_here = bounds.free(&counts, &used[here.clone()]);
        children.clear();
        child_used.clear();
        for b in 0..k {
            if used[idx as usize * k + b] >= counts[b] {
                continue;
            }
            if !matches!(ctx.hop_in(a, b, i), Some(h) if h.serialize_ms <= cap) {
                continue;
            }
            let mut free = free_here.clone();
            bounds.take(&mut free, b);
            u.copy_from_slice(&used[here.clone()]);
            u[b] += 1;
            let mut flops = 0.0;
            for j in i + 1..=ctx.reach[b][i] as usize {
                flops += layers[j - 1].flops;
                if ctx.comp_ms(b, flops) > cap {
                    break;
                }
                // (This also covers memory and flops: see `CountBounds`.)
                if !bounds.may_finish(j, b, &free) {
                    continue;
                }
                if j == l {
                    // `may_finish` at the end means the output hop is within the cap.
                    let mut st = rebuild(&nodes, idx);
                    st.push((b, i, l));
                    return Ok(Probe::Found(st));
                }
                children.push((bounds.speed_margin(j, b, &free), j as u32, b as u32));
                child_used.extend_from_slice(&u);
            }
        }
        // The child with the most room left on top of the stack (explored first).
        let mut order: Vec<usize> = (0..children.len()).collect();
        order.sort_by(|&x, &y| {
            let (x, y) = (children[x], children[y]);
            x.0.total_cmp(&y.0).then(x.1.cmp(&y.1))
        });
        for c in order {
            let (_, j, b) = children[c];
            let cu = &child_used[c * k..c * k + k];
            let front = &mut fronts[(j * k as u32 + b) as usize];
            if front.dominates((0.0, 0.0), cu) {
                continue;
            }
            let n = nodes.len() as u32;
            dropped.clear();
            front.insert(n, (0.0, 0.0), cu, &mut dropped);
            for &d in &dropped {
                nodes[d as usize].dead = true;
            }
            nodes.push(Node {
                pos: j,
                class: b,
                parent: idx,
                dead: false,
            });
            used.extend_from_slice(cu);
            stack.push(n);
        }
        if nodes.len() > limit {
            return Err(search_limit(limit, k, "")); // the caller states the bound
        }
    }
    Ok(Probe::Impossible(furthest))
}

fn rebuild(nodes: &[Node], idx: u32) -> ClassStages {
    let mut st = Vec::new();
    let mut x = idx as usize;
    while nodes[x].parent != u32::MAX {
        let par = nodes[x].parent as usize;
        st.push((
            nodes[x].class as usize,
            nodes[par].pos as usize,
            nodes[x].pos as usize,
        ));
        x = par;
    }
    st.reverse();
    st
}

/// Every stage compute or transfer serialization time in `(lo, hi)`: the values the
/// optimal period may take, computed exactly as the probes compute them.
fn candidates(ctx: &Ctx, lo: f64, hi: f64) -> Vec<f64> {
    let k = ctx.k();
    let l = ctx.p.profile.layers.len();
    let layers = &ctx.p.profile.layers;
    let inside = |v: f64| v > lo && v < hi;
    let mut out = Vec::new();
    for b in 0..k {
        for i in 0..l {
            let mut flops = 0.0;
            for j in i + 1..=ctx.reach[b][i] as usize {
                flops += layers[j - 1].flops;
                let c = ctx.comp_ms(b, flops);
                if c >= hi {
                    break;
                }
                if c > lo {
                    out.push(c);
                }
            }
        }
        if let Some(h) = ctx.hop_out(b) {
            if inside(h.serialize_ms) {
                out.push(h.serialize_ms);
            }
        }
    }
    for i in 0..l {
        let rows = if i == 0 { k..k + 1 } else { 0..k };
        for a in rows {
            for b in 0..k {
                if let Some(h) = ctx.hop_in(a, b, i) {
                    if inside(h.serialize_ms) {
                        out.push(h.serialize_ms);
                    }
                }
            }
        }
    }
    out
}

/// No plan's period is below the total flops over the total speed of every node: each
/// layer runs on some node within the period.
fn flops_bound(ctx: &Ctx) -> f64 {
    let speed: f64 = ctx.p.nodes.iter().map(|n| n.compute_tflops * 1e9).sum();
    ctx.p.profile.total_flops() / speed
}

/// A plan with the minimum pipeline period, and the search states expanded.
///
/// Probes near the optimum cost the most (a proof, or a plan found among few), so the
/// schedule gets close cheaply: after the count-free optimum, caps grow from the larger of
/// it and the flops bound by 1 %, 2 %, 4 %, … of it until one is feasible (infeasible caps
/// far below the optimum are refuted by the count bounds at once, and each raises the
/// lower end); then bisection over the candidate values between the ends.
pub(super) fn min_period(ctx: &Ctx, limit: usize) -> Result<(ClassStages, usize)> {
    let k = ctx.k();
    let r = relax(ctx, Mode::Period, f64::INFINITY);
    let mut lo = r.at(0, k).0;
    if lo == f64::INFINITY {
        return Err(infeasible(ctx, furthest_relaxed(ctx), false));
    }
    if let Some(plan) = relaxed_if_fits(ctx, &r) {
        return Ok((plan, 0));
    }
    let mut expanded = 0;
    // `lo` is the count-free optimum (the period is at least it) until a probe proves a
    // cap infeasible (then the period is more than it).
    let reword = |lo: f64, strict: bool, hi: f64| {
        move |e: Error| {
            let low = if strict { "more than" } else { "at least" };
            let what = if hi.is_finite() {
                format!("the optimal pipeline period is {low} {lo} ms and at most {hi} ms")
            } else {
                format!("the optimal pipeline period is {low} {lo} ms")
            };
            restate_limit(e, limit, k, &what)
        }
    };
    // No plan beats the count-free optimum `lo`; one that matches it ends the search.
    let first = probe(ctx, lo, limit, &mut expanded).map_err(reword(lo, false, f64::INFINITY))?;
    if let Probe::Found(st) = first {
        return Ok((st, expanded));
    }
    let mut strict = true;
    // The period is more than `lo`, and at least the flops bound.
    let base = lo.max(flops_bound(ctx));
    let mut found = None;
    let mut step = 0.01;
    while step < 64.0 {
        let cap = base * (1.0 + step);
        match probe(ctx, cap, limit, &mut expanded).map_err(reword(lo, strict, f64::INFINITY))? {
            Probe::Found(st) => {
                found = Some(st);
                break;
            }
            Probe::Impossible(_) => lo = cap,
        }
        step *= 2.0;
    }
    let mut best = match found {
        Some(st) => st,
        None => match probe(ctx, f64::INFINITY, limit, &mut expanded).map_err(reword(
            lo,
            strict,
            f64::INFINITY,
        ))? {
            Probe::Found(st) => st,
            Probe::Impossible(furthest) => return Err(infeasible(ctx, furthest, true)),
        },
    };
    let mut hi = period_of(ctx, &best);
    // Below the flops bound no candidate can be the period; `lo` is strict from here on.
    if lo < base {
        (lo, strict) = (base * (1.0 - 1e-9), false);
    }
    loop {
        let mut c = candidates(ctx, lo, hi);
        if c.is_empty() {
            return Ok((best, expanded));
        }
        let m = c.len() / 2;
        let (_, &mut mid, _) = c.select_nth_unstable_by(m, f64::total_cmp);
        match probe(ctx, mid, limit, &mut expanded).map_err(reword(lo, strict, hi))? {
            Probe::Found(st) => {
                hi = period_of(ctx, &st);
                best = st;
            }
            Probe::Impossible(_) => (lo, strict) = (mid, true),
        }
    }
}
