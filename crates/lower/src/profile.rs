//! Per-unit timing of a session's runs, as Theano's profile mode gives per apply node: the
//! calls and time of every unit, summed by kind of work or listed slowest first next to each
//! unit's FLOPs and bytes ([`Plan::unit_cost`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use natgrad_ir::NodeId;

use crate::plan::{Plan, Work, as_matrix};

/// Calls and total time of one unit, or of one kind of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitTime {
    /// Times it ran.
    pub calls: usize,
    /// Wall-clock time over all calls.
    pub time: Duration,
}

/// Calls and time of every unit that ran since profiling started, by unit index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    units: BTreeMap<usize, (&'static str, UnitTime)>,
}

impl Profile {
    /// An empty profile.
    pub fn new() -> Profile {
        Profile::default()
    }

    /// Adds one call of unit `unit` (of kind `kind`) that took `time`.
    pub fn add(&mut self, unit: usize, kind: &'static str, time: Duration) {
        let (_, entry) = self.units.entry(unit).or_insert((kind, UnitTime::default()));
        entry.calls += 1;
        entry.time += time;
    }

    /// Every unit that ran, by index.
    pub fn units(&self) -> impl Iterator<Item = (usize, UnitTime)> + '_ {
        self.units.iter().map(|(&u, &(_, time))| (u, time))
    }

    /// Calls and time summed per kind of work (`kernel`, `matmul`, …).
    pub fn by_kind(&self) -> BTreeMap<&'static str, UnitTime> {
        let mut kinds: BTreeMap<&'static str, UnitTime> = BTreeMap::new();
        for &(kind, time) in self.units.values() {
            let entry = kinds.entry(kind).or_default();
            entry.calls += time.calls;
            entry.time += time.time;
        }
        kinds
    }

    /// Time over every unit.
    pub fn total(&self) -> Duration {
        self.units.values().map(|(_, t)| t.time).sum()
    }

    /// The `top` slowest units as a table: time per run, share, GFLOP/s and GB/s at
    /// `batch`, and what each unit is (`plan` must be the plan the profile was taken on,
    /// `runs` the number of runs profiled).
    pub fn slowest_units(&self, plan: &Plan, batch: usize, runs: usize, top: usize) -> String {
        let total = self.total().as_secs_f64().max(f64::MIN_POSITIVE);
        let runs = runs.max(1) as f64;
        let mut units: Vec<(usize, UnitTime)> = self.units().collect();
        units.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(a.0.cmp(&b.0)));
        let mut out =
            format!("{:>5} {:>9} {:>6} {:>8} {:>7}  what\n", "unit", "ms/run", "share", "GFLOP/s", "GB/s");
        for (u, time) in units.into_iter().take(top) {
            let cost = plan.unit_cost(u, batch);
            let seconds = time.time.as_secs_f64() / runs;
            let rate = |amount: f64| {
                if amount > 0.0 && seconds > 0.0 {
                    format!("{:.1}", amount / seconds / 1e9)
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                out,
                "{u:>5} {:>9.3} {:>5.1}% {:>8} {:>7}  {}",
                1e3 * seconds,
                100.0 * time.time.as_secs_f64() / total,
                rate(cost.flops),
                rate(cost.bytes),
                cost.label
            );
        }
        out
    }
}

/// Adds one call of unit `unit` that began at `start` to `profile`, when profiling is on (a
/// backend's `run` takes `start` only then).
pub fn record(profile: &mut Option<Profile>, unit: usize, kind: &'static str, start: Option<Instant>) {
    if let (Some(profile), Some(start)) = (profile, start) {
        profile.add(unit, kind, start.elapsed());
    }
}

/// What one unit does at a batch size, for profiles.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitCost {
    /// The kind of work, its operands and outputs as `%node[dims]` (the node numbers of the
    /// optimized graph's text form, `natgrad ir --optimized`).
    pub label: String,
    /// Floating-point operations: `2mkn` per matmul, one per kernel operation and element,
    /// five per softmax element, one per element reduced; layout work is free.
    pub flops: f64,
    /// Bytes of every value read or written, each counted once.
    pub bytes: f64,
}

impl Plan {
    /// What unit `unit` computes at batch size `batch`: a label, its FLOPs and the bytes of
    /// the values it touches.
    pub fn unit_cost(&self, unit: usize, batch: usize) -> UnitCost {
        let unit = &self.units[unit];
        let value = |n: NodeId| format!("%{}{:?}", n.index(), self.graph.shape(n).resolve(batch));
        let elements = |nodes: &[NodeId]| nodes.iter().map(|&n| self.elements(n, batch) as f64).sum::<f64>();
        let outputs = unit.outputs.iter().map(|&n| value(n)).collect::<Vec<_>>().join(", ");
        let out_elements = elements(&unit.outputs);
        let (label, flops) = match &unit.work {
            Work::MatMul { a, b, ta, tb } => {
                let [ar, ac] = as_matrix(&self.graph.shape(*a).resolve(batch));
                let k = if *ta { ar } else { ac };
                let t = |on: bool| if on { "ᵀ" } else { "" };
                (
                    format!("matmul {}{}·{}{} → {outputs}", value(*a), t(*ta), value(*b), t(*tb)),
                    2.0 * out_elements * k as f64,
                )
            }
            Work::Kernel { spec, shape, .. } => {
                let space = shape.num_elements(batch) as f64;
                let operations = spec
                    .exprs
                    .iter()
                    .filter(|e| !matches!(e, crate::KExpr::Input(_) | crate::KExpr::Const(_)))
                    .count()
                    + spec.column_sums.len();
                let sums = match spec.column_sums.len() {
                    0 => String::new(),
                    n => format!(" + {n} column sum{}", if n == 1 { "" } else { "s" }),
                };
                let label = format!(
                    "kernel {:?}: {operations} ops on {} inputs{sums} → {outputs}",
                    shape.resolve(batch),
                    spec.inputs.len()
                );
                (label, operations as f64 * space)
            }
            work => {
                let reads = unit.reads.iter().map(|&n| value(n)).collect::<Vec<_>>().join(", ");
                let flops = match work {
                    Work::Softmax { .. } => 5.0 * out_elements,
                    Work::Reduce { .. } => elements(&unit.reads),
                    _ => 0.0,
                };
                (format!("{} {reads} → {outputs}", work.kind()), flops)
            }
        };
        let bytes = (elements(&unit.reads) + out_elements) * self.dtype.size_bytes() as f64;
        UnitCost { label, flops, bytes }
    }
}
