//! Built-in models selectable by name on the command line.

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{DType, Model};

/// Errors in a model specification.
#[derive(Debug, thiserror::Error)]
pub enum ModelSpecError {
    /// The text does not name a known model.
    #[error(
        "unknown model `{0}`: expected `curves` or `mlp:SIZES:ACTIVATIONS`, e.g. `mlp:784,100,10:sigmoid,softmax`"
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

/// Builds a model from its command-line name: `curves` (the Curves autoencoder) or
/// `mlp:784,100,10:sigmoid,softmax` (layer sizes, then one activation per layer).
pub fn model_from_spec(spec: &str, dtype: DType) -> Result<Model, ModelSpecError> {
    if spec == "curves" {
        return Ok(nn::autoencoder(&nn::CURVES_ENCODER, dtype)?);
    }
    let malformed =
        |reason: &str| ModelSpecError::Malformed { spec: spec.to_string(), reason: reason.to_string() };
    let Some(rest) = spec.strip_prefix("mlp:") else {
        return Err(ModelSpecError::Unknown(spec.to_string()));
    };
    let (sizes, activations) =
        rest.split_once(':').ok_or_else(|| malformed("expected `mlp:SIZES:ACTIVATIONS`"))?;
    let sizes: Vec<usize> = sizes
        .split(',')
        .map(|s| match s.trim().parse::<usize>() {
            Ok(0) => Err(malformed("layer sizes must be at least 1, got `0`")),
            Ok(n) => Ok(n),
            Err(_) => Err(malformed(&format!("`{s}` is not a layer size"))),
        })
        .collect::<Result<_, _>>()?;
    let activations: Vec<Activation> = activations
        .split(',')
        .map(|a| {
            Activation::from_name(a.trim()).ok_or_else(|| malformed(&format!("unknown activation `{a}`")))
        })
        .collect::<Result<_, _>>()?;
    nn::mlp(&sizes, &activations, dtype).map_err(|e| malformed(&e.to_string()))
}
