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
        if self.m.len() != n {
            let m = crate::core::alloc::zeroed(n, "the server optimiser's state")?;
            if cfg.strategy != Strategy::FedAvgM {
                self.v = crate::core::alloc::zeroed(n, "the server optimiser's state")?;
            }
            self.m = m;
        }
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
        let v_all: &mut [f32] = if strategy == Strategy::FedAvgM {
            &mut []
        } else {
            &mut self.v
        };
        #[allow(clippy::type_complexity)]
        let kernel = |(ci, ((s, m), d)): (usize, ((&mut [f32], &mut [f32]), &[f32])),
                      v: &mut [f32]| {
            let _ = ci;
            match strategy {
                Strategy::FedAvgM => {
                    for k in 0..d.len() {
                        m[k] = mu * m[k] + d[k];
                        s[k] = lr * m[k];
                    }
                }
                _ => {
                    for k in 0..d.len() {
                        let g = d[k];
                        let g2 = g * g;
                        m[k] = b1 * m[k] + (1.0 - b1) * g;
                        v[k] = if strategy == Strategy::FedAdam {
                            b2 * v[k] + (1.0 - b2) * g2
                        } else {
                            let diff = v[k] - g2;
                            let sign = if diff > 0.0 {
                                1.0
                            } else if diff < 0.0 {
                                -1.0
                            } else {
                                0.0
                            };
                            v[k] - (1.0 - b2) * g2 * sign
                        };
                        s[k] = lr * m[k] / (v[k].max(0.0).sqrt() + tau);
                    }
                }
            }
        };
        if strategy == Strategy::FedAvgM {
            step.par_chunks_mut(CHUNK)
                .zip(self.m.par_chunks_mut(CHUNK))
                .zip(delta.par_chunks(CHUNK))
                .enumerate()
                .for_each(|t| kernel(t, &mut []));
        } else {
            step.par_chunks_mut(CHUNK)
                .zip(self.m.par_chunks_mut(CHUNK))
                .zip(delta.par_chunks(CHUNK))
                .zip(v_all.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(ci, (t, v))| kernel((ci, t), v));
        }
        if step.iter().any(|x| !x.is_finite()) {
            // Only reachable by overflow of huge updates; never hand back NaN.
            return Err(Error::new(
                Code::NonFinite,
                "the server step overflowed to a non-finite value (updates too large for f32)",
            ));
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
