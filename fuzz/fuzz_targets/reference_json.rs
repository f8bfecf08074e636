//! See `pcnet_fuzz_harness::parsers` for what this target decodes and the invariants it asserts.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pcnet_fuzz_harness::reference_json(data));
