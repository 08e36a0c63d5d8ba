//! Shared helpers for the integration tests: the network lab (`lab`), background processes
//! read line by line (`process`), temporary directories (`temp`). Each test binary uses only a
//! subset of them, hence the blanket `dead_code` allowance.
#![allow(dead_code)]

pub mod lab;
pub mod process;
pub mod temp;
