//! Autodiff errors.

/// Everything `rop`, `lop` and the product builders can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Building a derivative node failed in the IR (a bug in a rule, or bad input types).
    #[error(transparent)]
    Ir(Box<natgrad_ir::Error>),
    /// A seed (tangent or cotangent) whose type differs from the node it seeds.
    #[error("{mode}: the seed for {site} has type {seed}, the node has type {node}")]
    SeedType {
        /// `rop` or `lop`.
        mode: &'static str,
        /// The seeded node (op, name, location).
        site: String,
        /// The seed's type.
        seed: String,
        /// The node's type.
        node: String,
    },
    /// Mismatched argument lists.
    #[error("{mode}: {what}")]
    Arguments {
        /// `rop` or `lop`.
        mode: &'static str,
        /// What is wrong.
        what: String,
    },
}

/// Result alias for the autodiff crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<natgrad_ir::Error> for Error {
    fn from(e: natgrad_ir::Error) -> Error {
        Error::Ir(Box::new(e))
    }
}
