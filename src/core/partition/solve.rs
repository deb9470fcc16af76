//! The optimal placement for an objective.
//!
//! # The search
//! A plan is a sequence of stages (node, contiguous run of layers) covering the layers in
//! order, with each node used at most once. Nodes that are interchangeable (same kind,
//! memory and speed, and not named by an endpoint or a per-pair link override) form one
//! *class* with a count. A partial plan is summarised by the state
//! `(layers done i, class of the last stage, nodes used per class u)`: every completion
//! of a partial plan depends on nothing else, so keeping the best partial plan per state
//! is exact (dynamic programming over layer prefixes). With K classes of counts m_k and
//! R the longest run a node can hold, there are at most `L · K · Π(m_k + 1)` states and
//! each has at most `K · R` successors: polynomial for a fixed number of classes. (With
//! every node different the problem contains PARTITION through the memory limits, so no
//! exact method is polynomial in the number of distinct nodes unless P = NP.)
//!
//! Two exact accelerations keep big instances fast:
//! 1. A relaxation that ignores the counts is solved first by a backward DP over
//!    `(i, last class)` in `O(L · K · R + L · K²)`. Its optimum is a lower bound; when its
//!    plan uses no class more often than it has nodes, it is the optimum and we stop.
//! 2. Otherwise an A* search over the states above uses the relaxation's cost-to-go as
//!    its (consistent) heuristic, so the first finished plan it pops is optimal, and
//!    drops a partial plan whenever another at the same `(i, class)` has used no more
//!    nodes of any class and costs no more (Pareto dominance).
//!
//! # Objectives and tie-breaks
//! - `Latency`: minimum end-to-end latency; ties → fewer MB across the space–ground
//!   boundary.
//! - `Bytes`: minimum MB across the space–ground boundary; ties → lower latency.
//! - `Throughput`: minimum pipeline period (slowest stage compute or link
//!   serialization); ties → lower latency, then fewer boundary MB. Solved in two
//!   passes: the bottleneck optimum P*, then the latency optimum among plans whose every
//!   stage and transfer takes ≤ P*.
//!
//! Remaining ties are broken deterministically (the same input gives the same plan).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::bounds::CountBounds;
use super::cost::{evaluate, hop, link_out, Hop, PlanCost};
use super::front::Front;
use super::model::{fits, Link, NodeKind, Problem};
use super::period::{probe, Probe};
use crate::core::error::{Code, Error, Result};

/// What the optimizer minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Objective {
    /// End-to-end latency of one inference.
    Latency,
    /// Pipeline period (maximum throughput).
    Throughput,
    /// MB crossing the space–ground boundary.
    Bytes,
}

/// An optimal plan: the node of each layer and its cost breakdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub objective: Objective,
    /// Node index of each layer.
    pub placement: Vec<usize>,
    pub cost: PlanCost,
    /// Search states expanded (0 when the relaxation was already feasible).
    pub states_expanded: usize,
    /// False when the tie-break budget ran out while choosing the lowest latency among the
    /// plans with the optimal period (throughput objective): the period is still optimal.
    pub tie_break_exact: bool,
}

/// Upper bound on stored search states, so a pathological instance fails cleanly instead
/// of exhausting memory.
pub const MAX_STATES: usize = 300_000;

/// Default budget of the throughput objective's latency tie-break. The period is proven
/// first; proving the lowest latency among the period-optimal plans can take far longer
/// (on 500 layers × 64 nodes of 4 kinds, ~110,000 states, ~250 ms, for a plan 3.5 %
/// faster than the first period-optimal one found), so by default it gets a small budget
/// and the plan says whether it finished (`tie_break_exact`).
pub const TIE_BREAK_STATES: usize = 25_000;

pub(super) type Key = (f64, f64);
const INF: Key = (f64::INFINITY, f64::INFINITY);

fn lt(a: Key, b: Key) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}
fn is_inf(a: Key) -> bool {
    a.0 == f64::INFINITY
}

/// How costs combine in one pass of the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Additive (latency, boundary MB).
    Latency,
    /// Additive (boundary MB, latency).
    Bytes,
    /// Bottleneck: max of stage computes and serializations.
    Period,
}

impl Mode {
    fn combine(self, a: Key, b: Key) -> Key {
        match self {
            Mode::Period => (a.0.max(b.0), 0.0),
            _ => (a.0 + b.0, a.1 + b.1),
        }
    }
    fn hop(self, h: &Hop) -> Key {
        match self {
            Mode::Latency => (h.time_ms, h.boundary_mb),
            Mode::Bytes => (h.boundary_mb, h.time_ms),
            Mode::Period => (h.serialize_ms, 0.0),
        }
    }
    fn comp(self, c: f64) -> Key {
        match self {
            Mode::Latency | Mode::Period => (c, 0.0),
            Mode::Bytes => (0.0, c),
        }
    }
}

/// Interchangeable nodes.
pub(super) struct Class {
    pub(super) kind: NodeKind,
    pub(super) memory_mb: f64,
    pub(super) nodes: Vec<usize>,
}

/// Precomputed tables shared by both searches.
pub(super) struct Ctx<'a, 'p> {
    pub(super) p: &'a Problem<'p>,
    pub(super) classes: Vec<Class>,
    /// `reach[b][i]`: largest j such that layers i..j fit on a node of class b.
    pub(super) reach: Vec<Vec<u32>>,
    /// Link from class row (K = the input node) to class col; `None` inside = same node.
    link: Vec<Vec<Option<Link>>>,
}

impl<'a, 'p> Ctx<'a, 'p> {
    pub(super) fn new(p: &'a Problem<'p>) -> Ctx<'a, 'p> {
        let n = p.nodes.len();
        let mut special = vec![false; n];
        special[p.endpoints.input] = true;
        if let super::model::Sink::Node(t) = p.endpoints.output {
            special[t] = true;
        }
        for &(a, b) in p.links.pairs.keys() {
            special[a] = true;
            special[b] = true;
        }
        let mut classes: Vec<Class> = Vec::new();
        let mut by_key: HashMap<(NodeKind, u64, u64), usize> = HashMap::new();
        let mut class_of = vec![0usize; n];
        for (i, node) in p.nodes.iter().enumerate() {
            let c = if special[i] {
                None
            } else {
                by_key
                    .get(&(
                        node.kind,
                        node.memory_mb.to_bits(),
                        node.compute_tflops.to_bits(),
                    ))
                    .copied()
            };
            let c = match c {
                Some(c) => {
                    classes[c].nodes.push(i);
                    c
                }
                None => {
                    classes.push(Class {
                        kind: node.kind,
                        memory_mb: node.memory_mb,
                        nodes: vec![i],
                    });
                    let c = classes.len() - 1;
                    if !special[i] {
                        by_key.insert(
                            (
                                node.kind,
                                node.memory_mb.to_bits(),
                                node.compute_tflops.to_bits(),
                            ),
                            c,
                        );
                    }
                    c
                }
            };
            class_of[i] = c;
        }
        let layers = &p.profile.layers;
        let l = layers.len();
        let reach = classes
            .iter()
            .map(|c| {
                (0..l)
                    .map(|i| {
                        // Same left-to-right summation as `evaluate`.
                        let mut m = 0.0;
                        let mut j = i;
                        while j < l {
                            m += layers[j].memory_mb();
                            if !fits(m, c.memory_mb) {
                                break;
                            }
                            j += 1;
                        }
                        j as u32
                    })
                    .collect()
            })
            .collect();
        let k = classes.len();
        let input_class = class_of[p.endpoints.input];
        let mut link = vec![vec![None; k]; k + 1];
        for a in 0..=k {
            for b in 0..k {
                let rb = classes[b].nodes[0];
                link[a][b] = if a == k {
                    if b == input_class {
                        None
                    } else {
                        Some(p.links.between(p.nodes, p.endpoints.input, rb))
                    }
                } else if a == b {
                    let ki = classes[a].kind.index();
                    Some(p.links.kinds[ki][ki])
                } else {
                    Some(p.links.between(p.nodes, classes[a].nodes[0], rb))
                };
            }
        }
        Ctx {
            p,
            classes,
            reach,
            link,
        }
    }

    pub(super) fn k(&self) -> usize {
        self.classes.len()
    }

    /// Space side of a class, or of the input node for row K.
    pub(super) fn space(&self, a: usize) -> bool {
        if a == self.k() {
            self.p.nodes[self.p.endpoints.input].kind.in_space()
        } else {
            self.classes[a].kind.in_space()
        }
    }

    /// Hop from `a` (class, or K = input) to class `b` at boundary `i`.
    pub(super) fn hop_in(&self, a: usize, b: usize, i: usize) -> Option<Hop> {
        hop(
            self.link[a][b],
            self.p.profile.boundary_mb(i),
            self.space(a),
            self.space(b),
        )
    }

    pub(super) fn hop_out(&self, a: usize) -> Option<Hop> {
        let rep = self.classes[a].nodes[0];
        let (link, sink_space) = link_out(self.p, rep);
        hop(
            link,
            self.p.profile.boundary_mb(self.p.profile.layers.len()),
            self.space(a),
            sink_space,
        )
    }

    pub(super) fn comp_ms(&self, b: usize, flops: f64) -> f64 {
        self.p.nodes[self.classes[b].nodes[0]].compute_ms(flops)
    }

    /// Nodes per class (saturating at u16::MAX).
    pub(super) fn counts(&self) -> Vec<u16> {
        self.classes
            .iter()
            .map(|c| c.nodes.len().min(u16::MAX as usize) as u16)
            .collect()
    }

    /// Whether class `b` may follow `a` ignoring counts (a different node must exist).
    pub(super) fn may_follow(&self, a: usize, b: usize) -> bool {
        a != b || self.classes[b].nodes.len() >= 2
    }
}

/// Relaxed cost-to-go: `h[i][a]` = best completion from `i` layers done with the last
/// stage on class `a` (a = K: nothing placed yet, only at i = 0), ignoring node counts.
pub(super) struct Relaxed {
    w: usize,
    h: Vec<Key>,
    next: Vec<(u32, u32)>,
}

impl Relaxed {
    pub(super) fn at(&self, i: usize, a: usize) -> Key {
        self.h[i * self.w + a]
    }
}

/// The count-free DP: the best completion of every state ignoring node counts.
pub(super) fn relax(ctx: &Ctx, mode: Mode, cap: f64) -> Relaxed {
    let k = ctx.k();
    let w = k + 1;
    let l = ctx.p.profile.layers.len();
    let layers = &ctx.p.profile.layers;
    let mut h = vec![INF; (l + 1) * w];
    let mut next = vec![(u32::MAX, u32::MAX); (l + 1) * w];
    for a in 0..k {
        if let Some(o) = ctx.hop_out(a) {
            if o.serialize_ms <= cap {
                h[l * w + a] = mode.hop(&o);
            }
        }
    }
    let mut hb = vec![INF; k];
    let mut hb_j = vec![0u32; k];
    for i in (0..l).rev() {
        for b in 0..k {
            hb[b] = INF;
            let mut flops = 0.0;
            for j in i + 1..=ctx.reach[b][i] as usize {
                flops += layers[j - 1].flops;
                let c = ctx.comp_ms(b, flops);
                if c > cap {
                    break;
                }
                let rest = h[j * w + b];
                if is_inf(rest) {
                    continue;
                }
                let v = mode.combine(mode.comp(c), rest);
                if lt(v, hb[b]) {
                    hb[b] = v;
                    hb_j[b] = j as u32;
                }
            }
        }
        let rows = if i == 0 { k..k + 1 } else { 0..k };
        for a in rows {
            let mut best = INF;
            let mut arg = (u32::MAX, u32::MAX);
            for b in 0..k {
                if is_inf(hb[b]) || (a < k && !ctx.may_follow(a, b)) {
                    continue;
                }
                let Some(hp) = ctx.hop_in(a, b, i) else {
                    continue;
                };
                if hp.serialize_ms > cap {
                    continue;
                }
                let v = mode.combine(mode.hop(&hp), hb[b]);
                if lt(v, best) {
                    best = v;
                    arg = (b as u32, hb_j[b]);
                }
            }
            h[i * w + a] = best;
            next[i * w + a] = arg;
        }
    }
    Relaxed { w, h, next }
}

/// Stages as (class, start, end).
pub(super) type ClassStages = Vec<(usize, usize, usize)>;

/// The relaxation's plan when it uses no class more often than it has nodes: then it is
/// the optimum (optimal over a larger set of plans).
pub(super) fn relaxed_if_fits(ctx: &Ctx, r: &Relaxed) -> Option<ClassStages> {
    let plan = relaxed_plan(ctx, r);
    let mut uses = vec![0usize; ctx.k()];
    for &(c, _, _) in &plan {
        uses[c] += 1;
    }
    let fits = uses
        .iter()
        .zip(&ctx.classes)
        .all(|(u, c)| *u <= c.nodes.len());
    fits.then_some(plan)
}

pub(super) fn relaxed_plan(ctx: &Ctx, r: &Relaxed) -> ClassStages {
    let l = ctx.p.profile.layers.len();
    let mut out = Vec::new();
    let (mut i, mut a) = (0usize, ctx.k());
    while i < l {
        let (b, j) = r.next[i * r.w + a];
        out.push((b as usize, i, j as usize));
        i = j as usize;
        a = b as usize;
    }
    out
}

#[derive(PartialEq)]
struct Item {
    f: Key,
    pos: u32,
    idx: u32,
}
impl Eq for Item {}
impl Ord for Item {
    // BinaryHeap is a max-heap: the "greatest" item is the lowest f, then the deepest, then the oldest.
    fn cmp(&self, o: &Self) -> Ordering {
        o.f.0
            .total_cmp(&self.f.0)
            .then(o.f.1.total_cmp(&self.f.1))
            .then(self.pos.cmp(&o.pos))
            .then(o.idx.cmp(&self.idx))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

struct Label {
    pos: u32,
    class: u32,
    parent: u32,
    g: Key,
    dead: bool,
}

/// Exact search with node counts (additive modes). `Ok(None)`: no plan; also returns how
/// far any partial plan got and the number of states expanded.
fn search(
    ctx: &Ctx,
    mode: Mode,
    cap: f64,
    r: &Relaxed,
    known: Key,
    limit: usize,
) -> Result<(Option<ClassStages>, usize, usize)> {
    debug_assert!(mode != Mode::Period, "the bottleneck pass is period.rs");
    let k = ctx.k();
    let l = ctx.p.profile.layers.len();
    let layers = &ctx.p.profile.layers;
    let counts = ctx.counts();
    // No finish can beat `known` (a plan's cost) when its bound is above it.
    let beyond = |x: f64| x > known.0 * (1.0 + 1e-9) + 1e-9;
    let bounds = CountBounds::new(ctx, cap);
    let mut labels: Vec<Label> = vec![Label {
        pos: 0,
        class: k as u32,
        parent: u32::MAX,
        g: (0.0, 0.0),
        dead: false,
    }];
    let mut used: Vec<u16> = vec![0; k];
    let mut fronts: Vec<Front> = (0..(l + 1) * k).map(|_| Front::default()).collect();
    let mut dropped = Vec::new();
    let mut heap = BinaryHeap::new();
    if bounds.may_finish(0, k, &bounds.free(&counts, &used)) {
        heap.push(Item {
            f: r.at(0, k),
            pos: 0,
            idx: 0,
        });
    }
    let mut furthest = 0usize;
    let mut expanded = 0usize;
    let mut u = vec![0u16; k];
    let mut lower = 0.0f64;
    while let Some(Item { idx, f: fpop, .. }) = heap.pop() {
        lower = lower.max(fpop.0);
        let lab = &labels[idx as usize];
        if lab.dead {
            continue;
        }
        let (i, a, g) = (lab.pos as usize, lab.class as usize, lab.g);
        if i == l {
            return Ok((Some(rebuild(&labels, idx)), furthest, expanded));
        }
        expanded += 1;
        furthest = furthest.max(i);
        let free_here = bounds.free(&counts, &used[idx as usize * k..idx as usize * k + k]);
        for b in 0..k {
            let ub = used[idx as usize * k + b];
            if ub >= counts[b] {
                continue;
            }
            let Some(hp) = ctx.hop_in(a, b, i) else {
                continue;
            };
            if hp.serialize_ms > cap {
                continue;
            }
            let mut free = free_here.clone();
            bounds.take(&mut free, b);
            let gh = mode.combine(g, mode.hop(&hp));
            let mut flops = 0.0;
            for j in i + 1..=ctx.reach[b][i] as usize {
                flops += layers[j - 1].flops;
                let c = ctx.comp_ms(b, flops);
                if c > cap {
                    break;
                }
                let rest = r.at(j, b);
                // (This also covers memory and flops: see `CountBounds`.)
                if is_inf(rest) || !bounds.may_finish(j, b, &free) {
                    continue;
                }
                let mut g2 = mode.combine(gh, mode.comp(c));
                if j == l {
                    // Finishing: `rest` is exactly the output hop, part of the plan's cost.
                    g2 = mode.combine(g2, rest);
                }
                u.copy_from_slice(&used[idx as usize * k..idx as usize * k + k]);
                u[b] += 1;
                // Pareto dominance at (j, b).
                let n = labels.len() as u32;
                let front = &mut fronts[j * k + b];
                if front.dominates(g2, &u) {
                    continue;
                }
                dropped.clear();
                front.insert(n, g2, &u, &mut dropped);
                for &d in &dropped {
                    labels[d as usize].dead = true;
                }
                labels.push(Label {
                    pos: j as u32,
                    class: b as u32,
                    parent: idx,
                    g: g2,
                    dead: false,
                });
                used.extend_from_slice(&u);
                let f = if j == l { g2 } else { mode.combine(g2, rest) };
                if beyond(f.0) {
                    labels.last_mut().expect("just pushed").dead = true;
                    continue;
                }
                heap.push(Item {
                    f,
                    pos: j as u32,
                    idx: n,
                });
                if labels.len() > limit {
                    let what = match mode {
                        Mode::Latency if cap.is_finite() => format!(
                            "the latency at the optimal period {cap} ms is at least {lower} ms"
                        ),
                        Mode::Latency | Mode::Period => {
                            format!("the optimal latency is at least {lower} ms")
                        }
                        Mode::Bytes => {
                            format!("the optimal space-ground traffic is at least {lower} MB")
                        }
                    };
                    return Err(search_limit(limit, k, &what));
                }
            }
        }
    }
    Ok((None, furthest, expanded))
}

/// The class stages of the path ending at label `idx`.
fn rebuild(labels: &[Label], idx: u32) -> ClassStages {
    let mut st = Vec::new();
    let mut x = idx as usize;
    while labels[x].parent != u32::MAX {
        let par = labels[x].parent as usize;
        st.push((
            labels[x].class as usize,
            labels[par].pos as usize,
            labels[x].pos as usize,
        ));
        x = par;
    }
    st.reverse();
    st
}

/// A search-limit error restated with the bound its caller proved; other errors as they are.
pub(super) fn restate_limit(e: Error, limit: usize, k: usize, what: &str) -> Error {
    if e.code == Code::SearchLimit {
        search_limit(limit, k, what)
    } else {
        e
    }
}

/// The error for a search that stored more than `limit` states; `what` states the bound
/// proven so far.
pub(super) fn search_limit(limit: usize, k: usize, what: &str) -> Error {
    Error::new(
        Code::SearchLimit,
        format!(
            "the exact search stored more than {limit} states ({k} node classes) without finishing; {what}. Raise searchLimit, or group identical nodes (same kind, memory and compute)"
        ),
    )
}

fn layer_name(p: &Problem, i: usize) -> String {
    format!("'{}' (index {i})", p.profile.layers[i].name)
}

/// Explains why no plan exists, naming a layer where possible.
pub(super) fn infeasible(ctx: &Ctx, furthest: usize, counts_bind: bool) -> Error {
    let p = ctx.p;
    let l = p.profile.layers.len();
    if furthest >= l {
        return Error::new(Code::Infeasible, "the output of the last layer cannot reach the output endpoint: every usable path ends on a 0-bandwidth link");
    }
    if counts_bind {
        Error::new(
            Code::Infeasible,
            format!(
                "no placement fits with each node running one contiguous run: the nodes left after layer {} do not have the memory for the layers from there on",
                layer_name(p, furthest)
            ),
        )
    } else {
        Error::new(
            Code::Infeasible,
            format!(
                "no placement gets past layer {}: the nodes with the memory for it cannot be reached over a link with bandwidth > 0 (0-bandwidth links are never crossed)",
                layer_name(p, furthest)
            ),
        )
    }
}

/// Checks that fail fast with a precise message: a layer that fits on no node, or a model
/// larger than all nodes' memory together.
fn precheck(p: &Problem) -> Result<()> {
    let (best, cap) = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i, n.memory_mb))
        .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
    for (i, layer) in p.profile.layers.iter().enumerate() {
        if !fits(layer.memory_mb(), cap) {
            return Err(Error::new(
                Code::Infeasible,
                format!(
                    "layer {} needs {} MB but fits on no node: the largest memory is {} MB (node '{}')",
                    layer_name(p, i),
                    layer.memory_mb(),
                    cap,
                    p.nodes[best].id
                ),
            ));
        }
    }
    let total: f64 = p.nodes.iter().map(|n| n.memory_mb).sum();
    let need = p.profile.total_memory_mb();
    if !fits(need, total) {
        return Err(Error::new(
            Code::Infeasible,
            format!(
                "the whole model needs {need} MB but all {} nodes together hold {total} MB",
                p.nodes.len()
            ),
        ));
    }
    Ok(())
}

/// Furthest layer boundary reachable ignoring counts (for error messages).
pub(super) fn furthest_relaxed(ctx: &Ctx) -> usize {
    let k = ctx.k();
    let l = ctx.p.profile.layers.len();
    let mut ok = vec![false; (l + 1) * (k + 1)];
    ok[k] = true;
    let mut far = 0;
    for i in 0..l {
        for a in 0..=k {
            if !ok[i * (k + 1) + a] {
                continue;
            }
            far = far.max(i);
            for b in 0..k {
                if (a < k && !ctx.may_follow(a, b)) || ctx.hop_in(a, b, i).is_none() {
                    continue;
                }
                for j in i + 1..=ctx.reach[b][i] as usize {
                    ok[j * (k + 1) + b] = true;
                }
            }
        }
    }
    if (0..k).any(|a| ok[l * (k + 1) + a]) {
        far = l;
    }
    far
}

/// The optimum of an additive `mode` among plans whose stages and transfers take ≤ `cap`
/// ms; `known` is a plan within the cap when the caller has one.
fn solve_mode(
    ctx: &Ctx,
    mode: Mode,
    cap: f64,
    known: Option<ClassStages>,
    limit: usize,
) -> Result<(ClassStages, usize)> {
    let r = relax(ctx, mode, cap);
    let k = ctx.k();
    if is_inf(r.at(0, k)) {
        return Err(infeasible(ctx, furthest_relaxed(ctx), false));
    }
    if let Some(plan) = relaxed_if_fits(ctx, &r) {
        return Ok((plan, 0));
    }
    let mut expanded = 0;
    let known = match known {
        Some(st) => st,
        None => {
            let lower = r.at(0, k).0;
            let what = match mode {
                Mode::Bytes => format!("the optimal space-ground traffic is at least {lower} MB"),
                _ => format!("the optimal latency is at least {lower} ms"),
            };
            match probe(ctx, cap, limit, &mut expanded)
                .map_err(|e| restate_limit(e, limit, k, &what))?
            {
                Probe::Found(st) => st,
                Probe::Impossible(furthest) => return Err(infeasible(ctx, furthest, true)),
            }
        }
    };
    match search(ctx, mode, cap, &r, key_of(ctx, mode, &known), limit)? {
        (Some(st), _, e) => Ok((st, expanded + e)),
        // The known plan is within the bound it set, so the search always finds one.
        (None, furthest, _) => Err(infeasible(ctx, furthest, true)),
    }
}

/// The optimal plan for `objective` (see the module documentation for the method and
/// the tie-breaks). `ERR_INFEASIBLE` names the layer that fits nowhere, or says that the
/// whole model does not fit.
pub fn optimize(p: &Problem, objective: Objective) -> Result<Plan> {
    optimize_with_limit(p, objective, MAX_STATES)
}

/// [`optimize`] with a budget of stored search states (default [`MAX_STATES`]); past it,
/// `ERR_SEARCH_LIMIT` with the best proven lower bound.
pub fn optimize_with_limit(p: &Problem, objective: Objective, limit: usize) -> Result<Plan> {
    optimize_with_limits(p, objective, limit, TIE_BREAK_STATES)
}

/// [`optimize_with_limit`] with the budget of the throughput objective's latency
/// tie-break (default [`TIE_BREAK_STATES`]); past it, the plan found for the optimal
/// period is returned with `tie_break_exact: false`.
pub fn optimize_with_limits(
    p: &Problem,
    objective: Objective,
    limit: usize,
    tie_break_limit: usize,
) -> Result<Plan> {
    precheck(p)?;
    let ctx = Ctx::new(p);
    let mut tie_break_exact = true;
    let (stages, expanded) = match objective {
        Objective::Latency => solve_mode(&ctx, Mode::Latency, f64::INFINITY, None, limit)?,
        Objective::Bytes => solve_mode(&ctx, Mode::Bytes, f64::INFINITY, None, limit)?,
        Objective::Throughput => {
            let (st, e1) = super::period::min_period(&ctx, limit)?;
            let period = period_of(&ctx, &st);
            // The tie-break is a second search; when it runs out of budget the period is
            // still optimal, so return the plan found for it, flagged.
            match solve_mode(
                &ctx,
                Mode::Latency,
                period,
                Some(st.clone()),
                tie_break_limit,
            ) {
                Ok((st, e2)) => (st, e1 + e2),
                Err(e) if e.code == Code::SearchLimit => {
                    tie_break_exact = false;
                    (polish_latency(&ctx, period, st), e1 + tie_break_limit)
                }
                Err(e) => return Err(e),
            }
        }
    };
    // Class stages → nodes: the n-th use of a class takes its n-th node in list order.
    let mut next = vec![0usize; ctx.k()];
    let mut placement = vec![0usize; p.profile.layers.len()];
    for &(c, s, e) in &stages {
        let node = ctx.classes[c].nodes[next[c]];
        next[c] += 1;
        placement[s..e].iter_mut().for_each(|x| *x = node);
    }
    let cost = evaluate(p, &placement)?;
    Ok(Plan {
        objective,
        placement,
        cost,
        states_expanded: expanded,
        tie_break_exact,
    })
}

/// Lowers the latency of a plan whose every stage and transfer takes ≤ `cap` ms, keeping
/// that true, for when the exact tie-break ran out of budget. A local search with two
/// moves, repeated until neither improves: a stage moved to a node left idle, and, for each
/// two consecutive stages, the best of both orders of their two nodes and every split of
/// their layers (hops around them included). Sums run left to right as in `evaluate`, so
/// the checked caps hold exactly.
fn polish_latency(ctx: &Ctx, cap: f64, mut st: ClassStages) -> ClassStages {
    let layers = &ctx.p.profile.layers;
    let k = ctx.k();
    let hop = |a: usize, b: usize, i: usize| -> Option<Key> {
        let h = ctx.hop_in(a, b, i)?;
        (h.serialize_ms <= cap).then_some((h.time_ms, h.boundary_mb))
    };
    let out = |a: usize| -> Option<Key> {
        let h = ctx.hop_out(a)?;
        (h.serialize_ms <= cap).then_some((h.time_ms, h.boundary_mb))
    };
    let comp = |b: usize, start: usize, end: usize| -> Option<f64> {
        if end <= start || (ctx.reach[b][start] as usize) < end {
            return None;
        }
        let mut flops = 0.0;
        for layer in &layers[start..end] {
            flops += layer.flops;
        }
        let c = ctx.comp_ms(b, flops);
        (c <= cap).then_some(c)
    };
    // (latency, boundary MB) of stages s and s + 1 on classes (x, y) split at e, with the
    // hops into, between and out of them.
    let window = |st: &ClassStages, s: usize, x: usize, y: usize, e: usize| -> Option<Key> {
        let (start, end) = (st[s].1, st[s + 1].2);
        let prev = if s == 0 { k } else { st[s - 1].0 };
        let into = hop(prev, x, start)?;
        let first = comp(x, start, e)?;
        let between = hop(x, y, e)?;
        let second = comp(y, e, end)?;
        let after = match st.get(s + 2) {
            Some(&(next, _, _)) => hop(y, next, end)?,
            None => out(y)?,
        };
        Some((
            into.0 + first + between.0 + second + after.0,
            into.1 + between.1 + after.1,
        ))
    };
    // Strictly better by more than rounding, so the search cannot cycle.
    let better = |v: Key, w: Key| {
        v.0 < w.0 - 1e-9 * w.0.abs() || (v.0 <= w.0 && v.1 < w.1 - 1e-9 * w.1.abs())
    };
    // One stage moved to a node left idle: (latency, MB) of stage s on class x with the
    // hops into and out of it.
    let single = |st: &ClassStages, s: usize, x: usize| -> Option<Key> {
        let (_, start, end) = st[s];
        let prev = if s == 0 { k } else { st[s - 1].0 };
        let into = hop(prev, x, start)?;
        let run = comp(x, start, end)?;
        let after = match st.get(s + 1) {
            Some(&(next, _, _)) => hop(x, next, end)?,
            None => out(x)?,
        };
        Some((into.0 + run + after.0, into.1 + after.1))
    };
    let mut idle: Vec<usize> = ctx.classes.iter().map(|c| c.nodes.len()).collect();
    for &(b, _, _) in &st {
        idle[b] -= 1;
    }
    let mut improved = true;
    while improved {
        improved = false;
        for s in 0..st.len() {
            let b = st[s].0;
            let Some(mut best) = single(&st, s, b) else {
                continue;
            };
            let mut choice = None;
            for x in (0..k).filter(|&x| x != b && idle[x] > 0) {
                if let Some(v) = single(&st, s, x) {
                    if better(v, best) {
                        (best, choice) = (v, Some(x));
                    }
                }
            }
            if let Some(x) = choice {
                idle[b] += 1;
                idle[x] -= 1;
                st[s].0 = x;
                improved = true;
            }
        }
        for s in 0..st.len().saturating_sub(1) {
            let (b1, b2, split) = (st[s].0, st[s + 1].0, st[s].2);
            let Some(mut best) = window(&st, s, b1, b2, split) else {
                continue;
            };
            let mut choice = None;
            for (x, y) in [(b1, b2), (b2, b1)] {
                for e in st[s].1 + 1..st[s + 1].2 {
                    if let Some(v) = window(&st, s, x, y, e) {
                        if better(v, best) {
                            (best, choice) = (v, Some((x, y, e)));
                        }
                    }
                }
            }
            if let Some((x, y, e)) = choice {
                st[s].0 = x;
                st[s + 1].0 = y;
                st[s].2 = e;
                st[s + 1].1 = e;
                improved = true;
            }
        }
    }
    st
}

/// The cost key of class stages in `mode`, summed in plan order.
pub(super) fn key_of(ctx: &Ctx, mode: Mode, st: &ClassStages) -> Key {
    let layers = &ctx.p.profile.layers;
    let mut g = (0.0, 0.0);
    let mut a = ctx.k();
    for &(b, s, e) in st {
        let hp = ctx.hop_in(a, b, s).expect("plan uses usable links");
        let mut flops = 0.0;
        for layer in &layers[s..e] {
            flops += layer.flops;
        }
        g = mode.combine(
            mode.combine(g, mode.hop(&hp)),
            mode.comp(ctx.comp_ms(b, flops)),
        );
        a = b;
    }
    mode.combine(
        g,
        mode.hop(&ctx.hop_out(a).expect("plan reaches the output")),
    )
}

/// The period of class stages computed exactly as the search computes it.
pub(super) fn period_of(ctx: &Ctx, st: &ClassStages) -> f64 {
    key_of(ctx, Mode::Period, st).0
}
