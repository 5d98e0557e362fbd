use graph_runtime::lazy_graph;

lazy_graph! {
    /// A non-negative axis counts into `..`, and so does a negative one past the named dims.
    pub fn front(x: Tensor[.., S, D]) -> Tensor[.., S, D] {
        x - max(x, 0)
    }

    pub fn past_the_named_dims(x: Tensor[.., S, D]) -> Tensor[.., S, D] {
        x - sum(x, [-3, -1])
    }

    pub fn swap(x: Tensor[.., D]) -> Tensor[.., D] {
        x.transpose(-2, -1)
    }

    pub fn none_named(x: Tensor[..]) -> Tensor[..] {
        softmax(x, -1)
    }
}

fn main() {}
