//! Vectors in parameter space: one flat tensor per parameter, `None` where a parameter takes no
//! part (no gradient this pass). Norms and inner products are global over all present tensors,
//! as in every reference implementation (crates/flatmin/ALGORITHMS.md §1.3), and are read back to the host
//! in one transfer per call.

use burn::tensor::Tensor;

/// One flat tensor per parameter of a [`Layout`](crate::Layout), or `None`.
#[derive(Clone, Debug, Default)]
pub struct ParamVector {
    tensors: Vec<Option<Tensor<1>>>,
}

impl ParamVector {
    /// Wraps per-parameter flat tensors.
    pub fn new(tensors: Vec<Option<Tensor<1>>>) -> Self {
        Self { tensors }
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

    /// `scale * self`.
    pub fn scaled(&self, scale: f64) -> Self {
        self.map(|_, t| t.clone().mul_scalar(scale))
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
        inner_lazy(self.tensors.iter().flatten().map(|t| (t, t)).collect(), true)
    }

    /// The inner product with `other` over the slots both hold, as a device tensor (joined
    /// as in [`ParamVector::squared_norm_lazy`]).
    pub fn dot_lazy(&self, other: &Self) -> Option<Tensor<1>> {
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
