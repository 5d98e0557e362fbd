use graph_runtime::lazy_graph;

lazy_graph! {
    /// A scale applied with Candle's explicit broadcast.
    pub fn scale(x: Tensor[N, D], w: Tensor[D]) -> Tensor[N, D] {
        x.broadcast_mul(w)
    }
}

fn main() {}
