//! `flatmin replay`: runs one conformance case (the format of
//! `crates/flatmin-cli/tests/fixtures/FORMAT.md`) through the library and records every step.
//!
//! The case gives the model (a tanh MLP of linear layers, weights `[out, in]`), the data, the
//! initial weights and the hyperparameters of a reference implementation; the replay maps them
//! onto a [`SamConfig`] and trains in float64 on the flex backend, or in float32 on another
//! device ([`run_on`]). ESAM's random choices come from the recorded masks and selections,
//! bSAM's noise from the recorded draws; a step whose recorded `extra.second_pass` the replay
//! does not match is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::device::{DeviceChoice, DeviceError};
use burn::module::{Module, Param};
use burn::tensor::activation::tanh;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use flatmin::{
    AdamConfig, AdaptiveConfig, BaseConfig, Batch, BsamConfig, Combination, FriendlyConfig, Geometry, LookSamConfig,
    MaskSource, NoiseSource, PassSchedule, RhoSchedule, SamConfig, SampleSelector, Selection, SelectionRule, SgdConfig,
    SwpConfig, SwpGranularity,
};
use serde_json::{Map, Value, json};

/// A case that cannot be replayed, with the field at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseError(pub String);

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CaseError> {
    Err(CaseError(msg.into()))
}

/// One linear layer, weight stored as PyTorch does (`[out, in]`, `y = x Wᵀ + b`).
#[derive(Module, Debug)]
pub struct Layer {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

/// The case's model: linear layers with tanh between them.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Layer>,
}

impl Mlp {
    /// Logits for inputs `x` (`[n, in]`).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            let [out, _] = layer.weight.dims();
            h = h.matmul(layer.weight.val().transpose()) + layer.bias.val().reshape([1, out]);
            if i < last {
                h = tanh(h);
            }
        }
        h
    }

    /// The parameters in the case's order, as flat `f64` values.
    pub fn flat_params(&self) -> Vec<Vec<f64>> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight.val().into_data(), l.bias.val().into_data()])
            .map(|d| d.iter::<f64>().collect())
            .collect()
    }
}

/// A parsed conformance case.
pub struct Case {
    /// `optimizer` as written in the case.
    pub optimizer: String,
    /// The library configuration the case maps to.
    pub config: SamConfig,
    /// The learning rate.
    pub lr: f64,
    /// Parameter names, in order.
    pub names: Vec<String>,
    /// Parameter shapes, in order.
    pub shapes: Vec<Vec<usize>>,
    init: Vec<Vec<f64>>,
    x: Vec<f64>,
    x_shape: [usize; 2],
    y: Vec<i64>,
    classes: usize,
    steps: Vec<RecordedStep>,
}

/// What the case recorded for one step.
pub struct RecordedStep {
    /// The step number.
    pub step: usize,
    /// Rows of the data this step uses.
    pub batch: Vec<usize>,
    /// The reference's batch loss before the step.
    pub loss: Option<f64>,
    /// The reference's parameters after the step (flat, case order).
    pub params: Option<Vec<Vec<f64>>>,
    /// ESAM: the per-tensor mask in force.
    pub tensor_mask: Option<Vec<bool>>,
    /// ESAM: the selected batch positions.
    pub selected: Option<Vec<usize>>,
    /// bSAM: the standard normal draws of the noisy first pass, per parameter tensor (flat).
    pub noise: Option<Vec<Vec<f64>>>,
    /// Whether the reference ran the second pass at this step (`extra.second_pass`).
    pub second_pass: Option<bool>,
}

fn num(v: &Value, field: &str) -> Result<f64, CaseError> {
    v.as_f64()
        .map_or_else(|| err(format!("`{field}`: expected a number, found {v}")), Ok)
}

fn flag(v: &Value, field: &str) -> Result<bool, CaseError> {
    v.as_bool()
        .map_or_else(|| err(format!("`{field}`: expected true or false, found {v}")), Ok)
}

fn flatten(v: &Value, field: &str, out: &mut Vec<f64>, shape: &mut Vec<usize>, depth: usize) -> Result<(), CaseError> {
    match v {
        Value::Array(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape[depth] != items.len() {
                return err(format!("`{field}`: ragged nested array"));
            }
            for item in items {
                flatten(item, field, out, shape, depth + 1)?;
            }
            Ok(())
        }
        other => {
            if shape.len() != depth {
                return err(format!("`{field}`: ragged nested array"));
            }
            out.push(num(other, field)?);
            Ok(())
        }
    }
}

fn array(v: &Value, field: &str) -> Result<(Vec<f64>, Vec<usize>), CaseError> {
    let (mut out, mut shape) = (Vec::new(), Vec::new());
    flatten(v, field, &mut out, &mut shape, 0)?;
    Ok((out, shape))
}

fn nested(values: &[f64], shape: &[usize]) -> Value {
    match shape {
        [] => json!(values[0]),
        [n] => json!(values[..*n]),
        [n, rest @ ..] => {
            let stride: usize = rest.iter().product();
            Value::Array(
                (0..*n)
                    .map(|i| nested(&values[i * stride..(i + 1) * stride], rest))
                    .collect(),
            )
        }
    }
}

/// Hyperparameters, each read once; what is never read is an unknown key.
struct Keys<'a> {
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Keys<'a> {
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn num(&mut self, key: &'static str) -> Result<f64, CaseError> {
        match self.get(key) {
            Some(v) => num(v, &format!("hyperparams.{key}")),
            None => err(format!("`hyperparams.{key}` is missing")),
        }
    }

    fn num_or(&mut self, key: &'static str, default: f64) -> Result<f64, CaseError> {
        match self.get(key) {
            Some(v) => num(v, &format!("hyperparams.{key}")),
            None => Ok(default),
        }
    }

    fn flag_or(&mut self, key: &'static str, default: bool) -> Result<bool, CaseError> {
        match self.get(key) {
            Some(v) => flag(v, &format!("hyperparams.{key}")),
            None => Ok(default),
        }
    }

    fn finish(&self, optimizer: &str) -> Result<(), CaseError> {
        let mut unknown: Vec<&String> = self.map.keys().filter(|k| !self.used.contains(&k.as_str())).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(k) => err(format!("unknown hyperparameter `{k}` for optimizer `{optimizer}`")),
        }
    }
}

/// The names of the `optimizer` field a replay understands.
pub const OPTIMIZERS: [&str; 12] = [
    "SGD",
    "SAM",
    "SAM(adaptive)",
    "SamsungLabs.SAM",
    "SamsungLabs.ASAM",
    "FriendlySAM",
    "GSAM",
    "WSAM",
    "ESAM",
    "LookSAM",
    "AE-SAM",
    "BSAM",
];

/// A whole number key (`sam_every`, `k`, `total_steps`, seeds, `data_size`).
fn whole(v: &Value, field: &str) -> Result<u64, CaseError> {
    v.as_u64().map_or_else(
        || err(format!("`{field}`: expected a whole number >= 0, found {v}")),
        Ok,
    )
}

/// The schedule keys any optimizer may carry: `sam_every` (a SAM step every k steps, the others
/// base steps on `g`) or `sam_probability` with `sam_seed` (randomized sharpness training).
fn schedule_keys(keys: &mut Keys) -> Result<Option<PassSchedule>, CaseError> {
    let every = keys
        .get("sam_every")
        .map(|v| whole(v, "hyperparams.sam_every"))
        .transpose()?;
    let probability = keys
        .get("sam_probability")
        .map(|v| num(v, "hyperparams.sam_probability"))
        .transpose()?;
    let seed = keys
        .get("sam_seed")
        .map(|v| whole(v, "hyperparams.sam_seed"))
        .transpose()?;
    match (every, probability, seed) {
        (Some(_), Some(_), _) => err("`hyperparams.sam_every` and `hyperparams.sam_probability` exclude each other"),
        (Some(_), None, Some(_)) | (None, None, Some(_)) => {
            err("`hyperparams.sam_seed` belongs to `hyperparams.sam_probability`, which is missing")
        }
        (Some(k), None, None) => Ok(Some(PassSchedule::Every { k })),
        (None, Some(_), None) => err("`hyperparams.sam_seed` is missing: a random schedule is replayed from its seed"),
        (None, Some(probability), Some(seed)) => Ok(Some(PassSchedule::Random { probability, seed })),
        (None, None, None) => Ok(None),
    }
}

/// bSAM, its own base optimizer: `lr` and bSAM's keys; `base` is absent (or `BSAM`).
fn bsam_config(keys: &mut Keys) -> Result<(SamConfig, f64), CaseError> {
    match keys.get("base") {
        None => {}
        Some(Value::String(s)) if s == "BSAM" => {}
        Some(other) => {
            return err(format!(
                "`hyperparams.base` = {other}: BSAM is its own base optimizer (leave `base` out)"
            ));
        }
    }
    let lr = keys.num("lr")?;
    if !(lr.is_finite() && lr >= 0.0) {
        return err(format!("`hyperparams.lr` = {lr}: expected a finite number >= 0"));
    }
    let data_size = match keys.get("data_size") {
        Some(v) => whole(v, "hyperparams.data_size")?,
        None => return err("`hyperparams.data_size` is missing: bSAM's noise and weight decay depend on it"),
    };
    let mut bsam = BsamConfig::new()
        .with_beta1(keys.num_or("beta1", 0.9)?)
        .with_beta2(keys.num_or("beta2", 0.999)?)
        .with_prior_precision(keys.num_or("prior_precision", 10.0)?)
        .with_data_size(data_size)
        .with_damping(keys.num_or("damping", 0.1)?)
        .with_s_init(keys.num_or("s_init", 1.0)?);
    if let Some(seed) = keys.get("seed") {
        bsam = bsam.with_seed(whole(seed, "hyperparams.seed")?);
    }
    let config = SamConfig::new(BaseConfig::Bsam(bsam)).with_rho(keys.num("rho")?);
    Ok((config.with_schedule(schedule_keys(keys)?), lr))
}

fn base_config(keys: &mut Keys) -> Result<(BaseConfig, f64), CaseError> {
    let base = match keys.get("base") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return err(format!("`hyperparams.base`: expected a string, found {other}")),
        None => return err("`hyperparams.base` is missing"),
    };
    let lr = keys.num("lr")?;
    if !(lr.is_finite() && lr >= 0.0) {
        return err(format!("`hyperparams.lr` = {lr}: expected a finite number >= 0"));
    }
    let name = base.strip_prefix("torch.optim.").unwrap_or(&base);
    let config = match name {
        "SGD" => BaseConfig::Sgd(
            SgdConfig::new()
                .with_momentum(keys.num_or("momentum", 0.0)?)
                .with_dampening(keys.num_or("dampening", 0.0)?)
                .with_nesterov(keys.flag_or("nesterov", false)?)
                .with_weight_decay(keys.num_or("weight_decay", 0.0)?),
        ),
        "Adam" | "AdamW" => {
            let (b1, b2) = match keys.get("betas") {
                None => (0.9, 0.999),
                Some(Value::Array(b)) if b.len() == 2 => {
                    (num(&b[0], "hyperparams.betas[0]")?, num(&b[1], "hyperparams.betas[1]")?)
                }
                Some(other) => return err(format!("`hyperparams.betas`: expected [beta1, beta2], found {other}")),
            };
            if keys.flag_or("amsgrad", false)? {
                return err("`hyperparams.amsgrad` = true is not supported (only amsgrad = false)");
            }
            let default_wd = if name == "AdamW" { 0.01 } else { 0.0 };
            BaseConfig::Adam(
                AdamConfig::new()
                    .with_beta1(b1)
                    .with_beta2(b2)
                    .with_eps(keys.num_or("eps", 1e-8)?)
                    .with_weight_decay(keys.num_or("weight_decay", default_wd)?)
                    .with_decoupled_weight_decay(name == "AdamW"),
            )
        }
        _ => {
            return err(format!(
                "`hyperparams.base` = `{base}`: expected torch.optim.SGD, torch.optim.Adam or torch.optim.AdamW"
            ));
        }
    };
    Ok((config, lr))
}

fn adaptive_geometry(keys: &mut Keys) -> Result<Geometry, CaseError> {
    Ok(if keys.flag_or("adaptive", false)? {
        Geometry::AdaptiveSquared
    } else {
        Geometry::Euclidean
    })
}

/// Maps the case's optimizer and hyperparameters onto a library configuration.
pub fn config_for(optimizer: &str, hyperparams: &Map<String, Value>) -> Result<(SamConfig, f64), CaseError> {
    let mut keys = Keys {
        map: hyperparams,
        used: Vec::new(),
    };
    if optimizer == "BSAM" {
        let (config, lr) = bsam_config(&mut keys)?;
        keys.finish(optimizer)?;
        config.validate().map_err(|e| CaseError(format!("hyperparams: {e}")))?;
        return Ok((config, lr));
    }
    let (base, lr) = base_config(&mut keys)?;
    let sam = SamConfig::new(base);
    let config = match optimizer {
        "SGD" => sam.with_rho(0.0),
        "SAM" | "SAM(adaptive)" => {
            let geometry = adaptive_geometry(&mut keys)?;
            if optimizer == "SAM(adaptive)" && geometry != Geometry::AdaptiveSquared {
                return err("`SAM(adaptive)` needs `hyperparams.adaptive` = true");
            }
            sam.with_rho(keys.num("rho")?)
                .with_eps(keys.num_or("eps_norm", 1e-12)?)
                .with_geometry(geometry)
        }
        "SamsungLabs.SAM" => {
            if keys.get("eta").is_some() {
                return err("`SamsungLabs.SAM` takes `hyperparams.eta` = null (use SamsungLabs.ASAM for eta)");
            }
            sam.with_rho(keys.num("rho")?).with_eps(keys.num_or("eps_norm", 1e-16)?)
        }
        "SamsungLabs.ASAM" => sam
            .with_rho(keys.num("rho")?)
            .with_eps(keys.num_or("eps_norm", 1e-16)?)
            .with_geometry(Geometry::Asam {
                eta: keys.num_or("eta", 0.01)?,
            }),
        "FriendlySAM" => {
            let geometry = adaptive_geometry(&mut keys)?;
            sam.with_rho(keys.num("rho")?)
                .with_eps(keys.num_or("eps_norm", 1e-12)?)
                .with_geometry(geometry)
                .with_friendly(Some(
                    FriendlyConfig::new()
                        .with_sigma(keys.num_or("sigma", 1.0)?)
                        .with_lambda(keys.num_or("lmbda", 0.9)?),
                ))
        }
        "GSAM" => {
            let geometry = adaptive_geometry(&mut keys)?;
            let rho = keys.num("rho")?;
            let schedule = match keys.get("rho_schedule").and_then(Value::as_str).unwrap_or("constant") {
                "constant" => RhoSchedule::Constant,
                "proportional" | "proportion" | "ProportionScheduler" => RhoSchedule::ProportionalToLr {
                    rho_min: keys.num_or("rho_min", rho)?,
                    lr_max: keys.num_or("lr_max", lr)?,
                    lr_min: keys.num_or("lr_min", lr)?,
                },
                other => {
                    return err(format!(
                        "`hyperparams.rho_schedule` = `{other}`: expected constant or proportional"
                    ));
                }
            };
            let rho_max = keys.num_or("rho_max", rho)?;
            sam.with_rho(rho_max)
                .with_rho_schedule(schedule)
                .with_eps(keys.num_or("perturb_eps", 1e-12)?)
                .with_geometry(geometry)
                .with_combination(Combination::Gsam {
                    alpha: keys.num("gsam_alpha")?,
                })
        }
        "WSAM" => {
            let geometry = adaptive_geometry(&mut keys)?;
            let gamma = keys.num("gamma")?;
            // `alpha` is γ/(1−γ), recorded for reference; the library derives it from γ.
            if let Some(alpha) = keys.get("alpha") {
                let alpha = num(alpha, "hyperparams.alpha")?;
                let derived = gamma / (1.0 - gamma);
                if (alpha - derived).abs() > 1e-9 * derived.abs().max(1.0) {
                    return err(format!(
                        "`hyperparams.alpha` = {alpha} is not gamma/(1-gamma) = {derived}"
                    ));
                }
            }
            let max_norm = match keys.get("max_norm") {
                None => None,
                Some(v) => Some(num(v, "hyperparams.max_norm")?),
            };
            sam.with_rho(keys.num("rho")?)
                .with_eps(keys.num_or("sam_eps", 1e-12)?)
                .with_geometry(geometry)
                .with_combination(Combination::Wsam {
                    gamma,
                    decoupled: keys.flag_or("decouple", true)?,
                    max_norm,
                })
        }
        "ESAM" => {
            let geometry = adaptive_geometry(&mut keys)?;
            keys.get("python_random_seed");
            sam.with_rho(keys.num("rho")?)
                .with_eps(keys.num_or("eps_norm", 1e-7)?)
                .with_geometry(geometry)
                .with_swp(Some(
                    SwpConfig::new()
                        .with_beta(keys.num("beta")?)
                        .with_granularity(SwpGranularity::PerTensor),
                ))
                .with_selection(Selection::SharpnessSensitive {
                    gamma: keys.num("gamma")?,
                    rule: SelectionRule::OfficialStrict,
                })
        }
        "LookSAM" => {
            let looksam = LookSamConfig::new()
                .with_alpha(keys.num_or("alpha", 0.7)?)
                .with_per_tensor(keys.flag_or("per_tensor", false)?)
                .with_eps_norm(keys.num_or("gv_eps", 1e-8)?);
            let k = keys.get("k").map(|v| whole(v, "hyperparams.k")).transpose()?;
            if k == Some(0) {
                return err("`hyperparams.k` = 0: expected a whole number >= 1 (1: every step a SAM step)");
            }
            let schedule = match (k, schedule_keys(&mut keys)?) {
                (_, Some(PassSchedule::Every { .. })) => {
                    return err("`hyperparams.sam_every` is `hyperparams.k` for LookSAM");
                }
                (Some(_), Some(_)) => {
                    return err("`hyperparams.k` and `hyperparams.sam_probability` exclude each other");
                }
                (None, Some(random)) => random,
                (k, None) => PassSchedule::Every { k: k.unwrap_or(5) },
            };
            sam.with_rho(keys.num("rho")?)
                .with_eps(keys.num_or("eps_norm", 1e-12)?)
                .with_looksam(Some(looksam))
                .with_schedule(Some(schedule))
        }
        "AE-SAM" => {
            let total_steps = match keys.get("total_steps") {
                Some(v) => whole(v, "hyperparams.total_steps")?,
                None => return err("`hyperparams.total_steps` is missing: AE-SAM's threshold moves over the run"),
            };
            let policy = AdaptiveConfig::new()
                .with_delta(keys.num_or("delta", 0.9)?)
                .with_c_start(keys.num_or("c_start", -1.0)?)
                .with_c_end(keys.num_or("c_end", 1.0)?)
                .with_total_steps(total_steps);
            sam.with_rho(keys.num("rho")?)
                .with_eps(keys.num_or("eps_norm", 1e-12)?)
                .with_schedule(Some(PassSchedule::Adaptive(policy)))
        }
        other => {
            return err(format!(
                "unknown optimizer `{other}`: expected one of {}",
                OPTIMIZERS.join(", ")
            ));
        }
    };
    // Any member may run on a schedule; LookSAM read its keys above, AE-SAM's is its policy.
    let config = match optimizer {
        "LookSAM" => config,
        "AE-SAM" => {
            if let Some(key) = ["sam_every", "sam_probability", "sam_seed"]
                .into_iter()
                .find(|k| keys.map.get(*k).is_some_and(|v| !v.is_null()))
            {
                return err(format!(
                    "`hyperparams.{key}`: AE-SAM's schedule is its own policy (delta, c_start, c_end, total_steps)"
                ));
            }
            config
        }
        _ => config.with_schedule(schedule_keys(&mut keys)?),
    };
    keys.finish(optimizer)?;
    config.validate().map_err(|e| CaseError(format!("hyperparams: {e}")))?;
    Ok((config, lr))
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Value, CaseError> {
    obj.get(key).map_or_else(|| err(format!("`{key}` is missing")), Ok)
}

impl Case {
    /// Reads and checks a case file.
    pub fn load(path: &Path) -> Result<Self, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|e| CaseError(format!("{}: {e}", path.display())))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| CaseError(format!("{}: not valid JSON: {e}", path.display())))?;
        Self::parse(&value).map_err(|e| CaseError(format!("{}: {e}", path.display())))
    }

    /// Checks a parsed case.
    pub fn parse(value: &Value) -> Result<Self, CaseError> {
        let obj = value.as_object().map_or_else(|| err("expected a JSON object"), Ok)?;
        let optimizer = field(obj, "optimizer")?
            .as_str()
            .map_or_else(|| err("`optimizer`: expected a string"), Ok)?;
        let hyper = field(obj, "hyperparams")?
            .as_object()
            .map_or_else(|| err("`hyperparams`: expected an object"), Ok)?;
        let (config, lr) = config_for(optimizer, hyper)?;
        if let Some(dtype) = obj.get("dtype").and_then(Value::as_str)
            && dtype != "float64"
        {
            return err(format!("`dtype` = `{dtype}`: only float64 cases are replayed"));
        }
        if let Some(loss) = obj.get("loss").and_then(Value::as_str)
            && loss != "cross_entropy(mean)"
        {
            return err(format!("`loss` = `{loss}`: expected cross_entropy(mean)"));
        }
        let names: Vec<String> = field(obj, "param_names")?
            .as_array()
            .map_or_else(|| err("`param_names`: expected a list"), Ok)?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .map_or_else(|| err("`param_names`: expected strings"), Ok)
            })
            .collect::<Result<_, _>>()?;
        let shapes: Vec<Vec<usize>> = field(obj, "param_shapes")?
            .as_array()
            .map_or_else(|| err("`param_shapes`: expected a list"), Ok)?
            .iter()
            .map(|s| {
                s.as_array()
                    .and_then(|dims| {
                        dims.iter()
                            .map(|d| d.as_u64().map(|d| d as usize))
                            .collect::<Option<Vec<_>>>()
                    })
                    .map_or_else(|| err("`param_shapes`: expected lists of sizes"), Ok)
            })
            .collect::<Result<_, _>>()?;
        if names.len() != shapes.len() || names.is_empty() || !names.len().is_multiple_of(2) {
            return err("`param_names` and `param_shapes` must list weight and bias pairs of the same layers");
        }
        for (l, pair) in shapes.chunks(2).enumerate() {
            let ok = pair[0].len() == 2 && pair[1].len() == 1 && pair[0][0] == pair[1][0];
            // (`ok` first: a malformed shape has no `[1]` to chain on; found by fuzzing.)
            let chained = ok && (l == 0 || shapes[2 * l - 2][0] == pair[0][1]);
            if !ok || !chained {
                return err(format!(
                    "`param_shapes`: layer {l} is not a linear layer [out, in] + [out] fed by the previous one"
                ));
            }
        }
        let init_obj = field(obj, "init_params")?
            .as_object()
            .map_or_else(|| err("`init_params`: expected an object"), Ok)?;
        let init = read_params(init_obj, &names, &shapes, "init_params")?;
        let data = field(obj, "data")?
            .as_object()
            .map_or_else(|| err("`data`: expected an object"), Ok)?;
        let (x, x_shape) = array(field(data, "X")?, "data.X")?;
        if x_shape.len() != 2 || x_shape[1] != shapes[0][1] {
            return err(format!(
                "`data.X`: expected rows of {} features, found shape {x_shape:?}",
                shapes[0][1]
            ));
        }
        let classes = shapes[shapes.len() - 1][0];
        let y: Vec<i64> = field(data, "y")?
            .as_array()
            .map_or_else(|| err("`data.y`: expected a list"), Ok)?
            .iter()
            .map(|v| match v.as_i64() {
                Some(c) if (0..classes as i64).contains(&c) => Ok(c),
                _ => err(format!("`data.y`: expected labels in 0..{classes}, found {v}")),
            })
            .collect::<Result<_, _>>()?;
        if y.len() != x_shape[0] {
            return err(format!(
                "`data.y` has {} labels for {} rows of `data.X`",
                y.len(),
                x_shape[0]
            ));
        }
        let batch_size = field(obj, "batch_size")?
            .as_u64()
            .map_or_else(|| err("`batch_size`: expected a positive integer"), Ok)? as usize;
        if batch_size == 0 || batch_size > x_shape[0] {
            return err(format!("`batch_size` = {batch_size}: expected 1..={}", x_shape[0]));
        }
        let steps_value = field(obj, "steps")?
            .as_array()
            .map_or_else(|| err("`steps`: expected a list"), Ok)?;
        let mut steps = Vec::with_capacity(steps_value.len());
        for (k, s) in steps_value.iter().enumerate() {
            steps.push(read_step(s, k, batch_size, x_shape[0], &names, &shapes)?);
        }
        if steps.is_empty() {
            return err("`steps` is empty");
        }
        let with_noise = steps.iter().filter(|s| s.noise.is_some()).count();
        if matches!(config.base, BaseConfig::Bsam(_)) {
            if with_noise != 0 && with_noise != steps.len() {
                let k = steps.iter().position(|s| s.noise.is_none()).unwrap_or(0);
                return err(format!(
                    "`steps[{k}].extra.noise` is missing: a BSAM case records the noise of every step or of none"
                ));
            }
        } else if let Some(k) = steps.iter().position(|s| s.noise.is_some()) {
            return err(format!(
                "`steps[{k}].extra.noise`: only a BSAM case draws noise (optimizer `{optimizer}`)"
            ));
        }
        Ok(Case {
            optimizer: optimizer.to_string(),
            config,
            lr,
            names,
            shapes,
            init,
            x,
            x_shape: [x_shape[0], x_shape[1]],
            y,
            classes,
            steps,
        })
    }

    /// The recorded steps.
    pub fn steps(&self) -> &[RecordedStep] {
        &self.steps
    }

    /// Rows of the case's data.
    pub fn rows(&self) -> usize {
        self.x_shape[0]
    }
}

fn read_params(
    obj: &Map<String, Value>,
    names: &[String],
    shapes: &[Vec<usize>],
    what: &str,
) -> Result<Vec<Vec<f64>>, CaseError> {
    names
        .iter()
        .zip(shapes)
        .map(|(name, shape)| {
            let label = format!("{what}.{name}");
            let (values, found) = array(
                field(obj, name).map_err(|_| CaseError(format!("`{label}` is missing")))?,
                &label,
            )?;
            if &found != shape {
                return err(format!("`{label}`: expected shape {shape:?}, found {found:?}"));
            }
            Ok(values)
        })
        .collect()
}

fn bools(v: Option<&Value>, what: &str) -> Result<Option<Vec<bool>>, CaseError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|b| {
                b.as_bool()
                    .map_or_else(|| err(format!("`{what}`: expected true/false")), Ok)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => err(format!("`{what}`: expected a list, found {other}")),
    }
}

fn indices(v: Option<&Value>, what: &str, bound: usize) -> Result<Option<Vec<usize>>, CaseError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i.as_u64() {
                Some(i) if (i as usize) < bound => Ok(i as usize),
                _ => err(format!("`{what}`: expected positions below {bound}, found {i}")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => err(format!("`{what}`: expected a list, found {other}")),
    }
}

fn read_step(
    s: &Value,
    k: usize,
    batch_size: usize,
    rows: usize,
    names: &[String],
    shapes: &[Vec<usize>],
) -> Result<RecordedStep, CaseError> {
    let obj = s
        .as_object()
        .map_or_else(|| err(format!("`steps[{k}]`: expected an object")), Ok)?;
    let step = obj.get("step").and_then(Value::as_u64).map_or(k, |v| v as usize);
    let batch = match indices(obj.get("batch_indices"), &format!("steps[{k}].batch_indices"), rows)? {
        Some(b) if !b.is_empty() => b,
        Some(_) => return err(format!("`steps[{k}].batch_indices` is empty")),
        None => {
            let per_epoch = rows / batch_size;
            let start = batch_size * (step % per_epoch.max(1));
            (start..start + batch_size).collect()
        }
    };
    let loss = obj.get("loss").and_then(Value::as_f64);
    let params = match obj.get("params") {
        Some(Value::Object(p)) => Some(read_params(p, names, shapes, &format!("steps[{k}].params"))?),
        _ => None,
    };
    let extra = obj.get("extra").and_then(Value::as_object);
    let tensor_mask = bools(
        extra.and_then(|e| e.get("first_pass_requires_grad")),
        &format!("steps[{k}].extra.first_pass_requires_grad"),
    )?;
    if let Some(m) = &tensor_mask
        && m.len() != names.len()
    {
        return err(format!(
            "`steps[{k}].extra.first_pass_requires_grad`: expected {} entries, found {}",
            names.len(),
            m.len()
        ));
    }
    let selected = indices(
        extra.and_then(|e| e.get("selected_batch_positions")),
        &format!("steps[{k}].extra.selected_batch_positions"),
        batch.len(),
    )?;
    let noise = match extra.and_then(|e| e.get("noise")) {
        None | Some(Value::Null) => None,
        Some(Value::Object(n)) => Some(read_params(n, names, shapes, &format!("steps[{k}].extra.noise"))?),
        Some(other) => {
            return err(format!(
                "`steps[{k}].extra.noise`: expected an object of parameter names, found {other}"
            ));
        }
    };
    let second_pass = match extra.and_then(|e| e.get("second_pass")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(flag(v, &format!("steps[{k}].extra.second_pass"))?),
    };
    Ok(RecordedStep {
        step,
        batch,
        loss,
        params,
        tensor_mask,
        selected,
        noise,
        second_pass,
    })
}

/// The position of the step being replayed, shared with the recorded sources below: a step
/// without a second pass draws no mask, selection or noise, so counting calls would misalign
/// them on a schedule.
type Cursor = Arc<AtomicUsize>;

/// ESAM masks replayed from the case, step by step.
struct RecordedMasks {
    masks: Vec<Option<Vec<bool>>>,
    cursor: Cursor,
}

impl MaskSource for RecordedMasks {
    fn tensor_mask(&mut self, count: usize, _beta: f64) -> Vec<bool> {
        self.masks
            .get(self.cursor.load(Ordering::Relaxed))
            .cloned()
            .flatten()
            .unwrap_or_else(|| vec![true; count])
    }

    fn element_mask(&mut self, numel: usize, _beta: f64) -> Vec<bool> {
        vec![true; numel]
    }
}

/// ESAM selections replayed from the case, step by step; where a step recorded none, the
/// official rule decides.
struct RecordedSelections {
    selected: Vec<Option<Vec<usize>>>,
    cursor: Cursor,
    gamma: f64,
}

impl SampleSelector for RecordedSelections {
    fn select(&mut self, sharpness: &[f64]) -> Vec<usize> {
        self.selected
            .get(self.cursor.load(Ordering::Relaxed))
            .cloned()
            .flatten()
            .unwrap_or_else(|| flatmin::select_sharpest(sharpness, self.gamma, SelectionRule::OfficialStrict))
    }
}

/// bSAM's noise replayed from the case: the draws of the current step, tensor by tensor in
/// parameter order.
struct RecordedNoise {
    noise: Vec<Vec<Vec<f64>>>,
    cursor: Cursor,
    /// The step of the last draw and how many tensors it has drawn.
    drawn: Option<(usize, usize)>,
}

impl NoiseSource for RecordedNoise {
    fn normals(&mut self, numel: usize) -> Vec<f64> {
        let step = self.cursor.load(Ordering::Relaxed);
        let tensor = match self.drawn {
            Some((s, t)) if s == step => t,
            _ => 0,
        };
        self.drawn = Some((step, tensor + 1));
        match self.noise.get(step).and_then(|n| n.get(tensor)) {
            Some(values) if values.len() == numel => values.clone(),
            // Cannot happen for a parsed case (shapes are checked); a NaN makes the step fail
            // with a named non-finite error rather than run on made-up noise.
            _ => vec![f64::NAN; numel],
        }
    }
}

/// One replayed step.
#[derive(Debug, Clone)]
pub struct ReplayedStep {
    /// The step number.
    pub step: usize,
    /// Batch loss before the step (first pass).
    pub loss: f64,
    /// Mean loss over all rows after the step.
    pub full_loss_after: f64,
    /// Parameters after the step (flat, case order).
    pub params: Vec<Vec<f64>>,
    /// ESAM: per-sample sharpness.
    pub sample_sharpness: Option<Vec<f64>>,
    /// ESAM: the positions used by the second pass.
    pub selected: Option<Vec<usize>>,
    /// ρ at this step.
    pub rho: f64,
    /// Whether the step ran the second pass.
    pub second_pass: bool,
}

/// The result of a replay.
pub struct Replay {
    /// The case's optimizer name.
    pub optimizer: String,
    /// The device it ran on.
    pub device: DeviceChoice,
    /// The float type it ran in.
    pub dtype: DType,
    /// Every step.
    pub steps: Vec<ReplayedStep>,
}

fn tensor2(values: &[f64], shape: [usize; 2], device: &Device, dtype: DType) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), (device, dtype))
}

fn model_from(case: &Case, device: &Device, dtype: DType) -> Mlp {
    let layers = case
        .init
        .chunks(2)
        .zip(case.shapes.chunks(2))
        .map(|(values, shapes)| Layer {
            weight: Param::from_tensor(tensor2(&values[0], [shapes[0][0], shapes[0][1]], device, dtype)),
            bias: Param::from_tensor(Tensor::from_data(
                TensorData::new(values[1].clone(), [shapes[1][0]]),
                (device, dtype),
            )),
        })
        .collect();
    Mlp { layers }
}

/// Runs the case in float64 on the flex backend.
pub fn run(case: &Case) -> Result<Replay, CaseError> {
    run_on(case, DeviceChoice::Cpu)
}

/// Runs the case on `device`, in its replay float type ([`DeviceChoice::replay_dtype`]:
/// float64 on the CPU, float32 on wgpu).
pub fn run_on(case: &Case, device: DeviceChoice) -> Result<Replay, CaseError> {
    run_in(case, device, device.replay_dtype())
}

/// Runs the case on `device` in `dtype`: the CPU in float32 tells what float32 alone costs a
/// case, apart from a GPU backend's kernels.
pub fn run_in(case: &Case, device: DeviceChoice, dtype: DType) -> Result<Replay, CaseError> {
    let choice = device;
    let device = device.autodiff().map_err(|DeviceError(e)| CaseError(e))?;
    let mut model = model_from(case, &device, dtype);
    let mut optim = case.config.init().map_err(|e| CaseError(format!("hyperparams: {e}")))?;
    let cursor = Cursor::default();
    let recorded_masks = case.steps.iter().map(|s| s.tensor_mask.clone()).collect();
    if case.config.swp.is_some() {
        optim = optim.with_mask_source(Box::new(RecordedMasks {
            masks: recorded_masks,
            cursor: cursor.clone(),
        }));
    }
    if let Selection::SharpnessSensitive { gamma, .. } = case.config.selection {
        optim = optim.with_selector(Box::new(RecordedSelections {
            selected: case.steps.iter().map(|s| s.selected.clone()).collect(),
            cursor: cursor.clone(),
            gamma,
        }));
    }
    if let Some(noise) = case.steps.iter().map(|s| s.noise.clone()).collect::<Option<Vec<_>>>() {
        optim = optim.with_noise_source(Box::new(RecordedNoise {
            noise,
            cursor: cursor.clone(),
            drawn: None,
        }));
    }
    let x_all = tensor2(&case.x, case.x_shape, &device, dtype);
    let y_all = Tensor::<1, Int>::from_data(TensorData::new(case.y.clone(), [case.y.len()]), &device);
    let mut steps = Vec::with_capacity(case.steps.len());
    for (index, recorded) in case.steps.iter().enumerate() {
        cursor.store(index, Ordering::Relaxed);
        let rows: Vec<i64> = recorded.batch.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [recorded.batch.len()]), &device);
        let xb = x_all.clone().select(0, idx.clone());
        let yb = y_all.clone().select(0, idx);
        let loss_fn = |m: &Mlp, batch: Batch| {
            flatmin::per_sample_cross_entropy(m.forward(batch.rows(xb.clone())), batch.rows_int(yb.clone()))
        };
        let (next, report) = optim.step(case.lr, model, loss_fn);
        model = next;
        let report = report.map_err(|e| CaseError(format!("step {}: {e}", recorded.step)))?;
        if let Some(expected) = recorded.second_pass
            && expected != report.second_pass
        {
            return err(format!(
                "step {}: the case records `extra.second_pass` = {expected}, the replay {} the second pass",
                recorded.step,
                if report.second_pass { "ran" } else { "skipped" }
            ));
        }
        let full = flatmin::per_sample_cross_entropy(model.forward(x_all.clone()), y_all.clone()).mean();
        steps.push(ReplayedStep {
            step: recorded.step,
            loss: report.loss.unwrap_or(f64::NAN),
            full_loss_after: full.into_data().iter::<f64>().next().unwrap_or(f64::NAN),
            params: model.flat_params(),
            sample_sharpness: report.sample_sharpness,
            selected: report.selected,
            rho: report.rho,
            second_pass: report.second_pass,
        });
    }
    debug_assert!(case.classes > 0);
    Ok(Replay {
        optimizer: case.optimizer.clone(),
        device: choice,
        dtype,
        steps,
    })
}

/// The largest absolute difference between the replayed and the recorded parameters over all
/// steps (`None` when the case recorded no parameters).
pub fn max_abs_diff(case: &Case, replay: &Replay) -> Option<f64> {
    let mut worst: Option<f64> = None;
    for (rec, rep) in case.steps.iter().zip(&replay.steps) {
        let Some(params) = &rec.params else { continue };
        for (a, b) in params.iter().flatten().zip(rep.params.iter().flatten()) {
            let d = (a - b).abs();
            worst = Some(match worst {
                Some(w) if w >= d || d.is_nan() && w.is_nan() => w,
                _ if d.is_nan() => f64::NAN,
                Some(w) => w.max(d),
                None => d,
            });
        }
    }
    worst
}

/// The largest relative difference between the replayed and the recorded parameters over all
/// steps: per step and tensor, the largest absolute difference over the largest recorded
/// magnitude of that tensor (the float32 bar of the fixtures' FORMAT.md is 1e-5 of it). `None`
/// when the case recorded no parameters.
pub fn max_rel_diff(case: &Case, replay: &Replay) -> Option<f64> {
    let mut worst: Option<f64> = None;
    for (rec, rep) in case.steps.iter().zip(&replay.steps) {
        let Some(params) = &rec.params else { continue };
        for (reference, ours) in params.iter().zip(&rep.params) {
            let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let diff = reference
                .iter()
                .zip(ours)
                .map(|(a, b)| (a - b).abs())
                .fold(
                    0.0f64,
                    |m, d| if d.is_nan() || m.is_nan() { f64::NAN } else { m.max(d) },
                );
            let rel = if scale > 0.0 { diff / scale } else { diff };
            worst = Some(match worst {
                Some(w) if w.is_nan() || rel.is_nan() => f64::NAN,
                Some(w) => w.max(rel),
                None => rel,
            });
        }
    }
    worst
}

/// The bar a replay in `dtype` is held to, from the fixtures' FORMAT.md: float64, max absolute
/// difference <= 1e-9; float32, max relative difference ([`max_rel_diff`]) <= 1e-5. Returns the
/// measured difference, the bar and its wording.
pub fn bar_for(case: &Case, replay: &Replay) -> Option<(f64, f64, &'static str)> {
    if replay.dtype == DType::F64 {
        max_abs_diff(case, replay).map(|d| (d, 1e-9, "max |param - reference|"))
    } else {
        max_rel_diff(case, replay).map(|d| (d, 1e-5, "max |param - reference| / max |reference| per tensor"))
    }
}

/// The result file: `{"steps": [{"step", "loss", "params": {name: nested arrays}}, …]}` plus
/// diagnostics (`full_loss_after`, `rho`, ESAM's `sample_sharpness` and `selected`,
/// `max_abs_diff` and `max_rel_diff` against the case's recorded parameters, and the `device`
/// and `dtype` of the replay).
pub fn result_json(case: &Case, replay: &Replay) -> Value {
    let steps: Vec<Value> = replay
        .steps
        .iter()
        .map(|s| {
            let params: BTreeMap<&str, Value> = case
                .names
                .iter()
                .zip(&case.shapes)
                .zip(&s.params)
                .map(|((n, shape), v)| (n.as_str(), nested(v, shape)))
                .collect();
            let mut step = json!({
                "step": s.step,
                "loss": s.loss,
                "full_loss_after": s.full_loss_after,
                "rho": s.rho,
                "second_pass": s.second_pass,
                "params": params,
            });
            if let Some(sharp) = &s.sample_sharpness {
                step["sample_sharpness"] = json!(sharp);
            }
            if let Some(sel) = &s.selected {
                step["selected"] = json!(sel);
            }
            step
        })
        .collect();
    let dtype = if replay.dtype == DType::F64 {
        "float64"
    } else {
        "float32"
    };
    let mut out = json!({
        "optimizer": replay.optimizer,
        "device": replay.device.name(),
        "dtype": dtype,
        "steps": steps,
    });
    if let Some(d) = max_abs_diff(case, replay) {
        out["max_abs_diff"] = json!(d);
    }
    if let Some(d) = max_rel_diff(case, replay) {
        out["max_rel_diff"] = json!(d);
    }
    out
}

/// Writes `value` to `path` atomically (a temporary file in the same folder, then a rename).
pub fn write_json_atomic(path: &Path, value: &Value) -> Result<(), CaseError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CaseError(e.to_string()))?;
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| CaseError(format!("{}: {e}", path.display())))
}
