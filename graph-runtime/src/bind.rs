//! Binding call arguments to a graph: ranks, literal dims, symbol sizes, dtype and device.
//!
//! Symbols are bound from the dims where they stand alone (`D`), in parameter order; every other
//! dim (literals, and derived sizes such as `D / 2`) is then checked against the bound values.

use candle_core::{DType, Device, Tensor};
use graph_ir::{display_shape, Dim, Graph, ParamKind};

use crate::error::{Error, Result, SymbolMismatch};

/// The sizes, dtype and device one call runs with.
#[derive(Debug)]
pub struct Bound {
    /// The size of each symbol, indexed like [`Graph::symbols`].
    pub symbols: Vec<usize>,
    /// The dtype all tensor arguments share.
    pub dtype: DType,
    pub device: Device,
}

impl Bound {
    /// Evaluates a shape under the bound symbols.
    pub fn shape(&self, graph: &Graph, dims: &[Dim], what: impl FnOnce() -> String) -> Result<Vec<usize>> {
        dims.iter()
            .map(|d| d.eval(&self.symbols))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Fraction {
                func: graph.name,
                what: what(),
                size: display_shape(dims, graph.symbols),
                symbols: self.describe(graph),
            })
    }

    fn describe(&self, graph: &Graph) -> String {
        let pairs: Vec<String> = graph
            .symbols
            .iter()
            .zip(&self.symbols)
            .map(|(s, v)| format!("{s} = {v}"))
            .collect();
        pairs.join(", ")
    }
}

/// Checks `tensors` (the tensor parameters in order) against `graph`.
pub fn bind(graph: &'static Graph, tensors: &[&Tensor]) -> Result<Bound> {
    let func = graph.name;
    let params: Vec<(&'static str, &'static [Dim])> = graph
        .params
        .iter()
        .filter_map(|p| match p.kind {
            ParamKind::Tensor(shape) => Some((p.name, shape)),
            ParamKind::Scalar(_) => None,
        })
        .collect();
    assert_eq!(
        params.len(),
        tensors.len(),
        "generated code passes one tensor per tensor parameter"
    );
    let Some(first) = tensors.first() else {
        // A graph of scalars only cannot be written (the result must be a tensor).
        unreachable!("graphs have at least one tensor parameter");
    };
    let (first_name, dtype, device) = (params[0].0, first.dtype(), first.device().clone());

    for (&(param, declared), t) in params.iter().zip(tensors) {
        if !matches!(t.dtype(), DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
            return Err(Error::UnsupportedDType {
                func,
                param,
                actual: t.dtype(),
            });
        }
        if t.dtype() != dtype {
            return Err(Error::DType {
                func,
                param,
                first: first_name,
                expected: dtype,
                actual: t.dtype(),
            });
        }
        if !t.device().same_device(&device) {
            let (expected, actual) = (
                format!("{:?}", device.location()),
                format!("{:?}", t.device().location()),
            );
            return Err(Error::Device {
                func,
                param,
                first: first_name,
                expected,
                actual,
            });
        }
        if t.rank() != declared.len() {
            return Err(Error::Rank {
                func,
                param,
                declared: display_shape(declared, graph.symbols),
                expected: declared.len(),
                actual: t.dims().to_vec(),
            });
        }
    }

    let mut symbols: Vec<Option<(usize, &'static str, usize)>> = vec![None; graph.symbols.len()];
    for (&(param, declared), t) in params.iter().zip(tensors) {
        for (i, (d, &actual)) in declared.iter().zip(t.dims()).enumerate() {
            if let Some(s) = d.as_sym() {
                if let Some((bound, bound_by, bound_dim)) = symbols[s as usize] {
                    if bound != actual {
                        return Err(Error::Symbol(Box::new(SymbolMismatch {
                            func,
                            symbol: graph.symbols[s as usize],
                            bound,
                            bound_by,
                            bound_dim,
                            param,
                            dim: i,
                            declared: display_shape(declared, graph.symbols),
                            expected: bound,
                            actual,
                        })));
                    }
                } else {
                    symbols[s as usize] = Some((actual, param, i));
                }
            }
        }
    }
    let values: Vec<usize> = symbols
        .iter()
        .map(|s| s.expect("the macro rejects symbols that no parameter binds").0)
        .collect();

    for (&(param, declared), t) in params.iter().zip(tensors) {
        for (i, (d, &actual)) in declared.iter().zip(t.dims()).enumerate() {
            if d.as_sym().is_some() {
                continue;
            }
            let shown = display_shape(declared, graph.symbols);
            let Some(expected) = d.eval(&values) else {
                return Err(Error::Fraction {
                    func,
                    what: format!("parameter `{param}` dim {i}"),
                    size: d.display(graph.symbols).to_string(),
                    symbols: Bound {
                        symbols: values.clone(),
                        dtype,
                        device: device.clone(),
                    }
                    .describe(graph),
                });
            };
            if expected != actual {
                return match d.symbols().next() {
                    None => Err(Error::Dim {
                        func,
                        param,
                        dim: i,
                        declared: shown,
                        expected,
                        actual,
                    }),
                    Some(s) => {
                        let (bound, bound_by, bound_dim) = symbols[s as usize].expect("bound above");
                        Err(Error::Symbol(Box::new(SymbolMismatch {
                            func,
                            symbol: graph.symbols[s as usize],
                            bound,
                            bound_by,
                            bound_dim,
                            param,
                            dim: i,
                            declared: shown,
                            expected,
                            actual,
                        })))
                    }
                };
            }
        }
    }
    Ok(Bound {
        symbols: values,
        dtype,
        device,
    })
}
