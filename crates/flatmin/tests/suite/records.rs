//! Optimizer state saved and loaded with Burn's burnpack records: a run that stops, saves and
//! resumes ends bitwise where an uninterrupted run ends.

use crate::common::*;
use flatmin::{BaseConfig, Combination, FriendlyConfig, SamConfig, SgdConfig, SwpConfig, SwpGranularity};

fn configs() -> Vec<SamConfig> {
    let sgdm = BaseConfig::Sgd(SgdConfig::new().with_momentum(0.9).with_weight_decay(5e-4));
    vec![
        SamConfig::preset("esam", sgdm.clone()).unwrap(),
        SamConfig::new(SamConfig::adam_base(1e-2, true))
            .with_friendly(Some(FriendlyConfig::new()))
            .with_combination(Combination::Wsam {
                gamma: 0.8,
                decoupled: true,
                max_norm: Some(1.0),
            }),
        SamConfig::new(sgdm).with_swp(Some(
            SwpConfig::new()
                .with_beta(0.5)
                .with_granularity(SwpGranularity::PerElement)
                .with_seed(9),
        )),
    ]
}

#[test]
fn save_load_resume_is_bitwise() {
    let dir = scratch("records");
    for config in configs() {
        let device = device();
        let data = Data::new(4, &device);
        let mut straight = config.clone().init().unwrap();
        let (_, full, _) = train(&mut straight, Mlp::new(1, &device), &data, 6, 0.05);

        let mut first = config.clone().init().unwrap();
        let (model, _, _) = train(&mut first, Mlp::new(1, &device), &data, 3, 0.05);
        let path = dir.join(format!("{}.bpk", rand_suffix(&config)));
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = config.clone().init().unwrap().load(&path, &device).unwrap();
        assert_eq!(resumed.steps(), 3);
        let (_, rest, _) = train(&mut resumed, model, &data, 3, 0.05);
        assert_eq!(full[3..].to_vec(), rest, "{config:?}");
    }
}

fn rand_suffix(config: &SamConfig) -> u64 {
    format!("{config:?}")
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
}

#[test]
fn bytes_round_trip_and_bad_records_are_errors() {
    let device = device();
    let data = Data::new(4, &device);
    let config = configs().remove(0);
    let mut optim = config.clone().init().unwrap();
    train(&mut optim, Mlp::new(1, &device), &data, 2, 0.05);
    let bytes = optim.to_bytes().unwrap();
    let loaded = config
        .clone()
        .init()
        .unwrap()
        .load_bytes(bytes.clone(), &device)
        .unwrap();
    assert_eq!(loaded.to_bytes().unwrap(), bytes);

    let garbage = config.clone().init().unwrap().load_bytes(vec![1, 2, 3, 4], &device);
    assert!(garbage.is_err());
    let missing = config
        .init()
        .unwrap()
        .load(std::env::temp_dir().join("flatmin-no-such-record.bpk"), &device);
    let msg = missing.err().unwrap().to_string();
    assert!(msg.contains("flatmin-no-such-record.bpk"), "{msg}");
}
