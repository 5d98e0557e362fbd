use graph_runtime::lazy_graph;

lazy_graph! {
    /// `m`'s first dim would line up with the last leading dim, whose size is not `S`.
    pub fn masked(x: Tensor[.., S, D], m: Tensor[T, S, D]) -> Tensor[.., S, D] {
        x * m
    }

    /// A batch of matrices against leading dims.
    pub fn batched(x: Tensor[.., K], w: Tensor[B, K, N]) -> Tensor[.., N] {
        x.matmul(w)
    }
}

fn main() {}
