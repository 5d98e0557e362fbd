//! Printing a graph and its plan: text for people, Graphviz DOT for pictures.

use std::fmt::Write as _;

use crate::dim::display_shape;
use crate::graph::{Graph, ParamKind, ScalarType};
use crate::ops::Op;
use crate::plan::Step;

impl Graph {
    /// A node's op name and attributes, with parameter and symbol names (`x`, `size D`,
    /// `narrow` with `axis 1, start D/2`).
    fn op_parts(&self, i: usize) -> (String, Option<String>) {
        match self.nodes[i].op {
            Op::Input(p) | Op::Scalar(p) => (self.params[p as usize].name.to_string(), None),
            Op::Size(d) => (format!("size {}", d.display(self.symbols)), None),
            Op::Narrow(axis, start) => (
                "narrow".to_string(),
                Some(format!("axis {axis}, start {}", start.display(self.symbols))),
            ),
            op => (op.name(), op.attrs()),
        }
    }

    /// `mean(axis 1)`: the op with its attributes, for one-line mentions of a node.
    fn node_label(&self, i: usize) -> String {
        match self.op_parts(i) {
            (name, Some(attrs)) => format!("{name}({attrs})"),
            (name, None) => name,
        }
    }

    fn node_type(&self, i: usize) -> String {
        let node = &self.nodes[i];
        if node.scalar {
            return "scalar".into();
        }
        let shape = display_shape(node.shape, self.symbols);
        match node.dtype {
            Some(t) => format!("{shape} {}", t.name()),
            None => shape,
        }
    }

    /// The signature, one line per node (`%3 = exp(%2) : [N, D]`) and the outputs: the graph
    /// without its plan. The first half of [`Graph::to_text`].
    pub fn nodes_to_text(&self) -> String {
        let mut s = String::new();
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.kind {
                ParamKind::Tensor(shape) => {
                    format!("{}: Tensor{}", p.name, display_shape(shape, self.symbols))
                }
                ParamKind::Scalar(ScalarType::F32) => format!("{}: f32", p.name),
                ParamKind::Scalar(ScalarType::F64) => format!("{}: f64", p.name),
            })
            .collect();
        let _ = writeln!(s, "graph {}({})", self.name, params.join(", "));
        for (i, node) in self.nodes.iter().enumerate() {
            let (name, attrs) = self.op_parts(i);
            let mut args: Vec<String> = node.args.iter().map(|a| format!("%{a}")).collect();
            args.extend(attrs);
            let call = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let _ = writeln!(s, "  %{i} = {name}{call} : {}", self.node_type(i));
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("%{o}")).collect();
        let _ = writeln!(s, "  return {}", outs.join(", "));
        s
    }

    /// The signature, one line per node (`%3 = exp(%2) : [N, D]`), the outputs and the plan.
    pub fn to_text(&self) -> String {
        let mut s = self.nodes_to_text();
        let _ = writeln!(s, "plan ({} steps)", self.plan.len());
        for step in self.plan {
            match step {
                Step::Library(n) => {
                    let _ = writeln!(s, "  library %{n} {}", self.node_label(*n as usize));
                }
                Step::Kernel(k) => {
                    let list = |v: &[u32]| v.iter().map(|n| format!("%{n}")).collect::<Vec<_>>().join(", ");
                    let _ = writeln!(
                        s,
                        "  {:?} kernel {}: reads [{}] writes [{}] computes [{}]",
                        k.kind,
                        k.name,
                        list(k.inputs),
                        list(k.outputs),
                        list(k.nodes)
                    );
                }
            }
        }
        s
    }

    /// A Graphviz digraph: one box per node, edges from arguments to users, and one cluster per
    /// fused kernel.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=monospace];",
            self.name
        );
        for step in self.plan {
            if let Step::Kernel(k) = step {
                let _ = writeln!(
                    s,
                    "  subgraph \"cluster_{}\" {{\n    label=\"{} ({:?})\";",
                    k.name, k.name, k.kind
                );
                for &n in k.nodes {
                    let _ = writeln!(s, "    n{n};");
                }
                let _ = writeln!(s, "  }}");
            }
        }
        for i in 0..self.nodes.len() {
            let label = format!("%{i} {}\\n{}", self.node_label(i), self.node_type(i));
            let style = match self.nodes[i].op {
                Op::Input(_) | Op::Scalar(_) => ", style=rounded",
                _ if self.outputs.contains(&(i as u32)) => ", style=bold",
                _ => "",
            };
            let _ = writeln!(s, "  n{i} [label=\"{}\"{style}];", label.replace('"', "\\\""));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            for a in node.args {
                let _ = writeln!(s, "  n{a} -> n{i};");
            }
        }
        s.push_str("}\n");
        s
    }
}
