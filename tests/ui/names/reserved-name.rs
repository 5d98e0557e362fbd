use graph_runtime::lazy_graph;

lazy_graph! {
    /// `inf` is the infinity literal: it names no parameter, `let` or shape symbol.
    pub fn clip(x: Tensor[N, inf], inf: f32) -> Tensor[N, inf] {
        let inf = minimum(x, inf);
        inf
    }
}

fn main() {}
