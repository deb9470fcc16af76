//! Central differential privacy: every update is clipped to L2 norm C (a factor
//! min(1, C/‖g‖) folded into its weight, so nothing is copied), and the aggregate gets
//! seeded Gaussian noise of standard deviation σ·C·max wᵢ / Σ wᵢ per coordinate — the
//! Gaussian mechanism for the weighted mean when one client is added or removed with the
//! weights of the others fixed.

use rayon::prelude::*;

use super::CHUNK;
use crate::core::rng::Rng;

/// The factor that brings an update of squared norm `norm2` within `clip` (1 when it is).
pub fn clip_factor(norm2: f64, clip: Option<f64>) -> f32 {
    match clip {
        Some(c) if norm2.sqrt() > c => (c / norm2.sqrt()) as f32,
        _ => 1.0,
    }
}

/// Adds N(0, std²) to every value. Each 16 Ki-value chunk draws from its own stream of
/// (seed, round, chunk), so the result does not depend on the thread count.
pub fn add_noise(out: &mut [f32], std: f64, seed: u64, round: u64) {
    if std <= 0.0 {
        return;
    }
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, o)| {
        let mut rng = Rng::for_stream(seed, round, ci as u64);
        for x in o.iter_mut() {
            *x += (std * rng.normal()) as f32;
        }
    });
}
