//! The cost of a placement: the one function that prices plans, used by `evaluate` and
//! to report the optimizer's plans, so both always agree.

use super::model::{fits, Link, NodeKind, Problem, Sink};
use crate::core::error::{Code, Error, Result};

/// One transfer between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Hop {
    /// Propagation + serialization, ms.
    pub time_ms: f64,
    /// Serialization alone (what limits a pipeline), ms.
    pub serialize_ms: f64,
    /// MB moved (0 when the data stays on one node).
    pub mb: f64,
    /// MB crossing the space–ground boundary.
    pub boundary_mb: f64,
}

/// Prices moving `mb` over `link` (`None`: the data stays on the same node, free), from a
/// node on side `from_space` to one on side `to_space`. `None` when the link has 0 bandwidth.
pub fn hop(link: Option<Link>, mb: f64, from_space: bool, to_space: bool) -> Option<Hop> {
    match link {
        None => Some(Hop::default()),
        Some(l) if !l.usable() => None,
        Some(l) => Some(Hop {
            time_ms: l.transfer_ms(mb),
            serialize_ms: l.serialize_ms(mb),
            mb,
            boundary_mb: if from_space != to_space { mb } else { 0.0 },
        }),
    }
}

/// The link a stage's input arrives over: from the previous stage's node, or from the
/// input node for the first stage (`None` when it is the same node).
pub fn link_in(p: &Problem, prev: Option<usize>, node: usize) -> Option<Link> {
    let from = prev.unwrap_or(p.endpoints.input);
    if from == node {
        None
    } else {
        Some(p.links.between(p.nodes, from, node))
    }
}

/// The link the output leaves over from the last stage's node (`None`: already there).
pub fn link_out(p: &Problem, last: usize) -> (Option<Link>, bool) {
    match p.endpoints.output {
        Sink::Node(t) => {
            if t == last {
                (None, p.nodes[t].kind.in_space())
            } else {
                (
                    Some(p.links.between(p.nodes, last, t)),
                    p.nodes[t].kind.in_space(),
                )
            }
        }
        Sink::Kind(k) => {
            let from = p.nodes[last].kind;
            if from == k {
                (None, k.in_space())
            } else {
                (Some(p.links.kinds[from.index()][k.index()]), k.in_space())
            }
        }
    }
}

/// One stage of a plan: a node and the contiguous run of layers `start..end` it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCost {
    pub node: usize,
    pub start: usize,
    pub end: usize,
    /// Running the stage's layers, ms.
    pub compute_ms: f64,
    /// Receiving its input (from the input node or the previous stage).
    pub transfer_in: Hop,
    /// Memory of its layers, MB.
    pub memory_mb: f64,
}

/// The full cost breakdown of a placement.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanCost {
    pub stages: Vec<StageCost>,
    /// Delivering the last layer's output to the output endpoint.
    pub transfer_out: Hop,
    /// End-to-end time of one inference: every compute and every transfer, ms.
    pub latency_ms: f64,
    pub compute_ms: f64,
    pub transfer_ms: f64,
    /// MB moved between nodes (input and output included).
    pub transferred_mb: f64,
    /// MB crossing the space–ground boundary (input and output included).
    pub boundary_mb: f64,
    /// Pipeline period: the slowest stage compute or link serialization, ms.
    pub period_ms: f64,
}

fn kind_name(k: NodeKind) -> &'static str {
    k.as_str()
}

/// Costs a placement given as the node index of each layer. Refuses with
/// `ERR_INVALID_PLACEMENT` a node holding two separate runs (naming the layer), a node
/// over its memory (naming the node), or a hop over a 0-bandwidth link.
pub fn evaluate(p: &Problem, node_of_layer: &[usize]) -> Result<PlanCost> {
    let layers = &p.profile.layers;
    if node_of_layer.len() != layers.len() {
        return Err(Error::new(
            Code::LengthMismatch,
            format!(
                "placement has {} entries for {} layers",
                node_of_layer.len(),
                layers.len()
            ),
        ));
    }
    // Split into runs; a node may run one run only.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut used = vec![false; p.nodes.len()];
    for (i, &n) in node_of_layer.iter().enumerate() {
        if n >= p.nodes.len() {
            return Err(Error::new(
                Code::UnknownNode,
                format!(
                    "layer '{}' is placed on node #{n}, which does not exist",
                    layers[i].name
                ),
            ));
        }
        match runs.last_mut() {
            Some(r) if r.0 == n => r.2 = i + 1,
            _ => {
                if used[n] {
                    return Err(Error::new(
                        Code::InvalidPlacement,
                        format!(
                            "layer '{}' (index {i}) returns to node '{}' after layers on other nodes: a node must run one contiguous run of layers",
                            layers[i].name, p.nodes[n].id
                        ),
                    ));
                }
                used[n] = true;
                runs.push((n, i, i + 1));
            }
        }
    }
    let mut stages = Vec::with_capacity(runs.len());
    let mut prev: Option<usize> = None;
    let (mut latency, mut compute, mut transfer, mut moved, mut boundary, mut period) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0f64);
    for &(n, start, end) in &runs {
        let node = &p.nodes[n];
        let memory_mb: f64 = layers[start..end].iter().map(|l| l.memory_mb()).sum();
        if !fits(memory_mb, node.memory_mb) {
            return Err(Error::new(
                Code::InvalidPlacement,
                format!(
                    "node '{}' would hold {memory_mb} MB of layers ('{}' to '{}') but has {} MB of memory",
                    node.id,
                    layers[start].name,
                    layers[end - 1].name,
                    node.memory_mb
                ),
            ));
        }
        let from = prev.unwrap_or(p.endpoints.input);
        let mb = p.profile.boundary_mb(start);
        let h = hop(link_in(p, prev, n), mb, p.nodes[from].kind.in_space(), node.kind.in_space()).ok_or_else(|| {
            Error::new(
                Code::InvalidPlacement,
                format!(
                    "layer '{}' would receive its input from '{}' over a link with 0 bandwidth (to '{}')",
                    layers[start].name, p.nodes[from].id, node.id
                ),
            )
        })?;
        let flops: f64 = layers[start..end].iter().map(|l| l.flops).sum();
        let c = node.compute_ms(flops);
        latency += c + h.time_ms;
        compute += c;
        transfer += h.time_ms;
        moved += h.mb;
        boundary += h.boundary_mb;
        period = period.max(c).max(h.serialize_ms);
        stages.push(StageCost {
            node: n,
            start,
            end,
            compute_ms: c,
            transfer_in: h,
            memory_mb,
        });
        prev = Some(n);
    }
    let last = prev.expect("at least one layer");
    let (link, sink_space) = link_out(p, last);
    let out = hop(
        link,
        p.profile.boundary_mb(layers.len()),
        p.nodes[last].kind.in_space(),
        sink_space,
    )
    .ok_or_else(|| {
        let to = match p.endpoints.output {
            Sink::Node(t) => format!("node '{}'", p.nodes[t].id),
            Sink::Kind(k) => format!("a {} node", kind_name(k)),
        };
        Error::new(
            Code::InvalidPlacement,
            format!(
                "the output of '{}' cannot reach {to}: the link from '{}' has 0 bandwidth",
                layers[layers.len() - 1].name,
                p.nodes[last].id
            ),
        )
    })?;
    latency += out.time_ms;
    transfer += out.time_ms;
    moved += out.mb;
    boundary += out.boundary_mb;
    period = period.max(out.serialize_ms);
    Ok(PlanCost {
        stages,
        transfer_out: out,
        latency_ms: latency,
        compute_ms: compute,
        transfer_ms: transfer,
        transferred_mb: moved,
        boundary_mb: boundary,
        period_ms: period,
    })
}
