//! The one error type of the core: a stable code plus a message naming the argument
//! and the offending value. The binding turns it into a JS `Error` whose `code` is
//! the same string.

use std::fmt;

/// Stable error codes, shared by every capability. They are part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArg,
    LengthMismatch,
    NonFinite,
    UnknownNode,
    DuplicateNode,
    InvalidTle,
    Infeasible,
    CorruptData,
    DetachedBuffer,
    SharedBuffer,
    InvalidWeight,
    ZeroTotalWeight,
    NoClients,
    Decayed,
    EpochOutOfRange,
    InvalidPlacement,
    Busy,
    DuplicateTransfer,
    ImplausibleState,
    SearchLimit,
    OutOfMemory,
    Internal,
}

impl Code {
    /// The string exposed to JavaScript as `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArg => "ERR_INVALID_ARG",
            Code::LengthMismatch => "ERR_LENGTH_MISMATCH",
            Code::NonFinite => "ERR_NON_FINITE",
            Code::UnknownNode => "ERR_UNKNOWN_NODE",
            Code::DuplicateNode => "ERR_DUPLICATE_NODE",
            Code::InvalidTle => "ERR_INVALID_TLE",
            Code::Infeasible => "ERR_INFEASIBLE",
            Code::CorruptData => "ERR_CORRUPT_DATA",
            Code::DetachedBuffer => "ERR_DETACHED_BUFFER",
            Code::SharedBuffer => "ERR_SHARED_BUFFER_UNSUPPORTED",
            Code::InvalidWeight => "ERR_INVALID_WEIGHT",
            Code::ZeroTotalWeight => "ERR_ZERO_TOTAL_WEIGHT",
            Code::NoClients => "ERR_NO_CLIENTS",
            Code::Decayed => "ERR_DECAYED",
            Code::EpochOutOfRange => "ERR_EPOCH_OUT_OF_RANGE",
            Code::InvalidPlacement => "ERR_INVALID_PLACEMENT",
            Code::Busy => "ERR_BUSY",
            Code::DuplicateTransfer => "ERR_DUPLICATE_TRANSFER",
            Code::ImplausibleState => "ERR_IMPLAUSIBLE_STATE",
            Code::SearchLimit => "ERR_SEARCH_LIMIT",
            Code::OutOfMemory => "ERR_OUT_OF_MEMORY",
            Code::Internal => "ERR_INTERNAL",
        }
    }
}

/// An error from the core: a code and a human message.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
    pub fn invalid_arg(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArg, message)
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        Error::new(Code::CorruptData, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias for the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Fails with `ERR_NON_FINITE` naming the first index holding NaN or ±Inf.
pub fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    // Fast path: a sum of x*0 is NaN iff some x is NaN or infinite; vectorises well.
    let mut acc = 0.0f32;
    for chunk in values.chunks(4096) {
        acc += chunk.iter().fold(0.0f32, |a, &x| a + x * 0.0);
        if acc.is_nan() {
            break;
        }
    }
    if !acc.is_nan() {
        return Ok(());
    }
    let i = values.iter().position(|x| !x.is_finite()).unwrap_or(0);
    Err(Error::new(
        Code::NonFinite,
        format!("{name}[{i}] is {} (gradients must be finite)", values[i]),
    ))
}
