//! Paper-scale training presets (`flatmin train --preset NAME`): the papers' CIFAR settings,
//! for users with a GPU. Each is a `--config` file in `crates/flatmin-cli/presets/` (its README
//! gives the source and the paper's figures), embedded here so that the binary stands alone, and
//! read by the same loader as `--config`.

use crate::train::{TrainConfig, TrainError};

macro_rules! presets {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../presets/", $name, ".json")))),*]
    };
}

/// Every preset: its name and the text of its config file.
pub const PRESETS: [(&str, &str); 9] = presets!(
    "sam-wrn28-10-cifar10",
    "sam-wrn28-10-cifar100",
    "asam-wrn28-10-cifar10",
    "asam-wrn28-10-cifar100",
    "esam-resnet18-cifar10",
    "esam-resnet18-cifar100",
    "fsam-resnet18-cifar100",
    "wsam-resnet18-cifar10",
    "gsam-wrn28-10-cifar10",
);

/// The text of preset `name`'s config file.
pub fn preset_text(name: &str) -> Result<&'static str, TrainError> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| {
            TrainError::Invalid(format!(
                "--preset `{name}`: expected one of {}",
                PRESETS.map(|(n, _)| n).join(", ")
            ))
        })
}

/// The configuration of preset `name` (its file over the defaults).
pub fn preset(name: &str) -> Result<TrainConfig, TrainError> {
    TrainConfig::from_json(preset_text(name)?).map_err(|e| TrainError::Invalid(format!("--preset {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_file_is_listed_and_a_valid_configuration() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect();
        files.sort();
        let mut listed: Vec<String> = PRESETS.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed, "presets/*.json and PRESETS");
        for (name, _) in &PRESETS {
            let c = preset(name).unwrap();
            c.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.augment && c.epochs == 200 && c.batch_size == 128, "{name}");
            assert!(name.starts_with(&c.optimizer), "{name} runs {}", c.optimizer);
        }
        assert!(preset("nope").unwrap_err().to_string().contains("sam-wrn28-10-cifar10"));
        assert_eq!(preset("esam-resnet18-cifar10").unwrap().hp.get("esam_beta"), Some(0.6));
    }
}
