//! The `/` filter of the Embeddings tab: a small query language over the points of a map
//! (issue 13 item 4). Terms are separated by spaces and all must hold (and):
//!
//! | term | matches |
//! |---|---|
//! | `label=4` (also `label=name`) | points whose true class is 4 |
//! | `pred=9` (also `prediction=9`) | points the model predicts as 9 |
//! | `wrong` / `right` | misclassified / correctly classified points |
//! | `conf<0.6` / `conf>0.9` | probability of the predicted class below / above a threshold |
//! | `test` / `train` | placed test images / embedded training images |
//!
//! A query that does not parse names the bad term and what was expected.

use crate::data::Part;

/// One term of a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Term {
    /// True class is this one.
    Label(u8),
    /// Predicted class is this one.
    Pred(u8),
    /// Misclassified.
    Wrong,
    /// Correctly classified.
    Right,
    /// Confidence (probability of the predicted class) strictly below.
    ConfBelow(f32),
    /// Confidence strictly above.
    ConfAbove(f32),
    /// From this part of the split (placed test images, embedded training images).
    Part(Part),
}

/// What a query looks at in one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointFacts {
    /// True class.
    pub label: u8,
    /// Predicted class.
    pub pred: u8,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// Which part of the split it is from.
    pub part: Part,
}

/// A parsed query: every term must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The text the user typed (trimmed).
    pub text: String,
    /// Its terms.
    pub terms: Vec<Term>,
}

/// A query that does not parse: the term, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter term `{token}` (column {column}): {reason}")]
pub struct QueryError {
    /// The offending term as typed.
    pub token: String,
    /// Its 1-based column in the query.
    pub column: usize,
    /// What was expected.
    pub reason: String,
}

/// The terms, for the help and for error messages.
pub const SYNTAX: &str = "label=C pred=C wrong right conf<P conf>P test train";

impl Query {
    /// Parse `text` against the data's class names (a class is its id or its name).
    ///
    /// # Errors
    /// The first term that is not one of [`SYNTAX`], or whose value is not a class or a
    /// probability.
    pub fn parse(
        text: &str,
        class_names: &[String],
        n_classes: usize,
    ) -> Result<Query, QueryError> {
        let mut terms = Vec::new();
        let mut offset = 0;
        for token in text.split(' ') {
            let column = offset + 1;
            offset += token.len() + 1;
            if token.is_empty() {
                continue;
            }
            let bad = |reason: String| QueryError {
                token: token.to_string(),
                column,
                reason,
            };
            let term = if let Some((field, value)) = token.split_once('=') {
                let class = parse_class(value, class_names, n_classes).map_err(&bad)?;
                match field.to_ascii_lowercase().as_str() {
                    "label" | "l" => Term::Label(class),
                    "pred" | "prediction" | "p" => Term::Pred(class),
                    other => {
                        return Err(bad(format!(
                            "unknown field `{other}`: expected label= or pred="
                        )));
                    }
                }
            } else if let Some((field, value, below)) = token
                .split_once('<')
                .map(|(f, v)| (f, v, true))
                .or_else(|| token.split_once('>').map(|(f, v)| (f, v, false)))
            {
                if !matches!(
                    field.to_ascii_lowercase().as_str(),
                    "conf" | "confidence" | "c"
                ) {
                    return Err(bad(format!(
                        "unknown field `{field}`: expected conf< or conf>"
                    )));
                }
                let p: f32 = value
                    .parse()
                    .ok()
                    .filter(|p: &f32| (0.0..=1.0).contains(p))
                    .ok_or_else(|| bad(format!("`{value}` is not a probability from 0 to 1")))?;
                if below {
                    Term::ConfBelow(p)
                } else {
                    Term::ConfAbove(p)
                }
            } else {
                match token.to_ascii_lowercase().as_str() {
                    "wrong" | "mistake" | "!" => Term::Wrong,
                    "right" | "correct" => Term::Right,
                    "test" => Term::Part(Part::Test),
                    "train" => Term::Part(Part::Train),
                    _ => return Err(bad(format!("expected one of: {SYNTAX}"))),
                }
            };
            terms.push(term);
        }
        Ok(Query {
            text: text.trim().to_string(),
            terms,
        })
    }

    /// Whether a point matches every term (an empty query matches everything).
    pub fn matches(&self, p: &PointFacts) -> bool {
        self.terms.iter().all(|t| match *t {
            Term::Label(c) => p.label == c,
            Term::Pred(c) => p.pred == c,
            Term::Wrong => p.pred != p.label,
            Term::Right => p.pred == p.label,
            Term::ConfBelow(x) => p.confidence < x,
            Term::ConfAbove(x) => p.confidence > x,
            Term::Part(part) => p.part == part,
        })
    }
}

/// A class given by its id or its name (names compared without case).
fn parse_class(value: &str, class_names: &[String], n_classes: usize) -> Result<u8, String> {
    if value.is_empty() {
        return Err("a class is missing after `=`".into());
    }
    if let Ok(c) = value.parse::<usize>() {
        return if c < n_classes {
            u8::try_from(c).map_err(|_| format!("class {c} is out of range"))
        } else {
            Err(format!(
                "class {c} does not exist: expected 0 to {}",
                n_classes.saturating_sub(1)
            ))
        };
    }
    class_names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(value))
        .and_then(|c| u8::try_from(c).ok())
        .ok_or_else(|| format!("`{value}` is not a class id or name"))
}
