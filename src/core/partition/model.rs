//! The inputs of a partitioning problem: layers, nodes, links and endpoints, validated.

use std::collections::{HashMap, HashSet};

use crate::core::error::{Code, Error, Result};

/// Bytes per megabyte (10^6, like Mbps = 10^6 bit/s).
pub const MB: f64 = 1e6;

/// Default size of the raw input when the profile does not state it, MB.
pub const DEFAULT_INPUT_MB: f64 = 1.0;

/// Largest size, flop count, memory or latency accepted (10³⁰): far beyond any model, and
/// small enough that no sum or product of costs can overflow to Infinity.
pub const MAX_QUANTITY: f64 = 1e30;
/// Smallest non-zero rate accepted: 10⁻⁹ TFLOPS and 10⁻⁹ Mbps, for the same reason.
pub const MIN_RATE: f64 = 1e-9;

/// `v` as JavaScript prints it: `Infinity`, `NaN`, `1e+300` (not 301 digits).
pub(crate) fn js_num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if v != 0.0 && (v.abs() >= 1e21 || v.abs() < 1e-6) {
        let e = format!("{v:e}");
        match e.split_once('e') {
            Some((m, x)) if !x.starts_with('-') => format!("{m}e+{x}"),
            _ => e,
        }
    } else {
        v.to_string()
    }
}

/// Fails with `ERR_NON_FINITE` for NaN/±Inf and `ERR_INVALID_ARG` for a negative value or
/// one above `MAX_QUANTITY`.
pub(crate) fn check_size(what: &str, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::new(
            Code::NonFinite,
            format!("{what} must be a finite number, got {}", js_num(v)),
        ));
    }
    if v < 0.0 {
        return Err(Error::invalid_arg(format!(
            "{what} must be >= 0, got {}",
            js_num(v)
        )));
    }
    if v > MAX_QUANTITY {
        return Err(Error::invalid_arg(format!(
            "{what} must be at most 1e30, got {}",
            js_num(v)
        )));
    }
    Ok(())
}

/// The kind of a node. It chooses the default link to every other kind and which side
/// of the space–ground boundary the node is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A satellite in low Earth orbit (space side).
    Satellite,
    /// A data-relay satellite in geostationary orbit (space side).
    Relay,
    /// A ground station or data centre (ground side).
    Ground,
    /// An edge device on the ground: a user terminal or small site (ground side).
    Edge,
}

impl NodeKind {
    /// Every kind, in table order.
    pub const ALL: [NodeKind; 4] = [
        NodeKind::Satellite,
        NodeKind::Relay,
        NodeKind::Ground,
        NodeKind::Edge,
    ];

    /// Row/column in the default link table.
    pub fn index(self) -> usize {
        match self {
            NodeKind::Satellite => 0,
            NodeKind::Relay => 1,
            NodeKind::Ground => 2,
            NodeKind::Edge => 3,
        }
    }

    /// True for kinds in space (satellite, relay).
    pub fn in_space(self) -> bool {
        matches!(self, NodeKind::Satellite | NodeKind::Relay)
    }

    /// The lower-case name used at the API.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Satellite => "satellite",
            NodeKind::Relay => "relay",
            NodeKind::Ground => "ground",
            NodeKind::Edge => "edge",
        }
    }
}

/// One layer as given by the user; optional fields take the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    pub name: String,
    /// Parameter memory, MB.
    pub params_mb: f64,
    /// Floating-point operations of one forward pass.
    pub flops: f64,
    /// Size of the layer's output (what the next stage receives), MB. Default: the
    /// previous layer's activation (the profile's input size for the first layer).
    pub activation_mb: Option<f64>,
    /// Extra memory beyond the parameters (KV cache, workspace), MB. Default 0.
    pub workspace_mb: Option<f64>,
}

/// A validated layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    pub params_mb: f64,
    pub flops: f64,
    pub activation_mb: f64,
    pub workspace_mb: f64,
}

impl Layer {
    /// Memory the layer takes on its node: parameters + workspace, MB.
    pub fn memory_mb(&self) -> f64 {
        self.params_mb + self.workspace_mb
    }
}

/// A validated model profile: layers in execution order and the size of the raw input.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub layers: Vec<Layer>,
    /// Size of the raw input that the first layer consumes, MB.
    pub input_mb: f64,
}

impl Profile {
    /// Validates layers: at least one, unique names, sizes finite and >= 0.
    pub fn new(
        name: impl Into<String>,
        specs: Vec<LayerSpec>,
        input_mb: Option<f64>,
    ) -> Result<Profile> {
        if specs.is_empty() {
            return Err(Error::invalid_arg("layers must hold at least one layer"));
        }
        let input_mb = input_mb.unwrap_or(DEFAULT_INPUT_MB);
        check_size("inputMb", input_mb)?;
        let mut seen = HashSet::with_capacity(specs.len());
        let mut prev = input_mb;
        let mut layers = Vec::with_capacity(specs.len());
        for (i, s) in specs.into_iter().enumerate() {
            if !seen.insert(s.name.clone()) {
                return Err(Error::invalid_arg(format!(
                    "layers[{i}].name '{}' is used by an earlier layer (names must be unique)",
                    s.name
                )));
            }
            check_size(&format!("layers[{i}].paramsMb"), s.params_mb)?;
            check_size(&format!("layers[{i}].flops"), s.flops)?;
            let activation_mb = s.activation_mb.unwrap_or(prev);
            check_size(&format!("layers[{i}].activationMb"), activation_mb)?;
            let workspace_mb = s.workspace_mb.unwrap_or(0.0);
            check_size(&format!("layers[{i}].workspaceMb"), workspace_mb)?;
            prev = activation_mb;
            layers.push(Layer {
                name: s.name,
                params_mb: s.params_mb,
                flops: s.flops,
                activation_mb,
                workspace_mb,
            });
        }
        Ok(Profile {
            name: name.into(),
            layers,
            input_mb,
        })
    }

    /// Sum of the layers' parameter memory, MB.
    pub fn total_params_mb(&self) -> f64 {
        self.layers.iter().map(|l| l.params_mb).sum()
    }

    /// Sum of the layers' memory (parameters + workspace), MB.
    pub fn total_memory_mb(&self) -> f64 {
        self.layers.iter().map(|l| l.memory_mb()).sum()
    }

    /// Sum of the layers' flops.
    pub fn total_flops(&self) -> f64 {
        self.layers.iter().map(|l| l.flops).sum()
    }

    /// Size of the data crossing boundary `i` (0 = raw input, `i` = output of layer `i-1`), MB.
    pub fn boundary_mb(&self, i: usize) -> f64 {
        if i == 0 {
            self.input_mb
        } else {
            self.layers[i - 1].activation_mb
        }
    }

    /// Decoder-only transformer: `embedding`, then `layer_<i>_attention` and
    /// `layer_<i>_ffn` for each block, then `output` (the peer package's layout).
    ///
    /// Per token, with hidden size h, sequence s, vocabulary V, b bytes per parameter and
    /// a bytes per activation value:
    /// - embedding: V·h parameters, s·h flops (a lookup), output s·h·a bytes;
    /// - attention: 4h² parameters, 8·s·h² + 4·s²·h flops, output s·h·a;
    /// - ffn (4h inner): 8h² parameters, 16·s·h² flops, output s·h·a;
    /// - output head: h·V parameters, 2·s·h·V flops, output s·V·a (the logits);
    /// - input: s token ids of 4 bytes.
    pub fn transformer(spec: &TransformerSpec) -> Result<Profile> {
        let TransformerSpec {
            num_layers,
            hidden_size,
            vocab_size,
            sequence_length,
            bytes_per_param,
            bytes_per_activation,
            ..
        } = *spec;
        for (what, v) in [
            ("numLayers", num_layers),
            ("hiddenSize", hidden_size),
            ("vocabSize", vocab_size),
            ("sequenceLength", sequence_length),
        ] {
            if !(v.is_finite() && v.fract() == 0.0 && (1.0..=1e7).contains(&v)) {
                return Err(Error::invalid_arg(format!(
                    "{what} must be an integer from 1 to 10^7, got {v}"
                )));
            }
        }
        if num_layers > 100_000.0 {
            return Err(Error::invalid_arg(format!(
                "numLayers must be at most 100000, got {num_layers}"
            )));
        }
        for (what, v) in [
            ("bytesPerParam", bytes_per_param),
            ("bytesPerActivation", bytes_per_activation),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 64.0) {
                return Err(Error::invalid_arg(format!(
                    "{what} must be a number in (0, 64], got {v}"
                )));
            }
        }
        let (h, s, v) = (hidden_size, sequence_length, vocab_size);
        let p = |count: f64| count * bytes_per_param / MB;
        let act = |values: f64| values * bytes_per_activation / MB;
        let spec_of = |name: String, params: f64, flops: f64, out: f64| LayerSpec {
            name,
            params_mb: p(params),
            flops,
            activation_mb: Some(act(out)),
            workspace_mb: None,
        };
        let mut layers = Vec::with_capacity(2 * num_layers as usize + 2);
        layers.push(spec_of("embedding".into(), v * h, s * h, s * h));
        for i in 0..num_layers as usize {
            layers.push(spec_of(
                format!("layer_{i}_attention"),
                4.0 * h * h,
                8.0 * s * h * h + 4.0 * s * s * h,
                s * h,
            ));
            layers.push(spec_of(
                format!("layer_{i}_ffn"),
                8.0 * h * h,
                16.0 * s * h * h,
                s * h,
            ));
        }
        layers.push(spec_of("output".into(), h * v, 2.0 * s * h * v, s * v));
        Profile::new(spec.name.clone(), layers, Some(s * 4.0 / MB))
    }
}

/// Options of [`Profile::transformer`].
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerSpec {
    pub name: String,
    pub num_layers: f64,
    pub hidden_size: f64,
    pub vocab_size: f64,
    pub sequence_length: f64,
    pub bytes_per_param: f64,
    pub bytes_per_activation: f64,
}

impl Default for TransformerSpec {
    /// The peer package's defaults: 12 blocks, h = 768, V = 50,000, s = 512, fp32.
    fn default() -> Self {
        TransformerSpec {
            name: "transformer".into(),
            num_layers: 12.0,
            hidden_size: 768.0,
            vocab_size: 50_000.0,
            sequence_length: 512.0,
            bytes_per_param: 4.0,
            bytes_per_activation: 4.0,
        }
    }
}

/// A compute node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    /// Memory available for layers, MB (memoryGb × 1000).
    pub memory_mb: f64,
    /// Sustained compute, TFLOPS (10^12 flop/s).
    pub compute_tflops: f64,
}

impl Node {
    /// Validates: memory finite >= 0, compute finite > 0.
    pub fn new(
        id: impl Into<String>,
        kind: NodeKind,
        memory_gb: f64,
        compute_tflops: f64,
    ) -> Result<Node> {
        let id = id.into();
        check_size(&format!("node '{id}' memoryGb"), memory_gb)?;
        if compute_tflops.is_finite() && compute_tflops < MIN_RATE {
            return Err(Error::invalid_arg(format!(
                "node '{id}' computeTflops must be at least 1e-9, got {}",
                js_num(compute_tflops)
            )));
        }
        check_size(&format!("node '{id}' computeTflops"), compute_tflops)?;
        Ok(Node {
            id,
            kind,
            memory_mb: memory_gb * 1000.0,
            compute_tflops,
        })
    }

    /// Milliseconds to run `flops` on this node.
    pub fn compute_ms(&self, flops: f64) -> f64 {
        flops / (self.compute_tflops * 1e9)
    }
}

/// Memory check shared by the optimizer and `evaluate`: a relative slack of 1e-12
/// absorbs the rounding of summing the same sizes in another order.
pub fn fits(memory_mb: f64, capacity_mb: f64) -> bool {
    memory_mb <= capacity_mb * (1.0 + 1e-12)
}

/// A directed link: propagation latency plus serialization at a bandwidth.
/// Bandwidth 0 means no link: it is never crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub bandwidth_mbps: f64,
    pub latency_ms: f64,
}

impl Link {
    /// Validates: bandwidth >= 0 (may be +Infinity), latency finite >= 0.
    pub fn new(bandwidth_mbps: f64, latency_ms: f64, what: &str) -> Result<Link> {
        if bandwidth_mbps.is_nan()
            || bandwidth_mbps < 0.0
            || (bandwidth_mbps > 0.0 && bandwidth_mbps < MIN_RATE)
        {
            return Err(Error::invalid_arg(format!(
                "{what}.bandwidthMbps must be 0 (no link) or at least 1e-9, got {}",
                js_num(bandwidth_mbps)
            )));
        }
        check_size(&format!("{what}.latencyMs"), latency_ms)?;
        Ok(Link {
            bandwidth_mbps,
            latency_ms,
        })
    }

    /// False for a 0-bandwidth link.
    pub fn usable(&self) -> bool {
        self.bandwidth_mbps > 0.0
    }

    /// Time to push `mb` onto the link (no propagation), ms.
    pub fn serialize_ms(&self, mb: f64) -> f64 {
        if mb == 0.0 || self.bandwidth_mbps.is_infinite() {
            0.0
        } else {
            mb * 8000.0 / self.bandwidth_mbps
        }
    }

    /// Latency + serialization of `mb`, ms.
    pub fn transfer_ms(&self, mb: f64) -> f64 {
        self.latency_ms + self.serialize_ms(mb)
    }
}

const fn l(bandwidth_mbps: f64, latency_ms: f64) -> Link {
    Link {
        bandwidth_mbps,
        latency_ms,
    }
}

/// The default link from kind `row` to kind `col` (order: satellite, relay, ground, edge).
///
/// - satellite↔satellite (ISL, ≈1,000 km): 1,000 Mbps, 3.3 ms;
/// - satellite↔relay and relay↔relay (to geostationary): 1,000 Mbps, 120 ms;
/// - satellite→ground/edge (downlink): 200 Mbps, 1.8 ms (550 km);
/// - ground/edge→satellite (uplink): 100 Mbps, 1.8 ms;
/// - relay→ground/edge: 600 Mbps, 120 ms; ground/edge→relay: 300 Mbps, 120 ms;
/// - ground↔ground: 10,000 Mbps, 5 ms; ground↔edge and edge↔edge: 1,000 Mbps, 5 ms.
pub const DEFAULT_LINKS: [[Link; 4]; 4] = [
    // to:  satellite          relay              ground             edge
    [
        l(1000.0, 3.3),
        l(1000.0, 120.0),
        l(200.0, 1.8),
        l(200.0, 1.8),
    ], // from satellite
    [
        l(1000.0, 120.0),
        l(1000.0, 120.0),
        l(600.0, 120.0),
        l(600.0, 120.0),
    ], // from relay
    [
        l(100.0, 1.8),
        l(300.0, 120.0),
        l(10000.0, 5.0),
        l(1000.0, 5.0),
    ], // from ground
    [
        l(100.0, 1.8),
        l(300.0, 120.0),
        l(1000.0, 5.0),
        l(1000.0, 5.0),
    ], // from edge
];

/// Links between kinds (defaults overridable per ordered pair of kinds) and per ordered
/// pair of nodes (by node index), which win over the kind table.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkModel {
    pub kinds: [[Link; 4]; 4],
    pub pairs: HashMap<(usize, usize), Link>,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            kinds: DEFAULT_LINKS,
            pairs: HashMap::new(),
        }
    }
}

impl LinkModel {
    /// The link from node `a` to node `b` (`a != b`).
    pub fn between(&self, nodes: &[Node], a: usize, b: usize) -> Link {
        match self.pairs.get(&(a, b)) {
            Some(l) => *l,
            None => self.kinds[nodes[a].kind.index()][nodes[b].kind.index()],
        }
    }
}

/// Where the output must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// On this node (index).
    Node(usize),
    /// On any node of this kind: free when the last stage runs on such a node, else one
    /// transfer over the kind link (to a site of that kind, listed or not).
    Kind(NodeKind),
}

/// Where the raw input starts and where the output must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Index of the node holding the raw input (a satellite's sensor by default).
    pub input: usize,
    pub output: Sink,
}

impl Endpoints {
    /// Defaults: input on the first satellite in the list (else the first node); output
    /// on the ground.
    pub fn default_for(nodes: &[Node]) -> Endpoints {
        let input = nodes
            .iter()
            .position(|n| n.kind == NodeKind::Satellite)
            .unwrap_or(0);
        Endpoints {
            input,
            output: Sink::Kind(NodeKind::Ground),
        }
    }
}

/// A validated problem: profile, nodes (unique ids, at least one), links, endpoints.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    pub profile: &'a Profile,
    pub nodes: &'a [Node],
    pub links: &'a LinkModel,
    pub endpoints: Endpoints,
}

impl<'a> Problem<'a> {
    /// Checks node ids are unique (`ERR_DUPLICATE_NODE`), there is at least one node, and
    /// the endpoints and link overrides name existing nodes.
    pub fn new(
        profile: &'a Profile,
        nodes: &'a [Node],
        links: &'a LinkModel,
        endpoints: Endpoints,
    ) -> Result<Problem<'a>> {
        if nodes.is_empty() {
            return Err(Error::invalid_arg("nodes must hold at least one node"));
        }
        let mut seen = HashSet::with_capacity(nodes.len());
        for n in nodes {
            if !seen.insert(n.id.as_str()) {
                return Err(Error::new(
                    Code::DuplicateNode,
                    format!("node id '{}' appears twice in nodes", n.id),
                ));
            }
        }
        let ok = |i: usize| i < nodes.len();
        if !ok(endpoints.input) || matches!(endpoints.output, Sink::Node(i) if !ok(i)) {
            return Err(Error::new(
                Code::UnknownNode,
                "input or output node is not in nodes",
            ));
        }
        if links.pairs.keys().any(|&(a, b)| !ok(a) || !ok(b) || a == b) {
            return Err(Error::invalid_arg(
                "a link override names an unknown node or the same node twice",
            ));
        }
        Ok(Problem {
            profile,
            nodes,
            links,
            endpoints,
        })
    }
}

/// The peer package's ground–orbit round-trip estimate: one uplink and one downlink
/// transfer, two one-way propagation delays (altitude ÷ c) and two processing overheads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundTrip {
    pub orbit_altitude_km: f64,
    pub uplink_mbps: f64,
    pub downlink_mbps: f64,
    pub processing_overhead_ms: f64,
}

impl RoundTrip {
    /// Validates: altitude and overhead finite >= 0, bandwidths finite >= 1e-9.
    pub fn new(
        orbit_altitude_km: f64,
        uplink_mbps: f64,
        downlink_mbps: f64,
        processing_overhead_ms: f64,
    ) -> Result<RoundTrip> {
        check_size("orbitAltitudeKm", orbit_altitude_km)?;
        check_size("processingOverheadMs", processing_overhead_ms)?;
        for (what, v) in [
            ("uplinkBandwidthMbps", uplink_mbps),
            ("downlinkBandwidthMbps", downlink_mbps),
        ] {
            check_size(what, v)?;
            // The same floor as links: no finite transfer can then overflow to Infinity.
            if v < MIN_RATE {
                return Err(Error::invalid_arg(format!(
                    "{what} must be at least 1e-9, got {}",
                    js_num(v)
                )));
            }
        }
        Ok(RoundTrip {
            orbit_altitude_km,
            uplink_mbps,
            downlink_mbps,
            processing_overhead_ms,
        })
    }
    /// One-way propagation delay straight up, ms (c = 299,792.458 km/s).
    pub fn propagation_ms(&self) -> f64 {
        self.orbit_altitude_km / 299_792.458 * 1000.0
    }
    /// Serialization time of `bytes` on the uplink or downlink, ms.
    pub fn transfer_ms(&self, bytes: f64, uplink: bool) -> Result<f64> {
        self.transfer_named("bytes", bytes, uplink)
    }
    fn transfer_named(&self, what: &str, bytes: f64, uplink: bool) -> Result<f64> {
        check_size(what, bytes)?;
        Ok(bytes * 8.0
            / ((if uplink {
                self.uplink_mbps
            } else {
                self.downlink_mbps
            }) * 1e6)
            * 1000.0)
    }
    /// Uplink + downlink transfer + 2 propagation delays + 2 processing overheads, ms.
    pub fn round_trip_ms(&self, uplink_bytes: f64, downlink_bytes: f64) -> Result<f64> {
        Ok(self.transfer_named("uplinkBytes", uplink_bytes, true)?
            + self.transfer_named("downlinkBytes", downlink_bytes, false)?
            + 2.0 * self.propagation_ms()
            + 2.0 * self.processing_overhead_ms)
    }
}
