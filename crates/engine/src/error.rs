//! Command errors with Redis's exact reply texts (clients match on them).

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    WrongType,
    Syntax,
    NotInteger,
    NotFloat,
    NoSuchKey,
    OutOfRange,
    /// A complete error line: code and message (`ERR …`, `BUSYKEY …`).
    Msg(Cow<'static, str>),
}

pub type CmdResult = Result<(), CmdError>;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

impl CmdError {
    pub fn text(&self) -> &str {
        match self {
            CmdError::WrongType => WRONGTYPE,
            CmdError::Syntax => "ERR syntax error",
            CmdError::NotInteger => "ERR value is not an integer or out of range",
            CmdError::NotFloat => "ERR value is not a valid float",
            CmdError::NoSuchKey => "ERR no such key",
            CmdError::OutOfRange => "ERR index out of range",
            CmdError::Msg(s) => s,
        }
    }

    /// An `ERR`-coded error from a static message.
    pub fn err(msg: &'static str) -> CmdError {
        CmdError::Msg(Cow::Borrowed(msg))
    }

    /// An error line built at runtime; it must start with its code.
    pub fn msg(s: String) -> CmdError {
        CmdError::Msg(Cow::Owned(s))
    }
}

/// Shorthand: `Err(CmdError::err("ERR …"))`.
pub fn fail<T>(msg: &'static str) -> Result<T, CmdError> {
    Err(CmdError::err(msg))
}
