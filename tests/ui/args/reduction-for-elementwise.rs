use graph_runtime::lazy_graph;

lazy_graph! {
    /// ReLU written with the reduction `max` where the elementwise `maximum` was meant.
    pub fn relu(x: Tensor[N, D]) -> Tensor[N, D] {
        max(x, 0.0)
    }
}

fn main() {}
