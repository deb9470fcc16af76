//! `TransferPlanner`, `TransferPriority`, `TransferDirection`: the JavaScript face of
//! `core::planner`. Reads and validates arguments, keeps the queue, calls the core and
//! converts the plan. No algorithm here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::options::Reader;
use super::task::CoreTask;
use super::{invalid_arg, js_err, JsResult};
use crate::core::error::Error as CoreError;
use crate::core::planner::{self as core, Direction, PlanOptions, Priority};

// ------------------------------------------------------------------ enums

/// Priority of a transfer: higher priorities are planned first.
#[napi(string_enum)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum TransferPriority {
    /// Planned before everything else.
    #[napi(value = "critical")]
    CRITICAL,
    /// After CRITICAL.
    #[napi(value = "high")]
    HIGH,
    /// The default.
    #[napi(value = "normal")]
    NORMAL,
    /// Planned last.
    #[napi(value = "low")]
    LOW,
}

/// Direction of a transfer.
#[napi(string_enum)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum TransferDirection {
    /// Ground to satellite: uses a window's `uplinkCapacityMb`.
    #[napi(value = "uplink")]
    UPLINK,
    /// Satellite to ground (the default): uses a window's `dataCapacityMb`.
    #[napi(value = "downlink")]
    DOWNLINK,
}

fn priority_to_js(p: Priority) -> TransferPriority {
    match p {
        Priority::Critical => TransferPriority::CRITICAL,
        Priority::High => TransferPriority::HIGH,
        Priority::Normal => TransferPriority::NORMAL,
        Priority::Low => TransferPriority::LOW,
    }
}

fn direction_to_js(d: Direction) -> TransferDirection {
    match d {
        Direction::Uplink => TransferDirection::UPLINK,
        Direction::Downlink => TransferDirection::DOWNLINK,
    }
}

// ------------------------------------------------------------------ argument reading

fn to_date(ms: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.round() as i64).unwrap_or_default()
}

fn parse_priority(what: &str, s: &str) -> JsResult<Priority> {
    Priority::parse(s).ok_or_else(|| {
        invalid_arg(format!(
            "{what} must be 'critical', 'high', 'normal' or 'low', got '{s}'"
        ))
    })
}

fn parse_direction(what: &str, s: &str) -> JsResult<Direction> {
    match s {
        "uplink" => Ok(Direction::Uplink),
        "downlink" => Ok(Direction::Downlink),
        _ => Err(invalid_arg(format!(
            "{what} must be 'uplink' or 'downlink', got '{s}'"
        ))),
    }
}

fn antenna_count(what: &str, v: f64) -> JsResult<u32> {
    if !(v.is_finite() && v.fract() == 0.0 && (1.0..=1_000_000.0).contains(&v)) {
        return Err(invalid_arg(format!(
            "{what} must be an integer from 1 to 1000000, got {v}"
        )));
    }
    Ok(v as u32)
}

/// Reads one window: `satelliteId`, `station` (an object with `name`, or a string),
/// `startTime`, `endTime`, `dataCapacityMb`, optional `uplinkCapacityMb`.
fn read_window(obj: &Object, what: &str) -> JsResult<core::Window> {
    let r = Reader { obj, what };
    let satellite = r.required("satelliteId", r.string("satelliteId")?, "a string")?;
    let station = match r.raw("station")? {
        None => {
            return Err(invalid_arg(format!(
                "{what}.station (a GroundStation or a name) is required"
            )))
        }
        Some((u, ValueType::String)) => {
            unsafe { u.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?
        }
        Some((u, ValueType::Object)) => {
            let o: Object = unsafe { u.cast() }.map_err(|e| invalid_arg(e.to_string()))?;
            let sw = format!("{what}.station");
            let sr = Reader { obj: &o, what: &sw };
            sr.required("name", sr.string("name")?, "a string")?
        }
        Some((_, t)) => {
            return Err(invalid_arg(format!(
                "{what}.station must be a GroundStation or a string, got {t}"
            )))
        }
    };
    let w = core::Window {
        satellite,
        station,
        start_ms: r.required("startTime", r.date("startTime")?, "a Date")?,
        end_ms: r.required("endTime", r.date("endTime")?, "a Date")?,
        downlink_mb: r.required("dataCapacityMb", r.num("dataCapacityMb")?, "a number")?,
        uplink_mb: r.num("uplinkCapacityMb")?.unwrap_or(0.0),
    };
    core::validate_window(what, &w).map_err(js_err)?;
    Ok(w)
}

fn read_windows(windows: &Unknown) -> JsResult<Vec<core::Window>> {
    if !windows.is_array().map_err(|e| invalid_arg(e.to_string()))? {
        return Err(invalid_arg("windows must be an array of contact windows"));
    }
    let arr: Array = unsafe { windows.cast() }.map_err(|e| invalid_arg(e.to_string()))?;
    let mut out = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let what = format!("windows[{i}]");
        let u: Unknown = arr
            .get(i)
            .map_err(|e| invalid_arg(format!("{what}: {e}")))?
            .ok_or_else(|| invalid_arg(format!("{what} is missing")))?;
        if u.get_type().map_err(|e| invalid_arg(e.to_string()))? != ValueType::Object {
            return Err(invalid_arg(format!(
                "{what} must be a contact window object"
            )));
        }
        let o: Object = unsafe { u.cast() }.map_err(|e| invalid_arg(e.to_string()))?;
        out.push(read_window(&o, &what)?);
    }
    Ok(out)
}

// ------------------------------------------------------------------ shapes (TypeScript)

/// A contact window as the planner reads it. `SyncScheduler.getSyncWindows` returns
/// such objects; plain objects with these fields work too. Other fields are ignored.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct PlannerWindow {
    /// Satellite of the pass.
    pub satellite_id: String,
    /// The station (only its `name` is read), or its name.
    #[napi(ts_type = "{ name: string } | string")]
    pub station: String,
    /// Start of the contact (Acquisition of signal).
    #[napi(ts_type = "Date")]
    pub start_time: f64,
    /// End of the contact (loss of signal); not before `startTime`.
    #[napi(ts_type = "Date")]
    pub end_time: f64,
    /// Downlink capacity of the whole window, MB (10^6 bytes), ≥ 0.
    pub data_capacity_mb: f64,
    /// Uplink capacity of the whole window, MB, ≥ 0. @default 0
    pub uplink_capacity_mb: Option<f64>,
}

/// A transfer to queue with `enqueue`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct TransferRequest {
    /// Unique id in the queue. @default 'transfer-N' (N counts enqueues)
    pub transfer_id: Option<String>,
    /// Satellite whose windows carry the transfer.
    pub satellite_id: String,
    /// Size, MB (10^6 bytes), finite and > 0.
    pub size_mb: f64,
    /// @default TransferPriority.NORMAL
    #[napi(ts_type = "TransferPriority | `${TransferPriority}`")]
    pub priority: Option<TransferPriority>,
    /// Every piece ends by this instant. @default none
    #[napi(ts_type = "Date")]
    pub deadline: Option<f64>,
    /// No piece starts before this instant. @default none
    #[napi(ts_type = "Date")]
    pub earliest_start: Option<f64>,
    /// @default TransferDirection.DOWNLINK
    #[napi(ts_type = "TransferDirection | `${TransferDirection}`")]
    pub direction: Option<TransferDirection>,
    /// May the transfer be cut into pieces across windows (and within one)? @default true
    pub splittable: Option<bool>,
    /// Free text, kept with the transfer. @default ''
    pub description: Option<String>,
}

/// A transfer in the queue.
#[napi(object, object_from_js = false)]
pub struct QueuedTransfer {
    /// Its id.
    pub transfer_id: String,
    /// Satellite whose windows carry it.
    pub satellite_id: String,
    /// Size, MB (10^6 bytes).
    pub size_mb: f64,
    /// Its priority.
    pub priority: TransferPriority,
    /// Absent (undefined) when it has none.
    pub deadline: Option<DateTime<Utc>>,
    /// Absent (undefined) when it has none.
    pub earliest_start: Option<DateTime<Utc>>,
    /// Uplink or downlink.
    pub direction: TransferDirection,
    /// May it be cut into pieces?
    pub splittable: bool,
    /// Free text given at `enqueue`.
    pub description: String,
}

/// Options of `new TransferPlanner(options?)`.
#[napi(object, object_to_js = false)]
pub struct TransferPlannerOptions {
    /// Antennas of every station not in `stationAntennas`: a station with A antennas
    /// serves at most A satellites at any instant. @default 1
    pub antennas_per_station: Option<f64>,
    /// Antenna count per station name, overriding `antennasPerStation`.
    pub station_antennas: Option<HashMap<String, f64>>,
}

/// Options of `plan(windows, options?)`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct TransferPlanOptions {
    /// Nothing is placed before this instant (windows are clipped). @default none
    #[napi(ts_type = "Date")]
    pub start_time: Option<f64>,
    /// Nothing is placed after this instant (windows are clipped). @default none
    #[napi(ts_type = "Date")]
    pub end_time: Option<f64>,
    /// Remove the placed transfers from the queue (like the peer's `optimize`). @default false
    pub dequeue: Option<bool>,
}

/// One piece of a placed transfer.
#[napi(object, object_from_js = false)]
pub struct TransferPlacement {
    /// The transfer this piece belongs to.
    pub transfer_id: String,
    /// Its satellite.
    pub satellite_id: String,
    /// Name of the station.
    pub station: String,
    /// Start of the piece (ms precision).
    pub start_time: DateTime<Utc>,
    /// End of the piece (ms precision).
    pub end_time: DateTime<Utc>,
    /// MB carried by this piece (exact; the pieces of a transfer sum to its size).
    pub size_mb: f64,
    /// Index of the window in the `windows` argument.
    pub window_index: u32,
    /// Direction of the transfer.
    pub direction: TransferDirection,
    /// Priority of the transfer.
    pub priority: TransferPriority,
}

/// A transfer that could not be placed.
#[napi(object, object_from_js = false)]
pub struct UnplacedTransfer {
    /// The transfer left out.
    pub transfer_id: String,
    /// Its satellite.
    pub satellite_id: String,
    /// Its size, MB.
    pub size_mb: f64,
    /// Its priority.
    pub priority: TransferPriority,
    /// Human explanation.
    pub reason: String,
    /// `'NO_WINDOW'`, `'OUTSIDE_HORIZON'`, `'DEADLINE_PASSED'`, `'INSUFFICIENT_CAPACITY'`,
    /// `'NO_SINGLE_WINDOW'` or `'CAPACITY_TAKEN'`.
    #[napi(
        ts_type = "'NO_WINDOW' | 'OUTSIDE_HORIZON' | 'DEADLINE_PASSED' | 'INSUFFICIENT_CAPACITY' | 'NO_SINGLE_WINDOW' | 'CAPACITY_TAKEN'"
    )]
    pub code: String,
}

/// Counts and MB of one priority.
#[napi(object, object_from_js = false)]
pub struct PriorityTally {
    /// Transfers placed.
    pub placed: u32,
    /// Transfers left out.
    pub unplaced: u32,
    /// MB placed.
    pub placed_mb: f64,
    /// MB left out.
    pub unplaced_mb: f64,
}

/// Tallies by priority.
#[napi(object, object_from_js = false)]
pub struct PriorityTallies {
    /// CRITICAL transfers.
    pub critical: PriorityTally,
    /// HIGH transfers.
    pub high: PriorityTally,
    /// NORMAL transfers.
    pub normal: PriorityTally,
    /// LOW transfers.
    pub low: PriorityTally,
}

/// Totals of a plan (the equivalent of the peer's `getScheduleSummary`).
#[napi(object, object_from_js = false)]
pub struct TransferPlanSummary {
    /// Transfers placed (whole).
    pub placed_transfers: u32,
    /// Transfers left out.
    pub unplaced_transfers: u32,
    /// MB placed.
    pub placed_mb: f64,
    /// MB left out.
    pub unplaced_mb: f64,
    /// Downlink MB placed.
    pub downlink_mb: f64,
    /// Uplink MB placed.
    pub uplink_mb: f64,
    /// Number of placements (pieces).
    pub pieces: u32,
    /// Windows holding at least one piece.
    pub windows_used: u32,
    /// Contact time of all windows inside the horizon, seconds.
    pub window_seconds: f64,
    /// Contact time used by placements, seconds.
    pub used_seconds: f64,
    /// usedSeconds ÷ windowSeconds (0 without window time): share of contact time used.
    pub utilisation: f64,
    /// End of the last piece; null when nothing was placed.
    pub completion_time: Option<DateTime<Utc>>,
    /// Counts and MB by priority.
    pub by_priority: PriorityTallies,
    /// Transfers left in the queue after this plan.
    pub pending_transfers: u32,
    /// MB left in the queue after this plan.
    pub pending_mb: f64,
}

/// The result of `plan`.
#[napi(object, object_from_js = false)]
pub struct TransferPlan {
    /// Pieces, sorted by start time.
    pub placements: Vec<TransferPlacement>,
    /// What could not be placed and why, in planning order.
    pub unplaced: Vec<UnplacedTransfer>,
    /// Totals.
    pub summary: TransferPlanSummary,
}

// ------------------------------------------------------------------ queue

#[derive(Default)]
struct Queue {
    q: core::TransferQueue,
    last_summary: Option<core::Summary>,
    last_pending: (u32, f64),
}

fn queued(t: &core::Transfer, description: &str) -> QueuedTransfer {
    QueuedTransfer {
        transfer_id: t.id.clone(),
        satellite_id: t.satellite.clone(),
        size_mb: t.size_mb,
        priority: priority_to_js(t.priority),
        deadline: t.deadline_ms.map(to_date),
        earliest_start: t.earliest_ms.map(to_date),
        direction: direction_to_js(t.direction),
        splittable: t.splittable,
        description: description.to_string(),
    }
}

fn tally(t: &core::PriorityTally) -> PriorityTally {
    PriorityTally {
        placed: t.placed as u32,
        unplaced: t.unplaced as u32,
        placed_mb: t.placed_mb,
        unplaced_mb: t.unplaced_mb,
    }
}

fn summary_to_js(s: &core::Summary, pending: (u32, f64)) -> TransferPlanSummary {
    let b = &s.by_priority;
    TransferPlanSummary {
        placed_transfers: s.placed_transfers as u32,
        unplaced_transfers: s.unplaced_transfers as u32,
        placed_mb: s.placed_mb,
        unplaced_mb: s.unplaced_mb,
        downlink_mb: s.downlink_mb,
        uplink_mb: s.uplink_mb,
        pieces: s.pieces as u32,
        windows_used: s.windows_used as u32,
        window_seconds: s.window_time_ms / 1000.0,
        used_seconds: s.used_time_ms / 1000.0,
        utilisation: s.utilisation,
        completion_time: s.completion_ms.map(to_date),
        by_priority: PriorityTallies {
            critical: tally(&b[0]),
            high: tally(&b[1]),
            normal: tally(&b[2]),
            low: tally(&b[3]),
        },
        pending_transfers: pending.0,
        pending_mb: pending.1,
    }
}

/// Plans the queue snapshot into `windows` and builds the JS result; with `dequeue`,
/// removes the placed transfers from the live queue.
fn run_plan(
    queue: &Mutex<Queue>,
    transfers: Vec<core::Transfer>,
    windows: Vec<core::Window>,
    options: PlanOptions,
    dequeue: bool,
) -> std::result::Result<TransferPlan, CoreError> {
    let p = core::plan(&windows, &transfers, &options)?;
    let mut q = lock(queue);
    if dequeue {
        let placed: HashSet<&str> = p
            .placements
            .iter()
            .map(|x| transfers[x.transfer].id.as_str())
            .collect();
        q.q.remove_all(placed);
    }
    let pending = (q.q.len() as u32, q.q.pending_mb());
    q.last_summary = Some(p.summary.clone());
    q.last_pending = pending;
    drop(q);
    let placements = p
        .placements
        .iter()
        .map(|x| {
            let t = &transfers[x.transfer];
            TransferPlacement {
                transfer_id: t.id.clone(),
                satellite_id: t.satellite.clone(),
                station: windows[x.window].station.clone(),
                start_time: to_date(x.start_ms),
                end_time: to_date(x.end_ms),
                size_mb: x.size_mb,
                window_index: x.window as u32,
                direction: direction_to_js(t.direction),
                priority: priority_to_js(t.priority),
            }
        })
        .collect();
    let unplaced = p
        .unplaced
        .iter()
        .map(|u| {
            let t = &transfers[u.transfer];
            UnplacedTransfer {
                transfer_id: t.id.clone(),
                satellite_id: t.satellite.clone(),
                size_mb: t.size_mb,
                priority: priority_to_js(t.priority),
                reason: u.message.clone(),
                code: u.reason.code().to_string(),
            }
        })
        .collect();
    Ok(TransferPlan {
        placements,
        unplaced,
        summary: summary_to_js(&p.summary, pending),
    })
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Every mutation validates first, so a poisoned lock still holds a consistent queue.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ TransferPlanner

/// A queue of transfers (uplink or downlink, with priority, deadline and earliest
/// start) and a planner that fits them into contact windows.
///
/// Model: the rate of a window is uniform over it; uplink and downlink of a satellite
/// share its contact time (half duplex) and a satellite talks to one station at a time;
/// a station with A antennas serves at most A satellites at any instant. Planning order:
/// priority, then earlier deadline (none last), then queue order; each transfer in turn
/// gets the placement that finishes earliest, whole or not at all. See docs/planner.md.
#[napi(js_name = "TransferPlanner")]
pub struct JsTransferPlanner {
    queue: Arc<Mutex<Queue>>,
    options: PlanOptions,
}

impl JsTransferPlanner {
    fn q(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    fn plan_args(
        &self,
        windows: Unknown,
        options: Option<Object>,
    ) -> JsResult<(Vec<core::Transfer>, Vec<core::Window>, PlanOptions, bool)> {
        let windows = read_windows(&windows)?;
        let mut o = self.options.clone();
        let mut dequeue = false;
        if let Some(obj) = options.as_ref() {
            let r = Reader {
                obj,
                what: "options",
            };
            o.start_ms = r.date("startTime")?;
            o.end_ms = r.date("endTime")?;
            dequeue = r.boolean("dequeue")?.unwrap_or(false);
        }
        core::validate_options(&o).map_err(js_err)?;
        let transfers = self.q().q.snapshot();
        Ok((transfers, windows, o, dequeue))
    }
}

#[napi]
impl JsTransferPlanner {
    /// Creates an empty planner. `ERR_INVALID_ARG` for an antenna count that is not an
    /// integer ≥ 1.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<TransferPlannerOptions>) -> napi::Result<Self, String> {
        let mut o = PlanOptions::default();
        if let Some(opts) = options {
            if let Some(a) = opts.antennas_per_station {
                o.antennas_per_station = antenna_count("antennasPerStation", a)?;
            }
            for (k, v) in opts.station_antennas.unwrap_or_default() {
                let n = antenna_count(&format!("stationAntennas['{k}']"), v)?;
                o.station_antennas.insert(k, n);
            }
        }
        core::validate_options(&o).map_err(js_err)?;
        Ok(JsTransferPlanner {
            queue: Arc::new(Mutex::new(Queue::default())),
            options: o,
        })
    }

    /// Queues a transfer and returns its id. `ERR_INVALID_ARG` for a size that is not
    /// finite and > 0, an unknown priority or direction, an invalid Date;
    /// `ERR_DUPLICATE_TRANSFER` for an id already queued.
    #[napi(catch_unwind, ts_args_type = "transfer: TransferRequest")]
    pub fn enqueue(&self, transfer: Object) -> napi::Result<String, String> {
        let r = Reader {
            obj: &transfer,
            what: "transfer",
        };
        let satellite = r.required("satelliteId", r.string("satelliteId")?, "a string")?;
        let size_mb = r.required("sizeMb", r.num("sizeMb")?, "a number")?;
        let priority = match r.string("priority")? {
            Some(s) => parse_priority("transfer.priority", &s)?,
            None => Priority::Normal,
        };
        let direction = match r.string("direction")? {
            Some(s) => parse_direction("transfer.direction", &s)?,
            None => Direction::Downlink,
        };
        let deadline_ms = r.date("deadline")?;
        let earliest_ms = r.date("earliestStart")?;
        let splittable = r.boolean("splittable")?.unwrap_or(true);
        let description = r.string("description")?.unwrap_or_default();
        let given = r.string("transferId")?;
        let mut q = self.q();
        let id = match given {
            Some(id) => id,
            None => q.q.next_id(),
        };
        let t = core::Transfer {
            id: id.clone(),
            satellite,
            size_mb,
            priority,
            deadline_ms,
            direction,
            earliest_ms,
            splittable,
        };
        q.q.push("transfer", t, description).map_err(js_err)?;
        Ok(id)
    }

    /// Removes a queued transfer; false when no transfer has that id.
    #[napi(catch_unwind)]
    pub fn remove(&self, transfer_id: String) -> bool {
        self.q().q.remove(&transfer_id).is_some()
    }

    /// The transfer planned first (highest priority, earliest deadline, first queued), or null.
    #[napi(catch_unwind)]
    pub fn peek(&self) -> Option<QueuedTransfer> {
        self.q().q.peek().map(|(t, d)| queued(t, d))
    }

    /// Removes and returns the transfer `peek` would return, or null when empty.
    #[napi(catch_unwind)]
    pub fn pop(&self) -> Option<QueuedTransfer> {
        self.q().q.pop().map(|(t, d)| queued(&t, &d))
    }

    /// Number of queued transfers.
    #[napi(getter, catch_unwind)]
    pub fn size(&self) -> u32 {
        self.q().q.len() as u32
    }

    /// Total MB queued.
    #[napi(getter, catch_unwind)]
    pub fn pending_mb(&self) -> f64 {
        self.q().q.pending_mb()
    }

    /// True when nothing is queued.
    #[napi(catch_unwind)]
    pub fn is_empty(&self) -> bool {
        self.q().q.is_empty()
    }

    /// Empties the queue.
    #[napi(catch_unwind)]
    pub fn clear(&self) {
        self.q().q.clear();
    }

    /// Every queued transfer, in planning order.
    #[napi(catch_unwind)]
    pub fn pending(&self) -> Vec<QueuedTransfer> {
        self.q().q.iter().map(|(t, d)| queued(t, d)).collect()
    }

    /// Removes and returns, in planning order, the transfers that fit a capacity of
    /// `capacityMb` taken first-fit (each one that still fits is taken). The equivalent of
    /// the peer's `PriorityQueue.getTasksForWindow`, without time or satellites.
    #[napi(catch_unwind)]
    pub fn take_for_capacity(&self, capacity_mb: f64) -> napi::Result<Vec<QueuedTransfer>, String> {
        if !(capacity_mb.is_finite() && capacity_mb >= 0.0) {
            return Err(invalid_arg(format!(
                "capacityMb must be a finite number ≥ 0, got {capacity_mb}"
            )));
        }
        Ok(self
            .q()
            .q
            .take_for_capacity(capacity_mb)
            .iter()
            .map(|(t, d)| queued(t, d))
            .collect())
    }

    /// Plans the queued transfers into `windows` (see the class comment). A transfer for a
    /// satellite without windows is reported in `unplaced`, not thrown. Throws
    /// `ERR_INVALID_ARG` for a malformed window (missing field, invalid Date, end before
    /// start, negative capacity) naming `windows[i]`, or bad options. The queue is left
    /// as it is unless `dequeue: true`.
    #[napi(
        catch_unwind,
        ts_args_type = "windows: Array<PlannerWindow>, options?: TransferPlanOptions"
    )]
    pub fn plan(
        &self,
        windows: Unknown,
        options: Option<Object>,
    ) -> napi::Result<TransferPlan, String> {
        let (t, w, o, dq) = self.plan_args(windows, options)?;
        run_plan(&self.queue, t, w, o, dq).map_err(js_err)
    }

    /// `plan` off the main thread (windows and queue are read before it leaves).
    #[napi(
        catch_unwind,
        ts_args_type = "windows: Array<PlannerWindow>, options?: TransferPlanOptions",
        ts_return_type = "Promise<TransferPlan>"
    )]
    pub fn plan_async(
        &self,
        windows: Unknown,
        options: Option<Object>,
    ) -> napi::Result<AsyncTask<CoreTask<TransferPlan>>, String> {
        let (t, w, o, dq) = self.plan_args(windows, options)?;
        let queue = self.queue.clone();
        Ok(CoreTask::new(move || run_plan(&queue, t, w, o, dq)))
    }

    /// Summary of the last `plan` (the peer's `getScheduleSummary`), or null before any.
    #[napi(catch_unwind)]
    pub fn last_summary(&self) -> Option<TransferPlanSummary> {
        let q = self.q();
        q.last_summary
            .as_ref()
            .map(|s| summary_to_js(s, q.last_pending))
    }

    /// Antennas of every station not listed in `stationAntennas`.
    #[napi(getter, catch_unwind)]
    pub fn antennas_per_station(&self) -> u32 {
        self.options.antennas_per_station
    }

    /// Antennas of a station (its override, else `antennasPerStation`).
    #[napi(catch_unwind)]
    pub fn antennas_of(&self, station: String) -> u32 {
        self.options
            .station_antennas
            .get(&station)
            .copied()
            .unwrap_or(self.options.antennas_per_station)
    }
}
