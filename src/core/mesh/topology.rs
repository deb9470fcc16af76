//! Time steps of a moving mesh.
//!
//! `update_topology(t)` places every orbiting satellite at `t`, drops the links the
//! previous step made, and makes them again:
//!
//! - +Grid links of Walker shells (fixed pairs; latency from the current distance; a
//!   pair whose line of sight is blocked is kept but marked down);
//! - range links between satellites in `IslMode::Range`: distance ≤ `max_range_km` and
//!   the segment between them clears the Earth's sphere of radius 6378.137 km (WGS-84
//!   equatorial, the conservative choice) plus `grazing_margin_km` (default 80 km: the
//!   beam must stay above the dense atmosphere, as in Hypatia and StarPerf);
//! - ground links from each ground station to the orbiting satellites it sees at or
//!   above its elevation mask (WGS-84 topocentric elevation).
//!
//! Candidate pairs come from a uniform spatial grid (cell hashing) whose cell edge is
//! the search radius, so each satellite looks at 27 cells instead of all satellites:
//! O(n · k) per step for k neighbours in range, not O(n²).
//!
//! Links added by hand stay; those whose latency was derived from geometry follow the
//! nodes.

use std::collections::HashMap;

use petgraph::stable_graph::NodeIndex;
use rayon::prelude::*;

use crate::core::error::{Error, Result};
use crate::core::geo::{self, Observer, Vec3};

use super::routing::{self, Metric};
use super::{check_bandwidth, light_ms, IslMode, Link, LinkOrigin, Mesh};

/// How satellites in `IslMode::Range` are linked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeRule {
    /// Longest link, km. Default 5,000 km (optical terminals).
    pub max_range_km: f64,
    /// Lowest altitude the link's straight segment may reach, km above the WGS-84
    /// equatorial radius. Default 80 km.
    pub grazing_margin_km: f64,
    /// Bandwidth of each link, Mbps. Default 10,000.
    pub bandwidth_mbps: f64,
    /// At most this many range links per satellite, nearest first (0 = no limit).
    pub max_links_per_satellite: usize,
}

impl Default for RangeRule {
    fn default() -> Self {
        RangeRule {
            max_range_km: 5000.0,
            grazing_margin_km: 80.0,
            bandwidth_mbps: 10_000.0,
            max_links_per_satellite: 0,
        }
    }
}

impl RangeRule {
    /// Checks every field, naming it on failure.
    pub fn validate(&self) -> Result<()> {
        if !(self.max_range_km.is_finite() && self.max_range_km > 0.0) {
            return Err(Error::invalid_arg(format!(
                "maxRangeKm must be a finite number > 0, got {}",
                self.max_range_km
            )));
        }
        if !(self.grazing_margin_km.is_finite() && self.grazing_margin_km >= 0.0) {
            return Err(Error::invalid_arg(format!(
                "grazingMarginKm must be a finite number ≥ 0, got {}",
                self.grazing_margin_km
            )));
        }
        check_bandwidth("bandwidthMbps", self.bandwidth_mbps)
    }
}

/// How a ground station is linked at each time step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundParams {
    /// Elevation mask, degrees in [0, 90). Default 25° (Starlink user terminals).
    pub min_elevation_deg: f64,
    /// Bandwidth of each ground–satellite link, Mbps. Default 1,000.
    pub bandwidth_mbps: f64,
    /// At most this many links, highest elevation first (0 = every visible satellite).
    pub max_links: usize,
    /// May routes pass through this station (ground relay / bent pipe)? Default false:
    /// a station is only a route's source or destination.
    pub relay: bool,
}

impl Default for GroundParams {
    fn default() -> Self {
        GroundParams {
            min_elevation_deg: 25.0,
            bandwidth_mbps: 1000.0,
            max_links: 0,
            relay: false,
        }
    }
}

impl GroundParams {
    /// Checks every field, naming it on failure.
    pub fn validate(&self) -> Result<()> {
        if !(self.min_elevation_deg.is_finite() && (0.0..90.0).contains(&self.min_elevation_deg)) {
            return Err(Error::invalid_arg(format!(
                "minElevationDeg must be in [0, 90), got {}",
                self.min_elevation_deg
            )));
        }
        check_bandwidth("bandwidthMbps", self.bandwidth_mbps)
    }
}

/// A uniform grid over Earth-fixed space: cell → points in it.
struct CellGrid {
    cell: f64,
    map: HashMap<(i32, i32, i32), Vec<u32>>,
}

impl CellGrid {
    fn key(cell: f64, p: Vec3) -> (i32, i32, i32) {
        (
            (p[0] / cell).floor() as i32,
            (p[1] / cell).floor() as i32,
            (p[2] / cell).floor() as i32,
        )
    }

    fn new(cell: f64, points: &[Vec3]) -> CellGrid {
        let mut map: HashMap<(i32, i32, i32), Vec<u32>> = HashMap::new();
        for (i, &p) in points.iter().enumerate() {
            map.entry(Self::key(cell, p)).or_default().push(i as u32);
        }
        CellGrid { cell, map }
    }

    /// Calls `f` for every point in the cells that can hold a point within `radius` of `p`.
    fn near(&self, p: Vec3, radius: f64, mut f: impl FnMut(u32)) {
        let r = (radius / self.cell).ceil() as i32;
        let (x, y, z) = Self::key(self.cell, p);
        for dx in -r..=r {
            for dy in -r..=r {
                for dz in -r..=r {
                    if let Some(v) = self.map.get(&(x + dx, y + dy, z + dz)) {
                        v.iter().for_each(|&i| f(i));
                    }
                }
            }
        }
    }
}

/// Longest slant range at which a satellite at radius `r_sat` is seen from radius
/// `r_gs` at elevation `el_deg` or more (spherical geometry), km.
pub fn max_slant_range_km(r_gs: f64, r_sat: f64, el_deg: f64) -> f64 {
    let s = el_deg.to_radians().sin();
    let disc = r_gs * r_gs * s * s + r_sat * r_sat - r_gs * r_gs;
    (-r_gs * s + disc.max(0.0).sqrt()).max(0.0)
}

/// What a time step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopologyUpdate {
    pub isl_links: usize,
    pub ground_links: usize,
}

/// A route sampled over time between two endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSeries {
    pub times_ms: Vec<f64>,
    /// Route latency at each step, ms (+∞ when there is no route).
    pub latency_ms: Vec<f64>,
    /// Links on the route at each step (0 when there is none).
    pub hop_count: Vec<u32>,
    /// The first step and every step where the path differs from the step before.
    pub changes: Vec<SeriesChange>,
}

/// A path change in a route series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesChange {
    pub index: usize,
    pub time_ms: f64,
    /// The new path, or `None` when the endpoints became disconnected.
    pub hops: Option<Vec<String>>,
    pub total_latency_ms: f64,
}

/// Most samples one series may ask for.
pub const MAX_SERIES_STEPS: usize = 10_000_000;

impl Mesh {
    /// Sets the range rule (used by satellites in `IslMode::Range` from the next step).
    pub fn set_range_rule(&mut self, rule: RangeRule) -> Result<()> {
        rule.validate()?;
        self.range_rule = rule;
        if let Some(t) = self.time_ms {
            self.update_topology(t)?;
        }
        Ok(())
    }

    /// The range rule in force.
    pub fn range_rule(&self) -> RangeRule {
        self.range_rule
    }

    /// Moves the mesh to `t_ms` (Unix ms) and rebuilds every automatic link. The mesh is
    /// unchanged when an orbit fails to propagate.
    pub fn update_topology(&mut self, t_ms: f64) -> Result<TopologyUpdate> {
        if !t_ms.is_finite() {
            return Err(Error::invalid_arg(format!(
                "time must be a valid date, got {t_ms}"
            )));
        }
        // 1. Positions (in parallel; all-or-nothing).
        let movers: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&n| self.graph[n].orbit.is_some())
            .collect();
        let positions: Vec<Result<Vec3>> = movers
            .par_iter()
            .map(|&n| {
                let node = &self.graph[n];
                node.orbit
                    .as_ref()
                    .unwrap()
                    .position_ecef(t_ms)
                    .map_err(|e| Error::new(e.code, format!("node '{}': {}", node.id, e.message)))
            })
            .collect();
        let mut pos = Vec::with_capacity(positions.len());
        for p in positions {
            pos.push(p?);
        }
        for (&n, &p) in movers.iter().zip(&pos) {
            self.graph[n].ecef = p;
        }
        // 2. Drop the links of the previous step; re-derive hand-made geometric latencies.
        self.graph
            .retain_edges(|g, e| g[e].origin == LinkOrigin::Manual);
        let manual: Vec<_> = self
            .graph
            .edge_indices()
            .filter(|&e| self.graph[e].auto_latency)
            .collect();
        for e in manual {
            let (a, b) = self.graph.edge_endpoints(e).unwrap();
            let d = geo::distance(self.graph[a].ecef, self.graph[b].ecef);
            self.graph[e].latency_ms = light_ms(d);
        }
        let clear_r = geo::WGS84_A_KM + self.range_rule.grazing_margin_km;
        let mut out = TopologyUpdate::default();
        // 3. +Grid links.
        let shells = std::mem::take(&mut self.shells);
        for shell in &shells {
            for &(a, b) in &shell.grid_pairs {
                if self.graph.find_edge(a, b).is_some() {
                    continue;
                }
                let (pa, pb) = (self.graph[a].ecef, self.graph[b].ecef);
                let link = Link {
                    bandwidth_mbps: shell.bandwidth_mbps,
                    latency_ms: light_ms(geo::distance(pa, pb)),
                    auto_latency: true,
                    up: geo::segment_clears_sphere(pa, pb, clear_r),
                    origin: LinkOrigin::Isl,
                };
                self.graph.add_edge(a, b, link);
                out.isl_links += 1;
            }
        }
        self.shells = shells;
        // 4. Range + line-of-sight links.
        out.isl_links += self.make_range_links(clear_r);
        // 5. Ground links.
        out.ground_links = self.make_ground_links(&movers, &pos);
        self.time_ms = Some(t_ms);
        self.invalidate();
        Ok(out)
    }

    fn make_range_links(&mut self, clear_r: f64) -> usize {
        let rule = self.range_rule;
        let sats: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&n| self.graph[n].isl == IslMode::Range)
            .collect();
        if sats.len() < 2 {
            return 0;
        }
        let pts: Vec<Vec3> = sats.iter().map(|&n| self.graph[n].ecef).collect();
        let grid = CellGrid::new(rule.max_range_km, &pts);
        let r2 = rule.max_range_km * rule.max_range_km;
        let mut cand: Vec<(f64, u32, u32)> = (0..pts.len())
            .into_par_iter()
            .flat_map_iter(|i| {
                let mut v = Vec::new();
                let p = pts[i];
                grid.near(p, rule.max_range_km, |j| {
                    if j as usize > i {
                        let q = pts[j as usize];
                        let d = geo::sub(p, q);
                        let dd = geo::dot(d, d);
                        if dd <= r2 && geo::segment_clears_sphere(p, q, clear_r) {
                            v.push((dd.sqrt(), i as u32, j));
                        }
                    }
                });
                v
            })
            .collect();
        if rule.max_links_per_satellite > 0 {
            // Nearest first, each satellite up to its terminal count (deterministic order).
            cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mut used = vec![0usize; pts.len()];
            cand.retain(|&(_, i, j)| {
                let ok = used[i as usize] < rule.max_links_per_satellite
                    && used[j as usize] < rule.max_links_per_satellite;
                if ok {
                    used[i as usize] += 1;
                    used[j as usize] += 1;
                }
                ok
            });
        }
        let mut n = 0;
        for (d, i, j) in cand {
            let (a, b) = (sats[i as usize], sats[j as usize]);
            if self.graph.find_edge(a, b).is_some() {
                continue;
            }
            let link = Link {
                bandwidth_mbps: rule.bandwidth_mbps,
                latency_ms: light_ms(d),
                auto_latency: true,
                up: true,
                origin: LinkOrigin::Isl,
            };
            self.graph.add_edge(a, b, link);
            n += 1;
        }
        n
    }

    fn make_ground_links(&mut self, movers: &[NodeIndex], pos: &[Vec3]) -> usize {
        let stations: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&n| self.graph[n].ground.is_some())
            .collect();
        if stations.is_empty() || movers.is_empty() {
            return 0;
        }
        let r_sat = pos.iter().map(|&p| geo::norm(p)).fold(0.0, f64::max);
        let reach: Vec<f64> = stations
            .iter()
            .map(|&g| {
                let node = &self.graph[g];
                max_slant_range_km(
                    geo::norm(node.ecef),
                    r_sat,
                    node.ground.unwrap().min_elevation_deg,
                ) + 1.0
            })
            .collect();
        let cell = reach.iter().copied().fold(1.0, f64::max);
        let grid = CellGrid::new(cell, pos);
        let per_station: Vec<Vec<(f64, u32, f64)>> = stations
            .par_iter()
            .zip(reach.par_iter())
            .map(|(&g, &radius)| {
                let node = &self.graph[g];
                let params = node.ground.unwrap();
                let obs = Observer::new(node.geodetic());
                let sin_mask = params.min_elevation_deg.to_radians().sin();
                let mut v = Vec::new();
                grid.near(node.ecef, radius, |j| {
                    let s = obs.sin_elevation(pos[j as usize]);
                    if s >= sin_mask {
                        v.push((s, j, geo::distance(node.ecef, pos[j as usize])));
                    }
                });
                // Highest first; ties by index so the choice is deterministic.
                v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                if params.max_links > 0 {
                    v.truncate(params.max_links);
                }
                v
            })
            .collect();
        let mut n = 0;
        for (&g, links) in stations.iter().zip(per_station) {
            let bw = self.graph[g].ground.unwrap().bandwidth_mbps;
            for (_, j, d) in links {
                let sat = movers[j as usize];
                if sat == g || self.graph.find_edge(g, sat).is_some() {
                    continue;
                }
                let link = Link {
                    bandwidth_mbps: bw,
                    latency_ms: light_ms(d),
                    auto_latency: true,
                    up: true,
                    origin: LinkOrigin::Ground,
                };
                self.graph.add_edge(g, sat, link);
                n += 1;
            }
        }
        n
    }

    /// The route between `a` and `b` at `start_ms`, `start_ms + step_s`, … up to
    /// `start_ms + duration_s` inclusive. Runs on copies of the mesh (in parallel chunks
    /// of time), so the mesh itself is not moved.
    pub fn route_series(
        &self,
        a: &str,
        b: &str,
        start_ms: f64,
        duration_s: f64,
        step_s: f64,
        metric: Metric,
    ) -> Result<RouteSeries> {
        self.route_series_with_progress(a, b, start_ms, duration_s, step_s, metric, None)
    }

    /// `route_series`, calling `progress(fraction done)` about every 1 % of the samples
    /// (from worker threads; the last call is 1.0).
    #[allow(clippy::too_many_arguments)]
    pub fn route_series_with_progress(
        &self,
        a: &str,
        b: &str,
        start_ms: f64,
        duration_s: f64,
        step_s: f64,
        metric: Metric,
        progress: Option<&(dyn Fn(f64) + Sync)>,
    ) -> Result<RouteSeries> {
        let ia = self.index("source", a)?;
        let ib = self.index("destination", b)?;
        if !start_ms.is_finite() {
            return Err(Error::invalid_arg(format!(
                "start must be a valid date, got {start_ms}"
            )));
        }
        if !(duration_s.is_finite() && duration_s >= 0.0) {
            return Err(Error::invalid_arg(format!(
                "durationS must be a finite number ≥ 0, got {duration_s}"
            )));
        }
        if !(step_s.is_finite() && step_s > 0.0) {
            return Err(Error::invalid_arg(format!(
                "stepS must be a finite number > 0, got {step_s}"
            )));
        }
        let steps = (duration_s / step_s + 1e-9).floor() as usize + 1;
        if steps > MAX_SERIES_STEPS {
            return Err(Error::invalid_arg(format!(
                "durationS / stepS gives {steps} steps, more than {MAX_SERIES_STEPS}"
            )));
        }
        let times: Vec<f64> = (0..steps)
            .map(|k| start_ms + k as f64 * step_s * 1000.0)
            .collect();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let every = (steps / 100).max(1);
        let chunk = steps.div_ceil(rayon::current_num_threads().max(1)).max(1);
        type Sample = (f64, u32, Option<Vec<NodeIndex>>);
        let parts: Vec<Result<Vec<Sample>>> = times
            .par_chunks(chunk)
            .map(|ts| {
                let mut m = self.clone();
                let mut out = Vec::with_capacity(ts.len());
                for &t in ts {
                    m.update_topology(t)?;
                    let snap = m.snapshot();
                    let (s, d) = (snap.index_of[ia.index()], snap.index_of[ib.index()]);
                    match routing::route(&snap.csr, s, d, metric) {
                        Some(p) => out.push((
                            p.latency_ms,
                            p.hop_count() as u32,
                            Some(p.nodes.iter().map(|&i| snap.nodes[i as usize]).collect()),
                        )),
                        None => out.push((f64::INFINITY, 0, None)),
                    }
                    if let Some(p) = progress {
                        let done = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if done.is_multiple_of(every) || done == steps {
                            p(done as f64 / steps as f64);
                        }
                    }
                }
                Ok(out)
            })
            .collect();
        let mut series = RouteSeries {
            times_ms: times.clone(),
            latency_ms: Vec::with_capacity(steps),
            hop_count: Vec::with_capacity(steps),
            changes: Vec::new(),
        };
        let mut prev: Option<Option<Vec<NodeIndex>>> = None;
        let mut k = 0;
        for part in parts {
            for (lat, hops, path) in part? {
                if prev.as_ref() != Some(&path) {
                    series.changes.push(SeriesChange {
                        index: k,
                        time_ms: times[k],
                        hops: path
                            .as_ref()
                            .map(|p| p.iter().map(|&n| self.graph[n].id.clone()).collect()),
                        total_latency_ms: lat,
                    });
                }
                series.latency_ms.push(lat);
                series.hop_count.push(hops);
                prev = Some(path);
                k += 1;
            }
        }
        Ok(series)
    }
}
