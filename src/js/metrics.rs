//! `TrainingMetrics`: per-node training and sync accounting.

use std::sync::Mutex;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::js_err;
use crate::core::metrics as core;

/// Options of `endStep` and `recordStep`.
#[napi(object)]
pub struct StepOptions {
    /// The step's training loss (finite).
    pub loss: Option<f64>,
    /// Samples processed in the step (default 0).
    pub samples: Option<f64>,
}

/// Options of `recordSync`.
#[napi(object)]
pub struct SyncRecord {
    /// Bytes sent to the ground or to another node.
    pub bytes_up: f64,
    /// Bytes received.
    pub bytes_down: f64,
    /// Seconds the link was busy (default 0).
    pub duration_s: Option<f64>,
}

/// A snapshot of every metric, for logs and `JSON.stringify`.
#[napi(object)]
pub struct TrainingMetricsSummary {
    /// Steps counted.
    pub total_steps: f64,
    /// Samples processed.
    pub total_samples: f64,
    /// Seconds of compute.
    pub compute_time_s: f64,
    /// Seconds the link was busy.
    pub communication_time_s: f64,
    /// Seconds spent waiting.
    pub idle_time_s: f64,
    /// Compute ÷ (compute + communication + idle); 0 with no time recorded.
    pub compute_efficiency: f64,
    /// Communication ÷ compute time; null while no compute time is recorded.
    pub communication_overhead: Option<f64>,
    /// Bytes sent.
    pub bytes_uploaded: f64,
    /// Bytes received.
    pub bytes_downloaded: f64,
    /// Bytes sent plus received.
    pub total_bytes_transferred: f64,
    /// Synchronisations counted.
    pub sync_count: f64,
    /// Dense bytes ÷ wire bytes over recorded compressions (1 when none).
    pub compression_ratio: f64,
    /// Mean loss; null when no loss was recorded.
    pub average_loss: Option<f64>,
    /// Last recorded loss; null when none.
    pub latest_loss: Option<f64>,
}

/// Training and communication accounting for one node (the equivalent of the published
/// package's `TrainingMetrics`). Times are seconds, sizes bytes. Steps are timed on the
/// wall clock with `startStep`/`endStep`, or recorded with an explicit duration
/// (`recordStep`) when simulating orbital time. Negative or non-finite values are
/// `ERR_INVALID_ARG` (a non-finite loss `ERR_NON_FINITE`) and change nothing.
#[napi]
pub struct TrainingMetrics {
    inner: Mutex<core::TrainingMetrics>,
}

impl TrainingMetrics {
    fn with<T>(&self, f: impl FnOnce(&mut core::TrainingMetrics) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[napi]
impl TrainingMetrics {
    /// Empty metrics.
    #[napi(constructor)]
    pub fn new() -> Self {
        TrainingMetrics {
            inner: Mutex::new(core::TrainingMetrics::new()),
        }
    }

    /// Starts timing a step on the wall clock.
    #[napi(catch_unwind)]
    pub fn start_step(&self) {
        self.with(|m| m.start_step())
    }

    /// Ends the step begun by `startStep`, adding its wall time to compute time.
    #[napi(catch_unwind)]
    pub fn end_step(&self, options: Option<StepOptions>) -> napi::Result<(), String> {
        let o = options.unwrap_or(StepOptions {
            loss: None,
            samples: None,
        });
        self.with(|m| m.end_step(o.loss, o.samples.unwrap_or(0.0)))
            .map_err(js_err)
    }

    /// Counts a step of `durationS` seconds of compute (simulated or measured elsewhere).
    #[napi(catch_unwind)]
    pub fn record_step(
        &self,
        duration_s: f64,
        options: Option<StepOptions>,
    ) -> napi::Result<(), String> {
        let o = options.unwrap_or(StepOptions {
            loss: None,
            samples: None,
        });
        self.with(|m| m.record_step(duration_s, o.loss, o.samples.unwrap_or(0.0)))
            .map_err(js_err)
    }

    /// Counts one synchronisation.
    #[napi(catch_unwind)]
    pub fn record_sync(&self, record: SyncRecord) -> napi::Result<(), String> {
        self.with(|m| {
            m.record_sync(
                record.bytes_up,
                record.bytes_down,
                record.duration_s.unwrap_or(0.0),
            )
        })
        .map_err(js_err)
    }

    /// Adds seconds spent waiting (for a contact window, say).
    #[napi(catch_unwind)]
    pub fn record_idle(&self, duration_s: f64) -> napi::Result<(), String> {
        self.with(|m| m.record_idle(duration_s)).map_err(js_err)
    }

    /// Counts one compressed message: its dense size and its wire size in bytes
    /// (e.g. `4 * gradient.length` and `compressed.toBuffer().length`).
    #[napi(catch_unwind)]
    pub fn record_compression(
        &self,
        dense_bytes: f64,
        wire_bytes: f64,
    ) -> napi::Result<(), String> {
        self.with(|m| m.record_compression(dense_bytes, wire_bytes))
            .map_err(js_err)
    }

    /// Steps counted.
    #[napi(getter)]
    pub fn total_steps(&self) -> f64 {
        self.with(|m| m.total_steps as f64)
    }

    /// Samples processed.
    #[napi(getter)]
    pub fn total_samples(&self) -> f64 {
        self.with(|m| m.total_samples)
    }

    /// Bytes uploaded plus downloaded.
    #[napi(getter)]
    pub fn total_bytes_transferred(&self) -> f64 {
        self.with(|m| m.total_bytes_transferred())
    }

    /// Compute time ÷ (compute + communication + idle); 0 before any time is recorded.
    #[napi(getter)]
    pub fn compute_efficiency(&self) -> f64 {
        self.with(|m| m.compute_efficiency())
    }

    /// Communication time ÷ compute time; null while no compute time is recorded.
    #[napi(getter)]
    pub fn communication_overhead(&self) -> Option<f64> {
        self.with(|m| m.communication_overhead())
    }

    /// Mean recorded loss, or null.
    #[napi(getter)]
    pub fn average_loss(&self) -> Option<f64> {
        self.with(|m| m.average_loss())
    }

    /// Last recorded loss, or null.
    #[napi(getter)]
    pub fn latest_loss(&self) -> Option<f64> {
        self.with(|m| m.latest_loss())
    }

    /// Every recorded loss, in order (a copy).
    #[napi(getter)]
    pub fn loss_history(&self) -> Float64Array {
        Float64Array::new(self.with(|m| m.loss_history.clone()))
    }

    /// All metrics at once.
    #[napi(catch_unwind)]
    pub fn summary(&self) -> TrainingMetricsSummary {
        self.with(|m| TrainingMetricsSummary {
            total_steps: m.total_steps as f64,
            total_samples: m.total_samples,
            compute_time_s: m.compute_time_s,
            communication_time_s: m.communication_time_s,
            idle_time_s: m.idle_time_s,
            compute_efficiency: m.compute_efficiency(),
            communication_overhead: m.communication_overhead(),
            bytes_uploaded: m.bytes_uploaded,
            bytes_downloaded: m.bytes_downloaded,
            total_bytes_transferred: m.total_bytes_transferred(),
            sync_count: m.sync_count as f64,
            compression_ratio: m.compression_ratio(),
            average_loss: m.average_loss(),
            latest_loss: m.latest_loss(),
        })
    }

    /// Forgets everything.
    #[napi(catch_unwind)]
    pub fn reset(&self) {
        self.with(|m| m.reset())
    }
}

impl Default for TrainingMetrics {
    fn default() -> Self {
        Self::new()
    }
}
