use graph_runtime::lazy_graph;

lazy_graph! {
    /// `#[cfg]` on a statement would be ignored, so it is an error.
    pub fn scaled(x: Tensor[N]) -> Tensor[N] {
        #[cfg(any())]
        let x = x * 2.0;
        x
    }
}

fn main() {}
