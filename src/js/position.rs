//! `Position`: a geodetic point, and the conversion of any position-like JS value.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::{js_err, JsResult};
use crate::core::geo::Geodetic;

/// Options of `new Position({...})`.
#[napi(object)]
pub struct PositionOptions {
    /// Geodetic latitude, degrees in [-90, 90].
    pub latitude: f64,
    /// Longitude, degrees in [-180, 180] (up to 360 accepted).
    pub longitude: f64,
    /// Height above the WGS-84 ellipsoid, km (default 0).
    pub altitude_km: Option<f64>,
}

/// A point on or above the Earth (WGS-84): latitude and longitude in degrees, altitude in km.
///
/// Any object with `latitude`, `longitude` and `altitudeKm` fields is accepted wherever a
/// `Position` is expected, including `Position` from `@rotastellar/sdk`.
#[napi]
#[derive(Clone, Copy)]
pub struct Position {
    /// Geodetic latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Height above the WGS-84 ellipsoid, km.
    pub altitude_km: f64,
}

#[napi]
impl Position {
    /// Creates a position; throws `ERR_INVALID_ARG` for latitude outside [-90, 90], longitude
    /// outside [-180, 360] or a non-finite altitude.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: PositionOptions) -> napi::Result<Self, String> {
        let g = Geodetic::new(
            options.latitude,
            options.longitude,
            options.altitude_km.unwrap_or(0.0),
        )
        .map_err(js_err)?;
        Ok(Position {
            latitude: g.lat_deg,
            longitude: g.lon_deg,
            altitude_km: g.alt_km,
        })
    }

    /// Plain-object form, for `JSON.stringify`.
    #[napi(js_name = "toJSON")]
    #[allow(clippy::wrong_self_convention)] // napi methods take &self
    pub fn to_json(&self) -> PositionOptions {
        PositionOptions {
            latitude: self.latitude,
            longitude: self.longitude,
            altitude_km: Some(self.altitude_km),
        }
    }
}

impl Position {
    pub fn geodetic(&self) -> Geodetic {
        Geodetic {
            lat_deg: self.latitude,
            lon_deg: self.longitude,
            alt_km: self.altitude_km,
        }
    }
}

/// The TypeScript shape accepted wherever a position is expected.
#[napi(object)]
pub struct PositionLike {
    /// Geodetic latitude, degrees in [-90, 90].
    pub latitude: f64,
    /// Longitude, degrees in [-180, 360].
    pub longitude: f64,
    /// Height above the WGS-84 ellipsoid, km (default 0).
    pub altitude_km: Option<f64>,
}

/// Reads a position from any object with `latitude`, `longitude` and optional `altitudeKm`
/// (our `Position`, a plain object, or `@rotastellar/sdk`'s `Position`), validating ranges.
/// `what` names the argument in error messages.
pub fn position_from_object(obj: &Object, what: &str) -> JsResult<Geodetic> {
    let get = |key: &str| -> JsResult<Option<f64>> {
        let v: Option<Unknown> = obj
            .get(key)
            .map_err(|e| super::invalid_arg(format!("{what}.{key}: {e}")))?;
        match v {
            None => Ok(None),
            Some(u) => match u
                .get_type()
                .map_err(|e| super::invalid_arg(e.to_string()))?
            {
                ValueType::Undefined | ValueType::Null => Ok(None),
                ValueType::Number => Ok(Some(
                    unsafe { u.cast::<f64>() }.map_err(|e| super::invalid_arg(e.to_string()))?,
                )),
                t => Err(super::invalid_arg(format!(
                    "{what}.{key} must be a number, got {t}"
                ))),
            },
        }
    };
    // `new Position({ ... })` with @rotastellar/sdk's positional constructor stores the
    // whole options object in `latitude`: unwrap it so that README code written for
    // either package works.
    if let Ok(Some(inner)) = obj.get::<Object>("latitude") {
        if inner.has_named_property("latitude").unwrap_or(false) {
            return position_from_object(&inner, what);
        }
    }
    let lat = get("latitude")?
        .ok_or_else(|| super::invalid_arg(format!("{what}.latitude is required")))?;
    let lon = get("longitude")?
        .ok_or_else(|| super::invalid_arg(format!("{what}.longitude is required")))?;
    let alt = get("altitudeKm")?.unwrap_or(0.0);
    Geodetic::new(lat, lon, alt).map_err(|e| {
        js_err(crate::core::error::Error::new(
            e.code,
            format!("{what}: {}", e.message),
        ))
    })
}
