//! Walker constellations (Walker 1984, "Satellite constellations"): `P` planes of `S`
//! satellites on circular orbits of equal altitude and inclination, notation i: T/P/F.
//!
//! - Walker-delta: ascending nodes spread over 360°, Ω_p = Ω₀ + p·360°/P.
//! - Walker-star (polar type): nodes spread over 180°, Ω_p = Ω₀ + p·180°/P, so the first
//!   and last planes are counter-rotating neighbours across the "seam".
//!
//! In both, satellite `s` of plane `p` has mean anomaly M = s·360°/S + p·F·360°/T at
//! the epoch, with T = P·S and phasing F ∈ [0, P).
//!
//! +Grid links (four laser terminals per satellite): two intra-plane, to the satellites
//! ahead and behind (s ± 1 mod S), and two inter-plane, to the same slot of planes p ± 1.
//! Cross-seam rule: in a Walker-delta shell plane P−1 is followed by plane 0 shifted by
//! F slots (the "virtual plane P" of the formula above), so (P−1, s) links to
//! (0, (s + F) mod S) and every satellite has degree 4. In a Walker-star shell the seam
//! planes move in opposite directions (relative speed ~15 km/s, unusable for optical
//! ISLs), so there is no cross-seam link and planes 0 and P−1 have degree 3.

use std::collections::HashSet;
use std::sync::Arc;

use crate::core::error::{Error, Result};
use crate::core::geo;

use super::kepler::{KeplerElements, KeplerOrbit, OrbitSource};
use super::{check_bandwidth, IslMode, Mesh, Shell};

/// Which Walker family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkerPattern {
    Delta,
    Star,
}

/// Parameters of a Walker shell.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkerConfig {
    pub pattern: WalkerPattern,
    /// Number of orbital planes P ≥ 1.
    pub planes: u32,
    /// Satellites per plane S ≥ 1.
    pub sats_per_plane: u32,
    /// Phasing factor F ∈ [0, P).
    pub phasing: u32,
    /// Altitude above the WGS-84 equatorial radius, km.
    pub altitude_km: f64,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// RAAN of plane 0, degrees.
    pub raan0_deg: f64,
    /// Epoch of the element set (mean anomalies as above at this time), Unix ms.
    pub epoch_unix_ms: f64,
    /// Node ids are `{id_prefix}{plane}-{slot}`.
    pub id_prefix: String,
    /// How the shell's satellites are linked at each time step.
    pub isl: IslMode,
    /// Bandwidth of the shell's +Grid links, Mbps.
    pub isl_bandwidth_mbps: f64,
}

/// Largest shell accepted (keeps a typo from allocating millions of nodes).
pub const MAX_SHELL_SATELLITES: u64 = 100_000;

impl WalkerConfig {
    /// Checks every parameter, naming it on failure.
    pub fn validate(&self) -> Result<()> {
        if self.planes == 0 || self.sats_per_plane == 0 {
            return Err(Error::invalid_arg(format!(
                "planes and satsPerPlane must be ≥ 1, got {} and {}",
                self.planes, self.sats_per_plane
            )));
        }
        let t = self.planes as u64 * self.sats_per_plane as u64;
        if t > MAX_SHELL_SATELLITES {
            return Err(Error::invalid_arg(format!("a shell holds at most {MAX_SHELL_SATELLITES} satellites, got planes × satsPerPlane = {t}")));
        }
        if self.phasing >= self.planes {
            return Err(Error::invalid_arg(format!(
                "phasing must be in [0, planes − 1] = [0, {}], got {}",
                self.planes - 1,
                self.phasing
            )));
        }
        if !(self.altitude_km.is_finite() && self.altitude_km > 0.0) {
            return Err(Error::invalid_arg(format!(
                "altitudeKm must be a finite number > 0, got {}",
                self.altitude_km
            )));
        }
        if !(self.inclination_deg.is_finite() && (0.0..=180.0).contains(&self.inclination_deg)) {
            return Err(Error::invalid_arg(format!(
                "inclinationDeg must be in [0, 180], got {}",
                self.inclination_deg
            )));
        }
        if !self.raan0_deg.is_finite() {
            return Err(Error::invalid_arg(format!(
                "raanDeg must be finite, got {}",
                self.raan0_deg
            )));
        }
        if !self.epoch_unix_ms.is_finite() {
            return Err(Error::invalid_arg(format!(
                "epoch must be a valid date, got {}",
                self.epoch_unix_ms
            )));
        }
        check_bandwidth("islBandwidthMbps", self.isl_bandwidth_mbps)
    }

    /// Id of satellite `slot` of plane `plane`.
    pub fn node_id(&self, plane: u32, slot: u32) -> String {
        format!("{}{}-{}", self.id_prefix, plane, slot)
    }

    /// Elements of every satellite, plane-major.
    pub fn elements(&self) -> Vec<KeplerElements> {
        let p_n = self.planes as f64;
        let s_n = self.sats_per_plane as f64;
        let t = p_n * s_n;
        let spread = match self.pattern {
            WalkerPattern::Delta => 360.0,
            WalkerPattern::Star => 180.0,
        };
        let mut v = Vec::with_capacity(t as usize);
        for p in 0..self.planes {
            for s in 0..self.sats_per_plane {
                v.push(KeplerElements {
                    semi_major_axis_km: geo::WGS84_A_KM + self.altitude_km,
                    eccentricity: 0.0,
                    inclination_deg: self.inclination_deg,
                    raan_deg: self.raan0_deg + p as f64 * spread / p_n,
                    arg_perigee_deg: 0.0,
                    mean_anomaly_deg: (s as f64 * 360.0 / s_n
                        + p as f64 * self.phasing as f64 * 360.0 / t)
                        .rem_euclid(360.0),
                    epoch_unix_ms: self.epoch_unix_ms,
                });
            }
        }
        v
    }

    /// The +Grid pattern as pairs of (plane, slot), each link once.
    pub fn grid_pairs(&self) -> Vec<((u32, u32), (u32, u32))> {
        let (pn, sn, f) = (self.planes, self.sats_per_plane, self.phasing);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut push = |a: (u32, u32), b: (u32, u32)| {
            if a == b {
                return;
            }
            let key = if a < b { (a, b) } else { (b, a) };
            if seen.insert(key) {
                out.push(key);
            }
        };
        for p in 0..pn {
            for s in 0..sn {
                if sn > 1 {
                    push((p, s), (p, (s + 1) % sn));
                }
                if p + 1 < pn {
                    push((p, s), (p + 1, s));
                } else if self.pattern == WalkerPattern::Delta && pn > 1 {
                    push((p, s), (0, (s + f) % sn));
                }
            }
        }
        out
    }
}

impl Mesh {
    /// Adds a Walker shell: its satellites (ids `{prefix}{plane}-{slot}`) and, for
    /// `IslMode::Grid`, its +Grid links, then steps the topology to the mesh's current
    /// time (or, for a mesh that has none yet, to the shell's epoch). All-or-nothing: no node is added when any id is taken.
    ///
    /// # Errors
    /// `ERR_INVALID_ARG` for a bad parameter; `ERR_DUPLICATE_NODE` when an id exists.
    pub fn add_walker_shell(&mut self, cfg: &WalkerConfig) -> Result<Vec<String>> {
        cfg.validate()?;
        let mut ids = Vec::with_capacity((cfg.planes * cfg.sats_per_plane) as usize);
        for p in 0..cfg.planes {
            for s in 0..cfg.sats_per_plane {
                let id = cfg.node_id(p, s);
                if self.has_node(&id) {
                    return Err(Error::new(
                        crate::core::error::Code::DuplicateNode,
                        format!("nodeId '{id}' is already in the mesh"),
                    ));
                }
                ids.push(id);
            }
        }
        let mut handles = Vec::with_capacity(ids.len());
        for (id, el) in ids.iter().zip(cfg.elements()) {
            let orbit: Arc<dyn OrbitSource> = Arc::new(KeplerOrbit::new(el)?);
            handles.push(self.add_satellite(id, orbit, cfg.isl)?);
        }
        if cfg.isl == IslMode::Grid {
            let at = |(p, s): (u32, u32)| handles[(p * cfg.sats_per_plane + s) as usize];
            let grid_pairs = cfg
                .grid_pairs()
                .into_iter()
                .map(|(a, b)| (at(a), at(b)))
                .collect();
            self.shells.push(Shell {
                grid_pairs,
                bandwidth_mbps: cfg.isl_bandwidth_mbps,
            });
        }
        // Links appear with the first time step: the mesh's current time, or the shell's epoch.
        let t = self.time_ms.unwrap_or(cfg.epoch_unix_ms);
        self.update_topology(t)?;
        Ok(ids)
    }
}
