//! `SpaceMesh` and `MeshNode`: the JavaScript face of `core::mesh`. Converts and
//! validates arguments, calls the core, maps its errors. No algorithm here.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::position::{position_from_object, Position};
use napi::threadsafe_function::ThreadsafeFunction;

use super::options::{date_ms, Reader};
use super::task::{report_progress, CoreTask};
use super::{invalid_arg, js_err, JsResult};
use crate::core::geo::Geodetic;
use crate::core::mesh::{
    self as core_mesh, GroundParams, IslMode, KeplerElements, KeplerOrbit, Mesh, Metric, NodeKind,
    RangeRule, WalkerConfig, WalkerPattern,
};

// ------------------------------------------------------------------ argument reading

fn to_date(ms: f64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms.round() as i64)
}

fn metric(options: &Option<MeshRouteOptions>) -> JsResult<Metric> {
    match options.as_ref().and_then(|o| o.metric.as_deref()) {
        None => Ok(Metric::Latency),
        Some(s) => Metric::parse(s).ok_or_else(|| {
            invalid_arg(format!(
                "options.metric must be 'latency', 'hops' or 'bandwidth', got '{s}'"
            ))
        }),
    }
}

// ------------------------------------------------------------------ MeshNode

/// Options of `new MeshNode({...})`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct MeshNodeOptions {
    /// Unique id of the node in its mesh.
    pub node_id: String,
    /// Where the node is: a `Position`, `@rotastellar/sdk`'s `Position`, or any
    /// `{ latitude, longitude, altitudeKm }`.
    pub position: super::position::PositionLike,
    /// What the node is. @default 'satellite'
    #[napi(ts_type = "'satellite' | 'ground' | 'other'")]
    pub node_type: Option<String>,
}

/// A node of a `SpaceMesh`: an id and a fixed position.
#[napi(js_name = "MeshNode")]
pub struct JsMeshNode {
    id: String,
    geodetic: Geodetic,
    kind: NodeKind,
}

#[napi]
impl JsMeshNode {
    /// Creates a node; throws ERR_INVALID_ARG for an empty id, a bad position or type.
    #[napi(constructor, catch_unwind, ts_args_type = "options: MeshNodeOptions")]
    pub fn new(options: Object) -> napi::Result<Self, String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let id = r
            .string("nodeId")?
            .ok_or_else(|| invalid_arg("options.nodeId is required"))?;
        if id.is_empty() {
            return Err(invalid_arg("options.nodeId must be a non-empty string"));
        }
        let pos = r
            .object("position")?
            .ok_or_else(|| invalid_arg("options.position is required"))?;
        let geodetic = position_from_object(&pos, "options.position")?;
        let kind = match r.string("nodeType")? {
            None => NodeKind::Satellite,
            Some(s) => NodeKind::parse(&s).ok_or_else(|| {
                invalid_arg(format!(
                    "options.nodeType must be 'satellite', 'ground' or 'other', got '{s}'"
                ))
            })?,
        };
        Ok(JsMeshNode { id, geodetic, kind })
    }

    /// The node's id.
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.id.clone()
    }

    /// The node's position (for a moving satellite: at the mesh's current time).
    #[napi(getter)]
    pub fn position(&self) -> Position {
        Position {
            latitude: self.geodetic.lat_deg,
            longitude: self.geodetic.lon_deg,
            altitude_km: self.geodetic.alt_km,
        }
    }

    /// What the node is.
    #[napi(getter, ts_return_type = "'satellite' | 'ground' | 'other'")]
    pub fn node_type(&self) -> String {
        self.kind.as_str().to_string()
    }
}

// ------------------------------------------------------------------ result shapes

/// Options of `addLink`.
#[napi(object, object_to_js = false)]
pub struct MeshLinkOptions {
    /// Link capacity, Mbps (> 0, finite).
    pub bandwidth_mbps: Option<f64>,
    /// One-way latency, ms (≥ 0; +Infinity = link down). Left out: the distance between
    /// the two nodes at the speed of light, kept up to date as nodes move.
    pub latency_ms: Option<f64>,
}

/// Options of `updateLink`: only the fields given change.
#[napi(object, object_to_js = false)]
pub struct MeshLinkUpdate {
    /// New capacity, Mbps.
    pub bandwidth_mbps: Option<f64>,
    /// New one-way latency, ms.
    pub latency_ms: Option<f64>,
    /// Derive the latency from the geometry again (ignores `latencyMs`).
    pub geometric_latency: Option<bool>,
}

/// Options of the routing calls.
#[napi(object, object_to_js = false)]
pub struct MeshRouteOptions {
    /// What to optimise: `'latency'` (least total latency, ties by fewer hops),
    /// `'hops'` (fewest links, ties by latency) or `'bandwidth'` (widest path: the
    /// largest bottleneck bandwidth, ties by latency). @default 'latency'
    #[napi(ts_type = "'latency' | 'hops' | 'bandwidth'")]
    pub metric: Option<String>,
}

/// A route through the mesh.
#[napi(object, object_from_js = false)]
pub struct MeshRoute {
    /// Node ids from source to destination, both included.
    pub hops: Vec<String>,
    /// Sum of the links' one-way latencies, ms.
    pub total_latency_ms: f64,
    /// Smallest link bandwidth on the route, Mbps (Infinity for a route from a node to itself).
    pub bottleneck_mbps: f64,
    /// Number of links (`hops.length - 1`).
    pub hop_count: u32,
    /// Geometric length of the route, km.
    pub distance_km: f64,
}

impl From<core_mesh::Route> for MeshRoute {
    fn from(r: core_mesh::Route) -> Self {
        MeshRoute {
            hops: r.hops,
            total_latency_ms: r.total_latency_ms,
            bottleneck_mbps: r.bottleneck_mbps,
            hop_count: r.hop_count as u32,
            distance_km: r.distance_km,
        }
    }
}

/// A link of the mesh.
#[napi(object, object_from_js = false)]
pub struct MeshLink {
    /// One endpoint's id.
    pub a: String,
    /// The other endpoint's id.
    pub b: String,
    /// Capacity, Mbps.
    pub bandwidth_mbps: f64,
    /// One-way latency, ms (Infinity when set down that way).
    pub latency_ms: f64,
    /// False when set down with `setLinkUp(a, b, false)`.
    pub up: bool,
    /// Latency follows the distance at the speed of light.
    pub geometric_latency: bool,
    /// Current distance between the endpoints, km.
    pub distance_km: f64,
    /// `'manual'` (added by hand), `'isl'` or `'ground'` (made by a time step).
    #[napi(ts_type = "'manual' | 'isl' | 'ground'")]
    pub origin: String,
}

impl From<core_mesh::LinkInfo> for MeshLink {
    fn from(l: core_mesh::LinkInfo) -> Self {
        MeshLink {
            a: l.a,
            b: l.b,
            bandwidth_mbps: l.link.bandwidth_mbps,
            latency_ms: l.link.latency_ms,
            up: l.link.up,
            geometric_latency: l.link.auto_latency,
            distance_km: l.distance_km,
            origin: l.link.origin.as_str().to_string(),
        }
    }
}

/// Metric values from one node to every node.
#[napi(object, object_from_js = false)]
pub struct MeshDistances {
    /// Node ids, in the order of `values`.
    pub node_ids: Vec<String>,
    /// Latency (ms) or hop count, Infinity when unreachable; or bottleneck (Mbps), 0 when
    /// unreachable and Infinity for the source itself.
    pub values: Float64Array,
}

/// All-pairs next hops: `nextHop[s * size + t]` is the index (into `nodeIds`) of the
/// neighbour that `s` forwards to for destination `t`; `s` itself on the diagonal;
/// 4294967295 (0xFFFFFFFF) when `t` is unreachable from `s`.
#[napi(object, object_from_js = false)]
pub struct MeshNextHopTable {
    /// Node ids; table indices refer to this order.
    pub node_ids: Vec<String>,
    /// Number of nodes (rows and columns).
    pub size: u32,
    /// Row-major size × size next-hop indices.
    pub next_hop: Uint32Array,
    /// Row-major size × size metric values (as in `distancesFrom`).
    pub values: Float64Array,
}

/// Whole-mesh figures.
#[napi(object, object_from_js = false)]
pub struct MeshStats {
    /// All nodes.
    pub nodes: u32,
    /// Nodes of type 'satellite'.
    pub satellites: u32,
    /// Nodes of type 'ground'.
    pub ground_stations: u32,
    /// All links, up or down.
    pub links: u32,
    /// Links that routes may use.
    pub links_up: u32,
    /// Smallest degree (degrees count links that are up).
    pub min_degree: u32,
    /// Largest degree.
    pub max_degree: u32,
    /// Mean degree.
    pub mean_degree: f64,
    /// Connected components (a lone node is one).
    pub components: u32,
    /// Nodes in the largest component.
    pub largest_component: u32,
    /// Most hops on a fewest-hop route between connected nodes.
    pub diameter_hops: u32,
    /// Largest least latency between connected nodes, ms.
    pub diameter_latency_ms: f64,
}

impl From<core_mesh::MeshStats> for MeshStats {
    fn from(s: core_mesh::MeshStats) -> Self {
        MeshStats {
            nodes: s.nodes as u32,
            satellites: s.satellites as u32,
            ground_stations: s.ground_stations as u32,
            links: s.links as u32,
            links_up: s.graph.links_up as u32,
            min_degree: s.graph.min_degree as u32,
            max_degree: s.graph.max_degree as u32,
            mean_degree: s.graph.mean_degree,
            components: s.graph.components as u32,
            largest_component: s.graph.largest_component as u32,
            diameter_hops: s.graph.diameter_hops as u32,
            diameter_latency_ms: s.graph.diameter_latency_ms,
        }
    }
}

/// What `updateTopology` rebuilt.
#[napi(object, object_from_js = false)]
pub struct MeshTopologyUpdate {
    /// Inter-satellite links made (+Grid and range).
    pub isl_links: u32,
    /// Ground–satellite links made.
    pub ground_links: u32,
}

/// A route sampled over time between two endpoints.
#[napi(object, object_from_js = false)]
pub struct MeshRouteSeries {
    /// Sample times, Unix ms.
    pub times_ms: Float64Array,
    /// Route latency at each sample, ms (Infinity when there is no route).
    pub latency_ms: Float64Array,
    /// Links on the route at each sample (0 when there is no route).
    pub hop_count: Uint32Array,
    /// The first sample and every sample where the path differs from the one before.
    pub changes: Vec<MeshRouteChange>,
}

/// A path change in a route series.
#[napi(object, object_from_js = false)]
pub struct MeshRouteChange {
    /// Sample index.
    pub index: u32,
    /// Sample time.
    pub time: DateTime<Utc>,
    /// The new path, or null when the endpoints are disconnected.
    #[napi(ts_type = "Array<string> | null")]
    pub hops: Either<Vec<String>, Null>,
    /// Its latency, ms (Infinity when disconnected).
    pub total_latency_ms: f64,
}

fn series_to_js(s: core_mesh::RouteSeries) -> MeshRouteSeries {
    MeshRouteSeries {
        changes: s
            .changes
            .into_iter()
            .map(|c| MeshRouteChange {
                index: c.index as u32,
                time: to_date(c.time_ms).unwrap_or_default(),
                hops: match c.hops {
                    Some(h) => Either::A(h),
                    None => Either::B(Null),
                },
                total_latency_ms: c.total_latency_ms,
            })
            .collect(),
        times_ms: Float64Array::new(s.times_ms),
        latency_ms: Float64Array::new(s.latency_ms),
        hop_count: Uint32Array::new(s.hop_count),
    }
}

// ------------------------------------------------------------------ option shapes (TypeScript)
// These describe, for index.d.ts, objects that hold Dates; they are read field by field
// with `Reader` so that an invalid Date is an ERR_INVALID_ARG, never 1970.

/// Options of `addWalkerShell`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct WalkerShellOptions {
    /// `'delta'` (nodes over 360°) or `'star'` (nodes over 180°). @default 'delta'
    #[napi(ts_type = "'delta' | 'star'")]
    pub pattern: Option<String>,
    /// Number of orbital planes P ≥ 1.
    pub planes: u32,
    /// Satellites per plane S ≥ 1.
    pub sats_per_plane: u32,
    /// Walker phasing factor F in [0, P). @default 0
    pub phasing: Option<u32>,
    /// Altitude above the WGS-84 equatorial radius, km.
    pub altitude_km: f64,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// RAAN of plane 0, degrees. @default 0
    pub raan_deg: Option<f64>,
    /// When the elements hold (mean anomalies at this instant). @default the mesh's current time, else 2026-01-01T00:00:00Z
    #[napi(ts_type = "Date")]
    pub epoch: Option<f64>,
    /// Node ids are `${idPrefix}${plane}-${slot}`. @default 'sat-'
    pub id_prefix: Option<String>,
    /// `'grid'` (+Grid: 2 intra-plane + 2 inter-plane neighbours), `'range'` (range and
    /// line of sight, see `setRangeLinks`) or `'none'`. @default 'grid'
    #[napi(ts_type = "'grid' | 'range' | 'none'")]
    pub links: Option<String>,
    /// Bandwidth of +Grid links, Mbps. @default 10000
    pub isl_bandwidth_mbps: Option<f64>,
}

/// Keplerian elements of `addSatellite`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct KeplerElementsOptions {
    /// Semi-major axis, km (or give `altitudeKm` for a circular orbit).
    pub semi_major_axis_km: Option<f64>,
    /// Altitude above the WGS-84 equatorial radius, km: semi-major axis = 6378.137 + altitudeKm.
    pub altitude_km: Option<f64>,
    /// Eccentricity in [0, 1). @default 0
    pub eccentricity: Option<f64>,
    /// Inclination, degrees in [0, 180].
    pub inclination_deg: f64,
    /// Right ascension of the ascending node at epoch, degrees. @default 0
    pub raan_deg: Option<f64>,
    /// Argument of perigee at epoch, degrees. @default 0
    pub arg_perigee_deg: Option<f64>,
    /// Mean anomaly at epoch, degrees. @default 0
    pub mean_anomaly_deg: Option<f64>,
    /// Epoch of the elements.
    #[napi(ts_type = "Date")]
    pub epoch: f64,
}

/// Options of `addSatellite`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct MeshSatelliteOptions {
    /// Unique id of the satellite in the mesh.
    pub node_id: String,
    /// Keplerian elements (two-body + J2 secular drift). Give this or `tle`.
    pub elements: Option<KeplerElementsOptions>,
    /// A TLE (one string, or 2 lines / 3 with a name), propagated with SGP4 as in
    /// `SyncScheduler`. Give this or `elements`. Needs the mesh time to be set first
    /// (`updateTopology`), since SGP4 is only valid near the element set's epoch; a
    /// satellite that has decayed by a time step makes `updateTopology` throw ERR_DECAYED.
    #[napi(ts_type = "string | string[]")]
    pub tle: Option<String>,
    /// How it gets inter-satellite links at each time step. @default 'range'
    #[napi(ts_type = "'range' | 'none'")]
    pub links: Option<String>,
}

/// Options of `addGroundStation`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct MeshGroundStationOptions {
    /// Unique id of the station in the mesh.
    pub node_id: String,
    /// Where the station is (any position-like object).
    pub position: super::position::PositionLike,
    /// Elevation mask, degrees in [0, 90). @default 25
    pub min_elevation_deg: Option<f64>,
    /// Bandwidth of each ground–satellite link, Mbps. @default 1000
    pub bandwidth_mbps: Option<f64>,
    /// Link to at most this many satellites, highest elevation first (0: all visible). @default 0
    pub max_links: Option<u32>,
    /// May routes pass through this station? @default false
    pub relay: Option<bool>,
}

/// Range + line-of-sight link rule for satellites with `links: 'range'`.
#[napi(object)]
pub struct RangeLinkOptions {
    /// Longest link, km. @default 5000
    pub max_range_km: Option<f64>,
    /// Lowest altitude the straight link may pass at, km above the WGS-84 equatorial
    /// radius (atmosphere grazing margin). @default 80
    pub grazing_margin_km: Option<f64>,
    /// Bandwidth of each link, Mbps. @default 10000
    pub bandwidth_mbps: Option<f64>,
    /// Each satellite keeps at most this many links, nearest first (0: no limit). @default 0
    pub max_links_per_satellite: Option<u32>,
}

/// Options of `routeSeries`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct MeshRouteSeriesOptions {
    /// First sample time.
    #[napi(ts_type = "Date")]
    pub start: f64,
    /// Length of the series, seconds (samples at start, start + stepS, … ≤ start + durationS).
    pub duration_s: f64,
    /// Step, seconds. @default 1
    pub step_s: Option<f64>,
    /// Route metric, as in `findRoute`. @default 'latency'
    #[napi(ts_type = "'latency' | 'hops' | 'bandwidth'")]
    pub metric: Option<String>,
}

/// Options of `new SpaceMesh(options?)`.
#[napi(object, object_to_js = false)]
pub struct SpaceMeshOptions {
    /// Rule for range-linked satellites.
    pub range_links: Option<RangeLinkOptions>,
}

fn range_rule(o: &RangeLinkOptions) -> JsResult<RangeRule> {
    let d = RangeRule::default();
    let max_links = o.max_links_per_satellite.unwrap_or(0) as usize;
    let r = RangeRule {
        max_range_km: o.max_range_km.unwrap_or(d.max_range_km),
        grazing_margin_km: o.grazing_margin_km.unwrap_or(d.grazing_margin_km),
        bandwidth_mbps: o.bandwidth_mbps.unwrap_or(d.bandwidth_mbps),
        max_links_per_satellite: max_links,
    };
    r.validate().map_err(js_err)?;
    Ok(r)
}

/// Largest `k` of `kShortestRoutes`.
const MAX_K_ROUTES: u32 = 1000;

/// Default epoch of shells on a mesh with no time yet: 2026-01-01T00:00:00Z.
const DEFAULT_EPOCH_MS: f64 = 1_767_225_600_000.0;

// ------------------------------------------------------------------ SpaceMesh

/// A mesh of satellites and ground stations joined by links, with routing by latency,
/// hop count or bottleneck bandwidth, and constellations that move with time.
///
/// Links are bidirectional. Calls on one mesh are serialised: a synchronous call made
/// while an `…Async` call on the same mesh runs waits for it.
#[napi(js_name = "SpaceMesh")]
pub struct JsSpaceMesh {
    inner: Arc<Mutex<Mesh>>,
}

impl JsSpaceMesh {
    fn mesh(&self) -> MutexGuard<'_, Mesh> {
        // A panic is caught at the boundary; the mesh is still consistent (every core
        // mutation validates first), so a poisoned lock is recovered.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock(m: &Mutex<Mesh>) -> MutexGuard<'_, Mesh> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[napi]
impl JsSpaceMesh {
    /// Creates an empty mesh.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<SpaceMeshOptions>) -> napi::Result<Self, String> {
        let mut mesh = Mesh::new();
        if let Some(r) = options.and_then(|o| o.range_links) {
            mesh.set_range_rule(range_rule(&r)?).map_err(js_err)?;
        }
        Ok(JsSpaceMesh {
            inner: Arc::new(Mutex::new(mesh)),
        })
    }

    /// Adds a node at a fixed position. Throws ERR_DUPLICATE_NODE when the id exists.
    #[napi(catch_unwind)]
    pub fn add_node(&self, node: &JsMeshNode) -> napi::Result<(), String> {
        self.mesh()
            .add_fixed(&node.id, node.kind, node.geodetic)
            .map(|_| ())
            .map_err(js_err)
    }

    /// Removes a node and its links. Throws ERR_UNKNOWN_NODE when absent.
    #[napi(catch_unwind)]
    pub fn remove_node(&self, node_id: String) -> napi::Result<(), String> {
        self.mesh().remove_node(&node_id).map_err(js_err)
    }

    /// True when a node with this id is in the mesh.
    #[napi(catch_unwind)]
    pub fn has_node(&self, node_id: String) -> bool {
        self.mesh().has_node(&node_id)
    }

    /// The node with this id (its position at the mesh's current time).
    #[napi(catch_unwind)]
    pub fn get_node(&self, node_id: String) -> napi::Result<JsMeshNode, String> {
        let m = self.mesh();
        let n = m.node(&node_id).map_err(js_err)?;
        Ok(JsMeshNode {
            id: n.id.clone(),
            geodetic: n.geodetic(),
            kind: n.kind,
        })
    }

    /// Every node id, in the order used by `distancesFrom` and `nextHopTable`.
    #[napi(catch_unwind)]
    pub fn node_ids(&self) -> Vec<String> {
        self.mesh().node_ids()
    }

    /// Number of nodes.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.mesh().node_count() as u32
    }

    /// Adds a bidirectional link. `latencyMs` left out: the distance at the speed of light.
    /// Throws ERR_UNKNOWN_NODE, ERR_INVALID_ARG (self-link, existing link, missing
    /// bandwidth) or ERR_INVALID_WEIGHT (bandwidth ≤ 0 or not finite; latency < 0 or NaN).
    #[napi(
        catch_unwind,
        ts_args_type = "a: string, b: string, options: MeshLinkOptions"
    )]
    pub fn add_link(
        &self,
        a: String,
        b: String,
        options: Option<MeshLinkOptions>,
    ) -> napi::Result<(), String> {
        let options = options
            .ok_or_else(|| invalid_arg("options { bandwidthMbps, latencyMs? } is required"))?;
        let bw = options
            .bandwidth_mbps
            .ok_or_else(|| invalid_arg("options.bandwidthMbps is required"))?;
        self.mesh()
            .add_link(&a, &b, bw, options.latency_ms)
            .map_err(js_err)
    }

    /// Changes a link's bandwidth and/or latency.
    #[napi(catch_unwind)]
    pub fn update_link(
        &self,
        a: String,
        b: String,
        options: MeshLinkUpdate,
    ) -> napi::Result<(), String> {
        let lat = if options.geometric_latency == Some(true) {
            Some(None)
        } else {
            options.latency_ms.map(Some)
        };
        self.mesh()
            .update_link(&a, &b, options.bandwidth_mbps, lat)
            .map_err(js_err)
    }

    /// Removes the link between two nodes; false when there was none.
    #[napi(catch_unwind)]
    pub fn remove_link(&self, a: String, b: String) -> napi::Result<bool, String> {
        self.mesh().remove_link(&a, &b).map_err(js_err)
    }

    /// Sets a link up or down without removing it (a down link is never routed over).
    #[napi(catch_unwind)]
    pub fn set_link_up(&self, a: String, b: String, up: bool) -> napi::Result<(), String> {
        self.mesh().set_link_up(&a, &b, up).map_err(js_err)
    }

    /// The link between two nodes, or null.
    #[napi(catch_unwind)]
    pub fn get_link(&self, a: String, b: String) -> napi::Result<Option<MeshLink>, String> {
        Ok(self
            .mesh()
            .link(&a, &b)
            .map_err(js_err)?
            .map(MeshLink::from))
    }

    /// Every link, up or down.
    #[napi(catch_unwind)]
    pub fn links(&self) -> Vec<MeshLink> {
        self.mesh()
            .links()
            .into_iter()
            .map(MeshLink::from)
            .collect()
    }

    /// Neighbours of a node over links that are up.
    #[napi(catch_unwind)]
    pub fn neighbors(&self, node_id: String) -> napi::Result<Vec<String>, String> {
        self.mesh().neighbors(&node_id).map_err(js_err)
    }

    /// The best route from `source` to `destination`, or **null when none exists** (check
    /// `route === null` when the two may be disconnected). Throws ERR_UNKNOWN_NODE for an
    /// unknown id. The declared type is `MeshRoute` so that the common connected case reads
    /// as in the README (`route.hops`) under `strict`.
    #[napi(catch_unwind, ts_return_type = "MeshRoute")]
    pub fn find_route(
        &self,
        source: String,
        destination: String,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<Option<MeshRoute>, String> {
        let metric = metric(&options)?;
        Ok(self
            .mesh()
            .find_route(&source, &destination, metric)
            .map_err(js_err)?
            .map(MeshRoute::from))
    }

    /// Up to `k` loop-free routes in increasing order of the metric (Yen's algorithm),
    /// all distinct. The metric must be 'latency' or 'hops'.
    #[napi(catch_unwind)]
    pub fn k_shortest_routes(
        &self,
        source: String,
        destination: String,
        k: f64,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<Vec<MeshRoute>, String> {
        // Yen's algorithm costs k shortest-path searches on the main thread: a bound keeps a
        // typo (k = 1e6) from freezing the event loop for minutes.
        if !(k.is_finite() && k >= 0.0 && k.fract() == 0.0 && k <= MAX_K_ROUTES as f64) {
            return Err(invalid_arg(format!(
                "k must be an integer from 0 to {MAX_K_ROUTES}, got {k}"
            )));
        }
        let metric = metric(&options)?;
        let r = self
            .mesh()
            .k_shortest_routes(&source, &destination, k as usize, metric)
            .map_err(js_err)?;
        Ok(r.into_iter().map(MeshRoute::from).collect())
    }

    /// The best route from `source` to every other reachable node.
    #[napi(catch_unwind)]
    pub fn routes_from(
        &self,
        source: String,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<Vec<MeshRoute>, String> {
        let metric = metric(&options)?;
        Ok(self
            .mesh()
            .routes_from(&source, metric)
            .map_err(js_err)?
            .into_iter()
            .map(MeshRoute::from)
            .collect())
    }

    /// `routesFrom` off the main thread.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<MeshRoute>>")]
    pub fn routes_from_async(
        &self,
        source: String,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<AsyncTask<CoreTask<Vec<MeshRoute>>>, String> {
        let metric = metric(&options)?;
        let inner = self.inner.clone();
        Ok(CoreTask::new(move || {
            Ok(lock(&inner)
                .routes_from(&source, metric)?
                .into_iter()
                .map(MeshRoute::from)
                .collect())
        }))
    }

    /// The metric from `source` to every node (Infinity when unreachable).
    #[napi(catch_unwind)]
    pub fn distances_from(
        &self,
        source: String,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<MeshDistances, String> {
        let metric = metric(&options)?;
        let m = self.mesh();
        let values = m.distances_from(&source, metric).map_err(js_err)?;
        Ok(MeshDistances {
            node_ids: m.node_ids(),
            values: Float64Array::new(values),
        })
    }

    /// All-pairs next-hop table (one search per node, in parallel).
    #[napi(catch_unwind)]
    pub fn next_hop_table(
        &self,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<MeshNextHopTable, String> {
        let metric = metric(&options)?;
        let (ids, snap) = {
            let m = self.mesh();
            (m.node_ids(), m.snapshot())
        };
        Ok(next_hop_table(ids, &snap, metric))
    }

    /// `nextHopTable` off the main thread.
    #[napi(catch_unwind, ts_return_type = "Promise<MeshNextHopTable>")]
    pub fn next_hop_table_async(
        &self,
        options: Option<MeshRouteOptions>,
    ) -> napi::Result<AsyncTask<CoreTask<MeshNextHopTable>>, String> {
        let metric = metric(&options)?;
        let inner = self.inner.clone();
        Ok(CoreTask::new(move || {
            let (ids, snap) = {
                let m = lock(&inner);
                (m.node_ids(), m.snapshot())
            };
            Ok(next_hop_table(ids, &snap, metric))
        }))
    }

    /// Node, link, degree, component and diameter figures.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> MeshStats {
        self.mesh().stats().into()
    }

    /// `stats` off the main thread.
    #[napi(catch_unwind, ts_return_type = "Promise<MeshStats>")]
    pub fn stats_async(&self) -> AsyncTask<CoreTask<MeshStats>> {
        let inner = self.inner.clone();
        CoreTask::new(move || {
            let m = lock(&inner).clone();
            Ok(m.stats().into())
        })
    }

    /// Adds a Walker-delta or Walker-star shell and returns the new node ids
    /// (`${idPrefix}${plane}-${slot}`). The mesh is stepped to its current time (for a
    /// mesh with none yet, to the shell's epoch).
    #[napi(catch_unwind, ts_args_type = "options: WalkerShellOptions")]
    pub fn add_walker_shell(&self, options: Object) -> napi::Result<Vec<String>, String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let pattern = match r.string("pattern")?.as_deref() {
            None | Some("delta") => WalkerPattern::Delta,
            Some("star") => WalkerPattern::Star,
            Some(s) => {
                return Err(invalid_arg(format!(
                    "options.pattern must be 'delta' or 'star', got '{s}'"
                )))
            }
        };
        let isl = match r.string("links")?.as_deref() {
            None | Some("grid") => IslMode::Grid,
            Some("range") => IslMode::Range,
            Some("none") => IslMode::None,
            Some(s) => {
                return Err(invalid_arg(format!(
                    "options.links must be 'grid', 'range' or 'none', got '{s}'"
                )))
            }
        };
        // Read every option before locking: a getter on the options object could call
        // back into this mesh.
        let epoch = r.date("epoch")?;
        let mut cfg = WalkerConfig {
            pattern,
            planes: r
                .uint("planes")?
                .ok_or_else(|| invalid_arg("options.planes is required"))?,
            sats_per_plane: r
                .uint("satsPerPlane")?
                .ok_or_else(|| invalid_arg("options.satsPerPlane is required"))?,
            phasing: r.uint("phasing")?.unwrap_or(0),
            altitude_km: r
                .num("altitudeKm")?
                .ok_or_else(|| invalid_arg("options.altitudeKm is required"))?,
            inclination_deg: r
                .num("inclinationDeg")?
                .ok_or_else(|| invalid_arg("options.inclinationDeg is required"))?,
            raan0_deg: r.num("raanDeg")?.unwrap_or(0.0),
            epoch_unix_ms: DEFAULT_EPOCH_MS,
            id_prefix: r.string("idPrefix")?.unwrap_or_else(|| "sat-".into()),
            isl,
            isl_bandwidth_mbps: r.num("islBandwidthMbps")?.unwrap_or(10_000.0),
        };
        let mut m = self.mesh();
        cfg.epoch_unix_ms = epoch.or(m.time_ms()).unwrap_or(DEFAULT_EPOCH_MS);
        m.add_walker_shell(&cfg).map_err(js_err)
    }

    /// Adds a satellite that moves on Keplerian elements (two-body + J2 secular drift),
    /// or on a TLE propagated with SGP4.
    #[napi(catch_unwind, ts_args_type = "options: MeshSatelliteOptions")]
    pub fn add_satellite(&self, options: Object) -> napi::Result<(), String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let id = r
            .string("nodeId")?
            .ok_or_else(|| invalid_arg("options.nodeId is required"))?;
        let isl = match r.string("links")?.as_deref() {
            None | Some("range") => IslMode::Range,
            Some("none") => IslMode::None,
            Some(s) => {
                return Err(invalid_arg(format!(
                    "options.links must be 'range' or 'none', got '{s}'"
                )))
            }
        };
        // TLE entry point: an SGP4 orbit (core::orbit::Sgp4Orbit implements OrbitSource).
        if let Some(tle) = super::sync::read_tle_field(&options, "options")? {
            if r.object("elements")?.is_some() {
                return Err(invalid_arg("options: give elements or tle, not both"));
            }
            let mut m = self.mesh();
            let Some(t) = m.time_ms() else {
                return Err(invalid_arg("options.tle: set the mesh time with updateTopology(time) before adding a TLE satellite"));
            };
            m.add_satellite(&id, Arc::new(tle), isl).map_err(js_err)?;
            m.update_topology(t).map_err(js_err)?;
            return Ok(());
        }
        let el = r
            .object("elements")?
            .ok_or_else(|| invalid_arg("options.elements (or options.tle) is required"))?;
        let e = Reader {
            obj: &el,
            what: "options.elements",
        };
        let a = match (e.num("semiMajorAxisKm")?, e.num("altitudeKm")?) {
            (Some(a), None) => a,
            (None, Some(h)) => crate::core::geo::WGS84_A_KM + h,
            (Some(_), Some(_)) => {
                return Err(invalid_arg(
                    "options.elements: give semiMajorAxisKm or altitudeKm, not both",
                ))
            }
            (None, None) => {
                return Err(invalid_arg(
                    "options.elements.semiMajorAxisKm (or altitudeKm) is required",
                ))
            }
        };
        let elements = KeplerElements {
            semi_major_axis_km: a,
            eccentricity: e.num("eccentricity")?.unwrap_or(0.0),
            inclination_deg: e
                .num("inclinationDeg")?
                .ok_or_else(|| invalid_arg("options.elements.inclinationDeg is required"))?,
            raan_deg: e.num("raanDeg")?.unwrap_or(0.0),
            arg_perigee_deg: e.num("argPerigeeDeg")?.unwrap_or(0.0),
            mean_anomaly_deg: e.num("meanAnomalyDeg")?.unwrap_or(0.0),
            epoch_unix_ms: e
                .date("epoch")?
                .ok_or_else(|| invalid_arg("options.elements.epoch (a Date) is required"))?,
        };
        let orbit = KeplerOrbit::new(elements).map_err(|err| {
            js_err(crate::core::error::Error::new(
                err.code,
                format!("options.elements: {}", err.message),
            ))
        })?;
        let mut m = self.mesh();
        m.add_satellite(&id, Arc::new(orbit), isl).map_err(js_err)?;
        if let Some(t) = m.time_ms() {
            m.update_topology(t).map_err(js_err)?;
        }
        Ok(())
    }

    /// Adds a ground station, linked at every time step to the orbiting satellites it
    /// sees at or above its elevation mask.
    #[napi(catch_unwind, ts_args_type = "options: MeshGroundStationOptions")]
    pub fn add_ground_station(&self, options: Object) -> napi::Result<(), String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let id = r
            .string("nodeId")?
            .ok_or_else(|| invalid_arg("options.nodeId is required"))?;
        let pos = r
            .object("position")?
            .ok_or_else(|| invalid_arg("options.position is required"))?;
        let geodetic = position_from_object(&pos, "options.position")?;
        let d = GroundParams::default();
        let params = GroundParams {
            min_elevation_deg: r.num("minElevationDeg")?.unwrap_or(d.min_elevation_deg),
            bandwidth_mbps: r.num("bandwidthMbps")?.unwrap_or(d.bandwidth_mbps),
            max_links: r.uint("maxLinks")?.unwrap_or(0) as usize,
            relay: r.boolean("relay")?.unwrap_or(false),
        };
        let mut m = self.mesh();
        m.add_ground_station(&id, geodetic, params).map_err(|e| {
            js_err(crate::core::error::Error::new(
                e.code,
                format!("options.{}", e.message),
            ))
        })?;
        if let Some(t) = m.time_ms() {
            m.update_topology(t).map_err(js_err)?;
        }
        Ok(())
    }

    /// Sets the range + line-of-sight rule for satellites linked by `'range'`.
    #[napi(catch_unwind)]
    pub fn set_range_links(&self, options: RangeLinkOptions) -> napi::Result<(), String> {
        let rule = range_rule(&options)?;
        self.mesh().set_range_rule(rule).map_err(js_err)
    }

    /// The range rule in force.
    #[napi(catch_unwind)]
    pub fn get_range_links(&self) -> RangeLinkOptions {
        let r = self.mesh().range_rule();
        RangeLinkOptions {
            max_range_km: Some(r.max_range_km),
            grazing_margin_km: Some(r.grazing_margin_km),
            bandwidth_mbps: Some(r.bandwidth_mbps),
            max_links_per_satellite: Some(r.max_links_per_satellite as u32),
        }
    }

    /// The time of the last topology update, or null.
    #[napi(getter)]
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.mesh().time_ms().and_then(to_date)
    }

    /// Moves every orbiting satellite to `time` and rebuilds the automatic links
    /// (+Grid, range + line of sight, ground by elevation mask).
    #[napi(catch_unwind, ts_args_type = "time: Date")]
    pub fn update_topology(&self, time: Unknown) -> napi::Result<MeshTopologyUpdate, String> {
        let t = date_ms(&time, "time")?;
        let u = self.mesh().update_topology(t).map_err(js_err)?;
        Ok(MeshTopologyUpdate {
            isl_links: u.isl_links as u32,
            ground_links: u.ground_links as u32,
        })
    }

    /// `updateTopology` off the main thread.
    #[napi(
        catch_unwind,
        ts_args_type = "time: Date",
        ts_return_type = "Promise<MeshTopologyUpdate>"
    )]
    pub fn update_topology_async(
        &self,
        time: Unknown,
    ) -> napi::Result<AsyncTask<CoreTask<MeshTopologyUpdate>>, String> {
        let t = date_ms(&time, "time")?;
        let inner = self.inner.clone();
        Ok(CoreTask::new(move || {
            let u = lock(&inner).update_topology(t)?;
            Ok(MeshTopologyUpdate {
                isl_links: u.isl_links as u32,
                ground_links: u.ground_links as u32,
            })
        }))
    }

    /// The route between two nodes at every step of a time window (the mesh itself is
    /// not moved): latency and hop count per sample, and each path change.
    #[napi(
        catch_unwind,
        ts_args_type = "source: string, destination: string, options: MeshRouteSeriesOptions"
    )]
    pub fn route_series(
        &self,
        source: String,
        destination: String,
        options: Object,
    ) -> napi::Result<MeshRouteSeries, String> {
        let (start, dur, step, metric) = series_args(&options)?;
        let m = self.mesh().clone();
        m.route_series(&source, &destination, start, dur, step, metric)
            .map(series_to_js)
            .map_err(js_err)
    }

    /// `routeSeries` off the main thread. `onProgress(fraction)` is called about every
    /// 1 % of the samples, and with 1 at the end (an exception it throws is uncaught).
    #[napi(
        catch_unwind,
        ts_args_type = "source: string, destination: string, options: MeshRouteSeriesOptions, onProgress?: (fraction: number) => void",
        ts_return_type = "Promise<MeshRouteSeries>"
    )]
    pub fn route_series_async(
        &self,
        source: String,
        destination: String,
        options: Object,
        on_progress: Option<ThreadsafeFunction<f64, (), f64, Status, false>>,
    ) -> napi::Result<AsyncTask<CoreTask<MeshRouteSeries>>, String> {
        let (start, dur, step, metric) = series_args(&options)?;
        let inner = self.inner.clone();
        Ok(CoreTask::new(move || {
            let m = lock(&inner).clone();
            let report = |f: f64| {
                if let Some(cb) = &on_progress {
                    report_progress(cb, f);
                }
            };
            let progress: Option<&(dyn Fn(f64) + Sync)> = if on_progress.is_some() {
                Some(&report)
            } else {
                None
            };
            m.route_series_with_progress(&source, &destination, start, dur, step, metric, progress)
                .map(series_to_js)
        }))
    }
}

fn series_args(options: &Object) -> JsResult<(f64, f64, f64, Metric)> {
    let r = Reader {
        obj: options,
        what: "options",
    };
    let start = r
        .date("start")?
        .ok_or_else(|| invalid_arg("options.start (a Date) is required"))?;
    let dur = r
        .num("durationS")?
        .ok_or_else(|| invalid_arg("options.durationS is required"))?;
    let step = r.num("stepS")?.unwrap_or(1.0);
    let metric = metric(&Some(MeshRouteOptions {
        metric: r.string("metric")?,
    }))?;
    Ok((start, dur, step, metric))
}

fn next_hop_table(
    ids: Vec<String>,
    snap: &core_mesh::Snapshot,
    metric: Metric,
) -> MeshNextHopTable {
    let t = core_mesh::routing::all_pairs(&snap.csr, metric);
    MeshNextHopTable {
        size: ids.len() as u32,
        node_ids: ids,
        next_hop: Uint32Array::new(t.next),
        values: Float64Array::new(t.value),
    }
}
