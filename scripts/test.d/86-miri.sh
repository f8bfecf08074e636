#!/usr/bin/env bash
# pcnet-core's unit tests under Miri (nightly): undefined behaviour, out-of-bounds access,
# invalid values and arithmetic overflow in pcnet-core and in the libm code it runs.
# pcnet-core itself has no `unsafe` (`forbid(unsafe_code)`). libm's x86 `sqrt` is inline
# assembly, which Miri cannot run, so libm is built with its `force-soft-floats` feature
# (IEEE-exact software sqrt, the same results).
#
# A subset, to keep the step within a few minutes (Miri runs these tests some 1000x slower
# than a debug build): every test is run except those whose extra work under Miri is
# repetition of code the others already run: thousands of relaxation iterations (the
# divergence logic runs in tests/divergence.rs), every bit flip or thousands of random
# corruptions of a model (the reader's checks run in the malformed-model and round-trip
# tests), finite-difference sweeps that call `infer` once per parameter, sweeps that call
# `infer` once per parameter or input index and bad value (the finiteness proofs; every call without
# them runs the same proofs) or per fixture and iteration count (FixedPred's settled-layer
# skip, also run by fixed_pred_step_one_and_n_equal_depth_is_backprop), and the
# convolution/pooling comparisons over many shapes against naive loops.
#
# Miri by default perturbs the results of float operations Rust does not pin down (std's
# `exp`, `ln`, ... in the tests' closed-form expectations) by a few ulps; the tests compare
# to 1e-15, so floats are made deterministic.
set -euo pipefail
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-deterministic-floats}"
cargo +nightly miri setup >/dev/null
cargo +nightly miri test -p pcnet-core --lib --tests --features libm/force-soft-floats -- \
    --skip failed_steps_leave_the_model_untouched \
    --skip strict_divergence_is_reported_with_its_iteration \
    --skip bit_flip \
    --skip random_corruptions_behind_a_valid_crc_never_panic \
    --skip finite_differences \
    --skip central_differences \
    --skip f32_error_space_beats_belief_space \
    --skip fixed_pred_errors_follow_the_binomial_law \
    --skip strict_is_gradient_descent_on_its_energy \
    --skip tolerance_stops_early_and_matches_fixed_count \
    --skip non_finite_parameters_are_named_whether_proven_or_scanned \
    --skip non_finite_inputs_are_named_when_proven_from_the_first_op \
    --skip fixed_pred_step_one_skips_settled_layers_bit_for_bit \
    --skip kernels::tests::image::
