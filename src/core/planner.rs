//! Transfer planner: fits queued transfers (uplink or downlink, with priority, deadline
//! and earliest start) into contact windows.
//!
//! # Model (stated, and tested)
//! - A window is one contact of one satellite with one station over `[start, end]`
//!   (Unix ms) with a downlink and an uplink capacity in MB (10^6 bytes). The rate is
//!   assumed **uniform** over the window: a piece of duration `d` carries
//!   `capacity × d ÷ (end − start)` MB. A window of zero length carries nothing.
//! - **Half duplex / shared antenna time**: uplink and downlink of a satellite share its
//!   contact time; a satellite talks to **at most one station at a time** and does one
//!   transfer at a time. So the MB of a direction placed in a window never exceed that
//!   direction's capacity, and a window used fully for downlink has no time left for
//!   uplink (a plan valid under this model is also valid on full-duplex hardware).
//! - A station with `A` antennas (default 1, overridable per station) serves at most `A`
//!   satellites at any instant.
//! - Planning order: priority (CRITICAL, HIGH, NORMAL, LOW), then earlier deadline (no
//!   deadline last), then queue order. Each transfer in turn gets the placement that
//!   **finishes earliest** given the reservations of the transfers before it; it is
//!   placed whole or not at all (never partially). A splittable transfer may use any
//!   number of pieces in any windows of its satellite; an unsplittable one uses one
//!   contiguous piece in one window.
//! - At every instant a splittable transfer uses the free window of highest rate, so the
//!   MB it can get by any time is the maximum possible: a transfer is left unplaced only
//!   when no placement exists given the transfers before it ("placeable" is exact).
//!
//! Cost: O(n log n) sorting plus, per transfer, a sweep over its satellite's windows that
//! overlap its usable interval and the reservations inside them (ordered-map range
//! queries).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::error::{Code, Error, Result};

/// Priority of a transfer; lower value is planned first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Planned first.
    Critical = 0,
    /// After Critical.
    High = 1,
    /// The default.
    Normal = 2,
    /// Planned last.
    Low = 3,
}

impl Priority {
    /// Every priority, in planning order.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];
    /// Lower-case name, as in the JS enum values.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
    /// The priority of a lower-case name.
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Direction of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Ground to satellite: uses the window's uplink capacity.
    Uplink,
    /// Satellite to ground: uses the window's downlink capacity.
    Downlink,
}

/// A contact window as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Satellite of the pass.
    pub satellite: String,
    /// Station name.
    pub station: String,
    /// Start, Unix ms.
    pub start_ms: f64,
    /// End, Unix ms (≥ start).
    pub end_ms: f64,
    /// Downlink capacity of the whole window, MB.
    pub downlink_mb: f64,
    /// Uplink capacity of the whole window, MB.
    pub uplink_mb: f64,
}

impl Window {
    fn rate(&self, d: Direction) -> f64 {
        let len = self.end_ms - self.start_ms;
        if len <= 0.0 {
            return 0.0;
        }
        match d {
            Direction::Downlink => self.downlink_mb / len,
            Direction::Uplink => self.uplink_mb / len,
        }
    }
}

/// A transfer to plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// Unique id.
    pub id: String,
    /// Satellite whose windows carry it.
    pub satellite: String,
    /// Size, MB (> 0).
    pub size_mb: f64,
    /// Priority.
    pub priority: Priority,
    /// Every piece ends by this instant (Unix ms).
    pub deadline_ms: Option<f64>,
    /// Uplink or downlink.
    pub direction: Direction,
    /// No piece starts before this instant (Unix ms).
    pub earliest_ms: Option<f64>,
    /// May it be cut into pieces (across and within windows)?
    pub splittable: bool,
}

/// Planner options.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// Antennas of a station not listed in `station_antennas`. Default 1.
    pub antennas_per_station: u32,
    /// Per-station antenna counts.
    pub station_antennas: HashMap<String, u32>,
    /// Horizon: nothing is placed before this instant (ms). Default: none.
    pub start_ms: Option<f64>,
    /// Horizon: nothing is placed after this instant (ms). Default: none.
    pub end_ms: Option<f64>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            antennas_per_station: 1,
            station_antennas: HashMap::new(),
            start_ms: None,
            end_ms: None,
        }
    }
}

/// One piece of a placed transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Index of the transfer in the input.
    pub transfer: usize,
    /// Index of the window in the input.
    pub window: usize,
    /// Start of the piece, Unix ms.
    pub start_ms: f64,
    /// End of the piece, Unix ms.
    pub end_ms: f64,
    /// MB carried by the piece.
    pub size_mb: f64,
}

/// Why a transfer was not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No window at all for the transfer's satellite.
    NoWindow,
    /// Windows exist, but none overlaps the horizon and the earliest start.
    OutsideHorizon,
    /// The deadline passes before any usable window (or before the horizon / earliest start).
    DeadlinePassed,
    /// Alone, it would still not fit: the capacity of its windows in its direction, before
    /// its deadline and inside the horizon, is less than its size.
    InsufficientCapacity,
    /// Unsplittable, and no single window has enough capacity (it would fit if split).
    NoSingleWindow,
    /// It would fit alone, but the room was taken by transfers ahead in the planning order
    /// (higher priority, or same priority with an earlier deadline / earlier in the queue).
    CapacityTaken,
}

impl Reason {
    /// The stable string code of the reason (`NO_WINDOW`, …).
    pub fn code(self) -> &'static str {
        match self {
            Reason::NoWindow => "NO_WINDOW",
            Reason::OutsideHorizon => "OUTSIDE_HORIZON",
            Reason::DeadlinePassed => "DEADLINE_PASSED",
            Reason::InsufficientCapacity => "INSUFFICIENT_CAPACITY",
            Reason::NoSingleWindow => "NO_SINGLE_WINDOW",
            Reason::CapacityTaken => "CAPACITY_TAKEN",
        }
    }
}

/// A transfer that could not be placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    /// Index of the transfer in the input.
    pub transfer: usize,
    /// Why.
    pub reason: Reason,
    /// Human explanation.
    pub message: String,
}

/// Per-priority tallies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorityTally {
    /// Transfers placed.
    pub placed: usize,
    /// Transfers left out.
    pub unplaced: usize,
    /// MB placed.
    pub placed_mb: f64,
    /// MB left out.
    pub unplaced_mb: f64,
}

/// Totals of a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Transfers placed.
    pub placed_transfers: usize,
    /// Transfers left out.
    pub unplaced_transfers: usize,
    /// MB placed.
    pub placed_mb: f64,
    /// MB left out.
    pub unplaced_mb: f64,
    /// Downlink MB placed.
    pub downlink_mb: f64,
    /// Uplink MB placed.
    pub uplink_mb: f64,
    /// Number of placements.
    pub pieces: usize,
    /// Windows holding at least one piece.
    pub windows_used: usize,
    /// Contact time (ms) of all windows inside the horizon.
    pub window_time_ms: f64,
    /// Contact time (ms) used by placements.
    pub used_time_ms: f64,
    /// used_time_ms ÷ window_time_ms (0 when there is no window time).
    pub utilisation: f64,
    /// End of the last piece (ms), if any.
    pub completion_ms: Option<f64>,
    /// Indexed by `Priority as usize`.
    pub by_priority: [PriorityTally; 4],
}

/// The result of `plan`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Pieces sorted by start time, then window index.
    pub placements: Vec<Placement>,
    /// Unplaced transfers, in planning order.
    pub unplaced: Vec<Unplaced>,
    /// Transfer indices in planning order.
    pub order: Vec<usize>,
    pub summary: Summary,
}

// ------------------------------------------------------------------ validation

fn check_time(what: &str, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::invalid_arg(format!(
            "{what} must be a finite time, got {v}"
        )));
    }
    Ok(())
}

/// Validates one window (`what` names it in messages, e.g. `windows[3]`).
pub fn validate_window(what: &str, w: &Window) -> Result<()> {
    check_time(&format!("{what}.startTime"), w.start_ms)?;
    check_time(&format!("{what}.endTime"), w.end_ms)?;
    if w.end_ms < w.start_ms {
        return Err(Error::invalid_arg(format!(
            "{what}.endTime ({}) is before {what}.startTime ({})",
            w.end_ms, w.start_ms
        )));
    }
    for (name, v) in [
        ("dataCapacityMb", w.downlink_mb),
        ("uplinkCapacityMb", w.uplink_mb),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::invalid_arg(format!(
                "{what}.{name} must be a finite number ≥ 0, got {v}"
            )));
        }
    }
    if w.satellite.is_empty() {
        return Err(Error::invalid_arg(format!(
            "{what}.satelliteId must be a non-empty string"
        )));
    }
    Ok(())
}

/// Validates one transfer.
pub fn validate_transfer(what: &str, t: &Transfer) -> Result<()> {
    if !(t.size_mb.is_finite() && t.size_mb > 0.0) {
        return Err(Error::invalid_arg(format!(
            "{what}.sizeMb must be a finite number > 0, got {}",
            t.size_mb
        )));
    }
    if t.satellite.is_empty() {
        return Err(Error::invalid_arg(format!(
            "{what}.satelliteId must be a non-empty string"
        )));
    }
    if t.id.is_empty() {
        return Err(Error::invalid_arg(format!(
            "{what}.transferId must be a non-empty string"
        )));
    }
    if let Some(d) = t.deadline_ms {
        check_time(&format!("{what}.deadline"), d)?;
    }
    if let Some(e) = t.earliest_ms {
        check_time(&format!("{what}.earliestStart"), e)?;
    }
    Ok(())
}

/// Validates options.
pub fn validate_options(o: &PlanOptions) -> Result<()> {
    if o.antennas_per_station == 0 {
        return Err(Error::invalid_arg(
            "antennasPerStation must be an integer ≥ 1, got 0",
        ));
    }
    for (k, &v) in &o.station_antennas {
        if v == 0 {
            return Err(Error::invalid_arg(format!(
                "stationAntennas['{k}'] must be an integer ≥ 1, got 0"
            )));
        }
    }
    if let Some(s) = o.start_ms {
        check_time("options.startTime", s)?;
    }
    if let Some(e) = o.end_ms {
        check_time("options.endTime", e)?;
    }
    if let (Some(s), Some(e)) = (o.start_ms, o.end_ms) {
        if e < s {
            return Err(Error::invalid_arg(format!(
                "options.endTime ({e}) is before options.startTime ({s})"
            )));
        }
    }
    Ok(())
}

/// Planning order of transfers: priority, then deadline (none last), then index.
pub fn planning_order(transfers: &[Transfer]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..transfers.len()).collect();
    order.sort_by(|&a, &b| compare(&transfers[a], &transfers[b]).then(a.cmp(&b)));
    order
}

/// Compares two transfers by priority, then deadline (none last); equal when both tie.
pub fn compare(a: &Transfer, b: &Transfer) -> Ordering {
    a.priority.cmp(&b.priority).then_with(|| {
        let da = a.deadline_ms.unwrap_or(f64::INFINITY);
        let db = b.deadline_ms.unwrap_or(f64::INFINITY);
        da.total_cmp(&db)
    })
}

// ------------------------------------------------------------------ bookkeeping

/// f64 with a total order, for map keys (NaN is rejected by validation).
#[derive(Debug, Clone, Copy, PartialEq)]
struct T(f64);
impl Eq for T {}
impl PartialOrd for T {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for T {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Disjoint busy intervals of a satellite: start → end.
#[derive(Default)]
struct Busy(BTreeMap<T, f64>);

impl Busy {
    /// Busy intervals overlapping (a, b), clipped to [a, b], in time order.
    fn overlapping(&self, a: f64, b: f64, out: &mut Vec<(f64, f64)>) {
        if let Some((s, &e)) = self.0.range(..=T(a)).next_back() {
            if e > a {
                out.push((s.0.max(a), e.min(b)));
            }
        }
        for (s, &e) in self.0.range((
            std::ops::Bound::Excluded(T(a)),
            std::ops::Bound::Excluded(T(b)),
        )) {
            out.push((s.0, e.min(b)));
        }
    }
    fn insert(&mut self, a: f64, b: f64) {
        self.0.insert(T(a), b);
    }
}

/// Number of satellites a station serves, as a step function: breakpoint → count on
/// [breakpoint, next breakpoint).
#[derive(Default)]
struct Load(BTreeMap<T, u32>);

impl Load {
    fn at(&self, t: f64) -> u32 {
        self.0
            .range(..=T(t))
            .next_back()
            .map(|(_, &c)| c)
            .unwrap_or(0)
    }
    /// Intervals inside (a, b) where the count is ≥ cap, clipped, in time order.
    fn saturated(&self, a: f64, b: f64, cap: u32, out: &mut Vec<(f64, f64)>) {
        let mut cur_start = if self.at(a) >= cap { Some(a) } else { None };
        for (k, &c) in self.0.range((
            std::ops::Bound::Excluded(T(a)),
            std::ops::Bound::Excluded(T(b)),
        )) {
            match (cur_start, c >= cap) {
                (None, true) => cur_start = Some(k.0),
                (Some(s), false) => {
                    out.push((s, k.0));
                    cur_start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = cur_start {
            out.push((s, b));
        }
    }
    fn add(&mut self, a: f64, b: f64) {
        let ca = self.at(a);
        let cb = self.at(b);
        self.0.insert(T(a), ca);
        self.0.insert(T(b), cb);
        for (_, c) in self.0.range_mut(T(a)..T(b)) {
            *c += 1;
        }
    }
}

/// Free sub-intervals of [a, b] once the (unsorted, possibly overlapping) blocked
/// intervals are removed.
fn subtract(a: f64, b: f64, blocked: &mut [(f64, f64)], out: &mut Vec<(f64, f64)>) {
    blocked.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut cur = a;
    for &(s, e) in blocked.iter() {
        if s > cur {
            out.push((cur, s.min(b)));
        }
        if e > cur {
            cur = e;
        }
        if cur >= b {
            break;
        }
    }
    if cur < b {
        out.push((cur, b));
    }
    out.retain(|&(s, e)| e > s);
}

struct State<'a> {
    windows: &'a [Window],
    /// Satellite name → its index; windows of each satellite sorted by start.
    sat_index: HashMap<&'a str, usize>,
    sat_windows: Vec<Vec<usize>>,
    /// Station index of each window, and antennas of each station.
    window_station: Vec<usize>,
    station_antennas: Vec<u32>,
    sat_busy: Vec<Busy>,
    station_load: Vec<Load>,
    /// Windows with no free time left at all (reservations only grow, so this is final).
    full: Vec<std::cell::Cell<bool>>,
    lo: f64,
    hi: f64,
}

/// A free stretch (a, b) of window w.
#[derive(Clone, Copy, Debug)]
struct Free {
    a: f64,
    b: f64,
    w: usize,
    rate: f64,
}

type Pieces = Vec<(usize, f64, f64, f64)>;

impl<'a> State<'a> {
    fn new(windows: &'a [Window], options: &PlanOptions) -> Self {
        let mut sat_index: HashMap<&str, usize> = HashMap::new();
        let mut sat_windows: Vec<Vec<usize>> = Vec::new();
        let mut station_index: HashMap<&str, usize> = HashMap::new();
        let mut station_antennas = Vec::new();
        let mut window_station = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            let n = sat_index.len();
            let si = *sat_index.entry(w.satellite.as_str()).or_insert(n);
            if si == sat_windows.len() {
                sat_windows.push(Vec::new());
            }
            sat_windows[si].push(i);
            let n = station_index.len();
            let k = *station_index.entry(w.station.as_str()).or_insert(n);
            if k == station_antennas.len() {
                station_antennas.push(
                    options
                        .station_antennas
                        .get(&w.station)
                        .copied()
                        .unwrap_or(options.antennas_per_station),
                );
            }
            window_station.push(k);
        }
        for v in &mut sat_windows {
            v.sort_by(|&a, &b| {
                windows[a]
                    .start_ms
                    .total_cmp(&windows[b].start_ms)
                    .then(a.cmp(&b))
            });
        }
        let (ns, nk) = (sat_windows.len(), station_antennas.len());
        State {
            windows,
            sat_index,
            sat_windows,
            window_station,
            station_antennas,
            sat_busy: (0..ns).map(|_| Busy::default()).collect(),
            station_load: (0..nk).map(|_| Load::default()).collect(),
            full: (0..windows.len())
                .map(|_| std::cell::Cell::new(false))
                .collect(),
            lo: options.start_ms.unwrap_or(f64::NEG_INFINITY),
            hi: options.end_ms.unwrap_or(f64::INFINITY),
        }
    }

    /// Usable interval of a transfer: horizon ∩ [earliest, deadline].
    fn span(&self, t: &Transfer) -> (f64, f64) {
        let lo = self.lo.max(t.earliest_ms.unwrap_or(f64::NEG_INFINITY));
        let hi = self.hi.min(t.deadline_ms.unwrap_or(f64::INFINITY));
        (lo, hi)
    }

    /// Appends the free stretches of window `wi` inside (lo, hi) for satellite `si`
    /// (`reserved`: whether other transfers' reservations count).
    #[allow(clippy::too_many_arguments)]
    fn free_in(
        &self,
        si: usize,
        wi: usize,
        rate: f64,
        lo: f64,
        hi: f64,
        reserved: bool,
        blocked: &mut Vec<(f64, f64)>,
        out: &mut Vec<Free>,
    ) {
        let w = &self.windows[wi];
        let a = w.start_ms.max(lo);
        let b = w.end_ms.min(hi);
        if b <= a || (reserved && self.full[wi].get()) {
            return;
        }
        blocked.clear();
        if reserved {
            self.sat_busy[si].overlapping(a, b, blocked);
            let k = self.window_station[wi];
            self.station_load[k].saturated(a, b, self.station_antennas[k], blocked);
        }
        let mut parts = Vec::new();
        subtract(a, b, blocked, &mut parts);
        if reserved && parts.is_empty() && a == w.start_ms && b == w.end_ms {
            self.full[wi].set(true);
        }
        out.extend(parts.into_iter().map(|(a, b)| Free { a, b, w: wi, rate }));
    }

    /// Earliest-finishing placement of t (pieces: window, start, end, MB), or None.
    /// Windows are visited in start order and the visit stops as soon as no later
    /// window can change the answer.
    fn place(&self, t: &Transfer, reserved: bool, splittable: bool) -> Option<Pieces> {
        let (lo, hi) = self.span(t);
        if hi <= lo {
            return None;
        }
        let si = *self.sat_index.get(t.satellite.as_str())?;
        let ws = &self.sat_windows[si];
        let n = ws.partition_point(|&i| self.windows[i].start_ms < hi);
        let need = t.size_mb;
        let tol = need * 1e-12;
        let mut blocked = Vec::new();
        let mut free: Vec<Free> = Vec::new();
        if !splittable {
            let mut best: Option<(f64, usize, f64)> = None;
            for &wi in &ws[..n] {
                if best.is_some_and(|(e, ..)| self.windows[wi].start_ms >= e) {
                    break; // starts after the best finish: cannot beat it
                }
                let rate = self.windows[wi].rate(t.direction);
                if rate <= 0.0 {
                    continue;
                }
                free.clear();
                self.free_in(si, wi, rate, lo, hi, reserved, &mut blocked, &mut free);
                for f in &free {
                    if (f.b - f.a) * f.rate + tol >= need {
                        let end = (f.a + need / f.rate).min(f.b);
                        if best.is_none_or(|(e, w, _)| end < e || (end == e && f.w < w)) {
                            best = Some((end, f.w, f.a));
                        }
                        break; // later stretches of this window finish later
                    }
                }
            }
            return best.map(|(end, w, a)| vec![(w, a, end, need)]);
        }
        // Splittable: collect windows in start order; once their free capacity could
        // cover the need, sweep (at each instant the free window of highest rate). The
        // result is final when the next window starts at or after its completion.
        let mut bound = 0.0;
        let mut next_check = need;
        let mut result: Option<(f64, Pieces)> = None;
        let mut k = 0;
        loop {
            let next_start = if k < n {
                self.windows[ws[k]].start_ms
            } else {
                f64::INFINITY
            };
            if let Some((c, _)) = &result {
                if next_start >= *c {
                    return result.map(|(_, p)| p);
                }
            }
            if bound + tol >= next_check && (result.is_none() || next_start == f64::INFINITY) {
                match sweep(&free, need, tol) {
                    Some((c, p)) => {
                        if next_start >= c {
                            return Some(p);
                        }
                        result = Some((c, p));
                    }
                    None => {
                        if k >= n {
                            return None;
                        }
                        let got = best_rate_segments(&free)
                            .iter()
                            .map(|s| (s.b - s.a) * s.rate)
                            .sum::<f64>();
                        next_check = bound + (need - got).max(tol);
                    }
                }
            }
            if k >= n {
                return match result {
                    Some((_, p)) => Some(p),
                    None => sweep(&free, need, tol).map(|(_, p)| p),
                };
            }
            let wi = ws[k];
            k += 1;
            let rate = self.windows[wi].rate(t.direction);
            if rate <= 0.0 {
                continue;
            }
            let before = free.len();
            self.free_in(si, wi, rate, lo, hi, reserved, &mut blocked, &mut free);
            bound += free[before..]
                .iter()
                .map(|f| (f.b - f.a) * f.rate)
                .sum::<f64>();
            if result.is_some() {
                // A window starting before the completion may finish it earlier: re-sweep
                // once the windows up to the completion are in.
                let c = result.as_ref().map(|r| r.0).unwrap_or(f64::INFINITY);
                let ns = if k < n {
                    self.windows[ws[k]].start_ms
                } else {
                    f64::INFINITY
                };
                if ns >= c {
                    return sweep(&free, need, tol).map(|(_, p)| p);
                }
            }
        }
    }

    fn reserve(&mut self, si: usize, pieces: &[(usize, f64, f64, f64)]) {
        for &(w, a, b, _) in pieces {
            self.sat_busy[si].insert(a, b);
            self.station_load[self.window_station[w]].add(a, b);
        }
    }
}

/// Consumes the best-rate segments of `free` in time order until `need` MB are
/// covered: (completion time, pieces) or None.
fn sweep(free: &[Free], need: f64, tol: f64) -> Option<(f64, Pieces)> {
    let mut pieces: Pieces = Vec::new();
    let mut left = need;
    for s in best_rate_segments(free) {
        let cap = (s.b - s.a) * s.rate;
        let (end, mb) = if cap + tol >= left {
            ((s.a + left / s.rate).min(s.b), left)
        } else {
            (s.b, cap)
        };
        match pieces.last_mut() {
            Some(p) if p.0 == s.w && p.2 == s.a => {
                p.2 = end;
                p.3 += mb;
            }
            _ => pieces.push((s.w, s.a, end, mb)),
        }
        left -= mb;
        if left <= tol {
            return Some((end, pieces));
        }
    }
    None
}

/// Splits free stretches (possibly overlapping across windows) into disjoint segments,
/// each using the highest-rate stretch available there (ties: lower window index).
fn best_rate_segments(free: &[Free]) -> Vec<Free> {
    let mut pts: Vec<f64> = free.iter().flat_map(|f| [f.a, f.b]).collect();
    pts.sort_by(|x, y| x.total_cmp(y));
    pts.dedup();
    let mut sorted: Vec<Free> = free.to_vec();
    sorted.sort_by(|x, y| x.a.total_cmp(&y.a));
    let mut active: Vec<Free> = Vec::new();
    let mut next = 0;
    let mut out: Vec<Free> = Vec::new();
    for k in 0..pts.len().saturating_sub(1) {
        let (a, b) = (pts[k], pts[k + 1]);
        while next < sorted.len() && sorted[next].a <= a {
            active.push(sorted[next]);
            next += 1;
        }
        active.retain(|f| f.b > a);
        let best = active
            .iter()
            .filter(|f| f.a <= a && f.b >= b)
            .max_by(|x, y| x.rate.total_cmp(&y.rate).then(y.w.cmp(&x.w)));
        if let Some(f) = best {
            match out.last_mut() {
                Some(l) if l.w == f.w && l.b == a => l.b = b,
                _ => out.push(Free {
                    a,
                    b,
                    w: f.w,
                    rate: f.rate,
                }),
            }
        }
    }
    out
}

// ------------------------------------------------------------------ plan

/// Plans `transfers` into `windows`. Validates everything first (ERR_INVALID_ARG naming
/// the element and value; ERR_DUPLICATE_TRANSFER for a repeated id).
pub fn plan(windows: &[Window], transfers: &[Transfer], options: &PlanOptions) -> Result<Plan> {
    validate_options(options)?;
    for (i, w) in windows.iter().enumerate() {
        validate_window(&format!("windows[{i}]"), w)?;
    }
    let mut ids = HashSet::with_capacity(transfers.len());
    for (i, t) in transfers.iter().enumerate() {
        validate_transfer(&format!("transfers[{i}]"), t)?;
        if !ids.insert(t.id.as_str()) {
            return Err(Error::new(
                Code::DuplicateTransfer,
                format!("transfers[{i}].transferId '{}' is already used", t.id),
            ));
        }
    }
    let mut st = State::new(windows, options);
    let order = planning_order(transfers);
    let mut placements = Vec::new();
    let mut unplaced = Vec::new();
    let mut summary = Summary::default();
    for &ti in &order {
        let t = &transfers[ti];
        let tally = &mut summary.by_priority[t.priority as usize];
        if let Some(pieces) = st.place(t, true, t.splittable) {
            let si = st.sat_index[t.satellite.as_str()];
            st.reserve(si, &pieces);
            tally.placed += 1;
            tally.placed_mb += t.size_mb;
            for (w, a, b, mb) in pieces {
                placements.push(Placement {
                    transfer: ti,
                    window: w,
                    start_ms: a,
                    end_ms: b,
                    size_mb: mb,
                });
            }
        } else {
            tally.unplaced += 1;
            tally.unplaced_mb += t.size_mb;
            let (reason, message) = diagnose(&st, t);
            unplaced.push(Unplaced {
                transfer: ti,
                reason,
                message,
            });
        }
    }
    placements.sort_by(|a, b| {
        a.start_ms
            .total_cmp(&b.start_ms)
            .then(a.window.cmp(&b.window))
    });
    // Summary.
    let mut used = HashSet::new();
    for p in &placements {
        used.insert(p.window);
        summary.used_time_ms += p.end_ms - p.start_ms;
        match transfers[p.transfer].direction {
            Direction::Downlink => summary.downlink_mb += p.size_mb,
            Direction::Uplink => summary.uplink_mb += p.size_mb,
        }
        summary.completion_ms = Some(
            summary
                .completion_ms
                .map_or(p.end_ms, |c: f64| c.max(p.end_ms)),
        );
    }
    for w in windows {
        summary.window_time_ms += (w.end_ms.min(st.hi) - w.start_ms.max(st.lo)).max(0.0);
    }
    summary.pieces = placements.len();
    summary.windows_used = used.len();
    summary.placed_transfers = summary.by_priority.iter().map(|t| t.placed).sum();
    summary.unplaced_transfers = summary.by_priority.iter().map(|t| t.unplaced).sum();
    summary.placed_mb = summary.by_priority.iter().map(|t| t.placed_mb).sum();
    summary.unplaced_mb = summary.by_priority.iter().map(|t| t.unplaced_mb).sum();
    summary.utilisation = if summary.window_time_ms > 0.0 {
        summary.used_time_ms / summary.window_time_ms
    } else {
        0.0
    };
    Ok(Plan {
        placements,
        unplaced,
        order,
        summary,
    })
}

fn diagnose(st: &State, t: &Transfer) -> (Reason, String) {
    let sat = &t.satellite;
    let Some(&si) = st.sat_index.get(sat.as_str()) else {
        return (Reason::NoWindow, format!("no window for satellite '{sat}'"));
    };
    let ws = &st.sat_windows[si];
    let (lo, hi) = st.span(t);
    let rate_ok = |w: &Window| w.rate(t.direction) > 0.0;
    let dir = match t.direction {
        Direction::Downlink => "downlink",
        Direction::Uplink => "uplink",
    };
    let overlaps = |w: &Window, a: f64, b: f64| w.start_ms.max(a) < w.end_ms.min(b);
    if !ws.iter().any(|&i| overlaps(&st.windows[i], lo, hi)) {
        // Would any window be usable without the deadline?
        let lo2 = lo;
        let hi2 = st.hi;
        if t.deadline_ms.is_some() && ws.iter().any(|&i| overlaps(&st.windows[i], lo2, hi2)) {
            return (
                Reason::DeadlinePassed,
                format!(
                    "deadline {} passes before any window of satellite '{sat}'",
                    t.deadline_ms.unwrap_or(0.0)
                ),
            );
        }
        if hi <= lo && t.deadline_ms.is_some_and(|d| d <= lo) {
            return (
                Reason::DeadlinePassed,
                format!(
                    "deadline {} is not after the horizon start / earliest start",
                    t.deadline_ms.unwrap_or(0.0)
                ),
            );
        }
        return (
            Reason::OutsideHorizon,
            format!("no window of satellite '{sat}' inside the horizon after the earliest start"),
        );
    }
    if st.place(t, false, true).is_none() {
        let usable = ws
            .iter()
            .any(|&i| rate_ok(&st.windows[i]) && overlaps(&st.windows[i], lo, hi));
        let what = if usable { "not enough" } else { "no" };
        return (
            Reason::InsufficientCapacity,
            format!("{what} {dir} capacity for {} MB in the windows of satellite '{sat}' before its deadline, even alone", t.size_mb),
        );
    }
    if !t.splittable && st.place(t, false, false).is_none() {
        return (Reason::NoSingleWindow, format!("unsplittable, and no single window of satellite '{sat}' has {} MB of {dir} capacity", t.size_mb));
    }
    (
        Reason::CapacityTaken,
        "its capacity was taken by transfers ahead in the planning order".to_string(),
    )
}

// ------------------------------------------------------------------ queue

/// Queue order key: priority, deadline (none last), insertion sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey(Priority, T, u64);

/// A queue of transfers kept in planning order (priority, then deadline with none last,
/// then insertion order), with O(log n) insert, remove by id, peek and pop.
#[derive(Default)]
pub struct TransferQueue {
    items: BTreeMap<QueueKey, (Transfer, String)>,
    ids: HashMap<String, QueueKey>,
    seq: u64,
    counter: u64,
}

impl TransferQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh automatic id `transfer-N` (N counts the ids handed out), never one in use.
    pub fn next_id(&mut self) -> String {
        loop {
            self.counter += 1;
            let id = format!("transfer-{}", self.counter);
            if !self.ids.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Validates and queues a transfer (with a free-text description). `what` names the
    /// argument in errors. ERR_DUPLICATE_TRANSFER when its id is queued already.
    pub fn push(&mut self, what: &str, t: Transfer, description: String) -> Result<()> {
        validate_transfer(what, &t)?;
        if self.ids.contains_key(&t.id) {
            return Err(Error::new(
                Code::DuplicateTransfer,
                format!("{what}.transferId '{}' is already queued", t.id),
            ));
        }
        self.seq += 1;
        let key = QueueKey(
            t.priority,
            T(t.deadline_ms.unwrap_or(f64::INFINITY)),
            self.seq,
        );
        self.ids.insert(t.id.clone(), key);
        self.items.insert(key, (t, description));
        Ok(())
    }

    pub fn remove(&mut self, id: &str) -> Option<(Transfer, String)> {
        let key = self.ids.remove(id)?;
        self.items.remove(&key)
    }

    /// The transfer planned first.
    pub fn peek(&self) -> Option<(&Transfer, &str)> {
        self.items
            .first_key_value()
            .map(|(_, (t, d))| (t, d.as_str()))
    }

    pub fn pop(&mut self) -> Option<(Transfer, String)> {
        let (_, (t, d)) = self.items.pop_first()?;
        self.ids.remove(&t.id);
        Some((t, d))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.ids.clear();
    }

    /// Total MB queued.
    pub fn pending_mb(&self) -> f64 {
        self.items.values().fold(0.0, |s, (t, _)| s + t.size_mb)
    }

    /// Transfers in planning order.
    pub fn iter(&self) -> impl Iterator<Item = (&Transfer, &str)> {
        self.items.values().map(|(t, d)| (t, d.as_str()))
    }

    /// Copies of the transfers, in planning order (what `plan` takes).
    pub fn snapshot(&self) -> Vec<Transfer> {
        self.items.values().map(|(t, _)| t.clone()).collect()
    }

    /// Removes and returns, in planning order, every transfer that still fits in what is
    /// left of `capacity_mb` (first fit; capacity only, no time or satellite).
    pub fn take_for_capacity(&mut self, capacity_mb: f64) -> Vec<(Transfer, String)> {
        let mut left = capacity_mb;
        let mut keys = Vec::new();
        for (k, (t, _)) in &self.items {
            if t.size_mb <= left {
                left -= t.size_mb;
                keys.push(*k);
            }
        }
        keys.into_iter()
            .filter_map(|k| {
                let it = self.items.remove(&k)?;
                self.ids.remove(&it.0.id);
                Some(it)
            })
            .collect()
    }

    /// Removes the transfers with these ids (absent ones are ignored).
    pub fn remove_all<'s>(&mut self, ids: impl IntoIterator<Item = &'s str>) {
        for id in ids {
            self.remove(id);
        }
    }
}

#[cfg(test)]
mod tests;
