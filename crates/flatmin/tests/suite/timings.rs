//! `Sam::last_timings` splits a one-call step's passes into its phases: the first pass, ESAM's
//! selection forward and the second pass, which add up to the passes' time; a phase the
//! variant does not have takes no time.

use crate::common::*;
use flatmin::{SamConfig, StepTimings};

fn timings_of(preset: &str) -> StepTimings {
    timings_with(preset, false)
}

fn timings_with(preset: &str, synced: bool) -> StepTimings {
    let device = device();
    let data = Data::new(3, &device);
    let mut optim = SamConfig::preset(preset, SamConfig::sgd_base(0.9, 5e-4))
        .unwrap()
        .init()
        .unwrap();
    optim.set_synced_timings(synced);
    train(&mut optim, Mlp::new(2, &device), &data, 1, 0.1);
    optim.last_timings()
}

#[test]
fn the_phases_add_up_to_the_passes_and_absent_phases_take_no_time() {
    for preset in ["sgd", "sam", "esam"] {
        let t = timings_of(preset);
        let sum = t.first_pass + t.selection + t.second_pass;
        assert!((sum - t.passes).abs() < 1e-9, "{preset}: {t:?}");
        assert!(t.passes <= t.total, "{preset}: {t:?}");
        assert!(t.first_pass > 0.0, "{preset}: {t:?}");
        match preset {
            "sgd" => assert!(t.selection == 0.0 && t.second_pass == 0.0, "{t:?}"),
            "sam" => assert!(t.selection == 0.0 && t.second_pass > 0.0, "{t:?}"),
            _ => assert!(t.selection > 0.0 && t.second_pass > 0.0, "{t:?}"),
        }
    }
}

#[test]
fn synced_timings_split_the_step_the_same_way() {
    // Waiting for the device around each pass (a no-op wait on the CPU) keeps the split whole:
    // the phases add up to the passes, within the step.
    for preset in ["sgd", "sam", "esam"] {
        let t = timings_with(preset, true);
        let sum = t.first_pass + t.selection + t.second_pass;
        assert!((sum - t.passes).abs() < 1e-9, "{preset}: {t:?}");
        assert!(t.passes <= t.total && t.first_pass > 0.0, "{preset}: {t:?}");
        assert_eq!(t.second_pass > 0.0, preset != "sgd", "{preset}: {t:?}");
    }
}
