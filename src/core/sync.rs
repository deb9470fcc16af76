//! Contact windows between satellites (SGP4 orbits) and ground stations.
//!
//! Geometry: SGP4 TEME position → Earth-fixed by GMST-1982 at UT1 (UT1 = UTC +
//! `ut1_minus_utc_s`, polar motion neglected) → topocentric elevation over the WGS-84
//! station (geodetic normal, station height included). Elevation is geometric (no
//! refraction), as in the Skyfield reference.
//!
//! # Search, and why no pass of 10 s or more is missed
//!
//! Let `d` be the station→satellite vector, `v = |ḋ|` its rate (the satellite's
//! Earth-fixed speed, the station being fixed). The line-of-sight direction `d/|d|`
//! turns at most at `v/|d|` rad/s, so the elevation changes at most at that rate, and
//! `|d|` itself shrinks at most at rate `v`. Hence, from a sample with elevation `e₀`
//! and range `d₀`, the elevation cannot move by `Δ` radians before
//!
//! ```text
//! T(Δ) = (d₀/v)(1 − e^{−Δ})                             if Δ ≤ ln(d₀/ρ)
//!      = (d₀ − ρ)/v + (Δ − ln(d₀/ρ)) ρ/v                 otherwise
//! ```
//!
//! where `ρ` is a floor under the range during that interval (integrate `de/dt ≤ v/|d|`
//! with `|d| ≥ max(ρ, d₀ − v t)`). Below the mask we use `ρ = ρ_m`, the smallest range
//! at which any satellite of radius ≥ `r_p` (perigee radius less a margin) can be at
//! elevation ≤ `m + 0.25°` seen from the geocentric zenith (the 0.25° covers the tilt of
//! the geodetic normal, at most 0.193°): `ρ_m = √(r_p² − R_s² cos² m′) − R_s sin m′`.
//! Above the mask we use `ρ = r_p − R_s`. `v` is bounded by the perigee speed from
//! vis-viva (3 % margin) plus `ω⊕ r_a`. So stepping by `T(|e₀ − m|)` never steps over a
//! crossing of the mask. Near the mask `T` shrinks, so steps never go below a floor
//! `h` (default and maximum 10 s): a pass that starts within a floor step and lasts
//! ≥ `h` is still above the mask at the next sample. Therefore every pass of duration
//! ≥ `h` contains a sample, and is found; passes (or gaps inside a pass) shorter than
//! `h` may be missed or merged. The perigee used is the lowest of the mean-element
//! perigee and the osculating perigees at both ends of the request (drag lowers it
//! monotonically). Inside a pass the step is also capped at 1/100 of the
//! period so that culminations are bracketed.
//!
//! A sign change between samples is refined by bisection/secant (Illinois) to 1 ms;
//! the culmination by Brent's method around the highest sample, to 0.5 ms.
//! Far from the station the steps are long (≈15 min for LEO on the far side), which
//! is what makes the search fast; GEO never-visible / always-visible cases take a few
//! dozen samples per day.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::core::error::{Error, Result};
use crate::core::geo::{self, Geodetic, Observer, Vec3};
use crate::core::orbit::{invalid_error, Invalid, Sgp4Orbit, EARTH_ROTATION_RAD_S, WGS72_MU};

/// A ground station: WGS-84 position, link rates and elevation mask.
#[derive(Debug, Clone)]
pub struct Station {
    /// Display name.
    pub name: String,
    /// Geodetic position.
    pub geodetic: Geodetic,
    /// Uplink rate, Mbps (10⁶ bit/s).
    pub uplink_mbps: f64,
    /// Downlink rate, Mbps.
    pub downlink_mbps: f64,
    /// Elevation mask, degrees in [0, 90).
    pub min_elevation_deg: f64,
    observer: Observer,
}

impl Station {
    /// Validates and builds a station.
    ///
    /// # Errors
    /// `ERR_INVALID_ARG` naming the field: negative or non-finite rates, mask outside
    /// [0, 90), empty name (position ranges are checked by `Geodetic::new`).
    pub fn new(
        name: &str,
        geodetic: Geodetic,
        uplink_mbps: f64,
        downlink_mbps: f64,
        min_elevation_deg: f64,
    ) -> Result<Self> {
        let g = Geodetic::new(geodetic.lat_deg, geodetic.lon_deg, geodetic.alt_km)?;
        if name.is_empty() {
            return Err(Error::invalid_arg(
                "station name must be a non-empty string, got ''",
            ));
        }
        for (n, v) in [("uplinkMbps", uplink_mbps), ("downlinkMbps", downlink_mbps)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid_arg(format!(
                    "{n} of station '{name}' must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        if !(min_elevation_deg.is_finite() && (0.0..90.0).contains(&min_elevation_deg)) {
            return Err(Error::invalid_arg(format!("minElevationDeg of station '{name}' must be within [0, 90), got {min_elevation_deg}")));
        }
        Ok(Station {
            name: name.to_string(),
            geodetic: g,
            uplink_mbps,
            downlink_mbps,
            min_elevation_deg,
            observer: Observer::new(g),
        })
    }

    /// The station's observer (ECEF position and local frame).
    pub fn observer(&self) -> &Observer {
        &self.observer
    }
}

/// How the data rate depends on the geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateModel {
    /// The nominal rate for the whole window: capacity = rate × duration ÷ 8.
    Constant,
    /// Free-space link budget: rate(t) = nominal × min(1, (ρ_ref / ρ(t))²), where ρ(t)
    /// is the slant range; capacity = ∫ rate dt ÷ 8 (Simpson, 64 intervals).
    LinkBudget {
        /// Slant range (km) at which the nominal rate is reached.
        reference_range_km: f64,
    },
}

/// Options of a window search.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    /// UT1 − UTC, seconds (|x| < 1).
    pub ut1_minus_utc_s: f64,
    /// Step floor, seconds, in (0, 10]: passes at least this long are never missed.
    pub min_step_s: f64,
    /// Capacity model.
    pub rate_model: RateModel,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            ut1_minus_utc_s: 0.0,
            min_step_s: 10.0,
            rate_model: RateModel::Constant,
        }
    }
}

/// One contact window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Satellite id.
    pub satellite_id: String,
    /// Index of the station in the scheduler's list.
    pub station_index: usize,
    /// AOS (or the request start when clipped), Unix ms.
    pub start_ms: f64,
    /// LOS (or the request end when clipped), Unix ms.
    pub end_ms: f64,
    /// Highest elevation inside the window, degrees.
    pub max_elevation_deg: f64,
    /// Its time, Unix ms.
    pub max_elevation_ms: f64,
    /// The pass was already under way at the request start.
    pub clipped_start: bool,
    /// The pass had not ended at the request end (or at the decay time).
    pub clipped_end: bool,
    /// The window ends because the satellite decayed (or SGP4 became invalid).
    pub ends_by_decay: bool,
    /// Downlink capacity, MB (10⁶ bytes).
    pub downlink_mb: f64,
    /// Uplink capacity, MB.
    pub uplink_mb: f64,
    /// Slant range at the culmination, km.
    pub min_range_km: f64,
}

impl Window {
    /// Duration, seconds, between the edges as reported to the whole millisecond (the
    /// capacities are computed over the same span).
    pub fn duration_s(&self) -> f64 {
        (self.end_ms.round() - self.start_ms.round()) / 1000.0
    }
}

/// Topocentric look angles and the satellite's Earth-fixed state at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Earth-fixed position, km.
    pub ecef: Vec3,
    /// Earth-fixed velocity, km/s.
    pub vel: Vec3,
    /// Elevation, degrees.
    pub el_deg: f64,
    /// Slant range, km.
    pub range_km: f64,
}

/// Earth-fixed state at `t_ms` (UT1 = UTC + dut1).
pub fn ecef_state(
    orbit: &Sgp4Orbit,
    t_ms: f64,
    dut1_s: f64,
) -> std::result::Result<(Vec3, Vec3), Invalid> {
    let s = orbit.teme_at(t_ms)?;
    let g = geo::gmst_rad(geo::jd_from_unix_ms(t_ms + dut1_s * 1000.0));
    let r = geo::teme_to_ecef(s.r, g);
    let v0 = geo::teme_to_ecef(s.v, g);
    let w = EARTH_ROTATION_RAD_S;
    Ok((r, [v0[0] + w * r[1], v0[1] - w * r[0], v0[2]]))
}

fn sample(
    orbit: &Sgp4Orbit,
    obs: &Observer,
    t_ms: f64,
    dut1: f64,
) -> std::result::Result<Sample, Invalid> {
    let (r, v) = ecef_state(orbit, t_ms, dut1)?;
    let d = geo::sub(r, obs.ecef);
    let range = geo::norm(d);
    Ok(Sample {
        ecef: r,
        vel: v,
        el_deg: obs.sin_elevation(r).asin().to_degrees(),
        range_km: range,
    })
}

/// Lower bound on the time (s) for the elevation to change by `delta_rad`.
fn min_time_s(delta_rad: f64, d0: f64, floor: f64, v: f64) -> f64 {
    let d0 = d0.max(floor);
    let l = (d0 / floor).ln();
    if delta_rad <= l {
        (d0 / v) * (1.0 - (-delta_rad).exp())
    } else {
        (d0 - floor) / v + (delta_rad - l) * floor / v
    }
}

/// Per orbit × station bounds used by the search.
struct Bounds {
    v_max: f64,
    rho_out: f64,
    rho_in: f64,
    cap_in_s: f64,
}

/// Osculating perigee radius (km) of the SGP4 state at `t_ms`, if valid.
fn osculating_perigee(orbit: &Sgp4Orbit, t_ms: f64) -> Option<f64> {
    let s = orbit.teme_at(t_ms).ok()?;
    let r = geo::norm(s.r);
    let v2 = geo::dot(s.v, s.v);
    let a = 1.0 / (2.0 / r - v2 / WGS72_MU);
    let h = [
        s.r[1] * s.v[2] - s.r[2] * s.v[1],
        s.r[2] * s.v[0] - s.r[0] * s.v[2],
        s.r[0] * s.v[1] - s.r[1] * s.v[0],
    ];
    let p = geo::dot(h, h) / WGS72_MU;
    let e = (1.0 - p / a).max(0.0).sqrt();
    (a.is_finite() && a > 0.0).then_some(a * (1.0 - e))
}

/// The lowest perigee radius to assume over [t0, t1]: the mean-element perigee and the
/// osculating perigees at both ends (drag lowers the perigee monotonically, so the ends
/// bound it), whichever is lowest.
fn perigee_floor(orbit: &Sgp4Orbit, t0: f64, t1: f64) -> f64 {
    let mut rp = orbit.perigee_km;
    for t in [t0, t1] {
        if let Some(x) = osculating_perigee(orbit, t) {
            rp = rp.min(x);
        }
    }
    rp
}

fn bounds(orbit: &Sgp4Orbit, st: &Station, perigee_km: f64) -> Bounds {
    let rs = geo::norm(st.observer.ecef);
    let a = 0.5 * (orbit.perigee_km + orbit.apogee_km);
    // Margin for SGP4 short-period terms; never below the station's radius + 50 km.
    let rp = (perigee_km - 30.0).max(rs + 50.0);
    let ra = orbit.apogee_km + 30.0;
    let v_p = (WGS72_MU * (2.0 / rp - 1.0 / a.max(rp))).max(0.0).sqrt();
    let v_max = 1.03 * v_p + EARTH_ROTATION_RAD_S * ra;
    let m = (st.min_elevation_deg + 0.25).min(90.0).to_radians();
    let rho_out = ((rp * rp - rs * rs * m.cos() * m.cos()).max(0.0).sqrt() - rs * m.sin())
        .max(rp - rs)
        .max(1.0);
    let rho_in = (rp - rs).max(1.0);
    Bounds {
        v_max,
        rho_out,
        rho_in,
        cap_in_s: orbit.period_min * 60.0 / 100.0,
    }
}

/// Finds the root of `f` in [a, b] given f(a) and f(b) of opposite signs (Illinois), to 1 ms.
fn refine_crossing(
    f: &dyn Fn(f64) -> Option<f64>,
    mut a: f64,
    mut fa: f64,
    mut b: f64,
    mut fb: f64,
) -> f64 {
    let mut side = 0i32;
    for _ in 0..100 {
        if (b - a).abs() <= 1.0 {
            break;
        }
        let mut c = (a * fb - b * fa) / (fb - fa);
        if !c.is_finite() || c <= a.min(b) || c >= a.max(b) {
            c = 0.5 * (a + b);
        }
        let Some(fc) = f(c) else {
            c = 0.5 * (a + b);
            // Invalid state mid-bracket: fall back to bisection on validity is not possible;
            // treat as below the mask.
            b = c;
            fb = -1.0;
            continue;
        };
        if fc == 0.0 {
            return c;
        }
        if (fc > 0.0) == (fb > 0.0) {
            b = c;
            fb = fc;
            if side == -1 {
                fa *= 0.5;
            }
            side = -1;
        } else {
            a = c;
            fa = fc;
            if side == 1 {
                fb *= 0.5;
            }
            side = 1;
        }
        if (b - a).abs() <= 1.0 {
            break;
        }
    }
    // Return the end that is above the mask side closest to the true crossing.
    let m = 0.5 * (a + b);
    let _ = (fa, fb);
    m
}

/// Maximisation of `f` on [a, b] (Brent's method: parabolic steps safeguarded by golden
/// section, as in Numerical Recipes `brent`), to 0.5 ms. Returns (t, f(t)).
fn maximise(f: &dyn Fn(f64) -> Option<f64>, a0: f64, b0: f64) -> Option<(f64, f64)> {
    const CGOLD: f64 = 0.381_966_011_250_105_1;
    const TOL: f64 = 0.5; // ms
                          // Work in time relative to a0, minimising g = −f.
    let g = |s: f64| f(a0 + s).map(|v| -v);
    let (mut a, mut b) = (0.0f64, b0 - a0);
    let mut x = a + CGOLD * (b - a);
    let (mut w, mut v) = (x, x);
    let mut fx = g(x)?;
    let (mut fw, mut fv) = (fx, fx);
    let (mut d, mut e) = (0.0f64, 0.0f64);
    for _ in 0..200 {
        let xm = 0.5 * (a + b);
        let tol2 = 2.0 * TOL;
        if (x - xm).abs() <= tol2 - 0.5 * (b - a) {
            break;
        }
        if e.abs() > TOL {
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let etemp = e;
            e = d;
            if p.abs() >= (0.5 * q * etemp).abs() || p <= q * (a - x) || p >= q * (b - x) {
                e = if x >= xm { a - x } else { b - x };
                d = CGOLD * e;
            } else {
                d = p / q;
                let u = x + d;
                if u - a < tol2 || b - u < tol2 {
                    d = TOL.copysign(xm - x);
                }
            }
        } else {
            e = if x >= xm { a - x } else { b - x };
            d = CGOLD * e;
        }
        let u = if d.abs() >= TOL {
            x + d
        } else {
            x + TOL.copysign(d)
        };
        let fu = g(u)?;
        if fu <= fx {
            if u >= x {
                a = x;
            } else {
                b = x;
            }
            v = w;
            w = x;
            x = u;
            fv = fw;
            fw = fx;
            fx = fu;
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                v = w;
                w = u;
                fv = fw;
                fw = fu;
            } else if fu <= fv || v == x || v == w {
                v = u;
                fv = fu;
            }
        }
    }
    Some((a0 + x, -fx))
}

/// Contact windows of one satellite with one station over [t0, t1] (Unix ms), sorted.
/// `valid_to` is the last instant at which the orbit is valid (decay), ≤ t1.
/// (Kept as the reference for the lock-step search, which must give the same windows.)
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn station_windows(
    sat_id: &str,
    orbit: &Sgp4Orbit,
    st_index: usize,
    st: &Station,
    t0: f64,
    t1: f64,
    t1_requested: f64,
    opts: &SearchOptions,
) -> Vec<Window> {
    let obs = st.observer;
    let dut1 = opts.ut1_minus_utc_s;
    let m = st.min_elevation_deg;
    let b = bounds(orbit, st, perigee_floor(orbit, t0, t1));
    let el = |t: f64| sample(orbit, &obs, t, dut1).ok().map(|s| s.el_deg - m);
    let mut out = Vec::new();
    let Ok(mut s) = sample(orbit, &obs, t0, dut1) else {
        return out;
    };
    let mut t = t0;
    let mut in_pass = s.el_deg >= m;
    let mut start = t0;
    let mut clipped_start = in_pass;
    // Samples inside the current pass: (t, elevation − mask).
    let mut pts: Vec<(f64, f64)> = if in_pass {
        vec![(t0, s.el_deg - m)]
    } else {
        Vec::new()
    };
    let floor_ms = opts.min_step_s * 1000.0;
    loop {
        if t >= t1 {
            break;
        }
        let delta = (s.el_deg - m).abs().to_radians();
        let mut step = if in_pass {
            (min_time_s(delta, s.range_km, b.rho_in, b.v_max) * 1000.0).min(b.cap_in_s * 1000.0)
        } else {
            min_time_s(delta, s.range_km, b.rho_out, b.v_max) * 1000.0
        };
        step = step.max(floor_ms);
        let tn = (t + step).min(t1);
        let Ok(sn) = sample(orbit, &obs, tn, dut1) else {
            // SGP4 became invalid inside the span: the search ends here (sticky decay).
            if in_pass {
                pts.push((t, s.el_deg - m));
                out.push(close(
                    sat_id,
                    orbit,
                    st_index,
                    st,
                    &el,
                    start,
                    t,
                    clipped_start,
                    true,
                    true,
                    &pts,
                    opts,
                ));
            }
            return out;
        };
        let now_in = sn.el_deg >= m;
        if now_in != in_pass {
            let tc = refine_crossing(&el, t, s.el_deg - m, tn, sn.el_deg - m);
            if now_in {
                start = tc;
                clipped_start = false;
                pts.clear();
                pts.push((tc, 0.0));
                pts.push((tn, sn.el_deg - m));
            } else {
                pts.push((tc, 0.0));
                out.push(close(
                    sat_id,
                    orbit,
                    st_index,
                    st,
                    &el,
                    start,
                    tc,
                    clipped_start,
                    false,
                    false,
                    &pts,
                    opts,
                ));
                pts.clear();
            }
            in_pass = now_in;
        } else if in_pass {
            pts.push((tn, sn.el_deg - m));
        }
        t = tn;
        s = sn;
    }
    if in_pass {
        let by_decay = t1 < t1_requested;
        out.push(close(
            sat_id,
            orbit,
            st_index,
            st,
            &el,
            start,
            t1,
            clipped_start,
            true,
            by_decay,
            &pts,
            opts,
        ));
    }
    out
}

/// Per-station state of the lock-step search.
struct Track {
    in_pass: bool,
    start: f64,
    clipped_start: bool,
    el: f64,
    range: f64,
    pts: Vec<(f64, f64)>,
}

/// Windows of one satellite with every station over [t0, t1], in lock step: one SGP4
/// propagation per sample time serves every station; the step is the smallest of the
/// stations' safe steps (each as in [`station_windows`]), so the guarantee holds for each.
#[allow(clippy::too_many_arguments)]
fn all_station_windows(
    sat_id: &str,
    orbit: &Sgp4Orbit,
    stations: &[Station],
    t0: f64,
    t1: f64,
    t1_requested: f64,
    opts: &SearchOptions,
) -> Vec<Window> {
    let dut1 = opts.ut1_minus_utc_s;
    let pf = perigee_floor(orbit, t0, t1);
    let bs: Vec<Bounds> = stations.iter().map(|st| bounds(orbit, st, pf)).collect();
    let mut out = Vec::new();
    let look = |r: Vec3, st: &Station| {
        (
            st.observer.sin_elevation(r).asin().to_degrees(),
            geo::distance(r, st.observer.ecef),
        )
    };
    let Ok((r0, _)) = ecef_state(orbit, t0, dut1) else {
        return out;
    };
    let mut tr: Vec<Track> = stations
        .iter()
        .map(|st| {
            let (el, range) = look(r0, st);
            let m = st.min_elevation_deg;
            let in_pass = el >= m;
            Track {
                in_pass,
                start: t0,
                clipped_start: in_pass,
                el,
                range,
                pts: if in_pass {
                    vec![(t0, el - m)]
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let floor_ms = opts.min_step_s * 1000.0;
    let mut t = t0;
    while t < t1 {
        let mut step = f64::INFINITY;
        for (k, st) in stations.iter().enumerate() {
            let x = &tr[k];
            let b = &bs[k];
            let delta = (x.el - st.min_elevation_deg).abs().to_radians();
            let s = if x.in_pass {
                (min_time_s(delta, x.range, b.rho_in, b.v_max) * 1000.0).min(b.cap_in_s * 1000.0)
            } else {
                min_time_s(delta, x.range, b.rho_out, b.v_max) * 1000.0
            };
            step = step.min(s.max(floor_ms));
        }
        let tn = (t + step).min(t1);
        let Ok((rn, _)) = ecef_state(orbit, tn, dut1) else {
            // SGP4 became invalid inside the span: the search ends here (sticky decay).
            for (k, st) in stations.iter().enumerate() {
                let x = &mut tr[k];
                if x.in_pass {
                    let m = st.min_elevation_deg;
                    x.pts.push((t, x.el - m));
                    let obs = st.observer;
                    let el = |tt: f64| sample(orbit, &obs, tt, dut1).ok().map(|s| s.el_deg - m);
                    out.push(close(
                        sat_id,
                        orbit,
                        k,
                        st,
                        &el,
                        x.start,
                        t,
                        x.clipped_start,
                        true,
                        true,
                        &x.pts,
                        opts,
                    ));
                }
            }
            return out;
        };
        for (k, st) in stations.iter().enumerate() {
            let m = st.min_elevation_deg;
            let (eln, rgn) = look(rn, st);
            let x = &mut tr[k];
            let now_in = eln >= m;
            if now_in != x.in_pass {
                let obs = st.observer;
                let el = |tt: f64| sample(orbit, &obs, tt, dut1).ok().map(|s| s.el_deg - m);
                let tc = refine_crossing(&el, t, x.el - m, tn, eln - m);
                if now_in {
                    x.start = tc;
                    x.clipped_start = false;
                    x.pts.clear();
                    x.pts.push((tc, 0.0));
                    x.pts.push((tn, eln - m));
                } else {
                    x.pts.push((tc, 0.0));
                    out.push(close(
                        sat_id,
                        orbit,
                        k,
                        st,
                        &el,
                        x.start,
                        tc,
                        x.clipped_start,
                        false,
                        false,
                        &x.pts,
                        opts,
                    ));
                    x.pts.clear();
                }
                x.in_pass = now_in;
            } else if x.in_pass {
                x.pts.push((tn, eln - m));
            }
            x.el = eln;
            x.range = rgn;
        }
        t = tn;
    }
    for (k, st) in stations.iter().enumerate() {
        let x = &tr[k];
        if x.in_pass {
            let m = st.min_elevation_deg;
            let obs = st.observer;
            let el = |tt: f64| sample(orbit, &obs, tt, dut1).ok().map(|s| s.el_deg - m);
            out.push(close(
                sat_id,
                orbit,
                k,
                st,
                &el,
                x.start,
                t1,
                x.clipped_start,
                true,
                t1 < t1_requested,
                &x.pts,
                opts,
            ));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn close(
    sat_id: &str,
    orbit: &Sgp4Orbit,
    st_index: usize,
    st: &Station,
    el: &dyn Fn(f64) -> Option<f64>,
    start: f64,
    end: f64,
    clipped_start: bool,
    clipped_end: bool,
    ends_by_decay: bool,
    pts: &[(f64, f64)],
    opts: &SearchOptions,
) -> Window {
    // Culmination: Brent maximisation around the highest sample.
    let (mut tm, mut em) = (start, f64::NEG_INFINITY);
    let mut k = 0;
    for (i, &(tp, e)) in pts.iter().enumerate() {
        if e > em {
            em = e;
            tm = tp;
            k = i;
        }
    }
    if pts.len() >= 2 {
        let a = if k > 0 { pts[k - 1].0 } else { pts[k].0 };
        let b = if k + 1 < pts.len() {
            pts[k + 1].0
        } else {
            pts[k].0
        };
        let a = a.max(start);
        let b = b.min(end);
        if b > a {
            if let Some((t, e)) = maximise(el, a, b) {
                if e > em {
                    em = e;
                    tm = t;
                }
            }
        }
    }
    if !em.is_finite() {
        em = el(start).unwrap_or(0.0);
        tm = start;
    }
    let m = st.min_elevation_deg;
    // Capacity over the window as reported: its edges are given to the whole millisecond
    // (JS Dates), so duration and capacity agree exactly with what the caller sees.
    let dur_s = (end.round() - start.round()) / 1000.0;
    let obs = st.observer;
    let range_at = |t: f64| {
        sample(orbit, &obs, t, opts.ut1_minus_utc_s)
            .map(|s| s.range_km)
            .unwrap_or(f64::INFINITY)
    };
    let (down, up) = match opts.rate_model {
        RateModel::Constant => (st.downlink_mbps * dur_s / 8.0, st.uplink_mbps * dur_s / 8.0),
        RateModel::LinkBudget { reference_range_km } => {
            let n = 64;
            let h = (end - start) / n as f64;
            let mut acc = 0.0;
            for i in 0..=n {
                let t = start + h * i as f64;
                let rho = range_at(t);
                let f = (reference_range_km / rho).powi(2).min(1.0);
                let w = if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                acc += w * f;
            }
            let frac = if n > 0 && h > 0.0 {
                acc * h / 3.0 / (end - start)
            } else {
                1.0
            };
            (
                st.downlink_mbps * frac * dur_s / 8.0,
                st.uplink_mbps * frac * dur_s / 8.0,
            )
        }
    };
    Window {
        satellite_id: sat_id.to_string(),
        station_index: st_index,
        start_ms: start,
        end_ms: end,
        max_elevation_deg: em + m,
        max_elevation_ms: tm,
        clipped_start,
        clipped_end,
        ends_by_decay,
        downlink_mb: down,
        uplink_mb: up,
        min_range_km: range_at(tm),
    }
}

/// Longest request accepted, hours (one year).
pub const MAX_DURATION_HOURS: f64 = 366.0 * 24.0;

/// Validates a request span.
///
/// # Errors
/// `ERR_INVALID_ARG` when durationHours ≤ 0, non-finite or above [`MAX_DURATION_HOURS`],
/// or when the start is not finite.
pub fn check_span(start_ms: f64, duration_hours: f64) -> Result<(f64, f64)> {
    if !start_ms.is_finite() {
        return Err(Error::invalid_arg(format!(
            "startTime must be a valid Date, got {start_ms}"
        )));
    }
    if !(duration_hours.is_finite() && duration_hours > 0.0 && duration_hours <= MAX_DURATION_HOURS)
    {
        return Err(Error::invalid_arg(format!(
            "durationHours must be > 0 and ≤ {MAX_DURATION_HOURS} (one year), got {duration_hours}"
        )));
    }
    Ok((start_ms, start_ms + duration_hours * 3_600_000.0))
}

/// Contact windows of one satellite with every station over [t0, t1], sorted by start
/// (then station index).
///
/// # Errors
/// `ERR_DECAYED` / `ERR_IMPLAUSIBLE_STATE` when the satellite is invalid over the whole
/// span. When it becomes invalid inside the span, windows stop there (the last one is
/// flagged `ends_by_decay`).
pub fn satellite_windows(
    sat_id: &str,
    orbit: &Sgp4Orbit,
    stations: &[Station],
    t0: f64,
    t1: f64,
    opts: &SearchOptions,
) -> Result<Vec<Window>> {
    let (lo, hi) = orbit
        .valid_span(t0, t1)
        .map_err(|(t, w)| invalid_error(w, t, t0))?;
    let mut out = all_station_windows(sat_id, orbit, stations, lo, hi, t1, opts);
    if lo > t0 {
        // Valid only from `lo` (before the epoch the orbit was invalid): not a clip of
        // the request, but keep the flag honest.
        for x in out.iter_mut() {
            if x.start_ms <= lo {
                x.clipped_start = true;
            }
        }
    }
    out.sort_by(|a, b| {
        a.start_ms
            .total_cmp(&b.start_ms)
            .then(a.station_index.cmp(&b.station_index))
    });
    Ok(out)
}

/// Result of a constellation search.
#[derive(Debug, Clone)]
pub struct ConstellationWindows {
    /// Every window, sorted by start, then satellite order, then station.
    pub windows: Vec<Window>,
    /// Satellites for which no window could be computed (decayed over the whole span…).
    pub failures: Vec<(String, Error)>,
}

/// Windows of many satellites in parallel (rayon). `progress(fraction)` is called after
/// each satellite (from worker threads).
pub fn constellation_windows(
    sats: &[(String, Sgp4Orbit)],
    stations: &[Station],
    t0: f64,
    t1: f64,
    opts: &SearchOptions,
    progress: Option<&(dyn Fn(f64) + Sync)>,
) -> ConstellationWindows {
    let done = AtomicUsize::new(0);
    let n = sats.len().max(1);
    let per: Vec<(usize, Result<Vec<Window>>)> = sats
        .par_iter()
        .enumerate()
        .map(|(i, (id, o))| {
            let r = satellite_windows(id, o, stations, t0, t1, opts);
            let k = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(k as f64 / n as f64);
            }
            (i, r)
        })
        .collect();
    let mut windows = Vec::new();
    let mut failures = Vec::new();
    let mut order = Vec::new();
    for (i, r) in per {
        match r {
            Ok(w) => {
                for x in w {
                    order.push(i);
                    windows.push(x);
                }
            }
            Err(e) => failures.push((sats[i].0.clone(), e)),
        }
    }
    let mut idx: Vec<usize> = (0..windows.len()).collect();
    idx.sort_by(|&a, &b| {
        windows[a]
            .start_ms
            .total_cmp(&windows[b].start_ms)
            .then(order[a].cmp(&order[b]))
            .then(windows[a].station_index.cmp(&windows[b].station_index))
    });
    let windows = idx.into_iter().map(|i| windows[i].clone()).collect();
    ConstellationWindows { windows, failures }
}

/// Look angles of a satellite from a station at `t_ms`, with the sticky validity check.
pub fn look_angles(
    orbit: &Sgp4Orbit,
    st: &Station,
    t_ms: f64,
    dut1: f64,
) -> Result<(geo::LookAngles, Vec3)> {
    orbit.state_checked(t_ms)?;
    let (r, _) = ecef_state(orbit, t_ms, dut1).map_err(|w| invalid_error(w, t_ms, t_ms))?;
    Ok((st.observer.look(r), r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::orbit::{kepler_to_mean, parse_tle_lines, KeplerInput};

    fn tles() -> Vec<(String, Sgp4Orbit)> {
        include_str!("testdata/tles_public.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let p: Vec<&str> = l.split('|').collect();
                (
                    p[0].to_string(),
                    Sgp4Orbit::new(parse_tle_lines(&[p[1], p[2]]).unwrap()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn sgp4_teme_matches_skyfield_reference() {
        let sats = tles();
        let mut n = 0;
        for l in include_str!("testdata/teme_public.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let p: Vec<&str> = l.split('|').collect();
            let o = &sats.iter().find(|s| s.0 == p[0]).unwrap().1;
            let t: f64 = p[1].parse().unwrap();
            let st = o.teme_at_minutes(t).unwrap();
            let r: Vec<f64> = p[3].split(' ').map(|x| x.parse().unwrap()).collect();
            let v: Vec<f64> = p[4].split(' ').map(|x| x.parse().unwrap()).collect();
            for i in 0..3 {
                assert!(
                    (st.r[i] - r[i]).abs() <= 1e-6,
                    "{} t={t} r[{i}] {} vs {}",
                    p[0],
                    st.r[i],
                    r[i]
                );
                assert!(
                    (st.v[i] - v[i]).abs() <= 1e-9,
                    "{} t={t} v[{i}] {} vs {}",
                    p[0],
                    st.v[i],
                    v[i]
                );
            }
            n += 1;
        }
        assert_eq!(n, 30);
    }

    #[test]
    fn sgp4_published_verification_vectors() {
        // Vallado et al. (2006) "Revisiting Spacetrack Report #3", SGP4-VER.TLE / tcppver.out,
        // as used by the sgp4 crate's test suite (AFSPC mode).
        type Case<'a> = (&'a str, &'a str, f64, [f64; 3], [f64; 3]);
        let cases: [Case; 3] = [
            (
                "1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4753",
                "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667",
                0.0,
                [7022.46529266, -1400.08296755, 0.03995155],
                [1.893841015, 6.405893759, 4.534807250],
            ),
            (
                "1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4753",
                "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667",
                360.0,
                [-7154.03120202, -3783.17682504, -3536.19412294],
                [4.741887409, -4.151817765, -2.093935425],
            ),
            (
                "1 04632U 70093B   04031.91070959 -.00000084  00000-0  10000-3 0  9955",
                "2 04632  11.4628 273.1101 1450506 207.6000 143.9350  1.20231981 44145",
                0.0,
                [2334.11450085, -41920.44035349, -0.03867437],
                [2.826321032, -0.065091664, 0.570936053],
            ),
        ];
        for (l1, l2, t, r, v) in cases {
            let o = Sgp4Orbit::new_afspc(parse_tle_lines(&[l1, l2]).unwrap()).unwrap();
            let s = o.teme_at_minutes_afspc(t).unwrap();
            for i in 0..3 {
                assert!(
                    (s.r[i] - r[i]).abs() < 1e-6,
                    "{l1} t={t} r {:?} vs {r:?}",
                    s.r
                );
                assert!(
                    (s.v[i] - v[i]).abs() < 1e-9,
                    "{l1} t={t} v {:?} vs {v:?}",
                    s.v
                );
            }
        }
    }

    #[test]
    fn topocentric_matches_skyfield_reference() {
        let sats = tles();
        let mut n = 0;
        for l in include_str!("testdata/topocentric_public.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let p: Vec<&str> = l.split('|').collect();
            let o = &sats.iter().find(|s| s.0 == p[0]).unwrap().1;
            let g: Vec<f64> = p[1].split(' ').map(|x| x.parse().unwrap()).collect();
            let st = Station::new(
                "x",
                Geodetic {
                    lat_deg: g[0],
                    lon_deg: g[1],
                    alt_km: g[2] / 1000.0,
                },
                1.0,
                1.0,
                0.0,
            )
            .unwrap();
            let t: f64 = p[2].parse().unwrap();
            let want: Vec<f64> = p[3].split(' ').map(|x| x.parse().unwrap()).collect();
            // Skyfield used UT1 − UTC = −0.033 s in this window.
            let (la, _) = look_angles(o, &st, t, -0.033).unwrap();
            let daz = geo::wrap_deg_180(la.azimuth_deg - want[0]).abs();
            assert!(la.elevation_deg.is_finite());
            assert!(
                (la.elevation_deg - want[1]).abs() < 0.01,
                "{l}: el {}",
                la.elevation_deg
            );
            if want[1] < 89.0 {
                assert!(daz < 0.01, "{l}: az {}", la.azimuth_deg);
            }
            assert!(
                (la.range_km - want[2]).abs() < 0.05,
                "{l}: range {}",
                la.range_km
            );
            n += 1;
        }
        assert_eq!(n, 120);
    }

    #[test]
    fn equatorial_circular_orbit_analytic_pass() {
        // Station on the equator at 0°E, 0 m; circular equatorial prograde orbit, radius
        // a. With a spherical Earth of the station's radius R, the satellite is above the
        // horizon while the Earth-central angle ψ between them is below
        // ψ_max = acos(R/a); the relative angular rate is n − ω⊕, so the pass lasts
        // 2 ψ_max / (n − ω⊕). The station is on the equator, where the WGS-84 normal is
        // radial, so this holds exactly up to SGP4's J2 terms (≈0.1 % in n).
        let a = 6378.137 + 1000.0;
        let epoch = 1_704_067_200_000.0; // 2024-01-01T00:00Z
        let el = kepler_to_mean(&KeplerInput {
            semi_major_axis_km: a,
            eccentricity: 0.0,
            inclination_deg: 0.0,
            raan_deg: 0.0,
            arg_perigee_deg: 0.0,
            mean_anomaly_deg: 0.0,
            epoch_unix_ms: epoch,
        })
        .unwrap();
        let o = Sgp4Orbit::new(el).unwrap();
        let st = Station::new(
            "eq",
            Geodetic {
                lat_deg: 0.0,
                lon_deg: 0.0,
                alt_km: 0.0,
            },
            1.0,
            8.0,
            0.0,
        )
        .unwrap();
        let w = satellite_windows(
            "s",
            &o,
            std::slice::from_ref(&st),
            epoch,
            epoch + 12.0 * 3.6e6,
            &SearchOptions::default(),
        )
        .unwrap();
        let n = (WGS72_MU / (a * a * a)).sqrt();
        let psi = (6378.137f64 / a).acos();
        let expect = 2.0 * psi / (n - EARTH_ROTATION_RAD_S);
        let full: Vec<&Window> = w
            .iter()
            .filter(|x| !x.clipped_start && !x.clipped_end)
            .collect();
        assert!(!full.is_empty());
        for x in full {
            let rel = (x.duration_s() - expect).abs() / expect;
            assert!(
                rel < 0.01,
                "duration {} vs analytic {expect}",
                x.duration_s()
            );
            assert!(
                (x.max_elevation_deg - 90.0).abs() < 0.5,
                "{}",
                x.max_elevation_deg
            );
            assert!((x.downlink_mb - x.duration_s()).abs() < 1e-9); // 8 Mbps → 1 MB/s
        }
    }

    #[test]
    fn no_pass_of_10_s_missed_against_a_1_s_scan() {
        // Brute force: elevation every 1 s over a day; every scanned pass lasting ≥ 10 s
        // must be one of ours with AOS/LOS within 1 s, and ours must not contain passes
        // the scan does not see (beyond passes shorter than the scan's 1 s resolution).
        let sets: [(&str, &str); 4] = [
            (
                "1 90001U 24001A   24001.50000000  .00016717  00000-0  10270-3 0  9994",
                "2 90001  51.6416 247.4627 0006703 130.5360 325.0288 15.50000000    11",
            ),
            (
                "1 90008U 24001E   24001.00000000  .00002000  00000-0  10000-3 0    11",
                "2 90008  97.6000 200.0000 0008000 100.0000 260.0000 15.20000000    19",
            ),
            (
                "1 99001U 24001A   24001.00000000  .00150000  00000-0  50000-2 0  9996",
                "2 99001  97.5000  10.0000 0005000  90.0000 270.0000 15.90000000    12",
            ),
            (
                "1 90007U 24001D   24001.00000000  .00000100  00000-0  10000-3 0    19",
                "2 90007  63.4000  10.0000 7400000 270.0000   0.0000  2.00600000    11",
            ),
        ];
        let t0 = 1_704_067_200_000.0 + 86_400_000.0; // 2024-01-02T00:00Z
        let t1 = t0 + 86_400_000.0;
        let mut checked = 0;
        for (l1, l2) in sets {
            let o = Sgp4Orbit::new(parse_tle_lines(&[l1, l2]).unwrap()).unwrap();
            for &(lat, lon, mask) in &[(45.0, 10.0, 0.0), (0.0, 0.0, 30.0), (-70.0, 100.0, 60.0)] {
                let st = Station::new(
                    "s",
                    Geodetic {
                        lat_deg: lat,
                        lon_deg: lon,
                        alt_km: 0.0,
                    },
                    1.0,
                    1.0,
                    mask,
                )
                .unwrap();
                let ours = satellite_windows(
                    "x",
                    &o,
                    std::slice::from_ref(&st),
                    t0,
                    t1,
                    &SearchOptions::default(),
                )
                .unwrap();
                let mut scan: Vec<(f64, f64)> = Vec::new();
                let mut open: Option<f64> = None;
                let mut t = t0;
                while t <= t1 {
                    let up = sample(&o, &st.observer, t, 0.0)
                        .map(|s| s.el_deg >= mask)
                        .unwrap_or(false);
                    match (up, open) {
                        (true, None) => open = Some(t),
                        (false, Some(a)) => {
                            scan.push((a, t - 1000.0));
                            open = None;
                        }
                        _ => {}
                    }
                    t += 1000.0;
                }
                if let Some(a) = open {
                    scan.push((a, t1));
                }
                for &(a, b) in &scan {
                    if b - a < 10_000.0 {
                        continue;
                    }
                    let m = ours.iter().find(|w| w.start_ms <= b && w.end_ms >= a);
                    let w = m.unwrap_or_else(|| {
                        panic!("{l1} from ({lat},{lon}) mask {mask}: pass {a}..{b} missed")
                    });
                    assert!(
                        (w.start_ms - a).abs() <= 1000.0 && (w.end_ms - b).abs() <= 1000.0,
                        "{l1}: ours {}..{} vs scan {a}..{b}",
                        w.start_ms,
                        w.end_ms
                    );
                    checked += 1;
                }
                for w in &ours {
                    let seen = scan
                        .iter()
                        .any(|&(a, b)| w.start_ms <= b + 1000.0 && w.end_ms >= a - 1000.0);
                    assert!(
                        seen || w.duration_s() < 1.0,
                        "{l1}: extra window {}..{}",
                        w.start_ms,
                        w.end_ms
                    );
                }
            }
        }
        assert!(checked > 20, "{checked}");
    }

    #[test]
    fn lock_step_search_equals_per_station_search() {
        let o = Sgp4Orbit::new(
            parse_tle_lines(&[
                "1 90001U 24001A   24001.50000000  .00016717  00000-0  10270-3 0  9994",
                "2 90001  51.6416 247.4627 0006703 130.5360 325.0288 15.50000000    11",
            ])
            .unwrap(),
        )
        .unwrap();
        let stations: Vec<Station> = [
            (45.0, 10.0, 0.0),
            (0.0, 0.0, 10.0),
            (-30.0, 115.0, 5.0),
            (60.0, -150.0, 30.0),
        ]
        .iter()
        .map(|&(a, b, m)| {
            Station::new(
                "s",
                Geodetic {
                    lat_deg: a,
                    lon_deg: b,
                    alt_km: 0.1,
                },
                1.0,
                1.0,
                m,
            )
            .unwrap()
        })
        .collect();
        let t0 = 1_704_067_200_000.0 + 86_400_000.0;
        let t1 = t0 + 3.0 * 86_400_000.0;
        let opts = SearchOptions::default();
        let all = satellite_windows("x", &o, &stations, t0, t1, &opts).unwrap();
        let mut n = 0;
        for (k, st) in stations.iter().enumerate() {
            let one = station_windows("x", &o, k, st, t0, t1, t1, &opts);
            let mine: Vec<&Window> = all.iter().filter(|w| w.station_index == k).collect();
            assert_eq!(one.len(), mine.len());
            for (a, b) in one.iter().zip(mine) {
                assert!(
                    (a.start_ms - b.start_ms).abs() <= 2.0 && (a.end_ms - b.end_ms).abs() <= 2.0
                );
                assert!((a.max_elevation_deg - b.max_elevation_deg).abs() < 1e-4);
                n += 1;
            }
        }
        assert!(n > 20, "{n}");
    }
}
