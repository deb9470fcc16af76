//! Inter-satellite mesh networking: a graph of nodes (satellites, ground stations, or
//! plain fixed points) joined by bidirectional links, routing over it by latency, hop
//! count or bottleneck bandwidth, and constellations that move.
//!
//! - [`Mesh`]: the graph (petgraph `StableGraph`, so node handles survive removals),
//!   node and link editing, routes, alternatives, next-hop tables and stats.
//! - [`routing`]: the algorithms, on a compact CSR snapshot of the links that are up.
//! - [`kepler`]: [`OrbitSource`] and its Keplerian (two-body + J2 secular) implementation.
//! - [`walker`]: Walker-delta / Walker-star shells and their +Grid link pattern.
//! - [`topology`]: time steps: node positions, range + line-of-sight links via a uniform
//!   spatial grid, ground links by elevation mask, and route series over time.

pub mod kepler;
pub mod routing;
pub mod topology;
pub mod walker;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Undirected;

use crate::core::error::{Code, Error, Result};
use crate::core::geo::{self, Geodetic, Vec3};

pub use kepler::{KeplerElements, KeplerOrbit, OrbitSource};
pub use routing::{Csr, GraphStats, Metric, NextHops, Path};
pub use topology::{GroundParams, RangeRule, RouteSeries, SeriesChange};
pub use walker::{WalkerConfig, WalkerPattern};

/// What a node is; ground stations and orbiting satellites take part in time steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A satellite (fixed position unless it has an orbit).
    Satellite,
    /// A ground station.
    Ground,
    /// Anything else (relay, HAPS, …).
    Other,
}

impl NodeKind {
    /// API word.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Satellite => "satellite",
            NodeKind::Ground => "ground",
            NodeKind::Other => "other",
        }
    }
    /// Parses an API word.
    pub fn parse(s: &str) -> Option<NodeKind> {
        match s {
            "satellite" => Some(NodeKind::Satellite),
            "ground" => Some(NodeKind::Ground),
            "other" => Some(NodeKind::Other),
            _ => None,
        }
    }
}

/// How a moving satellite gets its inter-satellite links at each time step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IslMode {
    /// By its Walker shell's +Grid pattern.
    Grid,
    /// By range and Earth line of sight (the mesh's [`RangeRule`]).
    Range,
    /// No automatic links (only links added by hand).
    None,
}

/// A node of the mesh.
#[derive(Clone)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    /// Earth-fixed position, km.
    pub ecef: Vec3,
    /// Orbit, for satellites that move with time.
    pub orbit: Option<Arc<dyn OrbitSource>>,
    /// Automatic ISL rule of an orbiting satellite.
    pub isl: IslMode,
    /// Ground-link rule of a ground station taking part in time steps.
    pub ground: Option<GroundParams>,
}

impl Node {
    /// True when routes may pass through this node (ground stations relay only when
    /// their `relay` flag says so).
    pub fn relay(&self) -> bool {
        self.ground.is_none_or(|g| g.relay)
    }

    /// Geodetic position (WGS-84).
    pub fn geodetic(&self) -> Geodetic {
        Geodetic::from_ecef(self.ecef)
    }
}

/// Where a link comes from: added by hand, or rebuilt at every time step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOrigin {
    Manual,
    /// Inter-satellite link made by a time step.
    Isl,
    /// Ground–satellite link made by a time step.
    Ground,
}

impl LinkOrigin {
    /// API word.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkOrigin::Manual => "manual",
            LinkOrigin::Isl => "isl",
            LinkOrigin::Ground => "ground",
        }
    }
}

/// A bidirectional link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub bandwidth_mbps: f64,
    /// One-way latency, ms; +∞ means the link is down.
    pub latency_ms: f64,
    /// Latency follows the endpoints' distance at the speed of light.
    pub auto_latency: bool,
    /// Administratively up (a down link is kept but never routed over).
    pub up: bool,
    pub origin: LinkOrigin,
}

impl Link {
    /// True when routes may use it.
    pub fn usable(&self) -> bool {
        self.up && self.latency_ms.is_finite()
    }
}

/// A link as reported to callers.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkInfo {
    pub a: String,
    pub b: String,
    pub link: Link,
    pub distance_km: f64,
}

/// A route as reported to callers.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Node ids from source to destination, both included.
    pub hops: Vec<String>,
    pub total_latency_ms: f64,
    /// Smallest link bandwidth on the route (+∞ for a zero-hop route).
    pub bottleneck_mbps: f64,
    /// Number of links.
    pub hop_count: usize,
    /// Geometric length of the route, km.
    pub distance_km: f64,
}

/// Figures of the whole mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshStats {
    pub nodes: usize,
    pub satellites: usize,
    pub ground_stations: usize,
    /// All links, up or down.
    pub links: usize,
    pub graph: GraphStats,
}

/// Routing snapshot: the CSR plus the map between graph handles and snapshot indices.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub csr: Csr,
    /// Graph node of each snapshot index.
    pub nodes: Vec<NodeIndex>,
    /// Snapshot index of each graph node slot (`routing::NONE` when vacant).
    pub index_of: Vec<u32>,
}

/// A Walker shell registered in the mesh (for its +Grid links at each time step).
#[derive(Debug, Clone)]
pub(crate) struct Shell {
    pub grid_pairs: Vec<(NodeIndex, NodeIndex)>,
    pub bandwidth_mbps: f64,
}

/// The mesh: nodes, links, moving parts and a cached routing snapshot.
#[derive(Clone, Default)]
pub struct Mesh {
    pub(crate) graph: StableGraph<Node, Link, Undirected>,
    pub(crate) ids: HashMap<String, NodeIndex>,
    pub(crate) shells: Vec<Shell>,
    pub(crate) range_rule: RangeRule,
    pub(crate) time_ms: Option<f64>,
    snapshot: OnceLock<Arc<Snapshot>>,
}

/// Checks a bandwidth: finite and > 0.
pub fn check_bandwidth(what: &str, b: f64) -> Result<()> {
    if b.is_nan() || b <= 0.0 || b.is_infinite() {
        return Err(Error::new(
            Code::InvalidWeight,
            format!("{what} must be a finite number > 0 Mbps, got {b}"),
        ));
    }
    Ok(())
}

/// Checks a latency: ≥ 0, not NaN; +∞ is allowed and means "down".
pub fn check_latency(what: &str, l: f64) -> Result<()> {
    if l.is_nan() || l < 0.0 {
        return Err(Error::new(
            Code::InvalidWeight,
            format!("{what} must be ≥ 0 ms (+Infinity for a link that is down), got {l}"),
        ));
    }
    Ok(())
}

/// One-way light time over a distance, ms.
pub fn light_ms(distance_km: f64) -> f64 {
    distance_km / geo::SPEED_OF_LIGHT_KM_S * 1000.0
}

impl Mesh {
    /// An empty mesh.
    pub fn new() -> Mesh {
        Mesh::default()
    }

    pub(crate) fn invalidate(&mut self) {
        self.snapshot = OnceLock::new();
    }

    /// Graph handle of an id, or `ERR_UNKNOWN_NODE` naming the argument.
    pub fn index(&self, what: &str, id: &str) -> Result<NodeIndex> {
        self.ids.get(id).copied().ok_or_else(|| {
            Error::new(
                Code::UnknownNode,
                format!("{what}: no node with id '{id}' in the mesh"),
            )
        })
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// True when a node with this id exists.
    pub fn has_node(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// The node of an id.
    pub fn node(&self, id: &str) -> Result<&Node> {
        Ok(&self.graph[self.index("nodeId", id)?])
    }

    /// Node ids in graph order (the order of next-hop tables and distance arrays).
    pub fn node_ids(&self) -> Vec<String> {
        self.snapshot()
            .nodes
            .iter()
            .map(|&n| self.graph[n].id.clone())
            .collect()
    }

    /// Time of the last topology update (Unix ms), if any.
    pub fn time_ms(&self) -> Option<f64> {
        self.time_ms
    }

    /// Adds a node.
    ///
    /// # Errors
    /// `ERR_INVALID_ARG` for an empty id, `ERR_DUPLICATE_NODE` for an id already present.
    pub fn add_node(&mut self, node: Node) -> Result<NodeIndex> {
        if node.id.is_empty() {
            return Err(Error::invalid_arg("nodeId must be a non-empty string"));
        }
        if self.ids.contains_key(&node.id) {
            return Err(Error::new(
                Code::DuplicateNode,
                format!("nodeId '{}' is already in the mesh", node.id),
            ));
        }
        if !node.ecef.iter().all(|x| x.is_finite()) {
            return Err(Error::invalid_arg(format!(
                "position of '{}' is not finite",
                node.id
            )));
        }
        let id = node.id.clone();
        let ix = self.graph.add_node(node);
        self.ids.insert(id, ix);
        self.invalidate();
        Ok(ix)
    }

    /// Adds a node at a fixed geodetic position.
    pub fn add_fixed(&mut self, id: &str, kind: NodeKind, pos: Geodetic) -> Result<NodeIndex> {
        self.add_node(Node {
            id: id.to_string(),
            kind,
            ecef: pos.to_ecef(),
            orbit: None,
            isl: IslMode::None,
            ground: None,
        })
    }

    /// Adds an orbiting satellite; it is placed at the mesh's current time (or the
    /// orbit's position at Unix 0 until the first `update_topology`).
    pub fn add_satellite(
        &mut self,
        id: &str,
        orbit: Arc<dyn OrbitSource>,
        isl: IslMode,
    ) -> Result<NodeIndex> {
        let t = self.time_ms.unwrap_or(0.0);
        let ecef = orbit.position_ecef(t)?;
        self.add_node(Node {
            id: id.to_string(),
            kind: NodeKind::Satellite,
            ecef,
            orbit: Some(orbit),
            isl,
            ground: None,
        })
    }

    /// Adds a ground station that is linked to visible satellites at every time step.
    pub fn add_ground_station(
        &mut self,
        id: &str,
        pos: Geodetic,
        params: GroundParams,
    ) -> Result<NodeIndex> {
        params.validate()?;
        self.add_node(Node {
            id: id.to_string(),
            kind: NodeKind::Ground,
            ecef: pos.to_ecef(),
            orbit: None,
            isl: IslMode::None,
            ground: Some(params),
        })
    }

    /// Removes a node and its links.
    pub fn remove_node(&mut self, id: &str) -> Result<()> {
        let ix = self.index("nodeId", id)?;
        self.graph.remove_node(ix);
        self.ids.remove(id);
        // StableGraph reuses vacant slots: forget the node in grid patterns.
        for s in &mut self.shells {
            s.grid_pairs.retain(|&(a, b)| a != ix && b != ix);
        }
        self.invalidate();
        Ok(())
    }

    fn pair(&self, a: &str, b: &str) -> Result<(NodeIndex, NodeIndex)> {
        let ia = self.index("a", a)?;
        let ib = self.index("b", b)?;
        Ok((ia, ib))
    }

    /// Adds a link. `latency_ms = None` derives it from the distance at the speed of
    /// light (and keeps following the nodes as they move).
    ///
    /// # Errors
    /// `ERR_UNKNOWN_NODE`; `ERR_INVALID_ARG` for a self-link or a link that already
    /// exists; `ERR_INVALID_WEIGHT` for bandwidth ≤ 0 or non-finite, latency < 0 or NaN.
    pub fn add_link(
        &mut self,
        a: &str,
        b: &str,
        bandwidth_mbps: f64,
        latency_ms: Option<f64>,
    ) -> Result<()> {
        let (ia, ib) = self.pair(a, b)?;
        if ia == ib {
            return Err(Error::invalid_arg(format!(
                "self-link '{a}'–'{b}' is not allowed (a and b must differ)"
            )));
        }
        check_bandwidth("bandwidthMbps", bandwidth_mbps)?;
        if let Some(l) = latency_ms {
            check_latency("latencyMs", l)?;
        }
        if self.graph.find_edge(ia, ib).is_some() {
            return Err(Error::invalid_arg(format!(
                "a link '{a}'–'{b}' already exists (use updateLink)"
            )));
        }
        let lat = latency_ms
            .unwrap_or_else(|| light_ms(geo::distance(self.graph[ia].ecef, self.graph[ib].ecef)));
        self.graph.add_edge(
            ia,
            ib,
            Link {
                bandwidth_mbps,
                latency_ms: lat,
                auto_latency: latency_ms.is_none(),
                up: true,
                origin: LinkOrigin::Manual,
            },
        );
        self.invalidate();
        Ok(())
    }

    fn edge(&self, a: &str, b: &str) -> Result<EdgeIndex> {
        let (ia, ib) = self.pair(a, b)?;
        self.graph
            .find_edge(ia, ib)
            .ok_or_else(|| Error::invalid_arg(format!("no link between '{a}' and '{b}'")))
    }

    /// Changes a link's bandwidth and/or latency (`Some(None)` latency: derive from geometry).
    pub fn update_link(
        &mut self,
        a: &str,
        b: &str,
        bandwidth_mbps: Option<f64>,
        latency_ms: Option<Option<f64>>,
    ) -> Result<()> {
        let e = self.edge(a, b)?;
        if let Some(bw) = bandwidth_mbps {
            check_bandwidth("bandwidthMbps", bw)?;
        }
        if let Some(Some(l)) = latency_ms {
            check_latency("latencyMs", l)?;
        }
        let (ia, ib) = self.graph.edge_endpoints(e).unwrap();
        let d = geo::distance(self.graph[ia].ecef, self.graph[ib].ecef);
        let link = &mut self.graph[e];
        if let Some(bw) = bandwidth_mbps {
            link.bandwidth_mbps = bw;
        }
        match latency_ms {
            Some(Some(l)) => {
                link.latency_ms = l;
                link.auto_latency = false;
            }
            Some(None) => {
                link.latency_ms = light_ms(d);
                link.auto_latency = true;
            }
            None => {}
        }
        self.invalidate();
        Ok(())
    }

    /// Removes a link; `Ok(false)` when there was none.
    pub fn remove_link(&mut self, a: &str, b: &str) -> Result<bool> {
        let (ia, ib) = self.pair(a, b)?;
        match self.graph.find_edge(ia, ib) {
            Some(e) => {
                self.graph.remove_edge(e);
                self.invalidate();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Marks a link up or down without removing it.
    pub fn set_link_up(&mut self, a: &str, b: &str, up: bool) -> Result<()> {
        let e = self.edge(a, b)?;
        if self.graph[e].up != up {
            self.graph[e].up = up;
            self.invalidate();
        }
        Ok(())
    }

    fn link_info(&self, e: EdgeIndex) -> LinkInfo {
        let (ia, ib) = self.graph.edge_endpoints(e).unwrap();
        LinkInfo {
            a: self.graph[ia].id.clone(),
            b: self.graph[ib].id.clone(),
            link: self.graph[e],
            distance_km: geo::distance(self.graph[ia].ecef, self.graph[ib].ecef),
        }
    }

    /// The link between two nodes, if any.
    pub fn link(&self, a: &str, b: &str) -> Result<Option<LinkInfo>> {
        let (ia, ib) = self.pair(a, b)?;
        Ok(self.graph.find_edge(ia, ib).map(|e| self.link_info(e)))
    }

    /// Every link (up or down).
    pub fn links(&self) -> Vec<LinkInfo> {
        self.graph
            .edge_indices()
            .map(|e| self.link_info(e))
            .collect()
    }

    /// Neighbours of a node over links that are up.
    pub fn neighbors(&self, id: &str) -> Result<Vec<String>> {
        let ix = self.index("nodeId", id)?;
        Ok(self
            .graph
            .edges(ix)
            .filter(|e| e.weight().usable())
            .map(|e| self.graph[e.target()].id.clone())
            .collect())
    }

    /// Number of links (up or down).
    pub fn link_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The routing snapshot (built on first use after a change, then shared).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .get_or_init(|| {
                let nodes: Vec<NodeIndex> = self.graph.node_indices().collect();
                let mut index_of = vec![routing::NONE; self.graph.node_bound()];
                for (i, n) in nodes.iter().enumerate() {
                    index_of[n.index()] = i as u32;
                }
                let links: Vec<(u32, u32, f64, f64)> = self
                    .graph
                    .edge_references()
                    .filter(|e| e.weight().usable())
                    .map(|e| {
                        let w = e.weight();
                        (
                            index_of[e.source().index()],
                            index_of[e.target().index()],
                            w.latency_ms,
                            w.bandwidth_mbps,
                        )
                    })
                    .collect();
                let mut csr = Csr::from_links(nodes.len(), &links);
                if self.graph.node_weights().any(|n| !n.relay()) {
                    csr.transit = nodes.iter().map(|&n| self.graph[n].relay()).collect();
                }
                csr.set_positions(nodes.iter().map(|&n| self.graph[n].ecef).collect());
                Arc::new(Snapshot {
                    csr,
                    nodes,
                    index_of,
                })
            })
            .clone()
    }

    fn snap_index(&self, snap: &Snapshot, what: &str, id: &str) -> Result<u32> {
        Ok(snap.index_of[self.index(what, id)?.index()])
    }

    /// Converts a snapshot path into a route of ids.
    pub fn to_route(&self, snap: &Snapshot, p: &Path) -> Route {
        let hops: Vec<String> = p
            .nodes
            .iter()
            .map(|&i| self.graph[snap.nodes[i as usize]].id.clone())
            .collect();
        let distance_km = p
            .nodes
            .windows(2)
            .map(|w| {
                geo::distance(
                    self.graph[snap.nodes[w[0] as usize]].ecef,
                    self.graph[snap.nodes[w[1] as usize]].ecef,
                )
            })
            .sum();
        Route {
            hops,
            total_latency_ms: p.latency_ms,
            bottleneck_mbps: p.bottleneck_mbps,
            hop_count: p.hop_count(),
            distance_km,
        }
    }

    /// Best route from `a` to `b`, `None` when `b` is unreachable.
    pub fn find_route(&self, a: &str, b: &str, metric: Metric) -> Result<Option<Route>> {
        let snap = self.snapshot();
        let s = self.snap_index(&snap, "source", a)?;
        let t = self.snap_index(&snap, "destination", b)?;
        Ok(routing::route(&snap.csr, s, t, metric).map(|p| self.to_route(&snap, &p)))
    }

    /// Up to `k` loop-free alternatives in order (Yen). `Bandwidth` is not additive and
    /// is refused with `ERR_INVALID_ARG`.
    pub fn k_shortest_routes(
        &self,
        a: &str,
        b: &str,
        k: usize,
        metric: Metric,
    ) -> Result<Vec<Route>> {
        if metric == Metric::Bandwidth {
            return Err(Error::invalid_arg(
                "metric 'bandwidth' is not additive: k-shortest routes take 'latency' or 'hops'",
            ));
        }
        let snap = self.snapshot();
        let s = self.snap_index(&snap, "source", a)?;
        let t = self.snap_index(&snap, "destination", b)?;
        Ok(routing::k_shortest(&snap.csr, s, t, k, metric)
            .iter()
            .map(|p| self.to_route(&snap, p))
            .collect())
    }

    /// Metric value from `a` to every node, in `node_ids()` order: latency ms or hop
    /// count (+∞ when unreachable), or bottleneck Mbps (0 when unreachable, +∞ for `a`).
    pub fn distances_from(&self, a: &str, metric: Metric) -> Result<Vec<f64>> {
        let snap = self.snapshot();
        let s = self.snap_index(&snap, "source", a)?;
        let tree = routing::search(&snap.csr, s, None, metric, &routing::Filter::default());
        Ok(tree.label.iter().map(|l| l.value(metric)).collect())
    }

    /// The best route from `a` to every other reachable node, in `node_ids()` order.
    pub fn routes_from(&self, a: &str, metric: Metric) -> Result<Vec<Route>> {
        let snap = self.snapshot();
        let s = self.snap_index(&snap, "source", a)?;
        let tree = routing::search(&snap.csr, s, None, metric, &routing::Filter::default());
        Ok((0..snap.csr.len() as u32)
            .filter(|&t| t != s)
            .filter_map(|t| routing::path_to(&snap.csr, &tree, s, t))
            .map(|p| self.to_route(&snap, &p))
            .collect())
    }

    /// All-pairs next hops over the current snapshot (parallel).
    pub fn next_hops(&self, metric: Metric) -> (Arc<Snapshot>, NextHops) {
        let snap = self.snapshot();
        let t = routing::all_pairs(&snap.csr, metric);
        (snap, t)
    }

    /// Whole-mesh figures.
    pub fn stats(&self) -> MeshStats {
        let snap = self.snapshot();
        let count = |k: NodeKind| self.graph.node_weights().filter(|n| n.kind == k).count();
        MeshStats {
            nodes: self.graph.node_count(),
            satellites: count(NodeKind::Satellite),
            ground_stations: count(NodeKind::Ground),
            links: self.graph.edge_count(),
            graph: routing::stats(&snap.csr),
        }
    }
}

#[cfg(test)]
mod tests;
