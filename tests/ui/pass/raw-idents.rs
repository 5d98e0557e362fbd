use graph_runtime::lazy_graph;

lazy_graph! {
    /// Raw identifiers name the function, its parameters and its bindings.
    pub fn r#match(r#type: Tensor[N, D], r#fn: f32) -> Tensor[N, D] {
        let r#let = exp(r#type) * r#fn;
        r#let - max(r#let, -1)
    }

    /// A raw name that is an op's name too.
    pub fn r#exp(x: Tensor[N]) -> Tensor[N] {
        exp(x)
    }
}

fn main() {}
