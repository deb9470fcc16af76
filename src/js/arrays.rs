//! Reading numeric arrays from JS: a `Float32Array` is borrowed without copying; a
//! plain `number[]` is accepted and converted; anything else, another typed array, or
//! a view of a detached buffer is a coded error.

use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;

use super::{invalid_arg, js_err};
use crate::core::error::{Code, Error as CoreError};

/// A gradient read from JS: borrowed for the duration of a synchronous call, or owned.
pub enum F32Input<'a> {
    Borrowed(&'a [f32]),
    Owned(Vec<f32>),
}

impl F32Input<'_> {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            F32Input::Borrowed(s) => s,
            F32Input::Owned(v) => v,
        }
    }
    /// An owned copy, for work that leaves the main thread (`ERR_OUT_OF_MEMORY` when the
    /// process cannot hold the copy).
    pub fn into_owned(self) -> napi::Result<Vec<f32>, String> {
        match self {
            F32Input::Borrowed(s) => {
                crate::core::alloc::copy_of(s, "a copy of the input").map_err(js_err)
            }
            F32Input::Owned(v) => Ok(v),
        }
    }
}

fn typed_array_name(t: sys::napi_typedarray_type) -> &'static str {
    match t {
        sys::TypedarrayType::int8_array => "Int8Array",
        sys::TypedarrayType::uint8_array => "Uint8Array",
        sys::TypedarrayType::uint8_clamped_array => "Uint8ClampedArray",
        sys::TypedarrayType::int16_array => "Int16Array",
        sys::TypedarrayType::uint16_array => "Uint16Array",
        sys::TypedarrayType::int32_array => "Int32Array",
        sys::TypedarrayType::uint32_array => "Uint32Array",
        sys::TypedarrayType::float32_array => "Float32Array",
        sys::TypedarrayType::float64_array => "Float64Array",
        sys::TypedarrayType::bigint64_array => "BigInt64Array",
        sys::TypedarrayType::biguint64_array => "BigUint64Array",
        _ => "a typed array",
    }
}

fn status(s: sys::napi_status, what: &str) -> napi::Result<(), String> {
    if s == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(invalid_arg(format!(
            "{what}: could not be read (napi status {s})"
        )))
    }
}

/// What napi says of a typed array: its status, element type, data pointer (already offset
/// by byteOffset), length and `ArrayBuffer`.
fn typed_array_info(
    raw_env: sys::napi_env,
    raw: sys::napi_value,
) -> (
    sys::napi_status,
    sys::napi_typedarray_type,
    *mut std::ffi::c_void,
    usize,
    sys::napi_value,
) {
    let mut kind: sys::napi_typedarray_type = 0;
    let (mut len, mut offset) = (0usize, 0usize);
    let (mut data, mut buffer) = (ptr::null_mut(), ptr::null_mut());
    let s = unsafe {
        sys::napi_get_typedarray_info(
            raw_env,
            raw,
            &mut kind,
            &mut len,
            &mut data,
            &mut buffer,
            &mut offset,
        )
    };
    (s, kind, data, len, buffer)
}

/// The element type, data pointer (already offset by byteOffset) and length of a typed
/// array view, refusing a view of a detached buffer with ERR_DETACHED_BUFFER (napi reports
/// those as ordinary empty views).
fn typed_array_view(
    raw_env: sys::napi_env,
    raw: sys::napi_value,
    what: &str,
) -> napi::Result<(sys::napi_typedarray_type, *mut std::ffi::c_void, usize), String> {
    let (s, kind, data, len, buffer) = typed_array_info(raw_env, raw);
    status(s, what)?;
    let mut detached = false;
    status(
        unsafe { sys::napi_is_detached_arraybuffer(raw_env, buffer, &mut detached) },
        what,
    )?;
    if detached {
        return Err(napi::Error::new(
            Code::DetachedBuffer.as_str().to_string(),
            format!("{what} is a view of a detached ArrayBuffer (it was transferred); pass a live array"),
        ));
    }
    Ok((kind, data, len))
}

/// Reads `value` (named `what` in errors) as f32 values.
pub fn read_f32<'a>(
    env: &Env,
    value: &Unknown<'a>,
    what: &str,
) -> napi::Result<F32Input<'a>, String> {
    let raw_env = env.raw();
    let raw = value.raw();
    let mut is_typed = false;
    status(
        unsafe { sys::napi_is_typedarray(raw_env, raw, &mut is_typed) },
        what,
    )?;
    if is_typed {
        let (kind, data, len) = typed_array_view(raw_env, raw, what)?;
        if kind != sys::TypedarrayType::float32_array {
            return Err(invalid_arg(format!(
                "{what} must be a Float32Array (or an array of numbers), got {}",
                typed_array_name(kind)
            )));
        }
        if len == 0 || data.is_null() {
            return Ok(F32Input::Borrowed(&[]));
        }
        if !(data as usize).is_multiple_of(std::mem::align_of::<f32>()) {
            // Float32Array views are always 4-byte aligned; copy defensively if a runtime says otherwise.
            let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, len * 4) };
            return Ok(F32Input::Owned(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_ne_bytes(c.try_into().unwrap()))
                    .collect(),
            ));
        }
        // SAFETY: napi reports `data` already offset by byteOffset, valid for `len` f32s while
        // this synchronous call runs.
        return Ok(F32Input::Borrowed(unsafe {
            std::slice::from_raw_parts(data as *const f32, len)
        }));
    }
    let mut is_array = false;
    status(
        unsafe { sys::napi_is_array(raw_env, raw, &mut is_array) },
        what,
    )?;
    if is_array {
        let arr: Array = unsafe { Array::from_napi_value(raw_env, raw) }
            .map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))?;
        let n = arr.len();
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let v: Option<Unknown> = arr
                .get(i)
                .map_err(|e| invalid_arg(format!("{what}[{i}]: {}", e.reason)))?;
            let x = match v {
                Some(u)
                    if u.get_type().map_err(|e| invalid_arg(e.reason.clone()))?
                        == ValueType::Number =>
                {
                    unsafe { u.cast::<f64>() }.map_err(|e| invalid_arg(e.reason.clone()))?
                }
                _ => return Err(invalid_arg(format!("{what}[{i}] must be a number"))),
            };
            if x.is_finite() && !(x as f32).is_finite() {
                // Named as given: converted, it would be reported as Infinity.
                return Err(js_err(CoreError::new(
                    Code::NonFinite,
                    format!("{what}[{i}] is {x:e}, beyond the f32 range (|x| ≤ 3.4e38)"),
                )));
            }
            out.push(x as f32);
        }
        return Ok(F32Input::Owned(out));
    }
    let t = value
        .get_type()
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "unknown".into());
    Err(invalid_arg(format!(
        "{what} must be a Float32Array (or an array of numbers), got {t}"
    )))
}

/// The element type of a typed array, or `None` for any other value.
pub fn typed_array_kind(env: &Env, value: &Unknown) -> Option<sys::napi_typedarray_type> {
    let (raw_env, raw) = (env.raw(), value.raw());
    let mut is_typed = false;
    let s = unsafe { sys::napi_is_typedarray(raw_env, raw, &mut is_typed) };
    if s != sys::Status::napi_ok || !is_typed {
        return None;
    }
    let (s, kind, ..) = typed_array_info(raw_env, raw);
    (s == sys::Status::napi_ok).then_some(kind)
}

/// What a message should call `value`: its typed-array class, "an array", or what `typeof`
/// says.
pub fn describe(env: &Env, value: &Unknown) -> String {
    if let Some(kind) = typed_array_kind(env, value) {
        return format!("a {}", typed_array_name(kind));
    }
    match value.get_type() {
        Ok(ValueType::Object) if value.is_array().unwrap_or(false) => "an array".into(),
        Ok(t) => type_of(t).into(),
        Err(_) => "an unknown value".into(),
    }
}

/// What `typeof` would say of a value of type `t` ("an object" for objects), for messages.
pub fn type_of(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Object => "an object",
        ValueType::Function => "function",
        ValueType::External => "an external value",
        ValueType::BigInt => "bigint",
        _ => "an unknown value",
    }
}

/// Reads `value` as a Float32Array to write into (named `what` in errors): any other type
/// is ERR_INVALID_ARG naming the type found; a view of a detached buffer is
/// ERR_DETACHED_BUFFER (napi would read it as an empty array).
pub fn read_f32_out(env: &Env, value: &Unknown, what: &str) -> napi::Result<Float32Array, String> {
    if typed_array_kind(env, value) != Some(sys::TypedarrayType::float32_array) {
        return Err(invalid_arg(format!(
            "{what} must be a Float32Array, got {}",
            describe(env, value)
        )));
    }
    let (raw_env, raw) = (env.raw(), value.raw());
    // Refuses a detached view.
    typed_array_view(raw_env, raw, what)?;
    unsafe { Float32Array::from_napi_value(raw_env, raw) }
        .map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))
}

/// Reads a `Buffer` or `Uint8Array` as bytes (borrowed for this call).
pub fn read_bytes<'a>(
    env: &Env,
    value: &Unknown<'a>,
    what: &str,
) -> napi::Result<&'a [u8], String> {
    let raw_env = env.raw();
    let raw = value.raw();
    let mut is_typed = false;
    status(
        unsafe { sys::napi_is_typedarray(raw_env, raw, &mut is_typed) },
        what,
    )?;
    let mut is_buffer = false;
    status(
        unsafe { sys::napi_is_buffer(raw_env, raw, &mut is_buffer) },
        what,
    )?;
    if !is_typed && !is_buffer {
        let t = value
            .get_type()
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "unknown".into());
        return Err(invalid_arg(format!(
            "{what} must be a Buffer or Uint8Array, got {t}"
        )));
    }
    let (kind, data, len) = typed_array_view(raw_env, raw, what)?;
    if kind != sys::TypedarrayType::uint8_array {
        return Err(invalid_arg(format!(
            "{what} must be a Buffer or Uint8Array, got {}",
            typed_array_name(kind)
        )));
    }
    if len == 0 || data.is_null() {
        return Ok(&[]);
    }
    Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
}

/// Refuses an allocation of `bytes` the process cannot make, with `ERR_OUT_OF_MEMORY`.
///
/// V8 ends the process when it cannot allocate an ArrayBuffer's memory (a FATAL "out of
/// memory", not an exception), so the allocator is asked first: a reservation that fails
/// here (an address-space limit, a forged length of billions of values) becomes a coded
/// error. It only reserves address space: untouched pages cost nothing and are returned at once.
pub fn ensure_allocatable(bytes: usize, what: &str) -> napi::Result<(), String> {
    // Above V8's limit the reservation is made to fail the same way (usize::MAX cannot be had).
    let bytes = if bytes > MAX_TYPED_BYTES {
        usize::MAX
    } else {
        bytes
    };
    crate::core::alloc::with_capacity::<u8>(bytes, what)
        .map(drop)
        .map_err(js_err)
}

/// The largest typed array V8 makes (2^32 − 1 elements of 4 bytes; more is a fatal error).
const MAX_TYPED_BYTES: usize = (u32::MAX as usize) * 4;

/// A new zero-filled `Float32Array` of `n` values whose memory belongs to the JS engine,
/// for results written in place. The engine frees it at garbage collection, like any
/// array made in JS; an array made from a Rust `Vec` is freed only by a finalizer that
/// waits for the event loop, so results made in a synchronous loop would pile up.
/// `what` names the result in errors.
pub fn new_engine_f32(env: &Env, n: usize, what: &str) -> napi::Result<Float32Array, String> {
    let bytes = n.saturating_mul(4);
    ensure_allocatable(bytes, what)?;
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    // SAFETY: plain N-API calls on the current env with valid out-pointers.
    let s = unsafe { sys::napi_create_arraybuffer(env.raw(), bytes, &mut data, &mut buffer) };
    if s != sys::Status::napi_ok {
        return Err(js_err(CoreError::new(
            Code::OutOfMemory,
            format!("{what}: could not allocate {n} values ({bytes} bytes, napi status {s})"),
        )));
    }
    let mut array = ptr::null_mut();
    // SAFETY: as above; `buffer` is the ArrayBuffer just made, `n` values long.
    let s = unsafe {
        sys::napi_create_typedarray(
            env.raw(),
            sys::TypedarrayType::float32_array,
            n,
            buffer,
            0,
            &mut array,
        )
    };
    status(s, what)?;
    // SAFETY: `array` is a live Float32Array value of this env.
    unsafe { Float32Array::from_napi_value(env.raw(), array) }.map_err(|e| invalid_arg(e.reason))
}

/// A new engine-owned `Float32Array` holding a copy of `data` (see `new_engine_f32`): for
/// results computed into a Rust `Vec`, one memcpy buys synchronous loops bounded memory.
pub fn engine_f32_copy(env: &Env, data: &[f32], what: &str) -> napi::Result<Float32Array, String> {
    let mut out = new_engine_f32(env, data.len(), what)?;
    // SAFETY: a new array that no one else holds yet.
    let slice: &mut [f32] = unsafe { out.as_mut() };
    slice.copy_from_slice(data);
    Ok(out)
}

/// A new engine-owned `Buffer` holding a copy of `data` (see `new_engine_f32` for why).
pub fn engine_buffer<'a>(
    env: &'a Env,
    data: &[u8],
    what: &str,
) -> napi::Result<BufferSlice<'a>, String> {
    ensure_allocatable(data.len(), what)?;
    BufferSlice::copy_from(env, data).map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))
}

/// A new engine-owned `Uint32Array` holding a copy of `data` (see `new_engine_f32` for why).
pub fn engine_u32<'a>(
    env: &'a Env,
    data: &[u32],
    what: &str,
) -> napi::Result<Uint32ArraySlice<'a>, String> {
    ensure_allocatable(std::mem::size_of_val(data), what)?;
    Uint32ArraySlice::copy_from(env, data).map_err(|e| invalid_arg(format!("{what}: {}", e.reason)))
}

/// A new engine-owned `Float64Array` holding a copy of `data` (small results: one copy is
/// cheaper than an external buffer and its finalizer).
///
/// # Safety
/// `env` must be the env of the current call, on the main thread.
pub unsafe fn engine_f64(env: sys::napi_env, data: &[f64]) -> napi::Result<sys::napi_value> {
    let bytes = std::mem::size_of_val(data);
    let mut raw = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    check_status!(
        sys::napi_create_arraybuffer(env, bytes, &mut raw, &mut buffer),
        "could not allocate a Float64Array of {} values",
        data.len()
    )?;
    if bytes > 0 {
        ptr::copy_nonoverlapping(data.as_ptr(), raw.cast::<f64>(), data.len());
    }
    let mut array = ptr::null_mut();
    check_status!(
        sys::napi_create_typedarray(
            env,
            sys::TypedarrayType::float64_array,
            data.len(),
            buffer,
            0,
            &mut array,
        ),
        "could not create a Float64Array"
    )?;
    Ok(array)
}
