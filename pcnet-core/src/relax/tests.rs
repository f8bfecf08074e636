//! Unit tests of the relaxation schedule that need its internals (the schedule's public
//! behaviour is tested in pcnet-core/tests/schedule.rs).

use super::*;
use crate::{Activation, Layer, Loss, Targets};
use std::{vec, vec::Vec};

include!("../../tests/support/fixtures.rs");

/// FixedPred with step size 1 moves only the layer at the signal front (the layers behind
/// it have settled): the results, report included, are bit for bit those of moving every
/// layer the signal has reached, for every fixture, clamped and free input, and iteration
/// counts below, at and past the depth, with and without a tolerance. Other step sizes
/// take the general path either way (checked too).
#[test]
#[cfg(feature = "fixed-pred")]
fn fixed_pred_step_one_skips_settled_layers_bit_for_bit() {
    fn relax<const SKIP: bool>(
        fixture: &Fixture,
        settings: &Settings<'_, f64>,
    ) -> (Vec<u64>, Vec<u64>, Report<f64>) {
        let spec = fixture.spec();
        let batch = Batch::new(&fixture.inputs, fixture.targets());
        let rows = fixture.rows();
        let mut workspace = vec![0.0; spec.workspace_len(rows)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let lens = region_lens(&spec, rows);
        let used: usize = lens.iter().sum();
        let problem = Problem {
            backend: &Portable,
            spec,
            params: &fixture.params,
            rows,
            batch,
            settings,
        };
        let mut regions = Regions::split(&mut workspace[..used], lens);
        problem.feedforward(&mut regions);
        let top = activation_range(&spec, rows, spec.depth());
        problem.loss(&regions.vhat[top], regions.dldy);
        let report =
            fixed_pred::run::<SKIP, f64, Portable>(&problem, &mut regions, &mut updates).unwrap();
        let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let state = [&*regions.beliefs, &*regions.errors].concat();
        (bits(&updates), bits(&state), report)
    }
    for fixture in &fixtures() {
        let depth = fixture.spec().depth();
        for iterations in 1..=depth + 2 {
            for eta in [1.0, 0.5] {
                let base = Settings::fixed_pred(eta, iterations);
                for settings in [
                    base,
                    base.with_free_input(),
                    base.with_tolerance(1e-300),
                    base.with_tolerance(1e300),
                ] {
                    let skipping = relax::<true>(fixture, &settings);
                    let moving_all = relax::<false>(fixture, &settings);
                    assert_eq!(
                        skipping.0, moving_all.0,
                        "updates, n = {iterations}, eta {eta}"
                    );
                    assert_eq!(
                        skipping.1, moving_all.1,
                        "beliefs and errors, n = {iterations}"
                    );
                    assert_eq!(skipping.2, moving_all.2, "report, n = {iterations}");
                }
            }
        }
    }
}
