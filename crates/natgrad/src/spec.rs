//! `spec.json`: an MLP described as data, for the `fvp` and `grad` commands.
//!
//! ```json
//! {"layers": [784, 100, 10], "activations": ["tanh", "softmax"], "output": "softmax"}
//! ```
//! One activation per layer, the last one being the output activation, which `output`
//! repeats: sigmoid ⇒ cross-entropy, softmax ⇒ negative log-likelihood on one-hot targets,
//! linear ⇒ ½·squared error; loss summed over outputs, averaged over examples.

use std::path::Path;

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{DType, Model};

/// The JSON form.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// Layer sizes, input first.
    pub layers: Vec<usize>,
    /// One activation per layer.
    pub activations: Vec<String>,
    /// The output activation (selects the loss).
    pub output: String,
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
    nn::mlp(&spec.layers, &activations, dtype).map_err(|e| e.to_string())
}
