//! Training metrics of one federated node: steps, samples, losses, bytes synced, and how
//! its time splits between computing, communicating and waiting for a contact window.
//!
//! Time can be measured on the wall clock (`start_step` / `end_step`) or given
//! explicitly (`record_step`), which is what a simulation of orbital time needs.

use std::time::Instant;

use crate::core::error::{Error, Result};

/// Running totals for one node.
#[derive(Debug, Clone, Default)]
pub struct TrainingMetrics {
    pub total_steps: u64,
    pub total_samples: f64,
    pub bytes_uploaded: f64,
    pub bytes_downloaded: f64,
    pub sync_count: u64,
    pub compute_time_s: f64,
    pub communication_time_s: f64,
    pub idle_time_s: f64,
    pub loss_history: Vec<f64>,
    /// Σ original (dense) bytes and Σ wire bytes of recorded compressions.
    pub dense_bytes: f64,
    pub wire_bytes: f64,
    step_started: Option<Instant>,
}

/// Largest value one call may add (seconds, bytes or samples): 10¹⁵ is 30 million years or a
/// petabyte, and keeps every running total far from overflowing (so no ratio becomes NaN).
const MAX_AMOUNT: f64 = 1e15;

fn non_negative(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && (0.0..=MAX_AMOUNT).contains(&v) {
        Ok(v)
    } else {
        Err(Error::invalid_arg(format!(
            "{name} must be a finite number from 0 to 1e15, got {v}"
        )))
    }
}

impl TrainingMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts timing a step on the wall clock.
    pub fn start_step(&mut self) {
        self.step_started = Some(Instant::now());
    }

    /// Ends the step started by `start_step` (if any: otherwise only counts it), adding
    /// its wall time to compute time.
    pub fn end_step(&mut self, loss: Option<f64>, samples: f64) -> Result<()> {
        let elapsed = self
            .step_started
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        self.record_step(elapsed, loss, samples)?;
        self.step_started = None;
        Ok(())
    }

    /// Counts one step of `duration_s` seconds of compute (simulated or measured elsewhere).
    pub fn record_step(&mut self, duration_s: f64, loss: Option<f64>, samples: f64) -> Result<()> {
        let duration_s = non_negative("durationS", duration_s)?;
        let samples = non_negative("samples", samples)?;
        if let Some(l) = loss {
            if !l.is_finite() {
                return Err(Error::new(
                    crate::core::error::Code::NonFinite,
                    format!("loss is {l} (must be finite)"),
                ));
            }
        }
        self.compute_time_s += duration_s;
        self.total_steps += 1;
        self.total_samples += samples;
        if let Some(l) = loss {
            self.loss_history.push(l);
        }
        Ok(())
    }

    /// Counts one synchronisation: bytes each way and the time the link was busy.
    pub fn record_sync(&mut self, bytes_up: f64, bytes_down: f64, duration_s: f64) -> Result<()> {
        let up = non_negative("bytesUp", bytes_up)?;
        let down = non_negative("bytesDown", bytes_down)?;
        let d = non_negative("durationS", duration_s)?;
        self.bytes_uploaded += up;
        self.bytes_downloaded += down;
        self.communication_time_s += d;
        self.sync_count += 1;
        Ok(())
    }

    /// Adds time spent waiting (for a contact window, say).
    pub fn record_idle(&mut self, duration_s: f64) -> Result<()> {
        self.idle_time_s += non_negative("durationS", duration_s)?;
        Ok(())
    }

    /// Counts one compressed message: its dense size and its wire size, in bytes.
    pub fn record_compression(&mut self, dense_bytes: f64, wire_bytes: f64) -> Result<()> {
        let dense = non_negative("denseBytes", dense_bytes)?;
        let wire = non_negative("wireBytes", wire_bytes)?;
        if wire == 0.0 && dense > 0.0 {
            return Err(Error::invalid_arg(format!(
                "wireBytes must be > 0 for a message of {dense} dense bytes, got 0"
            )));
        }
        self.dense_bytes += dense;
        self.wire_bytes += wire;
        Ok(())
    }

    pub fn total_bytes_transferred(&self) -> f64 {
        self.bytes_uploaded + self.bytes_downloaded
    }

    /// Compute time ÷ (compute + communication + idle); 0 before any time is recorded.
    pub fn compute_efficiency(&self) -> f64 {
        let total = self.compute_time_s + self.communication_time_s + self.idle_time_s;
        if total > 0.0 {
            self.compute_time_s / total
        } else {
            0.0
        }
    }

    /// Communication time ÷ compute time; `None` while no compute time is recorded
    /// (the ratio is undefined, not infinite).
    pub fn communication_overhead(&self) -> Option<f64> {
        (self.compute_time_s > 0.0).then(|| self.communication_time_s / self.compute_time_s)
    }

    /// Mean of the recorded losses, `None` when there are none.
    pub fn average_loss(&self) -> Option<f64> {
        (!self.loss_history.is_empty())
            .then(|| self.loss_history.iter().sum::<f64>() / self.loss_history.len() as f64)
    }

    pub fn latest_loss(&self) -> Option<f64> {
        self.loss_history.last().copied()
    }

    /// Σ dense bytes ÷ Σ wire bytes of recorded compressions; 1 when none were recorded.
    pub fn compression_ratio(&self) -> f64 {
        if self.wire_bytes > 0.0 {
            self.dense_bytes / self.wire_bytes
        } else {
            1.0
        }
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_by_hand() {
        let mut m = TrainingMetrics::new();
        assert_eq!(m.compute_efficiency(), 0.0);
        assert_eq!(m.communication_overhead(), None);
        assert_eq!(m.average_loss(), None);
        assert_eq!(m.compression_ratio(), 1.0);
        m.record_step(3.0, Some(2.0), 32.0).unwrap();
        m.record_step(1.0, Some(1.0), 32.0).unwrap();
        m.record_sync(1000.0, 4000.0, 2.0).unwrap();
        m.record_idle(4.0).unwrap();
        m.record_compression(4000.0, 100.0).unwrap();
        m.record_compression(4000.0, 300.0).unwrap();
        // compute 4 s of 4 + 2 + 4 = 10 s; overhead 2 / 4.
        assert_eq!(m.compute_efficiency(), 0.4);
        assert_eq!(m.communication_overhead(), Some(0.5));
        assert_eq!(m.average_loss(), Some(1.5));
        assert_eq!(m.latest_loss(), Some(1.0));
        assert_eq!(m.total_samples, 64.0);
        assert_eq!(m.total_bytes_transferred(), 5000.0);
        assert_eq!(m.compression_ratio(), 20.0);
        m.reset();
        assert_eq!(m.total_steps, 0);
    }

    #[test]
    fn bad_values_change_nothing() {
        let mut m = TrainingMetrics::new();
        assert!(m.record_step(-1.0, None, 0.0).is_err());
        assert!(m.record_step(1.0, Some(f64::NAN), 0.0).is_err());
        assert!(m.record_sync(f64::INFINITY, 0.0, 0.0).is_err());
        assert!(m.record_idle(f64::NAN).is_err());
        assert!(m.record_step(1e308, None, 0.0).is_err());
        assert!(m.record_compression(5.0, 0.0).is_err());
        assert_eq!(m.total_steps, 0);
        assert_eq!(m.sync_count, 0);
        assert_eq!(m.compute_time_s, 0.0);
    }

    #[test]
    fn wall_clock_step_counts_elapsed_time() {
        let mut m = TrainingMetrics::new();
        m.start_step();
        std::thread::sleep(std::time::Duration::from_millis(5));
        m.end_step(None, 1.0).unwrap();
        assert!(m.compute_time_s >= 0.005);
        // Without start_step a step is counted with no time.
        m.end_step(None, 1.0).unwrap();
        assert_eq!(m.total_steps, 2);
    }
}
