//! A network description, hyperparameters and data from arbitrary bytes, through every
//! algorithm and a learning step with every optimizer (see `pcnet_fuzz_harness::network`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pcnet_fuzz_harness::network(data));
