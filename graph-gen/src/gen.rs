//! Drawing one function: shapes top-down, intervals and error bounds bottom-up.

use crate::dim::Dim;
use crate::rng::Rng;

/// A shape symbol of a generated function and what its run-time size must satisfy.
#[derive(Clone, Debug)]
pub struct Sym {
    /// The DSL name.
    pub name: String,
    /// The largest size the tests draw (the tolerance model assumes it).
    pub max: u64,
    /// Whether the size must be even (`D / 2` occurs).
    pub even: bool,
    /// The smallest allowed size (a literal narrow of a symbolic dim needs room).
    pub min: u64,
}

/// A parameter's kind.
#[derive(Clone, Debug)]
pub enum ParamKind {
    /// A tensor of this shape.
    Tensor(Vec<Dim>),
    /// An `f32` scalar.
    F32,
    /// An `f64` scalar.
    F64,
}

/// A parameter, and the interval its random values are drawn from.
#[derive(Clone, Debug)]
pub struct Param {
    /// The DSL name (`_`-prefixed when the body does not use it).
    pub name: String,
    /// Tensor or scalar.
    pub kind: ParamKind,
    /// The smallest value drawn.
    pub lo: f64,
    /// The largest value drawn.
    pub hi: f64,
}

/// An output: its shape, and its rounding-error bound as coefficients of the unit roundoffs
/// `[compute, storage, f16, bf16, f32, f64]` (see `tests/random.rs`).
#[derive(Clone, Debug)]
pub struct Output {
    /// The inferred (and declared) shape.
    pub shape: Vec<Dim>,
    /// Absolute error bound per unit roundoff.
    pub err: [f64; 6],
}

/// One generated function.
#[derive(Clone, Debug)]
pub struct Function {
    /// The function's name (`f{index}`).
    pub name: String,
    /// The `fn ... { ... }` item in the DSL.
    pub source: String,
    /// The body of the f64 reference: Rust statements over `t: &[Tensor]` (tensor parameters in
    /// f64), `s: &[f64]` (scalar parameters) and `sz: &[usize]` (symbol sizes), returning
    /// `Ok(vec![...])`, built from the helpers `r::*` of `tests/random.rs`.
    pub reference: String,
    /// Symbols, by index.
    pub syms: Vec<Sym>,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// Outputs in order.
    pub outputs: Vec<Output>,
    /// Every intermediate shape, so the tests can bound the sizes they draw.
    pub shapes: Vec<Vec<Dim>>,
    /// Symbols whose size must not be 0 (reduced by an op undefined on empty rows, or divisors).
    pub nonzero: Vec<usize>,
    /// The random choices that drew the function: [`generate_from`] draws it again.
    pub choices: Vec<u64>,
}

/// The unary ops the generator draws: every one of the DSL (`tests/random.rs` checks this
/// against the op table, and its reference computes each).
pub const UNARY_OPS: [&str; 23] = [
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "recip", "sqr", "sin", "cos", "tanh", "erf", "sigmoid",
    "silu", "gelu", "gelu_erf", "relu", "floor", "ceil", "round", "sign", "log1p", "expm1",
];

/// The unary ops that jump: a rounding error in their argument may move the result by a whole
/// step, so they apply only to values every mode computes exactly (as comparisons do).
const STEPS: [&str; 4] = ["floor", "ceil", "round", "sign"];

/// Index of each dtype in an error vector, after `[compute, storage]`.
const DTYPES: [&str; 4] = ["f16", "bf16", "f32", "f64"];
/// Largest magnitude any value may reach (keeps f16 finite and errors meaningful).
const MAX_MAG: f64 = 1e4;

#[derive(Clone, Debug)]
struct Val {
    /// The DSL text.
    text: String,
    /// Whether `text` needs no parentheses as an operand or method receiver.
    atom: bool,
    /// The reference variable.
    var: String,
    /// `None` for a scalar.
    shape: Option<Vec<Dim>>,
    lo: f64,
    hi: f64,
    /// Computed bit-for-bit alike in every mode, and representable in every storage dtype.
    exact: bool,
    /// May be compared: exact, or a scalar every mode holds exactly.
    cmp: bool,
    err: [f64; 6],
    /// The dtype a `cast` fixed (index into `DTYPES`).
    fixed: Option<usize>,
}

impl Val {
    fn mag(&self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }

    fn operand(&self) -> String {
        if self.atom {
            self.text.clone()
        } else {
            format!("({})", self.text)
        }
    }
}

/// Whether `s` broadcasts to `t` under the DSL's strict rule.
fn broadcasts_to(s: &[Dim], t: &[Dim]) -> bool {
    s.len() <= t.len()
        && s.iter()
            .rev()
            .zip(t.iter().rev())
            .all(|(a, b)| a == b || a.is_one())
}

/// The broadcast of two shapes that both broadcast to one target.
fn broadcast(a: &[Dim], b: &[Dim]) -> Vec<Dim> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let off = long.len() - short.len();
    long.iter()
        .enumerate()
        .map(|(i, d)| match i.checked_sub(off).map(|j| &short[j]) {
            Some(s) if d.is_one() => s.clone(),
            _ => d.clone(),
        })
        .collect()
}

/// `torch.sign`: 0 for 0 (and NaN, which the generator never draws).
fn sign(v: f64) -> f64 {
    f64::from(u8::from(v > 0.0)) - f64::from(u8::from(v < 0.0))
}

fn add_err(a: &[f64; 6], ka: f64, b: &[f64; 6], kb: f64) -> [f64; 6] {
    std::array::from_fn(|i| ka * a[i] + kb * b[i])
}

fn is_dyadic(v: f64) -> bool {
    (v * 256.0).fract() == 0.0 && v.abs() <= 64.0
}

struct Gen {
    rng: Rng,
    syms: Vec<Sym>,
    params: Vec<Param>,
    param_vals: Vec<Val>,
    used: Vec<bool>,
    /// Let-bound values available for reuse.
    pool: Vec<Val>,
    body: Vec<String>,
    reference: Vec<String>,
    shapes: Vec<Vec<Dim>>,
    nonzero: Vec<usize>,
    mentioned: Vec<bool>,
    next: usize,
    lets: usize,
    /// Nodes left to draw; bounds the function's size.
    budget: usize,
}

/// The function `f{index}` of the stream `seed`: deterministic in both.
pub fn generate(seed: u64, index: usize) -> Function {
    draw(
        Rng::new(seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407)),
        index,
    )
}

/// The function `f{index}` drawn from recorded `choices` ([`Function::choices`], edited by the
/// shrinker): any sequence gives a valid function, and running out of choices picks the
/// simplest ones (leaves, the first option of each list).
pub fn generate_from(choices: Vec<u64>, index: usize) -> Function {
    draw(Rng::replay(choices), index)
}

fn draw(rng: Rng, index: usize) -> Function {
    let mut g = Gen {
        rng,
        syms: Vec::new(),
        params: Vec::new(),
        param_vals: Vec::new(),
        used: Vec::new(),
        pool: Vec::new(),
        body: Vec::new(),
        reference: Vec::new(),
        shapes: Vec::new(),
        nonzero: Vec::new(),
        mentioned: Vec::new(),
        next: 0,
        lets: 0,
        budget: 0,
    };
    let mut f = g.function(format!("f{index}"));
    f.choices = g.rng.log().to_vec();
    f
}

impl Gen {
    fn function(&mut self, name: String) -> Function {
        self.budget = *self.rng.pick(&[4, 8, 12, 16, 24]);
        let base = self.base_shape();
        let n_out = *self.rng.pick(&[1, 1, 1, 2, 2, 3]);
        let mut outputs = Vec::new();
        for i in 0..n_out {
            let target = if i == 0 { base.clone() } else { self.variant(&base) };
            let depth = self.rng.range(2, 5);
            let mut v = self.gen(&target, depth);
            if v.shape.is_none() {
                let p = self.param_like(&target);
                v = self.binary_op("add", &p, &v);
            }
            outputs.push(v);
        }
        for v in &mut outputs {
            self.note_shape(v.shape.as_ref().expect("outputs are tensors"));
            // Every output is stored in its dtype, whatever its last op was.
            v.err = self.round(v.err, v.mag(), 0.0, v.fixed);
        }
        self.shadow(&mut outputs);
        self.standalone_symbols();
        let mut params_text = Vec::new();
        for (i, p) in self.params.iter_mut().enumerate() {
            if !self.used[i] {
                p.name = format!("_{}", p.name);
            }
            let ty = match &p.kind {
                ParamKind::Tensor(shape) => {
                    format!(
                        "Tensor[{}]",
                        shape
                            .iter()
                            .map(|d| d.render(&names(&self.syms)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
                ParamKind::F32 => "f32".into(),
                ParamKind::F64 => "f64".into(),
            };
            params_text.push(format!("{}: {ty}", p.name));
        }
        let names = names(&self.syms);
        let ty = |v: &Val| {
            let dims: Vec<String> = v
                .shape
                .as_ref()
                .unwrap()
                .iter()
                .map(|d| d.render(&names))
                .collect();
            format!("Tensor[{}]", dims.join(", "))
        };
        let (ret, tail) = if outputs.len() == 1 {
            (ty(&outputs[0]), outputs[0].text.clone())
        } else {
            (
                format!("({})", outputs.iter().map(ty).collect::<Vec<_>>().join(", ")),
                format!(
                    "({})",
                    outputs
                        .iter()
                        .map(|v| v.text.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        };
        let mut source = format!("pub fn {name}({}) -> {ret} {{\n", params_text.join(", "));
        for line in &self.body {
            source.push_str(&format!("    {line}\n"));
        }
        source.push_str(&format!("    {tail}\n}}\n"));
        let mut reference = self.reference.join("\n");
        reference.push_str(&format!(
            "\nOk(vec![{}])",
            outputs
                .iter()
                .map(|v| format!("{}.clone()", v.var))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut nonzero = self.nonzero.clone();
        nonzero.sort_unstable();
        nonzero.dedup();
        Function {
            name,
            source,
            reference,
            syms: self.syms.clone(),
            params: self.params.clone(),
            outputs: outputs
                .iter()
                .map(|v| Output {
                    shape: v.shape.clone().unwrap(),
                    err: v.err,
                })
                .collect(),
            shapes: self.shapes.clone(),
            nonzero,
            choices: Vec::new(),
        }
    }

    /// Now and then binds an output to the name of an earlier `let` or parameter, shadowing it.
    /// Only names that no other output's text mentions: those are written after this `let`.
    fn shadow(&mut self, outputs: &mut [Val]) {
        for i in 0..outputs.len() {
            if !self.rng.chance(0.15) {
                continue;
            }
            let mut names: Vec<String> = (1..=self.lets).map(|k| format!("t{k}")).collect();
            names.extend(self.params.iter().map(|p| p.name.clone()));
            let free: Vec<String> = names
                .into_iter()
                .filter(|n| {
                    outputs
                        .iter()
                        .enumerate()
                        .all(|(j, o)| j == i || !mentions(&o.text, n))
                })
                .collect();
            if free.is_empty() {
                continue;
            }
            let name = self.rng.pick(&free).clone();
            self.body.push(format!("let {name} = {};", outputs[i].text));
            outputs[i].text = name;
            outputs[i].atom = true;
        }
    }

    // ---- shapes ----

    fn new_sym(&mut self, long: bool) -> usize {
        const NAMES: [&str; 10] = ["N", "D", "B", "S", "H", "T", "K", "E", "M", "R"];
        let i = self.syms.len();
        let name = if i < NAMES.len() {
            NAMES[i].to_string()
        } else {
            format!("Z{i}")
        };
        self.syms.push(Sym {
            name,
            max: if long { 1100 } else { 40 },
            even: false,
            min: 0,
        });
        self.mentioned.push(false);
        i
    }

    fn some_sym(&mut self) -> usize {
        if self.syms.is_empty() || self.rng.chance(0.25) && self.syms.len() < 6 {
            self.new_sym(false)
        } else {
            self.rng.below(self.syms.len())
        }
    }

    fn lit_dim(&mut self) -> Dim {
        Dim::lit(*self.rng.pick(&[1, 1, 2, 3, 4, 5, 7, 8, 16]))
    }

    fn base_shape(&mut self) -> Vec<Dim> {
        let rank = *self.rng.pick(&[0, 1, 1, 2, 2, 2, 3, 3, 4, 5]);
        let mut shape = Vec::new();
        for i in 0..rank {
            let last = i + 1 == rank;
            let d = if self.rng.chance(0.25) {
                self.lit_dim()
            } else if last && self.rng.chance(0.4) {
                Dim::sym(self.new_sym(true))
            } else {
                Dim::sym(self.some_sym())
            };
            shape.push(d);
        }
        shape
    }

    /// Another output's target: the base shape, a reduced or reshaped relative, or a fresh one.
    fn variant(&mut self, base: &[Dim]) -> Vec<Dim> {
        let mut s = base.to_vec();
        match self.rng.below(4) {
            0 if !s.is_empty() => {
                let a = self.rng.below(s.len());
                s[a] = Dim::lit(1);
            }
            1 if s.len() >= 2 => {
                let a = self.rng.below(s.len() - 1);
                if let Some(m) = s[a].mul(&s[a + 1]) {
                    s.splice(a..a + 2, [m]);
                }
            }
            2 => s = self.base_shape(),
            _ => {}
        }
        s
    }

    /// A random shape that broadcasts to `target`.
    fn sub_shape(&mut self, target: &[Dim]) -> Vec<Dim> {
        let drop = if self.rng.chance(0.3) {
            self.rng.range(0, target.len())
        } else {
            0
        };
        target[drop..]
            .iter()
            .map(|d| {
                if self.rng.chance(0.15) {
                    Dim::lit(1)
                } else {
                    d.clone()
                }
            })
            .collect()
    }

    fn note_dim(&mut self, d: &Dim) {
        for &s in &d.syms {
            self.mentioned[s] = true;
        }
        if let Some(s) = d.halved_symbol() {
            self.syms[s].even = true;
        }
    }

    fn note_shape(&mut self, shape: &[Dim]) {
        for d in shape {
            self.note_dim(d);
        }
        self.shapes.push(shape.to_vec());
    }

    fn render_dims(&self, shape: &[Dim]) -> String {
        let names = names(&self.syms);
        format!(
            "[{}]",
            shape
                .iter()
                .map(|d| d.render(&names))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn code_dims(shape: &[Dim]) -> String {
        format!(
            "&[{}]",
            shape.iter().map(Dim::code).collect::<Vec<_>>().join(", ")
        )
    }

    /// Every symbol a shape mentions must stand alone as some parameter's dim.
    fn standalone_symbols(&mut self) {
        for s in 0..self.syms.len() {
            let alone = self.params.iter().any(|p| match &p.kind {
                ParamKind::Tensor(shape) => shape.contains(&Dim::sym(s)),
                _ => false,
            });
            if self.mentioned[s] && !alone {
                let name = format!("z{s}");
                self.params.push(Param {
                    name,
                    kind: ParamKind::Tensor(vec![Dim::sym(s)]),
                    lo: -1.0,
                    hi: 1.0,
                });
                self.used.push(false);
            }
        }
    }

    // ---- values ----

    fn var(&mut self) -> String {
        self.next += 1;
        format!("v{}", self.next)
    }

    /// Records a new value computed by reference code `code` (an expression over earlier vars).
    #[allow(clippy::too_many_arguments)]
    fn value(
        &mut self,
        text: String,
        atom: bool,
        code: String,
        shape: Option<Vec<Dim>>,
        lo: f64,
        hi: f64,
        err: [f64; 6],
    ) -> Val {
        let var = self.var();
        self.reference.push(format!("let {var} = {code}?;"));
        if let Some(s) = &shape {
            self.note_shape(s);
        }
        Val {
            text,
            atom,
            var,
            shape,
            lo,
            hi,
            exact: false,
            cmp: false,
            err,
            fixed: None,
        }
    }

    /// Adds the rounding of a node of magnitude `m` (`c` roundings in the compute type), and its
    /// storage when kernels write it out.
    fn round(&self, mut err: [f64; 6], m: f64, c: f64, fixed: Option<usize>) -> [f64; 6] {
        err[0] += c * m;
        match fixed {
            Some(t) => err[2 + t] += m,
            None => err[1] += m,
        }
        err
    }

    /// Binds `v` to a `let` now and then, so functions have chains of names and shared values.
    fn maybe_let(&mut self, v: Val) -> Val {
        if !self.rng.chance(0.35) {
            return v;
        }
        self.lets += 1;
        let name = format!("t{}", self.lets);
        self.body.push(format!("let {name} = {};", v.text));
        let named = Val {
            text: name,
            atom: true,
            ..v
        };
        self.pool.push(named.clone());
        named
    }

    fn new_param(&mut self, shape: Option<Vec<Dim>>) -> Val {
        let i = self.params.len();
        let (kind, lo, hi, name) = match &shape {
            Some(s) => {
                let (lo, hi) = *self
                    .rng
                    .pick(&[(-1.0, 1.0), (-2.0, 2.0), (0.25, 2.0), (-3.0, 0.5)]);
                (ParamKind::Tensor(s.clone()), lo, hi, format!("x{i}"))
            }
            None => {
                let (lo, hi) = *self.rng.pick(&[(-2.0, 2.0), (0.5, 2.0)]);
                let kind = if self.rng.chance(0.5) {
                    ParamKind::F32
                } else {
                    ParamKind::F64
                };
                (kind, lo, hi, format!("s{i}"))
            }
        };
        let (var, code) = match &shape {
            Some(s) => {
                let slot = self
                    .params
                    .iter()
                    .filter(|p| matches!(p.kind, ParamKind::Tensor(_)))
                    .count();
                self.note_shape(s);
                (self.var(), format!("t[{slot}].clone()"))
            }
            None => {
                let slot = self
                    .params
                    .iter()
                    .filter(|p| !matches!(p.kind, ParamKind::Tensor(_)))
                    .count();
                (self.var(), format!("r::scalar(s[{slot}])"))
            }
        };
        self.reference.push(format!("let {var} = {code};"));
        self.params.push(Param {
            name: name.clone(),
            kind,
            lo,
            hi,
        });
        self.used.push(true);
        let v = Val {
            text: name,
            atom: true,
            var,
            shape,
            lo,
            hi,
            // Tensor inputs are exact in every mode; scalars are exact in the compute type,
            // which is what a comparison sees (the tests draw f32-representable scalars).
            exact: true,
            cmp: true,
            err: [0.0; 6],
            fixed: None,
        };
        let exact_in_storage = v.shape.is_some();
        let v = Val {
            exact: exact_in_storage,
            ..v
        };
        self.param_vals.push(v.clone());
        v
    }

    /// An existing parameter of exactly `shape`, or a new one.
    fn param_like(&mut self, shape: &[Dim]) -> Val {
        let found: Vec<Val> = self
            .param_vals
            .iter()
            .filter(|p| p.shape.as_deref() == Some(shape))
            .cloned()
            .collect();
        if !found.is_empty() && self.rng.chance(0.6) {
            return self.rng.pick(&found).clone();
        }
        self.new_param(Some(shape.to_vec()))
    }

    fn literal(&mut self, cmp: bool) -> Val {
        let v: f64 = if cmp {
            *self.rng.pick(&[0.0, 0.5, -0.5, 1.0, 0.25, -1.25])
        } else {
            *self
                .rng
                .pick(&[0.5, 2.0, 1.5, -1.0, 3.0, 0.25, 0.1, 1e-3, -0.75, 1.0, 0.0, 2.0])
        };
        let text = if v == 2.0 && self.rng.chance(0.3) {
            "2".to_string()
        } else {
            format!("{v:?}")
        };
        let var = self.var();
        self.reference.push(format!("let {var} = r::scalar({v:?});"));
        let mut err = [0.0; 6];
        if !is_dyadic(v) {
            err[0] = v.abs();
        }
        Val {
            atom: v >= 0.0,
            text,
            var,
            shape: None,
            lo: v,
            hi: v,
            exact: is_dyadic(v),
            cmp: is_dyadic(v),
            err,
            fixed: None,
        }
    }

    /// A leaf: a let-bound value, a parameter, or a scalar, broadcasting to `target`.
    fn leaf(&mut self, target: &[Dim]) -> Val {
        let fits: Vec<Val> = self
            .pool
            .iter()
            .chain(self.param_vals.iter())
            .filter(|v| v.shape.as_deref().is_some_and(|s| broadcasts_to(s, target)))
            .cloned()
            .collect();
        match self.rng.below(10) {
            0..=3 if !fits.is_empty() => self.rng.pick(&fits).clone(),
            4 => self.literal(false),
            5 => {
                let scalars: Vec<Val> = self
                    .param_vals
                    .iter()
                    .filter(|v| v.shape.is_none())
                    .cloned()
                    .collect();
                if !scalars.is_empty() && self.rng.chance(0.5) {
                    self.rng.pick(&scalars).clone()
                } else {
                    self.new_param(None)
                }
            }
            _ => {
                let shape = self.sub_shape(target);
                self.param_like(&shape)
            }
        }
    }

    /// A value whose shape broadcasts to `target` (or a scalar).
    fn gen(&mut self, target: &[Dim], depth: usize) -> Val {
        if depth == 0 || self.budget == 0 {
            return self.leaf(target);
        }
        self.budget -= 1;
        let r = target.len();
        let weights = [
            14,                         // unary
            16,                         // arithmetic
            3,                          // maximum / minimum
            3,                          // where_ of a comparison
            2,                          // clamp
            if r >= 1 { 8 } else { 0 }, // reductions
            if r >= 1 { 3 } else { 0 }, // softmax family
            if r >= 2 { 3 } else { 0 }, // matmul
            if r >= 2 { 2 } else { 0 }, // transpose
            if r >= 1 { 2 } else { 0 }, // reshape
            if r >= 1 { 3 } else { 0 }, // narrow
            if r >= 1 { 3 } else { 0 }, // cat
            2,                          // cast
            if r >= 1 { 1 } else { 0 }, // broadcast
            1,                          // a size used as a value
            1,                          // pow
        ];
        let v = match self.rng.weighted(&weights) {
            0 => {
                let x = self.gen(target, depth - 1);
                self.unary(x)
            }
            1 => {
                let a = self.gen(target, depth - 1);
                let b = self.gen(target, depth - 1);
                let op = *self.rng.pick(&["add", "sub", "mul", "div"]);
                self.binary_op(op, &a, &b)
            }
            2 => {
                let a = self.gen(target, depth - 1);
                let b = self.gen(target, depth - 1);
                let op = *self.rng.pick(&["maximum", "minimum"]);
                self.binary_op(op, &a, &b)
            }
            3 => self.select(target, depth),
            4 => {
                let x = self.gen(target, depth - 1);
                self.clamp(x)
            }
            5 => self.reduce(target, depth),
            6 => self.softmax(target, depth),
            7 => self.matmul(target, depth),
            8 => self.transpose(target, depth),
            9 => self.reshape(target, depth),
            10 => self.narrow(target, depth),
            11 => self.cat(target, depth),
            12 => self.cast(target, depth),
            13 => {
                let x = self.gen(target, depth - 1);
                self.exactly(x, target)
            }
            14 => self.size_value(target, depth),
            _ => self.pow(target, depth),
        };
        self.maybe_let(v)
    }

    /// `x` with exactly the shape `target`: as it is, broadcast, or combined with a parameter.
    fn exactly(&mut self, x: Val, target: &[Dim]) -> Val {
        if x.shape.as_deref() == Some(target) {
            return x;
        }
        if x.shape.is_none() || target.is_empty() {
            let p = self.param_like(target);
            return self.binary_op("mul", &p, &x);
        }
        let dims = self.render_dims(target);
        let text = self.call("broadcast", "broadcast_as", &x, &dims);
        let code = format!("r::broadcast(&{}, {})", x.var, Self::code_dims(target));
        self.view(text, code, target, &x)
    }

    fn exact_gen(&mut self, target: &[Dim], depth: usize) -> Val {
        let x = self.gen(target, depth.saturating_sub(1));
        self.exactly(x, target)
    }

    // ---- pointwise ----

    fn call1(&mut self, op: &str, x: &Val) -> (String, bool) {
        let literal = x.text.starts_with(|c: char| c.is_ascii_digit() || c == '-');
        if literal || self.rng.chance(0.5) {
            (format!("{op}({})", x.text), true)
        } else {
            (format!("{}.{op}()", x.operand()), true)
        }
    }

    fn apply_unary(&mut self, op: &str, x: &Val, lo: f64, hi: f64, lip: f64, c: f64) -> Val {
        let (text, atom) = if op == "neg" && self.rng.chance(0.6) {
            (format!("-{}", x.operand()), false)
        } else {
            self.call1(op, x)
        };
        let code = format!("r::un(\"{op}\", &{})", x.var);
        let m = lo.abs().max(hi.abs());
        let err = if c == 0.0 {
            x.err
        } else {
            self.round(add_err(&x.err, lip, &[0.0; 6], 0.0), m, c, x.fixed)
        };
        let v = self.value(text, atom, code, x.shape.clone(), lo, hi, err);
        let exact = x.exact && c == 0.0;
        Val {
            exact,
            cmp: exact,
            fixed: x.fixed,
            ..v
        }
    }

    /// `x` made positive and bounded away from 0: for `log`, `sqrt`, `rsqrt`, `pow`'s base.
    fn positive(&mut self, x: Val) -> Val {
        if x.lo >= 0.125 {
            return x;
        }
        match self.rng.below(3) {
            0 => {
                let a = self.apply_unary("abs", &x, if x.lo >= 0.0 { x.lo } else { 0.0 }, x.mag(), 1.0, 0.0);
                let h = self.literal_value(0.5);
                self.binary_op("add", &a, &h)
            }
            1 => {
                let s = self.sigmoid_of(&x);
                let h = self.literal_value(0.25);
                self.binary_op("add", &s, &h)
            }
            _ => {
                let t = self.unary_named("tanh", x);
                self.unary_named("exp", t)
            }
        }
    }

    fn sigmoid_of(&mut self, x: &Val) -> Val {
        let s = |v: f64| 1.0 / (1.0 + (-v).exp());
        self.apply_unary("sigmoid", x, s(x.lo), s(x.hi), 0.25, 4.0)
    }

    fn literal_value(&mut self, v: f64) -> Val {
        let var = self.var();
        self.reference.push(format!("let {var} = r::scalar({v:?});"));
        Val {
            text: format!("{v:?}"),
            atom: v >= 0.0,
            var,
            shape: None,
            lo: v,
            hi: v,
            exact: is_dyadic(v),
            cmp: is_dyadic(v),
            err: [0.0; 6],
            fixed: None,
        }
    }

    /// A named unary op on `x`, with `x` first brought into the op's domain.
    fn unary_named(&mut self, op: &str, x: Val) -> Val {
        let x = match op {
            "exp" | "expm1" if x.hi > 3.0 => self.unary_named("tanh", x),
            "log1p" if x.lo < -0.5 => self.positive(x),
            "log" | "sqrt" | "rsqrt" => self.positive(x),
            "recip" if !(x.lo >= 0.25 || x.hi <= -0.25) => {
                let p = self.positive(x);
                if p.lo >= 0.25 {
                    p
                } else {
                    let h = self.literal_value(0.25);
                    self.binary_op("add", &p, &h)
                }
            }
            "sqr" if x.mag() > 16.0 => self.unary_named("tanh", x),
            _ => x,
        };
        let (lo, hi) = (x.lo, x.hi);
        let m = x.mag();
        let (lo2, hi2, lip, c) = match op {
            "neg" => (-hi, -lo, 1.0, 0.0),
            "abs" => (
                if lo >= 0.0 {
                    lo
                } else if hi <= 0.0 {
                    -hi
                } else {
                    0.0
                },
                m,
                1.0,
                0.0,
            ),
            "relu" => (lo.max(0.0), hi.max(0.0), 1.0, 0.0),
            // Exact, of an exact argument (see `STEPS`).
            "floor" => (lo.floor(), hi.floor(), 0.0, 0.0),
            "ceil" => (lo.ceil(), hi.ceil(), 0.0, 0.0),
            "round" => (lo.round_ties_even(), hi.round_ties_even(), 0.0, 0.0),
            "sign" => (sign(lo), sign(hi), 0.0, 0.0),
            "exp" => (lo.exp(), hi.exp(), hi.exp(), 4.0),
            "log" => (lo.ln(), hi.ln(), 1.0 / lo, 4.0),
            "expm1" => (lo.exp_m1(), hi.exp_m1(), hi.exp(), 4.0),
            "log1p" => (lo.ln_1p(), hi.ln_1p(), 1.0 / (1.0 + lo), 4.0),
            "sqrt" => (lo.sqrt(), hi.sqrt(), 0.5 / lo.sqrt(), 2.0),
            "rsqrt" => (1.0 / hi.sqrt(), 1.0 / lo.sqrt(), 0.5 * lo.powf(-1.5), 4.0),
            "recip" => {
                let a = lo.abs().min(hi.abs());
                (1.0 / hi, 1.0 / lo, 1.0 / (a * a), 2.0)
            }
            "sqr" => {
                let l = if lo >= 0.0 {
                    lo * lo
                } else if hi <= 0.0 {
                    hi * hi
                } else {
                    0.0
                };
                (l, m * m, 2.0 * m, 1.0)
            }
            "sin" | "cos" => (-1.0, 1.0, 1.0, 4.0),
            "tanh" => (lo.tanh(), hi.tanh(), 1.0, 4.0),
            "erf" => (-1.0, 1.0, 1.13, 4.0),
            "sigmoid" => return self.sigmoid_of(&x),
            // Both dip to about -0.28 (silu) and -0.17 (gelu) and stay below x for x > 0.
            "silu" => (if lo < 0.0 { -0.28 } else { 0.0 }, hi.max(0.0), 1.1, 4.0),
            "gelu" | "gelu_erf" => (if lo < 0.0 { -0.18 } else { 0.0 }, hi.max(0.0), 1.13, 8.0),
            _ => unreachable!("unary {op}"),
        };
        self.apply_unary(op, &x, lo2, hi2, lip, c)
    }

    fn unary(&mut self, x: Val) -> Val {
        let op = *self.rng.pick(&UNARY_OPS);
        let op = if STEPS.contains(&op) && !x.cmp { "neg" } else { op };
        self.unary_named(op, x)
    }

    /// A two-argument pointwise op (arithmetic, `maximum`/`minimum`, comparisons).
    fn binary_op(&mut self, op: &str, a: &Val, b: &Val) -> Val {
        let mut b = b.clone();
        let mut op = op;
        if op == "div" && !(b.lo >= 0.25 || b.hi <= -0.25) {
            let p = self.positive(b);
            b = if p.lo >= 0.25 {
                p
            } else {
                let h = self.literal_value(0.25);
                self.binary_op("add", &p, &h)
            };
        }
        if op == "mul" && a.mag() * b.mag() > MAX_MAG {
            op = "add";
        }
        if (op == "add" || op == "sub") && a.mag() + b.mag() > MAX_MAG {
            op = "maximum";
        }
        let shape = match (&a.shape, &b.shape) {
            (Some(x), Some(y)) => Some(broadcast(x, y)),
            (Some(x), None) | (None, Some(x)) => Some(x.clone()),
            (None, None) => None,
        };
        let (ma, mb) = (a.mag(), b.mag());
        let corners = |f: &dyn Fn(f64, f64) -> f64| {
            let v = [f(a.lo, b.lo), f(a.lo, b.hi), f(a.hi, b.lo), f(a.hi, b.hi)];
            (
                v.iter().cloned().fold(f64::INFINITY, f64::min),
                v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        let (lo, hi, ka, kb, c) = match op {
            "add" => (a.lo + b.lo, a.hi + b.hi, 1.0, 1.0, 1.0),
            "sub" => (a.lo - b.hi, a.hi - b.lo, 1.0, 1.0, 1.0),
            "mul" => {
                let (l, h) = corners(&|x, y| x * y);
                (l, h, mb, ma, 1.0)
            }
            "div" => {
                let (l, h) = corners(&|x, y| x / y);
                let mn = b.lo.abs().min(b.hi.abs());
                (l, h, 1.0 / mn, ma / (mn * mn), 2.0)
            }
            "maximum" => (a.lo.max(b.lo), a.hi.max(b.hi), 1.0, 1.0, 0.0),
            "minimum" => (a.lo.min(b.lo), a.hi.min(b.hi), 1.0, 1.0, 0.0),
            _ => (0.0, 1.0, 0.0, 0.0, 0.0), // comparisons
        };
        let sym = match op {
            "add" => Some("+"),
            "sub" => Some("-"),
            "mul" => Some("*"),
            "div" => Some("/"),
            "lt" => Some("<"),
            "le" => Some("<="),
            "gt" => Some(">"),
            "ge" => Some(">="),
            "eq" => Some("=="),
            "ne" => Some("!="),
            _ => None,
        };
        let callable = a.shape.is_some() || b.shape.is_some();
        let (text, atom) = match sym {
            Some(s) if !(callable && self.rng.chance(0.15)) => {
                (format!("{} {s} {}", a.operand(), b.operand()), false)
            }
            // A method needs a tensor or a name as receiver: `2.0.add(x)` is not Rust syntax.
            _ if a.atom
                && a.shape.is_some()
                && !a.text.starts_with(|c: char| c.is_ascii_digit())
                && self.rng.chance(0.5) =>
            {
                (format!("{}.{op}({})", a.text, b.text), true)
            }
            _ => (format!("{op}({}, {})", a.text, b.text), true),
        };
        let code = format!("r::bin(\"{op}\", &{}, &{})", a.var, b.var);
        let m = lo.abs().max(hi.abs());
        let fixed = if a.shape.is_some() {
            a.fixed
        } else {
            b.fixed.or(a.fixed)
        };
        let comparison = sym.is_some() && !matches!(op, "add" | "sub" | "mul" | "div");
        let err = if comparison {
            [0.0; 6]
        } else if c == 0.0 {
            std::array::from_fn(|i| a.err[i].max(b.err[i]))
        } else {
            self.round(add_err(&a.err, ka, &b.err, kb), m, c, fixed)
        };
        let v = self.value(text, atom, code, shape, lo, hi, err);
        let exact = comparison || (c == 0.0 && a.exact && b.exact);
        Val {
            exact,
            cmp: exact,
            fixed,
            ..v
        }
    }

    /// `where_(a < b, x, y)`, with a comparison of values every mode computes exactly.
    fn select(&mut self, target: &[Dim], depth: usize) -> Val {
        let a = self.comparable(target);
        let b = if self.rng.chance(0.5) {
            self.literal(true)
        } else {
            self.comparable(target)
        };
        let op = *self.rng.pick(&["lt", "le", "gt", "ge", "eq", "ne"]);
        let cond = self.binary_op(op, &a, &b);
        let x = self.gen(target, depth - 1);
        let y = self.gen(target, depth - 1);
        let shape = [&cond, &x, &y]
            .iter()
            .fold(None::<Vec<Dim>>, |acc, v| match (acc, &v.shape) {
                (Some(p), Some(q)) => Some(broadcast(&p, q)),
                (p, q) => p.or(q.clone()),
            });
        // The DSL's `where_` wants a tensor somewhere; a scalar-only select becomes a tensor one.
        let (cond, shape) = if shape.is_none() {
            let p = self.param_like(target);
            let c = self.binary_op("lt", &p, &cond);
            let s = c.shape.clone();
            (c, s)
        } else {
            (cond, shape)
        };
        let name = if self.rng.chance(0.7) {
            "where_"
        } else {
            "where_cond"
        };
        let text = if cond.shape.is_some() && cond.atom && self.rng.chance(0.3) {
            format!("{}.{name}({}, {})", cond.text, x.text, y.text)
        } else {
            format!("{name}({}, {}, {})", cond.text, x.text, y.text)
        };
        let code = format!("r::select(&{}, &{}, &{})", cond.var, x.var, y.var);
        let err = std::array::from_fn(|i| x.err[i].max(y.err[i]));
        let fixed = cond.fixed;
        let v = self.value(text, true, code, shape, x.lo.min(y.lo), x.hi.max(y.hi), err);
        let exact = x.exact && y.exact;
        Val {
            exact,
            cmp: exact,
            fixed,
            ..v
        }
    }

    /// A value a comparison may take: exact in every mode.
    fn comparable(&mut self, target: &[Dim]) -> Val {
        let exact: Vec<Val> = self
            .pool
            .iter()
            .chain(self.param_vals.iter())
            .filter(|v| v.cmp && v.shape.as_deref().is_none_or(|s| broadcasts_to(s, target)))
            .cloned()
            .collect();
        let v = if !exact.is_empty() && self.rng.chance(0.6) {
            self.rng.pick(&exact).clone()
        } else {
            let s = self.sub_shape(target);
            self.param_like(&s)
        };
        match self.rng.below(4) {
            0 if v.shape.is_some() => self.unary_named("abs", v),
            1 if v.shape.is_some() => self.unary_named("neg", v),
            _ => v,
        }
    }

    fn clamp(&mut self, x: Val) -> Val {
        let (lo, hi, lo_text, hi_text, lo_var, hi_var) = if self.rng.chance(0.6) {
            let (l, h) = *self.rng.pick(&[(-1.0, 1.0), (0.0, 6.0), (-0.5, 2.0)]);
            let (lv, hv) = (self.literal_value(l), self.literal_value(h));
            (l, h, lv.text, hv.text, lv.var, hv.var)
        } else {
            // Scalar parameters as bounds: ranges that never cross.
            let l = self.new_param(None);
            let h = self.new_param(None);
            let n = self.params.len();
            (self.params[n - 2].lo, self.params[n - 2].hi) = (-2.0, -0.5);
            (self.params[n - 1].lo, self.params[n - 1].hi) = (0.5, 2.0);
            (-2.0, 2.0, l.text, h.text, l.var, h.var)
        };
        let text = if x.shape.is_some() && self.rng.chance(0.5) {
            format!("{}.clamp({lo_text}, {hi_text})", x.operand())
        } else {
            format!("clamp({}, {lo_text}, {hi_text})", x.text)
        };
        let code = format!("r::clamp(&{}, &{lo_var}, &{hi_var})", x.var);
        let (l, h) = (x.lo.max(lo).min(hi), x.hi.min(hi).max(lo));
        let v = self.value(text, true, code, x.shape.clone(), l.min(h), h.max(l), x.err);
        Val { fixed: x.fixed, ..v }
    }

    fn pow(&mut self, target: &[Dim], depth: usize) -> Val {
        let base = self.gen(target, depth - 1);
        if self.rng.chance(0.4) {
            // An integral exponent: any sign of base, C `powf` everywhere.
            let base = if base.mag() > 4.0 {
                self.unary_named("tanh", base)
            } else {
                base
            };
            let e = self.literal_value(3.0);
            let m = base.mag();
            return self.pow_of(base, e, -m * m * m, m * m * m, 3.0 * m * m, 0.0);
        }
        let base = self.positive(base);
        let base = if base.hi > 4.0 {
            self.unary_named("tanh", base)
        } else {
            base
        };
        let base = self.positive(base);
        let e = self.gen(target, depth - 1);
        let e = if e.mag() > 2.0 {
            self.unary_named("tanh", e)
        } else {
            e
        };
        let corners = [(base.lo, e.lo), (base.lo, e.hi), (base.hi, e.lo), (base.hi, e.hi)];
        let vals: Vec<f64> = corners.iter().map(|(a, b)| a.powf(*b)).collect();
        let (lo, hi) = (
            vals.iter().cloned().fold(f64::INFINITY, f64::min),
            vals.iter().cloned().fold(0.0, f64::max),
        );
        let lip_a = corners
            .iter()
            .map(|(a, b)| (b * a.powf(b - 1.0)).abs())
            .fold(0.0, f64::max);
        let lip_b = corners
            .iter()
            .map(|(a, b)| (a.ln() * a.powf(*b)).abs())
            .fold(0.0, f64::max);
        self.pow_of(base, e, lo, hi, lip_a, lip_b)
    }

    fn pow_of(&mut self, a: Val, b: Val, lo: f64, hi: f64, lip_a: f64, lip_b: f64) -> Val {
        let text = if a.shape.is_some() && a.atom && self.rng.chance(0.5) {
            format!("{}.pow({})", a.text, b.text)
        } else {
            format!("pow({}, {})", a.text, b.text)
        };
        let shape = match (&a.shape, &b.shape) {
            (Some(x), Some(y)) => Some(broadcast(x, y)),
            (x, y) => x.clone().or(y.clone()),
        };
        let code = format!("r::bin(\"pow\", &{}, &{})", a.var, b.var);
        let m = lo.abs().max(hi.abs());
        let err = self.round(add_err(&a.err, lip_a, &b.err, lip_b), m, 8.0, a.fixed);
        let v = self.value(text, true, code, shape, lo, hi, err);
        Val { fixed: a.fixed, ..v }
    }

    fn cast(&mut self, target: &[Dim], depth: usize) -> Val {
        let x = self.gen(target, depth - 1);
        if x.shape.is_none() {
            return x;
        }
        let t = self.rng.below(4);
        let text = self.call("cast", "to_dtype", &x, DTYPES[t]);
        let code = format!("r::cast(&{}, \"{}\")", x.var, DTYPES[t]);
        let mut err = x.err;
        err[2 + t] += x.mag();
        let v = self.value(text, true, code, x.shape.clone(), x.lo, x.hi, err);
        Val {
            fixed: Some(t),
            exact: false,
            cmp: false,
            ..v
        }
    }

    /// A symbol's size as a value: `x / D`, or `sum(x, a) / D` as a hand-written mean.
    fn size_value(&mut self, target: &[Dim], depth: usize) -> Val {
        let syms: Vec<usize> = target
            .iter()
            .filter(|d| d.syms.len() == 1 && d.num == 1 && d.den == 1)
            .map(|d| d.syms[0])
            .collect();
        let x = self.gen(target, depth - 1);
        let Some(&s) = (if syms.is_empty() {
            None
        } else {
            Some(self.rng.pick(&syms))
        }) else {
            return x;
        };
        self.nonzero.push(s);
        self.mentioned[s] = true;
        let max = self.syms[s].max as f64;
        let var = self.var();
        self.reference
            .push(format!("let {var} = r::scalar(sz[{s}] as f64);"));
        let size = Val {
            text: self.syms[s].name.clone(),
            atom: true,
            var,
            shape: None,
            lo: 1.0,
            hi: max,
            exact: true,
            cmp: true,
            err: [0.0; 6],
            fixed: None,
        };
        self.binary_op("div", &x, &size)
    }

    // ---- reductions ----

    fn axis_text(&mut self, axis: usize, rank: usize) -> String {
        if self.rng.chance(0.5) {
            format!("{}", axis as i64 - rank as i64)
        } else {
            axis.to_string()
        }
    }

    /// A tensor (not a scalar) broadcasting to `target`, for ops that need one.
    fn tensor(&mut self, target: &[Dim], depth: usize) -> Val {
        let x = self.gen(target, depth - 1);
        if x.shape.as_ref().is_some_and(|s| !s.is_empty()) {
            x
        } else {
            self.exactly(x, target)
        }
    }

    fn reduce(&mut self, target: &[Dim], depth: usize) -> Val {
        let x = self.tensor(target, depth);
        let shape = x.shape.clone().unwrap();
        // One axis, or (a third of the time, from rank 2) a list of two or more in any order.
        let mut axes = vec![self.rng.below(shape.len())];
        if shape.len() >= 2 && self.rng.chance(0.3) {
            let more = 1 + self.rng.below(shape.len() - 1);
            while axes.len() < 1 + more {
                let a = self.rng.below(shape.len());
                if !axes.contains(&a) {
                    axes.push(a);
                }
            }
        }
        let maxes = self.maxes();
        let n: f64 = axes.iter().map(|&a| shape[a].max(&maxes).max(1) as f64).product();
        let op = *self
            .rng
            .pick(&["sum", "mean", "max", "min", "var", "sum", "mean", "max"]);
        let mut out = shape.clone();
        for &axis in &axes {
            if op != "sum" {
                self.nonzero.extend(shape[axis].syms.iter().copied());
            }
            out[axis] = Dim::lit(1);
        }
        let texts: Vec<String> = axes.iter().map(|&a| self.axis_text(a, shape.len())).collect();
        let a = match &texts[..] {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let text = self.call(op, op, &x, &a);
        let list: Vec<String> = axes.iter().map(usize::to_string).collect();
        let code = format!("r::reduce(\"{op}\", &{}, &[{}])", x.var, list.join(", "));
        let m = x.mag();
        let (lo, hi, err) = match op {
            "sum" => {
                let (lo, hi) = (n * x.lo.min(0.0), n * x.hi.max(0.0));
                let mut e = add_err(&x.err, n, &[0.0; 6], 0.0);
                e[0] += n * n * m;
                (lo, hi, self.round(e, n * m, 1.0, x.fixed))
            }
            "mean" => {
                let mut e = x.err;
                e[0] += n * m + m;
                (x.lo, x.hi, self.round(e, m, 1.0, x.fixed))
            }
            "max" | "min" => (x.lo, x.hi, x.err),
            _ => {
                // var = mean(sqr(x - mean(x))): differences within 2m, squares within 4m^2.
                let d = 2.0 * m;
                let mut e = add_err(&x.err, 4.0 * d, &[0.0; 6], 0.0);
                e[0] += (n + 4.0) * (m + d * d);
                (0.0, d * d, self.round(e, d * d, 1.0, x.fixed))
            }
        };
        if op == "sum" && n * m > MAX_MAG {
            return x;
        }
        let v = self.value(text, true, code, Some(out), lo, hi, err);
        let exact = x.exact && (op == "max" || op == "min");
        Val {
            exact,
            cmp: exact,
            fixed: x.fixed,
            ..v
        }
    }

    fn softmax(&mut self, target: &[Dim], depth: usize) -> Val {
        let x = self.tensor(target, depth);
        let shape = x.shape.clone().unwrap();
        let axis = self.rng.below(shape.len());
        let n = shape[axis].max(&self.maxes()).max(1) as f64;
        self.nonzero.extend(shape[axis].syms.iter().copied());
        let op = *self.rng.pick(&["softmax", "log_softmax", "logsumexp"]);
        let a = self.axis_text(axis, shape.len());
        let text = self.call(op, op, &x, &a);
        let code = format!("r::softmax(\"{op}\", &{}, {axis})", x.var);
        let w = x.hi - x.lo;
        let (out, lo, hi, k, rounding) = match op {
            "softmax" => (shape.clone(), 0.0, 1.0, 2.0, n + 8.0),
            "log_softmax" => (
                shape.clone(),
                -w - n.ln() - 1.0,
                0.0,
                2.0,
                n + 8.0 + 2.0 * (w + n.ln()),
            ),
            _ => {
                let mut s = shape.clone();
                s[axis] = Dim::lit(1);
                (s, x.lo, x.hi + n.ln(), 1.0, n + 8.0 + x.mag() + n.ln())
            }
        };
        let mut e = add_err(&x.err, k, &[0.0; 6], 0.0);
        e[0] += rounding;
        let m = lo.abs().max(hi.abs());
        let err = self.round(e, m, 0.0, x.fixed);
        let v = self.value(text, true, code, Some(out), lo, hi, err);
        Val { fixed: x.fixed, ..v }
    }

    fn maxes(&self) -> Vec<u64> {
        self.syms.iter().map(|s| s.max).collect()
    }

    // ---- matmul and layout ----

    fn matmul(&mut self, target: &[Dim], depth: usize) -> Val {
        let r = target.len();
        let k = if self.rng.chance(0.3) {
            self.lit_dim()
        } else {
            Dim::sym(self.some_sym())
        };
        self.nonzero.extend(k.syms.iter().copied());
        let mut sa = target.to_vec();
        sa[r - 1] = k.clone();
        let mut sb = if self.rng.chance(0.5) {
            target[r - 2..].to_vec()
        } else {
            target.to_vec()
        };
        let rb = sb.len();
        sb[rb - 2] = k.clone();
        let bound = |g: &mut Gen, v: Val| {
            if v.mag() > 2.0 {
                g.unary_named("tanh", v)
            } else {
                v
            }
        };
        let a = self.exact_gen(&sa, depth);
        let a = bound(self, a);
        let a = self.exactly(a, &sa);
        let b = self.exact_gen(&sb, depth);
        let b = bound(self, b);
        let b = self.exactly(b, &sb);
        let n = k.max(&self.maxes()).max(1) as f64;
        let (ma, mb) = (a.mag(), b.mag());
        let text = if a.atom && self.rng.chance(0.6) {
            format!("{}.matmul({})", a.text, b.text)
        } else {
            format!("matmul({}, {})", a.text, b.text)
        };
        let code = format!("r::matmul(&{}, &{})", a.var, b.var);
        let mut e = add_err(&a.err, n * mb, &b.err, n * ma);
        e[0] += n * n * ma * mb;
        let m = n * ma * mb;
        let err = self.round(e, m, 1.0, a.fixed);
        let v = self.value(text, true, code, Some(target.to_vec()), -m, m, err);
        Val { fixed: a.fixed, ..v }
    }

    fn transpose(&mut self, target: &[Dim], depth: usize) -> Val {
        let r = target.len();
        let i = self.rng.below(r);
        let mut j = self.rng.below(r - 1);
        if j >= i {
            j += 1;
        }
        let mut s = target.to_vec();
        s.swap(i, j);
        let x = self.exact_gen(&s, depth);
        let (ti, tj) = (self.axis_text(i, r), self.axis_text(j, r));
        let text = self.call("transpose", "transpose", &x, &format!("{ti}, {tj}"));
        let code = format!("r::transpose(&{}, {i}, {j})", x.var);
        self.view(text, code, target, &x)
    }

    /// `free(x, args)` or `x.method(args)`, drawn: the language's two call syntaxes.
    fn call(&mut self, free: &str, method: &str, x: &Val, args: &str) -> String {
        if self.rng.chance(0.5) {
            format!("{free}({}, {args})", x.text)
        } else {
            format!("{}.{method}({args})", x.operand())
        }
    }

    /// A view of `x` with shape `target` (broadcast, transpose, reshape, narrow): the same
    /// values, so as exact as `x` and of its fixed dtype.
    fn view(&mut self, text: String, code: String, target: &[Dim], x: &Val) -> Val {
        let v = self.value(text, true, code, Some(target.to_vec()), x.lo, x.hi, x.err);
        Val {
            exact: x.exact,
            cmp: x.exact,
            fixed: x.fixed,
            ..v
        }
    }

    fn reshape(&mut self, target: &[Dim], depth: usize) -> Val {
        let r = target.len();
        let mut s = target.to_vec();
        let split = (0..r).find(|&i| target[i].syms.len() >= 2 && target[i].num == 1 && target[i].den == 1);
        match (split, self.rng.below(3)) {
            (Some(i), _) => {
                let d = &target[i];
                let (a, b) = (
                    Dim::sym(d.syms[0]),
                    Dim {
                        syms: d.syms[1..].to_vec(),
                        ..d.clone()
                    },
                );
                s.splice(i..i + 1, [a, b]);
            }
            (None, 0) if r >= 2 => {
                let i = self.rng.below(r - 1);
                match s[i].mul(&s[i + 1]) {
                    Some(m) => {
                        s.splice(i..i + 2, [m]);
                    }
                    None => s.insert(i, Dim::lit(1)),
                }
            }
            (None, 1) if s.iter().any(Dim::is_one) => {
                let i = s.iter().position(Dim::is_one).unwrap();
                s.remove(i);
            }
            _ => {
                let i = self.rng.range(0, r);
                s.insert(i, Dim::lit(1));
            }
        }
        let x = self.exact_gen(&s, depth);
        let dims = self.render_dims(target);
        let text = self.call("reshape", "reshape", &x, &dims);
        let code = format!("r::reshape(&{}, {})", x.var, Self::code_dims(target));
        self.view(text, code, target, &x)
    }

    fn narrow(&mut self, target: &[Dim], depth: usize) -> Val {
        let r = target.len();
        let axis = self.rng.below(r);
        let len = target[axis].clone();
        let (whole, start) = if len.den == 2 {
            let whole = Dim {
                den: 1,
                ..len.clone()
            };
            let start = if self.rng.chance(0.5) {
                Dim::lit(0)
            } else {
                len.clone()
            };
            (whole, start)
        } else if let Some(n) = len.as_lit() {
            if self.rng.chance(0.3) && n > 0 {
                // A literal range of a symbolic dim: checked when called.
                let s = self.new_sym(false);
                let start = self.rng.range(0, 3) as u64;
                self.syms[s].min = start + n;
                (Dim::sym(s), Dim::lit(start))
            } else {
                let extra = self.rng.range(0, 4) as u64;
                (
                    Dim::lit(n + extra),
                    Dim::lit(self.rng.range(0, extra as usize) as u64),
                )
            }
        } else {
            let start = if self.rng.chance(0.5) {
                Dim::lit(0)
            } else {
                len.clone()
            };
            (len.times(2), start)
        };
        let mut s = target.to_vec();
        s[axis] = whole;
        let x = self.exact_gen(&s, depth);
        let names = names(&self.syms);
        let a = self.axis_text(axis, r);
        let (st, ln) = (start.render(&names), len.render(&names));
        self.note_dim(&start);
        let text = self.call("narrow", "narrow", &x, &format!("{a}, {st}, {ln}"));
        let code = format!("r::narrow(&{}, {axis}, {}, {})", x.var, start.code(), len.code());
        self.view(text, code, target, &x)
    }

    fn cat(&mut self, target: &[Dim], depth: usize) -> Val {
        let r = target.len();
        let axis = self.rng.below(r);
        let d = target[axis].clone();
        let parts: Vec<Dim> = match (d.as_lit(), d.half()) {
            (Some(n), _) if n >= 3 && self.rng.chance(0.5) => {
                let a = self.rng.range(1, n as usize - 1) as u64;
                vec![Dim::lit(a), Dim::lit(n - a)]
            }
            (_, Some(h)) => vec![h.clone(), h],
            _ => vec![d.clone()],
        };
        let a = self.axis_text(axis, r);
        let mut vals = Vec::new();
        // Rotate-half now and then: the two halves of one value, swapped, one negated.
        if parts.len() == 2 && parts[0] == parts[1] && self.rng.chance(0.4) {
            let x = self.exact_gen(target, depth);
            let names = names(&self.syms);
            let h = parts[0].render(&names);
            let first = self.value(
                format!("narrow({}, {a}, 0, {h})", x.text),
                true,
                format!("r::narrow(&{}, {axis}, 0, {})", x.var, parts[0].code()),
                Some({
                    let mut s = target.to_vec();
                    s[axis] = parts[0].clone();
                    s
                }),
                x.lo,
                x.hi,
                x.err,
            );
            let second = self.value(
                format!("{}.narrow({a}, {h}, {h})", x.operand()),
                true,
                format!(
                    "r::narrow(&{}, {axis}, {}, {})",
                    x.var,
                    parts[0].code(),
                    parts[0].code()
                ),
                first.shape.clone(),
                x.lo,
                x.hi,
                x.err,
            );
            let first = Val {
                fixed: x.fixed,
                ..first
            };
            let second = Val {
                fixed: x.fixed,
                ..second
            };
            let neg = self.unary_named("neg", second);
            vals.push(neg);
            vals.push(first);
        } else {
            for p in &parts {
                let mut s = target.to_vec();
                s[axis] = p.clone();
                let v = self.exact_gen(&s, depth);
                vals.push(v);
            }
        }
        let text = format!(
            "cat([{}], {a})",
            vals.iter().map(|v| v.text.clone()).collect::<Vec<_>>().join(", ")
        );
        let code = format!(
            "r::cat(&[{}], {axis})",
            vals.iter()
                .map(|v| format!("&{}", v.var))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let lo = vals.iter().map(|v| v.lo).fold(f64::INFINITY, f64::min);
        let hi = vals.iter().map(|v| v.hi).fold(f64::NEG_INFINITY, f64::max);
        let err = std::array::from_fn(|i| vals.iter().map(|v| v.err[i]).fold(0.0, f64::max));
        let exact = vals.iter().all(|v| v.exact);
        let fixed = vals[0].fixed;
        let v = self.value(text, true, code, Some(target.to_vec()), lo, hi, err);
        Val {
            exact,
            cmp: exact,
            fixed,
            ..v
        }
    }
}

fn names(syms: &[Sym]) -> Vec<String> {
    syms.iter().map(|s| s.name.clone()).collect()
}

/// Whether `text` mentions the identifier `name` (not as part of a longer one).
fn mentions(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}
