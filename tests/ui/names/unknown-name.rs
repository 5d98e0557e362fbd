use graph_runtime::lazy_graph;

lazy_graph! {
    /// Softmax over the last axis, with a misspelt intermediate.
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] {
        let shifted = x - max(x, -1);
        let e = exp(shiftd);
        e / sum(e, -1)
    }
}

fn main() {}
