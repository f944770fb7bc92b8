//! Delimited text tables: PMLB's TSV (`1`..`784`, `target`), Kaggle-style CSV (`label`, `pixel0`..),
//! any other table with a header and a `target` or `label` column. Streamed record by record: the
//! text is never held whole in memory, only the growing f32 matrix.

use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use ndarray::Array2;

use super::{DataError, Dataset, MAX_CLASSES, describe_io, display_name, square_image_shape};

/// Names of the label column (compared without case).
const LABEL_COLUMNS: [&str; 2] = ["target", "label"];

/// The longest header line read: wide enough for a million column names, short enough that a
/// file with no line breaks fails at once instead of filling memory.
const HEADER_MAX_BYTES: usize = 16 << 20;

/// Bytes allowed per column in a data line (a float written in full takes about 25), and the
/// least any line is allowed.
const ROW_BYTES_PER_COLUMN: usize = 64;
const ROW_MIN_BYTES: usize = 64 << 10;

/// Bytes at the start of the input looked at for zero bytes, the mark of binary data.
const SNIFF_BYTES: usize = 8 << 10;

/// The header: column names and which one holds the class.
struct Header {
    names: Vec<String>,
    label_col: usize,
}

/// The data rows as read: features row-major, one label text per row.
struct Rows {
    features: Vec<f32>,
    labels: Vec<Box<str>>,
}

/// Read a delimited table with a header row. The delimiter is a tab when the header has one,
/// else a comma. Lines are capped in length, so input that is not a table fails early.
pub(super) fn read_table(reader: &mut dyn BufRead, path: &Path) -> Result<Dataset, DataError> {
    let delimiter = sniff(reader, path)?;
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(LineCap::new(reader, HEADER_MAX_BYTES));
    let header = read_header(&mut csv, path)?;
    csv.get_mut().set_limit(row_limit(header.names.len()));
    let rows = read_rows(&mut csv, &header, path)?;
    into_dataset(header, rows, path)
}

/// Check that the input looks like text and pick the delimiter from its first line.
fn sniff(reader: &mut dyn BufRead, path: &Path) -> Result<u8, DataError> {
    let head = reader
        .fill_buf()
        .map_err(|e| DataError::line(path, 1, describe_io(&e)))?;
    if head.is_empty() {
        return Err(DataError::file(
            path,
            "the file is empty: expected a header row and data rows",
        ));
    }
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    // Text has no zero bytes, and a header no control characters but tabs.
    let zero = head[..head.len().min(SNIFF_BYTES)]
        .iter()
        .position(|&b| b == 0);
    let control = first_line
        .iter()
        .position(|&b| (b < 0x20 && b != b'\t' && b != b'\r') || b == 0x7f);
    if let Some(at) = control.or(zero) {
        return Err(DataError::file(
            path,
            format!(
                "binary data (byte 0x{:02x} at offset {at}), not a text table: expected a \
                 header row of column names, or MNIST IDX files",
                head[at]
            ),
        ));
    }
    Ok(if first_line.contains(&b'\t') {
        b'\t'
    } else {
        b','
    })
}

fn row_limit(n_cols: usize) -> usize {
    n_cols
        .saturating_mul(ROW_BYTES_PER_COLUMN)
        .max(ROW_MIN_BYTES)
}

/// The header row: names in UTF-8, one label column, no name twice.
fn read_header<R: Read>(csv: &mut csv::Reader<R>, path: &Path) -> Result<Header, DataError> {
    let mut record = csv::ByteRecord::new();
    match csv.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            return Err(DataError::file(
                path,
                "the file is empty: expected a header row",
            ));
        }
        Err(e) => return Err(csv_error(path, &e, 1)),
    }
    let names = record
        .iter()
        .enumerate()
        .map(|(col, field)| {
            utf8_cell(field, path, 1, col, None, "a column name").map(|name| name.trim().to_owned())
        })
        .collect::<Result<Vec<String>, DataError>>()?;
    if names
        .iter()
        .all(|n| !n.is_empty() && parse_number(n.as_bytes()).is_some())
        && !names.iter().any(|n| is_label_name(n))
    {
        return Err(DataError::line(
            path,
            1,
            "no header row: the first line holds numbers; expected column names, one of them \
             `target` or `label`",
        ));
    }
    let label_col = label_column(&names, path)?;
    check_distinct(&names, path)?;
    if names.len() < 2 {
        return Err(DataError::line(
            path,
            1,
            "the header has no feature columns besides the label",
        ));
    }
    Ok(Header { names, label_col })
}

/// The one column named `target` or `label`: none, or two, is an error (a second one would be
/// read as a feature and leak the class into the inputs).
fn label_column(names: &[String], path: &Path) -> Result<usize, DataError> {
    let found: Vec<usize> = (0..names.len())
        .filter(|&i| is_label_name(&names[i]))
        .collect();
    match found[..] {
        [col] => Ok(col),
        [] => Err(DataError::line(
            path,
            1,
            format!(
                "no `target` or `label` column in the header ({}): expected one of them to hold \
                 the class of each row",
                super::count(names.len(), "column")
            ),
        )),
        _ => {
            let listed: Vec<String> = found
                .iter()
                .map(|&i| format!("`{}` (column {})", display_name(&names[i]), i + 1))
                .collect();
            Err(DataError::line(
                path,
                1,
                format!(
                    "{} label columns, {}: expected one column to hold the class (another would \
                     be read as a feature and leak the class into the inputs); rename or drop \
                     the others",
                    found.len(),
                    listed.join(" and ")
                ),
            ))
        }
    }
}

/// No column name twice: which one a message or a saliency map means must be clear.
fn check_distinct(names: &[String], path: &Path) -> Result<(), DataError> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]).then(a.cmp(&b)));
    let Some(pair) = order.windows(2).find(|w| names[w[0]] == names[w[1]]) else {
        return Ok(());
    };
    let (first, second) = (pair[0], pair[1]);
    Err(DataError::line(
        path,
        1,
        format!(
            "the column name `{}` appears twice (columns {} and {}): expected distinct names",
            display_name(&names[first]),
            first + 1,
            second + 1
        ),
    ))
}

/// Every data row: as many fields as the header, finite numbers, a non-empty UTF-8 label.
fn read_rows<R: Read>(
    csv: &mut csv::Reader<R>,
    header: &Header,
    path: &Path,
) -> Result<Rows, DataError> {
    let mut rows = Rows {
        features: Vec::new(),
        labels: Vec::new(),
    };
    let mut record = csv::ByteRecord::new();
    let mut line: u64 = 1;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, &e, line + 1)),
        }
        line = record.position().map_or(line + 1, csv::Position::line);
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue; // a blank line (a trailing newline at the end of the file, say)
        }
        parse_row(&record, header, line, path, &mut rows)?;
    }
    if rows.labels.is_empty() {
        return Err(DataError::line(
            path,
            2,
            "no data rows after the header: expected at least one",
        ));
    }
    Ok(rows)
}

fn parse_row(
    record: &csv::ByteRecord,
    header: &Header,
    line: u64,
    path: &Path,
    rows: &mut Rows,
) -> Result<(), DataError> {
    let names = &header.names;
    if record.len() != names.len() {
        return Err(DataError::line(
            path,
            line,
            format!(
                "a ragged row: {}, expected {} as in the header",
                super::count(record.len(), "field"),
                names.len()
            ),
        ));
    }
    for (col, cell) in record.iter().enumerate() {
        if col == header.label_col {
            let label = utf8_cell(cell, path, line, col, Some(&names[col]), "a label")?.trim();
            if label.is_empty() {
                return Err(DataError::cell(
                    path,
                    line,
                    col + 1,
                    Some(&names[col]),
                    "an empty label: expected a class",
                ));
            }
            rows.labels.push(label.into());
            continue;
        }
        let expected = match parse_number(cell) {
            Some(v) if v.is_finite() => {
                rows.features.push(v);
                continue;
            }
            Some(_) => "is not allowed: expected a finite number",
            None => "is not a number: expected a number",
        };
        let text = String::from_utf8_lossy(cell);
        let message = format!("`{}` {expected}", display_name(text.trim()));
        return Err(DataError::cell(
            path,
            line,
            col + 1,
            Some(&names[col]),
            message,
        ));
    }
    Ok(())
}

/// A text cell that must be UTF-8 (a name or a label), or an error that shows its bytes and
/// suggests the likely encoding.
fn utf8_cell<'a>(
    cell: &'a [u8],
    path: &Path,
    line: u64,
    col: usize,
    name: Option<&str>,
    what: &str,
) -> Result<&'a str, DataError> {
    std::str::from_utf8(cell).map_err(|_| {
        DataError::cell(
            path,
            line,
            col + 1,
            name,
            format!(
                "{what} that is not UTF-8 (`{}`): expected UTF-8 text; is the file in \
                 Windows-1252 or Latin-1? Convert it, e.g. `iconv -f WINDOWS-1252 -t UTF-8`",
                cell.trim_ascii().escape_ascii()
            ),
        )
    })
}

fn into_dataset(header: Header, rows: Rows, path: &Path) -> Result<Dataset, DataError> {
    let (labels, class_names) = classes(&rows.labels, path)?;
    let n_rows = labels.len();
    let n_features = header.names.len() - 1;
    let features = Array2::from_shape_vec((labels.len(), n_features), rows.features)
        .map_err(|e| DataError::file(path, format!("internal shape error: {e}")))?;
    let label_col = header.label_col;
    let feature_names = header
        .names
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| i != label_col)
        .map(|(_, n)| n)
        .collect();
    Ok(Dataset {
        features,
        labels,
        class_names,
        feature_names,
        image_shape: square_image_shape(n_features),
        source: path.display().to_string(),
        rows: (0..n_rows).collect(),
    })
}

/// Bytes longer than this without a line break.
#[derive(Debug)]
struct LineTooLong {
    limit: usize,
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a line longer than {} bytes", self.limit)
    }
}

impl std::error::Error for LineTooLong {}

/// A reader that fails once a line runs longer than a limit, so that a file with no line breaks
/// (`/dev/zero`, one huge line) cannot grow the parser's record without bound. It checks at the
/// ends of the chunks it hands on: a line that starts and ends inside one chunk is bounded by the
/// chunk anyway.
struct LineCap<R> {
    inner: R,
    limit: usize,
    since_newline: usize,
}

impl<R: Read> LineCap<R> {
    fn new(inner: R, limit: usize) -> Self {
        LineCap {
            inner,
            limit,
            since_newline: 0,
        }
    }

    fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        let chunk = &out[..n];
        match chunk.iter().position(|&b| b == b'\n') {
            Some(first) => {
                let longest = self.since_newline + first;
                let last = chunk.iter().rposition(|&b| b == b'\n').unwrap_or(first);
                self.since_newline = n - last - 1;
                if longest > self.limit {
                    return Err(self.too_long());
                }
            }
            None => self.since_newline += n,
        }
        if self.since_newline > self.limit {
            return Err(self.too_long());
        }
        Ok(n)
    }
}

impl<R> LineCap<R> {
    fn too_long(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            LineTooLong { limit: self.limit },
        )
    }
}

fn is_label_name(name: &str) -> bool {
    LABEL_COLUMNS
        .iter()
        .any(|want| name.eq_ignore_ascii_case(want))
}

/// Class ids for the labels: integers in numeric order, any other text sorted; two to 255 classes.
pub(super) fn classes(raw: &[Box<str>], path: &Path) -> Result<(Vec<u8>, Vec<String>), DataError> {
    let integers: Option<Vec<i64>> = raw.iter().map(|s| s.parse::<i64>().ok()).collect();
    let (ids, names): (Vec<usize>, Vec<String>) = if let Some(values) = integers {
        let mut distinct = values.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let names: Vec<String> = distinct.iter().map(i64::to_string).collect();
        check_class_count(names.len(), names.first().map(String::as_str), path)?;
        let ids = values
            .iter()
            .map(|v| distinct.binary_search(v).unwrap_or(0))
            .collect();
        (ids, names)
    } else {
        let mut distinct: Vec<&str> = raw.iter().map(AsRef::as_ref).collect();
        distinct.sort_unstable();
        distinct.dedup();
        check_class_count(distinct.len(), distinct.first().copied(), path)?;
        let ids = raw
            .iter()
            .map(|v| distinct.binary_search(&v.as_ref()).unwrap_or(0))
            .collect();
        (ids, distinct.iter().map(|s| (*s).to_owned()).collect())
    };
    // At most MAX_CLASSES (255) distinct classes, so every id fits a byte.
    let labels = ids
        .into_iter()
        .map(|i| u8::try_from(i).unwrap_or(u8::MAX))
        .collect();
    Ok((labels, names))
}

/// Two to [`MAX_CLASSES`] classes: one class is nothing to classify, more do not fit a byte.
pub(super) fn check_class_count(
    n: usize,
    first: Option<&str>,
    path: &Path,
) -> Result<(), DataError> {
    if n < 2 {
        return Err(DataError::file(
            path,
            format!(
                "every row has the label `{}`: a classifier needs at least two classes",
                display_name(first.unwrap_or_default())
            ),
        ));
    }
    if n > MAX_CLASSES {
        return Err(DataError::file(
            path,
            format!("{n} distinct labels: expected at most {MAX_CLASSES} classes"),
        ));
    }
    Ok(())
}

/// Parse a numeric cell: a fast path for plain integers (pixel bytes), else Rust's float parser.
fn parse_number(cell: &[u8]) -> Option<f32> {
    let cell = cell.trim_ascii();
    if !cell.is_empty() && cell.len() <= 7 && cell.iter().all(u8::is_ascii_digit) {
        let mut v: u32 = 0;
        for &b in cell {
            v = v * 10 + u32::from(b - b'0');
        }
        // At most seven digits: exact in an f32.
        return Some(v as f32);
    }
    std::str::from_utf8(cell).ok()?.parse::<f32>().ok()
}

fn csv_error(path: &Path, e: &csv::Error, fallback_line: u64) -> DataError {
    let line = e.position().map_or(fallback_line, csv::Position::line);
    let message = match e.kind() {
        csv::ErrorKind::Io(io) => {
            match io.get_ref().and_then(|e| e.downcast_ref::<LineTooLong>()) {
                Some(long) => format!(
                    "line {line} is longer than {} bytes{}: not a text table? (expected one row \
                     per line)",
                    long.limit,
                    if line == 1 { " (the header)" } else { "" }
                ),
                None => describe_io(io),
            }
        }
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8 in field {}", err.field() + 1),
        _ => e.to_string(),
    };
    DataError::line(path, line, message)
}

#[cfg(test)]
mod tests {
    use super::parse_number;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"255"), Some(255.0));
        assert_eq!(parse_number(b" 0.5 "), Some(0.5));
        assert_eq!(parse_number(b"-3e2"), Some(-300.0));
        assert!(parse_number(b"NaN").unwrap().is_nan());
        assert_eq!(parse_number(b"x1"), None);
        assert_eq!(parse_number(b""), None);
    }
}
