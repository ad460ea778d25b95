//! `spec.json`: an MLP or a convolutional network described as data, for the `fvp` and
//! `grad` commands.
//!
//! ```json
//! {"layers": [784, 100, 10], "activations": ["tanh", "softmax"], "output": "softmax"}
//! ```
//! One activation per layer, the last one being the output activation, which `output`
//! repeats: sigmoid ⇒ cross-entropy, softmax ⇒ negative log-likelihood on one-hot targets,
//! linear ⇒ ½·squared error; loss summed over outputs, averaged over examples.
//!
//! A convolutional network starts with a `conv` layer on images given as flat NHWC rows
//! (`H·W·C` values per example, channel fastest); `layers` then lists the dense layers'
//! sizes after it, and `activations` has the convolution's activation first:
//!
//! ```json
//! {"conv": {"image": [28, 28, 1], "filters": 16, "kernel": [5, 5], "stride": [2, 2], "padding": [0, 0]},
//!  "layers": [128, 10], "activations": ["sigmoid", "sigmoid", "sigmoid"], "output": "sigmoid"}
//! ```
//! Parameters, flat, in order: the filters `k1` `[KH, KW, C, F]` and biases `b1` `[F]`, then
//! per dense layer its weights `[fan_in, fan_out]` and biases (row-major; the first dense
//! layer's fan-in is `OH·OW·F`, the convolution's output flattened in NHWC order).

use std::path::Path;

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{DType, Model, Window};

/// The JSON form.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// A convolutional first layer (then `layers` are the dense sizes after it).
    #[serde(default)]
    pub conv: Option<ConvSpec>,
    /// Layer sizes, input first (after a `conv` layer: the dense layers' sizes).
    pub layers: Vec<usize>,
    /// One activation per layer.
    pub activations: Vec<String>,
    /// The output activation (selects the loss).
    pub output: String,
}

/// A convolutional first layer.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    /// Image height, width and channels.
    pub image: [usize; 3],
    /// Number of filters.
    pub filters: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (default 1×1).
    #[serde(default = "unit_stride")]
    pub stride: [usize; 2],
    /// Zero padding on each side (default none).
    #[serde(default)]
    pub padding: [usize; 2],
}

fn unit_stride() -> [usize; 2] {
    [1, 1]
}

/// Reads and builds the model of a spec file.
pub fn load(path: &Path, dtype: DType) -> Result<Model, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec: MlpSpec = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    build(&spec, dtype).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds the model a spec describes.
pub fn build(spec: &MlpSpec, dtype: DType) -> Result<Model, String> {
    let activations = spec
        .activations
        .iter()
        .map(|a| Activation::from_name(a).ok_or_else(|| format!("unknown activation \"{a}\"")))
        .collect::<Result<Vec<_>, _>>()?;
    if !["sigmoid", "softmax", "linear"].contains(&spec.output.as_str()) {
        return Err(format!(
            "output must be \"sigmoid\", \"softmax\" or \"linear\", got \"{}\"",
            spec.output
        ));
    }
    if spec.activations.last() != Some(&spec.output) {
        return Err(format!(
            "the last activation ({:?}) must be the output activation (\"{}\")",
            spec.activations.last(),
            spec.output
        ));
    }
    match &spec.conv {
        None => nn::mlp(&spec.layers, &activations, dtype),
        Some(conv) => {
            if conv.image.contains(&0) || conv.filters == 0 || spec.layers.contains(&0) {
                return Err("conv image sizes, filters and layer sizes must be at least 1".into());
            }
            let window = Window { kernel: conv.kernel, stride: conv.stride, padding: conv.padding };
            nn::convnet(conv.image, window, conv.filters, &spec.layers, &activations, dtype)
        }
    }
    .map_err(|e| e.to_string())
}
