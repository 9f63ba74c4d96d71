//! The laboratory's models, for 28×28×1 (MNIST-like) and 32×32×3 (CIFAR-like) inputs: an MLP, a
//! small CNN, ResNet-18 (CIFAR variant) and WRN-28-10, the last two with BatchNorm.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// A model the laboratory trains: images `[n, c, h, w]` to logits `[n, classes]`.
pub trait Classifier: Module + Sized {
    /// Logits for a batch of images.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
}

/// The shape of the inputs and the number of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputShape {
    /// Channels (1 or 3).
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Classes.
    pub classes: usize,
}

/// The architectures `--model` accepts.
pub const MODELS: [&str; 4] = ["mlp", "cnn", "resnet18", "wrn-28-10"];

/// One hidden layer of 256 ReLU units.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Linear,
    out: Linear,
}

impl Mlp {
    /// A new MLP for `shape`.
    pub fn new(shape: InputShape, device: &Device) -> Self {
        let inputs = shape.channels * shape.height * shape.width;
        Self {
            hidden: LinearConfig::new(inputs, 256).init(device),
            out: LinearConfig::new(256, shape.classes).init(device),
        }
    }
}

impl Classifier for Mlp {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = images.dims();
        let x = images.reshape([n, c * h * w]);
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

fn conv3x3(input: usize, output: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .init(device)
}

/// Two 3×3 convolutions (16 and 32 channels) with max pooling, then two linear layers: small
/// enough to train on two CPU cores in a minute, large enough to reach ~85 % on Fashion-MNIST.
#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    hidden: Linear,
    out: Linear,
}

impl SmallCnn {
    /// A new small CNN for `shape`.
    pub fn new(shape: InputShape, device: &Device) -> Self {
        let flat = 32 * (shape.height / 4) * (shape.width / 4);
        Self {
            conv1: conv3x3(shape.channels, 16, 1, true, device),
            conv2: conv3x3(16, 32, 1, true, device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            hidden: LinearConfig::new(flat, 128).init(device),
            out: LinearConfig::new(128, shape.classes).init(device),
        }
    }
}

impl Classifier for SmallCnn {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(images)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        let [n, c, h, w] = x.dims();
        let x = x.reshape([n, c * h * w]);
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// ResNet's basic block: two 3×3 convolutions with BatchNorm and a projection shortcut when the
/// shape changes.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<Shortcut>,
}

/// A 1×1 convolution with BatchNorm on the residual path.
#[derive(Module, Debug)]
pub struct Shortcut {
    conv: Conv2d,
    bn: BatchNorm,
}

impl BasicBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || input != output).then(|| Shortcut {
            conv: Conv2dConfig::new([input, output], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(output).init(device),
        });
        Self {
            conv1: conv3x3(input, output, stride, false, device),
            bn1: BatchNormConfig::new(output).init(device),
            conv2: conv3x3(output, output, 1, false, device),
            bn2: BatchNormConfig::new(output).init(device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let out = self.bn2.forward(self.conv2.forward(out));
        let skip = match &self.shortcut {
            Some(s) => s.bn.forward(s.conv.forward(x)),
            None => x,
        };
        relu(out + skip)
    }
}

/// ResNet-18, CIFAR variant: a 3×3 stem at stride 1, no max pool, four stages of two basic
/// blocks (64, 128, 256, 512 channels), global average pooling.
#[derive(Module, Debug)]
pub struct ResNet18 {
    stem: Conv2d,
    bn: BatchNorm,
    blocks: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    out: Linear,
}

impl ResNet18 {
    /// A new ResNet-18 for `shape`.
    pub fn new(shape: InputShape, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut input = 64;
        for (stage, width) in [64, 128, 256, 512].into_iter().enumerate() {
            for b in 0..2 {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(input, width, stride, device));
                input = width;
            }
        }
        Self {
            stem: conv3x3(shape.channels, 64, 1, false, device),
            bn: BatchNormConfig::new(64).init(device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            out: LinearConfig::new(512, shape.classes).init(device),
        }
    }
}

impl Classifier for ResNet18 {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.bn.forward(self.stem.forward(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [n, c, _, _] = x.dims();
        self.out.forward(self.pool.forward(x).reshape([n, c]))
    }
}

/// A small ResNet for benchmarks: a 3×3 stem (16 channels) with BatchNorm, three basic blocks
/// (16 channels at stride 1, 32 and 64 at stride 2), global average pooling and a linear head.
/// About 79 k parameters: ResNet's operations (convolutions, BatchNorm, residual sums) at a size
/// two CPU cores can time in seconds.
#[derive(Module, Debug)]
pub struct ResNetStack {
    stem: Conv2d,
    bn: BatchNorm,
    blocks: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    out: Linear,
}

impl ResNetStack {
    /// A new block stack for `shape`.
    pub fn new(shape: InputShape, device: &Device) -> Self {
        let blocks = vec![
            BasicBlock::new(16, 16, 1, device),
            BasicBlock::new(16, 32, 2, device),
            BasicBlock::new(32, 64, 2, device),
        ];
        Self {
            stem: conv3x3(shape.channels, 16, 1, false, device),
            bn: BatchNormConfig::new(16).init(device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            out: LinearConfig::new(64, shape.classes).init(device),
        }
    }
}

impl Classifier for ResNetStack {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.bn.forward(self.stem.forward(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [n, c, _, _] = x.dims();
        self.out.forward(self.pool.forward(x).reshape([n, c]))
    }
}

/// Wide ResNet's pre-activation block: BN-ReLU-conv twice, projection shortcut on shape change.
#[derive(Module, Debug)]
pub struct WideBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl WideBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || input != output).then(|| {
            Conv2dConfig::new([input, output], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device)
        });
        Self {
            bn1: BatchNormConfig::new(input).init(device),
            conv1: conv3x3(input, output, stride, false, device),
            bn2: BatchNormConfig::new(output).init(device),
            conv2: conv3x3(output, output, 1, false, device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pre = relu(self.bn1.forward(x.clone()));
        let out = self.conv1.forward(pre.clone());
        let out = self.conv2.forward(relu(self.bn2.forward(out)));
        let skip = match &self.shortcut {
            Some(conv) => conv.forward(pre),
            None => x,
        };
        out + skip
    }
}

/// WRN-28-10 (Zagoruyko & Komodakis): depth 28 (4 blocks per group), widening 10 (160, 320,
/// 640 channels), no dropout. About 36 M parameters: a GPU model.
#[derive(Module, Debug)]
pub struct WideResNet {
    stem: Conv2d,
    blocks: Vec<WideBlock>,
    bn: BatchNorm,
    pool: AdaptiveAvgPool2d,
    out: Linear,
}

impl WideResNet {
    /// A WRN of `depth` (6n + 4) and widening factor `widen` for `shape`.
    pub fn new(shape: InputShape, depth: usize, widen: usize, device: &Device) -> Self {
        let per_group = (depth - 4) / 6;
        let widths = [16 * widen, 32 * widen, 64 * widen];
        let mut blocks = Vec::new();
        let mut input = 16;
        for (group, width) in widths.into_iter().enumerate() {
            for b in 0..per_group {
                let stride = if group > 0 && b == 0 { 2 } else { 1 };
                blocks.push(WideBlock::new(input, width, stride, device));
                input = width;
            }
        }
        Self {
            stem: conv3x3(shape.channels, 16, 1, false, device),
            blocks,
            bn: BatchNormConfig::new(input).init(device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            out: LinearConfig::new(input, shape.classes).init(device),
        }
    }
}

impl Classifier for WideResNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = relu(self.bn.forward(x));
        let [n, c, _, _] = x.dims();
        self.out.forward(self.pool.forward(x).reshape([n, c]))
    }
}
