//! Errors for data the user brings: each names the file, the line (or record) and the column
//! where they apply, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file a problem sits: a 1-based line (text formats) or record (IDX), and a column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of a text file (the header is line 1).
    pub line: Option<u64>,
    /// 1-based record of a binary file (an image or a label).
    pub record: Option<u64>,
    /// 1-based column, with its header name when there is one.
    pub column: Option<(usize, Option<String>)>,
}

/// A data file that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file the problem is in.
    pub path: PathBuf,
    /// Where in the file, when that applies.
    pub location: Location,
    /// What was wrong and what was expected.
    pub message: String,
}

impl DataError {
    /// A problem with the file as a whole.
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            location: Location::default(),
            message: message.into(),
        }
    }

    /// A problem on one line of a text file.
    pub fn line(path: &Path, line: u64, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            location: Location {
                line: Some(line),
                ..Location::default()
            },
            message: message.into(),
        }
    }

    /// A problem in one cell of a text file.
    pub fn cell(
        path: &Path,
        line: u64,
        column: usize,
        name: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            location: Location {
                line: Some(line),
                record: None,
                column: Some((column, name.map(str::to_owned))),
            },
            message: message.into(),
        }
    }

    /// A problem in one record of a binary file.
    pub fn record(path: &Path, record: u64, message: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            location: Location {
                record: Some(record),
                ..Location::default()
            },
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.location.line {
            write!(f, ":{line}")?;
        }
        if let Some((column, _)) = &self.location.column {
            write!(f, ":{column}")?;
        }
        write!(f, ": ")?;
        if let Some(record) = self.location.record {
            write!(f, "record {record}: ")?;
        }
        if let Some((_, Some(name))) = &self.location.column {
            write!(f, "column `{name}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for DataError {}
