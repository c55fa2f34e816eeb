//! The Redis serialization protocol, as plain functions over bytes (no sockets, no
//! runtime): the server's request parser ([`request`]), the reply writer ([`reply`]) that
//! downgrades RESP3 replies for RESP2 clients, a decoder for replies ([`frame`]) used by
//! clients, and Redis's argument quoting ([`args`]) and number formats ([`num`]).

pub mod args;
pub mod frame;
pub mod num;
pub mod reply;
pub mod request;

pub use frame::Frame;
pub use reply::{encode_command, ReplyBuf};
pub use request::{parse_i64, Argv, Limits, ProtocolError, RequestParser};
