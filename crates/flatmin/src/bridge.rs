//! The one thin layer between flatmin and Burn's module machinery, public so that the Learner
//! adapter, the laboratory and users walk models the same way.
//!
//! Everything else sees a model as a [`Layout`] (its float parameters, in visiting order, with
//! their paths) and vectors in parameter space as [`ParamVector`]s of flat tensors. Walking
//! modules, matching gradients by `ParamId`, lifting values back onto the autodiff tape with
//! their flags ([`ParamFlags`]), tracked and untracked views, and decoupling BatchNorm running
//! statistics all happen here, so the next Burn release is a change to this file.
//!
//! ```
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::{Device, Tensor, TensorData};
//! use flatmin::bridge::{self, Layout};
//!
//! let device = Device::flex().autodiff();
//! let model: Linear = LinearConfig::new(3, 2).init(&device);
//! let layout = Layout::of(&model);
//! assert_eq!(layout.len(), 2); // weight and bias
//!
//! let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 6], [2, 3]), &device);
//! let grads = bridge::backward(model.forward(x).sum(), &model);
//! let g = bridge::gradients(&model, &layout, &grads);
//! assert!(g.norm() > 0.0);
//! // Back to Burn's gradients, e.g. for a `ModuleOptimizer`.
//! let again = bridge::to_gradients(&model, &layout, &g);
//! assert_eq!(bridge::gradients(&model, &layout, &again).norm(), g.norm());
//! // A view that tracks nothing: no backward pass is possible on it.
//! assert!(!bridge::is_tracked(&bridge::untracked(&model)));
//! ```

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, GradientCheckpointingStrategy, Tensor};

use crate::vector::ParamVector;
pub use crate::vector::to_f64;

/// One float parameter of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEntry {
    /// Burn's identity of the parameter; gradients are keyed by it.
    pub id: ParamId,
    /// The dotted module path (e.g. `"layers.0.weight"`); optimizer state is keyed by it.
    pub path: String,
    /// The parameter's shape.
    pub shape: Vec<usize>,
}

impl ParamEntry {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The float parameters of a model in visiting order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// One entry per float parameter.
    pub entries: Vec<ParamEntry>,
}

impl Layout {
    /// Reads the layout of `model`.
    pub fn of<M: Module>(model: &M) -> Self {
        let mut visitor = LayoutVisitor::default();
        model.visit(&mut visitor);
        Self {
            entries: visitor.entries,
        }
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the model has no float parameter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn index(&self) -> HashMap<ParamId, usize> {
        self.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect()
    }
}

/// BatchNorm's running statistics are visited as floats too; they are buffers, not parameters.
/// (Any other buffer would only ever be seen without a gradient, which every part of the step
/// skips.)
fn is_running_stat(name: &str, container_type: &str) -> bool {
    container_type == "Struct:BatchNorm" && name.starts_with("running_")
}

#[derive(Default)]
struct LayoutVisitor {
    path: Vec<String>,
    entries: Vec<ParamEntry>,
    running: bool,
}

impl ModuleVisitor for LayoutVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.running = is_running_stat(name, container_type);
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.running = false;
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.running {
            return;
        }
        self.entries.push(ParamEntry {
            id: param.id,
            path: self.path.join("."),
            shape: param.shape().as_slice().to_vec(),
        });
    }
}

/// The current values of the parameters, flat, off the autodiff tape.
pub fn values<M: Module>(model: &M, layout: &Layout) -> ParamVector {
    let mut visitor = ValueVisitor {
        index: layout.index(),
        out: vec![None; layout.len()],
    };
    model.visit(&mut visitor);
    ParamVector::new(visitor.out)
}

struct ValueVisitor {
    index: HashMap<ParamId, usize>,
    out: Vec<Option<Tensor<1>>>,
}

impl ModuleVisitor for ValueVisitor {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(&i) = self.index.get(&param.id) {
            let value = param.val().inner();
            let n = value.shape().num_elements();
            self.out[i] = Some(value.reshape([n]));
        }
    }
}

/// What tells each parameter's tensor on `layout` apart from any other (`None` where the
/// backend gives tensors no identity, or the model has no parameter): the check that a model
/// still holds the very tensors a step wrote into it, so that a step may keep its own copy of
/// the weights between steps (a joined buffer on a GPU, [`crate::vector::ParamVector`]) and
/// take it up again only while the model is as that step left it — a model changed outside
/// the optimizer (loaded, edited, another optimizer's step) holds other tensors.
///
/// On Burn's fused CubeCL backends (wgpu, CUDA) the identity is the fusion stream's tensor
/// id, which a clone shares and no other tensor ever gets. Elsewhere there is none.
pub(crate) fn identities<M: Module>(model: &M, layout: &Layout) -> Option<Vec<String>> {
    struct Ids {
        index: HashMap<ParamId, usize>,
        out: Vec<Option<String>>,
    }
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(&i) = self.index.get(&param.id) {
                self.out[i] = identity(param.val().inner());
            }
        }
    }
    if layout.is_empty() {
        return None;
    }
    let mut ids = Ids {
        index: layout.index(),
        out: vec![None; layout.len()],
    };
    model.visit(&mut ids);
    ids.out.into_iter().collect()
}

/// Whether `model`'s parameters have identities ([`identities`]): its first one has.
pub(crate) fn has_identities<M: Module>(model: &M) -> bool {
    struct First(Option<bool>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                self.0 = Some(identity(param.val().inner()).is_some());
            }
        }
    }
    let mut first = First(None);
    model.visit(&mut first);
    first.0.unwrap_or(false)
}

/// Whether `tensor` lives on a fused CubeCL device, whose tensors have identities.
pub(crate) fn has_identity(tensor: &Tensor<1>) -> bool {
    identity(tensor.clone()).is_some()
}

/// The identity of a tensor on a fused CubeCL device (see [`identities`]).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn identity<const D: usize>(tensor: Tensor<D>) -> Option<String> {
    use burn::backend::{BackendTensor, DispatchTensorKind};
    fn of(kind: &DispatchTensorKind) -> Option<String> {
        match kind {
            DispatchTensorKind::Cube(BackendTensor::Float(fused)) => Some(fused.id.to_string()),
            DispatchTensorKind::Autodiff(inner) => of(inner),
            _ => None,
        }
    }
    of(&tensor.into_dispatch().kind)
}

/// Without a fused CubeCL backend in the build no tensor has an identity.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn identity<const D: usize>(_: Tensor<D>) -> Option<String> {
    None
}

/// The device of `model`'s first parameter (`None`: it has none).
pub fn device<M: Module>(model: &M) -> Option<Device> {
    model.devices().into_iter().next()
}

/// The float type of `model`'s first parameter on `layout` (`None`: it has none): what decides
/// whether a step keeps master weights.
pub fn float_dtype<M: Module>(model: &M, layout: &Layout) -> Option<DType> {
    struct First {
        id: Option<ParamId>,
        dtype: Option<DType>,
    }
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.dtype.is_none() && Some(param.id) == self.id {
                self.dtype = Some(param.val().dtype());
            }
        }
    }
    let mut first = First {
        id: layout.entries.first().map(|e| e.id),
        dtype: None,
    };
    model.visit(&mut first);
    first.dtype
}

/// `model` with every float tensor — parameters and buffers such as BatchNorm's running
/// statistics — cast to `dtype` (bf16 or f16 to store a model in half precision; f32 to read
/// one back), ids and flags kept.
pub fn cast_floats<M: Module>(model: M, dtype: DType) -> M {
    cast_with_flags(model, dtype, HashMap::new())
}

/// `model` with every float tensor cast to `dtype`; a parameter listed in `flags` gets those
/// flags (the others keep their own).
fn cast_with_flags<M: Module>(model: M, dtype: DType, flags: HashMap<ParamId, Flags>) -> M {
    struct Cast(DType, HashMap<ParamId, Flags>);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let flags = self.1.get(&id).copied().unwrap_or_else(|| Flags::of(&tensor));
            if tensor.dtype() == self.0 && Flags::of(&tensor) == flags {
                return Param::from_mapped_value(id, tensor, mapper);
            }
            let cast = tensor.inner().cast(self.0);
            Param::from_mapped_value(id, flags.lift(cast, id), mapper)
        }
    }
    model.map(&mut Cast(dtype, flags))
}

/// A copy of `model` with every float tensor in `dtype` (bf16 or f16), for the passes of a
/// mixed-precision step whose f32 master weights are `model` itself
/// ([`Sam::begin_with_master`](crate::Sam::begin_with_master)). Parameter ids and flags are
/// kept, so the copy's gradients are keyed like `model`'s parameters; the copy owns its
/// BatchNorm running statistics (in `dtype`), so `model`'s stay in their own type: a training
/// pass on the copy updates the copy's, and [`copy_running_statistics`] takes them back.
pub fn autocast_copy<M: Module>(model: &M, dtype: DType) -> M {
    let flags = flags(model);
    cast_with_flags(model.valid().train(), dtype, flags)
}

/// Writes the BatchNorm running statistics of `from` into `to`'s (which Burn's clones of `to`
/// share), each cast to `to`'s type: what a training pass on an [`autocast_copy`] left in its
/// own statistics, taken back to the model it was copied from. Statistics of `to` that `from`
/// does not have stay as they are.
pub fn copy_running_statistics<M: Module>(from: &M, to: &M) {
    #[derive(Default)]
    struct Collect {
        running: bool,
        stats: HashMap<ParamId, Tensor<1>>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.running = is_running_stat(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.running = false;
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.running {
                let value = param.val();
                let n = value.shape().num_elements();
                self.stats
                    .insert(param.id, Tensor::from_inner(value.inner().reshape([n])));
            }
        }
    }
    struct Write(HashMap<ParamId, Tensor<1>>);
    impl ModuleMapper for Write {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let Some(stat) = self.0.remove(&id) else {
                return Param::from_mapped_value(id, tensor, mapper);
            };
            let value = stat.inner().reshape(tensor.shape()).cast(tensor.dtype());
            Param::from_mapped_value(id, Tensor::from_inner(value), mapper)
        }
    }
    let mut collect = Collect::default();
    // `valid` first folds each statistic's pending update of this thread into its value.
    from.valid().visit(&mut collect);
    if collect.stats.is_empty() {
        return;
    }
    // A running statistic maps in place, into the state `to` and its clones share.
    let _ = to.clone().map(&mut Write(collect.stats));
}

/// Every float tensor of `model` — parameters and buffers such as BatchNorm's running
/// statistics — flat, off the tape, in visiting order: what a test of bitwise equality of two
/// models compares.
pub fn all_floats<M: Module>(model: &M) -> Vec<Tensor<1>> {
    struct All(Vec<Tensor<1>>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val().inner();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    let mut all = All(Vec::new());
    model.visit(&mut all);
    all.0
}

/// The gradients of the parameters, flat; `None` where a parameter got no gradient.
pub fn gradients<M: Module>(model: &M, layout: &Layout, grads: &GradientsParams) -> ParamVector {
    let mut visitor = GradVisitor {
        index: layout.index(),
        grads,
        out: vec![None; layout.len()],
    };
    model.visit(&mut visitor);
    ParamVector::new(visitor.out)
}

struct GradVisitor<'a> {
    index: HashMap<ParamId, usize>,
    grads: &'a GradientsParams,
    out: Vec<Option<Tensor<1>>>,
}

impl ModuleVisitor for GradVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(&i) = self.index.get(&param.id)
            && let Some(grad) = self.grads.get::<D>(param.id)
        {
            let n = grad.shape().num_elements();
            self.out[i] = Some(grad.reshape([n]));
        }
    }
}

/// Burn's gradients (shaped like the parameters, keyed by id) from a flat vector on `layout`.
pub fn to_gradients<M: Module>(model: &M, layout: &Layout, vector: &ParamVector) -> GradientsParams {
    struct Shape<'a> {
        index: HashMap<ParamId, usize>,
        vector: &'a ParamVector,
        out: GradientsParams,
    }
    impl ModuleVisitor for Shape<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(&i) = self.index.get(&param.id)
                && let Some(t) = self.vector.get(i)
            {
                let shaped: Tensor<D> = t.clone().reshape(param.shape());
                self.out.register::<D>(param.id, shaped);
            }
        }
    }
    let mut v = Shape {
        index: layout.index(),
        vector,
        out: GradientsParams::new(),
    };
    model.visit(&mut v);
    v.out
}

/// Whether any parameter of `model` tracks a gradient (a backward pass needs one).
pub fn is_tracked<M: Module>(model: &M) -> bool {
    flags(model).values().any(|f| f.require_grad)
}

/// Runs `loss.backward()` and collects the gradients of `model`'s parameters. A model none of
/// whose parameters tracks a gradient has none: empty (where `loss.backward()` would panic).
pub fn backward<M: Module>(loss: Tensor<1>, model: &M) -> GradientsParams {
    if !is_tracked(model) {
        return GradientsParams::new();
    }
    GradientsParams::from_grads(loss.backward(), model)
}

/// The autodiff flags a parameter carries, put back on a value that was computed off the tape.
/// Without them a parameter would silently stop requiring gradients, drop out of data-parallel
/// synchronization or change its gradient-checkpointing strategy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamFlags {
    /// The parameter tracks a gradient.
    pub require_grad: bool,
    /// Burn's distributed data parallel all-reduces its gradient.
    pub distributed: bool,
    /// Its gradient-checkpointing strategy, if one was set.
    pub checkpointing: Option<GradientCheckpointingStrategy>,
}

type Flags = ParamFlags;

impl ParamFlags {
    fn of<const D: usize>(tensor: &Tensor<D>) -> Self {
        Self {
            require_grad: tensor.is_require_grad(),
            distributed: tensor.is_distributed(),
            checkpointing: tensor.gradient_checkpointing_strategy(),
        }
    }

    fn lift<const D: usize>(self, inner: Tensor<D>, id: ParamId) -> Tensor<D> {
        let mut tensor = Tensor::from_inner(inner);
        if let Some(strategy) = self.checkpointing {
            tensor = tensor.with_gradient_checkpointing_strategy(strategy);
        }
        if self.require_grad {
            tensor = tensor.require_grad();
        }
        if self.distributed {
            tensor = tensor.set_distributed(id);
        }
        tensor
    }
}

struct FlagVisitor {
    flags: HashMap<ParamId, Flags>,
    running: bool,
}

impl ModuleVisitor for FlagVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.running = is_running_stat(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.running = false;
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.running {
            self.flags.insert(param.id, Flags::of(&param.val()));
        }
    }
}

/// The flags of every parameter of `model` (BatchNorm running statistics excluded).
pub fn flags<M: Module>(model: &M) -> HashMap<ParamId, ParamFlags> {
    let mut visitor = FlagVisitor {
        flags: HashMap::new(),
        running: false,
    };
    model.visit(&mut visitor);
    visitor.flags
}

/// `model` with the flags of each parameter of `layout` replaced by `f(index, flags)`; values,
/// ids and BatchNorm running statistics (shared with `model`) are kept.
pub fn map_flags<M: Module>(model: &M, layout: &Layout, f: &mut dyn FnMut(usize, ParamFlags) -> ParamFlags) -> M {
    struct Mapper<'a> {
        index: HashMap<ParamId, usize>,
        f: &'a mut dyn FnMut(usize, ParamFlags) -> ParamFlags,
    }
    impl ModuleMapper for Mapper<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(&i) = self.index.get(&param.id) else {
                return param;
            };
            let (id, tensor, mapper) = param.consume();
            let old = Flags::of(&tensor);
            let new = (self.f)(i, old);
            if new == old {
                return Param::from_mapped_value(id, tensor, mapper);
            }
            Param::from_mapped_value(id, new.lift(tensor.inner(), id), mapper)
        }
    }
    model.clone().map(&mut Mapper {
        index: layout.index(),
        f,
    })
}

/// The distributed mark of every parameter of `model` (BatchNorm running statistics excluded).
pub fn distributed_flags<M: Module>(model: &M) -> HashMap<ParamId, bool> {
    flags(model).into_iter().map(|(id, f)| (id, f.distributed)).collect()
}

/// Whether any parameter of `model` is marked distributed (Burn's DDP marks them all).
pub fn is_distributed<M: Module>(model: &M) -> bool {
    flags(model).values().any(|f| f.distributed)
}

/// A view of `model` whose parameters are not marked distributed, so that a backward pass on it
/// is not all-reduced by Burn's DDP. Everything else is kept: parameter ids (gradients line up
/// with the original parameters), `require_grad`, the gradient-checkpointing strategy, and the
/// BatchNorm running statistics, which stay shared with `model`.
pub fn local_view<M: Module>(model: &M) -> M {
    if !is_distributed(model) {
        return model.clone();
    }
    map_flags(model, &Layout::of(model), &mut |_, f| ParamFlags {
        distributed: false,
        ..f
    })
}

/// `Σ_j weight_j · v_j` slot by slot, in the order given (a slot absent from a vector counts
/// as zero; a weight of exactly 1 is not multiplied), on the first present tensor's device.
pub fn weighted_sum(parts: &[(&ParamVector, f64)]) -> ParamVector {
    let slots = parts.iter().map(|(v, _)| v.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(slots);
    for i in 0..slots {
        let mut acc: Option<Tensor<1>> = None;
        for (v, w) in parts {
            if let Some(t) = v.get(i) {
                let term = if *w == 1.0 { t.clone() } else { t.clone().mul_scalar(*w) };
                acc = Some(match acc {
                    None => term,
                    Some(a) => {
                        let term = term.to_device(&a.device());
                        a + term
                    }
                });
            }
        }
        out.push(acc);
    }
    ParamVector::new(out)
}

/// Adds a vector's entries to the parameters (or, with `replace`, puts them in their place,
/// cast to each parameter's float type), carrying their flags over.
struct AddMapper {
    index: HashMap<ParamId, usize>,
    /// Taken slot by slot: a tensor held only here takes the sum in place.
    slots: Vec<Option<Tensor<1>>>,
    flags: HashMap<ParamId, Flags>,
    replace: bool,
}

impl ModuleMapper for AddMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let update = self
            .index
            .get(&param.id)
            .and_then(|&i| self.slots.get_mut(i))
            .and_then(Option::take);
        let (id, tensor, mapper) = param.consume();
        let flags = self.flags.get(&id).copied().unwrap_or_else(|| Flags::of(&tensor));
        let inner = match update {
            Some(update) if self.replace => {
                let (shape, dtype) = (tensor.shape(), tensor.dtype());
                update.reshape(shape).cast(dtype)
            }
            Some(update) => {
                let shape = tensor.shape();
                tensor.inner() + update.reshape(shape)
            }
            // Not perturbed (ESAM's mask left it out): its value stays, but the copy lost the
            // flags `valid().train()` does not restore (the data-parallel mark), so they are
            // set again.
            None if Flags::of(&tensor) == flags => return Param::from_mapped_value(id, tensor, mapper),
            None => tensor.inner(),
        };
        Param::from_mapped_value(id, flags.lift(inner, id), mapper)
    }
}

/// Returns `model` with every parameter `w_i` for which `has(i)` holds replaced by
/// `update(i, w_i)`: the flat value is handed over owned, so an update that holds the only
/// reference can write the result into it (no new buffer of the parameter's size).
pub fn update<M: Module>(
    model: M,
    layout: &Layout,
    has: &dyn Fn(usize) -> bool,
    update: &mut dyn FnMut(usize, Tensor<1>) -> Tensor<1>,
) -> M {
    struct Mapper<'a> {
        index: HashMap<ParamId, usize>,
        has: &'a dyn Fn(usize) -> bool,
        update: &'a mut dyn FnMut(usize, Tensor<1>) -> Tensor<1>,
    }
    impl ModuleMapper for Mapper<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(&i) = self.index.get(&param.id) else {
                return param;
            };
            if !(self.has)(i) {
                return param;
            }
            let (id, tensor, mapper) = param.consume();
            let flags = Flags::of(&tensor);
            let shape = tensor.shape();
            let value = tensor.inner();
            let n = shape.num_elements();
            let new = (self.update)(i, value.reshape([n])).reshape(shape);
            Param::from_mapped_value(id, flags.lift(new, id), mapper)
        }
    }
    model.map(&mut Mapper {
        index: layout.index(),
        has,
        update,
    })
}

/// A copy of `model` at `w + e`, for the second pass.
///
/// The copy owns its BatchNorm running statistics (Burn's clones share them), so a forward pass
/// on it in training mode normalizes with the batch statistics but leaves the original model's
/// running mean and variance as the first pass left them. Parameter ids are kept, so the second
/// pass's gradients line up with the original parameters, and so are each parameter's flags.
pub fn perturbed<M: Module>(model: &M, layout: &Layout, e: &ParamVector) -> M {
    perturbed_by(model, layout, e.clone())
}

/// [`perturbed`] with `e` handed over: a tensor of `e` held only here takes `w + e` in place.
pub fn perturbed_by<M: Module>(model: &M, layout: &Layout, e: ParamVector) -> M {
    decoupled_copy(model, layout, e, false)
}

/// A copy of `model` with its own BatchNorm statistics, ids and flags kept, whose parameters
/// present in `slots` are shifted by them (`replace`: set to them, cast to each one's type).
fn decoupled_copy<M: Module>(model: &M, layout: &Layout, slots: ParamVector, replace: bool) -> M {
    let flags = flags(model);
    let decoupled = model.valid().train();
    decoupled.map(&mut AddMapper {
        index: layout.index(),
        slots: slots.into_slots(),
        flags,
        replace,
    })
}

/// A copy of `model` whose parameters present in `points` hold those values, cast to each
/// parameter's float type: the second pass's model at `w + e` when `w + e` was computed in f32
/// from master weights. BatchNorm statistics are its own, ids and flags kept, as in
/// [`perturbed`].
pub fn perturbed_to<M: Module>(model: &M, layout: &Layout, points: ParamVector) -> M {
    decoupled_copy(model, layout, points, true)
}

/// `model` whose parameters present in `points` hold those values, cast to each parameter's
/// float type, sharing `model`'s BatchNorm running statistics: [`shifted_sharing_statistics`]
/// for a point computed in f32 from master weights.
pub fn moved_sharing_statistics<M: Module>(model: &M, layout: &Layout, points: ParamVector) -> M {
    combined_sharing_statistics(model, layout, points, |w, point| point.cast(w.dtype()))
}

/// `model` at `w + e`, sharing `model`'s BatchNorm running statistics (unlike [`perturbed`]): a
/// forward pass on it in training mode updates them, as the step's first pass must (bSAM's first
/// pass runs at noisy weights). Ids and flags are kept; `model`'s own values are untouched.
pub fn shifted_sharing_statistics<M: Module>(model: &M, layout: &Layout, e: ParamVector) -> M {
    combined_sharing_statistics(model, layout, e, |w, offset| w + offset)
}

/// `model` (sharing its running statistics) whose parameters present in `slots` become
/// `combine(w, slot)`; the others are left as they are.
fn combined_sharing_statistics<M: Module>(
    model: &M,
    layout: &Layout,
    slots: ParamVector,
    combine: impl Fn(Tensor<1>, Tensor<1>) -> Tensor<1>,
) -> M {
    let mut slots = slots.into_slots();
    let present: Vec<bool> = slots.iter().map(Option::is_some).collect();
    update(
        model.clone(),
        layout,
        &|i| present.get(i).copied().unwrap_or(false),
        &mut |i, w| match slots.get_mut(i).and_then(Option::take) {
            Some(slot) => combine(w, slot),
            None => w,
        },
    )
}

/// A view of `model` whose parameters track no gradient: a forward pass on it builds no
/// autodiff graph, yet BatchNorm still normalizes with batch statistics (training mode).
pub fn untracked<M: Module>(model: &M) -> M {
    model.clone().no_grad()
}

/// A view of `model` (sharing its running statistics) in which the parameters whose entry in
/// `keep` is false track no gradient, so the backward pass skips their weight gradients.
pub fn with_tracked<M: Module>(model: &M, layout: &Layout, keep: &[bool]) -> M {
    if keep.iter().all(|&k| k) {
        return model.clone();
    }
    map_flags(model, layout, &mut |i, f| ParamFlags {
        require_grad: f.require_grad && keep.get(i).copied().unwrap_or(true),
        ..f
    })
}

/// `model` on the autodiff tape but with every training flag off: BatchNorm normalizes with its
/// running statistics (and leaves them alone), yet gradients still flow — what a Hessian of the
/// trained model needs (PyHessian evaluates in eval mode).
pub fn inference_mode_tracked<M: Module>(model: &M) -> M {
    struct Off;
    impl ModuleMapper for Off {
        fn map_flag(&mut self, flag: Param<burn::module::Flag>) -> Param<burn::module::Flag> {
            flag.with_value(false)
        }
    }
    model.clone().map(&mut Off)
}

/// Whether Burn's wgpu backend finds an adapter on this machine (a GPU, or a software driver
/// such as Mesa's lavapipe): a first tensor is made on the default wgpu device, and a failure to
/// find one — which Burn reports by panicking — is caught. Checked once per process.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapter_available() -> bool {
    use std::sync::OnceLock;
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::panic::catch_unwind(|| {
            let device = burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
            to_f64(Tensor::<1>::zeros([1], &device))
        })
        .is_ok()
    })
}
