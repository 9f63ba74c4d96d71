//! Optimizer state saved and loaded with Burn's burnpack records: a run that stops, saves and
//! resumes ends bitwise where an uninterrupted run ends, for every preset; a record that does
//! not fit the model, or is not a record, is an error.

use crate::common::*;
use burn::module::{Module, Param};
use burn::tensor::Tensor;
use flatmin::{
    BaseConfig, FriendlyConfig, RecordError, SamConfig, SamRecord, SgdBaseConfig, SwpConfig, SwpGranularity, WsamConfig,
};

fn configs() -> Vec<SamConfig> {
    let sgdm = BaseConfig::Sgd(SgdBaseConfig::new().with_momentum(0.9).with_weight_decay(5e-4));
    vec![
        SamConfig::preset("esam", sgdm.clone()).unwrap(),
        SamConfig::new(SamConfig::adam_base(1e-2, true))
            .with_member(FriendlyConfig::new())
            .with_member(
                WsamConfig::new()
                    .with_gamma(0.8)
                    .with_decoupled(true)
                    .with_max_norm(Some(1.0)),
            ),
        SamConfig::new(sgdm).with_member(
            SwpConfig::new()
                .with_beta(0.5)
                .with_granularity(SwpGranularity::PerElement)
                .with_seed(9),
        ),
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
        first.record().save(&path).unwrap();
        drop(first);
        let record = SamRecord::load(&path, &device).unwrap();
        let mut resumed = config.clone().init().unwrap().load_record(record, &model).unwrap();
        assert_eq!(resumed.steps(), 3);
        let (_, rest, _) = train(&mut resumed, model, &data, 3, 0.05);
        assert_eq!(bits(&full[3..]), bits(&rest), "{config:?}");
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
    let (model, _, _) = train(&mut optim, Mlp::new(1, &device), &data, 2, 0.05);
    let bytes = optim.record().to_bytes().unwrap();
    let record = SamRecord::from_bytes(bytes.clone(), &device).unwrap();
    let loaded = config.clone().init().unwrap().load_record(record, &model).unwrap();
    assert_eq!(loaded.record().to_bytes().unwrap(), bytes);

    let garbage = SamRecord::from_bytes(vec![1, 2, 3, 4], &device);
    assert!(garbage.is_err());
    let missing = SamRecord::load(std::env::temp_dir().join("flatmin-no-such-record.bpk"), &device);
    let msg = missing.err().unwrap().to_string();
    assert!(msg.contains("flatmin-no-such-record.bpk"), "{msg}");
}

/// The MLP's parameter paths with other shapes (8 hidden units instead of 16).
#[derive(Module, Debug)]
struct NarrowMlp {
    w1: Param<Tensor<2>>,
    b1: Param<Tensor<1>>,
    w2: Param<Tensor<2>>,
    b2: Param<Tensor<1>>,
}

impl NarrowMlp {
    fn new(device: &burn::tensor::Device) -> Self {
        Self {
            w1: Param::from_tensor(mat(&[0.1; 8 * 6], [8, 6], device)),
            b1: Param::from_tensor(vec1(&[0.0; 8], device)),
            w2: Param::from_tensor(mat(&[0.1; 3 * 8], [3, 8], device)),
            b2: Param::from_tensor(vec1(&[0.0; 3], device)),
        }
    }
}

/// Records carry every member: for every preset, 3 steps, `record` → bytes → a record again → a
/// fresh optimizer → 4 more steps end bit for bit where 7 uninterrupted steps end (on a fixed
/// batch sequence). The same record loaded for a model of another shape, or of other parameter
/// paths, is an error, not a panic.
#[test]
fn every_preset_resumes_bit_for_bit_from_a_record() {
    const LR: f64 = 0.05;
    let device = device();
    let batches = Batches::new(3, 3, &device);
    for name in flatmin::PRESETS {
        let config = SamConfig::preset(name, SamConfig::sgd_base(0.9, 5e-4))
            .unwrap()
            .for_run(7, 72);
        let mut straight = config.init().unwrap();
        let (_, full, _) = train_on(&mut straight, Mlp::new(8, &device), &batches, 0, 7, LR);

        let mut first = config.init().unwrap();
        let (model, _, _) = train_on(&mut first, Mlp::new(8, &device), &batches, 0, 3, LR);
        let bytes = first.record().to_bytes().unwrap();
        drop(first);
        let record = SamRecord::from_bytes(bytes, &device).unwrap();
        assert_eq!(record.scalars.get("steps"), Some(&3), "{name}");
        assert!(!record.tensors.is_empty(), "{name}: per-parameter state");

        let other_shape = config
            .init()
            .unwrap()
            .load_record(record.clone(), &NarrowMlp::new(&device));
        assert!(
            matches!(other_shape, Err(RecordError::Mismatch(_))),
            "{name}: {:?}",
            other_shape.err()
        );
        let other_paths = config
            .init()
            .unwrap()
            .load_record(record.clone(), &Quadratic::new(&[1.0; 4], &device));
        assert!(
            matches!(&other_paths, Err(RecordError::Mismatch(m)) if m.contains("no such parameter")),
            "{name}: {:?}",
            other_paths.err()
        );

        let mut resumed = config.init().unwrap().load_record(record, &model).unwrap();
        assert_eq!(resumed.steps(), 3);
        let (_, rest, _) = train_on(&mut resumed, model, &batches, 3, 4, LR);
        assert_eq!(bits(&full[3..]), bits(&rest), "{name}");
    }
    // Not a record at all.
    for garbage in [Vec::new(), vec![1, 2, 3, 4], b"flatmin.sam-state.v1".to_vec()] {
        assert!(SamRecord::from_bytes(garbage, &device).is_err());
    }
}

/// A record of one configuration loaded into another that keeps other state is an error naming
/// the tensor left over (LookSAM's `g_v`, F-SAM's average, bSAM's precision into SAM) or the
/// entry missing (AE-SAM's statistics, ESAM's generator from a SAM record).
#[test]
fn a_record_of_another_configuration_is_an_error() {
    let device = device();
    let batches = Batches::new(3, 3, &device);
    let base = SamConfig::sgd_base(0.9, 5e-4);
    for (from, into, named) in [
        ("looksam", "sam", "looksam/"),
        ("fsam", "sam", "ema/"),
        ("bsam", "sam", "precision"),
        ("sam", "ae-sam", "ae/mean"),
        ("sam", "esam", "rng/0"),
    ] {
        let config = SamConfig::preset(from, base.clone()).unwrap().for_run(7, 72);
        let mut optim = config.init().unwrap();
        let (model, _, _) = train_on(&mut optim, Mlp::new(8, &device), &batches, 0, 6, 0.05);
        let target = SamConfig::preset(into, base.clone()).unwrap().for_run(7, 72);
        match target.init().unwrap().load_record(optim.record(), &model) {
            Err(RecordError::Mismatch(m)) => assert!(m.contains(named), "{from} into {into}: {m}"),
            Err(e) => panic!("{from} into {into}: {e}"),
            Ok(_) => panic!("{from} into {into}: loaded"),
        }
    }
}
