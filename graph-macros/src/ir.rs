//! The macro's graph IR: an arena of nodes addressed by [`NodeId`], in topological order.
//!
//! Built by `check`, rewritten by `passes`, partitioned by `plan`, printed by `emit`. User errors
//! are all reported by `check`, which still holds the tokens, so nodes carry no spans.

use graph_ir::{DType, Dim, Op};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A value's type: a scalar, or a tensor of a symbolic shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Scalar,
    Tensor(Vec<Dim>),
}

impl Ty {
    pub fn shape(&self) -> Option<&[Dim]> {
        match self {
            Ty::Scalar => None,
            Ty::Tensor(s) => Some(s),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub args: Vec<NodeId>,
    pub ty: Ty,
}

/// How a parameter is declared.
#[derive(Clone, Debug)]
pub enum ParamKind {
    Tensor(Vec<Dim>),
    Scalar(crate::syntax::ScalarKind),
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub params: Vec<Param>,
    pub symbols: Vec<String>,
    /// The symbol standing for the leading dims `..`, if a parameter declares them: always the
    /// first dim of the shapes holding it (`check` rejects what would move it).
    pub leading: Option<u16>,
    pub nodes: Vec<Node>,
    pub outputs: Vec<NodeId>,
}

impl Graph {
    pub fn push(&mut self, node: Node) -> NodeId {
        debug_assert!(
            node.args.iter().all(|a| a.index() < self.nodes.len()),
            "args come first"
        );
        debug_assert!(
            node.op.arity().is_none_or(|n| n == node.args.len()),
            "{:?} takes {:?} arguments, not {}",
            node.op,
            node.op.arity(),
            node.args.len()
        );
        let id = u32::try_from(self.nodes.len()).expect("fewer than 2^32 nodes: each needs input tokens");
        self.nodes.push(node);
        NodeId(id)
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn ids(&self) -> impl DoubleEndedIterator<Item = NodeId> {
        (0..self.nodes.len()).map(|i| NodeId(i as u32))
    }

    /// The float value of a literal node.
    pub fn constant(&self, id: NodeId) -> Option<f64> {
        match self.node(id).op {
            Op::Const(v) => Some(v.value()),
            _ => None,
        }
    }

    /// The storage dtype of a node: `None` is the inputs' dtype, `Some` is fixed by a cast.
    /// Every other op keeps the type of its first tensor argument.
    pub fn dtypes(&self) -> Vec<Option<DType>> {
        let mut out: Vec<Option<DType>> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let t = match node.op {
                Op::Cast(t) => Some(t),
                _ => node
                    .args
                    .iter()
                    .find(|a| self.node(**a).ty != Ty::Scalar)
                    .and_then(|a| out[a.index()]),
            };
            out.push(t);
        }
        out
    }

    /// Rebuilds the graph keeping only `keep[i]` nodes, remapping arguments and outputs through
    /// `replace` (a node id -> the id standing in for it). Used by every pass.
    pub fn rebuild(&self, keep: &[bool], replace: &[NodeId]) -> Graph {
        let mut new_id = vec![None; self.nodes.len()];
        let mut out = Graph {
            params: self.params.clone(),
            symbols: self.symbols.clone(),
            leading: self.leading,
            ..Graph::default()
        };
        let resolve = |id: NodeId, new_id: &[Option<NodeId>]| {
            let mut r = id;
            while replace[r.index()] != r {
                r = replace[r.index()];
            }
            new_id[r.index()].expect("a kept node's arguments are kept")
        };
        for (i, node) in self.nodes.iter().enumerate() {
            if !keep[i] || replace[i] != NodeId(i as u32) {
                continue;
            }
            let args = node.args.iter().map(|a| resolve(*a, &new_id)).collect();
            new_id[i] = Some(out.push(Node { args, ..node.clone() }));
        }
        out.outputs = self.outputs.iter().map(|o| resolve(*o, &new_id)).collect();
        out
    }

    #[cfg(test)]
    /// Indented text form, one node per line: `%3 = exp(%2) : [N, D]`.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let names: Vec<&str> = self.symbols.iter().map(String::as_str).collect();
        let mut s = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let args: Vec<String> = node.args.iter().map(|a| format!("%{}", a.0)).collect();
            let ty = match &node.ty {
                Ty::Scalar => "scalar".to_string(),
                Ty::Tensor(shape) => graph_ir::display_shape(shape, &names),
            };
            let label = match node.op {
                Op::Input(p) | Op::Scalar(p) => self.params[p as usize].name.clone(),
                op => op.label(),
            };
            let _ = writeln!(s, "%{i} = {label}({}) : {ty}", args.join(", "));
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("%{}", o.0)).collect();
        let _ = writeln!(s, "return {}", outs.join(", "));
        s
    }
}
