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

use super::cost::{evaluate, hop, link_out, Hop, PlanCost};
use super::model::{fits, Link, NodeKind, Problem};
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
}

/// Upper bound on stored search states, so a pathological instance fails cleanly instead
/// of exhausting memory.
pub const MAX_STATES: usize = 300_000;

type Key = (f64, f64);
const INF: Key = (f64::INFINITY, f64::INFINITY);

fn lt(a: Key, b: Key) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}
fn le(a: Key, b: Key) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 <= b.1)
}
fn is_inf(a: Key) -> bool {
    a.0 == f64::INFINITY
}

/// How costs combine in one pass of the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
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
struct Class {
    kind: NodeKind,
    memory_mb: f64,
    nodes: Vec<usize>,
}

/// Precomputed tables shared by both searches.
struct Ctx<'a, 'p> {
    p: &'a Problem<'p>,
    classes: Vec<Class>,
    /// `reach[b][i]`: largest j such that layers i..j fit on a node of class b.
    reach: Vec<Vec<u32>>,
    /// Link from class row (K = the input node) to class col; `None` inside = same node.
    link: Vec<Vec<Option<Link>>>,
}

impl<'a, 'p> Ctx<'a, 'p> {
    fn new(p: &'a Problem<'p>) -> Ctx<'a, 'p> {
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

    fn k(&self) -> usize {
        self.classes.len()
    }

    /// Space side of a class, or of the input node for row K.
    fn space(&self, a: usize) -> bool {
        if a == self.k() {
            self.p.nodes[self.p.endpoints.input].kind.in_space()
        } else {
            self.classes[a].kind.in_space()
        }
    }

    /// Hop from `a` (class, or K = input) to class `b` at boundary `i`.
    fn hop_in(&self, a: usize, b: usize, i: usize) -> Option<Hop> {
        hop(
            self.link[a][b],
            self.p.profile.boundary_mb(i),
            self.space(a),
            self.space(b),
        )
    }

    fn hop_out(&self, a: usize) -> Option<Hop> {
        let rep = self.classes[a].nodes[0];
        let (link, sink_space) = link_out(self.p, rep);
        hop(
            link,
            self.p.profile.boundary_mb(self.p.profile.layers.len()),
            self.space(a),
            sink_space,
        )
    }

    fn comp_ms(&self, b: usize, flops: f64) -> f64 {
        self.p.nodes[self.classes[b].nodes[0]].compute_ms(flops)
    }

    /// Whether class `b` may follow `a` ignoring counts (a different node must exist).
    fn may_follow(&self, a: usize, b: usize) -> bool {
        a != b || self.classes[b].nodes.len() >= 2
    }
}

/// Relaxed cost-to-go: `h[i][a]` = best completion from `i` layers done with the last
/// stage on class `a` (a = K: nothing placed yet, only at i = 0), ignoring node counts.
struct Relaxed {
    w: usize,
    h: Vec<Key>,
    next: Vec<(u32, u32)>,
}

impl Relaxed {
    fn at(&self, i: usize, a: usize) -> Key {
        self.h[i * self.w + a]
    }
}

fn relax(ctx: &Ctx, mode: Mode, cap: f64) -> Relaxed {
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
type ClassStages = Vec<(usize, usize, usize)>;

fn relaxed_plan(ctx: &Ctx, r: &Relaxed) -> ClassStages {
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

/// Exact search with node counts. `Ok(None)`: no plan; also returns how far any partial
/// plan got and the number of states expanded.
fn search(
    ctx: &Ctx,
    mode: Mode,
    cap: f64,
    r: &Relaxed,
    limit: usize,
) -> Result<(Option<ClassStages>, usize, usize)> {
    let k = ctx.k();
    let l = ctx.p.profile.layers.len();
    let layers = &ctx.p.profile.layers;
    let counts: Vec<u16> = ctx
        .classes
        .iter()
        .map(|c| c.nodes.len().min(u16::MAX as usize) as u16)
        .collect();
    let mut labels: Vec<Label> = vec![Label {
        pos: 0,
        class: k as u32,
        parent: u32::MAX,
        g: (0.0, 0.0),
        dead: false,
    }];
    let mut used: Vec<u16> = vec![0; k];
    let mut buckets: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut heap = BinaryHeap::new();
    heap.push(Item {
        f: r.at(0, k),
        pos: 0,
        idx: 0,
    });
    let mut furthest = 0usize;
    let mut expanded = 0usize;
    let mut u = vec![0u16; k];
    // Count-aware bounds: the layers left must fit in the memory of the nodes left, and
    // (bottleneck mode) some remaining stage takes at least remaining flops ÷ the
    // remaining nodes' total speed.
    let mut suffix_flops = vec![0.0f64; l + 1];
    let mut suffix_mem = vec![0.0f64; l + 1];
    for i in (0..l).rev() {
        suffix_flops[i] = suffix_flops[i + 1] + layers[i].flops;
        suffix_mem[i] = suffix_mem[i + 1] + layers[i].memory_mb();
    }
    let speed: Vec<f64> = ctx
        .classes
        .iter()
        .map(|c| ctx.p.nodes[c.nodes[0]].compute_tflops * 1e9)
        .collect();
    // In bottleneck mode every finished plan costs at least the current frontier value
    // `fcur`, so partial costs below it are equivalent: compare max(g, fcur).
    let mut fcur = 0.0f64;
    let mut lower = 0.0f64;
    while let Some(Item { idx, f: fpop, .. }) = heap.pop() {
        lower = lower.max(fpop.0);
        if mode == Mode::Period {
            fcur = fcur.max(fpop.0);
        }
        let eff = |g: Key| {
            if mode == Mode::Period {
                (g.0.max(fcur), 0.0)
            } else {
                g
            }
        };
        let lab = &labels[idx as usize];
        if lab.dead {
            continue;
        }
        let (i, a, g) = (lab.pos as usize, lab.class as usize, lab.g);
        if i == l {
            // Rebuild the stages.
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
            return Ok((Some(st), furthest, expanded));
        }
        expanded += 1;
        furthest = furthest.max(i);
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
            let gh = mode.combine(g, mode.hop(&hp));
            let mut flops = 0.0;
            for j in i + 1..=ctx.reach[b][i] as usize {
                flops += layers[j - 1].flops;
                let c = ctx.comp_ms(b, flops);
                if c > cap {
                    break;
                }
                let rest = r.at(j, b);
                if is_inf(rest) {
                    continue;
                }
                let mut g2 = mode.combine(gh, mode.comp(c));
                if j == l {
                    // Finishing: `rest` is exactly the output hop, part of the plan's cost.
                    g2 = mode.combine(g2, rest);
                }
                u.copy_from_slice(&used[idx as usize * k..idx as usize * k + k]);
                u[b] += 1;
                let mut bound = 0.0f64;
                if j < l {
                    let (mut mem_left, mut speed_left) = (0.0, 0.0);
                    for c in 0..k {
                        let free = (counts[c] - u[c]) as f64;
                        mem_left += free * ctx.classes[c].memory_mb;
                        speed_left += free * speed[c];
                    }
                    if suffix_mem[j] > mem_left * (1.0 + 1e-9) + 1e-9 || speed_left == 0.0 {
                        continue;
                    }
                    if mode == Mode::Period {
                        bound = suffix_flops[j] / speed_left * (1.0 - 1e-9);
                    }
                }
                // Pareto dominance at (j, b).
                let key = (j * k + b) as u32;
                let bucket = buckets.entry(key).or_default();
                let mut dominated = false;
                for &e in bucket.iter() {
                    let el = &labels[e as usize];
                    if el.dead {
                        continue;
                    }
                    let eu = &used[e as usize * k..e as usize * k + k];
                    if le(eff(el.g), eff(g2)) && eu.iter().zip(&u).all(|(x, y)| x <= y) {
                        dominated = true;
                        break;
                    }
                }
                if dominated {
                    continue;
                }
                bucket.retain(|&e| {
                    let el = &mut labels[e as usize];
                    if el.dead {
                        return false;
                    }
                    let eu = &used[e as usize * k..e as usize * k + k];
                    if le(eff(g2), eff(el.g)) && u.iter().zip(eu).all(|(x, y)| x <= y) {
                        el.dead = true;
                        return false;
                    }
                    true
                });
                let n = labels.len() as u32;
                bucket.push(n);
                labels.push(Label {
                    pos: j as u32,
                    class: b as u32,
                    parent: idx,
                    g: g2,
                    dead: false,
                });
                used.extend_from_slice(&u);
                let mut f = if j == l { g2 } else { mode.combine(g2, rest) };
                if mode == Mode::Period {
                    f.0 = f.0.max(bound);
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
                        Mode::Latency => format!("the optimal latency is at least {lower} ms"),
                        Mode::Bytes => {
                            format!("the optimal space-ground traffic is at least {lower} MB")
                        }
                        Mode::Period => {
                            format!("the optimal pipeline period is at least {lower} ms")
                        }
                    };
                    return Err(Error::new(
                        Code::SearchLimit,
                        format!(
                            "the exact search stored more than {limit} states ({k} node classes) without finishing; {what}. Raise searchLimit, or group identical nodes (same kind, memory and compute)"
                        ),
                    ));
                }
            }
        }
    }
    Ok((None, furthest, expanded))
}

fn layer_name(p: &Problem, i: usize) -> String {
    format!("'{}' (index {i})", p.profile.layers[i].name)
}

/// Explains why no plan exists, naming a layer where possible.
fn infeasible(ctx: &Ctx, furthest: usize, counts_bind: bool) -> Error {
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
fn furthest_relaxed(ctx: &Ctx) -> usize {
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

fn solve_mode(ctx: &Ctx, mode: Mode, cap: f64, limit: usize) -> Result<(ClassStages, usize)> {
    let r = relax(ctx, mode, cap);
    let k = ctx.k();
    if is_inf(r.at(0, k)) {
        return Err(infeasible(ctx, furthest_relaxed(ctx), false));
    }
    let plan = relaxed_plan(ctx, &r);
    let mut uses = vec![0usize; k];
    for &(c, _, _) in &plan {
        uses[c] += 1;
    }
    if uses
        .iter()
        .zip(&ctx.classes)
        .all(|(u, c)| *u <= c.nodes.len())
    {
        return Ok((plan, 0));
    }
    match search(ctx, mode, cap, &r, limit)? {
        (Some(st), _, expanded) => Ok((st, expanded)),
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
    precheck(p)?;
    let ctx = Ctx::new(p);
    let (stages, expanded) = match objective {
        Objective::Latency => solve_mode(&ctx, Mode::Latency, f64::INFINITY, limit)?,
        Objective::Bytes => solve_mode(&ctx, Mode::Bytes, f64::INFINITY, limit)?,
        Objective::Throughput => {
            let (st, e1) = solve_mode(&ctx, Mode::Period, f64::INFINITY, limit)?;
            let period = period_of(&ctx, &st);
            let (st, e2) = solve_mode(&ctx, Mode::Latency, period, limit)?;
            (st, e1 + e2)
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
    })
}

/// The period of class stages computed exactly as the search computes it.
fn period_of(ctx: &Ctx, st: &ClassStages) -> f64 {
    let layers = &ctx.p.profile.layers;
    let mut period = 0.0f64;
    let mut a = ctx.k();
    for &(b, s, e) in st {
        let hp = ctx.hop_in(a, b, s).expect("plan uses usable links");
        let mut flops = 0.0;
        for layer in &layers[s..e] {
            flops += layer.flops;
        }
        period = period.max(hp.serialize_ms).max(ctx.comp_ms(b, flops));
        a = b;
    }
    period.max(
        ctx.hop_out(a)
            .expect("plan reaches the output")
            .serialize_ms,
    )
}
