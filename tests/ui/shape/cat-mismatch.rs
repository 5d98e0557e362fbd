use graph_runtime::lazy_graph;

lazy_graph! {
    /// Rotate-half of the wrong tensor: the halves come from sequences of different lengths.
    pub fn rotate_half(q: Tensor[S, D], k: Tensor[T, D]) -> Tensor[S, D] {
        let q1 = narrow(q, -1, 0, D / 2);
        let k2 = narrow(k, -1, D / 2, D / 2);
        cat([-k2, q1], -1)
    }
}

fn main() {}
