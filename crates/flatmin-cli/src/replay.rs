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
    AdamBaseConfig, BaseConfig, Batch, Context, Hyperparameter, Injection, MaskSource, NoiseSource, RhoSchedule,
    SamConfig, SampleSelector, SelectionRule, SettingError, SgdBaseConfig, Value as HpValue,
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
    used: Vec<String>,
}

impl<'a> Keys<'a> {
    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.used.push(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn num(&mut self, key: &str) -> Result<f64, CaseError> {
        match self.get(key) {
            Some(v) => num(v, &format!("hyperparams.{key}")),
            None => err(format!("`hyperparams.{key}` is missing")),
        }
    }

    fn num_or(&mut self, key: &str, default: f64) -> Result<f64, CaseError> {
        match self.get(key) {
            Some(v) => num(v, &format!("hyperparams.{key}")),
            None => Ok(default),
        }
    }

    fn present(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    fn finish(&self, optimizer: &str) -> Result<(), CaseError> {
        let mut unknown: Vec<&String> = self.map.keys().filter(|k| !self.used.contains(k)).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(k) => err(format!("unknown hyperparameter `{k}` for optimizer `{optimizer}`")),
        }
    }
}

/// The names of the `optimizer` field a replay understands: the library's references.
pub const OPTIMIZERS: [&str; flatmin::REFERENCES.len()] = flatmin::REFERENCES;

/// A case value as a hyperparameter's value.
fn hp_value(h: &Hyperparameter, v: &Value, key: &str) -> Result<HpValue, CaseError> {
    let value = match v {
        Value::Bool(b) => HpValue::Switch(*b),
        Value::Number(n) => HpValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => match h.words.iter().find(|w| **w == s.as_str()) {
            Some(w) => HpValue::Word(w),
            None => return err(format!("`hyperparams.{key}` = \"{s}\": expected a number")),
        },
        other => {
            return err(format!(
                "`hyperparams.{key}`: expected a number or true/false, found {other}"
            ));
        }
    };
    h.check_kind(value)
        .map_err(|e| CaseError(format!("`hyperparams.{key}`: expected {}, found {v}", e.expected)))?;
    if let HpValue::Number(n) = value
        && h.kind != flatmin::Kind::Switch
        && !h.range.contains(n)
    {
        return err(format!("`hyperparams.{key}` = {v}: expected {}", h.range.expected));
    }
    Ok(value)
}

/// The base optimizer a case names (`base`, with `lr` and the base's keys, mapped through the
/// library's declarations of the base optimizers' hyperparameters).
fn base_config(keys: &mut Keys, optimizer: &str) -> Result<(BaseConfig, f64), CaseError> {
    let base = match keys.get("base") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return err(format!("`hyperparams.base`: expected a string, found {other}")),
        // MSAM's SGD form is its own class, with no base to name.
        None if optimizer == "MSAM" => "torch.optim.SGD".to_string(),
        None => return err("`hyperparams.base` is missing"),
    };
    let lr = keys.num("lr")?;
    if !(lr.is_finite() && lr >= 0.0) {
        return err(format!("`hyperparams.lr` = {lr}: expected a finite number >= 0"));
    }
    let name = base.strip_prefix("torch.optim.").unwrap_or(&base);
    let mut config = match name {
        "SGD" => BaseConfig::Sgd(SgdBaseConfig::new()),
        "Adam" | "AdamW" => {
            let mut adam = AdamBaseConfig::new().with_decoupled_weight_decay(name == "AdamW");
            if let Some(b) = keys.get("betas") {
                match b {
                    Value::Array(b) if b.len() == 2 => {
                        adam.beta1 = num(&b[0], "hyperparams.betas[0]")?;
                        adam.beta2 = num(&b[1], "hyperparams.betas[1]")?;
                    }
                    other => return err(format!("`hyperparams.betas`: expected [beta1, beta2], found {other}")),
                }
            }
            if keys.get("amsgrad").and_then(Value::as_bool) == Some(true) {
                return err("`hyperparams.amsgrad` = true is not supported (only amsgrad = false)");
            }
            // torch.optim.AdamW's own default weight decay.
            if name == "AdamW" && !keys.present("weight_decay") {
                adam.weight_decay = 0.01;
            }
            BaseConfig::Adam(adam)
        }
        _ => {
            return err(format!(
                "`hyperparams.base` = `{base}`: expected torch.optim.SGD, torch.optim.Adam or torch.optim.AdamW"
            ));
        }
    };
    // The base's keys, by the names its declarations give reference trajectories.
    let member = if matches!(config, BaseConfig::Sgd(_)) {
        "sgd"
    } else {
        "adam"
    };
    let mut probe = SamConfig::new(config.clone());
    for h in flatmin::base_hyperparameters().iter().filter(|h| h.member == member) {
        for key in h.replay {
            if let Some(v) = keys.get(key) {
                let value = hp_value(h, v, key)?;
                h.set(&mut probe, value, &Context { lr, seed: 0 })
                    .map_err(|e| CaseError(format!("hyperparams: {e}")))?;
            }
        }
    }
    config = probe.base;
    Ok((config, lr))
}

/// bSAM, its own base optimizer: `lr`; `base` is absent (or `BSAM`).
fn bsam_base(keys: &mut Keys) -> Result<(BaseConfig, f64), CaseError> {
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
    Ok((SamConfig::sgd_base(0.0, 0.0), lr))
}

/// Maps the case's optimizer and hyperparameters onto a library configuration, through the
/// library's registry ([`flatmin::reference`]): the case starts from the reference's preset,
/// and each key is a name a member declares for one of its hyperparameters. The few keys that
/// are the case's own — the base optimizer and `lr`, GSAM's ρ schedule, WSAM's derived `alpha`,
/// ESAM's Python seed — are read here.
pub fn config_for(optimizer: &str, hyperparams: &Map<String, Value>) -> Result<(SamConfig, f64), CaseError> {
    let Some(reference) = flatmin::reference(optimizer) else {
        return err(format!(
            "unknown optimizer `{optimizer}`: expected one of {}",
            OPTIMIZERS.join(", ")
        ));
    };
    let mut keys = Keys {
        map: hyperparams,
        used: Vec::new(),
    };
    for key in reference.required() {
        if !keys.present(key) {
            return err(format!("`hyperparams.{key}` is missing"));
        }
    }
    let (base, lr) = if reference.has_base() {
        base_config(&mut keys, optimizer)?
    } else {
        bsam_base(&mut keys)?
    };
    let context = Context { lr, seed: 0 };
    let mut config = reference
        .config(base, &context)
        .map_err(|e| CaseError(format!("hyperparams: {e}")))?;
    // The keys that are the case's own.
    match optimizer {
        "SamsungLabs.SAM" if keys.get("eta").is_some() => {
            return err("`SamsungLabs.SAM` takes `hyperparams.eta` = null (use SamsungLabs.ASAM for eta)");
        }
        "SAM(adaptive)" if keys.map.get("adaptive").and_then(Value::as_bool) != Some(true) => {
            return err("`SAM(adaptive)` needs `hyperparams.adaptive` = true");
        }
        "WSAM" => {
            // `alpha` is γ/(1−γ), recorded for reference; the library derives it from γ.
            if let Some(alpha) = keys.get("alpha") {
                let alpha = num(alpha, "hyperparams.alpha")?;
                let gamma = num(&hyperparams["gamma"], "hyperparams.gamma")?;
                let derived = gamma / (1.0 - gamma);
                if (alpha - derived).abs() > 1e-9 * derived.abs().max(1.0) {
                    return err(format!(
                        "`hyperparams.alpha` = {alpha} is not gamma/(1-gamma) = {derived}"
                    ));
                }
            }
        }
        "ESAM" => {
            // Python's generator: the replay takes the recorded choices instead.
            keys.get("python_random_seed");
        }
        "LookSAM" if keys.present("sam_every") => {
            return err("`hyperparams.sam_every` is `hyperparams.k` for LookSAM");
        }
        "AE-SAM" | "BSAM" => {
            if let Some(key) = ["sam_every", "sam_probability", "sam_seed"]
                .into_iter()
                .find(|k| keys.present(k))
            {
                return err(match optimizer {
                    "AE-SAM" => format!(
                        "`hyperparams.{key}`: AE-SAM's schedule is its own policy (delta, c_start, c_end, total_steps)"
                    ),
                    _ => format!("`hyperparams.{key}`: bSAM runs both passes at every step"),
                });
            }
        }
        _ => {}
    }
    match (keys.present("sam_probability"), keys.present("sam_seed")) {
        (true, false) => return err("`hyperparams.sam_seed` is missing: a random schedule is replayed from its seed"),
        (false, true) => {
            return err("`hyperparams.sam_seed` belongs to `hyperparams.sam_probability`, which is missing");
        }
        _ => {}
    }
    let gsam_schedule = optimizer == "GSAM";
    let gsam_keys = ["rho_schedule", "rho_min", "lr_max", "lr_min", "rho_max"];
    // Every other key, by the names the members declare.
    let mut settings: Vec<(&'static Hyperparameter, HpValue)> = Vec::new();
    let mut spelled: Vec<(&'static str, String)> = Vec::new();
    let mut names: Vec<&String> = hyperparams.keys().collect();
    names.sort();
    for key in names {
        if keys.used.contains(key) || (gsam_schedule && gsam_keys.contains(&key.as_str())) {
            continue;
        }
        let Some(h) = reference.hyperparameter(key) else {
            continue;
        };
        keys.used.push(key.clone());
        let Some(v) = hyperparams.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        settings.push((h, hp_value(h, v, key)?));
        spelled.push((h.key, key.clone()));
    }
    let case_key = |hp: &str| {
        spelled
            .iter()
            .find(|(k, _)| *k == hp)
            .map_or_else(|| hp.to_string(), |(_, c)| c.clone())
    };
    flatmin::apply(&mut config, &settings, &context).map_err(|e| match e {
        SettingError::Clash { first, second, .. } => CaseError(format!(
            "`hyperparams.{}` and `hyperparams.{}` exclude each other",
            case_key(first),
            case_key(second)
        )),
        SettingError::Invalid(e) => CaseError(format!("hyperparams: {e}")),
    })?;
    if gsam_schedule {
        let rho = config.rho;
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
        config.rho = keys.num_or("rho_max", rho)?;
        config.rho_schedule = schedule;
    }
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
        if config.member::<flatmin::BsamConfig>().is_some() {
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
    let inject = |optim: flatmin::Sam, source: Injection| optim.inject(source).map_err(|e| CaseError(e.to_string()));
    if case.config.member::<flatmin::SwpConfig>().is_some() {
        optim = inject(
            optim,
            Injection::masks(Box::new(RecordedMasks {
                masks: recorded_masks,
                cursor: cursor.clone(),
            })),
        )?;
    }
    if let Some(selection) = case.config.member::<flatmin::SelectionConfig>() {
        optim = inject(
            optim,
            Injection::selector(Box::new(RecordedSelections {
                selected: case.steps.iter().map(|s| s.selected.clone()).collect(),
                cursor: cursor.clone(),
                gamma: selection.gamma,
            })),
        )?;
    }
    if let Some(noise) = case.steps.iter().map(|s| s.noise.clone()).collect::<Option<Vec<_>>>() {
        optim = inject(
            optim,
            Injection::noise(Box::new(RecordedNoise {
                noise,
                cursor: cursor.clone(),
                drawn: None,
            })),
        )?;
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
