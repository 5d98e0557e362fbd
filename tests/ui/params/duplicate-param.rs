use graph_runtime::lazy_graph;

lazy_graph! {
    /// A gated unit whose two inputs share a name.
    pub fn swiglu(x: Tensor[N, F], x: Tensor[N, F]) -> Tensor[N, F] {
        silu(x) * x
    }
}

fn main() {}
