//! The surface AST: what the user wrote, token for token, so every diagnostic can point at it.
//!
//! Signatures are our own grammar (`Tensor[B, S, D]` is not a Rust type); bodies are plain
//! `syn` expressions, interpreted by `check`.

use syn::{Attribute, Block, Expr, Ident, Visibility};

/// Everything inside one `lazy_graph! { ... }`.
pub struct Module {
    pub functions: Vec<Function>,
}

/// `/// docs  pub fn name(params) -> ret { body }`
pub struct Function {
    /// Outer attributes, doc comments included; passed through to the generated function.
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: ReturnType,
    pub body: Block,
}

pub struct Param {
    pub name: Ident,
    pub ty: ParamType,
}

pub enum ParamType {
    /// `Tensor[B, 64, D / 2]`
    Tensor(TensorType),
    /// `f32` or `f64`
    Scalar(ScalarTy),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScalarKind {
    F32,
    F64,
}

pub struct ScalarTy {
    pub kind: ScalarKind,
}

pub struct TensorType {
    /// Each dim as written: an expression over symbols and integer literals.
    pub dims: Vec<Expr>,
}

pub enum ReturnType {
    /// `-> Tensor[...]`
    Single(TensorType),
    /// `-> (Tensor[...], Tensor[...])`
    Tuple(Vec<TensorType>),
}

impl ReturnType {
    pub fn items(&self) -> Vec<&TensorType> {
        match self {
            ReturnType::Single(t) => vec![t],
            ReturnType::Tuple(items) => items.iter().collect(),
        }
    }
}
