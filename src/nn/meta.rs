//! The `meta.json` entry of a model file: the activations, and how the model was trained, with
//! scikit-learn's parameter names (`MLPClassifier.get_params()`'s, and `n_iter_`), so that a run
//! can be repeated and a reader in Python sees familiar names:
//!
//! ```json
//! {"format": "layerscope-model/1", "activation": "tanh", "out_activation": "softmax",
//!  "training": {"hidden_layer_sizes": [512, 256], "activation": "tanh", "solver": "adam",
//!   "learning_rate_init": 0.001, "alpha": 0.0001, "batch_size": 200, "max_iter": 200,
//!   "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8, "tol": 0.0001, "n_iter_no_change": 10,
//!   "shuffle": true, "random_state": 0, "n_iter_": 15, "data": {"source": "...", ...}}}
//! ```
//!
//! Written and read here without a JSON crate: the writer escapes strings, the reader is a
//! small recursive-descent parser of JSON values with the position of any error.

use std::fmt::Write as _;

use super::{Activation, Mlp, TrainParams};

/// The archive entry's name.
pub(crate) const ENTRY: &str = "meta.json";

const FORMAT: &str = "layerscope-model/1";

/// How a saved model was trained: the hyper-parameters (scikit-learn's names in the file), the
/// epochs run, and free-form notes on the data it was trained on (for example the data file
/// and the split), so that the run can be repeated.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRecord {
    /// The hyper-parameters, the seed included.
    pub params: TrainParams,
    /// Epochs trained (scikit-learn's `n_iter_`).
    pub epochs: usize,
    /// (name, value) notes on the data, in order.
    pub data: Vec<(String, String)>,
}

/// What `meta.json` says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Meta {
    pub activation: Activation,
    pub softmax: bool,
    pub training: Option<TrainingRecord>,
}

/// `meta.json` for `mlp`, with its training record if given.
pub(crate) fn to_json(mlp: &Mlp, training: Option<&TrainingRecord>) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"format\": {}, \"activation\": {}, \"out_activation\": {}",
        quote(FORMAT),
        quote(mlp.activation.name()),
        quote(if mlp.softmax { "softmax" } else { "identity" })
    );
    if let Some(t) = training {
        let p = &t.params;
        let hidden: Vec<String> = p.hidden.iter().map(usize::to_string).collect();
        // f32 values print as the shortest decimal that reads back as the same f32.
        let _ = write!(
            s,
            ", \"training\": {{\"hidden_layer_sizes\": [{}], \"activation\": {}, \"solver\": \
             \"adam\", \"learning_rate_init\": {}, \"alpha\": {}, \"batch_size\": {}, \
             \"max_iter\": {}, \"beta_1\": {}, \"beta_2\": {}, \"epsilon\": {:e}, \"tol\": {}, \
             \"n_iter_no_change\": {}, \"shuffle\": {}, \"random_state\": {}, \"n_iter_\": {}",
            hidden.join(", "),
            quote(p.activation.name()),
            p.learning_rate,
            p.alpha,
            p.batch_size,
            p.max_epochs,
            p.beta1,
            p.beta2,
            p.epsilon,
            p.tol,
            p.n_iter_no_change,
            p.shuffle,
            p.seed,
            t.epochs
        );
        let data: Vec<String> = t
            .data
            .iter()
            .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
            .collect();
        let _ = write!(s, ", \"data\": {{{}}}}}", data.join(", "));
    }
    s.push_str("}\n");
    s
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", u32::from(c));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Read `meta.json`. Unknown keys are ignored (a later version may add some); a missing
/// `activation` or `out_activation` means ReLU and softmax; a training record without one of
/// its options takes scikit-learn's default for it.
pub(crate) fn parse(text: &str) -> Result<Meta, String> {
    let value = Parser::new(text).document()?;
    let Value::Object(top) = value else {
        return Err("expected a JSON object".to_owned());
    };
    let activation = match get(&top, "activation") {
        None => Activation::Relu,
        Some(v) => activation_of(v, "activation")?,
    };
    let softmax = match get(&top, "out_activation") {
        None => true,
        Some(Value::String(s)) if s == "softmax" => true,
        Some(Value::String(s)) if s == "identity" => false,
        Some(other) => {
            return Err(format!(
                "out_activation is {}: expected \"softmax\" or \"identity\"",
                other.describe()
            ));
        }
    };
    let training = match get(&top, "training") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => Some(training(t)?),
        Some(other) => {
            return Err(format!(
                "training is {}: expected an object",
                other.describe()
            ));
        }
    };
    Ok(Meta {
        activation,
        softmax,
        training,
    })
}

fn training(t: &[(String, Value)]) -> Result<TrainingRecord, String> {
    let mut p = TrainParams::default();
    let field = |key: &str| get(t, key).map(|v| (v, format!("training.{key}")));
    if let Some((v, name)) = field("hidden_layer_sizes") {
        let Value::Array(items) = v else {
            return Err(format!("{name} is {}: expected an array", v.describe()));
        };
        p.hidden = items
            .iter()
            .map(|i| count(i, &name))
            .collect::<Result<_, _>>()?;
    }
    if let Some((v, name)) = field("activation") {
        p.activation = activation_of(v, &name)?;
    }
    for (key, slot) in [
        ("learning_rate_init", &mut p.learning_rate),
        ("alpha", &mut p.alpha),
        ("beta_1", &mut p.beta1),
        ("beta_2", &mut p.beta2),
        ("epsilon", &mut p.epsilon),
    ] {
        if let Some((v, name)) = field(key) {
            *slot = number(v, &name)? as f32;
        }
    }
    if let Some((v, name)) = field("tol") {
        p.tol = number(v, &name)?;
    }
    for (key, slot) in [
        ("batch_size", &mut p.batch_size),
        ("max_iter", &mut p.max_epochs),
        ("n_iter_no_change", &mut p.n_iter_no_change),
    ] {
        if let Some((v, name)) = field(key) {
            *slot = count(v, &name)?;
        }
    }
    if let Some((v, name)) = field("shuffle") {
        let Value::Bool(b) = v else {
            return Err(format!(
                "{name} is {}: expected true or false",
                v.describe()
            ));
        };
        p.shuffle = *b;
    }
    if let Some((v, name)) = field("random_state") {
        p.seed = count(v, &name)? as u64;
    }
    let epochs = match field("n_iter_") {
        Some((v, name)) => count(v, &name)?,
        None => 0,
    };
    let data = match field("data") {
        None => Vec::new(),
        Some((Value::Object(d), name)) => d
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!(
                    "{name}.{k} is {}: expected a string",
                    other.describe()
                )),
            })
            .collect::<Result<_, _>>()?,
        Some((v, name)) => return Err(format!("{name} is {}: expected an object", v.describe())),
    };
    Ok(TrainingRecord {
        params: p,
        epochs,
        data,
    })
}

fn get<'a>(object: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn activation_of(v: &Value, name: &str) -> Result<Activation, String> {
    match v {
        Value::String(s) => Activation::from_name(s)
            .ok_or_else(|| format!("{name} is \"{s}\": expected identity, logistic, tanh or relu")),
        other => Err(format!("{name} is {}: expected a string", other.describe())),
    }
}

fn number(v: &Value, name: &str) -> Result<f64, String> {
    match v {
        Value::Number(x) if x.is_finite() => Ok(*x),
        other => Err(format!("{name} is {}: expected a number", other.describe())),
    }
}

fn count(v: &Value, name: &str) -> Result<usize, String> {
    match v {
        // Counts are far below 2^53: exact in f64.
        Value::Number(x) if *x >= 0.0 && x.fract() == 0.0 && *x < 9.0e15 => Ok(*x as usize),
        other => Err(format!(
            "{name} is {}: expected a whole number of at least 0",
            other.describe()
        )),
    }
}

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The value as an error message shows it.
    fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(x) => x.to_string(),
            Value::String(s) => quote(s),
            Value::Array(_) => "an array".to_owned(),
            Value::Object(_) => "an object".to_owned(),
        }
    }
}

/// Nesting deeper than this is refused (no stack overflow on hostile input).
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// An error at the current position, as line:column.
    fn error(&self, what: &str) -> String {
        let before = &self.text[..self.at.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}: {what}")
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
    }

    fn document(mut self) -> Result<Value, String> {
        let v = self.value()?;
        self.skip_space();
        if self.at < self.text.len() {
            return Err(self.error("text after the JSON value"));
        }
        Ok(v)
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.at += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        let rest = self.rest();
        match rest.chars().next() {
            None => Err(self.error("the JSON ends early: expected a value")),
            Some('{') => self.nested(Parser::object),
            Some('[') => self.nested(Parser::array),
            Some('"') => self.string().map(Value::String),
            Some('t') if rest.starts_with("true") => {
                self.at += 4;
                Ok(Value::Bool(true))
            }
            Some('f') if rest.starts_with("false") => {
                self.at += 5;
                Ok(Value::Bool(false))
            }
            Some('n') if rest.starts_with("null") => {
                self.at += 4;
                Ok(Value::Null)
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) => Err(self.error(&format!("unexpected '{c}': expected a JSON value"))),
        }
    }

    fn nested(&mut self, f: fn(&mut Parser<'a>) -> Result<Value, String>) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Value, String> {
        self.expect('{')?;
        let mut fields = Vec::new();
        self.skip_space();
        if self.rest().starts_with('}') {
            self.at += 1;
            return Ok(Value::Object(fields));
        }
        loop {
            self.skip_space();
            if !self.rest().starts_with('"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let key = self.string()?;
            self.expect(':')?;
            let v = self.value()?;
            fields.push((key, v));
            self.skip_space();
            match self.rest().chars().next() {
                Some(',') => self.at += 1,
                Some('}') => {
                    self.at += 1;
                    return Ok(Value::Object(fields));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.expect('[')?;
        let mut items = Vec::new();
        self.skip_space();
        if self.rest().starts_with(']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            match self.rest().chars().next() {
                Some(',') => self.at += 1,
                Some(']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1; // the opening quote
        let mut s = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(self.error("the string is not closed: expected '\"'"));
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(s),
                '\\' => {
                    let Some(e) = self.rest().chars().next() else {
                        return Err(self.error("the string is not closed: expected '\"'"));
                    };
                    self.at += e.len_utf8();
                    match e {
                        '"' | '\\' | '/' => s.push(e),
                        'n' => s.push('\n'),
                        'r' => s.push('\r'),
                        't' => s.push('\t'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        'u' => {
                            let hex = self.rest().get(..4).unwrap_or("");
                            let code = u32::from_str_radix(hex, 16)
                                .ok()
                                .filter(|_| hex.len() == 4)
                                .ok_or_else(|| self.error("expected 4 hex digits after \\u"))?;
                            self.at += 4;
                            // Surrogates (characters outside the basic plane) become U+FFFD:
                            // layerscope writes none.
                            s.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        other => {
                            return Err(self.error(&format!("unknown escape '\\{other}'")));
                        }
                    }
                }
                c if u32::from(c) < 0x20 => {
                    return Err(self.error("a control character in a string: expected it escaped"));
                }
                c => s.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(rest.len());
        let text = &rest[..len];
        match text.parse::<f64>() {
            Ok(x) => {
                self.at += len;
                Ok(Value::Number(x))
            }
            Err(_) => Err(self.error(&format!("\"{text}\" is not a number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_training_record_reads_back_as_written() {
        let mut mlp = Mlp::new(&[3, 2, 2], 0);
        mlp.activation = Activation::Tanh;
        mlp.softmax = false;
        let record = TrainingRecord {
            params: TrainParams {
                hidden: vec![2],
                activation: Activation::Tanh,
                learning_rate: 0.003,
                alpha: 1e-5,
                batch_size: 64,
                seed: 7,
                ..TrainParams::default()
            },
            epochs: 12,
            data: vec![
                ("source".to_owned(), "digits \"a\"\\b\n.tsv".to_owned()),
                ("test_fraction".to_owned(), "0.5".to_owned()),
            ],
        };
        let text = to_json(&mlp, Some(&record));
        let meta = parse(&text).expect("its own JSON");
        assert_eq!(meta.activation, Activation::Tanh);
        assert!(!meta.softmax);
        assert_eq!(meta.training, Some(record));
        let plain = parse(&to_json(&Mlp::new(&[3, 2], 0), None)).expect("its own JSON");
        assert_eq!(
            (plain.activation, plain.softmax, plain.training),
            (Activation::Relu, true, None)
        );
    }

    #[test]
    fn malformed_entries_name_the_problem() {
        for (text, expected) in [
            (
                "{\"activation\": \"swish\"}",
                "activation is \"swish\": expected identity",
            ),
            ("{\"activation\": 3}", "activation is 3: expected a string"),
            (
                "{\"out_activation\": \"sigmoid\"}",
                "out_activation is \"sigmoid\"",
            ),
            (
                "{\"training\": {\"batch_size\": -1}}",
                "training.batch_size is -1",
            ),
            (
                "{\"training\": {\"alpha\": \"x\"}}",
                "training.alpha is \"x\": expected a number",
            ),
            (
                "{\"activation\": \"relu\"",
                "line 1, column 22: expected ',' or '}'",
            ),
            ("{\"a\": tru}", "unexpected 't'"),
            ("[1, 2]", "expected a JSON object"),
            ("{} x", "text after the JSON value"),
            (
                "{\"a\":\n  \"b}",
                "line 2, column 6: the string is not closed",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
        let deep = "[".repeat(100);
        assert!(
            parse(&deep)
                .expect_err("deep")
                .contains("nested too deeply")
        );
    }
}
