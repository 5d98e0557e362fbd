//! Reverse-mode differentiation of an optimised forward graph: the graph of its backward.
//!
//! For `f(p1..pn) -> (y1..ym)` it builds `(p1..pn, d1..dm) -> (dp..)`: the parameters of `f`
//! in order (tensors and scalars), then one cotangent tensor per output of the output's shape
//! (`dy` for a single output, `d0`, `d1`, ... otherwise; a name taken by a parameter gets a
//! trailing `_`), returning the gradient of each tensor parameter of `f`, in parameter order,
//! each of exactly that parameter's declared shape.
//!
//! Its nodes are the forward nodes (copied with their ids, so that a rule can name `x` and `y`;
//! the optimiser then drops those the gradients do not need) followed by the cotangents: walking
//! the forward in reverse topological order, each node's cotangent sends one contribution to each
//! argument that depends on a tensor parameter, and the contributions to one value add up.
//! Pointwise ops and reductions take their rule from the op's row ([`graph_ir::ops::vjp`]); the
//! structural ops are handled here:
//! - `where_(c, a, b)`: `where_(c, dy, 0)` to `a`, `where_(c, 0, dy)` to `b`, nothing to `c`;
//! - `cast(x, t)`: `dy`, cast to `x`'s own storage type where `x` has one;
//! - `matmul(a, b)`: `dy @ bᵀ` and `aᵀ @ dy`, then summed over the batch dims the side was
//!   broadcast in;
//! - `transpose`, `reshape`: the same transpose, the reshape back;
//! - `broadcast(x)`: `dy` summed over the broadcast dims;
//! - `narrow(x, axis, start, len)`: `cat` of a zero block, `dy` and a zero block along `axis`;
//! - `cat(parts, axis)`: `dy` narrowed to each part.
//!
//! Contributions are summed down to their target's shape: over the axes the target was broadcast
//! along (dims kept), the leading axes it lacks merged by a reshape and dropped. A cotangent
//! narrower than its node (a reduction's rule gives `[.., 1]` for `[.., D]`) stands for its
//! broadcast: pointwise rules take it as it is, and it is broadcast for the other ops and for
//! the gradient outputs, which have exactly their parameter's shape. Ops whose row says `Zero` (`floor`) send exact zeros;
//! comparisons send nothing. A zero is a `broadcast` of the literal `0.0` to the zero's shape,
//! which the IR allows as it allows any scalar to broadcast; a parameter no path reaches gets one.
//!
//! Assumes the graph came out of `check` (shapes consistent, outputs tensors) and was optimised.
//! Returns `None` when there is nothing to differentiate (no tensor parameter) or the backward
//! cannot be written in the IR: a `narrow` whose remainder after the window is not a monomial
//! (`narrow(x, -1, 0, 4)` of `x: [N, D]` leaves `D - 4`).

use graph_ir::ops::vjp::{self, Builder, Vjp};
use graph_ir::{BinaryOp, Dim, Lit, Op, ReduceOp, UnaryOp};

use crate::check::shape::Shapes;
use crate::ir::{Graph, Node, NodeId, Param, ParamKind, Ty};

/// The backward graph of `forward`, or `None` where it has none (see the module docs).
pub fn differentiate(forward: &Graph) -> Option<Graph> {
    let tensor_params: Vec<(u16, Vec<Dim>)> = (forward.params.iter().enumerate())
        .filter_map(|(i, p)| match &p.kind {
            ParamKind::Tensor(shape) => Some((u16::try_from(i).ok()?, shape.clone())),
            ParamKind::Scalar(_) => None,
        })
        .collect();
    if tensor_params.is_empty() {
        return None;
    }
    let mut out_shapes = Vec::with_capacity(forward.outputs.len());
    for o in &forward.outputs {
        out_shapes.push(forward.node(*o).ty.shape()?.to_vec());
    }
    let mut g = Graph {
        params: forward.params.clone(),
        symbols: forward.symbols.clone(),
        leading: forward.leading,
        nodes: forward.nodes.clone(),
        outputs: Vec::new(),
    };
    for (i, shape) in out_shapes.iter().enumerate() {
        let mut name = if out_shapes.len() == 1 {
            "dy".to_string()
        } else {
            format!("d{i}")
        };
        while g.params.iter().any(|p| p.name == name) {
            name.push('_');
        }
        g.params.push(Param {
            name,
            kind: ParamKind::Tensor(shape.clone()),
        });
    }
    let tracked = tracked(forward);
    let mut b = Backward {
        g,
        cotangent: vec![None; forward.nodes.len()],
        axis: 0,
        reduced: Dim::lit(1),
    };
    for (i, (o, shape)) in forward.outputs.iter().zip(&out_shapes).enumerate() {
        if !tracked[o.index()] {
            continue;
        }
        let p = u16::try_from(forward.params.len() + i).ok()?;
        let d = b.push(Op::Input(p), vec![], Ty::Tensor(shape.clone()));
        b.accumulate(*o, d);
    }
    for id in forward.ids().rev() {
        let Some(dy) = b.cotangent[id.index()] else {
            continue;
        };
        let node = forward.node(id);
        // Pointwise rules broadcast a narrow cotangent; the others need it in full.
        let pointwise = matches!(node.op, Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast(_));
        let dy = if pointwise {
            dy
        } else {
            b.fit(dy, node.ty.shape()?)
        };
        for (k, dx) in b.contributions(forward, id, dy)? {
            let arg = node.args[k];
            if tracked[arg.index()] {
                let dx = match pointwise {
                    true => b.spread(
                        dx,
                        node.ty.shape()?,
                        forward.node(arg).ty.shape().unwrap_or_default(),
                    ),
                    false => dx,
                };
                b.accumulate(arg, dx);
            }
        }
    }
    for (p, shape) in tensor_params {
        let input = forward.ids().find(|id| forward.node(*id).op == Op::Input(p));
        let grad = match input.and_then(|i| b.cotangent[i.index()]) {
            Some(d) => b.fit(d, &shape),
            None => b.zeros(&shape),
        };
        b.g.outputs.push(grad);
    }
    Some(b.g)
}

/// For each output of `forward`, the tensor parameters (by index among the tensor parameters, in
/// order) it depends on through ops that carry gradients ([`Op::carries_gradient`]): those its
/// cotangent sends a gradient to, as the runtime ties them (`Graph::reached`).
pub fn reached(forward: &Graph) -> Vec<Vec<u16>> {
    let mut slots = Vec::with_capacity(forward.params.len());
    let mut count = 0u16;
    for p in &forward.params {
        slots.push(matches!(p.kind, ParamKind::Tensor(_)).then(|| {
            count += 1;
            count - 1
        }));
    }
    let mut deps: Vec<std::collections::BTreeSet<u16>> = Vec::with_capacity(forward.nodes.len());
    for node in &forward.nodes {
        let mut d = std::collections::BTreeSet::new();
        for (k, a) in node.args.iter().enumerate() {
            if node.op.carries_gradient(k) {
                d.extend(deps[a.index()].iter().copied());
            }
        }
        if let Op::Input(p) = node.op {
            d.extend(slots[p as usize]);
        }
        deps.push(d);
    }
    (forward.outputs.iter())
        .map(|o| deps[o.index()].iter().copied().collect())
        .collect()
}

/// Whether each node depends on a tensor parameter (only those can have a gradient).
fn tracked(graph: &Graph) -> Vec<bool> {
    let mut out = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let t = matches!(node.op, Op::Input(_)) || node.args.iter().any(|a| out[a.index()]);
        out.push(t);
    }
    out
}

/// The backward graph under construction, and each forward node's cotangent so far.
struct Backward {
    g: Graph,
    cotangent: Vec<Option<NodeId>>,
    /// The axis of the reduction whose rule is being built ([`Builder::sum`], [`Builder::count`]),
    /// and its length.
    axis: u8,
    reduced: Dim,
}

impl Backward {
    fn push(&mut self, op: Op, args: Vec<NodeId>, ty: Ty) -> NodeId {
        self.g.push(Node { op, args, ty })
    }

    fn ty(&self, id: NodeId) -> &Ty {
        &self.g.node(id).ty
    }

    fn shape(&self, id: NodeId) -> Vec<Dim> {
        self.ty(id).shape().map(<[Dim]>::to_vec).unwrap_or_default()
    }

    /// Adds `d` to the cotangent of forward node `target`, summed down to its shape. A cotangent
    /// may stay narrower than its node (a reduction's rule gives `[.., 1]` for `[.., D]`): it
    /// stands for its broadcast, which pointwise rules take as it is (so the broadcast fuses), and
    /// [`Backward::fit`] writes out where an op or an output needs the full shape.
    fn accumulate(&mut self, target: NodeId, d: NodeId) {
        let shape = self.shape(target);
        let d = self.unbroadcast(d, &shape);
        let sum = match self.cotangent[target.index()] {
            Some(c) => self.binary(BinaryOp::Add, c, d),
            None => d,
        };
        self.cotangent[target.index()] = Some(sum);
    }

    /// A pointwise rule's contribution `dx` to an argument of shape `arg`, from node of shape
    /// `node`: `dx` is as narrow as the cotangent it came from and stands for its broadcast to
    /// `node`, so where it has size 1 along an axis that the node has and the argument was
    /// broadcast along, the sum over that axis is `dx` times the axis' length.
    /// [`Backward::accumulate`] sums only where `dx` is wider than the argument. (`x - y` with
    /// `y: []` under `mean(.., -1)`: the cotangent `dy / D` is `[1]`, and `y`'s gradient is `D`
    /// times its negation.)
    fn spread(&mut self, dx: NodeId, node: &[Dim], arg: &[Dim]) -> NodeId {
        let d = self.shape(dx);
        let at = |shape: &[Dim], i: usize| {
            let skip = node.len() - shape.len().min(node.len());
            i.checked_sub(skip).map_or(Dim::lit(1), |j| shape[j])
        };
        let mut v = dx;
        for (i, &n) in node.iter().enumerate() {
            if !n.is_one() && at(&d, i).is_one() && at(arg, i).is_one() {
                let size = match n.as_lit() {
                    Some(n) => self.constant(n as f64),
                    None => self.push(Op::Size(n), vec![], Ty::Scalar),
                };
                v = self.binary(BinaryOp::Mul, v, size);
            }
        }
        v
    }

    /// `v` in exactly `target`'s shape: [`Backward::unbroadcast`], then broadcast where `v` is
    /// narrower.
    fn fit(&mut self, v: NodeId, target: &[Dim]) -> NodeId {
        let v = self.unbroadcast(v, target);
        match self.ty(v) {
            Ty::Tensor(shape) if shape == target => v,
            _ => self.push(Op::Broadcast, vec![v], Ty::Tensor(target.to_vec())),
        }
    }

    /// `v` summed (dims kept) over the axes `target` was broadcast along, its leading axes that
    /// `target` lacks reshaped away: a value that broadcasts into `target`. The leading axes are
    /// merged into one first, so that `dw` of `x: [B, S, D] * w: [D]` is one sum over `B * S`.
    fn unbroadcast(&mut self, v: NodeId, target: &[Dim]) -> NodeId {
        let Ty::Tensor(mut shape) = self.ty(v).clone() else {
            return v;
        };
        let mut v = v;
        let lead = shape.len().saturating_sub(target.len());
        if lead > 1 {
            if let Ok(n) = Dim::product(&shape[..lead]) {
                shape.splice(..lead, [n]);
                v = self.push(Op::Reshape, vec![v], Ty::Tensor(shape.clone()));
            }
        }
        let offset = target.len() as isize - shape.len() as isize;
        for axis in 0..shape.len() {
            let t = usize::try_from(axis as isize + offset).ok().map(|j| target[j]);
            if !shape[axis].is_one() && t.is_none_or(|t| t.is_one()) {
                shape[axis] = Dim::lit(1);
                let axis = u8::try_from(axis).expect("ranks fit u8");
                v = self.push(
                    Op::Reduce(ReduceOp::Sum, axis),
                    vec![v],
                    Ty::Tensor(shape.clone()),
                );
            }
        }
        if shape.len() > target.len() {
            shape.drain(..shape.len() - target.len());
            v = self.push(Op::Reshape, vec![v], Ty::Tensor(shape));
        }
        v
    }

    /// Exact zeros of `shape`.
    fn zeros(&mut self, shape: &[Dim]) -> NodeId {
        let zero = self.constant(0.0);
        self.push(Op::Broadcast, vec![zero], Ty::Tensor(shape.to_vec()))
    }

    /// The type of values `args` broadcast together.
    fn broadcast_ty(&self, args: &[NodeId]) -> Ty {
        let mut out = Ty::Scalar;
        for a in args {
            out = match (out, self.ty(*a)) {
                (t, Ty::Scalar) => t,
                (Ty::Scalar, t) => t.clone(),
                (Ty::Tensor(x), Ty::Tensor(y)) => Ty::Tensor(
                    (Shapes { names: &[] })
                        .broadcast(&x, y)
                        .expect("a rule's values broadcast as its op's did"),
                ),
            };
        }
        out
    }

    fn transpose_last(&mut self, x: NodeId) -> NodeId {
        let mut shape = self.shape(x);
        let r = shape.len();
        shape.swap(r - 2, r - 1);
        let (a, b) = (
            u8::try_from(r - 2).expect("ranks fit u8"),
            u8::try_from(r - 1).expect("ranks fit u8"),
        );
        self.push(Op::Transpose(a, b), vec![x], Ty::Tensor(shape))
    }

    fn matmul(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let ty = (Shapes { names: &[] })
            .matmul(&self.shape(a), &self.shape(b))
            .expect("a matmul's gradient has fitting shapes");
        self.push(Op::Matmul, vec![a, b], Ty::Tensor(ty))
    }

    /// What the cotangent `dy` of forward node `id` sends to each argument, by argument index.
    /// `None` where the contribution cannot be written in the IR.
    fn contributions(&mut self, forward: &Graph, id: NodeId, dy: NodeId) -> Option<Vec<(usize, NodeId)>> {
        let node = forward.node(id);
        let args = &node.args;
        let arg_shape = |k: usize| {
            forward
                .node(args[k])
                .ty
                .shape()
                .map(<[Dim]>::to_vec)
                .unwrap_or_default()
        };
        let out = match node.op {
            Op::Input(_) | Op::Scalar(_) | Op::Const(_) | Op::Size(_) => vec![],
            Op::Unary(u) => match u.info().vjp {
                Vjp::Rule(rule) => vec![(0, vjp::unary(rule, self, args[0], id, dy))],
                Vjp::Zero => vec![(0, self.zeros(&arg_shape(0)))],
                Vjp::NotDifferentiable => vec![],
            },
            Op::Binary(op) => match op.info().vjp {
                Vjp::Rule(rules) => {
                    let (a, b) = (args[0], args[1]);
                    let da = vjp::binary(rules.da, self, a, b, id, dy);
                    let db = vjp::binary(rules.db, self, a, b, id, dy);
                    vec![(0, da), (1, db)]
                }
                Vjp::Zero => vec![(0, self.zeros(&arg_shape(0))), (1, self.zeros(&arg_shape(1)))],
                Vjp::NotDifferentiable => vec![],
            },
            Op::Reduce(r, axis) => match r.info().vjp {
                Vjp::Rule(rule) => {
                    self.axis = axis;
                    self.reduced = arg_shape(0)[axis as usize];
                    vec![(0, vjp::reduce(rule, self, args[0], id, dy))]
                }
                Vjp::Zero => vec![(0, self.zeros(&arg_shape(0)))],
                Vjp::NotDifferentiable => vec![],
            },
            Op::Where => {
                let zero = self.constant(0.0);
                let ty = self.broadcast_ty(&[args[0], dy]);
                let da = self.push(Op::Where, vec![args[0], dy, zero], ty.clone());
                let db = self.push(Op::Where, vec![args[0], zero, dy], ty);
                vec![(1, da), (2, db)]
            }
            Op::Cast(_) => match forward.dtypes()[args[0].index()] {
                Some(t) => {
                    let ty = self.ty(dy).clone();
                    vec![(0, self.push(Op::Cast(t), vec![dy], ty))]
                }
                None => vec![(0, dy)],
            },
            Op::Matmul => {
                let bt = self.transpose_last(args[1]);
                let da = self.matmul(dy, bt);
                let at = self.transpose_last(args[0]);
                let db = self.matmul(at, dy);
                vec![(0, da), (1, db)]
            }
            Op::Transpose(a, b) => {
                let ty = Ty::Tensor(arg_shape(0));
                vec![(0, self.push(Op::Transpose(a, b), vec![dy], ty))]
            }
            Op::Reshape => vec![(0, self.push(Op::Reshape, vec![dy], Ty::Tensor(arg_shape(0))))],
            Op::Broadcast => vec![(0, dy)],
            Op::Narrow(axis, start) => {
                let full = arg_shape(0);
                let a = axis as usize;
                let len = node.ty.shape()?[a];
                let after = combine(&[(full[a], 1), (start, -1), (len, -1)])?;
                let mut parts = Vec::with_capacity(3);
                for (size, block) in [(start, None), (len, Some(dy)), (after, None)] {
                    if size.as_lit() == Some(0) {
                        continue;
                    }
                    parts.push(match block {
                        Some(d) => d,
                        None => {
                            let mut shape = full.clone();
                            shape[a] = size;
                            self.zeros(&shape)
                        }
                    });
                }
                let dx = match parts.as_slice() {
                    [only] => *only,
                    _ => self.push(Op::Cat(axis), parts, Ty::Tensor(full)),
                };
                vec![(0, dx)]
            }
            Op::Cat(axis) => {
                let a = axis as usize;
                let mut offset = Dim::lit(0);
                let mut out = Vec::with_capacity(args.len());
                for k in 0..args.len() {
                    let shape = arg_shape(k);
                    let part = self.push(Op::Narrow(axis, offset), vec![dy], Ty::Tensor(shape.clone()));
                    out.push((k, part));
                    offset = combine(&[(offset, 1), (shape[a], 1)])?;
                }
                out
            }
        };
        Some(out)
    }
}

/// `sum(sign * dim)` where the terms are rational multiples of one monomial (`0` terms aside)
/// and the sum is not negative: `D - D/2 - D/2 = 0`, `8 - 3 = 5`.
fn combine(terms: &[(Dim, i64)]) -> Option<Dim> {
    let mut factors = None;
    let (mut num, mut den): (i128, i128) = (0, 1);
    for &(d, sign) in terms {
        let (n, dd, f) = d.parts();
        if n == 0 {
            continue;
        }
        if *factors.get_or_insert(f) != f {
            return None;
        }
        num = num
            .checked_mul(dd as i128)?
            .checked_add((n as i128).checked_mul(den)?.checked_mul(sign as i128)?)?;
        den = den.checked_mul(dd as i128)?;
    }
    if num < 0 {
        return None;
    }
    let Some(factors) = factors.filter(|_| num > 0) else {
        return Some(Dim::lit(0));
    };
    let unit = Dim::from_parts(1, 1, factors);
    let (num, den) = (u64::try_from(num).ok()?, u64::try_from(den).ok()?);
    unit.times(Dim::lit(num)).ok()?.div_lit(den).ok()
}

impl Builder for Backward {
    type V = NodeId;

    fn constant(&mut self, v: f64) -> NodeId {
        self.push(Op::Const(Lit::new(v)), vec![], Ty::Scalar)
    }

    fn unary(&mut self, op: UnaryOp, x: NodeId) -> NodeId {
        let ty = self.ty(x).clone();
        self.push(Op::Unary(op), vec![x], ty)
    }

    fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
        let ty = self.broadcast_ty(&[a, b]);
        self.push(Op::Binary(op), vec![a, b], ty)
    }

    fn select(&mut self, cond: NodeId, a: NodeId, b: NodeId) -> NodeId {
        let ty = self.broadcast_ty(&[cond, a, b]);
        self.push(Op::Where, vec![cond, a, b], ty)
    }

    fn sum(&mut self, x: NodeId) -> NodeId {
        let Ty::Tensor(mut shape) = self.ty(x).clone() else {
            // A scalar stands for its broadcast along the axis.
            let n = self.count(x);
            return self.binary(BinaryOp::Mul, x, n);
        };
        shape[self.axis as usize] = Dim::lit(1);
        self.push(Op::Reduce(ReduceOp::Sum, self.axis), vec![x], Ty::Tensor(shape))
    }

    fn count(&mut self, _: NodeId) -> NodeId {
        let d = self.reduced;
        match d.as_lit() {
            Some(n) => self.constant(n as f64),
            None => self.push(Op::Size(d), vec![], Ty::Scalar),
        }
    }
}
