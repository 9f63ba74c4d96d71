//! The registry of the family: every member, one line each below, and every preset, one entry
//! each in [`PRESETS`]. A member's file holds the rest of it — its configuration, state, record
//! entries, hyperparameter declarations and validation — and the step reaches it only through
//! the phase hooks of [`crate::member::MemberHooks`].
//!
//! Adding a member: its file here, its line in `registry!` below, its presets in [`PRESETS`].

use burn::config::Config;

use crate::base::BaseConfig;
use crate::error::ConfigError;
use crate::hyperparameter::{Context, Declaration, Kind, Value};
use crate::member::{MemberConfig, MemberHooks, Room};

/// Declares the member modules and the [`Member`] enum with its lookups, from one line per
/// member file: `module { Variant(ConfigType), … }`.
macro_rules! registry {
    ($($module:ident { $($variant:ident($ty:ident)),+ $(,)? })+) => {
        $(pub(crate) mod $module;)+

        /// One member of the family, as a [`SamConfig`](crate::SamConfig) holds it.
        #[derive(Config, Debug, PartialEq)]
        pub enum Member {
            $($(
                #[doc = concat!("[`", stringify!($ty), "`](crate::", stringify!($ty), ").")]
                $variant($module::$ty),
            )+)+
        }

        impl Member {
            /// The member's name (`"wsam"`, `"esam"`, …).
            pub fn name(&self) -> &'static str {
                self.spec().name()
            }

            /// The room of the step the member occupies.
            pub fn room(&self) -> Room {
                self.spec().room()
            }

            /// The member's configuration, type-erased.
            pub(crate) fn spec(&self) -> &dyn MemberSpec {
                match self {
                    $($(Member::$variant(c) => c,)+)+
                }
            }

            /// The member's configuration, type-erased, to change.
            pub(crate) fn spec_mut(&mut self) -> &mut dyn MemberSpec {
                match self {
                    $($(Member::$variant(c) => c,)+)+
                }
            }
        }

        $($(
            impl From<$module::$ty> for Member {
                fn from(c: $module::$ty) -> Self {
                    Member::$variant(c)
                }
            }

            impl Registered for $module::$ty {
                fn of(member: &Member) -> Option<&Self> {
                    match member {
                        Member::$variant(c) => Some(c),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }

                fn of_mut(member: &mut Member) -> Option<&mut Self> {
                    match member {
                        Member::$variant(c) => Some(c),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )+)+

        /// Every member's hyperparameters, in the registry's order.
        pub(crate) fn member_hyperparameters() -> Vec<MemberParam> {
            let mut out = Vec::new();
            $($(params::<$module::$ty>(&mut out);)+)+
            out
        }
    };
}

// The members, one line per file, in the order of their hyperparameters' keys.
registry! {
    asam { SquaredAsam(SquaredAsamConfig), Asam(AsamConfig) }
    fisher { Fisher(FisherConfig) }
    friendly { Friendly(FriendlyConfig) }
    swp { Swp(SwpConfig) }
    selection { Selection(SelectionConfig) }
    wsam { Wsam(WsamConfig) }
    gsam { Gsam(GsamConfig) }
    every { Every(EveryConfig) }
    rst { Random(RandomConfig) }
    ae_sam { AeSam(AeSamConfig) }
    looksam { LookSam(LookSamConfig) }
    bsam { Bsam(BsamConfig) }
    unified { Unified(UnifiedConfig) }
    msam { Msam(MsamConfig) }
}

/// A member configuration type of the registry: what [`SamConfig::member`](crate::SamConfig::member)
/// looks up and [`SamConfig::with_member`](crate::SamConfig::with_member) puts in.
pub trait Registered: Into<Member> + Clone + 'static {
    /// This type's configuration, if `member` is one.
    #[doc(hidden)]
    fn of(member: &Member) -> Option<&Self>;
    /// This type's configuration to change, if `member` is one.
    #[doc(hidden)]
    fn of_mut(member: &mut Member) -> Option<&mut Self>;
}

/// A member's configuration, type-erased.
pub(crate) trait MemberSpec {
    fn name(&self) -> &'static str;
    fn room(&self) -> Room;
    fn requires(&self) -> Option<(Room, &'static str)>;
    fn alone(&self) -> Option<(&'static str, &'static str)>;
    fn replaces_base(&self) -> bool;
    fn skips_second_passes(&self) -> bool;
    fn validate(&self) -> Result<(), ConfigError>;
    fn for_run(&mut self, total_steps: u64, data_size: u64);
    fn decides_after_first_pass(&self) -> bool;
    fn draws_before_first_pass(&self) -> bool;
    fn own_update(&self) -> bool;
    fn needs_sample_losses(&self) -> bool;
    fn build(&self) -> Box<dyn MemberHooks>;
}

impl<T: MemberConfig> MemberSpec for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn room(&self) -> Room {
        T::ROOM
    }

    fn requires(&self) -> Option<(Room, &'static str)> {
        T::REQUIRES
    }

    fn alone(&self) -> Option<(&'static str, &'static str)> {
        T::ALONE
    }

    fn replaces_base(&self) -> bool {
        MemberConfig::replaces_base(self)
    }

    fn skips_second_passes(&self) -> bool {
        MemberConfig::skips_second_passes(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        MemberConfig::validate(self)
    }

    fn for_run(&mut self, total_steps: u64, data_size: u64) {
        MemberConfig::for_run(self, total_steps, data_size)
    }

    fn decides_after_first_pass(&self) -> bool {
        MemberConfig::decides_after_first_pass(self)
    }

    fn draws_before_first_pass(&self) -> bool {
        MemberConfig::draws_before_first_pass(self)
    }

    fn own_update(&self) -> bool {
        MemberConfig::own_update(self)
    }

    fn needs_sample_losses(&self) -> bool {
        MemberConfig::needs_sample_losses(self)
    }

    fn build(&self) -> Box<dyn MemberHooks> {
        MemberConfig::build(self)
    }
}

/// One member hyperparameter, type-erased: its declaration and how it reads and writes a list
/// of members.
pub(crate) struct MemberParam {
    pub decl: Declaration,
    pub member: &'static str,
    pub room: Room,
    index: usize,
    get: fn(&[Member], usize) -> Option<Value>,
    set: fn(&mut Vec<Member>, usize, Value, &Context) -> Result<(), ConfigError>,
    default: fn(usize, &Context) -> Value,
}

impl MemberParam {
    pub(crate) fn get(&self, members: &[Member]) -> Option<Value> {
        (self.get)(members, self.index)
    }

    pub(crate) fn set(&self, members: &mut Vec<Member>, value: Value, context: &Context) -> Result<(), ConfigError> {
        (self.set)(members, self.index, value, context)
    }

    pub(crate) fn default(&self, context: &Context) -> Value {
        (self.default)(self.index, context)
    }
}

fn params<C: MemberConfig + Registered>(out: &mut Vec<MemberParam>) {
    for (index, d) in C::HYPERPARAMETERS.iter().enumerate() {
        out.push(MemberParam {
            decl: d.decl,
            member: C::NAME,
            room: C::ROOM,
            index,
            get: get_of::<C>,
            set: set_of::<C>,
            default: default_of::<C>,
        });
    }
}

fn get_of<C: MemberConfig + Registered>(members: &[Member], i: usize) -> Option<Value> {
    members.iter().find_map(C::of).map(|c| (C::HYPERPARAMETERS[i].get)(c))
}

fn default_of<C: MemberConfig + Registered>(i: usize, context: &Context) -> Value {
    (C::HYPERPARAMETERS[i].get)(&C::fresh(context))
}

/// Sets hyperparameter `i` of member `C`, putting the member in (with its defaults, in place of
/// whatever occupied its room) when it is not there. A switch that is a member's only
/// hyperparameter is the member itself: off leaves it out. A whole-step member (bSAM, MSAM) is
/// chosen only by its preset.
fn set_of<C: MemberConfig + Registered>(
    members: &mut Vec<Member>,
    i: usize,
    value: Value,
    context: &Context,
) -> Result<(), ConfigError> {
    let declared = &C::HYPERPARAMETERS[i];
    let presence = C::HYPERPARAMETERS.len() == 1 && declared.decl.kind == Kind::Switch;
    let present = members.iter().any(|m| C::of(m).is_some());
    if presence && !value.on() {
        members.retain(|m| C::of(m).is_none());
        return Ok(());
    }
    if !present {
        if let Some((_, only)) = C::ALONE {
            return Err(ConfigError::new(declared.decl.key, value, only));
        }
        insert(members, C::fresh(context).into());
        if let Some((room, _)) = C::REQUIRES
            && !members.iter().any(|m| m.spec().room() == room)
            && let Some(default) = default_member(room, context)
        {
            members.push(default);
        }
    }
    let config = members.iter_mut().find_map(C::of_mut).expect("present");
    (declared.set)(config, value, context);
    Ok(())
}

/// Puts `member` in, in place of any member of its room.
pub(crate) fn insert(members: &mut Vec<Member>, member: Member) {
    let room = member.spec().room();
    members.retain(|m| m.spec().room() != room);
    members.push(member);
}

/// The member a room gets when another member needs it filled (LookSAM's schedule: a SAM step
/// every k steps).
fn default_member(room: Room, context: &Context) -> Option<Member> {
    match room {
        Room::Schedule => Some(EveryConfig::fresh(context).into()),
        _ => None,
    }
}

pub use ae_sam::AeSamConfig;
pub use asam::{AsamConfig, SquaredAsamConfig};
pub use bsam::{BsamConfig, BsamState, NoiseSource};
pub use every::EveryConfig;
pub use fisher::FisherConfig;
pub use friendly::FriendlyConfig;
pub use gsam::GsamConfig;
pub use looksam::LookSamConfig;
pub use msam::MsamConfig;
pub use rst::{RandomConfig, uniform_at};
pub use selection::{SampleSelector, SelectionConfig, SelectionRule, SharpestSamples, select_sharpest};
pub use swp::{MaskSource, SwpConfig, SwpGranularity};
pub use unified::{UnifiedConfig, UnifiedLambda};
pub use wsam::WsamConfig;

/// A published algorithm as a configuration: ρ and eps where it departs from the defaults, its
/// members, and a change of the given base optimizer where the algorithm's own code differs.
pub(crate) struct PresetSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub rho: Option<f64>,
    pub eps: Option<f64>,
    pub members: fn() -> Vec<Member>,
    pub base: Option<fn(&mut BaseConfig)>,
}

const fn preset(name: &'static str, doc: &'static str, members: fn() -> Vec<Member>) -> PresetSpec {
    PresetSpec {
        name,
        doc,
        rho: None,
        eps: None,
        members,
        base: None,
    }
}

/// Every preset, with its authors' default hyperparameters (the members' own defaults unless
/// said here).
pub(crate) const PRESETS: [PresetSpec; 16] = [
    PresetSpec {
        rho: Some(0.0),
        ..preset("sgd", "ρ = 0: the base optimizer alone (one pass)", Vec::new)
    },
    preset("sam", "ρ = 0.05", Vec::new),
    PresetSpec {
        rho: Some(0.5),
        ..preset("asam", "official ASAM, ρ = 0.5, η = 0.01", || {
            vec![AsamConfig::new().into()]
        })
    },
    PresetSpec {
        eps: Some(1e-7),
        ..preset(
            "esam",
            "ρ = 0.05, SWP β = 0.6 per tensor, selection γ = 0.5 (top-k), eps 1e-7",
            || vec![SwpConfig::new().into(), SelectionConfig::new().into()],
        )
    },
    preset("fsam", "ρ = 0.05, σ = 1, λ = 0.9", || {
        vec![FriendlyConfig::new().into()]
    }),
    preset("wsam", "ρ = 0.05, γ = 0.9, decoupled, no clipping", || {
        vec![WsamConfig::new().into()]
    }),
    preset("gsam", "ρ = 0.05, α = 0.4", || vec![GsamConfig::new().into()]),
    PresetSpec {
        rho: Some(0.1),
        ..preset("fisher-sam", "ρ = 0.1, η = 1", || vec![FisherConfig::new().into()])
    },
    preset(
        "looksam",
        "ρ = 0.05, a SAM step every k = 5 steps, α = 0.7, global vectors",
        || vec![EveryConfig::new().into(), LookSamConfig::new().into()],
    ),
    preset(
        "sam-every-5",
        "ρ = 0.05, a SAM step every 5 steps, base steps between",
        || vec![EveryConfig::new().into()],
    ),
    preset(
        "rst",
        "ρ = 0.05, each step a SAM step with probability 0.5 (seed 0)",
        || vec![RandomConfig::new().into()],
    ),
    preset(
        "ae-sam",
        "ρ = 0.05, δ = 0.9, threshold c falling from 1 to −1 (SAM rare early, frequent late; needs `for_run`)",
        || vec![AeSamConfig::new().into()],
    ),
    PresetSpec {
        rho: Some(0.01),
        ..preset(
            "bsam",
            "ρ = 0.01 on bSAM's own base optimizer (β1 0.9, β2 0.999, prior precision 10, damping 0.1, s_init 1; needs `for_run`); the given base is not used",
            || vec![BsamConfig::new().into()],
        )
    },
    PresetSpec {
        rho: Some(0.3),
        base: Some(|base| {
            if let BaseConfig::Adam(a) = base {
                a.decay_after_step = a.decoupled_weight_decay;
            }
        }),
        ..preset(
            "msam",
            "ρ = 0.3 (the authors' SGD default), the step along the base optimizer's momentum, one pass; with AdamW, the decay after the moment step",
            || vec![MsamConfig::new().into()],
        )
    },
    preset(
        "usam",
        "ρ = 0.05, unnormalized: e = ρ·g (Unified SAM with λ = 0)",
        || {
            vec![
                UnifiedConfig::new()
                    .with_lambda(UnifiedLambda::Constant { lambda: 0.0 })
                    .into(),
            ]
        },
    ),
    preset("unified-sam", "ρ = 0.05, Unified SAM with λ = 0.5", || {
        vec![UnifiedConfig::new().into()]
    }),
];

/// A reference implementation whose recorded trajectories flatmin replays: the case's
/// `optimizer` name, the preset it starts from, and where the reference departs from flatmin's
/// defaults. Case keys map onto hyperparameters by the names members declare
/// (`Declared::replay`).
pub(crate) struct ReferenceSpec {
    pub name: &'static str,
    pub preset: &'static str,
    /// Case keys that must be present.
    pub required: &'static [&'static str],
    /// The reference's own defaults, by hyperparameter key, where they differ from the preset's.
    pub defaults: &'static [(&'static str, f64)],
    /// Rooms whose members' keys a case may carry beyond the preset's: any optimizer may run on
    /// a schedule, and several references offer the adaptive `w²` ball (`adaptive`).
    pub rooms: &'static [Room],
    /// Whether the case chooses a base optimizer (`base`, `lr` and its keys).
    pub base: bool,
    /// A quirk of the reference the preset does not have.
    pub adjust: Option<fn(&mut Vec<Member>)>,
}

const SCHEDULES: &[Room] = &[Room::Schedule];
const ADAPTIVE_AND_SCHEDULES: &[Room] = &[Room::Geometry, Room::Schedule];

const fn reference(name: &'static str, preset: &'static str, rooms: &'static [Room]) -> ReferenceSpec {
    ReferenceSpec {
        name,
        preset,
        required: &["rho"],
        defaults: &[],
        rooms,
        base: true,
        adjust: None,
    }
}

impl ReferenceSpec {
    const fn required(self, required: &'static [&'static str]) -> Self {
        Self { required, ..self }
    }

    const fn defaults(self, defaults: &'static [(&'static str, f64)]) -> Self {
        Self { defaults, ..self }
    }
}

/// Every reference a replay knows.
pub(crate) const REFERENCES: [ReferenceSpec; 14] = [
    reference("SGD", "sgd", SCHEDULES).required(&[]),
    reference("SAM", "sam", ADAPTIVE_AND_SCHEDULES),
    reference("SAM(adaptive)", "sam", ADAPTIVE_AND_SCHEDULES).required(&["rho", "adaptive"]),
    reference("SamsungLabs.SAM", "sam", SCHEDULES).defaults(&[("eps", 1e-16)]),
    reference("SamsungLabs.ASAM", "asam", SCHEDULES).defaults(&[("eps", 1e-16)]),
    reference("FriendlySAM", "fsam", ADAPTIVE_AND_SCHEDULES),
    reference("GSAM", "gsam", ADAPTIVE_AND_SCHEDULES).required(&["rho", "gsam_alpha"]),
    reference("WSAM", "wsam", ADAPTIVE_AND_SCHEDULES).required(&["rho", "gamma"]),
    ReferenceSpec {
        required: &["rho", "beta", "gamma"],
        // The official selection keeps the samples strictly above the k-th sharpness.
        adjust: Some(|members| {
            for m in members.iter_mut() {
                if let Some(s) = SelectionConfig::of_mut(m) {
                    s.rule = SelectionRule::OfficialStrict;
                }
            }
        }),
        ..reference("ESAM", "esam", ADAPTIVE_AND_SCHEDULES)
    },
    reference("LookSAM", "looksam", SCHEDULES),
    ReferenceSpec {
        required: &["rho", "total_steps"],
        // The replay format's documented defaults, from before flatmin followed the paper's
        // falling threshold.
        defaults: &[("ae_c_start", -1.0), ("ae_c_end", 1.0)],
        ..reference("AE-SAM", "ae-sam", &[])
    },
    ReferenceSpec {
        required: &["rho", "lr", "data_size"],
        base: false,
        ..reference("BSAM", "bsam", &[])
    },
    reference("MSAM", "msam", &[]),
    reference("UnifiedSAM", "unified-sam", SCHEDULES).required(&["rho", "lambda"]),
];
