//! Mapping core errors to JS errors with a stable `code`.
use crate::core::error::{Code, Error as CoreError};

/// Result type of binding functions: the error's status string becomes the JS `error.code`.
pub type JsResult<T> = napi::Result<T, String>;

pub fn js_err(e: CoreError) -> napi::Error<String> {
    napi::Error::new(e.code.as_str().to_string(), e.message)
}

pub fn invalid_arg(msg: impl Into<String>) -> napi::Error<String> {
    napi::Error::new(Code::InvalidArg.as_str().to_string(), msg.into())
}
