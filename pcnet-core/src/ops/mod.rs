//! Image operations: 2-d convolution and pooling, on samples stored as NCHW rows.
//!
//! A batch of images is a row-major `rows x (channels * height * width)` block, each row
//! one sample in PyTorch's `C x H x W` order, so `nn.Flatten` is the identity on the data
//! and every op still sees "features per sample". The ops carry their input shape
//! ([`ImageShape`]) so their sizes are `const fn`s of the op alone.
//!
//! * [`Conv2d`]: PyTorch's `nn.Conv2d` (cross-correlation, zero padding, dilation 1,
//!   groups 1), weight `out x in x kh x kw` then bias, in the flat parameter slice. Its
//!   heavy loops go through [`Backend`](crate::Backend)'s `conv2d_*` methods, whose
//!   portable bodies are in [`kernels::conv`](crate::kernels::conv).
//! * [`Pool2d`] for `nn.MaxPool2d` and `nn.AvgPool2d` (no padding, floor rounding,
//!   average over `kh * kw`), whose loops are in [`kernels::pool`](crate::kernels::pool). Max pooling routes a gradient (and a tangent)
//!   to the first maximum of its window, as PyTorch does.
//!
#![cfg_attr(all(feature = "conv", feature = "cross-entropy"), doc = "```")]
#![cfg_attr(
    not(all(feature = "conv", feature = "cross-entropy")),
    doc = "```ignore"
)]
//! use pcnet_core::{Activation, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d};
//! const IMAGE: ImageShape = ImageShape::new(1, 28, 28);
//! const CONV: Conv2d = Conv2d::new(IMAGE, 10, [3, 3]);
//! const POOL: Pool2d = Pool2d::new(CONV.output_shape(), [2, 2]);
//! let layers = [
//!     Layer::from_ops(&[Op::Conv2d(CONV), Op::Activation(Activation::Relu), Op::MaxPool2d(POOL), Op::Flatten])?,
//!     Layer::dense(POOL.output_shape().len(), 10, Activation::Identity),
//! ];
//! let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
//! spec.validate()?;
//! assert_eq!(spec.width(1), 10 * 13 * 13);
//! assert_eq!(spec.parameter_len(), 10 * 9 + 10 + 1690 * 10 + 10);
//! # Ok::<(), pcnet_core::PcError>(())
//! ```

/// The shape of one sample of an image batch: `channels x height x width`, stored in
/// that order (NCHW without the N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ImageShape {
    /// Channels `C`.
    pub channels: usize,
    /// Height `H` (rows of an image).
    pub height: usize,
    /// Width `W` (columns of an image).
    pub width: usize,
}

impl ImageShape {
    /// `channels x height x width`.
    pub const fn new(channels: usize, height: usize, width: usize) -> ImageShape {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    /// Values per sample, `C * H * W` (saturating).
    pub const fn len(&self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// Values per channel, `H * W` (saturating).
    pub const fn plane(&self) -> usize {
        self.height.saturating_mul(self.width)
    }

    /// True when some dimension is zero.
    pub const fn is_empty(&self) -> bool {
        self.channels == 0 || self.height == 0 || self.width == 0
    }
}

/// Output length of a sliding window along one axis: `floor((n + 2 pad - k) / s) + 1`, or
/// 0 when the window does not fit or the stride is zero.
pub(crate) const fn window_count(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    let padded = size.saturating_add(pad.saturating_mul(2));
    if kernel == 0 || stride == 0 || padded < kernel || size == 0 {
        0
    } else {
        (padded - kernel) / stride + 1
    }
}

/// A 2-d convolution (`nn.Conv2d(in, out, kernel, stride, padding)`, dilation 1, groups 1).
///
/// Its parameters are the weight, `out_channels x input.channels x kh x kw` row-major
/// (PyTorch's layout), then the bias, `out_channels`.
///
/// ```
/// use pcnet_core::{Conv2d, ImageShape};
/// let conv = Conv2d::new(ImageShape::new(3, 32, 32), 64, [3, 3]).with_padding([1, 1]);
/// assert_eq!(conv.output_shape(), ImageShape::new(64, 32, 32));
/// assert_eq!(conv.parameter_len(), 64 * 3 * 9 + 64);
/// let strided = Conv2d::new(ImageShape::new(1, 9, 8), 4, [3, 3]).with_stride([2, 2]).with_padding([1, 1]);
/// assert_eq!(strided.output_shape(), ImageShape::new(4, 5, 4));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Shape of one input sample.
    pub input: ImageShape,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding `[ph, pw]` on each side.
    pub padding: [usize; 2],
}

impl Conv2d {
    /// Stride 1, no padding.
    pub const fn new(input: ImageShape, out_channels: usize, kernel: [usize; 2]) -> Conv2d {
        Conv2d {
            input,
            out_channels,
            kernel,
            stride: [1, 1],
            padding: [0, 0],
        }
    }

    /// The same convolution with stride `[sh, sw]`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub const fn with_stride(self, stride: [usize; 2]) -> Conv2d {
        Conv2d { stride, ..self }
    }

    /// The same convolution with zero padding `[ph, pw]`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub const fn with_padding(self, padding: [usize; 2]) -> Conv2d {
        Conv2d { padding, ..self }
    }

    /// Shape of one output sample (a zero dimension when the kernel does not fit).
    pub const fn output_shape(&self) -> ImageShape {
        ImageShape {
            channels: self.out_channels,
            height: window_count(
                self.input.height,
                self.kernel[0],
                self.stride[0],
                self.padding[0],
            ),
            width: window_count(
                self.input.width,
                self.kernel[1],
                self.stride[1],
                self.padding[1],
            ),
        }
    }

    /// Values per output channel's filter, `in * kh * kw`.
    pub const fn filter_len(&self) -> usize {
        self.input
            .channels
            .saturating_mul(self.kernel[0])
            .saturating_mul(self.kernel[1])
    }

    /// Length of the weight, `out * in * kh * kw`.
    pub const fn weight_len(&self) -> usize {
        self.out_channels.saturating_mul(self.filter_len())
    }

    /// Number of parameters: weight then bias.
    pub const fn parameter_len(&self) -> usize {
        self.weight_len().saturating_add(self.out_channels)
    }

    /// Length of an im2col matrix of one sample, `(in * kh * kw) x (OH * OW)`: what a
    /// backend that lowers the convolution to a matrix product needs as scratch (the
    /// portable kernels need none).
    pub const fn columns_len(&self) -> usize {
        self.filter_len()
            .saturating_mul(self.output_shape().plane())
    }

    /// Why the convolution is unusable, if it is.
    #[cfg(feature = "conv")]
    pub(crate) const fn problem(&self) -> Option<&'static str> {
        if self.input.is_empty() {
            Some("conv2d: the input shape has a zero dimension")
        } else if self.out_channels == 0 {
            Some("conv2d: zero output channels")
        } else if self.kernel[0] == 0 || self.kernel[1] == 0 {
            Some("conv2d: zero kernel size")
        } else if self.stride[0] == 0 || self.stride[1] == 0 {
            Some("conv2d: zero stride")
        } else if self.output_shape().is_empty() {
            Some("conv2d: the kernel is larger than the padded input")
        } else {
            None
        }
    }
}

/// A 2-d pooling window (`nn.MaxPool2d(kernel, stride)` / `nn.AvgPool2d(kernel, stride)`):
/// no padding, output size rounded down, one window per channel.
///
/// ```
/// use pcnet_core::{ImageShape, Pool2d};
/// let pool = Pool2d::new(ImageShape::new(10, 26, 26), [2, 2]);
/// assert_eq!(pool.output_shape(), ImageShape::new(10, 13, 13));
/// let overlapping = Pool2d::new(ImageShape::new(3, 5, 4), [2, 2]).with_stride([1, 1]);
/// assert_eq!(overlapping.output_shape(), ImageShape::new(3, 4, 3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Shape of one input sample.
    pub input: ImageShape,
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
}

impl Pool2d {
    /// A pool whose stride equals its window (PyTorch's default).
    pub const fn new(input: ImageShape, kernel: [usize; 2]) -> Pool2d {
        Pool2d {
            input,
            kernel,
            stride: kernel,
        }
    }

    /// The same pool with stride `[sh, sw]`.
    #[must_use = "returns the changed value; the original is not modified"]
    pub const fn with_stride(self, stride: [usize; 2]) -> Pool2d {
        Pool2d { stride, ..self }
    }

    /// Shape of one output sample (a zero dimension when the window does not fit).
    pub const fn output_shape(&self) -> ImageShape {
        ImageShape {
            channels: self.input.channels,
            height: window_count(self.input.height, self.kernel[0], self.stride[0], 0),
            width: window_count(self.input.width, self.kernel[1], self.stride[1], 0),
        }
    }

    /// Why the pool is unusable, if it is.
    #[cfg(feature = "conv")]
    pub(crate) const fn problem(&self) -> Option<&'static str> {
        if self.input.is_empty() {
            Some("pool2d: the input shape has a zero dimension")
        } else if self.kernel[0] == 0 || self.kernel[1] == 0 {
            Some("pool2d: zero window size")
        } else if self.stride[0] == 0 || self.stride[1] == 0 {
            Some("pool2d: zero stride")
        } else if self.output_shape().is_empty() {
            Some("pool2d: the window is larger than the input")
        } else {
            None
        }
    }
}

#[cfg(all(test, feature = "conv"))]
mod tests;
