//! Errors of lowering, input checks and backends.

use natgrad_ir::DType;

/// Errors of lowering and of running a compiled plan on any backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The graph or the simplifier failed.
    #[error(transparent)]
    Ir(#[from] natgrad_ir::Error),
    /// The graph cannot be lowered.
    #[error("lowering: {0}")]
    Lowering(String),
    /// A backend failed to generate or load code (a bug; please report with the IR).
    #[error("{backend} backend: {message}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// The requested device is not available in this build or on this machine.
    #[error("device {device}: {why}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why it cannot be used.
        why: String,
    },
    /// A node of another dtype than the program's.
    #[error("{node} has dtype {got}, but the program computes in {expected}")]
    DType {
        /// The node.
        node: String,
        /// The program's dtype.
        expected: DType,
        /// The node's.
        got: DType,
    },
    /// A name that is no input or param of the program.
    #[error("the program has no input or param named '{name}'")]
    UnknownInput {
        /// The name given.
        name: String,
    },
    /// A buffer of the wrong length.
    #[error("input '{name}' expects {ty} = {expected} values at batch size {batch}, got {got}")]
    Length {
        /// Input name.
        name: String,
        /// Its type.
        ty: String,
        /// The session's batch size.
        batch: usize,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// An output read into a buffer of the wrong length.
    #[error(
        "output {index} holds {ty} = {expected} values at batch size {batch}, the buffer given has {got}"
    )]
    OutputLength {
        /// Output index.
        index: usize,
        /// Its type.
        ty: String,
        /// The session's batch size.
        batch: usize,
        /// Values it holds.
        expected: usize,
        /// Length of the buffer given.
        got: usize,
    },
    /// An input needed by the phase being run was never set.
    #[error("input '{name}' was not set before running")]
    Unbound {
        /// Input name.
        name: String,
    },
    /// A batch size at which a value would not fit in memory that can be addressed.
    #[error("batch size {batch}: {node} ({ty}) would need more memory than can be addressed")]
    BatchTooLarge {
        /// The batch size asked for.
        batch: usize,
        /// The first value too large (or `all buffers together`).
        node: String,
        /// Its type.
        ty: String,
    },
    /// Memory the machine would not give.
    #[error("out of memory: {what} needs {}, which could not be allocated", bytes_text(*bytes))]
    OutOfMemory {
        /// What the memory was for.
        what: String,
        /// Bytes asked for (`usize::MAX`: more than can be addressed).
        bytes: usize,
    },
    /// A phase or output index the program does not have.
    #[error("{what} {index} out of range: the program has {count}")]
    OutOfRange {
        /// `phase` or `output`.
        what: &'static str,
        /// The index given.
        index: usize,
        /// How many there are.
        count: usize,
    },
}

/// `N bytes (G GiB)`, or `more bytes than can be addressed` for `usize::MAX`.
fn bytes_text(bytes: usize) -> String {
    match bytes {
        usize::MAX => "more bytes than can be addressed".into(),
        _ => format!("{bytes} bytes ({:.1} GiB)", bytes as f64 / (1u64 << 30) as f64),
    }
}
