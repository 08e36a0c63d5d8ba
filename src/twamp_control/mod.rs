//! TWAMP-Control (RFC 5357 3): what the control client (`ltwamp --control`) and the server
//! (`lreflect --twamp-control`) share above the message codec of
//! [`crate::wire::twamp_control`]: the keyed modes' cryptography ([`crypto`]) and the keys
//! file ([`keys`]).

pub mod crypto;
pub mod keys;
