//! Real orbits: two- and three-line element sets (TLE), OMM mean elements and
//! Keplerian elements, propagated with SGP4/SDP4 (the `sgp4` crate) in the TEME frame,
//! then rotated to Earth-fixed coordinates with GMST-1982 at UT1.
//!
//! Conventions (the same as Skyfield / python-sgp4 defaults, which the tests use as the
//! reference): WGS72 gravity constants, opsmode `'i'` (IAU sidereal time at epoch),
//! times as `f64` Unix milliseconds (UTC) only, never `f32`.
//!
//! Validity. A propagation that fails (eccentricity out of range, negative semi-latus
//! rectum), that puts the satellite below the Earth's surface (|r| < 6378.135 km, the
//! WGS72 radius, SGP4 error 6), or that returns an implausible state (|r| > 10 Earth
//! radii for a near-Earth element set, period < 225 min) makes the satellite invalid
//! from that instant on: decay is *sticky* (see [`Sgp4Orbit::first_invalid_after`]).

use std::f64::consts::PI;

use crate::core::error::{Code, Error, Result};
use crate::core::geo::{self, Vec3};
use crate::core::mesh::OrbitSource;

/// WGS72 Earth radius (km), used by SGP4 and for the decay test.
pub const WGS72_RADIUS_KM: f64 = 6378.135;
/// WGS72 gravitational parameter, km³/s².
pub const WGS72_MU: f64 = 398_600.8;
/// Days of propagation beyond which results are flagged as outside the validity window.
pub const VALIDITY_DAYS: f64 = 30.0;

/// Mean elements of an SGP4 element set (TLE or OMM), angles in degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanElements {
    /// Object name (third line of a 3LE, `OBJECT_NAME` of an OMM), if any.
    pub name: Option<String>,
    /// Catalogue number.
    pub norad_id: u64,
    /// Epoch as a two-part Julian date (UTC): whole part (ends in .5) and fraction of a day.
    pub epoch_jd: f64,
    /// Fraction of a day added to `epoch_jd`.
    pub epoch_jd_frac: f64,
    /// First derivative of mean motion / 2, rev/day² (informational; SGP4 does not use it).
    pub ndot: f64,
    /// Second derivative of mean motion / 6, rev/day³ (informational).
    pub nddot: f64,
    /// Drag term B*, 1/Earth radii.
    pub bstar: f64,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// Right ascension of the ascending node, degrees.
    pub raan_deg: f64,
    /// Eccentricity.
    pub eccentricity: f64,
    /// Argument of perigee, degrees.
    pub arg_perigee_deg: f64,
    /// Mean anomaly, degrees.
    pub mean_anomaly_deg: f64,
    /// Kozai mean motion, revolutions per day.
    pub mean_motion_rev_day: f64,
}

impl MeanElements {
    /// Epoch as Unix milliseconds (UTC).
    pub fn epoch_unix_ms(&self) -> f64 {
        (self.epoch_jd - geo::JD_UNIX_EPOCH) * 86_400_000.0 + self.epoch_jd_frac * 86_400_000.0
    }
}

// ------------------------------------------------------------------ TLE parsing

fn tle_err(msg: impl Into<String>) -> Error {
    Error::new(Code::InvalidTle, msg)
}

/// Checksum of a TLE line: sum of digits plus one per '-', modulo 10, over columns 1–68.
pub fn tle_checksum(line: &str) -> u32 {
    line.bytes()
        .take(68)
        .map(|b| match b {
            b'0'..=b'9' => (b - b'0') as u32,
            b'-' => 1,
            _ => 0,
        })
        .sum::<u32>()
        % 10
}

/// Columns `a..=b` (1-based, inclusive) of a line.
fn cols(line: &str, a: usize, b: usize) -> &str {
    &line[a - 1..b]
}

fn field_f64(line: &str, n: u8, a: usize, b: usize, what: &str) -> Result<f64> {
    let s = cols(line, a, b).trim();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(tle_err(format!(
            "line {n} columns {a}-{b} ({what}) must be a number, got '{}'",
            cols(line, a, b)
        ))),
    }
}

/// Parses an "implied decimal point" field with a signed exponent, such as ` 12345-5`
/// (= 0.12345e-5) or `-31416-2` (= −0.31416e-2). A sign may precede the mantissa and the
/// exponent; `+` and blank mean positive. Blank or malformed fields are errors, never NaN.
pub fn parse_implied_exp(field: &str, n: u8, a: usize, b: usize, what: &str) -> Result<f64> {
    let bad = || {
        tle_err(format!(
            "line {n} columns {a}-{b} ({what}) must look like ' 12345-5', got '{field}'"
        ))
    };
    let t = field.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let bytes = t.as_bytes();
    let (sign, rest) = match bytes[0] {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    // The exponent is the last two characters: a sign (or blank/digit) and one digit.
    if rest.len() < 2 {
        return Err(bad());
    }
    let (mant, exp) = rest.split_at(rest.len() - 2);
    let mant = mant.trim_start_matches('.');
    if mant.is_empty() || !mant.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let eb = exp.as_bytes();
    let esign = match eb[0] {
        b'-' => -1,
        b'+' | b' ' | b'0' => 1,
        _ => return Err(bad()),
    };
    if !eb[1].is_ascii_digit() {
        return Err(bad());
    }
    let e = esign * (eb[1] - b'0') as i32;
    let m: f64 = format!("0.{mant}").parse().map_err(|_| bad())?;
    Ok(sign * m * 10f64.powi(e))
}

/// Julian date at 0h UTC of a Gregorian calendar date (exact in f64: ends in .5).
pub fn jd_of_date(year: i32, month: u32, day: u32) -> f64 {
    let (y, m) = if month <= 2 {
        (year - 1, month + 12)
    } else {
        (year, month)
    };
    let a = (y as f64 / 100.0).floor();
    let b = 2.0 - a + (a / 4.0).floor();
    (365.25 * (y as f64 + 4716.0)).floor() + (30.6001 * (m as f64 + 1.0)).floor() + day as f64 + b
        - 1524.5
}

/// The TLE epoch year for a two-digit year: 57–99 → 1957–1999, 00–56 → 2000–2056.
pub fn tle_year(two_digit: u32) -> i32 {
    if two_digit < 57 {
        2000 + two_digit as i32
    } else {
        1900 + two_digit as i32
    }
}

/// Two-part Julian date of a TLE epoch (two-digit year, fractional day of year; day 1.0
/// is January 1 at 0h, so day 0.5 is December 31 of the previous year at 12h).
pub fn tle_epoch_jd(two_digit_year: u32, day_of_year: f64) -> (f64, f64) {
    let jan0 = jd_of_date(tle_year(two_digit_year), 1, 1) - 1.0;
    let whole = day_of_year.floor();
    (jan0 + whole, day_of_year - whole)
}

/// Formats an epoch back into the TLE `YYDDD.DDDDDDDD` field.
///
/// # Errors
/// `ERR_EPOCH_OUT_OF_RANGE` when the year is outside [1957, 2056], which two digits cannot
/// represent.
pub fn format_tle_epoch(unix_ms: f64) -> Result<String> {
    let jd = geo::jd_from_unix_ms(unix_ms);
    let dt = chrono::DateTime::from_timestamp_millis(unix_ms.round() as i64).ok_or_else(|| {
        Error::new(
            Code::EpochOutOfRange,
            format!("epoch {unix_ms} ms is out of range"),
        )
    })?;
    use chrono::Datelike;
    let year = dt.year();
    if !(1957..=2056).contains(&year) {
        return Err(Error::new(
            Code::EpochOutOfRange,
            format!("epoch year {year} is outside [1957, 2056], which a TLE cannot represent"),
        ));
    }
    let jan0 = jd_of_date(year, 1, 1) - 1.0;
    Ok(format!("{:02}{:012.8}", year % 100, jd - jan0))
}

/// Parses a TLE given as one string (2 or 3 lines, any line endings) or as lines.
pub fn parse_tle_text(text: &str) -> Result<MeanElements> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect();
    parse_tle_lines(&lines)
}

/// Parses a TLE from 2 lines, or 3 with a name line first (`0 NAME` or `NAME`).
///
/// # Errors
/// `ERR_INVALID_TLE` naming the line and columns: wrong line count or length, wrong line
/// number, checksum mismatch, catalogue numbers that differ, non-numeric fields.
pub fn parse_tle_lines(lines: &[&str]) -> Result<MeanElements> {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end_matches(['\r', '\n', ' ']))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let (name, l1, l2) = match lines.len() {
        2 => (None, lines[0], lines[1]),
        3 => {
            let n = lines[0].trim();
            let n = n.strip_prefix("0 ").unwrap_or(n).trim();
            (Some(n.to_string()), lines[1], lines[2])
        }
        k => {
            return Err(tle_err(format!(
                "a TLE has 2 lines (or 3 with a name), got {k}"
            )))
        }
    };
    for (n, l) in [(1u8, l1), (2u8, l2)] {
        if !l.is_ascii() {
            return Err(tle_err(format!("line {n} must be ASCII, got '{l}'")));
        }
        if l.len() != 69 {
            return Err(tle_err(format!(
                "line {n} must be 69 characters long, got {} ('{l}')",
                l.len()
            )));
        }
        if l.as_bytes()[0] != b'0' + n {
            return Err(tle_err(format!(
                "line {n} column 1 must be '{n}', got '{}'",
                &l[0..1]
            )));
        }
        let c = l.as_bytes()[68];
        if !c.is_ascii_digit() {
            return Err(tle_err(format!(
                "line {n} column 69 (checksum) must be a digit, got '{}'",
                c as char
            )));
        }
        let want = tle_checksum(l);
        if (c - b'0') as u32 != want {
            return Err(tle_err(format!(
                "line {n} checksum mismatch: column 69 is {}, computed {want}",
                c as char
            )));
        }
    }
    let id1 = cols(l1, 3, 7).trim();
    let id2 = cols(l2, 3, 7).trim();
    if id1 != id2 {
        return Err(tle_err(format!(
            "catalogue numbers differ: line 1 columns 3-7 '{id1}', line 2 columns 3-7 '{id2}'"
        )));
    }
    let norad_id = parse_catalog(id1).ok_or_else(|| {
        tle_err(format!(
            "line 1 columns 3-7 (catalogue number) must be a number or Alpha-5, got '{id1}'"
        ))
    })?;
    let yy = cols(l1, 19, 20);
    if !yy.bytes().all(|c| c.is_ascii_digit()) {
        return Err(tle_err(format!(
            "line 1 columns 19-20 (epoch year) must be two digits, got '{yy}'"
        )));
    }
    let yy: u32 = yy.parse().unwrap_or(0);
    let day = field_f64(l1, 1, 21, 32, "epoch day of year")?;
    if !(0.0..367.0).contains(&day) {
        return Err(tle_err(format!(
            "line 1 columns 21-32 (epoch day of year) must be within [0, 367), got {day}"
        )));
    }
    let ndot = field_f64(l1, 1, 34, 43, "first derivative of mean motion")?;
    let nddot = parse_implied_exp(
        cols(l1, 45, 52),
        1,
        45,
        52,
        "second derivative of mean motion",
    )?;
    let bstar = parse_implied_exp(cols(l1, 54, 61), 1, 54, 61, "B* drag term")?;
    let inclination_deg = field_f64(l2, 2, 9, 16, "inclination")?;
    let raan_deg = field_f64(l2, 2, 18, 25, "right ascension of the ascending node")?;
    let ecc_s = cols(l2, 27, 33);
    if !ecc_s.bytes().all(|c| c.is_ascii_digit() || c == b' ') || ecc_s.trim().is_empty() {
        return Err(tle_err(format!("line 2 columns 27-33 (eccentricity, implied decimal point) must be digits, got '{ecc_s}'")));
    }
    let eccentricity: f64 = format!("0.{}", ecc_s.trim()).parse().map_err(|_| {
        tle_err(format!(
            "line 2 columns 27-33 (eccentricity) invalid: '{ecc_s}'"
        ))
    })?;
    let arg_perigee_deg = field_f64(l2, 2, 35, 42, "argument of perigee")?;
    let mean_anomaly_deg = field_f64(l2, 2, 44, 51, "mean anomaly")?;
    let mean_motion_rev_day = field_f64(l2, 2, 53, 63, "mean motion")?;
    if !(0.0..=180.0).contains(&inclination_deg) {
        return Err(tle_err(format!(
            "line 2 columns 9-16 (inclination) must be within [0, 180], got {inclination_deg}"
        )));
    }
    if mean_motion_rev_day <= 0.0 {
        return Err(tle_err(format!(
            "line 2 columns 53-63 (mean motion) must be positive, got {mean_motion_rev_day}"
        )));
    }
    let (epoch_jd, epoch_jd_frac) = tle_epoch_jd(yy, day);
    Ok(MeanElements {
        name,
        norad_id,
        epoch_jd,
        epoch_jd_frac,
        ndot,
        nddot,
        bstar,
        inclination_deg,
        raan_deg,
        eccentricity,
        arg_perigee_deg,
        mean_anomaly_deg,
        mean_motion_rev_day,
    })
}

fn parse_catalog(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse().ok();
    }
    // Alpha-5: a letter (I and O skipped) then four digits.
    let b = s.as_bytes();
    if b.len() != 5 || !b[1..].iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let c = b[0].to_ascii_uppercase();
    if !c.is_ascii_uppercase() || c == b'I' || c == b'O' {
        return None;
    }
    let mut v = (c - b'A') as u64 + 10;
    if c > b'I' {
        v -= 1;
    }
    if c > b'O' {
        v -= 1;
    }
    Some(v * 10_000 + s[1..].parse::<u64>().ok()?)
}

/// Keplerian elements (osculating-style input, used as SGP4 mean elements with no drag).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeplerInput {
    /// Semi-major axis, km.
    pub semi_major_axis_km: f64,
    /// Eccentricity in [0, 1).
    pub eccentricity: f64,
    /// Inclination, degrees in [0, 180].
    pub inclination_deg: f64,
    /// RAAN, degrees.
    pub raan_deg: f64,
    /// Argument of perigee, degrees.
    pub arg_perigee_deg: f64,
    /// Mean anomaly, degrees.
    pub mean_anomaly_deg: f64,
    /// Epoch, Unix ms (UTC).
    pub epoch_unix_ms: f64,
}

/// Converts Keplerian elements to SGP4 mean elements: mean motion n = √(μ/a³) with the
/// WGS72 μ, B* = 0 (no drag).
///
/// # Errors
/// `ERR_INVALID_ARG` naming the element when it is out of range or non-finite.
pub fn kepler_to_mean(k: &KeplerInput) -> Result<MeanElements> {
    for (n, v) in [
        ("semiMajorAxisKm", k.semi_major_axis_km),
        ("eccentricity", k.eccentricity),
        ("inclinationDeg", k.inclination_deg),
        ("raanDeg", k.raan_deg),
        ("argPerigeeDeg", k.arg_perigee_deg),
        ("meanAnomalyDeg", k.mean_anomaly_deg),
        ("epoch", k.epoch_unix_ms),
    ] {
        if !v.is_finite() {
            return Err(Error::invalid_arg(format!(
                "kepler.{n} must be finite, got {v}"
            )));
        }
    }
    if !(0.0..1.0).contains(&k.eccentricity) {
        return Err(Error::invalid_arg(format!(
            "kepler.eccentricity must be within [0, 1), got {}",
            k.eccentricity
        )));
    }
    if !(0.0..=180.0).contains(&k.inclination_deg) {
        return Err(Error::invalid_arg(format!(
            "kepler.inclinationDeg must be within [0, 180], got {}",
            k.inclination_deg
        )));
    }
    if k.semi_major_axis_km * (1.0 - k.eccentricity) <= WGS72_RADIUS_KM {
        return Err(Error::invalid_arg(format!(
            "kepler: perigee radius {} km is inside the Earth (semiMajorAxisKm {}, eccentricity {})",
            k.semi_major_axis_km * (1.0 - k.eccentricity),
            k.semi_major_axis_km,
            k.eccentricity
        )));
    }
    let n_rad_s = (WGS72_MU / k.semi_major_axis_km.powi(3)).sqrt();
    let jd = geo::jd_from_unix_ms(k.epoch_unix_ms);
    let whole = (jd - 0.5).floor() + 0.5;
    Ok(MeanElements {
        name: None,
        norad_id: 0,
        epoch_jd: whole,
        epoch_jd_frac: (k.epoch_unix_ms - (whole - geo::JD_UNIX_EPOCH) * 86_400_000.0)
            / 86_400_000.0,
        ndot: 0.0,
        nddot: 0.0,
        bstar: 0.0,
        inclination_deg: k.inclination_deg,
        raan_deg: k.raan_deg.rem_euclid(360.0),
        eccentricity: k.eccentricity,
        arg_perigee_deg: k.arg_perigee_deg.rem_euclid(360.0),
        mean_anomaly_deg: k.mean_anomaly_deg.rem_euclid(360.0),
        mean_motion_rev_day: n_rad_s * 86_400.0 / (2.0 * PI),
    })
}

/// Validates OMM-style mean elements given field by field (the binding reads the JSON
/// keys `EPOCH`, `MEAN_MOTION`, …) and fills the epoch from an ISO-8601 UTC string.
///
/// # Errors
/// `ERR_INVALID_TLE` naming the OMM key when a field is out of range or the epoch does not parse.
#[allow(clippy::too_many_arguments)]
pub fn omm_to_mean(
    name: Option<String>,
    norad_id: u64,
    epoch_iso: &str,
    mean_motion_rev_day: f64,
    eccentricity: f64,
    inclination_deg: f64,
    raan_deg: f64,
    arg_perigee_deg: f64,
    mean_anomaly_deg: f64,
    bstar: f64,
    ndot: f64,
    nddot: f64,
) -> Result<MeanElements> {
    let s = epoch_iso.trim();
    let s = if s.ends_with('Z') || s.contains('+') {
        s.to_string()
    } else {
        format!("{s}Z")
    };
    let dt = chrono::DateTime::parse_from_rfc3339(&s).map_err(|e| {
        tle_err(format!(
            "omm.EPOCH must be an ISO-8601 UTC time, got '{epoch_iso}' ({e})"
        ))
    })?;
    let ms = dt.timestamp_millis() as f64 + (dt.timestamp_subsec_nanos() % 1_000_000) as f64 / 1e6;
    for (n, v) in [
        ("MEAN_MOTION", mean_motion_rev_day),
        ("ECCENTRICITY", eccentricity),
        ("INCLINATION", inclination_deg),
        ("RA_OF_ASC_NODE", raan_deg),
        ("ARG_OF_PERICENTER", arg_perigee_deg),
        ("MEAN_ANOMALY", mean_anomaly_deg),
        ("BSTAR", bstar),
    ] {
        if !v.is_finite() {
            return Err(tle_err(format!("omm.{n} must be a finite number, got {v}")));
        }
    }
    if mean_motion_rev_day <= 0.0 {
        return Err(tle_err(format!(
            "omm.MEAN_MOTION must be positive, got {mean_motion_rev_day}"
        )));
    }
    if !(0.0..1.0).contains(&eccentricity) {
        return Err(tle_err(format!(
            "omm.ECCENTRICITY must be within [0, 1), got {eccentricity}"
        )));
    }
    if !(0.0..=180.0).contains(&inclination_deg) {
        return Err(tle_err(format!(
            "omm.INCLINATION must be within [0, 180], got {inclination_deg}"
        )));
    }
    let jd = geo::jd_from_unix_ms(ms);
    let whole = (jd - 0.5).floor() + 0.5;
    Ok(MeanElements {
        name,
        norad_id,
        epoch_jd: whole,
        epoch_jd_frac: (ms - (whole - geo::JD_UNIX_EPOCH) * 86_400_000.0) / 86_400_000.0,
        ndot,
        nddot,
        bstar,
        inclination_deg,
        raan_deg,
        eccentricity,
        arg_perigee_deg,
        mean_anomaly_deg,
        mean_motion_rev_day,
    })
}

// ------------------------------------------------------------------ SGP4

/// Why a state is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// SGP4 failed or the satellite is below the Earth's surface: decayed.
    Decayed,
    /// |r| above 10 Earth radii for a near-Earth element set.
    Implausible,
}

/// A TEME state vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemeState {
    /// Position, km.
    pub r: Vec3,
    /// Velocity, km/s.
    pub v: Vec3,
}

/// An SGP4/SDP4 propagator for one element set (WGS72, opsmode 'i').
#[derive(Clone)]
pub struct Sgp4Orbit {
    /// The element set.
    pub elements: MeanElements,
    constants: sgp4::Constants,
    epoch_ms: f64,
    near_earth: bool,
    /// Perigee and apogee radii (km) from the mean elements.
    pub perigee_km: f64,
    /// Apogee radius, km.
    pub apogee_km: f64,
    /// Period, minutes.
    pub period_min: f64,
    /// UT1 − UTC, seconds, used for the Earth rotation angle.
    pub ut1_minus_utc_s: f64,
}

impl std::fmt::Debug for Sgp4Orbit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sgp4Orbit")
            .field("elements", &self.elements)
            .finish()
    }
}

impl Sgp4Orbit {
    /// Initialises SGP4 from mean elements.
    ///
    /// # Errors
    /// `ERR_INVALID_TLE` when SGP4 rejects the elements at initialisation.
    pub fn new(el: MeanElements) -> Result<Self> {
        Self::with_mode(el, false)
    }

    /// As `new`, in AFSPC compatibility mode (AFSPC sidereal time and epoch); used to
    /// check the published verification vectors, which were made that way.
    pub fn new_afspc(el: MeanElements) -> Result<Self> {
        Self::with_mode(el, true)
    }

    fn with_mode(el: MeanElements, afspc: bool) -> Result<Self> {
        let d2r = PI / 180.0;
        let orbit0 = sgp4::Orbit::from_kozai_elements(
            &sgp4::WGS72,
            el.inclination_deg * d2r,
            el.raan_deg * d2r,
            el.eccentricity,
            el.arg_perigee_deg * d2r,
            el.mean_anomaly_deg * d2r,
            el.mean_motion_rev_day * (PI / 720.0),
        )
        .map_err(|e| tle_err(format!("SGP4 rejected the elements: {e}")))?;
        // Years since J2000 (2000-01-01T12:00 UTC).
        let epoch_years = ((el.epoch_jd - geo::JD_J2000) + el.epoch_jd_frac) / 365.25;
        let constants = if afspc {
            sgp4::Constants::new(
                sgp4::WGS72,
                sgp4::afspc_epoch_to_sidereal_time,
                epoch_years,
                el.bstar,
                orbit0,
            )
        } else {
            sgp4::Constants::new(
                sgp4::WGS72,
                sgp4::iau_epoch_to_sidereal_time,
                epoch_years,
                el.bstar,
                orbit0,
            )
        }
        .map_err(|e| tle_err(format!("SGP4 rejected the elements: {e}")))?;
        let n_rad_s = el.mean_motion_rev_day * 2.0 * PI / 86_400.0;
        let a = (WGS72_MU / (n_rad_s * n_rad_s)).cbrt();
        let period_min = 1440.0 / el.mean_motion_rev_day;
        Ok(Sgp4Orbit {
            epoch_ms: el.epoch_unix_ms(),
            near_earth: period_min < 225.0,
            perigee_km: a * (1.0 - el.eccentricity),
            apogee_km: a * (1.0 + el.eccentricity),
            period_min,
            elements: el,
            constants,
            ut1_minus_utc_s: 0.0,
        })
    }

    /// Epoch, Unix ms (UTC).
    pub fn epoch_unix_ms(&self) -> f64 {
        self.epoch_ms
    }

    /// True for near-Earth (SGP4) element sets, false for deep-space (SDP4, period ≥ 225 min).
    pub fn is_near_earth(&self) -> bool {
        self.near_earth
    }

    /// Raw TEME state at `tsince_min` minutes after the epoch, with the validity checks of
    /// the module documentation applied to this one sample (not sticky).
    pub fn teme_at_minutes(&self, tsince_min: f64) -> std::result::Result<TemeState, Invalid> {
        match self
            .constants
            .propagate(sgp4::MinutesSinceEpoch(tsince_min))
        {
            Ok(p) => {
                let r = p.position;
                let rn = geo::norm(r);
                if !rn.is_finite() || !geo::norm(p.velocity).is_finite() || rn < WGS72_RADIUS_KM {
                    Err(Invalid::Decayed)
                } else if self.near_earth && rn > 10.0 * WGS72_RADIUS_KM {
                    Err(Invalid::Implausible)
                } else {
                    Ok(TemeState { r, v: p.velocity })
                }
            }
            Err(_) => Err(Invalid::Decayed),
        }
    }

    /// Raw TEME state in AFSPC mode (for verification vectors only).
    pub fn teme_at_minutes_afspc(&self, tsince_min: f64) -> Option<TemeState> {
        self.constants
            .propagate_afspc_compatibility_mode(sgp4::MinutesSinceEpoch(tsince_min))
            .ok()
            .map(|p| TemeState {
                r: p.position,
                v: p.velocity,
            })
    }

    /// Minutes since epoch of a Unix time.
    pub fn tsince_min(&self, unix_ms: f64) -> f64 {
        (unix_ms - self.epoch_ms) / 60_000.0
    }

    /// TEME state at a Unix time (one sample, not sticky).
    pub fn teme_at(&self, unix_ms: f64) -> std::result::Result<TemeState, Invalid> {
        self.teme_at_minutes(self.tsince_min(unix_ms))
    }

    /// GMST (radians) at a UTC Unix time, evaluated at UT1 = UTC + `ut1_minus_utc_s`.
    pub fn gmst(&self, unix_ms: f64) -> f64 {
        geo::gmst_rad(geo::jd_from_unix_ms(
            unix_ms + self.ut1_minus_utc_s * 1000.0,
        ))
    }

    /// Earth-fixed position (km) and velocity (km/s, Earth-fixed frame) at a Unix time.
    pub fn ecef_at(&self, unix_ms: f64) -> std::result::Result<(Vec3, Vec3), Invalid> {
        let s = self.teme_at(unix_ms)?;
        let g = self.gmst(unix_ms);
        let r = geo::teme_to_ecef(s.r, g);
        let v0 = geo::teme_to_ecef(s.v, g);
        // v_ecef = R v_teme − ω × r_ecef
        let w = EARTH_ROTATION_RAD_S;
        let v = [v0[0] + w * r[1], v0[1] - w * r[0], v0[2]];
        Ok((r, v))
    }

    /// First time in `(from_ms, to_ms]` (searching forward, or backward when `to_ms <
    /// from_ms`) at which the satellite is invalid, with the reason; `None` when it stays
    /// valid. Samples every `min(1 h, period / 8)` and refines the onset by bisection to
    /// 1 s. Decay is sticky: once invalid, every later time (moving away from the epoch) is.
    pub fn first_invalid_between(&self, from_ms: f64, to_ms: f64) -> Option<(f64, Invalid)> {
        let step = (3_600_000.0f64).min(self.period_min * 60_000.0 / 8.0);
        let dir = if to_ms >= from_ms { 1.0 } else { -1.0 };
        let mut prev = from_ms;
        if let Err(e) = self.teme_at(from_ms) {
            return Some((from_ms, e));
        }
        if self.near_earth && self.elements.bstar == 0.0 {
            // Near-Earth SGP4 without drag has constant mean semi-major axis and
            // eccentricity: it cannot decay, so the end point alone is checked (this keeps
            // drag-free Keplerian and default orbits cheap far from their epoch).
            return self.teme_at(to_ms).err().map(|e| (to_ms, e));
        }
        loop {
            let done = (to_ms - prev) * dir <= 0.0;
            if done {
                return None;
            }
            let next = if (to_ms - prev).abs() <= step {
                to_ms
            } else {
                prev + dir * step
            };
            if let Err(e) = self.teme_at(next) {
                // Refine [prev valid, next invalid] to 1 s.
                let (mut a, mut b, mut why) = (prev, next, e);
                while (b - a).abs() > 1000.0 {
                    let m = 0.5 * (a + b);
                    match self.teme_at(m) {
                        Ok(_) => a = m,
                        Err(w) => {
                            b = m;
                            why = w;
                        }
                    }
                }
                return Some((b, why));
            }
            prev = next;
        }
    }

    /// The valid span that contains `[t0, t1]`, as `(first valid, last valid)` Unix ms,
    /// clipped to `[t0, t1]`, after scanning from the epoch (decay is sticky away from the
    /// epoch). `Err` when nothing of `[t0, t1]` is valid.
    pub fn valid_span(&self, t0: f64, t1: f64) -> std::result::Result<(f64, f64), (f64, Invalid)> {
        let e = self.epoch_ms;
        let mut lo = t0;
        let mut hi = t1;
        if t1 > e {
            if let Some((t, why)) = self.first_invalid_between(e.max(t0.min(e)), t1) {
                if t <= t0 {
                    return Err((t, why));
                }
                hi = hi.min(t - 1.0);
            }
        }
        if t0 < e {
            if let Some((t, why)) = self.first_invalid_between(e.min(t1.max(e)), t0) {
                if t >= t1 {
                    return Err((t, why));
                }
                lo = lo.max(t + 1.0);
            }
        }
        if lo > hi {
            return Err((lo, Invalid::Decayed));
        }
        Ok((lo, hi))
    }

    /// Sticky state query: the TEME state at `unix_ms`, or `ERR_DECAYED` /
    /// `ERR_IMPLAUSIBLE_STATE` when the satellite became invalid between the epoch and
    /// that time.
    pub fn state_checked(&self, unix_ms: f64) -> Result<TemeState> {
        match self.valid_span(unix_ms, unix_ms) {
            Ok(_) => self
                .teme_at(unix_ms)
                .map_err(|w| invalid_error(w, unix_ms, unix_ms)),
            Err((t, w)) => Err(invalid_error(w, t, unix_ms)),
        }
    }
}

/// Earth rotation rate, rad/s (WGS-84 / IERS).
pub const EARTH_ROTATION_RAD_S: f64 = 7.292_115_146_706_979e-5;

/// The core error for an invalid state first seen at `since_ms` and asked at `at_ms`.
pub fn invalid_error(w: Invalid, since_ms: f64, at_ms: f64) -> Error {
    let iso = |ms: f64| {
        chrono::DateTime::from_timestamp_millis(ms.round() as i64)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| format!("{ms} ms"))
    };
    match w {
        Invalid::Decayed => Error::new(Code::Decayed, format!("the satellite has decayed (SGP4 invalid since {}); asked for {}", iso(since_ms), iso(at_ms))),
        Invalid::Implausible => Error::new(
            Code::ImplausibleState,
            format!("SGP4 returned an implausible state (|r| > 10 Earth radii for a near-Earth element set) since {}; asked for {}", iso(since_ms), iso(at_ms)),
        ),
    }
}

impl OrbitSource for Sgp4Orbit {
    fn position_ecef(&self, unix_ms: f64) -> Result<Vec3> {
        let s = self.state_checked(unix_ms)?;
        Ok(geo::teme_to_ecef(s.r, self.gmst(unix_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEO_REF: [&str; 2] = [
        "1 90001U 24001A   24001.50000000  .00016717  00000-0  10270-3 0  9994",
        "2 90001  51.6416 247.4627 0006703 130.5360 325.0288 15.50000000    11",
    ];

    fn jd(e: &MeanElements) -> f64 {
        e.epoch_jd + e.epoch_jd_frac
    }

    #[test]
    fn epoch_pivot_and_day_zero() {
        // CASES 2.
        let e56 = parse_tle_lines(&[
            "1 90002U 24001B   56366.50000000  .00000100  00000-0  10000-4 0    19",
            "2 90002  97.5000  10.0000 0001000  90.0000 270.0000 15.20000000    13",
        ])
        .unwrap();
        assert_eq!(jd(&e56), 2_472_364.0);
        let e57 = parse_tle_lines(&[
            "1 90003U 57001A   57001.00000000  .00000100  00000-0  10000-4 0    18",
            "2 90003  65.0000  10.0000 0001000  90.0000 270.0000 15.20000000    14",
        ])
        .unwrap();
        assert_eq!(jd(&e57), 2_435_839.5);
        let e0 = parse_tle_lines(&[
            "1 90004U 99001A   00000.50000000  .00000100  00000-0  10000-4 0    17",
            "2 90004  97.5000  10.0000 0001000  90.0000 270.0000 15.20000000    15",
        ])
        .unwrap();
        // 1999-12-31T12:00Z = JD 2451544.0 (J2000.0 is a day later).
        assert_eq!(jd(&e0), 2_451_544.0);
        assert_eq!(e0.epoch_unix_ms(), 946_641_600_000.0);
        // Export: years outside [1957, 2056] are refused.
        let y2057 = 2_745_532_800_000.0; // 2057-01-01T00:00Z = JD 2472364.5
        assert_eq!(
            format_tle_epoch(y2057).unwrap_err().code,
            Code::EpochOutOfRange
        );
        let y1956 = -410_313_600_000.0; // 1956-12-31T00:00Z = JD 2435838.5
        assert_eq!(
            format_tle_epoch(y1956).unwrap_err().code,
            Code::EpochOutOfRange
        );
        assert_eq!(
            format_tle_epoch(e56.epoch_unix_ms()).unwrap(),
            "56366.50000000"
        );
    }

    #[test]
    fn signed_implied_decimal_fields() {
        // CASES 3.
        let e = parse_tle_lines(&[
            "1 90005U 24001F   24001.00000000 -.00000295 -12345-5 -31416-2 0    18",
            "2 90005  19.0000  30.0000 7000000 140.0000 300.0000  2.25000000    14",
        ])
        .unwrap();
        assert!((e.bstar - -3.1416e-3).abs() < 1e-15, "{}", e.bstar);
        assert!((e.nddot - -1.2345e-6).abs() < 1e-18, "{}", e.nddot);
        assert!((e.ndot - -2.95e-6).abs() < 1e-18);
        assert!((parse_implied_exp(" 12345+1", 1, 45, 52, "x").unwrap() - 1.2345).abs() < 1e-15);
        assert!((parse_implied_exp("+12345-5", 1, 45, 52, "x").unwrap() - 1.2345e-6).abs() < 1e-18);
        let err = parse_implied_exp("        ", 1, 54, 61, "B* drag term").unwrap_err();
        assert_eq!(err.code, Code::InvalidTle);
        assert!(err.message.contains("columns 54-61"), "{}", err.message);
        // A blank B* in a full line (checksum recomputed) is an error naming the columns.
        let mut l1 =
            "1 90005U 24001F   24001.00000000 -.00000295 -12345-5          0    1".to_string();
        l1.push(char::from(b'0' + tle_checksum(&l1) as u8));
        let err = parse_tle_lines(&[
            &l1,
            "2 90005  19.0000  30.0000 7000000 140.0000 300.0000  2.25000000    14",
        ])
        .unwrap_err();
        assert!(
            err.message.contains("line 1 columns 54-61"),
            "{}",
            err.message
        );
    }

    #[test]
    fn malformed_tles() {
        let bad_sum = LEO_REF[0].replace("9994", "9995");
        let e = parse_tle_lines(&[&bad_sum, LEO_REF[1]]).unwrap_err();
        assert!(
            e.code == Code::InvalidTle && e.message.contains("checksum"),
            "{}",
            e.message
        );
        let e = parse_tle_lines(&[&LEO_REF[0][..60], LEO_REF[1]]).unwrap_err();
        assert!(e.message.contains("69 characters"), "{}", e.message);
        let e = parse_tle_lines(&[LEO_REF[0]]).unwrap_err();
        assert!(e.message.contains("got 1"));
        let mut l2 = LEO_REF[1].replace("51.6416", "51.6x16");
        l2.truncate(68);
        l2.push(char::from(b'0' + tle_checksum(&l2) as u8));
        let e = parse_tle_lines(&[LEO_REF[0], &l2]).unwrap_err();
        assert!(e.message.contains("line 2 columns 9-16"), "{}", e.message);
        // 3-line form and one-string form.
        let t = format!("ISS TEST\n{}\r\n{}\n", LEO_REF[0], LEO_REF[1]);
        let e = parse_tle_text(&t).unwrap();
        assert_eq!(e.name.as_deref(), Some("ISS TEST"));
        assert_eq!(e.norad_id, 90001);
    }

    #[test]
    fn decay_is_sticky() {
        // CASES 1 and 5: DECAYER.
        let o = Sgp4Orbit::new(
            parse_tle_lines(&[
                "1 99001U 24001A   24001.00000000  .00150000  00000-0  50000-2 0  9996",
                "2 99001  97.5000  10.0000 0005000  90.0000 270.0000 15.90000000    12",
            ])
            .unwrap(),
        )
        .unwrap();
        let day = 86_400_000.0;
        let e = o.epoch_unix_ms();
        assert!(o.state_checked(e).is_ok());
        assert!(o.state_checked(e + 5.0 * day).is_ok());
        let (t_decay, _) = o.first_invalid_between(e, e + 900.0 * day).expect("decays");
        assert!(
            t_decay > e + 5.0 * day && t_decay < e + 11.0 * day,
            "{}",
            (t_decay - e) / day
        );
        for d in [11.0, 21.0, 39.0, 900.0] {
            let err = o.state_checked(e + d * day).unwrap_err();
            assert!(
                matches!(err.code, Code::Decayed | Code::ImplausibleState),
                "day {d}: {err}"
            );
        }
    }
}
