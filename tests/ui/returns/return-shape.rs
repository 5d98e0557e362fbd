use graph_runtime::lazy_graph;

lazy_graph! {
    /// Row-wise log-sum-exp, declared as if the axis were dropped.
    pub fn lse(x: Tensor[N, D]) -> Tensor[N] {
        logsumexp(x, -1)
    }
}

fn main() {}
