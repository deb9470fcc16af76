//! JS classes for model partitioning: `NodeType`, `ModelProfile`, `NodeConfig`,
//! `PartitionOptimizer`, `LatencyEstimator`. Converts and validates arguments, calls
//! `core::partition`, maps its errors. No algorithm here.

use std::collections::HashMap;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::arrays::engine_f64;
use super::options::Reader;
use super::task::CoreTask;
use super::{invalid_arg, js_err, JsResult};
use crate::core::error::{Code, Error as CoreError};
use crate::core::partition as core;

/// The kind of a compute node; it picks the default links and the side of the
/// space–ground boundary.
#[napi(string_enum)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum NodeType {
    /// A satellite in low Earth orbit (space side).
    #[napi(value = "satellite")]
    SATELLITE,
    /// A ground station or data centre (ground side).
    #[napi(value = "ground")]
    GROUND,
    /// A geostationary data-relay satellite (space side).
    #[napi(value = "relay")]
    RELAY,
    /// An edge device on the ground (ground side).
    #[napi(value = "edge")]
    EDGE,
}

impl From<NodeType> for core::NodeKind {
    fn from(t: NodeType) -> Self {
        match t {
            NodeType::SATELLITE => core::NodeKind::Satellite,
            NodeType::GROUND => core::NodeKind::Ground,
            NodeType::RELAY => core::NodeKind::Relay,
            NodeType::EDGE => core::NodeKind::Edge,
        }
    }
}

impl From<core::NodeKind> for NodeType {
    fn from(k: core::NodeKind) -> Self {
        match k {
            core::NodeKind::Satellite => NodeType::SATELLITE,
            core::NodeKind::Ground => NodeType::GROUND,
            core::NodeKind::Relay => NodeType::RELAY,
            core::NodeKind::Edge => NodeType::EDGE,
        }
    }
}

/// What `optimize` minimises.
#[napi(string_enum)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum PartitionObjective {
    /// End-to-end latency of one inference (ties: fewer space–ground bytes).
    #[napi(value = "latency")]
    LATENCY,
    /// Pipeline period, i.e. maximum throughput (ties: latency, then space–ground bytes).
    #[napi(value = "throughput")]
    THROUGHPUT,
    /// Bytes crossing the space–ground boundary (ties: latency).
    #[napi(value = "boundary_bytes")]
    BOUNDARY_BYTES,
}

impl From<PartitionObjective> for core::Objective {
    fn from(o: PartitionObjective) -> Self {
        match o {
            PartitionObjective::LATENCY => core::Objective::Latency,
            PartitionObjective::THROUGHPUT => core::Objective::Throughput,
            PartitionObjective::BOUNDARY_BYTES => core::Objective::Bytes,
        }
    }
}

/// One layer of a model profile.
#[napi(object)]
#[derive(Clone)]
pub struct LayerOptions {
    /// Unique name.
    pub name: String,
    /// Parameter memory, MB (10^6 bytes).
    pub params_mb: f64,
    /// Floating-point operations of one forward pass.
    pub flops: f64,
    /// Output size sent to the next stage, MB. Default: the previous layer's (the input's for the first).
    pub activation_mb: Option<f64>,
    /// Extra memory beyond the parameters (KV cache, workspace), MB. Default 0.
    pub workspace_mb: Option<f64>,
}

/// Options of `new ModelProfile({...})`.
#[napi(object)]
pub struct ModelProfileOptions {
    /// Layers in execution order (at least one; names unique).
    pub layers: Vec<LayerOptions>,
    /// Model name. Default 'model'.
    pub name: Option<String>,
    /// Size of the raw input the first layer consumes, MB. Default 1.
    pub input_mb: Option<f64>,
}

/// Options of `ModelProfile.createTransformer({...})` (defaults: the peer package's).
#[napi(object)]
pub struct TransformerOptions {
    /// Default 'transformer'.
    pub name: Option<String>,
    /// Transformer blocks (each one attention and one FFN layer). Default 12.
    pub num_layers: Option<f64>,
    /// Default 768.
    pub hidden_size: Option<f64>,
    /// Default 50,000.
    pub vocab_size: Option<f64>,
    /// Tokens per inference. Default 512.
    pub sequence_length: Option<f64>,
    /// Default 4 (fp32); 2 for fp16/bf16.
    pub bytes_per_param: Option<f64>,
    /// Bytes per activation value. Default: bytesPerParam.
    pub bytes_per_activation: Option<f64>,
}

/// Reads `createTransformer`'s options with our codes (a statics' napi-rs conversion
/// errors would escape `errors.js`, which cannot wrap non-configurable statics).
fn transformer_options(options: Option<Unknown>) -> JsResult<Option<TransformerOptions>> {
    let Some(u) = options else { return Ok(None) };
    match u.get_type().map_err(|e| invalid_arg(e.to_string()))? {
        ValueType::Undefined | ValueType::Null => return Ok(None),
        ValueType::Object => {}
        t => {
            return Err(invalid_arg(format!(
                "ModelProfile.createTransformer: options must be an object, got a {t:?}"
            )))
        }
    }
    // SAFETY: the type was just checked to be an object.
    let obj: Object = unsafe { u.cast() }.map_err(|e| invalid_arg(e.to_string()))?;
    let r = Reader {
        obj: &obj,
        what: "ModelProfile.createTransformer options",
    };
    Ok(Some(TransformerOptions {
        name: r.string("name")?,
        num_layers: r.num("numLayers")?,
        hidden_size: r.num("hiddenSize")?,
        vocab_size: r.num("vocabSize")?,
        sequence_length: r.num("sequenceLength")?,
        bytes_per_param: r.num("bytesPerParam")?,
        bytes_per_activation: r.num("bytesPerActivation")?,
    }))
}

/// A model: layers in execution order with their sizes and flops.
#[napi]
#[derive(Clone)]
pub struct ModelProfile {
    /// Shared, so that a request holds it without copying the layers.
    pub(crate) inner: Arc<core::Profile>,
}

fn profile_from(o: ModelProfileOptions) -> JsResult<core::Profile> {
    // As a key of `plan.assignments` it would set the object's prototype, not a layer.
    if let Some(i) = o.layers.iter().position(|l| l.name == "__proto__") {
        return Err(invalid_arg(format!(
            "layers[{i}].name '__proto__' cannot be a key of plan.assignments; rename the layer"
        )));
    }
    let specs = o
        .layers
        .into_iter()
        .map(|l| core::LayerSpec {
            name: l.name,
            params_mb: l.params_mb,
            flops: l.flops,
            activation_mb: l.activation_mb,
            workspace_mb: l.workspace_mb,
        })
        .collect();
    core::Profile::new(o.name.unwrap_or_else(|| "model".into()), specs, o.input_mb).map_err(js_err)
}

#[napi]
impl ModelProfile {
    /// Validates the layers: `ERR_INVALID_ARG` for no layers, a repeated name or a negative
    /// size, `ERR_NON_FINITE` for NaN or ±Infinity.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: ModelProfileOptions) -> napi::Result<Self, String> {
        Ok(ModelProfile {
            inner: Arc::new(profile_from(options)?),
        })
    }

    /// A decoder-only transformer: `embedding`, `layer_<i>_attention`, `layer_<i>_ffn`, …,
    /// `output` (2·numLayers + 2 layers); sizes and flops as in docs/partition.md.
    #[napi(factory, catch_unwind, ts_args_type = "options?: TransformerOptions")]
    pub fn create_transformer(options: Option<Unknown>) -> napi::Result<Self, String> {
        let d = core::TransformerSpec::default();
        let spec = match transformer_options(options)? {
            None => d,
            Some(o) => {
                let bpp = o.bytes_per_param.unwrap_or(d.bytes_per_param);
                core::TransformerSpec {
                    name: o.name.unwrap_or(d.name),
                    num_layers: o.num_layers.unwrap_or(d.num_layers),
                    hidden_size: o.hidden_size.unwrap_or(d.hidden_size),
                    vocab_size: o.vocab_size.unwrap_or(d.vocab_size),
                    sequence_length: o.sequence_length.unwrap_or(d.sequence_length),
                    bytes_per_param: bpp,
                    bytes_per_activation: o.bytes_per_activation.unwrap_or(bpp),
                }
            }
        };
        Ok(ModelProfile {
            inner: Arc::new(core::Profile::transformer(&spec).map_err(js_err)?),
        })
    }

    /// Model name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }
    /// The layers (a copy), with defaults filled in.
    #[napi(getter)]
    pub fn layers(&self) -> Vec<LayerOptions> {
        self.inner
            .layers
            .iter()
            .map(|l| LayerOptions {
                name: l.name.clone(),
                params_mb: l.params_mb,
                flops: l.flops,
                activation_mb: Some(l.activation_mb),
                workspace_mb: Some(l.workspace_mb),
            })
            .collect()
    }
    /// The layer names, for `partition.js` (which caches them per profile to build plans).
    #[napi(js_name = "_layerNames", skip_typescript)]
    pub fn layer_names(&self) -> Vec<String> {
        self.inner.layers.iter().map(|l| l.name.clone()).collect()
    }
    /// Number of layers.
    #[napi(getter)]
    pub fn num_layers(&self) -> u32 {
        self.inner.layers.len() as u32
    }
    /// Sum of the layers' parameter memory, MB.
    #[napi(getter)]
    pub fn total_params_mb(&self) -> f64 {
        self.inner.total_params_mb()
    }
    /// Sum of the layers' memory (parameters + workspace), MB.
    #[napi(getter)]
    pub fn total_memory_mb(&self) -> f64 {
        self.inner.total_memory_mb()
    }
    /// Sum of the layers' flops.
    #[napi(getter)]
    pub fn total_flops(&self) -> f64 {
        self.inner.total_flops()
    }
    /// Size of the raw input, MB.
    #[napi(getter)]
    pub fn input_mb(&self) -> f64 {
        self.inner.input_mb
    }
}

/// Options of `new NodeConfig({...})`.
#[napi(object)]
#[derive(Clone)]
pub struct NodeConfigOptions {
    /// Unique id.
    pub node_id: String,
    /// Kind of node (default links, side of the space–ground boundary).
    #[napi(ts_type = "NodeType | `${NodeType}`")]
    pub node_type: NodeType,
    /// Memory available for layers, GB (10^9 bytes).
    pub memory_gb: f64,
    /// Sustained compute, TFLOPS.
    pub compute_tflops: f64,
}

/// A compute node: id, kind, memory and speed.
#[napi]
#[derive(Clone)]
pub struct NodeConfig {
    pub(crate) inner: core::Node,
}

#[napi]
impl NodeConfig {
    /// Validates: memory finite >= 0, compute finite > 0.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NodeConfigOptions) -> napi::Result<Self, String> {
        Ok(NodeConfig {
            inner: node_from(options)?,
        })
    }
    /// Node id.
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.inner.id.clone()
    }
    /// Node kind.
    #[napi(getter)]
    pub fn node_type(&self) -> NodeType {
        self.inner.kind.into()
    }
    /// Memory, GB.
    #[napi(getter)]
    pub fn memory_gb(&self) -> f64 {
        self.inner.memory_mb / 1000.0
    }
    /// Compute, TFLOPS.
    #[napi(getter)]
    pub fn compute_tflops(&self) -> f64 {
        self.inner.compute_tflops
    }
}

fn node_from(o: NodeConfigOptions) -> JsResult<core::Node> {
    core::Node::new(o.node_id, o.node_type.into(), o.memory_gb, o.compute_tflops).map_err(js_err)
}

/// A link between two kinds of node, replacing the default for that direction.
#[napi(object)]
#[derive(Clone)]
pub struct KindLinkOptions {
    /// Sending kind.
    #[napi(ts_type = "NodeType | `${NodeType}`")]
    pub from: NodeType,
    /// Receiving kind.
    #[napi(ts_type = "NodeType | `${NodeType}`")]
    pub to: NodeType,
    /// Mbps; 0 = no link (never crossed); Infinity = no serialization time.
    pub bandwidth_mbps: f64,
    /// One-way propagation latency, ms.
    pub latency_ms: f64,
}

/// A link between two nodes (by id), winning over the kind table for that direction.
#[napi(object)]
#[derive(Clone)]
pub struct NodeLinkOptions {
    /// Sending node id.
    pub from: String,
    /// Receiving node id.
    pub to: String,
    /// Mbps; 0 = no link (never crossed).
    pub bandwidth_mbps: f64,
    /// One-way propagation latency, ms.
    pub latency_ms: f64,
}

/// Options of the optimizer and of each call (a call's options win over the optimizer's).
#[napi(object)]
#[derive(Clone, Default)]
pub struct PartitionOptions {
    /// Default `PartitionObjective.LATENCY`.
    #[napi(ts_type = "PartitionObjective | `${PartitionObjective}`")]
    pub objective: Option<PartitionObjective>,
    /// Node holding the raw input. Default: the first SATELLITE node, else the first node.
    pub input_node: Option<String>,
    /// Node the output must reach. Default: none (see `outputNodeType`).
    pub output_node: Option<String>,
    /// Kind of node the output must reach when `outputNode` is not set. Default GROUND.
    #[napi(ts_type = "NodeType | `${NodeType}`")]
    pub output_node_type: Option<NodeType>,
    /// Replacements of the default link between kinds (directional).
    pub links: Option<Vec<KindLinkOptions>>,
    /// Links between two given nodes (directional).
    pub node_links: Option<Vec<NodeLinkOptions>>,
    /// Most search states the exact search may store (an integer from 1 to 10^7, about
    /// 0.2 KB each). Default 300,000.
    pub search_limit: Option<f64>,
    /// THROUGHPUT: most states the latency tie-break among the period-optimal plans may
    /// store (an integer from 1 to 10^7). Default 25,000; past it the plan found for the
    /// optimal period is returned with `tieBreakExact: false`.
    pub tie_break_limit: Option<f64>,
}

fn merge(base: &PartitionOptions, call: Option<PartitionOptions>) -> PartitionOptions {
    let c = call.unwrap_or_default();
    PartitionOptions {
        objective: c.objective.or(base.objective),
        input_node: c.input_node.or_else(|| base.input_node.clone()),
        output_node: c.output_node.or_else(|| base.output_node.clone()),
        output_node_type: c.output_node_type.or(base.output_node_type),
        links: c.links.or_else(|| base.links.clone()),
        node_links: c.node_links.or_else(|| base.node_links.clone()),
        search_limit: c.search_limit.or(base.search_limit),
        tie_break_limit: c.tie_break_limit.or(base.tie_break_limit),
    }
}

/// Everything a core call needs, owned (so it can move to a worker thread).
struct Request {
    profile: Arc<core::Profile>,
    nodes: Vec<core::Node>,
    links: core::LinkModel,
    endpoints: core::Endpoints,
    objective: core::Objective,
    limit: usize,
    tie_break_limit: usize,
}

fn find_node(nodes: &[core::Node], id: &str, what: &str) -> JsResult<usize> {
    nodes.iter().position(|n| n.id == id).ok_or_else(|| {
        js_err(CoreError::new(
            Code::UnknownNode,
            format!("{what} '{id}' is not in nodes"),
        ))
    })
}

/// `searchLimit` and `tieBreakLimit`, checked (defaults when absent).
fn limits(o: &PartitionOptions) -> JsResult<(usize, usize)> {
    let budget = |name: &str, v: Option<f64>, default: usize| match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x.fract() == 0.0 && (1.0..=1e7).contains(&x) => Ok(x as usize),
        Some(x) => Err(invalid_arg(format!(
            "{name} must be an integer from 1 to 10^7 (each state takes about 0.2 KB), got {x}"
        ))),
    };
    Ok((
        budget("searchLimit", o.search_limit, core::MAX_STATES)?,
        budget("tieBreakLimit", o.tie_break_limit, core::TIE_BREAK_STATES)?,
    ))
}

/// What of the constructor's defaults can be checked without the nodes: the limits and
/// the link values (node ids are checked against each call's nodes).
fn check_defaults(o: &PartitionOptions) -> JsResult<()> {
    limits(o)?;
    for (i, l) in o.links.iter().flatten().enumerate() {
        core::Link::new(l.bandwidth_mbps, l.latency_ms, &format!("links[{i}]")).map_err(js_err)?;
    }
    for (i, l) in o.node_links.iter().flatten().enumerate() {
        core::Link::new(l.bandwidth_mbps, l.latency_ms, &format!("nodeLinks[{i}]"))
            .map_err(js_err)?;
    }
    Ok(())
}

fn request(
    profile: &ModelProfile,
    nodes: Vec<NodeConfigOptions>,
    o: PartitionOptions,
) -> JsResult<Request> {
    let (limit, tie_break_limit) = limits(&o)?;
    let nodes: Vec<core::Node> = nodes.into_iter().map(node_from).collect::<JsResult<_>>()?;
    if nodes.is_empty() {
        return Err(invalid_arg("nodes must hold at least one node"));
    }
    let mut links = core::LinkModel::default();
    for (i, l) in o.links.unwrap_or_default().into_iter().enumerate() {
        let link = core::Link::new(l.bandwidth_mbps, l.latency_ms, &format!("links[{i}]"))
            .map_err(js_err)?;
        links.kinds[core::NodeKind::from(l.from).index()][core::NodeKind::from(l.to).index()] =
            link;
    }
    for (i, l) in o.node_links.unwrap_or_default().into_iter().enumerate() {
        let link = core::Link::new(l.bandwidth_mbps, l.latency_ms, &format!("nodeLinks[{i}]"))
            .map_err(js_err)?;
        let a = find_node(&nodes, &l.from, &format!("nodeLinks[{i}].from"))?;
        let b = find_node(&nodes, &l.to, &format!("nodeLinks[{i}].to"))?;
        if a == b {
            return Err(invalid_arg(format!(
                "nodeLinks[{i}] links '{}' to itself",
                l.from
            )));
        }
        links.pairs.insert((a, b), link);
    }
    let mut endpoints = core::Endpoints::default_for(&nodes);
    if let Some(id) = &o.input_node {
        endpoints.input = find_node(&nodes, id, "inputNode")?;
    }
    if let Some(id) = &o.output_node {
        endpoints.output = core::Sink::Node(find_node(&nodes, id, "outputNode")?);
    } else if let Some(t) = o.output_node_type {
        endpoints.output = core::Sink::Kind(t.into());
    }
    let objective = o
        .objective
        .map(Into::into)
        .unwrap_or(core::Objective::Latency);
    // Validates ids and endpoints now, on the calling thread.
    core::Problem::new(&profile.inner, &nodes, &links, endpoints).map_err(js_err)?;
    Ok(Request {
        profile: Arc::clone(&profile.inner),
        nodes,
        links,
        endpoints,
        objective,
        limit,
        tie_break_limit,
    })
}

impl Request {
    fn problem(&self) -> core::Problem<'_> {
        core::Problem {
            profile: &self.profile,
            nodes: &self.nodes,
            links: &self.links,
            endpoints: self.endpoints,
        }
    }
}

/// One stage of a plan: a node and the contiguous run of layers it runs. (The type of
/// `PartitionPlan.stages`; `partition.js` builds the objects from a [`PackedPlan`].)
#[napi(object, object_from_js = false)]
#[allow(dead_code)]
pub struct PartitionStage {
    /// The node running this stage.
    pub node_id: String,
    /// Its kind.
    pub node_type: NodeType,
    /// Layer names, in order.
    pub layers: Vec<String>,
    /// Running these layers, ms.
    pub compute_ms: f64,
    /// Receiving this stage's input (from the input node or the previous stage), ms.
    pub transfer_ms: f64,
    /// MB received (0 when the input is already on this node).
    pub transfer_mb: f64,
    /// Memory of the layers, MB.
    pub memory_mb: f64,
    /// Memory of the layers, GB.
    pub memory_gb: f64,
    /// The node's memory, MB.
    pub memory_capacity_mb: f64,
}

/// A placement and its cost breakdown. (The type of the plans `partition.js` builds from a
/// [`PackedPlan`].)
#[napi(object, object_from_js = false)]
#[allow(dead_code)]
pub struct PartitionPlan {
    /// The objective optimized (`evaluate` reports the optimizer's default).
    pub objective: PartitionObjective,
    /// Layer name → node id, in layer order (JavaScript lists integer-like names such as
    /// '0' first, in ascending order, in any object).
    #[napi(ts_type = "Record<string, string>")]
    pub assignments: HashMap<String, String>,
    /// Stages in execution order.
    pub stages: Vec<PartitionStage>,
    /// End-to-end time of one inference: all computes and transfers (input and output included), ms.
    pub estimated_latency_ms: f64,
    /// Sum of stage computes, ms.
    pub compute_ms: f64,
    /// Sum of transfers (input and output included), ms.
    pub transfer_ms: f64,
    /// MB moved between nodes (input and output included).
    pub transferred_mb: f64,
    /// MB crossing the space–ground boundary (input and output included).
    pub space_ground_mb: f64,
    /// Bytes crossing the space–ground boundary.
    pub space_ground_bytes: f64,
    /// Slowest stage compute or link serialization, ms (a new inference can start this often).
    pub pipeline_period_ms: f64,
    /// Inferences per second in a full pipeline: 1000 ÷ pipelinePeriodMs (Infinity if 0).
    pub throughput_per_second: f64,
    /// Delivering the output to its endpoint, ms.
    pub output_transfer_ms: f64,
    /// MB delivered to the output endpoint (0 when already there).
    pub output_transfer_mb: f64,
    /// Node holding the raw input.
    pub input_node: String,
    /// Nodes that run no layer.
    pub idle_nodes: Vec<String>,
    /// False only for THROUGHPUT when the tie-break budget (`tieBreakLimit`) ran out while
    /// choosing the lowest latency among the plans with the optimal period: the period is
    /// still optimal, the latency may not be the lowest such plan's. True otherwise.
    pub tie_break_exact: bool,
}

/// All three objectives' optimal plans for one problem (built by `partition.js`).
#[napi(object, object_from_js = false)]
#[allow(dead_code)]
pub struct ObjectiveComparison {
    /// Minimum end-to-end latency.
    pub latency: PartitionPlan,
    /// Minimum pipeline period.
    pub throughput: PartitionPlan,
    /// Fewest bytes across the space–ground boundary.
    pub boundary_bytes: PartitionPlan,
}

/// A plan as it crosses to JavaScript: numbers only, which `partition.js` turns into the
/// [`PartitionPlan`] object (layer names and node ids are on the JS side already). Built
/// through N-API, a plan's hundred-odd property sets and strings took ~30 µs, more than
/// solving a small model; built in JS it takes ~1 µs.
///
/// Layout (keep in step with `partition.js`): a header of [`PLAN_HEADER`] values
/// `[objective (0 latency, 1 throughput, 2 boundary bytes), latencyMs, computeMs,
/// transferMs, transferredMb, spaceGroundMb, pipelinePeriodMs, outputTransferMs,
/// outputTransferMb, input node index, tieBreakExact (0/1), stage count]`, then
/// [`PLAN_STAGE`] values per stage `[node index, first layer, end layer (exclusive),
/// computeMs, transferMs, transferMb, memoryMb, node memory MB]`.
pub struct PackedPlan(Vec<f64>);

const PLAN_HEADER: usize = 12;
const PLAN_STAGE: usize = 8;

impl TypeName for PackedPlan {
    fn type_name() -> &'static str {
        "PartitionPlan"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for PackedPlan {
    unsafe fn to_napi_value(
        env: napi::sys::napi_env,
        val: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        engine_f64(env, &val.0)
    }
}

fn objective_index(o: core::Objective) -> f64 {
    match o {
        core::Objective::Latency => 0.0,
        core::Objective::Throughput => 1.0,
        core::Objective::Bytes => 2.0,
    }
}

fn packed_plan(
    req: &Request,
    objective: core::Objective,
    cost: &core::PlanCost,
    tie_break_exact: bool,
) -> PackedPlan {
    let mut p = Vec::with_capacity(PLAN_HEADER + PLAN_STAGE * cost.stages.len());
    p.extend_from_slice(&[
        objective_index(objective),
        cost.latency_ms,
        cost.compute_ms,
        cost.transfer_ms,
        cost.transferred_mb,
        cost.boundary_mb,
        cost.period_ms,
        cost.transfer_out.time_ms,
        cost.transfer_out.mb,
        req.endpoints.input as f64,
        tie_break_exact as u8 as f64,
        cost.stages.len() as f64,
    ]);
    for s in &cost.stages {
        p.extend_from_slice(&[
            s.node as f64,
            s.start as f64,
            s.end as f64,
            s.compute_ms,
            s.transfer_in.time_ms,
            s.transfer_in.mb,
            s.memory_mb,
            req.nodes[s.node].memory_mb,
        ]);
    }
    PackedPlan(p)
}

fn run(req: &Request, objective: core::Objective) -> std::result::Result<PackedPlan, CoreError> {
    let plan =
        core::optimize_with_limits(&req.problem(), objective, req.limit, req.tie_break_limit)?;
    Ok(packed_plan(
        req,
        objective,
        &plan.cost,
        plan.tie_break_exact,
    ))
}

/// Finds the optimal placement of a model's layers on nodes (see docs/partition.md).
#[napi]
pub struct PartitionOptimizer {
    options: PartitionOptions,
}

#[napi]
impl PartitionOptimizer {
    /// `options` are defaults for every call: objective, input/output endpoints, links,
    /// limits. Limits and link values are checked here; node ids at each call.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<PartitionOptions>) -> napi::Result<Self, String> {
        let options = options.unwrap_or_default();
        check_defaults(&options)?;
        Ok(PartitionOptimizer { options })
    }

    /// The optimal plan for the objective (default latency), under every node's memory
    /// limit. `ERR_INFEASIBLE` names the layer that fits nowhere or says the model does not fit.
    #[napi(
        catch_unwind,
        ts_args_type = "profile: ModelProfile, nodes: Array<NodeConfig | NodeConfigOptions>, options?: PartitionOptions",
        ts_return_type = "PartitionPlan"
    )]
    pub fn optimize(
        &self,
        profile: &ModelProfile,
        nodes: Vec<NodeConfigOptions>,
        options: Option<PartitionOptions>,
    ) -> napi::Result<PackedPlan, String> {
        let req = request(profile, nodes, merge(&self.options, options))?;
        run(&req, req.objective).map_err(js_err)
    }

    /// `optimize` off the main thread.
    #[napi(
        catch_unwind,
        ts_args_type = "profile: ModelProfile, nodes: Array<NodeConfig | NodeConfigOptions>, options?: PartitionOptions",
        ts_return_type = "Promise<PartitionPlan>"
    )]
    pub fn optimize_async(
        &self,
        profile: &ModelProfile,
        nodes: Vec<NodeConfigOptions>,
        options: Option<PartitionOptions>,
    ) -> napi::Result<AsyncTask<CoreTask<PackedPlan>>, String> {
        let req = request(profile, nodes, merge(&self.options, options))?;
        Ok(CoreTask::new(move || run(&req, req.objective)))
    }

    /// The optimal plan for each objective: `{ latency, throughput, boundaryBytes }`.
    #[napi(
        catch_unwind,
        ts_args_type = "profile: ModelProfile, nodes: Array<NodeConfig | NodeConfigOptions>, options?: PartitionOptions",
        ts_return_type = "ObjectiveComparison"
    )]
    pub fn compare_objectives(
        &self,
        profile: &ModelProfile,
        nodes: Vec<NodeConfigOptions>,
        options: Option<PartitionOptions>,
    ) -> napi::Result<Vec<PackedPlan>, String> {
        // [latency, throughput, boundary bytes]; `partition.js` names them.
        let req = request(profile, nodes, merge(&self.options, options))?;
        [
            core::Objective::Latency,
            core::Objective::Throughput,
            core::Objective::Bytes,
        ]
        .into_iter()
        .map(|o| run(&req, o).map_err(js_err))
        .collect()
    }

    /// Costs any placement (layer name → node id) with the same model as `optimize`.
    /// `ERR_INVALID_PLACEMENT` for a node over its memory (named), a node running two
    /// separate runs (the layer named), a 0-bandwidth hop, or a layer left out.
    #[napi(
        catch_unwind,
        ts_args_type = "profile: ModelProfile, nodes: Array<NodeConfig | NodeConfigOptions>, assignments: Record<string, string>, options?: PartitionOptions",
        ts_return_type = "PartitionPlan"
    )]
    pub fn evaluate(
        &self,
        profile: &ModelProfile,
        nodes: Vec<NodeConfigOptions>,
        assignments: HashMap<String, String>,
        options: Option<PartitionOptions>,
    ) -> napi::Result<PackedPlan, String> {
        let req = request(profile, nodes, merge(&self.options, options))?;
        let layers = &req.profile.layers;
        for name in assignments.keys() {
            if !layers.iter().any(|l| &l.name == name) {
                return Err(invalid_arg(format!(
                    "assignments names layer '{name}', which is not in the profile"
                )));
            }
        }
        let mut placement = Vec::with_capacity(layers.len());
        for l in layers {
            let id = assignments.get(&l.name).ok_or_else(|| {
                js_err(CoreError::new(
                    Code::InvalidPlacement,
                    format!("layer '{}' is not assigned to a node", l.name),
                ))
            })?;
            placement.push(find_node(
                &req.nodes,
                id,
                &format!("assignments['{}']", l.name),
            )?);
        }
        let cost = core::evaluate(&req.problem(), &placement).map_err(js_err)?;
        Ok(packed_plan(&req, req.objective, &cost, true))
    }
}

/// Options of `new LatencyEstimator({...})` (the peer package's defaults).
#[napi(object)]
pub struct LatencyEstimatorOptions {
    /// Default 550 km.
    pub orbit_altitude_km: Option<f64>,
    /// Default 100 Mbps.
    pub uplink_bandwidth_mbps: Option<f64>,
    /// Default 200 Mbps.
    pub downlink_bandwidth_mbps: Option<f64>,
    /// Per direction, default 5 ms.
    pub processing_overhead_ms: Option<f64>,
}

/// Ground–orbit round-trip estimate: transfer times, propagation and processing overhead.
#[napi]
pub struct LatencyEstimator {
    inner: core::RoundTrip,
}

#[napi]
impl LatencyEstimator {
    /// Validates: altitude and overhead >= 0, bandwidths > 0, all finite.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<LatencyEstimatorOptions>) -> napi::Result<Self, String> {
        let o = options.unwrap_or(LatencyEstimatorOptions {
            orbit_altitude_km: None,
            uplink_bandwidth_mbps: None,
            downlink_bandwidth_mbps: None,
            processing_overhead_ms: None,
        });
        let inner = core::RoundTrip::new(
            o.orbit_altitude_km.unwrap_or(550.0),
            o.uplink_bandwidth_mbps.unwrap_or(100.0),
            o.downlink_bandwidth_mbps.unwrap_or(200.0),
            o.processing_overhead_ms.unwrap_or(5.0),
        )
        .map_err(js_err)?;
        Ok(LatencyEstimator { inner })
    }
    /// One-way propagation delay straight up, ms.
    #[napi(getter)]
    pub fn propagation_delay_ms(&self) -> f64 {
        self.inner.propagation_ms()
    }
    /// Serialization time of `bytes` on the uplink (default) or downlink, ms.
    #[napi(catch_unwind)]
    pub fn estimate_transfer_time_ms(
        &self,
        bytes: f64,
        is_uplink: Option<bool>,
    ) -> napi::Result<f64, String> {
        self.inner
            .transfer_ms(bytes, is_uplink.unwrap_or(true))
            .map_err(js_err)
    }
    /// Uplink + downlink transfers + 2 propagation delays + 2 processing overheads, ms.
    #[napi(catch_unwind)]
    pub fn estimate_round_trip_ms(
        &self,
        uplink_bytes: f64,
        downlink_bytes: f64,
    ) -> napi::Result<f64, String> {
        self.inner
            .round_trip_ms(uplink_bytes, downlink_bytes)
            .map_err(js_err)
    }
}
