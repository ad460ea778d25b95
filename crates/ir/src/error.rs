//! Typed errors. Every message names the op, the node's user name and source location,
//! and the types involved.

use std::fmt;

/// Where an error happened: the op, the node's user name, and the source location of the
/// builder call — printed as `matmul 'h1' at examples/mlp.rs:14`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// Op name (as in the text form).
    pub op: &'static str,
    /// The node's user name, if it has one.
    pub name: Option<String>,
    /// `file:line` of the builder call, or `line N` of a parsed text form.
    pub location: Option<String>,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op)?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        Ok(())
    }
}

/// Every error the IR crate returns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Operand types that the op cannot take (shapes, dtypes, attributes).
    #[error("{site}: {message}")]
    Type {
        /// Where.
        site: Site,
        /// The types involved and what is wrong with them.
        message: String,
    },
    /// Wrong number of operands.
    #[error("{site}: takes {expected} operand(s), got {got}")]
    Arity {
        /// Where.
        site: Site,
        /// Operands the op takes.
        expected: usize,
        /// Operands given.
        got: usize,
    },
    /// An operand id that is not a node of the graph.
    #[error("{site}: operand #{operand} is not a node of this graph (it has {len} nodes)")]
    UnknownNode {
        /// Where.
        site: Site,
        /// The bad id.
        operand: usize,
        /// Number of nodes in the graph.
        len: usize,
    },
    /// Two leaves (inputs/params) with one name but different types or kinds.
    #[error("{site}: the name {name:?} is already used by `{existing}`")]
    DuplicateName {
        /// Where.
        site: Site,
        /// The clashing name.
        name: String,
        /// The text form of the existing leaf.
        existing: String,
    },
    /// A syntax or type error in the text form.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value bound for evaluation is missing or has the wrong shape.
    #[error("{message}")]
    Binding {
        /// What is wrong, naming the input and both shapes.
        message: String,
    },
    /// A failure inside evaluation (after binding checks).
    #[error("evaluating {site}: {message}")]
    Eval {
        /// Where.
        site: Site,
        /// What is wrong.
        message: String,
    },
}

/// Result alias for the IR crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
