use graph_runtime::lazy_graph;

lazy_graph! {
    /// Binds the result but never returns it.
    pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
        let y = silu(g) * u;
    }
}

fn main() {}
