//! The SAM state of a [`SamLearner`](crate::SamLearner) shown to Burn as module parameters, so
//! that the Learner's checkpoints (its model record) carry it and a resumed Learner continues
//! exactly where it stopped. The design is described in the adapter's documentation
//! (`adapter.rs`, "Checkpoints"); in short:
//!
//! * the **slots** are fixed when the learner is made, from the configuration's
//!   [`record_schema_for_descent`](flatmin::SamConfig::record_schema_for_descent) and the
//!   wrapped model's [`Layout`]:
//!   per device rank, one float tensor per (state map, model parameter) shaped like the flattened
//!   parameter, one integer tensor of 0/1 presence flags per state map, one integer tensor of the
//!   schema's scalars; and once, an integer tensor of the learner's own scalars (the learning
//!   rate ρ ∝ lr reads, and a nonce). A fresh learner and a trained one have the same slots;
//! * a visit ([`Module::visit`], `into_record`) shows each rank's [`SamRecord`] as of its last
//!   commit in those slots (zeros and a 0 flag for an entry not held yet; each `u64` scalar as
//!   two `u32` halves bit-cast to `i32`, which every backend's integer type holds);
//! * a mapping ([`Module::map`], `load_record`) passes the slots through the mapper and reads the
//!   integer scalars back: unchanged (the optimizer step, the DDP mark, a flag change) means
//!   nothing happened to the state and it is kept as it was; changed means a record was loaded,
//!   and each rank's optimizer is rebuilt from the slots with [`Sam::load_record`], which checks
//!   that the state fits the model. The nonce tells apart two states of equal step count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Int, Tensor, TensorData};
use flatmin::{Layout, Sam, SamConfig, SamRecord};

const CONTAINER: &str = "Struct:SamState";

/// One device rank's optimizer and the state its slots show.
pub(crate) struct Rank {
    /// The rank's optimizer: F-SAM's average and ESAM's masks are per device, as in the
    /// reference implementations under DDP (one optimizer per process).
    pub(crate) sam: Mutex<Sam>,
    /// The optimizer's record as of its last commit (or load): what the slots show. Kept apart
    /// from the optimizer so that reading it never waits for a step in progress: under DDP one
    /// device's optimizer step (a mapping of the whole learner) runs while the other devices
    /// are inside their SAM steps, waiting for it at a rendezvous.
    shown: Mutex<SamRecord>,
    /// Zero tensors by length, for the entries the optimizer does not hold yet.
    zeros: Mutex<HashMap<usize, Tensor<1>>>,
}

impl Rank {
    fn new(sam: Sam) -> Self {
        Self {
            shown: Mutex::new(sam.record()),
            sam: Mutex::new(sam),
            zeros: Mutex::new(HashMap::new()),
        }
    }

    /// Shows the optimizer's state after it committed a step.
    pub(crate) fn committed(&self, sam: &Sam) {
        *self.shown.lock().expect("shown state lock") = sam.record();
    }

    fn zeros(&self, n: usize, device: &Device) -> Tensor<1> {
        let device = device.clone().inner();
        let mut zeros = self.zeros.lock().expect("zeros lock");
        match zeros.get(&n) {
            Some(t) if t.device() == device => t.clone(),
            _ => {
                let t = Tensor::<1>::zeros([n], &device);
                zeros.insert(n, t.clone());
                t
            }
        }
    }
}

/// The ids of the slots, in the order they are visited; kept so that a slot is the same
/// parameter from one visit to the next (and takes a loaded record's ids, as Burn's parameters do).
struct Ids {
    learner: ParamId,
    scalars: Vec<ParamId>,
    flags: Vec<ParamId>,
    floats: Vec<ParamId>,
}

/// The slots as handed to a visitor or mapper, and the integer values they were built with.
struct Slots {
    learner: Param<Tensor<1, Int>>,
    scalars: Vec<Param<Tensor<1, Int>>>,
    flags: Vec<Param<Tensor<1, Int>>>,
    floats: Vec<Param<Tensor<1>>>,
    /// The values of `learner` and `scalars`, as built.
    values: Vec<Vec<i64>>,
}

/// Every rank's optimizer, the learner's own checkpointed scalars, and the fixed slots that show
/// them to Burn.
pub(crate) struct Checkpointed {
    pub(crate) ranks: Vec<Rank>,
    /// The learning rate of the Learner's previous optimizer step (what a ρ schedule
    /// proportional to the learning rate reads).
    pub(crate) lr: Mutex<f64>,
    config: SamConfig,
    /// The wrapped model's parameters.
    layout: Layout,
    /// The prefixes of the per-parameter state maps (`ema/`, `looksam/`), without repeats.
    maps: Vec<&'static str>,
    /// The names of the state's scalars (`steps` first).
    scalars: Vec<String>,
    /// The devices of the ranks (empty: one rank, on the model's device).
    devices: Vec<Device>,
    /// Tells apart the state of this learner from any other's of the same step count; drawn
    /// anew when a record is loaded.
    nonce: AtomicU64,
    ids: Mutex<Ids>,
}

impl std::fmt::Debug for Checkpointed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointed")
            .field("ranks", &self.ranks.len())
            .field("maps", &self.maps)
            .field("scalars", &self.scalars)
            .finish()
    }
}

impl Checkpointed {
    /// `parties` optimizers of `config` for a model of `layout`; `devices` are the ranks'
    /// devices when there are several.
    pub(crate) fn new(
        config: &SamConfig,
        layout: Layout,
        parties: usize,
        devices: Vec<Device>,
        lr: f64,
    ) -> Result<Self, flatmin::ConfigError> {
        let ranks = (0..parties)
            .map(|_| config.init().map(Rank::new))
            .collect::<Result<Vec<_>, _>>()?;
        // The Learner's model is the master weights of a mixed-precision run: no slots for them.
        let schema = config.record_schema_for_descent();
        let mut maps: Vec<&'static str> = Vec::new();
        for m in schema.maps {
            if !maps.contains(&m) {
                maps.push(m);
            }
        }
        if layout.is_empty() {
            maps.clear();
        }
        let mut scalars: Vec<String> = Vec::new();
        for s in schema.scalars {
            if !scalars.contains(&s) {
                scalars.push(s);
            }
        }
        let fresh = |n: usize| (0..n).map(|_| ParamId::new()).collect::<Vec<_>>();
        let ids = Ids {
            learner: ParamId::new(),
            scalars: fresh(parties),
            flags: fresh(parties * maps.len()),
            floats: fresh(parties * maps.len() * layout.len()),
        };
        Ok(Self {
            ranks,
            lr: Mutex::new(lr),
            config: config.clone(),
            layout,
            maps,
            scalars,
            devices,
            nonce: AtomicU64::new(ParamId::new().val()),
            ids: Mutex::new(ids),
        })
    }

    /// The device the slots of rank `r` are shown on: its configured device (the model's when
    /// there is one rank), with autodiff as the model's.
    fn device(&self, r: usize, model_device: &Device) -> Device {
        let device = match self.devices.get(r) {
            Some(d) if self.devices.len() > 1 => d.clone(),
            _ => model_device.clone(),
        };
        if model_device.is_autodiff() {
            device.autodiff()
        } else {
            device.inner()
        }
    }

    fn float_index(&self, r: usize, m: usize, i: usize) -> usize {
        (r * self.maps.len() + m) * self.layout.len() + i
    }

    /// The slots, built from every rank's shown record, on `model_device`'s kind of device.
    fn slots(&self, model_device: &Device) -> Slots {
        let ids = self.ids.lock().expect("slot ids lock");
        let learner_values = encode(&[
            self.nonce.load(Ordering::Relaxed),
            self.lr.lock().expect("lr lock").to_bits(),
        ]);
        let mut values = vec![learner_values.clone()];
        let learner = int_param(ids.learner, learner_values, model_device);
        let (mut scalars, mut flags, mut floats) = (Vec::new(), Vec::new(), Vec::new());
        for (r, rank) in self.ranks.iter().enumerate() {
            let device = self.device(r, model_device);
            let shown = rank.shown.lock().expect("shown state lock");
            let words: Vec<u64> = self
                .scalars
                .iter()
                .map(|name| shown.scalars.get(name).copied().unwrap_or(0))
                .collect();
            let encoded = encode(&words);
            values.push(encoded.clone());
            scalars.push(int_param(ids.scalars[r], encoded, &device));
            for (m, prefix) in self.maps.iter().enumerate() {
                let mut present = Vec::with_capacity(self.layout.len());
                for (i, entry) in self.layout.entries.iter().enumerate() {
                    let held = shown.tensors.get(&format!("{prefix}{}", entry.path));
                    present.push(i64::from(held.is_some()));
                    let tensor = match held {
                        Some(t) => t.clone(),
                        None => rank.zeros(entry.numel(), &device),
                    };
                    let tensor = if device.is_autodiff() {
                        tensor.autodiff()
                    } else {
                        tensor.inner()
                    };
                    floats.push(Param::initialized(ids.floats[self.float_index(r, m, i)], tensor));
                }
                flags.push(int_param(ids.flags[r * self.maps.len() + m], present, &device));
            }
        }
        Slots {
            learner,
            scalars,
            flags,
            floats,
            values,
        }
    }

    /// Shows the slots to `visitor` (inside the learner's `sam_state`).
    pub(crate) fn visit<V: ModuleVisitor>(&self, model_device: &Device, visitor: &mut V) {
        let slots = self.slots(model_device);
        visit_in(visitor, "learner", |v| slots.learner.visit(v));
        for r in 0..self.ranks.len() {
            visit_in(visitor, &rank_name(r), |v| {
                visit_in(v, "scalars", |v| slots.scalars[r].visit(v));
                visit_in(v, "present", |v| {
                    for (m, prefix) in self.maps.iter().enumerate() {
                        visit_in(v, map_name(prefix), |v| slots.flags[r * self.maps.len() + m].visit(v));
                    }
                });
                visit_in(v, "maps", |v| {
                    for (m, prefix) in self.maps.iter().enumerate() {
                        visit_in(v, map_name(prefix), |v| {
                            for (i, entry) in self.layout.entries.iter().enumerate() {
                                visit_in(v, &entry.path, |v| slots.floats[self.float_index(r, m, i)].visit(v));
                            }
                        });
                    }
                });
            });
        }
    }

    /// Passes the slots through `mapper` (inside the learner's `sam_state`), `model` being the
    /// learner's model as the same mapper left it. When the integer scalars come back changed, a
    /// record was loaded: every rank's optimizer is rebuilt from the slots.
    ///
    /// # Panics
    /// When the loaded state does not fit the model (a record of another model or method whose
    /// slots happen to have the same shapes).
    pub(crate) fn map<Mp: ModuleMapper, M: Module>(&self, model_device: &Device, mapper: &mut Mp, model: &M) {
        let Slots {
            learner,
            scalars,
            flags,
            floats,
            values,
        } = self.slots(model_device);
        let parties = self.ranks.len();
        let maps = self.maps.len();
        let learner = map_in(mapper, "learner", |mp| Module::map(learner, mp));
        let mut scalars = scalars.into_iter();
        let mut flags = flags.into_iter();
        let mut floats = floats.into_iter();
        let (mut scalars_out, mut flags_out, mut floats_out) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..parties {
            map_in(mapper, &rank_name(r), |mp| {
                let s = scalars.next().expect("a scalar slot per rank");
                scalars_out.push(map_in(mp, "scalars", |mp| Module::map(s, mp)));
                map_in(mp, "present", |mp| {
                    for prefix in &self.maps {
                        let f = flags.next().expect("a flag slot per map");
                        flags_out.push(map_in(mp, map_name(prefix), |mp| Module::map(f, mp)));
                    }
                });
                map_in(mp, "maps", |mp| {
                    for prefix in &self.maps {
                        map_in(mp, map_name(prefix), |mp| {
                            for entry in &self.layout.entries {
                                let t = floats.next().expect("a float slot per parameter");
                                floats_out.push(map_in(mp, &entry.path, |mp| Module::map(t, mp)));
                            }
                        });
                    }
                });
            });
        }
        {
            let mut ids = self.ids.lock().expect("slot ids lock");
            ids.learner = learner.id;
            ids.scalars = scalars_out.iter().map(|p| p.id).collect();
            ids.flags = flags_out.iter().map(|p| p.id).collect();
            ids.floats = floats_out.iter().map(|p| p.id).collect();
        }
        let mut back = vec![ints(&learner)];
        back.extend(scalars_out.iter().map(ints));
        if back == values {
            return;
        }
        // A record was loaded.
        let learner_words = decode(&back[0], 2, "learner");
        for (r, rank) in self.ranks.iter().enumerate() {
            let words = decode(&back[r + 1], self.scalars.len(), "scalars");
            let mut record = SamRecord {
                scalars: self.scalars.iter().cloned().zip(words).collect(),
                ..SamRecord::default()
            };
            let device = self.device(r, model_device).inner();
            for (m, prefix) in self.maps.iter().enumerate() {
                let present = ints(&flags_out[r * maps + m]);
                assert_eq!(
                    present.len(),
                    self.layout.len(),
                    "flatmin-learner: the checkpoint's SAM state flags do not fit the model"
                );
                for (i, entry) in self.layout.entries.iter().enumerate() {
                    if present[i] != 0 {
                        let t = floats_out[self.float_index(r, m, i)].val().inner().to_device(&device);
                        record.tensors.insert(format!("{prefix}{}", entry.path), t);
                    }
                }
            }
            let sam = self
                .config
                .init()
                .expect("validated when the SamLearner was made")
                .load_record(record, model)
                .unwrap_or_else(|e| panic!("flatmin-learner: the checkpoint's SAM state (rank {r}) does not fit: {e}"));
            rank.committed(&sam);
            *rank.sam.lock().expect("flatmin optimizer lock") = sam;
        }
        debug_assert_eq!(parties, self.ranks.len());
        *self.lr.lock().expect("lr lock") = f64::from_bits(learner_words[1]);
        self.nonce.store(ParamId::new().val(), Ordering::Relaxed);
    }
}

fn rank_name(r: usize) -> String {
    format!("rank{r}")
}

fn map_name(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// Runs `f` inside the module `name` of a visitor.
fn visit_in<V: ModuleVisitor>(visitor: &mut V, name: &str, f: impl FnOnce(&mut V)) {
    visitor.enter_module(name, CONTAINER);
    f(visitor);
    visitor.exit_module(name, CONTAINER);
}

/// Runs `f` inside the module `name` of a mapper.
fn map_in<Mp: ModuleMapper, R>(mapper: &mut Mp, name: &str, f: impl FnOnce(&mut Mp) -> R) -> R {
    mapper.enter_module(name, CONTAINER);
    let out = f(mapper);
    mapper.exit_module(name, CONTAINER);
    out
}

fn int_param(id: ParamId, values: Vec<i64>, device: &Device) -> Param<Tensor<1, Int>> {
    let n = values.len();
    Param::initialized(id, Tensor::<1, Int>::from_data(TensorData::new(values, [n]), device))
}

fn ints(param: &Param<Tensor<1, Int>>) -> Vec<i64> {
    param.val().into_data().iter::<i64>().collect()
}

/// Each `u64` as two `u32` halves (low first), bit-cast to `i32`: what any backend's integer
/// tensors hold exactly.
fn encode(words: &[u64]) -> Vec<i64> {
    words
        .iter()
        .flat_map(|&w| [i64::from(w as u32 as i32), i64::from((w >> 32) as u32 as i32)])
        .collect()
}

fn decode(values: &[i64], words: usize, what: &str) -> Vec<u64> {
    assert_eq!(
        values.len(),
        2 * words,
        "flatmin-learner: the checkpoint's SAM state ({what}) does not fit this SamLearner"
    );
    values
        .chunks(2)
        .map(|c| u64::from(c[0] as i32 as u32) | (u64::from(c[1] as i32 as u32) << 32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_survive_their_encoding() {
        let words = [
            0,
            1,
            u64::MAX,
            0x8000_0000,
            0xFFFF_FFFF,
            1 << 63,
            0.05f64.to_bits(),
            (-1.5f64).to_bits(),
        ];
        let encoded = encode(&words);
        assert!(encoded.iter().all(|&v| i32::try_from(v).is_ok()));
        assert_eq!(decode(&encoded, words.len(), "test"), words);
    }
}
