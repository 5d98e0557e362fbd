//! Printing a graph and its plan: text for people, Graphviz DOT for pictures.

use std::fmt::Write as _;

use crate::dim::display_shape;
use crate::graph::{Graph, ParamKind, ScalarType};
use crate::ops::Op;
use crate::plan::Step;

impl Graph {
    fn node_label(&self, i: usize) -> String {
        match self.nodes[i].op {
            Op::Input(p) | Op::Scalar(p) => self.params[p as usize].name.to_string(),
            op => op.label(),
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

    /// The signature, one line per node (`%3 = exp(%2) : [N, D]`), the outputs and the plan.
    pub fn to_text(&self) -> String {
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
            let args: Vec<String> = node.args.iter().map(|a| format!("%{a}")).collect();
            let call = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let _ = writeln!(s, "  %{i} = {}{call} : {}", self.node_label(i), self.node_type(i));
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("%{o}")).collect();
        let _ = writeln!(s, "  return {}", outs.join(", "));
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
        let mut in_kernel = vec![None; self.nodes.len()];
        for step in self.plan {
            if let Step::Kernel(k) = step {
                let _ = writeln!(
                    s,
                    "  subgraph \"cluster_{}\" {{\n    label=\"{} ({:?})\";",
                    k.name, k.name, k.kind
                );
                for &n in k.nodes {
                    in_kernel[n as usize] = Some(k.name);
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
