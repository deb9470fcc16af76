//! `GroundStation` and `SyncScheduler`: contact windows between satellites (TLE, OMM
//! or Keplerian elements, propagated with SGP4) and ground stations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::position::{position_from_object, Position};
use napi::threadsafe_function::ThreadsafeFunction;

use super::options::Reader;
use super::task::{report_progress, CoreTask};
use super::{invalid_arg, js_err, JsResult};
use crate::core::error::{Code, Error as CoreError};
use crate::core::geo::{self, Geodetic};
use crate::core::orbit::{self, KeplerInput, MeanElements, Sgp4Orbit};
use crate::core::sync::{self as core_sync, RateModel, SearchOptions, Station, Window};

// ------------------------------------------------------------------ argument reading

fn to_date(ms: f64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.round() as i64).unwrap_or_default()
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

// ------------------------------------------------------------------ GroundStation

/// Options of `new GroundStation({...})`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct GroundStationOptions {
    /// Display name (non-empty).
    pub name: String,
    /// Where the antenna is: a `Position`, `@rotastellar/sdk`'s `Position`, or any
    /// `{ latitude, longitude, altitudeKm }` (WGS-84, altitude above the ellipsoid).
    pub position: super::position::PositionLike,
    /// Uplink rate, Mbps (10⁶ bit/s), ≥ 0.
    pub uplink_mbps: f64,
    /// Downlink rate, Mbps, ≥ 0.
    pub downlink_mbps: f64,
    /// Elevation mask, degrees in [0, 90). @default 10
    pub min_elevation_deg: Option<f64>,
}

/// Default elevation mask of a station, degrees.
pub const DEFAULT_MIN_ELEVATION_DEG: f64 = 10.0;

/// A ground station: WGS-84 position, uplink/downlink rates and an elevation mask.
#[napi]
#[derive(Clone)]
pub struct GroundStation {
    inner: Station,
}

fn preset(
    name: &str,
    lat: f64,
    lon: f64,
    alt_km: f64,
    up: f64,
    down: f64,
    mask: f64,
) -> GroundStation {
    GroundStation {
        inner: Station::new(
            name,
            Geodetic {
                lat_deg: lat,
                lon_deg: lon,
                alt_km,
            },
            up,
            down,
            mask,
        )
        .expect("valid preset"),
    }
}

fn station_from_object(obj: &Object, what: &str) -> JsResult<Station> {
    let r = Reader { obj, what };
    let name = r
        .string("name")?
        .ok_or_else(|| invalid_arg(format!("{what}.name is required")))?;
    let pos = r
        .object("position")?
        .ok_or_else(|| invalid_arg(format!("{what}.position is required")))?;
    let g = position_from_object(&pos, &format!("{what}.position"))?;
    let up = r
        .num("uplinkMbps")?
        .ok_or_else(|| invalid_arg(format!("{what}.uplinkMbps is required")))?;
    let down = r
        .num("downlinkMbps")?
        .ok_or_else(|| invalid_arg(format!("{what}.downlinkMbps is required")))?;
    let mask = r
        .num("minElevationDeg")?
        .unwrap_or(DEFAULT_MIN_ELEVATION_DEG);
    Station::new(&name, g, up, down, mask)
        .map_err(|e| js_err(CoreError::new(e.code, format!("{what}: {}", e.message))))
}

#[napi]
impl GroundStation {
    /// Creates a station. Throws `ERR_INVALID_ARG` naming the field for a missing name,
    /// latitude outside [-90, 90], longitude outside [-180, 360], negative or non-finite
    /// rates, or a mask outside [0, 90).
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: GroundStationOptions"
    )]
    pub fn new(options: Object) -> napi::Result<Self, String> {
        Ok(GroundStation {
            inner: station_from_object(&options, "options")?,
        })
    }

    /// The station's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// The station's position (WGS-84).
    #[napi(getter)]
    pub fn position(&self) -> Position {
        let g = self.inner.geodetic;
        Position {
            latitude: g.lat_deg,
            longitude: g.lon_deg,
            altitude_km: g.alt_km,
        }
    }

    /// Uplink rate, Mbps.
    #[napi(getter)]
    pub fn uplink_mbps(&self) -> f64 {
        self.inner.uplink_mbps
    }

    /// Downlink rate, Mbps.
    #[napi(getter)]
    pub fn downlink_mbps(&self) -> f64 {
        self.inner.downlink_mbps
    }

    /// Elevation mask, degrees.
    #[napi(getter)]
    pub fn min_elevation_deg(&self) -> f64 {
        self.inner.min_elevation_deg
    }

    /// Plain-object form, for `JSON.stringify`.
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> SyncStation {
        station_info(&self.inner)
    }

    /// KSAT SvalSat, Platåberget, Svalbard (78.2297°N, 15.3975°E, 0.5 km): 150 Mbps up, 300 Mbps down, mask 5°.
    #[napi]
    pub fn svalbard() -> GroundStation {
        preset("Svalbard", 78.2297, 15.3975, 0.5, 150.0, 300.0, 5.0)
    }

    /// Guiana Space Centre, Kourou (5.2378°N, 52.7683°W, 0 km): 100 Mbps up, 150 Mbps down, mask 10°.
    #[napi]
    pub fn kourou() -> GroundStation {
        preset("Kourou", 5.2378, -52.7683, 0.0, 100.0, 150.0, 10.0)
    }

    /// Perth, Western Australia (31.9474°S, 115.8648°E, 0.03 km): 100 Mbps up, 200 Mbps down, mask 10°.
    #[napi]
    pub fn perth() -> GroundStation {
        preset("Perth", -31.9474, 115.8648, 0.03, 100.0, 200.0, 10.0)
    }

    /// Fairbanks, Alaska (64.8401°N, 147.7200°W, 0.135 km): 100 Mbps up, 150 Mbps down, mask 10°.
    #[napi]
    pub fn fairbanks() -> GroundStation {
        preset("Fairbanks", 64.8401, -147.72, 0.135, 100.0, 150.0, 10.0)
    }

    /// Kennedy Space Center, Florida (28.5729°N, 80.6490°W, 0 km): 100 Mbps up, 200 Mbps down, mask 10°.
    #[napi]
    pub fn kennedy() -> GroundStation {
        preset("KSC", 28.5729, -80.649, 0.0, 100.0, 200.0, 10.0)
    }

    /// Wallops Flight Facility, Virginia (37.9402°N, 75.4664°W, 0 km): 100 Mbps up, 200 Mbps down, mask 10°.
    #[napi]
    pub fn wallops() -> GroundStation {
        preset("Wallops", 37.9402, -75.4664, 0.0, 100.0, 200.0, 10.0)
    }

    /// McMurdo Station, Antarctica (77.8391°S, 166.6671°E, 0.01 km): 50 Mbps up, 150 Mbps down, mask 5°.
    #[napi]
    pub fn mcmurdo() -> GroundStation {
        preset("McMurdo", -77.8391, 166.6671, 0.01, 50.0, 150.0, 5.0)
    }

    /// TrollSat, Antarctica (72.0117°S, 2.5350°E, 1.27 km): 50 Mbps up, 150 Mbps down, mask 5°.
    #[napi]
    pub fn troll() -> GroundStation {
        preset("Troll", -72.0117, 2.535, 1.27, 50.0, 150.0, 5.0)
    }

    /// Hartebeesthoek, South Africa (25.8872°S, 27.7077°E, 1.415 km): 100 Mbps up, 150 Mbps down, mask 10°.
    #[napi]
    pub fn hartebeesthoek() -> GroundStation {
        preset(
            "Hartebeesthoek",
            -25.8872,
            27.7077,
            1.415,
            100.0,
            150.0,
            10.0,
        )
    }

    /// Inuvik, Canada (68.3186°N, 133.5494°W, 0.1 km): 100 Mbps up, 200 Mbps down, mask 5°.
    #[napi]
    pub fn inuvik() -> GroundStation {
        preset("Inuvik", 68.3186, -133.5494, 0.1, 100.0, 200.0, 5.0)
    }

    /// Singapore (1.3962°N, 103.8343°E, 0.05 km): 100 Mbps up, 150 Mbps down, mask 10°.
    #[napi]
    pub fn singapore() -> GroundStation {
        preset("Singapore", 1.3962, 103.8343, 0.05, 100.0, 150.0, 10.0)
    }

    /// The default network, as in the peer package: Svalbard, Kourou, Perth, Fairbanks.
    #[napi]
    pub fn default_network() -> Vec<GroundStation> {
        vec![
            Self::svalbard(),
            Self::kourou(),
            Self::perth(),
            Self::fairbanks(),
        ]
    }

    /// Every preset: the default network plus KSC, Wallops, McMurdo, Troll,
    /// Hartebeesthoek, Inuvik and Singapore.
    #[napi]
    pub fn all_presets() -> Vec<GroundStation> {
        let mut v = Self::default_network();
        v.extend([
            Self::kennedy(),
            Self::wallops(),
            Self::mcmurdo(),
            Self::troll(),
            Self::hartebeesthoek(),
            Self::inuvik(),
            Self::singapore(),
        ]);
        v
    }
}

// ------------------------------------------------------------------ result shapes

/// A station position in a result (plain object).
#[napi(object, object_from_js = false)]
#[derive(Clone)]
pub struct SyncStationPosition {
    /// Geodetic latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Height above the WGS-84 ellipsoid, km.
    pub altitude_km: f64,
}

/// The station of a window (plain object with the `GroundStation` fields).
#[napi(object, object_from_js = false)]
#[derive(Clone)]
pub struct SyncStation {
    /// Name.
    pub name: String,
    /// Position.
    pub position: SyncStationPosition,
    /// Uplink rate, Mbps.
    pub uplink_mbps: f64,
    /// Downlink rate, Mbps.
    pub downlink_mbps: f64,
    /// Elevation mask, degrees.
    pub min_elevation_deg: f64,
}

fn station_info(s: &Station) -> SyncStation {
    SyncStation {
        name: s.name.clone(),
        position: SyncStationPosition {
            latitude: s.geodetic.lat_deg,
            longitude: s.geodetic.lon_deg,
            altitude_km: s.geodetic.alt_km,
        },
        uplink_mbps: s.uplink_mbps,
        downlink_mbps: s.downlink_mbps,
        min_elevation_deg: s.min_elevation_deg,
    }
}

/// A contact window: the satellite is above the station's mask from `startTime` to `endTime`.
#[napi(object, object_from_js = false)]
pub struct SyncWindow {
    /// The satellite.
    pub satellite_id: String,
    /// The station (a plain object with the `GroundStation` fields).
    pub station: SyncStation,
    /// Index of the station in the scheduler's `groundStations`.
    pub station_index: u32,
    /// Acquisition of signal (elevation rises through the mask), or the request start if clipped.
    pub start_time: DateTime<Utc>,
    /// Loss of signal, or the request end if clipped.
    pub end_time: DateTime<Utc>,
    /// `endTime − startTime`, seconds: the difference of the two Dates (whole milliseconds),
    /// so it prints as a short decimal and agrees with the Dates exactly.
    pub duration_seconds: f64,
    /// Highest elevation inside the window, degrees.
    pub max_elevation_deg: f64,
    /// When it is reached.
    pub max_elevation_time: DateTime<Utc>,
    /// Downlink capacity, MB (10⁶ bytes): downlinkMbps × durationSeconds ÷ 8 under the
    /// default constant model.
    pub data_capacity_mb: f64,
    /// Uplink capacity, MB.
    pub uplink_capacity_mb: f64,
    /// The pass was already under way at the request start (startTime is the request start).
    pub clipped_start: bool,
    /// The pass had not ended at the request end (endTime is the request end, or the decay time).
    pub clipped_end: bool,
    /// The window ends because the satellite decayed (SGP4 invalid from then on).
    pub ends_by_decay: bool,
    /// Slant range at the culmination, km.
    pub min_range_km: f64,
}

fn window_to_js(w: &Window, stations: &[Station]) -> SyncWindow {
    SyncWindow {
        satellite_id: w.satellite_id.clone(),
        station: station_info(&stations[w.station_index]),
        station_index: w.station_index as u32,
        start_time: to_date(w.start_ms),
        end_time: to_date(w.end_ms),
        duration_seconds: w.duration_s(),
        max_elevation_deg: w.max_elevation_deg,
        max_elevation_time: to_date(w.max_elevation_ms),
        data_capacity_mb: w.downlink_mb,
        uplink_capacity_mb: w.uplink_mb,
        clipped_start: w.clipped_start,
        clipped_end: w.clipped_end,
        ends_by_decay: w.ends_by_decay,
        min_range_km: w.min_range_km,
    }
}

/// A satellite skipped by a constellation search, with the reason.
#[napi(object, object_from_js = false)]
pub struct SyncFailure {
    /// The satellite.
    pub satellite_id: String,
    /// Stable error code (`ERR_DECAYED`, `ERR_IMPLAUSIBLE_STATE`, …).
    pub code: String,
    /// Human message.
    pub message: String,
}

/// Result of `getConstellationWindows`.
#[napi(object, object_from_js = false)]
pub struct ConstellationSyncWindows {
    /// Every window of every satellite, sorted by start time (then satellite, then station).
    pub windows: Vec<SyncWindow>,
    /// Satellites with no usable orbit over the request (for example decayed before it).
    pub failures: Vec<SyncFailure>,
}

/// Look angles of a satellite from a station.
#[napi(object, object_from_js = false)]
pub struct SyncLookAngles {
    /// Azimuth, degrees from north through east in [0, 360) (0 at the zenith by convention).
    pub azimuth_deg: f64,
    /// Geometric elevation (no refraction), degrees.
    pub elevation_deg: f64,
    /// Slant range, km.
    pub range_km: f64,
}

/// A satellite's state at one instant.
#[napi(object, object_from_js = false)]
pub struct SatelliteState {
    /// TEME position (SGP4 output), km.
    pub teme_position_km: Vec<f64>,
    /// TEME velocity, km/s.
    pub teme_velocity_km_s: Vec<f64>,
    /// Earth-fixed (ITRS axes, no polar motion) position, km.
    pub ecef_position_km: Vec<f64>,
    /// Geodetic latitude of the sub-satellite point, degrees.
    pub latitude: f64,
    /// Longitude, degrees in (-180, 180].
    pub longitude: f64,
    /// Height above the WGS-84 ellipsoid, km.
    pub altitude_km: f64,
    /// |time − epoch| > 30 days: SGP4 accuracy degrades quickly beyond that.
    pub outside_validity_window: bool,
}

/// Facts about a registered (or default) orbit.
#[napi(object, object_from_js = false)]
pub struct SyncOrbitInfo {
    /// `'tle'`, `'omm'`, `'kepler'` or `'default'`.
    pub source: String,
    /// Object name, when the element set carried one.
    pub name: Option<String>,
    /// Catalogue number (0 for Keplerian / default orbits).
    pub norad_id: f64,
    /// Epoch of the elements.
    pub epoch: DateTime<Utc>,
    /// Period, minutes.
    pub period_minutes: f64,
    /// Perigee altitude above the WGS72 equatorial radius, km.
    pub perigee_altitude_km: f64,
    /// Apogee altitude, km.
    pub apogee_altitude_km: f64,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// Deep-space (SDP4) propagation: period ≥ 225 min.
    pub deep_space: bool,
}

// ------------------------------------------------------------------ options (TS shapes)

/// Options of `new SyncScheduler({...})`.
// TypeScript shape only (read field by field): never built in Rust.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct SyncSchedulerOptions {
    /// The stations (`GroundStation` instances or plain objects with the same fields).
    /// @default GroundStation.defaultNetwork()
    #[napi(ts_type = "Array<GroundStation | GroundStationOptions>")]
    pub ground_stations: Option<Vec<GroundStationOptions>>,
    /// UT1 − UTC in seconds, for the Earth rotation angle (|x| < 1). @default 0
    pub ut1_minus_utc_seconds: Option<f64>,
    /// Capacity model: `'constant'` (rate × duration ÷ 8) or `'linkBudget'` (rate scaled by
    /// min(1, (referenceRangeKm / slant range)²)). @default 'constant'
    #[napi(ts_type = "'constant' | 'linkBudget'")]
    pub capacity_model: Option<String>,
    /// Slant range at which a station reaches its nominal rate, for `'linkBudget'`. @default 1000
    pub reference_range_km: Option<f64>,
    /// Step floor of the search, seconds in [1, 10]: no pass at least this long is missed. @default 10
    pub min_step_seconds: Option<f64>,
    /// Altitude of the default orbit used for unregistered satellites, km. @default 550
    pub orbit_altitude_km: Option<f64>,
    /// Inclination of the default orbit, degrees. @default 51.6
    pub orbit_inclination_deg: Option<f64>,
}

/// Options of `addSatellite`: exactly one of `tle`, `omm`, `kepler`.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct AddSyncSatelliteOptions {
    /// Unique id within the scheduler.
    pub satellite_id: String,
    /// A TLE: one string (2 lines, or 3 with a name) or an array of 2 or 3 lines. Checksums are verified.
    #[napi(ts_type = "string | string[]")]
    pub tle: Option<String>,
    /// OMM mean elements as JSON keys (CelesTrak `FORMAT=json`): `EPOCH`, `MEAN_MOTION`,
    /// `ECCENTRICITY`, `INCLINATION`, `RA_OF_ASC_NODE`, `ARG_OF_PERICENTER`,
    /// `MEAN_ANOMALY`, and optionally `BSTAR`, `MEAN_MOTION_DOT`, `MEAN_MOTION_DDOT`,
    /// `NORAD_CAT_ID`, `OBJECT_NAME`.
    #[napi(ts_type = "Record<string, string | number>")]
    pub omm: Option<String>,
    /// Keplerian elements (the same shape as the mesh's), used as SGP4 mean elements with no drag.
    pub kepler: Option<super::mesh::KeplerElementsOptions>,
    /// Replace an existing satellite with the same id instead of throwing ERR_DUPLICATE_NODE. @default false
    pub replace: Option<bool>,
}

/// Options of `getSyncWindows`.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct SyncWindowsOptions {
    /// The satellite (an unregistered id uses the default orbit).
    pub satellite_id: String,
    /// Length of the request, hours, in (0, 8784] (one leap year).
    pub duration_hours: f64,
    /// Start of the request. @default now
    #[napi(ts_type = "Date")]
    pub start_time: Option<f64>,
}

/// Options of `getConstellationWindows`.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct ConstellationWindowsOptions {
    /// The satellites (unregistered ids use the default orbit). @default every registered satellite
    pub satellite_ids: Option<Vec<String>>,
    /// Length of the request, hours, in (0, 8784].
    pub duration_hours: f64,
    /// Start of the request. @default now
    #[napi(ts_type = "Date")]
    pub start_time: Option<f64>,
}

/// Options of `getLookAngles`.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct SyncLookOptions {
    /// The satellite.
    pub satellite_id: String,
    /// Station name or index in `groundStations`.
    #[napi(ts_type = "string | number")]
    pub station: String,
    /// When.
    #[napi(ts_type = "Date")]
    pub time: f64,
}

/// Options of `getSatelliteState`.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct SyncStateOptions {
    /// The satellite.
    pub satellite_id: String,
    /// When.
    #[napi(ts_type = "Date")]
    pub time: f64,
}

// ------------------------------------------------------------------ SyncScheduler

#[derive(Clone)]
struct Sat {
    orbit: Sgp4Orbit,
    source: &'static str,
}

#[derive(Clone)]
struct State {
    stations: Vec<Station>,
    order: Vec<String>,
    sats: HashMap<String, Sat>,
    opts: SearchOptions,
    default_alt_km: f64,
    default_incl_deg: f64,
}

/// Epoch of the default orbit: 2025-01-01T00:00:00Z.
pub const DEFAULT_ORBIT_EPOCH_MS: f64 = 1_735_689_600_000.0;

impl State {
    /// The orbit of `id`: registered, or the default circular orbit (altitude and
    /// inclination of the scheduler options, RAAN and mean anomaly from a hash of the id).
    fn orbit(&self, id: &str) -> core_sync_result::R<(Sgp4Orbit, &'static str)> {
        if let Some(s) = self.sats.get(id) {
            return Ok((s.orbit.clone(), s.source));
        }
        // FNV-1a of the id: deterministic RAAN and mean anomaly.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let raan = (h % 36_000) as f64 / 100.0;
        let ma = ((h >> 32) % 36_000) as f64 / 100.0;
        let el = orbit::kepler_to_mean(&KeplerInput {
            semi_major_axis_km: geo::WGS84_A_KM + self.default_alt_km,
            eccentricity: 0.0,
            inclination_deg: self.default_incl_deg,
            raan_deg: raan,
            arg_perigee_deg: 0.0,
            mean_anomaly_deg: ma,
            epoch_unix_ms: DEFAULT_ORBIT_EPOCH_MS,
        })?;
        Ok((Sgp4Orbit::new(el)?, "default"))
    }
}

mod core_sync_result {
    pub type R<T> = crate::core::error::Result<T>;
}

/// Computes ground-station contact windows for satellites on real orbits (SGP4).
///
/// Satellites are registered with `addSatellite` (TLE, OMM or Keplerian elements). An id
/// that was never registered uses the default orbit: circular, `orbitAltitudeKm` (550 km)
/// high, `orbitInclinationDeg` (51.6°) inclined, epoch 2025-01-01T00:00Z, with RAAN and
/// mean anomaly derived from a hash of the id (so different ids differ, reproducibly).
#[napi]
pub struct SyncScheduler {
    inner: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn span(r: &Reader) -> JsResult<(f64, f64)> {
    let dur = r
        .num("durationHours")?
        .ok_or_else(|| invalid_arg(format!("{}.durationHours is required", r.what)))?;
    let start = r.date("startTime")?.unwrap_or_else(now_ms);
    core_sync::check_span(start, dur)
        .map_err(|e| js_err(CoreError::new(e.code, format!("{}.{}", r.what, e.message))))
}

fn read_stations(arr: &Object) -> JsResult<Vec<Station>> {
    if !arr.is_array().unwrap_or(false) {
        return Err(invalid_arg("options.groundStations must be an array"));
    }
    let n = arr
        .get_array_length()
        .map_err(|e| invalid_arg(e.to_string()))?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let v: Unknown = arr.get_element(i).map_err(|e| invalid_arg(e.to_string()))?;
        if v.get_type().map_err(|e| invalid_arg(e.to_string()))? != ValueType::Object {
            return Err(invalid_arg(format!(
                "options.groundStations[{i}] must be a GroundStation or an object"
            )));
        }
        let o: Object = unsafe { v.cast::<Object>() }.map_err(|e| invalid_arg(e.to_string()))?;
        out.push(station_from_object(
            &o,
            &format!("options.groundStations[{i}]"),
        )?);
    }
    Ok(out)
}

/// Reads `obj.tle` (a string or an array of lines) into an SGP4 orbit; `None` when absent.
/// Shared with the mesh binding's `addSatellite({ tle })`.
pub(crate) fn read_tle_field(obj: &Object, what: &str) -> JsResult<Option<Sgp4Orbit>> {
    let r = Reader { obj, what };
    let Some((u, t)) = r.raw("tle")? else {
        return Ok(None);
    };
    let el = match t {
        ValueType::String => {
            let s: String =
                unsafe { u.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?;
            orbit::parse_tle_text(&s).map_err(js_err)?
        }
        ValueType::Object => {
            let lines = r.strings("tle")?.unwrap_or_default();
            let refs: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
            orbit::parse_tle_lines(&refs).map_err(js_err)?
        }
        t => {
            return Err(js_err(CoreError::new(
                Code::InvalidTle,
                format!("{what}.tle must be a string or an array of lines, got {t}"),
            )))
        }
    };
    Ok(Some(Sgp4Orbit::new(el).map_err(js_err)?))
}

fn read_orbit(r: &Reader, id: &str) -> JsResult<(Sgp4Orbit, &'static str)> {
    let tle = r.raw("tle")?;
    let omm = r.object("omm")?;
    let kep = r.object("kepler")?;
    let given = tle.is_some() as u8 + omm.is_some() as u8 + kep.is_some() as u8;
    if given != 1 {
        return Err(invalid_arg(format!("addSatellite('{id}') needs exactly one of options.tle, options.omm, options.kepler, got {given}")));
    }
    let el: MeanElements;
    let source;
    if let Some((u, t)) = tle {
        source = "tle";
        el = match t {
            ValueType::String => {
                let s: String =
                    unsafe { u.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?;
                orbit::parse_tle_text(&s).map_err(js_err)?
            }
            ValueType::Object => {
                let lines = r.strings("tle")?.unwrap_or_default();
                let refs: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
                orbit::parse_tle_lines(&refs).map_err(js_err)?
            }
            t => {
                return Err(js_err(CoreError::new(
                    Code::InvalidTle,
                    format!("options.tle must be a string or an array of lines, got {t}"),
                )))
            }
        };
    } else if let Some(o) = omm {
        source = "omm";
        let m = Reader {
            obj: &o,
            what: "options.omm",
        };
        let req = |k: &str| -> JsResult<f64> {
            m.num_or_str(k)?.ok_or_else(|| {
                js_err(CoreError::new(
                    Code::InvalidTle,
                    format!("options.omm.{k} is required"),
                ))
            })
        };
        let epoch = m.string("EPOCH")?.ok_or_else(|| {
            js_err(CoreError::new(
                Code::InvalidTle,
                "options.omm.EPOCH (ISO-8601 string) is required",
            ))
        })?;
        let norad = m.num_or_str("NORAD_CAT_ID")?.unwrap_or(0.0);
        el = orbit::omm_to_mean(
            m.string("OBJECT_NAME")?,
            if norad.is_finite() && norad >= 0.0 {
                norad as u64
            } else {
                0
            },
            &epoch,
            req("MEAN_MOTION")?,
            req("ECCENTRICITY")?,
            req("INCLINATION")?,
            req("RA_OF_ASC_NODE")?,
            req("ARG_OF_PERICENTER")?,
            req("MEAN_ANOMALY")?,
            m.num_or_str("BSTAR")?.unwrap_or(0.0),
            m.num_or_str("MEAN_MOTION_DOT")?.unwrap_or(0.0),
            m.num_or_str("MEAN_MOTION_DDOT")?.unwrap_or(0.0),
        )
        .map_err(js_err)?;
    } else {
        source = "kepler";
        let o = kep.unwrap();
        let k = Reader {
            obj: &o,
            what: "options.kepler",
        };
        let a = match (k.num("semiMajorAxisKm")?, k.num("altitudeKm")?) {
            (Some(a), None) => a,
            (None, Some(h)) => geo::WGS84_A_KM + h,
            _ => {
                return Err(invalid_arg(
                    "options.kepler needs exactly one of semiMajorAxisKm, altitudeKm",
                ))
            }
        };
        el = orbit::kepler_to_mean(&KeplerInput {
            semi_major_axis_km: a,
            eccentricity: k.num("eccentricity")?.unwrap_or(0.0),
            inclination_deg: k
                .num("inclinationDeg")?
                .ok_or_else(|| invalid_arg("options.kepler.inclinationDeg is required"))?,
            raan_deg: k.num("raanDeg")?.unwrap_or(0.0),
            arg_perigee_deg: k.num("argPerigeeDeg")?.unwrap_or(0.0),
            mean_anomaly_deg: k.num("meanAnomalyDeg")?.unwrap_or(0.0),
            epoch_unix_ms: k
                .date("epoch")?
                .ok_or_else(|| invalid_arg("options.kepler.epoch (a Date) is required"))?,
        })
        .map_err(js_err)?;
    }
    Ok((Sgp4Orbit::new(el).map_err(js_err)?, source))
}

#[napi]
impl SyncScheduler {
    /// Creates a scheduler. Throws `ERR_INVALID_ARG` naming the option for bad stations,
    /// an unknown capacity model, |ut1MinusUtcSeconds| ≥ 1, or minStepSeconds outside [1, 10].
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options?: SyncSchedulerOptions"
    )]
    pub fn new(options: Option<Object>) -> napi::Result<Self, String> {
        let mut st = State {
            stations: GroundStation::default_network()
                .into_iter()
                .map(|g| g.inner)
                .collect(),
            order: Vec::new(),
            sats: HashMap::new(),
            opts: SearchOptions::default(),
            default_alt_km: 550.0,
            default_incl_deg: 51.6,
        };
        if let Some(o) = options {
            let r = Reader {
                obj: &o,
                what: "options",
            };
            if let Some(arr) = r.object("groundStations")? {
                st.stations = read_stations(&arr)?;
            }
            if let Some(x) = r.num("ut1MinusUtcSeconds")? {
                if !(x.is_finite() && x.abs() < 1.0) {
                    return Err(invalid_arg(format!(
                        "options.ut1MinusUtcSeconds must be within (-1, 1) s, got {x}"
                    )));
                }
                st.opts.ut1_minus_utc_s = x;
            }
            if let Some(x) = r.num("minStepSeconds")? {
                if !(x.is_finite() && (1.0..=10.0).contains(&x)) {
                    return Err(invalid_arg(format!(
                        "options.minStepSeconds must be within [1, 10], got {x}"
                    )));
                }
                st.opts.min_step_s = x;
            }
            let rr = r.num("referenceRangeKm")?.unwrap_or(1000.0);
            if !(rr.is_finite() && rr > 0.0) {
                return Err(invalid_arg(format!(
                    "options.referenceRangeKm must be > 0, got {rr}"
                )));
            }
            match r.string("capacityModel")?.as_deref() {
                None | Some("constant") => {}
                Some("linkBudget") => {
                    st.opts.rate_model = RateModel::LinkBudget {
                        reference_range_km: rr,
                    }
                }
                Some(s) => {
                    return Err(invalid_arg(format!(
                        "options.capacityModel must be 'constant' or 'linkBudget', got '{s}'"
                    )))
                }
            }
            if let Some(h) = r.num("orbitAltitudeKm")? {
                if !(h.is_finite() && (100.0..=100_000.0).contains(&h)) {
                    return Err(invalid_arg(format!(
                        "options.orbitAltitudeKm must be within [100, 100000] km, got {h}"
                    )));
                }
                st.default_alt_km = h;
            }
            if let Some(i) = r.num("orbitInclinationDeg")? {
                if !(i.is_finite() && (0.0..=180.0).contains(&i)) {
                    return Err(invalid_arg(format!(
                        "options.orbitInclinationDeg must be within [0, 180], got {i}"
                    )));
                }
                st.default_incl_deg = i;
            }
        }
        Ok(SyncScheduler {
            inner: Arc::new(Mutex::new(st)),
        })
    }

    /// The stations, in order (window `stationIndex` refers to this list).
    #[napi(getter)]
    pub fn ground_stations(&self) -> Vec<GroundStation> {
        lock(&self.inner)
            .stations
            .iter()
            .map(|s| GroundStation { inner: s.clone() })
            .collect()
    }

    /// Registered satellite ids, in registration order.
    #[napi(getter)]
    pub fn satellite_ids(&self) -> Vec<String> {
        lock(&self.inner).order.clone()
    }

    /// Registers a satellite from a TLE (string or lines; 2 lines or 3 with a name),
    /// OMM mean elements or Keplerian elements. Throws `ERR_INVALID_TLE` naming the line
    /// and columns for a malformed TLE (length, checksum, non-numeric field),
    /// `ERR_INVALID_ARG` for bad Keplerian elements, `ERR_DUPLICATE_NODE` for a known id
    /// unless `replace` is true.
    #[napi(catch_unwind, ts_args_type = "options: AddSyncSatelliteOptions")]
    pub fn add_satellite(&self, options: Object) -> napi::Result<(), String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let id = r
            .string("satelliteId")?
            .ok_or_else(|| invalid_arg("options.satelliteId is required"))?;
        if id.is_empty() {
            return Err(invalid_arg(
                "options.satelliteId must be a non-empty string, got ''",
            ));
        }
        let replace = r.boolean("replace")?.unwrap_or(false);
        let (orbit, source) = read_orbit(&r, &id)?;
        let mut st = lock(&self.inner);
        if st.sats.contains_key(&id) {
            if !replace {
                return Err(js_err(CoreError::new(
                    Code::DuplicateNode,
                    format!(
                        "satellite '{id}' is already registered (pass replace: true to update it)"
                    ),
                )));
            }
        } else {
            st.order.push(id.clone());
        }
        st.sats.insert(id, Sat { orbit, source });
        Ok(())
    }

    /// Unregisters a satellite; returns whether it was registered.
    #[napi(catch_unwind)]
    pub fn remove_satellite(&self, satellite_id: String) -> bool {
        let mut st = lock(&self.inner);
        st.order.retain(|x| x != &satellite_id);
        st.sats.remove(&satellite_id).is_some()
    }

    /// Facts about a satellite's orbit (registered, or the default orbit).
    #[napi(catch_unwind)]
    pub fn get_orbit_info(&self, satellite_id: String) -> napi::Result<SyncOrbitInfo, String> {
        let st = lock(&self.inner);
        let (o, source) = st.orbit(&satellite_id).map_err(js_err)?;
        Ok(SyncOrbitInfo {
            source: source.to_string(),
            name: o.elements.name.clone(),
            norad_id: o.elements.norad_id as f64,
            epoch: to_date(o.epoch_unix_ms()),
            period_minutes: o.period_min,
            perigee_altitude_km: o.perigee_km - orbit::WGS72_RADIUS_KM,
            apogee_altitude_km: o.apogee_km - orbit::WGS72_RADIUS_KM,
            inclination_deg: o.elements.inclination_deg,
            deep_space: !o.is_near_earth(),
        })
    }

    /// Contact windows of one satellite with every station over
    /// `[startTime, startTime + durationHours]`, sorted by start time (then station order).
    /// Throws `ERR_INVALID_ARG` for durationHours ≤ 0 or above 8784 (one leap year) or an
    /// invalid Date; `ERR_DECAYED` / `ERR_IMPLAUSIBLE_STATE` if the orbit is invalid over
    /// the whole request (when it decays inside it, windows stop there).
    #[napi(catch_unwind, ts_args_type = "options: SyncWindowsOptions")]
    pub fn get_sync_windows(&self, options: Object) -> napi::Result<Vec<SyncWindow>, String> {
        let (id, t0, t1) = windows_args(&options)?;
        let st = lock(&self.inner).clone();
        run_windows(&st, &id, t0, t1).map_err(js_err)
    }

    /// `getSyncWindows` off the main thread.
    #[napi(
        catch_unwind,
        ts_args_type = "options: SyncWindowsOptions",
        ts_return_type = "Promise<SyncWindow[]>"
    )]
    pub fn get_sync_windows_async(
        &self,
        options: Object,
    ) -> napi::Result<AsyncTask<CoreTask<Vec<SyncWindow>>>, String> {
        let (id, t0, t1) = windows_args(&options)?;
        let st = lock(&self.inner).clone();
        Ok(CoreTask::new(move || run_windows(&st, &id, t0, t1)))
    }

    /// Windows of many satellites at once (every registered satellite, or `satelliteIds`),
    /// computed in parallel. Satellites whose orbit is invalid over the whole request are
    /// listed in `failures` with their code.
    #[napi(catch_unwind, ts_args_type = "options: ConstellationWindowsOptions")]
    pub fn get_constellation_windows(
        &self,
        options: Object,
    ) -> napi::Result<ConstellationSyncWindows, String> {
        let (sats, stations, opts, t0, t1) = constellation_args(&self.inner, &options)?;
        Ok(constellation_to_js(
            core_sync::constellation_windows(&sats, &stations, t0, t1, &opts, None),
            &stations,
        ))
    }

    /// `getConstellationWindows` off the main thread. `onProgress(fraction)` is called as
    /// satellites complete (fraction in (0, 1]); an exception it throws is uncaught.
    #[napi(
        catch_unwind,
        ts_args_type = "options: ConstellationWindowsOptions, onProgress?: (fraction: number) => void",
        ts_return_type = "Promise<ConstellationSyncWindows>"
    )]
    pub fn get_constellation_windows_async(
        &self,
        options: Object,
        on_progress: Option<ThreadsafeFunction<f64, (), f64, Status, false>>,
    ) -> napi::Result<AsyncTask<CoreTask<ConstellationSyncWindows>>, String> {
        let (sats, stations, opts, t0, t1) = constellation_args(&self.inner, &options)?;
        Ok(CoreTask::new(move || {
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
            Ok(constellation_to_js(
                core_sync::constellation_windows(&sats, &stations, t0, t1, &opts, progress),
                &stations,
            ))
        }))
    }

    /// Azimuth, elevation and slant range of a satellite from a station (by name or
    /// index) at a time. Throws `ERR_DECAYED` / `ERR_IMPLAUSIBLE_STATE` after decay.
    #[napi(catch_unwind, ts_args_type = "options: SyncLookOptions")]
    pub fn get_look_angles(&self, options: Object) -> napi::Result<SyncLookAngles, String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let id = r
            .string("satelliteId")?
            .ok_or_else(|| invalid_arg("options.satelliteId is required"))?;
        let t = r
            .date("time")?
            .ok_or_else(|| invalid_arg("options.time (a Date) is required"))?;
        let st = lock(&self.inner);
        let idx = match r.raw("station")? {
            Some((u, ValueType::Number)) => {
                let x: f64 = unsafe { u.cast::<f64>() }.map_err(|e| invalid_arg(e.to_string()))?;
                if !(x.fract() == 0.0 && x >= 0.0 && (x as usize) < st.stations.len()) {
                    return Err(invalid_arg(format!(
                        "options.station index must be an integer in [0, {}), got {x}",
                        st.stations.len()
                    )));
                }
                x as usize
            }
            Some((u, ValueType::String)) => {
                let s: String =
                    unsafe { u.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?;
                st.stations
                    .iter()
                    .position(|x| x.name == s)
                    .ok_or_else(|| {
                        invalid_arg(format!("options.station: no station named '{s}'"))
                    })?
            }
            _ => {
                return Err(invalid_arg(
                    "options.station (a name or an index) is required",
                ))
            }
        };
        let (o, _) = st.orbit(&id).map_err(js_err)?;
        let (la, _) = core_sync::look_angles(&o, &st.stations[idx], t, st.opts.ut1_minus_utc_s)
            .map_err(js_err)?;
        Ok(SyncLookAngles {
            azimuth_deg: la.azimuth_deg,
            elevation_deg: la.elevation_deg,
            range_km: la.range_km,
        })
    }

    /// The satellite's TEME state (SGP4 output), Earth-fixed position and sub-satellite
    /// point at a time. Throws `ERR_DECAYED` / `ERR_IMPLAUSIBLE_STATE` after decay (sticky).
    #[napi(catch_unwind, ts_args_type = "options: SyncStateOptions")]
    pub fn get_satellite_state(&self, options: Object) -> napi::Result<SatelliteState, String> {
        let r = Reader {
            obj: &options,
            what: "options",
        };
        let id = r
            .string("satelliteId")?
            .ok_or_else(|| invalid_arg("options.satelliteId is required"))?;
        let t = r
            .date("time")?
            .ok_or_else(|| invalid_arg("options.time (a Date) is required"))?;
        let st = lock(&self.inner);
        let (o, _) = st.orbit(&id).map_err(js_err)?;
        let s = o.state_checked(t).map_err(js_err)?;
        let g = geo::gmst_rad(geo::jd_from_unix_ms(t + st.opts.ut1_minus_utc_s * 1000.0));
        let e = geo::teme_to_ecef(s.r, g);
        let gd = Geodetic::from_ecef(e);
        Ok(SatelliteState {
            teme_position_km: s.r.to_vec(),
            teme_velocity_km_s: s.v.to_vec(),
            ecef_position_km: e.to_vec(),
            latitude: gd.lat_deg,
            longitude: geo::wrap_deg_180(gd.lon_deg),
            altitude_km: gd.alt_km,
            outside_validity_window: ((t - o.epoch_unix_ms()) / 86_400_000.0).abs()
                > orbit::VALIDITY_DAYS,
        })
    }
}

fn windows_args(options: &Object) -> JsResult<(String, f64, f64)> {
    let r = Reader {
        obj: options,
        what: "options",
    };
    let id = r
        .string("satelliteId")?
        .ok_or_else(|| invalid_arg("options.satelliteId is required"))?;
    let (t0, t1) = span(&r)?;
    Ok((id, t0, t1))
}

fn run_windows(st: &State, id: &str, t0: f64, t1: f64) -> core_sync_result::R<Vec<SyncWindow>> {
    let (o, _) = st.orbit(id)?;
    let w = core_sync::satellite_windows(id, &o, &st.stations, t0, t1, &st.opts)?;
    Ok(w.iter().map(|x| window_to_js(x, &st.stations)).collect())
}

type ConstellationArgs = (
    Vec<(String, Sgp4Orbit)>,
    Vec<Station>,
    SearchOptions,
    f64,
    f64,
);

fn constellation_args(inner: &Mutex<State>, options: &Object) -> JsResult<ConstellationArgs> {
    let r = Reader {
        obj: options,
        what: "options",
    };
    let (t0, t1) = span(&r)?;
    let ids = r.strings("satelliteIds")?;
    let st = lock(inner);
    let ids = ids.unwrap_or_else(|| st.order.clone());
    let mut sats = Vec::with_capacity(ids.len());
    for id in ids {
        let (o, _) = st.orbit(&id).map_err(js_err)?;
        sats.push((id, o));
    }
    Ok((sats, st.stations.clone(), st.opts, t0, t1))
}

fn constellation_to_js(
    c: core_sync::ConstellationWindows,
    stations: &[Station],
) -> ConstellationSyncWindows {
    ConstellationSyncWindows {
        windows: c
            .windows
            .iter()
            .map(|w| window_to_js(w, stations))
            .collect(),
        failures: c
            .failures
            .into_iter()
            .map(|(id, e)| SyncFailure {
                satellite_id: id,
                code: e.code.as_str().to_string(),
                message: e.message,
            })
            .collect(),
    }
}
