//! What `flatmin compare` is asked to do, resolved against the data and checked ([`Plan`]): the
//! design ([`SplitDesign`]), every training run of it ([`RunSpec`]) with its split, and the
//! validation split the ρ search carves from a run's training part.

use std::path::PathBuf;

use serde::Serialize;

use super::{CompareArgs, CompareError, DEFAULT_TEST_FRACTION, DesignChoice};
use crate::data::input::{self, InputOptions, Loaded};
use crate::data::{Dataset, Split, split};
use crate::train::TrainConfig;

/// Mixed into the split seed for the validation split, so it is independent of the test split.
const VALIDATION_STREAM: u64 = 0x5641_4c49_4400_0001;

/// How the test sets were drawn, which decides the interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitDesign {
    /// J repetitions of stratified 2-fold cross-validation: each seed splits every class in
    /// halves A and B; every optimizer trains on A and is tested on B, and trains on B and is
    /// tested on A (the same halves for every optimizer at that seed).
    TwoFold {
        /// Repetitions (the seeds).
        repetitions: usize,
    },
    /// Each seed its own stratified split, shared by every optimizer at that seed.
    PerSeed {
        /// The fraction of each class held out for testing.
        test_fraction: f64,
    },
    /// One test set for every seed: the user's `test/` folder, or `--split-seed`.
    Fixed {
        /// Why it is fixed, for the report.
        why: String,
    },
}

impl SplitDesign {
    /// The design's name, as `--design` takes it: "cv2", "splits" or "fixed".
    pub fn name(&self) -> &'static str {
        match self {
            Self::TwoFold { .. } => "cv2",
            Self::PerSeed { .. } => "splits",
            Self::Fixed { .. } => "fixed",
        }
    }

    /// Whether every seed draws its own split of the whole data (cv2 and splits).
    pub fn resamples(&self) -> bool {
        !matches!(self, Self::Fixed { .. })
    }
}

/// What `flatmin compare` is asked to do, resolved and checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The training configuration shared by every run (dataset, model, epochs, …).
    pub base: TrainConfig,
    /// Optimizers, the base first.
    pub optimizers: Vec<String>,
    /// Run seeds.
    pub seeds: Vec<u64>,
    /// ρ values to search.
    pub rho_search: Vec<f64>,
    /// Seeds of the search.
    pub search_seeds: Vec<u64>,
    /// Validation fraction.
    pub val_fraction: f64,
    /// Split seed.
    pub split_seed: u64,
    /// How the test sets are drawn.
    pub design: SplitDesign,
    /// Where the reports go.
    pub out: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
}

impl CompareArgs {
    /// Reads the data and resolves every setting; errors before any training.
    pub fn plan(&self) -> Result<(Plan, Loaded), CompareError> {
        let t = &self.train;
        let refuse = |given: bool, msg: &str| {
            if given {
                Err(CompareError::Flag(msg.into()))
            } else {
                Ok(())
            }
        };
        refuse(
            t.dataset.is_some() || t.data_dir.is_some(),
            "give the data with --data PATH (not --dataset or --data-dir)",
        )?;
        refuse(
            t.optimizer.is_some(),
            "use --optimizers (a list, the base first), not --optimizer",
        )?;
        refuse(
            t.resume.is_some() || t.compare_base,
            "--resume and --compare-base are not flags of compare",
        )?;
        refuse(
            t.hp.get("rho").is_some() && !self.rho_search.is_empty(),
            "give --rho or --rho-search, not both",
        )?;
        self.check_limits()?;
        for (i, o) in self.optimizers.iter().enumerate() {
            if self.optimizers[..i].contains(o) {
                return Err(CompareError::Flag(format!("--optimizers lists `{o}` twice")));
            }
        }
        if let Some(bad) = self.rho_search.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return Err(CompareError::Flag(format!(
                "--rho-search {bad}: expected finite values > 0"
            )));
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return Err(CompareError::Flag(format!(
                "--val-fraction {}: expected a fraction strictly between 0 and 1",
                self.val_fraction
            )));
        }
        let options = InputOptions {
            image_size: self.image_size.as_deref().map(input::parse_image_size).transpose()?,
            channels: self.channels,
            label_column: self.label_column.clone(),
            test_fraction: self.test_fraction.unwrap_or(DEFAULT_TEST_FRACTION),
            seed: self.split_seed.unwrap_or(0),
        };
        // Flags that contradict the design asked for, before the data is read.
        match (self.design, self.split_seed, self.test_fraction) {
            (Some(DesignChoice::Cv2), Some(_), _) | (Some(DesignChoice::Splits), Some(_), _) => {
                return Err(CompareError::Flag(format!(
                    "--split-seed fixes one test split: it is --design fixed, not --design {}",
                    if self.design == Some(DesignChoice::Cv2) {
                        "cv2"
                    } else {
                        "splits"
                    }
                )));
            }
            (Some(DesignChoice::Cv2), _, Some(f)) => {
                return Err(CompareError::Flag(format!(
                    "--test-fraction {f}: --design cv2 tests on halves (every example once per repetition); give \
                     --design splits to hold out a fraction per seed"
                )));
            }
            _ => {}
        }
        let mut loaded = input::load(&self.data, &options)?;
        let test_fraction = options.test_fraction;
        let design = match (loaded.came_split, self.design, self.split_seed, self.test_fraction) {
            (true, Some(DesignChoice::Cv2 | DesignChoice::Splits), ..) => {
                return Err(CompareError::Flag(format!(
                    "--design {}: {} has its own train/ and test/ folders, so its test set is fixed (--design \
                     fixed); to resample, put every class's images in one folder",
                    self.design
                        .map_or("", |d| if d == DesignChoice::Cv2 { "cv2" } else { "splits" }),
                    self.data.display()
                )));
            }
            (true, ..) => SplitDesign::Fixed {
                why: "the data's own train/ and test/ folders".into(),
            },
            (false, Some(DesignChoice::Fixed), None, _) => SplitDesign::Fixed {
                why: "--design fixed, split seed 0".into(),
            },
            (false, Some(DesignChoice::Fixed) | None, Some(seed), _) => SplitDesign::Fixed {
                why: format!("--split-seed {seed}"),
            },
            (false, Some(DesignChoice::Splits), ..) | (false, None, None, Some(_)) => {
                SplitDesign::PerSeed { test_fraction }
            }
            (false, Some(DesignChoice::Cv2), ..) | (false, None, None, None) => SplitDesign::TwoFold {
                repetitions: self.seeds as usize,
            },
        };
        match design {
            SplitDesign::PerSeed { .. } => {
                // The loader made one split; the runs draw their own, of the same sizes.
                loaded.description = loaded
                    .description
                    .replace("(a seeded stratified split,", "(a new stratified split per seed,");
            }
            SplitDesign::TwoFold { .. } => {
                // The loader made one split; every repetition splits the whole data in halves.
                let noun = if loaded.split.train.features.is_some() {
                    "rows"
                } else {
                    "images"
                };
                let was = input::split_account(&loaded.split, noun, Some(test_fraction));
                let now = format!(
                    "{} classes, {} {noun} (each repetition splits every class in halves)",
                    loaded.split.train.classes,
                    loaded.split.train.len() + loaded.split.test.len()
                );
                loaded.description = loaded.description.replace(&was, &now);
            }
            SplitDesign::Fixed { .. } => {}
        }
        if design.resamples() && self.search_seeds.is_some() {
            return Err(CompareError::Flag(format!(
                "--search-seeds applies to a fixed split (--split-seed, or train/ and test/ folders): with {}, each \
                 {} searches ρ on its own training part",
                if matches!(design, SplitDesign::TwoFold { .. }) {
                    "2-fold cross-validation"
                } else {
                    "a split per seed"
                },
                if matches!(design, SplitDesign::TwoFold { .. }) {
                    "fold"
                } else {
                    "seed"
                }
            )));
        }
        let mut base = t.config()?;
        let set = &loaded.split.train;
        let features = set.features.is_some();
        let explicit_model = t.model.is_some() || t.config.is_some() || t.preset.is_some();
        if !explicit_model {
            base.model = if features || set.height < 4 || set.width < 4 {
                "mlp"
            } else {
                "cnn"
            }
            .into();
        }
        if features && base.model != "mlp" {
            return Err(CompareError::Flag(format!(
                "--model {}: a CSV's features train an MLP (--model mlp)",
                base.model
            )));
        }
        if features && base.augment {
            return Err(CompareError::Flag(
                "--augment crops and flips images: it does not apply to CSV features".into(),
            ));
        }
        base.dataset = self
            .data
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.data.display().to_string());
        base.data_dir = Some(self.data.clone());
        let first = base.seed;
        let seeds: Vec<u64> = (0..self.seeds).map(|i| first.wrapping_add(i)).collect();
        let search_seeds = seeds[..self.search_seeds.unwrap_or(self.seeds).clamp(1, self.seeds) as usize].to_vec();
        let plan = Plan {
            base,
            optimizers: self.optimizers.clone(),
            seeds,
            rho_search: self.rho_search.clone(),
            search_seeds,
            val_fraction: self.val_fraction,
            split_seed: self.split_seed.unwrap_or(0),
            design,
            out: t.out.clone(),
            quiet: t.quiet,
        };
        for o in &plan.optimizers {
            plan.config(o, None, 0)?.check()?;
        }
        Ok((plan, loaded))
    }
}

/// Mixed with a run seed to draw that seed's split, so splits and training seeds stay independent.
const SPLIT_STREAM: u64 = 0x5350_4c49_5400_0002;

impl Plan {
    /// The configuration of one run: `optimizer` (the base alone keeps none of the method flags),
    /// with ρ = `rho` if given, at `seed`.
    pub fn config(&self, optimizer: &str, rho: Option<f64>, seed: u64) -> Result<TrainConfig, CompareError> {
        let mut c = self.base.clone();
        c.optimizer = optimizer.to_string();
        c.seed = seed;
        if optimizer == "sgd" {
            c.hp = Default::default();
        } else if let Some(rho) = rho {
            c.hp.set("rho", rho).map_err(CompareError::Flag)?;
        }
        Ok(c)
    }

    /// Whether `optimizer` has a ρ (every preset but the base alone).
    pub(super) fn has_rho(&self, optimizer: &str) -> bool {
        optimizer != "sgd"
    }

    /// The train/test split of run seed `seed`: its own stratified split of the whole data with a
    /// split per seed, else the one fixed split (with cv2: [`Plan::split_of`]); then
    /// `--train-limit`/`--test-limit`.
    pub fn split_for(&self, loaded: &Split, pool: Option<&Dataset>, seed: u64) -> Split {
        match (&self.design, pool) {
            (SplitDesign::PerSeed { test_fraction }, Some(pool)) => split::stratified(
                pool,
                *test_fraction,
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ SPLIT_STREAM,
            ),
            _ => loaded.clone(),
        }
    }

    /// Every training run of one optimizer, in order: one per seed, or with cv2 two per seed
    /// (its repetition's fold A→B, then B→A, with training seeds 2s and 2s + 1).
    pub fn runs(&self) -> Vec<RunSpec> {
        match self.design {
            SplitDesign::TwoFold { .. } => self
                .seeds
                .iter()
                .flat_map(|&seed| {
                    (0..2u8).map(move |fold| RunSpec {
                        seed,
                        training_seed: seed.wrapping_mul(2).wrapping_add(u64::from(fold)),
                        fold: Some(fold),
                    })
                })
                .collect(),
            _ => self
                .seeds
                .iter()
                .map(|&seed| RunSpec {
                    seed,
                    training_seed: seed,
                    fold: None,
                })
                .collect(),
        }
    }

    /// The split of `run` and, with cv2, the data-set (`pool`) index of each of its test
    /// examples, in order (empty otherwise). With cv2 the run's seed splits every class of the
    /// whole data in halves A and B (stratified, seeded); fold 0 trains on A and tests on B,
    /// fold 1 the other way round.
    pub fn split_of(&self, loaded: &Split, pool: Option<&Dataset>, run: RunSpec) -> (Split, Vec<usize>) {
        match (&self.design, pool, run.fold) {
            (SplitDesign::TwoFold { .. }, Some(pool), Some(fold)) => {
                let stream = run.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ HALVES_STREAM;
                let (a, b) = split::stratified_indices(&pool.labels, pool.classes, 0.5, stream);
                let (train, test) = if fold == 0 { (a, b) } else { (b, a) };
                (
                    Split {
                        train: split::subset(pool, &train),
                        test: split::subset(pool, &test),
                    },
                    test,
                )
            }
            _ => (self.split_for(loaded, pool, run.seed), Vec::new()),
        }
    }
}

/// One training run of the design, the same for every optimizer: which split and which
/// training seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpec {
    /// The seed of the run's split (with cv2, its repetition's); one of `--seeds`.
    pub seed: u64,
    /// The seed of the model's initialization and batch order.
    pub training_seed: u64,
    /// With cv2: 0 trains on half A and tests on half B, 1 the other way round.
    pub fold: Option<u8>,
}

impl RunSpec {
    /// "seed 3", "seed 3, fold B→A".
    pub fn describe(&self) -> String {
        match self.fold {
            Some(0) => format!("seed {}, fold A→B", self.seed),
            Some(_) => format!("seed {}, fold B→A", self.seed),
            None => format!("seed {}", self.seed),
        }
    }
}

/// Mixed with a repetition's seed to draw its halves (cv2).
const HALVES_STREAM: u64 = 0x4841_4c56_4500_0003;

/// The training part of `split` cut into a fitting and a validation part (for the ρ search);
/// `seed` is the run's training seed.
pub(super) fn validation_split(plan: &Plan, split: &Split, seed: u64) -> Result<Split, CompareError> {
    let stream = match plan.design {
        SplitDesign::PerSeed { .. } | SplitDesign::TwoFold { .. } => {
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ VALIDATION_STREAM
        }
        SplitDesign::Fixed { .. } => plan.split_seed ^ VALIDATION_STREAM,
    };
    let (kept, held) = split::stratified_indices(&split.train.labels, split.train.classes, plan.val_fraction, stream);
    let (fit, val) = (split::subset(&split.train, &kept), split::subset(&split.train, &held));
    if val.is_empty() {
        return Err(CompareError::NoValidationSet);
    }
    Ok(Split { train: fit, test: val })
}
