//! A network description, hyperparameters and data from arbitrary bytes, through every
//! algorithm and a learning step with every optimizer (see `pc_tests::harness::network`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pc_tests::harness::network(data));
