//! Shared helpers for the integration tests. Each test binary uses only a
//! subset of them, hence the blanket `dead_code` allowance.
#![allow(dead_code)]

pub mod lab;
