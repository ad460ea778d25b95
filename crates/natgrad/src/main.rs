//! The `natgrad` command-line tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use natgrad::autodiff;
use natgrad::models::model_from_spec;
use natgrad::prelude::DType;
use natgrad::rewrite;

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
        /// Print a derived graph instead of the model itself.
        #[arg(long, value_enum)]
        product: Option<ProductArg>,
        /// Run the simplifier first (the text form then lists the fusion groups).
        #[arg(long)]
        optimized: bool,
        /// Print node counts, matmuls, FLOPs and simplify time before/after instead of the IR.
        #[arg(long)]
        stats: bool,
        /// Print Graphviz DOT instead of the text form.
        #[arg(long)]
        dot: bool,
    },
}

/// Which derived graph `natgrad ir` prints.
#[derive(Clone, Copy, ValueEnum)]
enum ProductArg {
    /// Loss and gradient on the gradient batch.
    Gradient,
    /// Fisher-vector product on the metric batch (eq. 7, 8, 30).
    Fisher,
    /// Extended Gauss-Newton product (eq. 10).
    GaussNewton,
    /// Empirical Fisher (TONGA, eq. 9).
    EmpiricalFisher,
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
    init_tracing();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Node counts, matmuls, FLOPs at batch 1000 and simplify time, before and after.
fn ir_stats(graph: &natgrad::ir::Graph) -> Result<String, Box<dyn std::error::Error>> {
    let simplified = rewrite::simplify(graph, &rewrite::Options::default())?;
    let row = |label: &str, g: &natgrad::ir::Graph| {
        format!(
            "{label:<10} {:>7} {:>8} {:>14.3e}\n",
            g.len(),
            rewrite::matmul_count(g),
            natgrad::ir::cost::flops(g, 1000)
        )
    };
    let mut out = format!("{:<10} {:>7} {:>8} {:>14}\n", "", "nodes", "matmuls", "FLOPs (B=1000)");
    out += &row("naive", graph);
    out += &row("optimized", &simplified.graph);
    out += &format!(
        "simplify: {:.2} ms, {} iterations, {} fusion groups\nrule hits: {}\n",
        simplified.stats.elapsed.as_secs_f64() * 1e3,
        simplified.stats.iterations,
        simplified.fusion.len(),
        simplified.stats.hits.iter().map(|(r, n)| format!("{r}×{n}")).collect::<Vec<_>>().join(", ")
    );
    if let Some(budget) = &simplified.stats.budget {
        out += &format!("budget: {budget}\n");
    }
    Ok(out)
}

fn init_tracing() {
    if std::env::var_os("NATGRAD_DEBUG").is_some_and(|v| v != "0") {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(std::io::stderr)
            .without_time()
            .try_init();
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Ir { model, dtype, product, optimized, stats, dot } => {
            let model = model_from_spec(&model, dtype.into())?;
            let graph = match product {
                None => model.graph,
                Some(ProductArg::Gradient) => autodiff::gradient(&model)?.graph,
                Some(ProductArg::Fisher) => autodiff::fisher_product(&model)?.graph,
                Some(ProductArg::GaussNewton) => autodiff::gauss_newton_product(&model)?.graph,
                Some(ProductArg::EmpiricalFisher) => autodiff::empirical_fisher_product(&model)?.graph,
            };
            if stats {
                print!("{}", ir_stats(&graph)?);
                return Ok(());
            }
            let (graph, groups) = if optimized {
                let simplified = rewrite::simplify(&graph, &rewrite::Options::default())?;
                (simplified.graph, simplified.fusion)
            } else {
                (graph, Vec::new())
            };
            if dot {
                print!("{}", graph.to_dot());
            } else {
                print!("{}", rewrite::print_with_groups(&graph, &groups));
            }
        }
    }
    Ok(())
}
