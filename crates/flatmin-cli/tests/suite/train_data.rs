//! The training data path: label noise on the training set only, at the requested rate.

use flatmin_lab::train::{TrainConfig, load_data};

#[test]
fn label_noise_hits_the_requested_rate_on_train_only() {
    let clean = load_data(&TrainConfig::default()).unwrap();
    for rate in [0.2, 0.4, 0.6, 0.8] {
        let config = TrainConfig {
            label_noise: rate,
            seed: 5,
            ..TrainConfig::default()
        };
        let noisy = load_data(&config).unwrap();
        let changed = clean
            .train
            .labels
            .iter()
            .zip(&noisy.train.labels)
            .filter(|(a, b)| a != b)
            .count();
        let realised = changed as f64 / clean.train.labels.len() as f64;
        assert!((realised - rate).abs() < 0.03, "rate {rate}: realised {realised}");
        assert_eq!(clean.test.labels, noisy.test.labels, "the test set stays clean");
        assert_eq!(clean.train.images, noisy.train.images);
        // Reproducible from the seed.
        assert_eq!(load_data(&config).unwrap().train.labels, noisy.train.labels);
    }
    let none = load_data(&TrainConfig {
        label_noise: 0.0,
        ..TrainConfig::default()
    })
    .unwrap();
    assert_eq!(none.train.labels, clean.train.labels);
}
