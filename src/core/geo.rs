//! Earth geometry shared by sync scheduling and mesh networking: WGS-84 geodetic and
//! Earth-fixed (ECEF) coordinates, Greenwich sidereal time, the TEME → Earth-fixed
//! rotation, and topocentric look angles.
//!
//! Units: kilometres, seconds, radians inside; degrees only at the API edge.

use std::f64::consts::{PI, TAU};

/// WGS-84 equatorial radius, km.
pub const WGS84_A_KM: f64 = 6378.137;
/// WGS-84 flattening.
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// Mean Earth radius used for spherical estimates, km.
pub const EARTH_MEAN_RADIUS_KM: f64 = 6371.0088;
/// Speed of light in vacuum, km/s.
pub const SPEED_OF_LIGHT_KM_S: f64 = 299_792.458;
/// Julian date of the Unix epoch (1970-01-01T00:00:00Z).
pub const JD_UNIX_EPOCH: f64 = 2_440_587.5;
/// Julian date of J2000.0.
pub const JD_J2000: f64 = 2_451_545.0;

/// A point on or above the WGS-84 ellipsoid (degrees, degrees, km).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geodetic {
    pub lat_deg: f64,
    pub lon_deg: f64,
    pub alt_km: f64,
}

/// A Cartesian vector in km (ECEF or TEME, as the context says).
pub type Vec3 = [f64; 3];

pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}
pub fn distance(a: Vec3, b: Vec3) -> f64 {
    norm(sub(a, b))
}

impl Geodetic {
    /// Validated constructor: latitude in [-90, 90], longitude in [-180, 360], finite altitude.
    pub fn new(lat_deg: f64, lon_deg: f64, alt_km: f64) -> crate::core::error::Result<Self> {
        use crate::core::error::Error;
        if !(lat_deg.is_finite() && (-90.0..=90.0).contains(&lat_deg)) {
            return Err(Error::invalid_arg(format!(
                "latitude must be within [-90, 90] degrees, got {lat_deg}"
            )));
        }
        if !(lon_deg.is_finite() && (-180.0..=360.0).contains(&lon_deg)) {
            return Err(Error::invalid_arg(format!(
                "longitude must be within [-180, 360] degrees, got {lon_deg}"
            )));
        }
        if !(alt_km.is_finite() && alt_km > -12.0) {
            return Err(Error::invalid_arg(format!(
                "altitudeKm must be a finite number above -12 km, got {alt_km}"
            )));
        }
        Ok(Geodetic {
            lat_deg,
            lon_deg,
            alt_km,
        })
    }

    /// Earth-fixed Cartesian position on the WGS-84 ellipsoid.
    pub fn to_ecef(&self) -> Vec3 {
        let lat = self.lat_deg.to_radians();
        let lon = self.lon_deg.to_radians();
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let (slat, clat) = lat.sin_cos();
        let n = WGS84_A_KM / (1.0 - e2 * slat * slat).sqrt();
        [
            (n + self.alt_km) * clat * lon.cos(),
            (n + self.alt_km) * clat * lon.sin(),
            (n * (1.0 - e2) + self.alt_km) * slat,
        ]
    }

    /// Geodetic coordinates of an Earth-fixed point (Bowring's iteration, sub-mm).
    pub fn from_ecef(r: Vec3) -> Geodetic {
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let p = (r[0] * r[0] + r[1] * r[1]).sqrt();
        let lon = r[1].atan2(r[0]);
        let mut lat = r[2].atan2(p * (1.0 - e2));
        let mut alt = 0.0;
        for _ in 0..6 {
            let s = lat.sin();
            let n = WGS84_A_KM / (1.0 - e2 * s * s).sqrt();
            alt = if lat.cos().abs() > 1e-9 {
                p / lat.cos() - n
            } else {
                r[2].abs() - n * (1.0 - e2)
            };
            lat = r[2].atan2(p * (1.0 - e2 * n / (n + alt)));
        }
        Geodetic {
            lat_deg: lat.to_degrees(),
            lon_deg: lon.to_degrees(),
            alt_km: alt,
        }
    }
}

/// Julian date (UTC) of a Unix time in milliseconds.
pub fn jd_from_unix_ms(ms: f64) -> f64 {
    JD_UNIX_EPOCH + ms / 86_400_000.0
}

/// Greenwich mean sidereal time (IAU 1982, as used with SGP4/TEME), radians in [0, 2π),
/// for a UT1 Julian date.
pub fn gmst_rad(jd_ut1: f64) -> f64 {
    let t = (jd_ut1 - JD_J2000) / 36_525.0;
    let secs = -6.2e-6 * t * t * t
        + 0.093_104 * t * t
        + (876_600.0 * 3600.0 + 8_640_184.812_866) * t
        + 67_310.548_41;
    (secs * TAU / 86_400.0).rem_euclid(TAU)
}

/// Rotates a TEME vector into the Earth-fixed frame (polar motion neglected, as Skyfield
/// does by default), given GMST in radians.
pub fn teme_to_ecef(r: Vec3, gmst: f64) -> Vec3 {
    let (s, c) = gmst.sin_cos();
    [c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2]]
}

/// A ground observer with its local east-north-up frame precomputed.
#[derive(Debug, Clone, Copy)]
pub struct Observer {
    pub geodetic: Geodetic,
    pub ecef: Vec3,
    east: Vec3,
    north: Vec3,
    up: Vec3,
}

/// Azimuth (degrees from north through east, [0, 360)), elevation (degrees) and slant range (km).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookAngles {
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
    pub range_km: f64,
}

impl Observer {
    pub fn new(geodetic: Geodetic) -> Self {
        let lat = geodetic.lat_deg.to_radians();
        let lon = geodetic.lon_deg.to_radians();
        let (slat, clat) = lat.sin_cos();
        let (slon, clon) = lon.sin_cos();
        Observer {
            geodetic,
            ecef: geodetic.to_ecef(),
            east: [-slon, clon, 0.0],
            north: [-slat * clon, -slat * slon, clat],
            up: [clat * clon, clat * slon, slat],
        }
    }

    /// Sine of the elevation of an Earth-fixed point: cheap, monotone in elevation.
    pub fn sin_elevation(&self, target_ecef: Vec3) -> f64 {
        let d = sub(target_ecef, self.ecef);
        let r = norm(d);
        if r == 0.0 {
            return 1.0;
        }
        (dot(d, self.up) / r).clamp(-1.0, 1.0)
    }

    /// Full look angles. Elevation uses asin of a clamped value, so it is never NaN; at
    /// the zenith the azimuth is reported as 0° by convention.
    pub fn look(&self, target_ecef: Vec3) -> LookAngles {
        let d = sub(target_ecef, self.ecef);
        let range = norm(d);
        if range == 0.0 {
            return LookAngles {
                azimuth_deg: 0.0,
                elevation_deg: 90.0,
                range_km: 0.0,
            };
        }
        let e = dot(d, self.east);
        let n = dot(d, self.north);
        let u = dot(d, self.up);
        let el = (u / range).clamp(-1.0, 1.0).asin().to_degrees();
        let horiz = (e * e + n * n).sqrt();
        let az = if horiz <= 1e-12 * range {
            0.0
        } else {
            e.atan2(n).rem_euclid(TAU).to_degrees()
        };
        LookAngles {
            azimuth_deg: az,
            elevation_deg: el,
            range_km: range,
        }
    }
}

/// True when the straight segment between two points clears a sphere of radius
/// `radius_km` centred at the Earth's centre (used for line-of-sight tests).
pub fn segment_clears_sphere(a: Vec3, b: Vec3, radius_km: f64) -> bool {
    let d = sub(b, a);
    let dd = dot(d, d);
    let t = if dd == 0.0 {
        0.0
    } else {
        (-dot(a, d) / dd).clamp(0.0, 1.0)
    };
    let closest = [a[0] + t * d[0], a[1] + t * d[1], a[2] + t * d[2]];
    norm(closest) > radius_km
}

/// Wraps an angle in degrees to (-180, 180].
pub fn wrap_deg_180(x: f64) -> f64 {
    let y = (x + 180.0).rem_euclid(360.0) - 180.0;
    if y == -180.0 {
        180.0
    } else {
        y
    }
}

#[allow(dead_code)]
const _PI: f64 = PI;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecef_of_equator_and_pole() {
        let p = Geodetic {
            lat_deg: 0.0,
            lon_deg: 0.0,
            alt_km: 0.0,
        }
        .to_ecef();
        assert!((p[0] - WGS84_A_KM).abs() < 1e-9 && p[1].abs() < 1e-9 && p[2].abs() < 1e-9);
        let b = WGS84_A_KM * (1.0 - WGS84_F); // polar radius 6356.752 km
        let q = Geodetic {
            lat_deg: 90.0,
            lon_deg: 0.0,
            alt_km: 0.0,
        }
        .to_ecef();
        assert!((q[2] - b).abs() < 1e-6, "{}", q[2]);
    }

    #[test]
    fn geodetic_round_trip() {
        for &(lat, lon, alt) in &[
            (28.5729, -80.649, 0.0),
            (78.2297, 15.3975, 0.5),
            (-45.0, 170.0, 550.0),
            (89.9, 0.0, 0.0),
        ] {
            let g = Geodetic::from_ecef(
                Geodetic {
                    lat_deg: lat,
                    lon_deg: lon,
                    alt_km: alt,
                }
                .to_ecef(),
            );
            assert!(
                (g.lat_deg - lat).abs() < 1e-8
                    && (g.lon_deg - lon).abs() < 1e-8
                    && (g.alt_km - alt).abs() < 1e-6
            );
        }
    }

    #[test]
    fn gmst_at_j2000() {
        // GMST at 2000-01-01T12:00 UT1 is 18h 41m 50.54841s = 280.46061837°.
        let g = gmst_rad(JD_J2000).to_degrees();
        assert!((g - 280.460_618_37).abs() < 1e-6, "{g}");
    }

    #[test]
    fn zenith_look_has_no_nan() {
        let obs = Observer::new(Geodetic {
            lat_deg: 0.0,
            lon_deg: 180.0,
            alt_km: 0.0,
        });
        let above = Geodetic {
            lat_deg: 0.0,
            lon_deg: -180.0,
            alt_km: 500.0,
        }
        .to_ecef();
        let la = obs.look(above);
        assert!((la.elevation_deg - 90.0).abs() < 1e-9 && la.azimuth_deg.is_finite());
    }

    #[test]
    fn line_of_sight_through_earth_blocked() {
        let r = WGS84_A_KM + 550.0;
        assert!(!segment_clears_sphere(
            [r, 0.0, 0.0],
            [-r, 0.0, 0.0],
            WGS84_A_KM
        ));
        assert!(segment_clears_sphere(
            [r, 0.0, 0.0],
            [r, 100.0, 0.0],
            WGS84_A_KM
        ));
    }
}
