//! Library side of the `pc-bench` program: the Torch2PC reference-case runner, shared by
//! the command line and the test suite.

pub mod models;
pub mod reproduce;
pub mod speed;
