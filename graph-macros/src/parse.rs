//! `impl Parse` for the surface AST. Parsing fails fast at the first malformed token; everything
//! that is well-formed but wrong is left to `check`, which collects all errors.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, parenthesized, Attribute, Expr, Ident, Token, Visibility};

use crate::diag::Diag;
use crate::syntax::{Function, Module, Param, ParamType, ReturnType, ScalarKind, ScalarTy, TensorType};

impl Parse for Module {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut functions = Vec::new();
        while !input.is_empty() {
            functions.push(input.parse()?);
        }
        Ok(Module { functions })
    }
}

impl Parse for Function {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![fn]>()?;
        let name: Ident = input.parse()?;
        let content;
        parenthesized!(content in input);
        let params = Punctuated::<Param, Token![,]>::parse_terminated(&content)?;
        if !input.peek(Token![->]) {
            return Err(input.error(Diag::MissingReturnType));
        }
        input.parse::<Token![->]>()?;
        let ret = input.parse()?;
        let body = input.parse()?;
        Ok(Function {
            attrs,
            vis,
            name,
            params: params.into_iter().collect(),
            ret,
            body,
        })
    }
}

impl Parse for Param {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let ty = if input.peek(Ident) && input.fork().parse::<Ident>()? == "Tensor" {
            ParamType::Tensor(input.parse()?)
        } else {
            ParamType::Scalar(input.parse()?)
        };
        Ok(Param { name, ty })
    }
}

impl Parse for ScalarTy {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let ty: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), Diag::ExpectedParamType))?;
        let kind = match ty.to_string().as_str() {
            "f32" => ScalarKind::F32,
            "f64" => ScalarKind::F64,
            other => {
                let name = other.to_string();
                return Err(syn::Error::new(ty.span(), Diag::UnknownParamType { name }));
            }
        };
        Ok(ScalarTy { kind })
    }
}

impl Parse for TensorType {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let kw: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), Diag::ExpectedTensorType))?;
        if kw != "Tensor" {
            return Err(syn::Error::new(kw.span(), Diag::ExpectedTensorType));
        }
        if !input.peek(syn::token::Bracket) {
            return Err(syn::Error::new(kw.span(), Diag::MissingShape));
        }
        let content;
        bracketed!(content in input);
        let dims = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
        Ok(TensorType {
            dims: dims.into_iter().collect(),
        })
    }
}

impl Parse for ReturnType {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            let items = Punctuated::<TensorType, Token![,]>::parse_terminated(&content)?;
            return Ok(ReturnType::Tuple(items.into_iter().collect()));
        }
        Ok(ReturnType::Single(input.parse()?))
    }
}
