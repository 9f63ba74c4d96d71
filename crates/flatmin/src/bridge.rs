//! The one thin layer between flatmin and Burn's module machinery.
//!
//! Everything else in the library sees a model as a [`Layout`] (its float parameters, in visiting
//! order, with their paths) and vectors in parameter space as [`ParamVector`]s of flat tensors.
//! Walking modules, matching gradients by `ParamId`, lifting values back onto the autodiff tape
//! with their flags, and decoupling BatchNorm running statistics all happen here, so the next
//! Burn release is a change to this file.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{GradientCheckpointingStrategy, Tensor};

use crate::vector::ParamVector;

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

#[derive(Default)]
struct LayoutVisitor {
    path: Vec<String>,
    entries: Vec<ParamEntry>,
    running: bool,
}

impl ModuleVisitor for LayoutVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // BatchNorm's running statistics are visited as floats too; they are buffers, not
        // parameters. (Any other buffer would only ever be seen without a gradient, which every
        // part of the step skips.)
        self.running = container_type == "Struct:BatchNorm" && name.starts_with("running_");
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

/// Runs `loss.backward()` and collects the gradients of `model`'s parameters. A model none of
/// whose parameters tracks a gradient (ESAM left every tensor out of this pass) has none: empty.
pub fn backward<M: Module>(loss: Tensor<1>, model: &M) -> GradientsParams {
    struct Tracked(bool);
    impl ModuleVisitor for Tracked {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 |= param.val().is_require_grad();
        }
    }
    let mut tracked = Tracked(false);
    model.visit(&mut tracked);
    if !tracked.0 {
        return GradientsParams::new();
    }
    GradientsParams::from_grads(loss.backward(), model)
}

/// The autodiff flags a parameter carries, put back on a value that was computed off the tape.
/// Without them a parameter would silently stop requiring gradients, drop out of data-parallel
/// synchronization or change its gradient-checkpointing strategy.
#[derive(Clone, Copy)]
struct Flags {
    require_grad: bool,
    distributed: bool,
    checkpointing: Option<GradientCheckpointingStrategy>,
}

impl Flags {
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
}

impl ModuleVisitor for FlagVisitor {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.flags.insert(param.id, Flags::of(&param.val()));
    }
}

/// Adds a vector's entries to the parameters, carrying their flags over.
struct AddMapper {
    index: HashMap<ParamId, usize>,
    /// Taken slot by slot: a tensor held only here takes the sum in place.
    slots: Vec<Option<Tensor<1>>>,
    flags: HashMap<ParamId, Flags>,
}

impl ModuleMapper for AddMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(&i) = self.index.get(&param.id) else {
            return param;
        };
        let Some(update) = self.slots.get_mut(i).and_then(Option::take) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let flags = self.flags.get(&id).copied().unwrap_or_else(|| Flags::of(&tensor));
        let shape = tensor.shape();
        let inner = tensor.inner() + update.reshape(shape);
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
    let mut flags = FlagVisitor { flags: HashMap::new() };
    model.visit(&mut flags);
    let decoupled = model.valid().train();
    decoupled.map(&mut AddMapper {
        index: layout.index(),
        slots: e.into_slots(),
        flags: flags.flags,
    })
}

/// A view of `model` whose parameters track no gradient: a forward pass on it builds no
/// autodiff graph, yet BatchNorm still normalizes with batch statistics (training mode).
pub fn untracked<M: Module>(model: &M) -> M {
    model.clone().no_grad()
}

/// A view of `model` (sharing its running statistics) in which the parameters whose entry in
/// `keep` is false track no gradient, so the backward pass skips their weight gradients.
pub fn with_tracked<M: Module>(model: &M, layout: &Layout, keep: &[bool]) -> M {
    struct Mapper {
        frozen: HashMap<ParamId, ()>,
    }
    impl ModuleMapper for Mapper {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.frozen.contains_key(&param.id) {
                let (id, tensor, mapper) = param.consume();
                Param::from_mapped_value(id, tensor.set_require_grad(false), mapper)
            } else {
                param
            }
        }
    }
    let frozen: HashMap<ParamId, ()> = layout
        .entries
        .iter()
        .zip(keep)
        .filter(|(_, k)| !**k)
        .map(|(e, _)| (e.id, ()))
        .collect();
    if frozen.is_empty() {
        return model.clone();
    }
    model.clone().map(&mut Mapper { frozen })
}

/// Reads a one-element (or any) float tensor back as `f64` values.
pub fn to_f64(tensor: Tensor<1>) -> Vec<f64> {
    tensor.into_data().iter::<f64>().collect()
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
