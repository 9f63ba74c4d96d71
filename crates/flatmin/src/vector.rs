//! Vectors in parameter space: one flat tensor per parameter, `None` where a parameter takes no
//! part (no gradient this pass). Norms and inner products are global over all present tensors,
//! as in every reference implementation (crates/flatmin/ALGORITHMS.md §1.3), and are read back to the host
//! in one transfer per call.
//!
//! Where each operation is a kernel launch (a GPU), a vector may also be *joined*: its tensors
//! are views of one buffer, each at an offset aligned for the device, with zeros between them,
//! so that a step's element-wise work and norms are one operation over the buffer instead of
//! one per tensor ([`ParamVector::joined`]). Every slot is still a tensor of its own, so code
//! that works slot by slot reads a joined vector as any other.

use std::sync::Arc;

use burn::tensor::Tensor;

/// One flat tensor per parameter of a [`Layout`](crate::Layout), or `None`.
#[derive(Clone, Debug, Default)]
pub struct ParamVector {
    tensors: Vec<Option<Tensor<1>>>,
    /// The buffer the slots are views of, when the vector is joined (boxed: a Burn tensor
    /// handle is large, and most vectors are not joined).
    joined: Option<Box<Joined>>,
}

/// The buffer of a joined [`ParamVector`] and where each slot lies in it.
#[derive(Clone, Debug)]
struct Joined {
    buffer: Tensor<1>,
    segments: Arc<Segments>,
}

/// Where each slot of a joined vector lies in its buffer: `(start, len)`, `None` for an absent
/// slot; the buffer's length. Two vectors with equal segments can be combined buffer to buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Segments {
    slots: Vec<Option<(usize, usize)>>,
    total: usize,
}

impl Segments {
    /// `(start, len)` of each slot in the buffer, `None` where the slot is absent.
    pub(crate) fn slots(&self) -> &[Option<(usize, usize)>] {
        &self.slots
    }
}

/// Bytes each segment of a joined buffer starts at a multiple of: a view at such an offset
/// (whose length is a multiple of the device's own alignment) is the buffer itself, not a
/// copy (Burn's CubeCL `slice`); 256 is the most the WebGPU and Vulkan specifications let a
/// device require of a storage buffer's offset.
const SEGMENT_ALIGN_BYTES: usize = 256;

impl ParamVector {
    /// Wraps per-parameter flat tensors.
    pub fn new(tensors: Vec<Option<Tensor<1>>>) -> Self {
        Self { tensors, joined: None }
    }

    /// This vector with its tensors views of one buffer, on a fused GPU (whose tensors have
    /// identities, [`bridge::identities`](crate::bridge)) and when there are at least two
    /// tensors of one float type: one copy per tensor now, after which
    /// [`ParamVector::scaled`], [`ParamVector::plus`], the norms and the base optimizer's
    /// update are one operation each, and a view costs nothing. Anywhere else the vector as it
    /// is: on the CPU backend a copy costs more than an operation (and the conformance cases
    /// pin its results bit for bit); on LibTorch a view would not be kept between steps.
    pub(crate) fn joined(&self) -> Self {
        if self.joined.is_some() {
            return self.clone();
        }
        let mut present = self.tensors.iter().flatten();
        let Some(first) = present.next() else {
            return self.clone();
        };
        let dtype = first.dtype();
        if !crate::bridge::has_identity(first)
            || self.tensors.iter().flatten().count() < 2
            || present.any(|t| t.dtype() != dtype)
        {
            return self.clone();
        }
        let align = (SEGMENT_ALIGN_BYTES / dtype.size()).max(1);
        let mut at = 0;
        let slots = self
            .tensors
            .iter()
            .map(|t| {
                t.as_ref().map(|t| {
                    let len = t.dims()[0];
                    let start = at;
                    at += len.div_ceil(align) * align;
                    (start, len)
                })
            })
            .collect();
        let segments = Arc::new(Segments { slots, total: at });
        let mut buffer = Tensor::zeros([segments.total], (&first.device(), dtype));
        for (t, seg) in self.tensors.iter().zip(&segments.slots) {
            if let (Some(t), Some((start, len))) = (t, seg) {
                buffer = buffer.slice_assign(*start..start + len, t.clone());
            }
        }
        Self::from_buffer(buffer, segments)
    }

    /// The joined vector whose slots are the views of `buffer` (its padding between segments
    /// zero) at `segments`.
    pub(crate) fn from_buffer(buffer: Tensor<1>, segments: Arc<Segments>) -> Self {
        let tensors = segments
            .slots
            .iter()
            .map(|seg| seg.map(|(start, len)| buffer.clone().slice(start..start + len)))
            .collect();
        Self {
            tensors,
            joined: Some(Box::new(Joined { buffer, segments })),
        }
    }

    /// The buffers of `self` and `other` when both are joined alike (equal segments).
    fn joined_alike<'a>(&'a self, other: &'a Self) -> Option<(&'a Tensor<1>, &'a Tensor<1>, &'a Arc<Segments>)> {
        let (a, b) = (self.joined.as_ref()?, other.joined.as_ref()?);
        (Arc::ptr_eq(&a.segments, &b.segments) || a.segments == b.segments).then_some((
            &a.buffer,
            &b.buffer,
            &a.segments,
        ))
    }

    /// The buffer and segments of a joined vector (`None`: not joined).
    pub(crate) fn buffer(&self) -> Option<(&Tensor<1>, &Arc<Segments>)> {
        self.joined.as_ref().map(|j| (&j.buffer, &j.segments))
    }

    /// `self + other` where `other` is present (the other slots left out), as one operation
    /// when both are joined alike: the weights moved by an offset.
    pub(crate) fn plus(&self, other: &Self) -> Self {
        if let Some((a, b, segments)) = self.joined_alike(other) {
            return Self::from_buffer(a.clone() + b.clone(), segments.clone());
        }
        other.zip_map(self, |e, w| {
            w.expect("the weights cover the offset").clone() + e.clone()
        })
    }

    /// Number of slots (parameters of the layout).
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor of slot `i`, if present.
    pub fn get(&self, i: usize) -> Option<&Tensor<1>> {
        self.tensors.get(i).and_then(Option::as_ref)
    }

    /// Whether slot `i` holds a tensor.
    pub fn has(&self, i: usize) -> bool {
        self.get(i).is_some()
    }

    /// Whether no slot holds a tensor.
    pub fn is_vacant(&self) -> bool {
        self.tensors.iter().all(Option::is_none)
    }

    /// The slots, in order.
    pub fn slots(&self) -> &[Option<Tensor<1>>] {
        &self.tensors
    }

    /// Consumes the vector into its slots.
    pub fn into_slots(self) -> Vec<Option<Tensor<1>>> {
        self.tensors
    }

    /// Applies `f` to every present tensor.
    pub fn map(&self, mut f: impl FnMut(usize, &Tensor<1>) -> Tensor<1>) -> Self {
        Self::new(
            self.tensors
                .iter()
                .enumerate()
                .map(|(i, t)| t.as_ref().map(|t| f(i, t)))
                .collect(),
        )
    }

    /// Combines slot by slot where `self` is present; `other`'s slot may be absent.
    pub fn zip_map(&self, other: &Self, mut f: impl FnMut(&Tensor<1>, Option<&Tensor<1>>) -> Tensor<1>) -> Self {
        Self::new(
            self.tensors
                .iter()
                .enumerate()
                .map(|(i, t)| t.as_ref().map(|t| f(t, other.get(i))))
                .collect(),
        )
    }

    /// `scale * self` (one operation over the buffer of a joined vector).
    pub fn scaled(&self, scale: f64) -> Self {
        match &self.joined {
            Some(j) => Self::from_buffer(j.buffer.clone().mul_scalar(scale), j.segments.clone()),
            None => self.map(|_, t| t.clone().mul_scalar(scale)),
        }
    }

    /// The squared global L2 norm, as a one-element device tensor (not read back).
    ///
    /// On a device where every operation is a kernel launch (a GPU, LibTorch), the small tensors
    /// (under 65,536 elements: biases, normalizations' scales) are joined into one buffer and
    /// dotted once, one copy each and one reduction where a dot each would cost several
    /// launches; a large tensor, whose copy would cost more than its launches, is dotted in
    /// place. On the CPU backend (`flex`), where an operation costs little but a copy does, each
    /// tensor is dotted in place.
    pub fn squared_norm_lazy(&self) -> Option<Tensor<1>> {
        if let Some(j) = &self.joined {
            return Some(dot(&j.buffer, &j.buffer));
        }
        inner_lazy(self.tensors.iter().flatten().map(|t| (t, t)).collect(), true)
    }

    /// The inner product with `other` over the slots both hold, as a device tensor (joined
    /// as in [`ParamVector::squared_norm_lazy`]).
    pub fn dot_lazy(&self, other: &Self) -> Option<Tensor<1>> {
        if let Some((a, b, _)) = self.joined_alike(other) {
            return Some(dot(a, b));
        }
        let pairs = self
            .tensors
            .iter()
            .zip(&other.tensors)
            .filter_map(|(a, b)| Some((a.as_ref()?, b.as_ref()?)))
            .collect();
        inner_lazy(pairs, false)
    }

    /// The global L2 norm (0 when no slot is present).
    pub fn norm(&self) -> f64 {
        read(vec![self.squared_norm_lazy()])[0].sqrt()
    }
}

/// Tensors under this many elements are joined before a global inner product on a device
/// where operations are launches (their copy costs less than the launches of a dot); larger
/// ones are dotted where they are.
const JOIN_BELOW: usize = 65_536;

/// `Σ a_i·b_i` over pairs of flat tensors, as a device tensor: see
/// [`ParamVector::squared_norm_lazy`]. `same`: every pair is a tensor with itself (a squared
/// norm), so the joined buffer is made once.
fn inner_lazy(pairs: Vec<(&Tensor<1>, &Tensor<1>)>, same: bool) -> Option<Tensor<1>> {
    let first = pairs.first()?.0;
    if !launches_cost(first) {
        return sum_all(pairs.into_iter().map(|(a, b)| dot(a, b)));
    }
    let dtype = first.dtype();
    let (small, large): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(a, b)| a.dims()[0] < JOIN_BELOW && a.dtype() == dtype && b.dtype() == dtype);
    let mut terms: Vec<Tensor<1>> = large.into_iter().map(|(a, b)| dot(a, b)).collect();
    if small.len() > 1 {
        let a = Tensor::cat(small.iter().map(|p| p.0.clone()).collect(), 0);
        let b = match same {
            true => a.clone(),
            false => Tensor::cat(small.iter().map(|p| p.1.clone()).collect(), 0),
        };
        terms.push(dot(&a, &b));
    } else {
        terms.extend(small.into_iter().map(|(a, b)| dot(a, b)));
    }
    sum_all(terms.into_iter())
}

/// `a · b` of two flat tensors of one length, as a one-element device tensor.
///
/// On the CPU backend (`flex`) a `[1, n] × [n, 1]` matrix product: one pass over both operands
/// and no temporary of their size, where `(a * b).sum()` first writes an `n`-element product
/// and then reads it again (15 µs against 115 µs for 200 k `f32` elements). Where operations
/// are launches, the product summed in rows ([`sum_in_rows`]): Burn 0.22.1's reductions of a
/// whole long tensor give wrong sums on wgpu (lavapipe, 2026-12-07): the matrix product
/// counts at most 65,535 vector lanes of `K` (203,530 ones dotted with themselves gave
/// 131,070) and `sum()` at most about 262,000 elements (1,000,000 ones summed to 262,132),
/// silently.
pub(crate) fn dot(a: &Tensor<1>, b: &Tensor<1>) -> Tensor<1> {
    let n = a.dims()[0];
    if n == 0 {
        return Tensor::zeros([1], (&a.device(), a.dtype()));
    }
    if launches_cost(a) {
        return sum_in_rows(a.clone() * b.clone());
    }
    a.clone().reshape([1, n]).matmul(b.clone().reshape([n, 1])).reshape([1])
}

/// Elements per row of [`sum_in_rows`].
const ROW: usize = 4096;

/// The sum of a flat tensor in reductions no longer than [`ROW`]: rows of `ROW` elements
/// summed across (at most `ROW` rows at a time), their sums summed, and the remainder summed
/// alone. Each reduction stays far inside the sizes Burn's wgpu kernels sum correctly.
fn sum_in_rows(x: Tensor<1>) -> Tensor<1> {
    let n = x.dims()[0];
    if n <= ROW {
        return x.sum();
    }
    let block = ROW * ROW;
    if n > block {
        return (0..n)
            .step_by(block)
            .map(|start| sum_in_rows(x.clone().slice(start..(start + block).min(n))))
            .reduce(|a, b| a + b)
            .expect("n > 0");
    }
    let rows = n / ROW;
    let head = rows * ROW;
    let total = x.clone().slice(0..head).reshape([rows, ROW]).sum_dim(1).sum();
    match head < n {
        true => total + x.slice(head..n).sum(),
        false => total,
    }
}

/// The sum of one-element device tensors (`None` slots left out), itself on the device.
pub(crate) fn sum(terms: Vec<Option<Tensor<1>>>) -> Option<Tensor<1>> {
    sum_all(terms.into_iter().flatten())
}

/// Sums one-element tensors on the device: joined and summed on the CPU backend; added one to
/// the next where operations are kernel launches, a chain that a fusing backend runs as a few
/// kernels instead of one copy per term.
fn sum_all(terms: impl Iterator<Item = Tensor<1>>) -> Option<Tensor<1>> {
    let terms: Vec<Tensor<1>> = terms.collect();
    let first = terms.first()?;
    if launches_cost(first) {
        terms.into_iter().reduce(|a, b| a + b)
    } else {
        Some(Tensor::cat(terms, 0).sum())
    }
}

/// Whether `t` lives where each operation is a kernel launch or a call with a fixed cost (a
/// GPU, LibTorch): everything but Burn's `flex` CPU backend, whose results the conformance
/// cases pin to the last bit.
fn launches_cost(t: &Tensor<1>) -> bool {
    !matches!(
        t.device().without_autodiff().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

/// Reads several one-element device scalars back in one transfer (`None` reads as 0).
pub fn read(values: Vec<Option<Tensor<1>>>) -> Vec<f64> {
    let present: Vec<Tensor<1>> = values.iter().flatten().cloned().collect();
    let mut read = if present.is_empty() {
        Vec::new()
    } else {
        to_f64(Tensor::cat(present, 0))
    }
    .into_iter();
    values
        .iter()
        .map(|v| match v {
            Some(_) => read.next().unwrap_or(f64::NAN),
            None => 0.0,
        })
        .collect()
}

/// Reads a one-element (or any) float tensor back as `f64` values.
pub fn to_f64(tensor: Tensor<1>) -> Vec<f64> {
    tensor.into_data().iter::<f64>().collect()
}
