use graph_runtime::lazy_graph;

lazy_graph! {
    /// Debug printing inside a graph.
    pub fn scale(x: Tensor[N, D], s: f32) -> Tensor[N, D] {
        println!("scaling by {}", s);
        x * s
    }
}

fn main() {}
