//! Sockets: creation with the options every probe needs, and `recvmsg` with its control
//! messages (kernel receive timestamps, TTL/hop limit, TOS/traffic class, ICMP errors).

pub mod cmsg;
pub mod glob;
pub mod privilege;
pub mod socket;

pub use cmsg::{Ancillary, ExtendedError};
pub use socket::{recv_msg, IcmpSocketMode, Received};
