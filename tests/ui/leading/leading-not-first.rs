use graph_runtime::lazy_graph;

lazy_graph! {
    /// `..` stands for the leading dims: it cannot sit between others, nor appear twice.
    pub fn between(x: Tensor[B, .., D]) -> Tensor[B, D] {
        x
    }

    pub fn twice(x: Tensor[.., ..]) -> Tensor[..] {
        x
    }
}

fn main() {}
