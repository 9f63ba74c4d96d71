//! The run's data: named datasets or the user's own, limits and label noise, and the
//! normalised tensors (with augmentation) that batches are cut from.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use flatmin::Rng;

use super::{config::*, error::*, report::*};
use crate::data::input::{self, InputOptions};
use crate::data::{self, Split};
use crate::models::InputShape;

/// Mixed into the seed for label noise, so the noise is independent of the other seeded draws.
const LABEL_NOISE_STREAM: u64 = 0x4e4f_4953_4500_0001;

/// The named datasets `--data` (alias `--dataset`) accepts; anything else is the path of the
/// user's data.
pub const DATASETS: [&str; 5] = ["fashion-mnist-subset", "fashion-mnist", "mnist", "cifar10", "cifar100"];

/// What `--data` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A dataset of the laboratory ([`DATASETS`]).
    Named(&'static str),
    /// The user's CSV file or image folder, read as `flatmin compare` reads it
    /// ([`crate::data::input::load`]).
    User(PathBuf),
}

/// Decides what `--data VALUE` names: one of [`DATASETS`] is that dataset (a folder of the same
/// name is then written `./NAME`); anything else is a path, which must exist. A value that is
/// neither is an error that lists the named datasets and says the path does not exist.
pub fn resolve_data(value: &str) -> Result<DataSource, TrainError> {
    if let Some(name) = DATASETS.iter().find(|d| **d == value) {
        return Ok(DataSource::Named(name));
    }
    let path = Path::new(value);
    if path.exists() {
        return Ok(DataSource::User(path.to_path_buf()));
    }
    let looks_like_path = value.contains(['/', '\\']) || path.extension().is_some();
    if looks_like_path {
        return fail(format!(
            "--data {value}: no such file or folder (expected a CSV file or an image folder)"
        ));
    }
    fail(format!(
        "--data `{value}`: not a named dataset (expected one of {}) and no file or folder of that name exists \
         (expected a CSV file or an image folder)",
        DATASETS.join(", ")
    ))
}

/// Loads the run's data, with label noise applied to the training labels.
pub fn load_data(config: &TrainConfig) -> Result<Split, TrainError> {
    load_data_recorded(config).map(|(split, _)| split)
}

/// [`load_data`], with the record of which data it is (for summary.json and the checkpoints).
pub(super) fn load_data_recorded(config: &TrainConfig) -> Result<(Split, DataRecord), TrainError> {
    let source = resolve_data(&config.dataset)?;
    let (mut split, kind, path, description) = match &source {
        DataSource::Named(name) => {
            refuse_reading_options(config, name)?;
            let split = load_named(config, name)?;
            let path = config
                .data_dir
                .as_deref()
                .map(std::path::absolute)
                .transpose()
                .ok()
                .flatten();
            let description = format!("the {name} dataset");
            (
                split,
                "named",
                path.filter(|_| *name != "fashion-mnist-subset"),
                description,
            )
        }
        DataSource::User(path) => {
            if let Some(dir) = &config.data_dir {
                return fail(format!(
                    "--data-dir {}: applies to the named datasets; --data {} is read as it is",
                    dir.display(),
                    path.display()
                ));
            }
            let loaded = input::load(path, &reading_options(config)?)?;
            if config.augment && loaded.split.train.features.is_some() {
                return fail("--augment crops and flips images: it does not apply to CSV features");
            }
            let kind = if path.is_dir() { "image-folder" } else { "csv" };
            (loaded.split, kind, std::path::absolute(path).ok(), loaded.description)
        }
    };
    limit_and_noise(config, &mut split)?;
    let record = DataRecord {
        kind: kind.into(),
        name: config.dataset.clone(),
        path,
        description,
        train: split.train.len(),
        test: split.test.len(),
        classes: split.train.classes,
    };
    Ok((split, record))
}

fn load_named(config: &TrainConfig, name: &str) -> Result<Split, TrainError> {
    let dir = || {
        config
            .data_dir
            .clone()
            .ok_or_else(|| TrainError::Invalid(format!("--data {name} needs --data-dir (see scripts/fetch-data)")))
    };
    Ok(match name {
        "fashion-mnist" => data::idx::load_fashion_mnist(&dir()?)?,
        "mnist" => data::idx::load_mnist(&dir()?)?,
        "cifar10" => data::cifar::load_cifar10(&dir()?)?,
        "cifar100" => data::cifar::load_cifar100(&dir()?)?,
        _ => data::embedded::fashion_mnist_subset()?,
    })
}

/// The reading options of user data, from the run's settings.
fn reading_options(config: &TrainConfig) -> Result<InputOptions, TrainError> {
    let image_size = config.image_size.as_deref().map(input::parse_image_size).transpose()?;
    Ok(InputOptions {
        image_size,
        channels: config.channels,
        label_column: config.label_column.clone(),
        test_fraction: config
            .test_fraction
            .unwrap_or(input::InputOptions::default().test_fraction),
        seed: config.split_seed.unwrap_or(0),
    })
}

/// The reading options apply to the user's data only: with a named dataset they are an error.
fn refuse_reading_options(config: &TrainConfig, name: &str) -> Result<(), TrainError> {
    let given = [
        ("--label-column", config.label_column.is_some()),
        ("--channels", config.channels.is_some()),
        ("--image-size", config.image_size.is_some()),
        ("--test-fraction", config.test_fraction.is_some()),
        ("--split-seed", config.split_seed.is_some()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((flag, _)) => fail(format!(
            "{flag}: applies to the user's data (--data PATH), not to the named dataset {name}"
        )),
        None => Ok(()),
    }
}

/// Applies the run's `--train-limit`, `--test-limit` and `--label-noise` to data already read
/// (what [`load_data`] does after reading; `flatmin compare` reads the user's data itself).
pub fn limit_and_noise(config: &TrainConfig, split: &mut Split) -> Result<(), TrainError> {
    limit(&mut split.train, config.train_limit);
    limit(&mut split.test, config.test_limit);
    if config.label_noise > 0.0 {
        let classes = split.train.classes;
        data::noise::symmetric_label_noise(
            &mut split.train.labels,
            classes,
            config.label_noise,
            config.seed ^ LABEL_NOISE_STREAM,
        )
        .map_err(|e| TrainError::Invalid(e.to_string()))?;
    }
    Ok(())
}

pub(super) fn limit(set: &mut data::Dataset, n: Option<usize>) {
    if let Some(n) = n.filter(|&n| n < set.len()) {
        let per = set.image_len();
        set.images.truncate(n * per);
        if let Some(f) = set.features.as_mut() {
            f.0.truncate(n * per);
        }
        set.labels.truncate(n);
    }
}

/// A dataset as normalised `f32` images, ready to batch.
pub(crate) struct Tensors {
    /// A black pixel of each channel, normalised (the padding of random crops).
    black: Vec<f32>,
    pixels: Vec<f32>,
    labels: Vec<i64>,
    shape: InputShape,
}

impl Tensors {
    pub(crate) fn new(set: &data::Dataset, mean: &[f64], std: &[f64]) -> Self {
        let plane = set.height * set.width;
        let pixels = match &set.features {
            // Features are standardised in f64, then rounded once (see data::csv).
            Some(f) => {
                f.0.iter()
                    .enumerate()
                    .map(|(i, &v)| ((v - mean[i % set.channels]) / std[i % set.channels]) as f32)
                    .collect()
            }
            None => set
                .images
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let c = (i / plane) % set.channels;
                    (p as f32 / 255.0 - mean[c] as f32) / std[c] as f32
                })
                .collect(),
        };
        Self {
            black: mean.iter().zip(std).map(|(&m, &s)| -(m as f32) / s as f32).collect(),
            pixels,
            labels: set.labels.iter().map(|&l| l as i64).collect(),
            shape: InputShape {
                channels: set.channels,
                height: set.height,
                width: set.width,
                classes: set.classes,
            },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    pub(crate) fn shape(&self) -> InputShape {
        self.shape
    }

    pub(crate) fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        self.batch_with(rows, device, None)
    }

    /// A batch, randomly cropped (4-pixel zero padding) and flipped when `augment` holds a
    /// generator: the draws come from it alone, so a resumed run repeats them exactly.
    pub(crate) fn batch_with(
        &self,
        rows: &[usize],
        device: &Device,
        mut augment: Option<&mut Rng>,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let per = self.shape.channels * self.shape.height * self.shape.width;
        let mut x = Vec::with_capacity(rows.len() * per);
        for &r in rows {
            let image = &self.pixels[r * per..(r + 1) * per];
            match augment.as_deref_mut() {
                None => x.extend_from_slice(image),
                Some(rng) => self.crop_flip(image, rng, &mut x),
            }
        }
        let s = self.shape;
        let images = Tensor::from_data(TensorData::new(x, [rows.len(), s.channels, s.height, s.width]), device);
        let labels = rows.iter().map(|&r| self.labels[r]).collect::<Vec<_>>();
        let labels = Tensor::from_data(TensorData::new(labels, [rows.len()]), device);
        (images, labels)
    }
}

impl Tensors {
    /// Appends `image` shifted by up to 4 pixels each way (what falls outside is the zero
    /// padding: black, normalised) and mirrored with probability ½.
    fn crop_flip(&self, image: &[f32], rng: &mut Rng, out: &mut Vec<f32>) {
        let InputShape {
            channels,
            height,
            width,
            ..
        } = self.shape;
        let dy = (rng.next_u64() % 9) as isize - 4;
        let dx = (rng.next_u64() % 9) as isize - 4;
        let flip = rng.bernoulli(0.5);
        for c in 0..channels {
            for y in 0..height {
                for x in 0..width {
                    let sx = if flip { width - 1 - x } else { x } as isize + dx;
                    let sy = y as isize + dy;
                    let inside = sx >= 0 && sy >= 0 && (sx as usize) < width && (sy as usize) < height;
                    out.push(if inside {
                        image[c * height * width + sy as usize * width + sx as usize]
                    } else {
                        self.black[c]
                    });
                }
            }
        }
    }
}

/// Per-channel mean and standard deviation of the training images (in [0, 1] units), or of each
/// feature of a feature dataset (two passes in f64; a constant feature gets a deviation of 1).
pub(crate) fn channel_stats(set: &data::Dataset) -> (Vec<f64>, Vec<f64>) {
    if let Some(f) = &set.features {
        let (k, n) = (set.channels, set.len().max(1) as f64);
        let mut mean = vec![0f64; k];
        f.0.iter().enumerate().for_each(|(i, v)| mean[i % k] += v / n);
        let mut var = vec![0f64; k];
        f.0.iter()
            .enumerate()
            .for_each(|(i, v)| var[i % k] += (v - mean[i % k]).powi(2) / n);
        let std = var.iter().map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 }).collect();
        return (mean, std);
    }
    let plane = set.height * set.width;
    let mut sum = vec![0f64; set.channels];
    let mut sq = vec![0f64; set.channels];
    for (i, &p) in set.images.iter().enumerate() {
        let c = (i / plane) % set.channels;
        let v = p as f64 / 255.0;
        sum[c] += v;
        sq[c] += v * v;
    }
    let n = (set.len() * plane).max(1) as f64;
    // Rounded to f32 as they always were, so that image runs stay bitwise what they were.
    let mean: Vec<f64> = sum.iter().map(|s| (s / n) as f32 as f64).collect();
    let std: Vec<f64> = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| ((q / n - (s / n).powi(2)).max(1e-12).sqrt()) as f32 as f64)
        .collect();
    (mean, std)
}
