use graph_runtime::lazy_graph;

lazy_graph! {
    /// A gated activation using an op the DSL does not have.
    pub fn geglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] {
        g.mish() * u
    }
}

fn main() {}
