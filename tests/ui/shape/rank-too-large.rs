use graph_runtime::lazy_graph;

lazy_graph! {
    /// Seventeen dims, one more than a tensor may have.
    pub fn seventeen(x: Tensor[A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q]) -> Tensor[A, B] {
        reshape(max(x, -1), [A, B])
    }
}

fn main() {}
