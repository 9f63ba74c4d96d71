//! Symmetric label noise, for the experiments where SAM's robustness to wrong labels is measured.
//!
//! Definition used here (the "flip to another class" variant): each label independently, with
//! probability `rate`, is replaced by a label drawn uniformly from the `classes - 1` OTHER
//! classes. A replaced label therefore always changes, so the realised fraction of wrong labels
//! is `rate` in expectation (not `rate × (classes - 1) / classes`, as with the variant that
//! redraws from all classes). The draws come from [`flatmin::Rng`] seeded with `seed`, so the
//! same labels, rate and seed always give the same noisy labels.

use flatmin::Rng;

/// Why label noise could not be applied. Nothing is changed when it is returned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LabelNoiseError {
    /// The rate is not a probability (outside [0, 1], or NaN).
    #[error("label noise rate {rate} is not in [0, 1]")]
    RateOutOfRange {
        /// The rate asked for.
        rate: f64,
    },
    /// Fewer than two classes (no other class to flip to), or more than `u8` labels can name.
    #[error("label noise needs 2 to 256 classes (byte labels, at least one other class), got {classes}")]
    UnsupportedClassCount {
        /// The number of classes given.
        classes: usize,
    },
    /// A label is not below the number of classes, so "the other classes" are undefined.
    #[error("label noise: label {label} at index {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Its index in the slice.
        index: usize,
        /// The label.
        label: u8,
        /// The number of classes given.
        classes: usize,
    },
}

/// A uniform integer in `0..bound` (`bound > 0`), without modulo bias.
fn uniform_below(rng: &mut Rng, bound: u64) -> u64 {
    // Draws landing in the incomplete last block of `bound` values are redrawn.
    let limit = u64::MAX - u64::MAX % bound;
    loop {
        let draw = rng.next_u64();
        if draw < limit {
            return draw % bound;
        }
    }
}

/// Applies symmetric label noise in place (see the module documentation for the exact
/// definition) and returns how many labels were changed. `rate` 0 changes nothing (and still
/// validates the input); `rate` 1 changes every label to a different class.
pub fn symmetric_label_noise(
    labels: &mut [u8],
    classes: usize,
    rate: f64,
    seed: u64,
) -> Result<usize, LabelNoiseError> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(LabelNoiseError::RateOutOfRange { rate });
    }
    if !(2..=256).contains(&classes) {
        return Err(LabelNoiseError::UnsupportedClassCount { classes });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, label)| usize::from(**label) >= classes)
    {
        return Err(LabelNoiseError::LabelOutOfRange { index, label, classes });
    }
    let mut rng = Rng::seeded(seed);
    let others = classes as u64 - 1;
    let mut changed = 0;
    for label in labels.iter_mut() {
        if rng.bernoulli(rate) {
            // Draw among the classes - 1 others: values at or above the current label shift up by
            // one, which skips it. The result is below `classes` <= 256, so it always fits a u8.
            let draw = uniform_below(&mut rng, others);
            let skipped = if draw >= u64::from(*label) { draw + 1 } else { draw };
            *label = u8::try_from(skipped).unwrap_or(*label);
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycling_labels(count: usize, classes: usize) -> Vec<u8> {
        (0..count).map(|i| (i % classes) as u8).collect()
    }

    #[test]
    fn rate_zero_changes_nothing() {
        let original = cycling_labels(1000, 10);
        let mut labels = original.clone();
        assert_eq!(symmetric_label_noise(&mut labels, 10, 0.0, 3), Ok(0));
        assert_eq!(labels, original);
    }

    #[test]
    fn rate_one_moves_every_label_to_another_valid_class() {
        let original = cycling_labels(5000, 10);
        let mut labels = original.clone();
        assert_eq!(symmetric_label_noise(&mut labels, 10, 1.0, 4), Ok(5000));
        for (before, after) in original.iter().zip(&labels) {
            assert_ne!(before, after);
            assert!(*after < 10);
        }
    }

    #[test]
    fn rate_one_with_two_classes_swaps_them() {
        let mut labels = vec![0, 1, 1, 0];
        assert_eq!(symmetric_label_noise(&mut labels, 2, 1.0, 9), Ok(4));
        assert_eq!(labels, vec![1, 0, 0, 1]);
    }

    #[test]
    fn realised_rate_and_spread_over_other_classes() {
        let classes = 10;
        let original = cycling_labels(10_000, classes);
        let mut labels = original.clone();
        let changed = symmetric_label_noise(&mut labels, classes, 0.4, 2024).expect("valid input");
        let differing = original.iter().zip(&labels).filter(|(a, b)| a != b).count();
        assert_eq!(
            changed, differing,
            "the count returned is the number of labels that differ"
        );
        let realised = changed as f64 / 10_000.0;
        assert!((realised - 0.4).abs() <= 0.02, "realised rate {realised}");

        // The new classes of the flipped labels, relative to the old one (1..classes), are
        // uniform: each of the 9 offsets expects changed / 9 ≈ 444; 5 standard deviations ≈ 100.
        let mut by_offset = [0usize; 10];
        for (before, after) in original.iter().zip(&labels).filter(|(a, b)| a != b) {
            by_offset[(usize::from(*after) + classes - usize::from(*before)) % classes] += 1;
        }
        assert_eq!(by_offset[0], 0);
        let expected = changed as f64 / 9.0;
        for (offset, &count) in by_offset.iter().enumerate().skip(1) {
            assert!(
                (count as f64 - expected).abs() < 100.0,
                "offset {offset}: {count} flips, expected about {expected}"
            );
        }
        // And so are the target classes themselves, over all source classes.
        let mut by_target = [0usize; 10];
        for (_, after) in original.iter().zip(&labels).filter(|(a, b)| a != b) {
            by_target[usize::from(*after)] += 1;
        }
        for (class, &count) in by_target.iter().enumerate() {
            assert!(
                (count as f64 - changed as f64 / 10.0).abs() < 100.0,
                "class {class}: {count} flips into it"
            );
        }
    }

    #[test]
    fn same_seed_same_result_other_seed_other_result() {
        let original = cycling_labels(2000, 10);
        let noisy = |seed| {
            let mut labels = original.clone();
            symmetric_label_noise(&mut labels, 10, 0.3, seed).expect("valid input");
            labels
        };
        assert_eq!(noisy(11), noisy(11));
        assert_ne!(noisy(11), noisy(12));
    }

    #[test]
    fn invalid_input_is_refused_and_left_untouched() {
        let original = vec![0, 3, 9];
        for rate in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let mut labels = original.clone();
            let error = symmetric_label_noise(&mut labels, 10, rate, 1).expect_err("rate must be refused");
            assert!(matches!(error, LabelNoiseError::RateOutOfRange { .. }), "{error:?}");
            assert!(error.to_string().contains("not in [0, 1]"), "{error}");
            assert_eq!(labels, original);
        }
        let mut labels = original.clone();
        assert_eq!(
            symmetric_label_noise(&mut labels, 1, 0.5, 1),
            Err(LabelNoiseError::UnsupportedClassCount { classes: 1 })
        );
        assert_eq!(
            symmetric_label_noise(&mut labels, 300, 0.5, 1),
            Err(LabelNoiseError::UnsupportedClassCount { classes: 300 })
        );
        let mut labels = original.clone();
        let error = symmetric_label_noise(&mut labels, 5, 0.5, 1).expect_err("label 9 of 5 classes");
        assert_eq!(
            error,
            LabelNoiseError::LabelOutOfRange {
                index: 2,
                label: 9,
                classes: 5
            }
        );
        assert!(error.to_string().contains("label 9 at index 2"), "{error}");
        assert_eq!(labels, original);
    }
}
