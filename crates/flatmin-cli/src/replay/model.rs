//! The case's model: linear layers with tanh between them, weights stored as PyTorch does, and
//! its construction from a case's initial weights.

use burn::module::{Module, Param};
use burn::tensor::activation::tanh;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::case::Case;

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

/// A float tensor of `shape` on `device` in `dtype`.
pub(super) fn tensor2(values: &[f64], shape: [usize; 2], device: &Device, dtype: DType) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), (device, dtype))
}

/// The case's model at its initial weights.
pub(super) fn model_from(case: &Case, device: &Device, dtype: DType) -> Mlp {
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
