use graph_runtime::lazy_graph;

lazy_graph! {
    /// Attention scores, the key transposed as in PyTorch.
    pub fn scores(q: Tensor[S, K], k: Tensor[T, K]) -> Tensor[S, T] {
        q.matmul(k.t())
    }
}

fn main() {}
