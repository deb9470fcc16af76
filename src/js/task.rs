//! Running core work off the main thread as a Promise.
//!
//! `CoreTask` wraps a closure that returns a core `Result`. Its `compute` body is
//! guarded with `catch_unwind` itself, because napi-rs calls `compute` from an
//! `extern "C"` function where an unwinding panic aborts the process. Core errors
//! reject the Promise with a JS `Error` carrying the stable `code`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::*;

use crate::core::error::{Code, Error as CoreError};

type CoreResult<O> = std::result::Result<O, CoreError>;
type Job<O> = Box<dyn FnOnce() -> CoreResult<O> + Send>;

/// A unit of core work for the libuv thread pool.
pub struct CoreTask<O: Send + 'static> {
    job: Option<Job<O>>,
}

impl<O: Send + 'static> CoreTask<O> {
    pub fn new(job: impl FnOnce() -> CoreResult<O> + Send + 'static) -> AsyncTask<Self>
    where
        O: ToNapiValue + TypeName,
    {
        AsyncTask::new(CoreTask {
            job: Some(Box::new(job)),
        })
    }
}

/// Runs `f`, turning a panic into an `ERR_INTERNAL` core error.
pub fn guard<O>(f: impl FnOnce() -> CoreResult<O>) -> CoreResult<O> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(CoreError::new(
                Code::Internal,
                format!("internal error (please report): {msg}"),
            ))
        }
    }
}

impl<O: Send + ToNapiValue + TypeName + 'static> Task for CoreTask<O> {
    type Output = CoreResult<O>;
    type JsValue = O;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let job = self.job.take();
        Ok(match job {
            Some(job) => guard(job),
            None => Err(CoreError::new(Code::Internal, "task ran twice")),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        match output {
            Ok(v) => Ok(v),
            Err(e) => {
                // A JS error object with our code, retained so the Promise rejects with it verbatim.
                let js =
                    JsError::from(napi::Error::new(e.code.as_str(), e.message)).into_unknown(env);
                Err(napi::Error::from(js))
            }
        }
    }
}

/// The JS type of `onProgress` callbacks: called with a fraction in [0, 1].
pub type ProgressCallback =
    napi::threadsafe_function::ThreadsafeFunction<f64, (), f64, Status, false>;

/// Calls a progress callback from any thread without blocking. An exception thrown by the
/// callback is caught and dropped (a plain `call` would route it to
/// `napi_fatal_exception` and end the process): progress is advisory and must not take
/// the computation, or Node, down with it.
pub fn report_progress(callback: &ProgressCallback, fraction: f64) {
    callback.call_with_return_value(
        fraction,
        napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking,
        |_returned, _env| Ok(()),
    );
}
