//! Where a moving node is: the `OrbitSource` trait, and its Keplerian implementation
//! (two-body motion plus the secular drift caused by the Earth's oblateness, J2).
//!
//! Model. Mean motion n = √(μ/a³). J2 makes the orbit plane precess and the ellipse
//! rotate within it; averaged over one revolution (Vallado, *Fundamentals of
//! Astrodynamics*, §9.6), with p = a(1−e²):
//!
//! ```text
//! Ω̇ = −(3/2) n J2 (R/p)² cos i
//! ω̇ =  (3/4) n J2 (R/p)² (5 cos² i − 1)
//! Ṁ =  n [1 + (3/4) J2 (R/p)² √(1−e²) (3 cos² i − 1)]
//! ```
//!
//! Short-period J2 terms (a few km of along-track wiggle) and drag are neglected: for
//! the circular shells of Walker constellations over hours this is far inside the
//! tolerance of link and route decisions, and costs a few hundred nanoseconds per
//! satellite. Elements are referred to the true-of-date equator and equinox (the frame
//! of TLE/TEME); Earth-fixed positions follow by the Greenwich mean sidereal time
//! rotation (`geo::gmst_rad`, UT1 = UTC, polar motion neglected).

use crate::core::error::{Error, Result};
use crate::core::geo::{self, Vec3};

/// Earth's gravitational parameter, km³/s² (WGS-84 / EGM-96).
pub const MU_KM3_S2: f64 = 398_600.441_8;
/// Second zonal harmonic of the Earth (EGM-96, unnormalised).
pub const J2: f64 = 1.082_626_68e-3;

/// Anything that can say where a node is, in Earth-fixed coordinates (km), at a Unix
/// time in milliseconds. Implemented here for Keplerian elements; a TLE/SGP4 source
/// plugs in the same way.
pub trait OrbitSource: Send + Sync {
    /// Earth-fixed (ECEF, WGS-84 axes) position in km at `unix_ms`.
    fn position_ecef(&self, unix_ms: f64) -> Result<Vec3>;
}

/// Classical orbital elements at an epoch, angles in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeplerElements {
    /// Semi-major axis, km.
    pub semi_major_axis_km: f64,
    /// Eccentricity, [0, 1).
    pub eccentricity: f64,
    /// Inclination, degrees in [0, 180].
    pub inclination_deg: f64,
    /// Right ascension of the ascending node at epoch, degrees.
    pub raan_deg: f64,
    /// Argument of perigee at epoch, degrees.
    pub arg_perigee_deg: f64,
    /// Mean anomaly at epoch, degrees.
    pub mean_anomaly_deg: f64,
    /// Epoch, Unix milliseconds (UTC).
    pub epoch_unix_ms: f64,
}

/// A Keplerian orbit with J2 secular rates precomputed.
#[derive(Debug, Clone, Copy)]
pub struct KeplerOrbit {
    el: KeplerElements,
    raan0: f64,
    argp0: f64,
    m0: f64,
    raan_dot: f64,
    argp_dot: f64,
    m_dot: f64,
    cos_i: f64,
    sin_i: f64,
    b_over_a: f64,
}

impl KeplerOrbit {
    /// Validates the elements and precomputes the secular rates.
    ///
    /// # Errors
    /// `ERR_INVALID_ARG` naming the element when it is non-finite or out of range
    /// (a ≤ Earth radius, e ∉ [0, 1), i ∉ [0°, 180°]).
    pub fn new(el: KeplerElements) -> Result<Self> {
        let fields = [
            ("semiMajorAxisKm", el.semi_major_axis_km),
            ("eccentricity", el.eccentricity),
            ("inclinationDeg", el.inclination_deg),
            ("raanDeg", el.raan_deg),
            ("argPerigeeDeg", el.arg_perigee_deg),
            ("meanAnomalyDeg", el.mean_anomaly_deg),
            ("epoch", el.epoch_unix_ms),
        ];
        for (name, v) in fields {
            if !v.is_finite() {
                return Err(Error::invalid_arg(format!(
                    "{name} must be finite, got {v}"
                )));
            }
        }
        if el.semi_major_axis_km <= geo::WGS84_A_KM {
            return Err(Error::invalid_arg(format!(
                "semiMajorAxisKm must exceed the Earth's radius ({} km), got {}",
                geo::WGS84_A_KM,
                el.semi_major_axis_km
            )));
        }
        if !(0.0..1.0).contains(&el.eccentricity) {
            return Err(Error::invalid_arg(format!(
                "eccentricity must be in [0, 1), got {}",
                el.eccentricity
            )));
        }
        if !(0.0..=180.0).contains(&el.inclination_deg) {
            return Err(Error::invalid_arg(format!(
                "inclinationDeg must be in [0, 180], got {}",
                el.inclination_deg
            )));
        }
        let a = el.semi_major_axis_km;
        let e = el.eccentricity;
        let n = (MU_KM3_S2 / (a * a * a)).sqrt(); // rad/s
        let p = a * (1.0 - e * e);
        let k = J2 * (geo::WGS84_A_KM / p).powi(2);
        let (sin_i, cos_i) = el.inclination_deg.to_radians().sin_cos();
        let c2 = cos_i * cos_i;
        Ok(KeplerOrbit {
            el,
            raan0: el.raan_deg.to_radians(),
            argp0: el.arg_perigee_deg.to_radians(),
            m0: el.mean_anomaly_deg.to_radians(),
            raan_dot: -1.5 * n * k * cos_i,
            argp_dot: 0.75 * n * k * (5.0 * c2 - 1.0),
            m_dot: n * (1.0 + 0.75 * k * (1.0 - e * e).sqrt() * (3.0 * c2 - 1.0)),
            cos_i,
            sin_i,
            b_over_a: (1.0 - e * e).sqrt(),
        })
    }

    /// The elements this orbit was built from.
    pub fn elements(&self) -> &KeplerElements {
        &self.el
    }

    /// Orbital period from the J2-perturbed mean motion, seconds.
    pub fn period_s(&self) -> f64 {
        std::f64::consts::TAU / self.m_dot
    }

    /// Inertial (true-of-date) position in km at `unix_ms`.
    pub fn position_inertial(&self, unix_ms: f64) -> Vec3 {
        let dt = (unix_ms - self.el.epoch_unix_ms) / 1000.0;
        let raan = self.raan0 + self.raan_dot * dt;
        let argp = self.argp0 + self.argp_dot * dt;
        let m = (self.m0 + self.m_dot * dt).rem_euclid(std::f64::consts::TAU);
        let e = self.el.eccentricity;
        let a = self.el.semi_major_axis_km;
        // Kepler's equation E − e sin E = M by Newton; converges in a few steps for e < 1.
        let mut ea = if e < 0.8 { m } else { std::f64::consts::PI };
        if e > 0.0 {
            for _ in 0..50 {
                let f = ea - e * ea.sin() - m;
                let d = f / (1.0 - e * ea.cos());
                ea -= d;
                if d.abs() < 1e-13 {
                    break;
                }
            }
        }
        let (se, ce) = ea.sin_cos();
        // Perifocal coordinates.
        let xp = a * (ce - e);
        let yp = a * self.b_over_a * se;
        let (sw, cw) = argp.sin_cos();
        let (so, co) = raan.sin_cos();
        // Rotate by ω within the plane, then by i about the node line, then by Ω.
        let x1 = cw * xp - sw * yp;
        let y1 = sw * xp + cw * yp;
        let y2 = self.cos_i * y1;
        let z2 = self.sin_i * y1;
        [co * x1 - so * y2, so * x1 + co * y2, z2]
    }
}

impl OrbitSource for KeplerOrbit {
    fn position_ecef(&self, unix_ms: f64) -> Result<Vec3> {
        if !unix_ms.is_finite() {
            return Err(Error::invalid_arg(format!(
                "time must be finite, got {unix_ms}"
            )));
        }
        let gmst = geo::gmst_rad(geo::jd_from_unix_ms(unix_ms));
        Ok(geo::teme_to_ecef(self.position_inertial(unix_ms), gmst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circ(alt: f64, inc: f64) -> KeplerOrbit {
        KeplerOrbit::new(KeplerElements {
            semi_major_axis_km: geo::WGS84_A_KM + alt,
            eccentricity: 0.0,
            inclination_deg: inc,
            raan_deg: 0.0,
            arg_perigee_deg: 0.0,
            mean_anomaly_deg: 0.0,
            epoch_unix_ms: 0.0,
        })
        .unwrap()
    }

    #[test]
    fn circular_radius_and_period() {
        let o = circ(550.0, 53.0);
        let a = geo::WGS84_A_KM + 550.0;
        for k in 0..20 {
            let r = geo::norm(o.position_ecef(k as f64 * 317_000.0).unwrap());
            assert!((r - a).abs() < 1e-6, "{r}");
        }
        // Two-body period 2π√(a³/μ) = 5736.6 s at 550 km; J2 changes it by < 0.2 %.
        let t2b = std::f64::consts::TAU * (a * a * a / MU_KM3_S2).sqrt();
        assert!(
            (o.period_s() / t2b - 1.0).abs() < 2e-3,
            "{} vs {}",
            o.period_s(),
            t2b
        );
    }

    #[test]
    fn sun_synchronous_raan_drift() {
        // A sun-synchronous orbit at 700 km needs i ≈ 98.19°; its node then advances by
        // 360°/365.2422 d = 0.98565°/day (the published design rule).
        let o = circ(700.0, 98.19);
        let per_day = o.raan_dot.to_degrees() * 86_400.0;
        assert!((per_day - 0.985_65).abs() < 0.01, "{per_day}");
    }

    #[test]
    fn eccentric_orbit_perigee_and_apogee() {
        let el = KeplerElements {
            semi_major_axis_km: 26_600.0,
            eccentricity: 0.74,
            inclination_deg: 63.4,
            raan_deg: 40.0,
            arg_perigee_deg: 270.0,
            mean_anomaly_deg: 0.0,
            epoch_unix_ms: 0.0,
        };
        let o = KeplerOrbit::new(el).unwrap();
        let rp = geo::norm(o.position_inertial(0.0));
        assert!((rp - 26_600.0 * 0.26).abs() < 1e-6);
        let half = o.period_s() * 500.0;
        let ra = geo::norm(o.position_inertial(half));
        assert!((ra - 26_600.0 * 1.74).abs() < 1.0, "{ra}");
    }

    #[test]
    fn rejects_bad_elements() {
        let mut el = *circ(550.0, 53.0).elements();
        el.eccentricity = 1.0;
        assert!(KeplerOrbit::new(el)
            .unwrap_err()
            .message
            .contains("eccentricity"));
        el.eccentricity = f64::NAN;
        assert!(KeplerOrbit::new(el)
            .unwrap_err()
            .message
            .contains("eccentricity"));
        el.eccentricity = 0.0;
        el.semi_major_axis_km = 6000.0;
        assert!(KeplerOrbit::new(el)
            .unwrap_err()
            .message
            .contains("semiMajorAxisKm"));
    }
}
