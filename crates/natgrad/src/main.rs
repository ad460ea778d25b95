//! The `natgrad` command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use natgrad::models::model_from_spec;
use natgrad::prelude::DType;

#[derive(Parser)]
#[command(name = "natgrad", version, about = "Natural-gradient training with a symbolic graph compiler")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the IR of a built-in model (text form, or Graphviz DOT with --dot).
    Ir {
        /// `curves` or `mlp:SIZES:ACTIVATIONS`, e.g. `mlp:784,100,10:sigmoid,softmax`.
        #[arg(long, default_value = "curves")]
        model: String,
        /// Element type of the model.
        #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
        dtype: DTypeArg,
        /// Print Graphviz DOT instead of the text form.
        #[arg(long)]
        dot: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DTypeArg {
    F32,
    F64,
}

impl From<DTypeArg> for DType {
    fn from(d: DTypeArg) -> DType {
        match d {
            DTypeArg::F32 => DType::F32,
            DTypeArg::F64 => DType::F64,
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Ir { model, dtype, dot } => {
            let model = model_from_spec(&model, dtype.into())?;
            if dot {
                print!("{}", model.graph.to_dot());
            } else {
                print!("{}", model.graph);
            }
        }
    }
    Ok(())
}
