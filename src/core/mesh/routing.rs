//! Route computation over a compact snapshot of the mesh.
//!
//! The mesh lives in a petgraph `StableGraph` (ids stay valid across removals). Routing
//! runs on a compressed-sparse-row (CSR) copy of the links that are up, built once per
//! topology change and shared (`Arc`) by every query and every rayon worker: contiguous
//! arrays make Dijkstra cache-friendly and `Sync` for free.
//!
//! One label-setting search serves every metric; a label is a pair compared
//! lexicographically (primary, secondary):
//!
//! | metric      | primary                  | secondary  | extension over link (d, b)          |
//! |-------------|--------------------------|------------|-------------------------------------|
//! | `Latency`   | Σ latency (ms)           | hop count  | (p + d, s + 1)                      |
//! | `Hops`      | hop count                | Σ latency  | (p + 1, s + d)                      |
//! | `Bandwidth` | −bottleneck (Mbps)       | Σ latency  | (max(p, −b), s + d)                 |
//!
//! Sums are f64 and saturate at `f64::MAX`, so no input can overflow or panic (petgraph
//! #742). Weights were validated at insertion (finite, ≥ 0; +∞ latency means link down
//! and the link is left out of the snapshot), so the order is total.

use std::cmp::Ordering;

use petgraph::unionfind::UnionFind;
use rayon::prelude::*;

/// What a route minimises (or, for `Bandwidth`, maximises).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Least total propagation latency (Dijkstra); ties by fewer hops.
    Latency,
    /// Fewest hops; ties by lower latency.
    Hops,
    /// Widest path: largest bottleneck bandwidth; ties by lower latency.
    Bandwidth,
}

impl Metric {
    /// Parses the words used at the API (`'latency'`, `'hops'`, `'bandwidth'`).
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "latency" => Some(Metric::Latency),
            "hops" => Some(Metric::Hops),
            "bandwidth" => Some(Metric::Bandwidth),
            _ => None,
        }
    }
}

/// Sentinel for "no node / no edge" in index arrays.
pub const NONE: u32 = u32::MAX;

/// Compressed adjacency of the links that are up. Node `i` of the snapshot has its
/// outgoing half-edges at `offsets[i]..offsets[i+1]`; every link appears twice.
#[derive(Debug, Clone, Default)]
pub struct Csr {
    pub offsets: Vec<u32>,
    pub targets: Vec<u32>,
    pub latency_ms: Vec<f64>,
    pub bandwidth_mbps: Vec<f64>,
    /// Nodes that may forward traffic (empty: all). A route may start or end at a
    /// non-transit node (a ground station that does not relay) but never pass through it.
    pub transit: Vec<bool>,
    /// Earth-fixed node positions, km (empty: unknown). With `geometric`, they give
    /// the A* lower bound below.
    pub pos: Vec<crate::core::geo::Vec3>,
    /// Every link's latency is at least its endpoints' distance at the speed of light
    /// (true of every link derived from geometry), so straight-line light time to the
    /// target never overestimates the remaining latency.
    pub geometric: bool,
}

/// Slack on the A* bound: it is scaled by (1 − 1e-9) so that float rounding in
/// distances can never make it overestimate (which could cost optimality).
const ASTAR_SLACK: f64 = 1.0 - 1e-9;

impl Csr {
    /// Records node positions and decides whether the A* bound is valid for this graph.
    pub fn set_positions(&mut self, pos: Vec<crate::core::geo::Vec3>) {
        use crate::core::geo::distance;
        let mut geometric = pos.len() == self.len();
        if geometric {
            'outer: for u in 0..self.len() as u32 {
                for k in self.edges(u) {
                    let d = distance(pos[u as usize], pos[self.targets[k] as usize]);
                    if self.latency_ms[k] < ASTAR_SLACK * super::light_ms(d) {
                        geometric = false;
                        break 'outer;
                    }
                }
            }
        }
        self.pos = pos;
        self.geometric = geometric;
    }

    /// Builds the snapshot from undirected links `(u, v, latency, bandwidth)` over `n` nodes.
    pub fn from_links(n: usize, links: &[(u32, u32, f64, f64)]) -> Csr {
        let mut deg = vec![0u32; n + 1];
        for &(u, v, _, _) in links {
            deg[u as usize] += 1;
            deg[v as usize] += 1;
        }
        let mut offsets = vec![0u32; n + 1];
        for i in 0..n {
            offsets[i + 1] = offsets[i] + deg[i];
        }
        let m = offsets[n] as usize;
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; m];
        let mut latency_ms = vec![0.0; m];
        let mut bandwidth_mbps = vec![0.0; m];
        for &(u, v, l, b) in links {
            for (x, y) in [(u, v), (v, u)] {
                let k = fill[x as usize] as usize;
                fill[x as usize] += 1;
                targets[k] = y;
                latency_ms[k] = l;
                bandwidth_mbps[k] = b;
            }
        }
        Csr {
            offsets,
            targets,
            latency_ms,
            bandwidth_mbps,
            transit: Vec::new(),
            pos: Vec::new(),
            geometric: false,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when the snapshot has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Half-edge positions leaving `u`.
    #[inline]
    pub fn edges(&self, u: u32) -> std::ops::Range<usize> {
        self.offsets[u as usize] as usize..self.offsets[u as usize + 1] as usize
    }

    /// Degree (links up) of `u`.
    pub fn degree(&self, u: u32) -> usize {
        self.edges(u).len()
    }

    /// Half-edge from `u` to `v`, if any (linear in the degree).
    pub fn find(&self, u: u32, v: u32) -> Option<usize> {
        self.edges(u).find(|&k| self.targets[k] == v)
    }
}

/// A path label; smaller is better, compared (primary, secondary).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    pub primary: f64,
    pub secondary: f64,
}

impl Label {
    const UNREACHED: Label = Label {
        primary: f64::INFINITY,
        secondary: f64::INFINITY,
    };

    fn source(metric: Metric) -> Label {
        match metric {
            Metric::Bandwidth => Label {
                primary: f64::NEG_INFINITY,
                secondary: 0.0,
            },
            _ => Label {
                primary: 0.0,
                secondary: 0.0,
            },
        }
    }

    #[inline]
    fn extend(self, metric: Metric, latency: f64, bandwidth: f64) -> Label {
        match metric {
            Metric::Latency => Label {
                primary: sat_add(self.primary, latency),
                secondary: self.secondary + 1.0,
            },
            Metric::Hops => Label {
                primary: self.primary + 1.0,
                secondary: sat_add(self.secondary, latency),
            },
            Metric::Bandwidth => Label {
                primary: self.primary.max(-bandwidth),
                secondary: sat_add(self.secondary, latency),
            },
        }
    }

    /// Lexicographic order. Labels never hold NaN (weights are validated), so plain
    /// comparisons are a total order here; they are much cheaper than `total_cmp`.
    #[inline]
    fn cmp(&self, o: &Label) -> Ordering {
        if self.primary < o.primary {
            Ordering::Less
        } else if self.primary > o.primary {
            Ordering::Greater
        } else if self.secondary < o.secondary {
            Ordering::Less
        } else if self.secondary > o.secondary {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }

    #[inline]
    fn less(&self, o: &Label) -> bool {
        self.primary < o.primary || (self.primary == o.primary && self.secondary < o.secondary)
    }

    /// The metric's own value: latency (ms), hop count, or bottleneck (Mbps).
    pub fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Bandwidth => {
                if self.primary == f64::INFINITY {
                    0.0
                } else {
                    -self.primary
                }
            }
            _ => self.primary,
        }
    }
}

/// Adds latencies, saturating at `f64::MAX` instead of reaching +∞ (which means "down").
#[inline]
pub fn sat_add(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s > f64::MAX {
        f64::MAX
    } else {
        s
    }
}

/// An indexed 4-ary min-heap of node ids keyed by their current label, with
/// decrease-key: each node is in the heap at most once, so the heap stays as small as
/// the search frontier (a lazy-deletion binary heap holds one entry per relaxation).
struct NodeHeap {
    heap: Vec<u32>,
    /// Position of each node in `heap`; `NONE` when absent.
    pos: Vec<u32>,
}

impl NodeHeap {
    fn new(n: usize) -> NodeHeap {
        NodeHeap {
            heap: Vec::with_capacity(64),
            pos: vec![NONE; n],
        }
    }

    #[inline]
    fn better(label: &[Label], a: u32, b: u32) -> bool {
        let (la, lb) = (&label[a as usize], &label[b as usize]);
        la.less(lb) || (!lb.less(la) && a < b)
    }

    #[inline]
    fn sift_up(&mut self, mut i: usize, label: &[Label]) {
        let v = self.heap[i];
        while i > 0 {
            let p = (i - 1) / 4;
            let u = self.heap[p];
            if !Self::better(label, v, u) {
                break;
            }
            self.heap[i] = u;
            self.pos[u as usize] = i as u32;
            i = p;
        }
        self.heap[i] = v;
        self.pos[v as usize] = i as u32;
    }

    /// Inserts `v`, or moves it up after its label improved.
    #[inline]
    fn push_or_decrease(&mut self, v: u32, label: &[Label]) {
        let i = match self.pos[v as usize] {
            NONE => {
                self.heap.push(v);
                self.heap.len() - 1
            }
            i => i as usize,
        };
        self.sift_up(i, label);
    }

    fn pop(&mut self, label: &[Label]) -> Option<u32> {
        let top = *self.heap.first()?;
        self.pos[top as usize] = NONE;
        let last = self.heap.pop().unwrap();
        let n = self.heap.len();
        if n > 0 {
            let mut i = 0;
            loop {
                let c0 = 4 * i + 1;
                if c0 >= n {
                    break;
                }
                let mut best = c0;
                for c in c0 + 1..(c0 + 4).min(n) {
                    if Self::better(label, self.heap[c], self.heap[best]) {
                        best = c;
                    }
                }
                let b = self.heap[best];
                if !Self::better(label, b, last) {
                    break;
                }
                self.heap[i] = b;
                self.pos[b as usize] = i as u32;
                i = best;
            }
            self.heap[i] = last;
            self.pos[last as usize] = i as u32;
        }
        Some(top)
    }
}

/// Restrictions used by Yen's algorithm and by the widest-then-shortest refinement.
#[derive(Default, Clone, Copy)]
pub struct Filter<'a> {
    /// Nodes that may not be entered.
    pub banned_nodes: Option<&'a [bool]>,
    /// Half-edges that may not be used.
    pub banned_edges: Option<&'a [bool]>,
    /// Only links with at least this bandwidth.
    pub min_bandwidth: f64,
}

/// The result of a single-source search: best label and incoming half-edge per node.
/// It doubles as the search's workspace, so single-target queries can reuse one per
/// thread and reset only the nodes they touched (O(explored), not O(V), per query).
pub struct Tree {
    pub label: Vec<Label>,
    /// Half-edge position by which each node was reached (`NONE` for the source and unreached).
    pub pred_edge: Vec<u32>,
    /// Predecessor node (`NONE` for the source and unreached).
    pub pred: Vec<u32>,
    /// First hop from the source towards each node (`NONE` for the source and unreached).
    pub first: Vec<u32>,
    key: Vec<Label>,
    done: Vec<bool>,
    heap: NodeHeap,
    touched: Vec<u32>,
}

impl Tree {
    fn new(n: usize) -> Tree {
        Tree {
            label: vec![Label::UNREACHED; n],
            pred_edge: vec![NONE; n],
            pred: vec![NONE; n],
            first: vec![NONE; n],
            key: vec![Label::UNREACHED; n],
            done: vec![false; n],
            heap: NodeHeap::new(n),
            touched: Vec::new(),
        }
    }

    /// Back to the clean state, visiting only the nodes the last search touched.
    fn reset(&mut self) {
        for &v in &self.touched {
            let v = v as usize;
            self.label[v] = Label::UNREACHED;
            self.key[v] = Label::UNREACHED;
            self.pred_edge[v] = NONE;
            self.pred[v] = NONE;
            self.first[v] = NONE;
            self.done[v] = false;
        }
        for &v in &self.heap.heap {
            self.heap.pos[v as usize] = NONE;
        }
        self.heap.heap.clear();
        self.touched.clear();
    }
}

thread_local! {
    static WORKSPACE: std::cell::RefCell<Option<Tree>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` on the result of a single-target search, reusing this thread's workspace.
fn with_search<R>(
    csr: &Csr,
    source: u32,
    target: u32,
    metric: Metric,
    filter: &Filter,
    f: impl FnOnce(&Tree) -> R,
) -> R {
    WORKSPACE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut tree = match slot.take() {
            Some(t) if t.label.len() == csr.len() => t,
            _ => Tree::new(csr.len()),
        };
        run(csr, source, Some(target), metric, filter, &mut tree);
        let r = f(&tree);
        tree.reset();
        *slot = Some(tree);
        r
    })
}

/// Label-setting search from `source` (Dijkstra's algorithm generalised to the three
/// label algebras above). Stops early once `target` is settled.
///
/// Complexity: O((V + E) log V) time, O(V) space.
pub fn search(
    csr: &Csr,
    source: u32,
    target: Option<u32>,
    metric: Metric,
    filter: &Filter,
) -> Tree {
    let mut tree = Tree::new(csr.len());
    run(csr, source, target, metric, filter, &mut tree);
    tree
}

fn run(
    csr: &Csr,
    source: u32,
    target: Option<u32>,
    metric: Metric,
    filter: &Filter,
    tree: &mut Tree,
) {
    let Tree {
        label,
        pred_edge,
        pred,
        first,
        key,
        done,
        heap,
        touched,
    } = tree;
    // A* (Hart, Nilsson & Raphael 1968) towards a single target for the latency metric
    // when the graph is geometric: key = label + light time of the straight line to the
    // target, a consistent lower bound (triangle inequality), so each node is still
    // settled with its optimal label, after exploring far fewer nodes. Without A* the
    // key is the label itself.
    let astar = match (target, metric) {
        (Some(t), Metric::Latency) if csr.geometric => Some(csr.pos[t as usize]),
        _ => None,
    };
    let h = |v: u32| -> f64 {
        match astar {
            Some(tp) => {
                ASTAR_SLACK * super::light_ms(crate::core::geo::distance(csr.pos[v as usize], tp))
            }
            None => 0.0,
        }
    };
    label[source as usize] = Label::source(metric);
    key[source as usize] = Label {
        primary: label[source as usize].primary + h(source),
        ..label[source as usize]
    };
    touched.push(source);
    heap.push_or_decrease(source, key);
    while let Some(u) = heap.pop(key) {
        done[u as usize] = true;
        if Some(u) == target {
            break;
        }
        if u != source && !csr.transit.is_empty() && !csr.transit[u as usize] {
            continue;
        }
        let l = label[u as usize];
        for k in csr.edges(u) {
            let v = csr.targets[k];
            if done[v as usize] {
                continue;
            }
            if let Some(b) = filter.banned_nodes {
                if b[v as usize] {
                    continue;
                }
            }
            if let Some(b) = filter.banned_edges {
                if b[k] {
                    continue;
                }
            }
            let bw = csr.bandwidth_mbps[k];
            if bw < filter.min_bandwidth {
                continue;
            }
            let nl = l.extend(metric, csr.latency_ms[k], bw);
            if nl.less(&label[v as usize]) {
                if label[v as usize].primary == f64::INFINITY {
                    touched.push(v);
                }
                label[v as usize] = nl;
                key[v as usize] = Label {
                    primary: nl.primary + h(v),
                    secondary: nl.secondary,
                };
                pred_edge[v as usize] = k as u32;
                pred[v as usize] = u;
                first[v as usize] = if u == source { v } else { first[u as usize] };
                heap.push_or_decrease(v, key);
            }
        }
    }
}

/// A route as node indices of the snapshot, with its totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub nodes: Vec<u32>,
    pub latency_ms: f64,
    /// Smallest link bandwidth along the path (+∞ for a zero-hop path).
    pub bottleneck_mbps: f64,
}

impl Path {
    /// Number of links.
    pub fn hop_count(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }

    fn label(&self, metric: Metric) -> Label {
        let h = self.hop_count() as f64;
        match metric {
            Metric::Latency => Label {
                primary: self.latency_ms,
                secondary: h,
            },
            Metric::Hops => Label {
                primary: h,
                secondary: self.latency_ms,
            },
            Metric::Bandwidth => Label {
                primary: -self.bottleneck_mbps,
                secondary: self.latency_ms,
            },
        }
    }
}

/// Walks the tree back from `target` and totals the path.
pub fn path_to(csr: &Csr, tree: &Tree, source: u32, target: u32) -> Option<Path> {
    if target != source && tree.pred_edge[target as usize] == NONE {
        return None;
    }
    let mut edges = Vec::new();
    let mut nodes = vec![target];
    let mut v = target;
    while v != source {
        edges.push(tree.pred_edge[v as usize] as usize);
        v = tree.pred[v as usize];
        nodes.push(v);
    }
    nodes.reverse();
    // Sum in path order so a total does not depend on how the path was found.
    let mut latency_ms = 0.0;
    let mut bottleneck_mbps = f64::INFINITY;
    for &k in edges.iter().rev() {
        latency_ms = sat_add(latency_ms, csr.latency_ms[k]);
        bottleneck_mbps = bottleneck_mbps.min(csr.bandwidth_mbps[k]);
    }
    Some(Path {
        nodes,
        latency_ms,
        bottleneck_mbps,
    })
}

/// Best route from `s` to `t` under `metric`.
///
/// For `Bandwidth` the answer is exact in both criteria: first the widest bottleneck B*
/// is found, then the least-latency path among links of bandwidth ≥ B* (a single
/// lexicographic pass would not be: "widest, then shortest" is not isotone).
pub fn route(csr: &Csr, s: u32, t: u32, metric: Metric) -> Option<Path> {
    route_filtered(csr, s, t, metric, &Filter::default())
}

fn route_filtered(csr: &Csr, s: u32, t: u32, metric: Metric, filter: &Filter) -> Option<Path> {
    let p = with_search(csr, s, t, metric, filter, |tree| path_to(csr, tree, s, t))?;
    if metric != Metric::Bandwidth || s == t {
        return Some(p);
    }
    let refine = Filter {
        min_bandwidth: p.bottleneck_mbps,
        ..*filter
    };
    with_search(csr, s, t, Metric::Latency, &refine, |tree| {
        path_to(csr, tree, s, t)
    })
    .or(Some(p))
}

/// Up to `k` loop-free routes from `s` to `t` in order of the metric (Yen, 1971), each
/// distinct. `metric` must be additive (`Latency` or `Hops`).
///
/// Complexity: O(k · V · (V + E) log V) in the worst case.
pub fn k_shortest(csr: &Csr, s: u32, t: u32, k: usize, metric: Metric) -> Vec<Path> {
    let mut a: Vec<Path> = Vec::new();
    if k == 0 {
        return a;
    }
    match route(csr, s, t, metric) {
        Some(p) => a.push(p),
        None => return a,
    }
    if s == t {
        return a;
    }
    let n = csr.len();
    let mut candidates: Vec<Path> = Vec::new();
    let mut banned_nodes = vec![false; n];
    let mut banned_edges = vec![false; csr.targets.len()];
    while a.len() < k {
        let prev = a.last().unwrap().nodes.clone();
        for i in 0..prev.len() - 1 {
            let spur = prev[i];
            let root = &prev[..=i];
            let mut touched_edges = Vec::new();
            for p in &a {
                if p.nodes.len() > i + 1 && &p.nodes[..=i] == root {
                    if let Some(e) = csr.find(p.nodes[i], p.nodes[i + 1]) {
                        banned_edges[e] = true;
                        touched_edges.push(e);
                    }
                }
            }
            for &r in &root[..i] {
                banned_nodes[r as usize] = true;
            }
            let filter = Filter {
                banned_nodes: Some(&banned_nodes),
                banned_edges: Some(&banned_edges),
                min_bandwidth: 0.0,
            };
            if let Some(sp) = with_search(csr, spur, t, metric, &filter, |tree| {
                path_to(csr, tree, spur, t)
            }) {
                let mut nodes = root[..i].to_vec();
                nodes.extend_from_slice(&sp.nodes);
                let path = totals(csr, nodes);
                if !a.iter().any(|q| q.nodes == path.nodes)
                    && !candidates.iter().any(|q| q.nodes == path.nodes)
                {
                    candidates.push(path);
                }
            }
            for e in touched_edges {
                banned_edges[e] = false;
            }
            for &r in &root[..i] {
                banned_nodes[r as usize] = false;
            }
        }
        if candidates.is_empty() {
            break;
        }
        let best = (0..candidates.len())
            .min_by(|&x, &y| {
                candidates[x]
                    .label(metric)
                    .cmp(&candidates[y].label(metric))
                    .then_with(|| candidates[x].nodes.cmp(&candidates[y].nodes))
            })
            .unwrap();
        a.push(candidates.swap_remove(best));
    }
    a
}

/// Totals of an explicit node sequence (links must exist).
pub fn totals(csr: &Csr, nodes: Vec<u32>) -> Path {
    let mut latency_ms = 0.0;
    let mut bott = f64::INFINITY;
    for w in nodes.windows(2) {
        if let Some(k) = csr.find(w[0], w[1]) {
            latency_ms = sat_add(latency_ms, csr.latency_ms[k]);
            bott = bott.min(csr.bandwidth_mbps[k]);
        }
    }
    Path {
        nodes,
        latency_ms,
        bottleneck_mbps: bott,
    }
}

/// All-pairs next-hop table, one single-source search per node in parallel (rayon).
#[derive(Debug, Clone)]
pub struct NextHops {
    /// Row-major n×n: `next[s·n + t]` is the neighbour of `s` to forward to for `t`;
    /// `s` itself on the diagonal; `NONE` when `t` is unreachable.
    pub next: Vec<u32>,
    /// Row-major n×n metric value (latency ms, hop count, or bottleneck Mbps);
    /// +∞ (latency, hops) or 0 (bandwidth) when unreachable.
    pub value: Vec<f64>,
}

/// Computes the next-hop table for every source.
///
/// Complexity: O(V · (V + E) log V) work, spread over the rayon pool; O(V²) output.
pub fn all_pairs(csr: &Csr, metric: Metric) -> NextHops {
    let n = csr.len();
    let mut next = vec![NONE; n * n];
    let mut value = vec![0.0; n * n];
    if n == 0 {
        return NextHops { next, value };
    }
    next.par_chunks_mut(n)
        .zip(value.par_chunks_mut(n))
        .enumerate()
        .for_each(|(s, (row, vrow))| {
            let tree = search(csr, s as u32, None, metric, &Filter::default());
            row.copy_from_slice(&tree.first);
            row[s] = s as u32;
            for (t, v) in vrow.iter_mut().enumerate() {
                *v = tree.label[t].value(metric);
            }
        });
    NextHops { next, value }
}

/// Whole-mesh figures.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphStats {
    pub min_degree: usize,
    pub max_degree: usize,
    pub mean_degree: f64,
    pub components: usize,
    pub largest_component: usize,
    /// Largest hop count of any shortest path between connected nodes.
    pub diameter_hops: usize,
    /// Largest least-latency between connected nodes, ms.
    pub diameter_latency_ms: f64,
    /// Links up.
    pub links_up: usize,
}

/// Degrees, connected components (union–find) and both diameters (parallel searches).
pub fn stats(csr: &Csr) -> GraphStats {
    let n = csr.len();
    if n == 0 {
        return GraphStats {
            min_degree: 0,
            max_degree: 0,
            mean_degree: 0.0,
            components: 0,
            largest_component: 0,
            diameter_hops: 0,
            diameter_latency_ms: 0.0,
            links_up: 0,
        };
    }
    let degs: Vec<usize> = (0..n as u32).map(|u| csr.degree(u)).collect();
    let mut uf = UnionFind::<u32>::new(n);
    for u in 0..n as u32 {
        for k in csr.edges(u) {
            uf.union(u, csr.targets[k]);
        }
    }
    let mut size = vec![0usize; n];
    for u in 0..n as u32 {
        size[uf.find(u) as usize] += 1;
    }
    let components = size.iter().filter(|&&c| c > 0).count();
    let largest_component = size.iter().copied().max().unwrap_or(0);
    let (dh, dl) = (0..n as u32)
        .into_par_iter()
        .map(|s| {
            let hops = bfs_ecc(csr, s);
            let tree = search(csr, s, None, Metric::Latency, &Filter::default());
            let lat = tree
                .label
                .iter()
                .map(|l| l.primary)
                .filter(|x| x.is_finite())
                .fold(0.0, f64::max);
            (hops, lat)
        })
        .reduce(|| (0, 0.0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
    GraphStats {
        min_degree: *degs.iter().min().unwrap(),
        max_degree: *degs.iter().max().unwrap(),
        mean_degree: degs.iter().sum::<usize>() as f64 / n as f64,
        components,
        largest_component,
        diameter_hops: dh,
        diameter_latency_ms: dl,
        links_up: csr.targets.len() / 2,
    }
}

/// Hop eccentricity of `s` within its component (breadth-first search).
fn bfs_ecc(csr: &Csr, s: u32) -> usize {
    let n = csr.len();
    let mut dist = vec![u32::MAX; n];
    let mut q = std::collections::VecDeque::new();
    dist[s as usize] = 0;
    q.push_back(s);
    let mut ecc = 0;
    while let Some(u) = q.pop_front() {
        let d = dist[u as usize];
        ecc = ecc.max(d as usize);
        if u != s && !csr.transit.is_empty() && !csr.transit[u as usize] {
            continue;
        }
        for k in csr.edges(u) {
            let v = csr.targets[k] as usize;
            if dist[v] == u32::MAX {
                dist[v] = d + 1;
                q.push_back(v as u32);
            }
        }
    }
    ecc
}
