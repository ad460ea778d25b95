//! Built-in models selectable by name on the command line.

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{DType, Model};

/// Errors in a model specification.
#[derive(Debug, thiserror::Error)]
pub enum ModelSpecError {
    /// The text does not name a known model.
    #[error(
        "unknown model `{0}`: expected `curves`, `section7`, `mlp:SIZES:ACTIVATIONS` (e.g. `mlp:784,100,10:sigmoid,softmax`) or `autoencoder:ENCODER_SIZES` (e.g. `autoencoder:784,32,8`)"
    )]
    Unknown(String),
    /// A malformed `mlp:` specification.
    #[error("bad model spec `{spec}`: {reason}")]
    Malformed {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The IR rejected the model.
    #[error(transparent)]
    Ir(#[from] natgrad_ir::Error),
}

/// Builds a model from its command-line name: `curves` (the Curves autoencoder),
/// `mlp:784,100,10:sigmoid,softmax` (layer sizes, then one activation per layer) or
/// `autoencoder:784,32,8` (encoder sizes, mirrored into a decoder as the Curves autoencoder is)
/// or `section7` (the convolutional network of `bench unlabeled`).
pub fn model_from_spec(spec: &str, dtype: DType) -> Result<Model, ModelSpecError> {
    if spec == "curves" {
        return Ok(nn::autoencoder(&nn::CURVES_ENCODER, dtype)?);
    }
    if spec == "section7" {
        return Ok(crate::unlabeled_bench::model(&crate::unlabeled_bench::UnlabeledBench::default(), dtype)?);
    }
    let malformed =
        |reason: &str| ModelSpecError::Malformed { spec: spec.to_string(), reason: reason.to_string() };
    if let Some(sizes) = spec.strip_prefix("autoencoder:") {
        let sizes = layer_sizes(sizes).map_err(|reason| malformed(&reason))?;
        if sizes.len() < 2 {
            return Err(malformed("an autoencoder needs at least an input and a code size"));
        }
        return nn::autoencoder(&sizes, dtype).map_err(|e| malformed(&e.to_string()));
    }
    let Some(rest) = spec.strip_prefix("mlp:") else {
        return Err(ModelSpecError::Unknown(spec.to_string()));
    };
    let (sizes, activations) =
        rest.split_once(':').ok_or_else(|| malformed("expected `mlp:SIZES:ACTIVATIONS`"))?;
    let sizes = layer_sizes(sizes).map_err(|reason| malformed(&reason))?;
    let activations: Vec<Activation> = activations
        .split(',')
        .map(|a| {
            Activation::from_name(a.trim()).ok_or_else(|| malformed(&format!("unknown activation `{a}`")))
        })
        .collect::<Result<_, _>>()?;
    nn::mlp(&sizes, &activations, dtype).map_err(|e| malformed(&e.to_string()))
}

/// Comma-separated layer sizes, each at least 1.
fn layer_sizes(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|s| match s.trim().parse::<usize>() {
            Ok(0) => Err("layer sizes must be at least 1, got `0`".to_string()),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("`{s}` is not a layer size")),
        })
        .collect()
}
