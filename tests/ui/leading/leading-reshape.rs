use graph_runtime::lazy_graph;

lazy_graph! {
    /// A reshape cannot merge the leading dims away: their number is known only at the call.
    pub fn merged(x: Tensor[.., D], _n: Tensor[N]) -> Tensor[N, D] {
        reshape(x, [N, D])
    }
}

fn main() {}
