use graph_runtime::lazy_graph;

lazy_graph! {
    /// A linear layer with the weight stored the other way round.
    pub fn linear(x: Tensor[B, I], w: Tensor[O, I]) -> Tensor[B, O] {
        x.matmul(w)
    }
}

fn main() {}
