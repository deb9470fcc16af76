//! Reading option objects: typed fields of a plain JS object, with errors that name
//! `what.key` and the value, shared by every class that takes `{ ...options }`.

use chrono::DateTime;
use napi::bindgen_prelude::*;

use super::{invalid_arg, js_err, JsResult};
use crate::core::error::{Code, Error as CoreError};

/// Reads typed fields of a plain JS object, naming `what.key` in errors.
pub struct Reader<'a, 'env> {
    pub obj: &'a Object<'env>,
    pub what: &'a str,
}

impl<'env> Reader<'_, 'env> {
    /// The field and its type; `None` when absent, undefined or null.
    pub fn raw(&self, key: &str) -> JsResult<Option<(Unknown<'env>, ValueType)>> {
        let v: Option<Unknown> = self
            .obj
            .get(key)
            .map_err(|e| invalid_arg(format!("{}.{key}: {e}", self.what)))?;
        match v {
            None => Ok(None),
            Some(u) => {
                let t = u.get_type().map_err(|e| invalid_arg(e.to_string()))?;
                match t {
                    ValueType::Undefined | ValueType::Null => Ok(None),
                    t => Ok(Some((u, t))),
                }
            }
        }
    }

    /// A number field.
    pub fn num(&self, key: &str) -> JsResult<Option<f64>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, ValueType::Number)) => Ok(Some(
                unsafe { u.cast::<f64>() }.map_err(|e| invalid_arg(e.to_string()))?,
            )),
            Some((_, t)) => Err(invalid_arg(format!(
                "{}.{key} must be a number, got {t}",
                self.what
            ))),
        }
    }

    /// A non-negative integer field (≤ 2³²−1).
    pub fn uint(&self, key: &str) -> JsResult<Option<u32>> {
        match self.num(key)? {
            None => Ok(None),
            Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64 => {
                Ok(Some(x as u32))
            }
            Some(x) => Err(invalid_arg(format!(
                "{}.{key} must be a non-negative integer, got {x}",
                self.what
            ))),
        }
    }

    /// A string field.
    pub fn string(&self, key: &str) -> JsResult<Option<String>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, ValueType::String)) => Ok(Some(
                unsafe { u.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?,
            )),
            Some((_, t)) => Err(invalid_arg(format!(
                "{}.{key} must be a string, got {t}",
                self.what
            ))),
        }
    }

    /// A boolean field.
    pub fn boolean(&self, key: &str) -> JsResult<Option<bool>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, ValueType::Boolean)) => Ok(Some(
                unsafe { u.cast::<bool>() }.map_err(|e| invalid_arg(e.to_string()))?,
            )),
            Some((_, t)) => Err(invalid_arg(format!(
                "{}.{key} must be a boolean, got {t}",
                self.what
            ))),
        }
    }

    /// An object field.
    pub fn object(&self, key: &str) -> JsResult<Option<Object<'env>>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, ValueType::Object)) => Ok(Some(
                unsafe { u.cast::<Object>() }.map_err(|e| invalid_arg(e.to_string()))?,
            )),
            Some((_, t)) => Err(invalid_arg(format!(
                "{}.{key} must be an object, got {t}",
                self.what
            ))),
        }
    }

    /// A `Date` field, as Unix milliseconds.
    pub fn date(&self, key: &str) -> JsResult<Option<f64>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, _)) => date_ms(&u, &format!("{}.{key}", self.what)).map(Some),
        }
    }

    /// A number, or a string holding one (OMM JSON sometimes quotes numbers).
    pub fn num_or_str(&self, key: &str) -> JsResult<Option<f64>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, ValueType::Number)) => Ok(Some(
                unsafe { u.cast::<f64>() }.map_err(|e| invalid_arg(e.to_string()))?,
            )),
            Some((u, ValueType::String)) => {
                let s: String =
                    unsafe { u.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?;
                s.trim().parse::<f64>().map(Some).map_err(|_| {
                    js_err(CoreError::new(
                        Code::InvalidTle,
                        format!("{}.{key} must be a number, got '{s}'", self.what),
                    ))
                })
            }
            Some((_, t)) => Err(invalid_arg(format!(
                "{}.{key} must be a number, got {t}",
                self.what
            ))),
        }
    }

    /// An array of strings (or `None`).
    pub fn strings(&self, key: &str) -> JsResult<Option<Vec<String>>> {
        match self.raw(key)? {
            None => Ok(None),
            Some((u, ValueType::Object)) => {
                let o: Object =
                    unsafe { u.cast::<Object>() }.map_err(|e| invalid_arg(e.to_string()))?;
                if !o.is_array().unwrap_or(false) {
                    return Err(invalid_arg(format!(
                        "{}.{key} must be an array of strings, got an object",
                        self.what
                    )));
                }
                let n = o
                    .get_array_length()
                    .map_err(|e| invalid_arg(e.to_string()))?;
                let mut out = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let v: Unknown = o.get_element(i).map_err(|e| invalid_arg(e.to_string()))?;
                    if v.get_type().map_err(|e| invalid_arg(e.to_string()))? != ValueType::String {
                        return Err(invalid_arg(format!(
                            "{}.{key}[{i}] must be a string",
                            self.what
                        )));
                    }
                    out.push(
                        unsafe { v.cast::<String>() }.map_err(|e| invalid_arg(e.to_string()))?,
                    );
                }
                Ok(Some(out))
            }
            Some((_, t)) => Err(invalid_arg(format!(
                "{}.{key} must be an array of strings, got {t}",
                self.what
            ))),
        }
    }

    /// The value, or `ERR_INVALID_ARG` saying `what.key` (of `kind`) is required.
    pub fn required<T>(&self, key: &str, v: Option<T>, kind: &str) -> JsResult<T> {
        v.ok_or_else(|| invalid_arg(format!("{}.{key} ({kind}) is required", self.what)))
    }
}

/// Unix milliseconds of a JS `Date`; anything else, or an invalid Date, is ERR_INVALID_ARG.
pub fn date_ms(u: &Unknown, what: &str) -> JsResult<f64> {
    let t = u.get_type().map_err(|e| invalid_arg(e.to_string()))?;
    if t != ValueType::Object {
        return Err(invalid_arg(format!("{what} must be a Date, got {t}")));
    }
    if !u.is_date().map_err(|e| invalid_arg(e.to_string()))? {
        return Err(invalid_arg(format!(
            "{what} must be a Date, got another object"
        )));
    }
    let d: Date = unsafe { u.cast() }.map_err(|e| invalid_arg(e.to_string()))?;
    let ms = d
        .value_of()
        .map_err(|_| invalid_arg(format!("{what} must be a Date, got another object")))?;
    if !ms.is_finite() {
        return Err(invalid_arg(format!("{what} is an invalid Date")));
    }
    // Results are Dates too: refuse what cannot be given back (chrono's range, about
    // ±262,000 years), rather than returning 1970-01-01.
    if DateTime::from_timestamp_millis(ms.round() as i64).is_none() {
        return Err(invalid_arg(format!(
            "{what} is outside the supported range of years (−262,000 to 262,000), got {ms} ms"
        )));
    }
    Ok(ms)
}
