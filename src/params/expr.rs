//! Expressions over named parameters, as written in a scenario: `"exp(b0 + b_new)"`,
//! `"c_drug + c_med_sick"`, `"rate_to_prob(r, 1/12)"`.
//!
//! An expression is parsed once into a postfix program whose variables are indices into a
//! vector of values; evaluating it uses a fixed-size stack on the machine stack (no
//! allocation). Constant sub-expressions are folded when parsed.
//!
//! Grammar (as in R and most calculators; `^` binds tighter than unary minus, so
//! `-2^2` is -4, and is right-associative):
//! ```text
//! expr  := term (('+' | '-') term)*
//! term  := unary (('*' | '/') unary)*
//! unary := ('-' | '+') unary | power
//! power := atom (('^' | '**') unary)?
//! atom  := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```

use std::fmt;

/// Deepest evaluation stack an expression may need.
pub const MAX_DEPTH: usize = 64;

/// A function of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F1 {
    /// e^x.
    Exp,
    /// Natural logarithm.
    Ln,
    /// Base-10 logarithm.
    Log10,
    /// Square root.
    Sqrt,
    /// Absolute value.
    Abs,
    /// ln(p / (1 − p)).
    Logit,
    /// 1 / (1 + e^−x).
    Expit,
}

/// A function of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F2 {
    /// a^b.
    Pow,
    /// ln(a) / ln(b).
    Log,
    /// 1 − e^(−r t): the probability of an event in time t at rate r.
    RateToProb,
    /// −ln(1 − p) / t: the constant rate giving probability p in time t.
    ProbToRate,
}

/// The functions an expression may call: name, arguments (min, max), and how.
const FUNCTIONS: &[(&str, usize, usize, Call)] = &[
    ("exp", 1, 1, Call::One(F1::Exp)),
    ("ln", 1, 1, Call::One(F1::Ln)),
    ("log", 1, 2, Call::Log),
    ("log10", 1, 1, Call::One(F1::Log10)),
    ("sqrt", 1, 1, Call::One(F1::Sqrt)),
    ("abs", 1, 1, Call::One(F1::Abs)),
    ("logit", 1, 1, Call::One(F1::Logit)),
    ("expit", 1, 1, Call::One(F1::Expit)),
    ("pow", 2, 2, Call::Two(F2::Pow)),
    ("rate_to_prob", 1, 2, Call::Two(F2::RateToProb)),
    ("prob_to_rate", 1, 2, Call::Two(F2::ProbToRate)),
    ("min", 1, 255, Call::Min),
    ("max", 1, 255, Call::Max),
];

#[derive(Clone, Copy, Debug)]
enum Call {
    One(F1),
    Two(F2),
    /// ln with an optional base.
    Log,
    Min,
    Max,
}

/// The names of the functions expressions may call (for messages).
pub fn function_names() -> Vec<&'static str> {
    FUNCTIONS.iter().map(|f| f.0).collect()
}

/// One instruction of the postfix program.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Num(f64),
    Var(u32),
    Neg,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    One(F1),
    Two(F2),
    Min(u8),
    Max(u8),
}

/// A compiled expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    ops: Vec<Op>,
    depth: usize,
}

/// Why an expression could not be compiled: what, and where (byte offset in its text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    /// Byte offset in the expression text.
    pub position: usize,
    /// What is wrong.
    pub message: String,
    /// For an unknown name: the name (so that callers can suggest known ones).
    pub unknown: Option<String>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.position + 1)
    }
}

impl std::error::Error for ExprError {}

impl F1 {
    fn apply(self, x: f64) -> f64 {
        match self {
            F1::Exp => x.exp(),
            F1::Ln => x.ln(),
            F1::Log10 => x.log10(),
            F1::Sqrt => x.sqrt(),
            F1::Abs => x.abs(),
            F1::Logit => (x / (1.0 - x)).ln(),
            F1::Expit => {
                // Stable in both tails.
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
        }
    }
}

impl F2 {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            F2::Pow => a.powf(b),
            F2::Log => a.ln() / b.ln(),
            F2::RateToProb => -(-a * b).exp_m1(),
            F2::ProbToRate => -(-a).ln_1p() / b,
        }
    }
}

impl Expr {
    /// Parses and compiles `text`; `variable` gives the index of a name (None: unknown).
    pub fn compile(text: &str, variable: &dyn Fn(&str) -> Option<u32>) -> Result<Expr, ExprError> {
        let mut p = Parser {
            text,
            at: 0,
            ops: Vec::new(),
            variable,
            nesting: 0,
        };
        p.skip_space();
        if p.at == text.len() {
            return Err(p.error(0, "the expression is empty".into()));
        }
        p.expr()?;
        p.skip_space();
        if p.at < text.len() {
            return Err(p.error(
                p.at,
                format!(
                    "unexpected `{}`",
                    &text[p.at..].chars().next().unwrap_or(' ')
                ),
            ));
        }
        let depth = stack_depth(&p.ops);
        if depth > MAX_DEPTH {
            return Err(p.error(
                0,
                format!("the expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(Expr { ops: p.ops, depth })
    }

    /// The value with variables `vars` (indexed as at compile time).
    pub fn eval(&self, vars: &[f64]) -> f64 {
        let mut stack = [0.0f64; MAX_DEPTH];
        let mut n = 0usize;
        for op in &self.ops {
            match *op {
                Op::Num(x) => {
                    stack[n] = x;
                    n += 1;
                }
                Op::Var(i) => {
                    stack[n] = vars[i as usize];
                    n += 1;
                }
                Op::Neg => stack[n - 1] = -stack[n - 1],
                Op::One(f) => stack[n - 1] = f.apply(stack[n - 1]),
                Op::Min(k) | Op::Max(k) => {
                    let k = k as usize;
                    let args = &stack[n - k..n];
                    let v = if matches!(op, Op::Min(_)) {
                        args.iter().copied().fold(f64::INFINITY, min_nan)
                    } else {
                        args.iter().copied().fold(f64::NEG_INFINITY, max_nan)
                    };
                    n -= k - 1;
                    stack[n - 1] = v;
                }
                binary => {
                    let (a, b) = (stack[n - 2], stack[n - 1]);
                    n -= 1;
                    stack[n - 1] = match binary {
                        Op::Add => a + b,
                        Op::Sub => a - b,
                        Op::Mul => a * b,
                        Op::Div => a / b,
                        Op::Pow => a.powf(b),
                        Op::Two(f) => f.apply(a, b),
                        _ => unreachable!("every other op is handled above"),
                    };
                }
            }
        }
        debug_assert_eq!(n, 1);
        stack[0]
    }

    /// The indices of the variables it reads, each once, in order of first use.
    pub fn variables(&self) -> Vec<u32> {
        let mut v = Vec::new();
        for op in &self.ops {
            if let Op::Var(i) = op {
                if !v.contains(i) {
                    v.push(*i);
                }
            }
        }
        v
    }

    /// The value, if it reads no variable.
    pub fn constant(&self) -> Option<f64> {
        match self.ops.as_slice() {
            [Op::Num(x)] => Some(*x),
            _ => None,
        }
    }

    /// Stack slots needed to evaluate it.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// min and max that propagate NaN (a NaN argument is an error upstream, not a value to skip).
fn min_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn max_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Stack depth of a postfix program.
fn stack_depth(ops: &[Op]) -> usize {
    let (mut n, mut max) = (0usize, 0usize);
    for op in ops {
        match op {
            Op::Num(_) | Op::Var(_) => n += 1,
            Op::Neg | Op::One(_) => {}
            Op::Min(k) | Op::Max(k) => n -= *k as usize - 1,
            _ => n -= 1,
        }
        max = max.max(n);
    }
    max
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    ops: Vec<Op>,
    variable: &'a dyn Fn(&str) -> Option<u32>,
    /// Parentheses and calls open now.
    nesting: usize,
}

impl Parser<'_> {
    fn error(&self, position: usize, message: String) -> ExprError {
        ExprError {
            position,
            message,
            unknown: None,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += self.peek().map_or(0, char::len_utf8);
        }
    }

    /// Consumes `token` (after spaces) if it is next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<(), ExprError> {
        self.term()?;
        loop {
            if self.eat("+") {
                self.term()?;
                self.push_binary(Op::Add);
            } else if self.eat("-") {
                self.term()?;
                self.push_binary(Op::Sub);
            } else {
                return Ok(());
            }
        }
    }

    fn term(&mut self) -> Result<(), ExprError> {
        self.unary()?;
        loop {
            self.skip_space();
            if self.text[self.at..].starts_with("**") {
                // `**` is a power, handled below.
                return Ok(());
            }
            if self.eat("*") {
                self.unary()?;
                self.push_binary(Op::Mul);
            } else if self.eat("/") {
                self.unary()?;
                self.push_binary(Op::Div);
            } else {
                return Ok(());
            }
        }
    }

    fn unary(&mut self) -> Result<(), ExprError> {
        // Signs in a loop, not by recursion: `------x` cannot exhaust the stack.
        let mut negative = false;
        loop {
            if self.eat("-") {
                negative = !negative;
            } else if !self.eat("+") {
                break;
            }
        }
        self.power()?;
        if negative {
            self.push_unary(Op::Neg);
        }
        Ok(())
    }

    fn power(&mut self) -> Result<(), ExprError> {
        self.atom()?;
        if self.eat("^") || self.eat("**") {
            self.nesting += 1;
            self.unary()?;
            self.nesting -= 1;
            self.push_binary(Op::Pow);
        }
        Ok(())
    }

    fn atom(&mut self) -> Result<(), ExprError> {
        self.skip_space();
        let start = self.at;
        if self.nesting >= MAX_DEPTH {
            return Err(self.error(
                start,
                format!("the expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        match self.peek() {
            None => Err(self.error(
                start,
                "the expression ends where a value was expected".into(),
            )),
            Some('(') => {
                self.at += 1;
                self.nesting += 1;
                self.expr()?;
                self.nesting -= 1;
                if !self.eat(")") {
                    return Err(self.error(self.at, "missing `)`".into()));
                }
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(start),
            Some(c) if c.is_alphabetic() || c == '_' => self.name(start),
            Some(c) => Err(self.error(
                start,
                format!("unexpected `{c}` where a value was expected"),
            )),
        }
    }

    fn number(&mut self, start: usize) -> Result<(), ExprError> {
        let bytes = self.text.as_bytes();
        let mut end = start;
        let digits = |end: &mut usize| {
            while *end < bytes.len() && bytes[*end].is_ascii_digit() {
                *end += 1;
            }
        };
        digits(&mut end);
        if end < bytes.len() && bytes[end] == b'.' {
            end += 1;
            digits(&mut end);
        }
        if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
            let mut e = end + 1;
            if e < bytes.len() && (bytes[e] == b'+' || bytes[e] == b'-') {
                e += 1;
            }
            if e < bytes.len() && bytes[e].is_ascii_digit() {
                end = e;
                digits(&mut end);
            }
        }
        let literal = &self.text[start..end];
        let x: f64 = literal
            .parse()
            .map_err(|_| self.error(start, format!("`{literal}` is not a number")))?;
        self.at = end;
        self.ops.push(Op::Num(x));
        Ok(())
    }

    fn name(&mut self, start: usize) -> Result<(), ExprError> {
        let rest = &self.text[start..];
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        let name = &rest[..len];
        self.at = start + len;
        if self.eat("(") {
            return self.call(name, start);
        }
        match (self.variable)(name) {
            Some(i) => {
                self.ops.push(Op::Var(i));
                Ok(())
            }
            None if FUNCTIONS.iter().any(|f| f.0 == name) => Err(self.error(
                start,
                format!("`{name}` is a function: call it with its arguments, e.g. `{name}(x)`"),
            )),
            None => Err(ExprError {
                position: start,
                message: format!("unknown parameter `{name}`"),
                unknown: Some(name.to_string()),
            }),
        }
    }

    fn call(&mut self, name: &str, start: usize) -> Result<(), ExprError> {
        let Some(&(_, min, max, call)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
            return Err(ExprError {
                position: start,
                message: format!(
                    "unknown function `{name}`; the functions are: {}",
                    function_names().join(", ")
                ),
                unknown: None,
            });
        };
        let mut args = 0usize;
        self.nesting += 1;
        if !self.eat(")") {
            loop {
                self.expr()?;
                args += 1;
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.error(self.at, format!("missing `)` closing `{name}(`")));
                }
            }
        }
        self.nesting -= 1;
        if args < min || args > max {
            let wanted = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, 255) => format!("at least {a}"),
                (a, b) => format!("{a} or {b}"),
            };
            return Err(self.error(
                start,
                format!("`{name}` takes {wanted} argument(s), not {args}"),
            ));
        }
        match call {
            Call::One(f) => self.push_unary(Op::One(f)),
            Call::Two(f) => {
                if args == 1 {
                    // rate_to_prob(r) and prob_to_rate(p): over one year.
                    self.ops.push(Op::Num(1.0));
                }
                self.push_binary(Op::Two(f));
            }
            Call::Log if args == 1 => self.push_unary(Op::One(F1::Ln)),
            Call::Log => self.push_binary(Op::Two(F2::Log)),
            Call::Min => self.push_fold(Op::Min(args as u8), args),
            Call::Max => self.push_fold(Op::Max(args as u8), args),
        }
        Ok(())
    }

    /// Pushes a unary op, folding a constant operand.
    fn push_unary(&mut self, op: Op) {
        if let Some(Op::Num(x)) = self.ops.last().copied() {
            self.ops.pop();
            self.ops.push(Op::Num(
                Expr {
                    ops: vec![Op::Num(x), op],
                    depth: 1,
                }
                .eval(&[]),
            ));
        } else {
            self.ops.push(op);
        }
    }

    /// Pushes a binary op, folding two constant operands.
    fn push_binary(&mut self, op: Op) {
        let n = self.ops.len();
        if n >= 2 {
            if let (Op::Num(a), Op::Num(b)) = (self.ops[n - 2], self.ops[n - 1]) {
                self.ops.truncate(n - 2);
                self.ops.push(Op::Num(
                    Expr {
                        ops: vec![Op::Num(a), Op::Num(b), op],
                        depth: 2,
                    }
                    .eval(&[]),
                ));
                return;
            }
        }
        self.ops.push(op);
    }

    /// Pushes min or max of the last `k` values, folding constant arguments.
    fn push_fold(&mut self, op: Op, k: usize) {
        let n = self.ops.len();
        let tail = &self.ops[n - k..];
        if tail.iter().all(|o| matches!(o, Op::Num(_))) {
            let mut ops: Vec<Op> = tail.to_vec();
            ops.push(op);
            let v = Expr { ops, depth: k }.eval(&[]);
            self.ops.truncate(n - k);
            self.ops.push(Op::Num(v));
        } else {
            self.ops.push(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 4] = ["a", "b0", "b_new", "p"];

    fn vars(name: &str) -> Option<u32> {
        NAMES.iter().position(|n| *n == name).map(|i| i as u32)
    }

    fn eval(text: &str, values: &[f64]) -> f64 {
        Expr::compile(text, &vars).unwrap().eval(values)
    }

    #[test]
    fn arithmetic_precedence_and_associativity() {
        let v = [2.0, 3.0, 0.5, 0.25];
        assert_eq!(eval("1 + 2 * 3", &v), 7.0);
        assert_eq!(eval("(1 + 2) * 3", &v), 9.0);
        assert_eq!(eval("-2^2", &v), -4.0);
        assert_eq!(eval("2^3^2", &v), 512.0);
        assert_eq!(eval("2**-1", &v), 0.5);
        assert_eq!(eval("10 - 4 - 3", &v), 3.0);
        assert_eq!(eval("12 / 3 / 2", &v), 2.0);
        assert_eq!(eval("a * b0 - b_new", &v), 5.5);
        assert_eq!(eval("-a", &v), -2.0);
        assert_eq!(eval("+a", &v), 2.0);
        assert_eq!(eval(" 1.5e3 + .5 + 2E-1 ", &v), 1500.7);
    }

    #[test]
    fn functions_against_hand_values() {
        let v = [2.0, 3.0, -0.3, 0.25];
        assert_eq!(eval("exp(b0 + b_new)", &v), (2.7f64).exp());
        assert_eq!(eval("ln(a)", &v), 2f64.ln());
        assert_eq!(eval("log(a)", &v), 2f64.ln());
        assert!((eval("log(8, 2)", &v) - 3.0).abs() < 1e-15);
        assert_eq!(eval("log10(1000)", &v), 3.0);
        assert_eq!(eval("sqrt(16) + abs(b_new)", &v), 4.3);
        assert_eq!(eval("pow(a, b0)", &v), 8.0);
        assert_eq!(eval("min(a, b0, 1.5)", &v), 1.5);
        assert_eq!(eval("max(a, b0, 1.5)", &v), 3.0);
        assert!((eval("logit(p)", &v) - (1.0f64 / 3.0).ln()).abs() < 1e-15);
        assert!((eval("expit(logit(p))", &v) - 0.25).abs() < 1e-15);
        assert_eq!(eval("expit(-800)", &v), 0.0);
        assert_eq!(eval("expit(800)", &v), 1.0);
        // A rate of ln 2 per year halves survival: probability 1/2 over a year.
        assert!((eval("rate_to_prob(ln(2))", &v) - 0.5).abs() < 1e-15);
        assert!(
            (eval("rate_to_prob(ln(2), 1/12)", &v) - (1.0 - 0.5f64.powf(1.0 / 12.0))).abs() < 1e-15
        );
        assert!((eval("prob_to_rate(0.5)", &v) - 2f64.ln()).abs() < 1e-15);
        assert!((eval("prob_to_rate(p, 2)", &v) - -(0.75f64.ln()) / 2.0).abs() < 1e-15);
        assert!((eval("prob_to_rate(rate_to_prob(0.1, 3), 3)", &v) - 0.1).abs() < 1e-15);
    }

    #[test]
    fn constants_fold_and_variables_are_listed() {
        let e = Expr::compile("1/12 * 12", &vars).unwrap();
        assert_eq!(e.constant(), Some(1.0));
        let e = Expr::compile("b0 * exp(a) + b0 - min(p, 1)", &vars).unwrap();
        assert_eq!(e.constant(), None);
        assert_eq!(e.variables(), vec![1, 0, 3]);
        assert!(e.depth() <= 4);
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = |t: &str| Expr::compile(t, &vars).unwrap_err();
        let e = err("b0 + b_nwe");
        assert_eq!(e.position, 5);
        assert_eq!(e.unknown.as_deref(), Some("b_nwe"));
        assert!(e.message.contains("unknown parameter `b_nwe`"));
        let e = err("exp(a");
        assert!(e.message.contains("missing `)`"), "{e}");
        let e = err("2 * ");
        assert!(e.message.contains("value was expected"), "{e}");
        assert_eq!(err("a b").position, 2);
        assert!(err("foo(1)").message.contains("unknown function `foo`"));
        assert!(err("pow(1)").message.contains("takes 2 argument(s), not 1"));
        assert!(err("exp").message.contains("is a function"));
        assert!(err("").message.contains("empty"));
        assert!(err("1 + # 2").message.contains("unexpected `#`"));
        let deep = format!("{}a{}", "(a+".repeat(80), ")".repeat(80));
        assert!(err(&deep).message.contains("nested too deeply"));
        // Hostile nesting is refused, not a stack overflow.
        let hostile = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(err(&hostile).message.contains("nested too deeply"));
        assert_eq!(eval(&format!("{}1", "-".repeat(100_001)), &[0.0; 4]), -1.0);
        let powers = format!("{}2", "2^".repeat(100_000));
        assert!(err(&powers).message.contains("nested too deeply"));
    }

    #[test]
    fn nan_propagates_through_min_and_max() {
        assert!(eval("min(ln(-1), 1)", &[0.0; 4]).is_nan());
        assert!(eval("max(1, a)", &[f64::NAN, 0.0, 0.0, 0.0]).is_nan());
    }
}
