//! The pattern language of rule tables: s-expressions over text-form op names.
//!
//! `(div (mul ?a ?b) ?a)` matches a `div` whose first operand is a `mul`; `?a` binds a node
//! and must bind the same node everywhere it appears; a number matches a constant of that
//! value (also when broadcast). Commutative ops (`add`, `mul`, `maximum`) match their
//! operands in either order, so each identity is written once. On the right-hand side a
//! number is a constant of the root's type, `broadcast`/`reshape` target the root's shape.

use natgrad_ir::{Binary, Compare, Graph, NodeId, Op, Unary};

use crate::analysis::constant_value;

/// A parsed pattern or template.
#[derive(Clone, Debug, PartialEq)]
pub enum Pat {
    /// `?name`, numbered per rule.
    Var(usize),
    /// A constant.
    Const(f64),
    /// An op by text-form name, with operand patterns.
    Op(String, Vec<Pat>),
}

/// What a rule asks the driver to build in place of the matched root.
#[derive(Clone, Debug, PartialEq)]
pub enum Build {
    /// An existing node of the graph.
    Existing(NodeId),
    /// A new node: an op applied to built operands.
    New(Op, Vec<Build>),
}

/// Parses a pattern; `vars` collects variable names in order of first appearance.
pub fn parse(text: &str, vars: &mut Vec<String>) -> Result<Pat, String> {
    let tokens: Vec<String> =
        text.replace('(', " ( ").replace(')', " ) ").split_whitespace().map(str::to_string).collect();
    let mut pos = 0;
    let pat = parse_tokens(&tokens, &mut pos, vars)?;
    if pos != tokens.len() {
        return Err(format!("trailing tokens in pattern `{text}`"));
    }
    Ok(pat)
}

fn parse_tokens(tokens: &[String], pos: &mut usize, vars: &mut Vec<String>) -> Result<Pat, String> {
    let token = tokens.get(*pos).ok_or("unexpected end of pattern")?.clone();
    *pos += 1;
    if token == "(" {
        let name = tokens.get(*pos).ok_or("missing op name")?.clone();
        *pos += 1;
        let mut children = Vec::new();
        while tokens.get(*pos).map(String::as_str) != Some(")") {
            children.push(parse_tokens(tokens, pos, vars)?);
        }
        *pos += 1;
        Ok(Pat::Op(name, children))
    } else if let Some(var) = token.strip_prefix('?') {
        let index = vars.iter().position(|v| v == var).unwrap_or_else(|| {
            vars.push(var.to_string());
            vars.len() - 1
        });
        Ok(Pat::Var(index))
    } else {
        token.parse().map(Pat::Const).map_err(|_| format!("bad token `{token}` in pattern"))
    }
}

/// Matches `pat` at `id`, filling `binds`; restores `binds` on failure. Backtracks over
/// both operand orders of commutative ops.
pub fn matches(graph: &Graph, pat: &Pat, id: NodeId, binds: &mut [Option<NodeId>]) -> bool {
    match_then(graph, pat, id, binds, &mut |_| true)
}

/// Like [`matches()`], accepting only bindings for which `accept` holds (guards take part in
/// the backtracking).
pub fn matches_where(
    graph: &Graph,
    pat: &Pat,
    id: NodeId,
    binds: &mut [Option<NodeId>],
    accept: &mut dyn FnMut(&mut [Option<NodeId>]) -> bool,
) -> bool {
    match_then(graph, pat, id, binds, accept)
}

/// Matches `pat` at `id` and calls `rest` with the bindings; tries every way of matching
/// until `rest` accepts one. Restores `binds` when none does.
fn match_then(
    graph: &Graph,
    pat: &Pat,
    id: NodeId,
    binds: &mut [Option<NodeId>],
    rest: &mut dyn FnMut(&mut [Option<NodeId>]) -> bool,
) -> bool {
    match pat {
        Pat::Var(i) => match binds[*i] {
            Some(bound) => bound == id && rest(binds),
            None => {
                binds[*i] = Some(id);
                if rest(binds) {
                    return true;
                }
                binds[*i] = None;
                false
            }
        },
        Pat::Const(c) => constant_value(graph, id).is_some_and(|v| same_value(v, *c)) && rest(binds),
        Pat::Op(name, children) => {
            let op = graph.op(id);
            let inputs = graph.inputs(id);
            if op.name() != name || inputs.len() != children.len() {
                return false;
            }
            if match_all(graph, children, inputs, binds, rest) {
                return true;
            }
            let commutative = matches!(op, Op::Binary(b) if b.is_commutative());
            commutative && match_all(graph, children, &[inputs[1], inputs[0]], binds, rest)
        }
    }
}

/// Matches `pats[i]` at `ids[i]` for all `i`, then `rest`.
fn match_all(
    graph: &Graph,
    pats: &[Pat],
    ids: &[NodeId],
    binds: &mut [Option<NodeId>],
    rest: &mut dyn FnMut(&mut [Option<NodeId>]) -> bool,
) -> bool {
    match (pats.split_first(), ids.split_first()) {
        (Some((p, pats)), Some((&id, ids))) => {
            match_then(graph, p, id, binds, &mut |b: &mut [Option<NodeId>]| {
                match_all(graph, pats, ids, b, rest)
            })
        }
        _ => rest(binds),
    }
}

/// Equal values, telling −0 from +0.
fn same_value(a: f64, b: f64) -> bool {
    a == b && a.is_sign_negative() == b.is_sign_negative()
}

/// Instantiates a right-hand side with the bindings, for the root node `root`.
pub fn instantiate(graph: &Graph, template: &Pat, root: NodeId, binds: &[Option<NodeId>]) -> Option<Build> {
    let ty = graph.ty(root);
    Some(match template {
        Pat::Var(i) => Build::Existing(binds[*i]?),
        Pat::Const(c) => {
            let scalar = Build::New(Op::scalar(ty.dtype, *c), Vec::new());
            if ty.shape.rank() == 0 {
                scalar
            } else {
                Build::New(Op::Broadcast { shape: ty.shape.clone() }, vec![scalar])
            }
        }
        Pat::Op(name, children) => {
            let op = match name.as_str() {
                "broadcast" => Op::Broadcast { shape: ty.shape.clone() },
                "reshape" => Op::Reshape { shape: ty.shape.clone() },
                other => simple_op(other)?,
            };
            let built =
                children.iter().map(|c| instantiate(graph, c, root, binds)).collect::<Option<Vec<_>>>()?;
            Build::New(op, built)
        }
    })
}

/// The attribute-free op with this text-form name.
pub fn simple_op(name: &str) -> Option<Op> {
    if name == "select" {
        return Some(Op::Select);
    }
    let unary =
        Unary::ALL.iter().find(|u| u.name() == name && !matches!(u, Unary::Pow(_))).map(|u| Op::Unary(*u));
    let binary = || Binary::ALL.iter().find(|b| b.name() == name).map(|b| Op::Binary(*b));
    let compare = || Compare::ALL.iter().find(|c| c.name() == name).map(|c| Op::Compare(*c));
    unary.or_else(binary).or_else(compare)
}
