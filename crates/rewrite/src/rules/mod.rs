//! Rules as data: one table per family, one identity per row, indexed by root op.
//!
//! A row is either a pattern rule (`lhs => rhs`, optional guard; see [`crate::pattern`]) or
//! a custom rule — a pure function from a matched node to a [`Build`] — for rewrites that
//! compute attributes (transpose composition, constant folding). Rules never mutate the
//! graph; the driver does.

mod algebra;
mod fold;
mod structural;

use std::collections::HashMap;
use std::sync::OnceLock;

use natgrad_ir::{Graph, NodeId};

pub use algebra::{ALGEBRA, FAST_MATH};
pub use fold::FOLD;
pub use structural::STRUCTURAL;

use crate::analysis::{nonzero, positive};
use crate::pattern::{self, Build, Pat};

/// Rule families; each is one table and one pass of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Layout: broadcast/reshape/transpose chains, ops on broadcasts.
    Structural,
    /// Float-exact algebraic identities.
    Algebra,
    /// Identities that are wrong for NaN/Inf (`x·0 → 0`); opt-in.
    FastMath,
    /// Constant folding.
    Fold,
}

/// A side condition on a pattern variable.
#[derive(Clone, Copy, Debug)]
pub enum Guard {
    /// No condition.
    Always,
    /// The variable is known non-zero everywhere.
    NonZero(&'static str),
    /// The variable is known positive everywhere.
    Positive(&'static str),
    /// The variable has the root's type (so it can replace the root).
    SameTypeAsRoot(&'static str),
    /// The variable is a scalar.
    Scalar(&'static str),
}

/// How a rule rewrites.
#[derive(Clone, Copy, Debug)]
pub enum Body {
    /// `lhs => rhs` when `guard` holds.
    Pattern {
        /// Left-hand side, an s-expression pattern.
        lhs: &'static str,
        /// Right-hand side template.
        rhs: &'static str,
        /// Side condition.
        guard: Guard,
    },
    /// A function from a node (whose op is one of `roots`) to its replacement.
    Custom {
        /// Text-form names of the root ops it applies to.
        roots: &'static [&'static str],
        /// The rewrite; `None` when it does not apply.
        apply: fn(&Graph, NodeId) -> Option<Build>,
    },
}

/// One rewrite rule.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// Unique name (hit counts and `--only` use it).
    pub name: &'static str,
    /// Its family.
    pub family: Family,
    /// What it does.
    pub body: Body,
}

impl Rule {
    /// A pattern rule `lhs => rhs`.
    pub const fn pattern(name: &'static str, family: Family, lhs: &'static str, rhs: &'static str) -> Rule {
        Rule { name, family, body: Body::Pattern { lhs, rhs, guard: Guard::Always } }
    }

    /// The same rule with a guard.
    pub const fn when(self, guard: Guard) -> Rule {
        match self.body {
            Body::Pattern { lhs, rhs, .. } => Rule { body: Body::Pattern { lhs, rhs, guard }, ..self },
            Body::Custom { .. } => self,
        }
    }

    /// A custom rule.
    pub const fn custom(
        name: &'static str,
        family: Family,
        roots: &'static [&'static str],
        apply: fn(&Graph, NodeId) -> Option<Build>,
    ) -> Rule {
        Rule { name, family, body: Body::Custom { roots, apply } }
    }
}

/// Every rule, in the order they are tried.
pub fn all_rules() -> impl Iterator<Item = &'static Rule> {
    STRUCTURAL.iter().chain(ALGEBRA).chain(FAST_MATH).chain(FOLD)
}

/// A rule with its patterns parsed.
pub(crate) struct Compiled {
    pub rule: &'static Rule,
    lhs: Option<Pat>,
    rhs: Option<Pat>,
    vars: Vec<String>,
}

impl Compiled {
    /// The replacement for `id` if the rule applies there.
    pub fn apply(&self, graph: &Graph, id: NodeId) -> Option<Build> {
        match self.rule.body {
            Body::Custom { apply, .. } => apply(graph, id),
            Body::Pattern { guard, .. } => {
                let (lhs, rhs) = (self.lhs.as_ref()?, self.rhs.as_ref()?);
                let mut binds = vec![None; self.vars.len()];
                let accept = &mut |b: &mut [Option<NodeId>]| self.guard_holds(graph, guard, id, b);
                if !pattern::matches_where(graph, lhs, id, &mut binds, accept) {
                    return None;
                }
                pattern::instantiate(graph, rhs, id, &binds)
            }
        }
    }

    fn guard_holds(&self, graph: &Graph, guard: Guard, root: NodeId, binds: &[Option<NodeId>]) -> bool {
        let node = |var: &str| {
            let var = var.trim_start_matches('?');
            self.vars.iter().position(|v| v == var).and_then(|i| binds[i])
        };
        match guard {
            Guard::Always => true,
            Guard::NonZero(v) => node(v).is_some_and(|n| nonzero(graph, n)),
            Guard::Positive(v) => node(v).is_some_and(|n| positive(graph, n)),
            Guard::SameTypeAsRoot(v) => node(v).is_some_and(|n| graph.ty(n) == graph.ty(root)),
            Guard::Scalar(v) => node(v).is_some_and(|n| graph.shape(n).rank() == 0),
        }
    }
}

/// All rules compiled once, indexed by root op name.
pub(crate) struct RuleIndex {
    pub compiled: Vec<Compiled>,
    pub by_root: HashMap<String, Vec<usize>>,
}

/// The process-wide compiled rule index.
pub(crate) fn index() -> &'static RuleIndex {
    static INDEX: OnceLock<RuleIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut compiled = Vec::new();
        let mut by_root: HashMap<String, Vec<usize>> = HashMap::new();
        for rule in all_rules() {
            let mut vars = Vec::new();
            let (lhs, rhs, roots) = match rule.body {
                Body::Pattern { lhs, rhs, .. } => {
                    let lhs =
                        pattern::parse(lhs, &mut vars).unwrap_or_else(|e| panic!("rule {}: {e}", rule.name));
                    let rhs =
                        pattern::parse(rhs, &mut vars).unwrap_or_else(|e| panic!("rule {}: {e}", rule.name));
                    let root = match &lhs {
                        Pat::Op(name, _) => vec![name.clone()],
                        _ => panic!("rule {}: the left-hand side must be an op", rule.name),
                    };
                    (Some(lhs), Some(rhs), root)
                }
                Body::Custom { roots, .. } => (None, None, roots.iter().map(|r| r.to_string()).collect()),
            };
            for root in roots {
                by_root.entry(root).or_default().push(compiled.len());
            }
            compiled.push(Compiled { rule, lhs, rhs, vars });
        }
        RuleIndex { compiled, by_root }
    })
}
