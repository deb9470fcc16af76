//! Server optimisers (Reddi et al., "Adaptive Federated Optimization", ICLR 2021; Hsu et
//! al. 2019 for server momentum). The round's weighted mean Δ of the client updates is
//! treated as a pseudo-gradient pointing *up* the model (updates are model deltas,
//! new − old, to be added), and the server takes one step:
//!
//! - FEDAVGM: m ← μ·m + Δ;  step = η·m
//! - FEDADAM: m ← β₁·m + (1 − β₁)·Δ;  v ← β₂·v + (1 − β₂)·Δ²;  step = η·m / (√v + τ)
//! - FEDYOGI: m as Adam;  v ← v − (1 − β₂)·Δ²·sign(v − Δ²);  step = η·m / (√v + τ)
//!
//! with m and v starting at zero, no bias correction (as in the paper). When the server
//! holds the global model x, x ← x + step.

use rayon::prelude::*;

use super::{Config, Strategy, CHUNK};
use crate::core::error::{Code, Error, Result};

/// Largest |component| of an aggregate the server optimisers accept (its square fits f32).
const MAX_SERVER_DELTA: f32 = 1e18;

/// Optimiser state carried across rounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerState {
    /// First moment (FEDAVGM: the momentum buffer).
    pub m: Vec<f32>,
    /// Second moment (FEDADAM / FEDYOGI).
    pub v: Vec<f32>,
    /// The global model, when the user gave one.
    pub model: Option<Vec<f32>>,
    /// Steps taken.
    pub steps: u64,
}

impl ServerState {
    /// Applies one step for the mean update `delta`; returns the step (and updates the
    /// model when one is held). Lengths must agree with the state (`ERR_LENGTH_MISMATCH`).
    pub fn step(&mut self, cfg: &Config, delta: &[f32]) -> Result<Vec<f32>> {
        let n = delta.len();
        if let Some(x) = &self.model {
            if x.len() != n {
                return Err(Error::new(
                    Code::LengthMismatch,
                    format!(
                        "the round's updates have length {n} but the global model has length {}",
                        x.len()
                    ),
                ));
            }
        }
        if self.steps > 0 && self.m.len() != n {
            return Err(Error::new(
                Code::LengthMismatch,
                format!("the round's updates have length {n} but the optimiser state has length {} (call resetState() to change models)", self.m.len()),
            ));
        }
        // The first step starts from zero moments (allocated once the step is known to succeed).
        let fresh = self.m.len() != n;
        let (lr, mu, b1, b2, tau) = (
            cfg.server_lr as f32,
            cfg.momentum as f32,
            cfg.beta1 as f32,
            cfg.beta2 as f32,
            cfg.tau as f32,
        );
        // Squares of components above ~1.8e19 overflow f32 (FEDADAM would then step by 0,
        // FEDYOGI by NaN). Refuse such an update before the moments are touched, so a failed
        // round leaves the optimiser state as it was.
        if let Some(k) = delta.iter().position(|x| x.abs() > MAX_SERVER_DELTA) {
            return Err(Error::new(
                Code::NonFinite,
                format!(
                    "aggregate[{k}] = {:e} is too large for the server optimiser (|x| must be ≤ 1e18)",
                    delta[k]
                ),
            ));
        }
        let mut step = crate::core::alloc::zeroed(n, "the server step")?;
        let strategy = cfg.strategy;
        let rule = Rule {
            strategy,
            lr,
            mu,
            b1,
            b2,
            tau,
        };
        let fedavgm = strategy == Strategy::FedAvgM;
        // Two passes, so that a refused round leaves the state (moments and model) as it was:
        // the first computes the step from the old moments, touching nothing else, and checks
        // that the new moments, the step and the new model are finite; only then does the
        // second write the moments (recomputed: the same arithmetic, the same bits) and the
        // model.
        let (m, v, model) = (&self.m, &self.v, self.model.as_deref());
        let finite = step.par_chunks_mut(CHUNK).enumerate().all(|(ci, s)| {
            let at = ci * CHUNK;
            let mut bad = false;
            for (k, s) in s.iter_mut().enumerate() {
                let j = at + k;
                let (mj, vj) = match (fresh, fedavgm) {
                    (true, _) => (0.0, 0.0),
                    (false, true) => (m[j], 0.0),
                    (false, false) => (m[j], v[j]),
                };
                let (m1, v1, st) = rule.advance(mj, vj, delta[j]);
                *s = st;
                let x1 = model.map_or(0.0, |x| x[j] + st);
                bad |= !(m1.is_finite() && v1.is_finite() && st.is_finite() && x1.is_finite());
            }
            !bad
        });
        if !finite {
            // Only reachable with huge updates, learning rates or models; never hand back NaN
            // or ±Inf, and never keep them in the state.
            return Err(Error::new(
                Code::NonFinite,
                if self.model.is_some() {
                    "the server step overflowed f32: the step, the optimiser's moments or the global model would not be finite (updates, learning rate or model too large); the state is unchanged"
                } else {
                    "the server step overflowed f32: the step or the optimiser's moments would not be finite (updates or learning rate too large); the state is unchanged"
                },
            ));
        }
        if fresh {
            self.m = crate::core::alloc::zeroed(n, "the server optimiser's state")?;
            if !fedavgm {
                self.v = crate::core::alloc::zeroed(n, "the server optimiser's state")?;
            }
        }
        let v_all: &mut [f32] = if fedavgm { &mut [] } else { &mut self.v };
        let update = |m: &mut [f32], v: &mut [f32], d: &[f32]| {
            for k in 0..d.len() {
                let vk = if fedavgm { 0.0 } else { v[k] };
                let (m1, v1, _) = rule.advance(m[k], vk, d[k]);
                m[k] = m1;
                if !fedavgm {
                    v[k] = v1;
                }
            }
        };
        if fedavgm {
            self.m
                .par_chunks_mut(CHUNK)
                .zip(delta.par_chunks(CHUNK))
                .for_each(|(m, d)| update(m, &mut [], d));
        } else {
            self.m
                .par_chunks_mut(CHUNK)
                .zip(v_all.par_chunks_mut(CHUNK))
                .zip(delta.par_chunks(CHUNK))
                .for_each(|((m, v), d)| update(m, v, d));
        }
        if let Some(x) = &mut self.model {
            x.par_chunks_mut(CHUNK)
                .zip(step.par_chunks(CHUNK))
                .for_each(|(x, s)| {
                    x.iter_mut().zip(s).for_each(|(x, s)| *x += s);
                });
        }
        self.steps += 1;
        Ok(step)
    }
}

/// One optimiser's update rule with its hyper-parameters.
#[derive(Debug, Clone, Copy)]
struct Rule {
    strategy: Strategy,
    lr: f32,
    mu: f32,
    b1: f32,
    b2: f32,
    tau: f32,
}

impl Rule {
    /// (new m, new v, step) for one coordinate from its old moments and the mean update
    /// `d` (v is unused, and returned as 0, by FEDAVGM).
    #[inline]
    fn advance(&self, m: f32, v: f32, d: f32) -> (f32, f32, f32) {
        match self.strategy {
            Strategy::FedAvgM => {
                let m1 = self.mu * m + d;
                (m1, 0.0, self.lr * m1)
            }
            _ => {
                let g2 = d * d;
                let m1 = self.b1 * m + (1.0 - self.b1) * d;
                let v1 = if self.strategy == Strategy::FedAdam {
                    self.b2 * v + (1.0 - self.b2) * g2
                } else {
                    let diff = v - g2;
                    let sign = if diff > 0.0 {
                        1.0
                    } else if diff < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    v - (1.0 - self.b2) * g2 * sign
                };
                (m1, v1, self.lr * m1 / (v1.max(0.0).sqrt() + self.tau))
            }
        }
    }
}
