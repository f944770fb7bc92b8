//! Delimited text tables: PMLB's TSV (`1`..`784`, `target`), Kaggle-style CSV (`label`, `pixel0`..),
//! any other table with a header and a `target` or `label` column. Streamed record by record: the
//! text is never held whole in memory, only the growing f32 matrix.

use std::io::BufRead;
use std::path::Path;

use ndarray::Array2;

use super::{DataError, Dataset, MAX_CLASSES, describe_io, square_image_shape};

/// Names of the label column, in order of preference (compared without case).
const LABEL_COLUMNS: [&str; 2] = ["target", "label"];

/// Read a delimited table with a header row. The delimiter is a tab when the header has one,
/// else a comma.
pub(super) fn read_table(reader: &mut dyn BufRead, path: &Path) -> Result<Dataset, DataError> {
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
    let delimiter = if first_line.contains(&b'\t') {
        b'\t'
    } else {
        b','
    };

    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(reader);

    let mut record = csv::ByteRecord::new();
    let header = match csv.read_byte_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => {
            return Err(DataError::file(
                path,
                "the file is empty: expected a header row",
            ));
        }
        Err(e) => return Err(csv_error(path, &e, 1)),
    };
    let names: Vec<String> = header
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_owned())
        .collect();
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
    let label_col = LABEL_COLUMNS
        .iter()
        .find_map(|want| names.iter().position(|n| n.eq_ignore_ascii_case(want)))
        .ok_or_else(|| {
            DataError::line(
                path,
                1,
                format!(
                    "no `target` or `label` column in the header ({} columns): expected one of \
                     them to hold the class of each row",
                    names.len()
                ),
            )
        })?;
    let n_cols = names.len();
    if n_cols < 2 {
        return Err(DataError::line(
            path,
            1,
            "the header has no feature columns besides the label",
        ));
    }
    let n_features = n_cols - 1;

    let mut features: Vec<f32> = Vec::new();
    let mut raw_labels: Vec<Box<str>> = Vec::new();
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
        if record.len() != n_cols {
            return Err(DataError::line(
                path,
                line,
                format!(
                    "a ragged row: {} fields, expected {n_cols} as in the header",
                    record.len()
                ),
            ));
        }
        for (col, cell) in record.iter().enumerate() {
            if col == label_col {
                let label = String::from_utf8_lossy(cell).trim().to_owned();
                if label.is_empty() {
                    return Err(DataError::cell(
                        path,
                        line,
                        col + 1,
                        Some(&names[col]),
                        "an empty label: expected a class",
                    ));
                }
                raw_labels.push(label.into_boxed_str());
                continue;
            }
            let expected = match parse_number(cell) {
                Some(v) if v.is_finite() => {
                    features.push(v);
                    continue;
                }
                Some(_) => "is not allowed: expected a finite number",
                None => "is not a number: expected a number",
            };
            let text = String::from_utf8_lossy(cell);
            let message = format!("`{}` {expected}", text.trim());
            return Err(DataError::cell(
                path,
                line,
                col + 1,
                Some(&names[col]),
                message,
            ));
        }
    }
    if raw_labels.is_empty() {
        return Err(DataError::line(
            path,
            2,
            "no data rows after the header: expected at least one",
        ));
    }
    let (labels, class_names) = classes(&raw_labels, path)?;
    let n_rows = labels.len();
    let features = Array2::from_shape_vec((n_rows, n_features), features)
        .map_err(|e| DataError::file(path, format!("internal shape error: {e}")))?;
    let feature_names = names
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
    })
}

fn is_label_name(name: &str) -> bool {
    LABEL_COLUMNS
        .iter()
        .any(|want| name.eq_ignore_ascii_case(want))
}

/// Class ids for the labels: integers in numeric order, any other text sorted; at most 255 classes.
pub(super) fn classes(raw: &[Box<str>], path: &Path) -> Result<(Vec<u8>, Vec<String>), DataError> {
    let integers: Option<Vec<i64>> = raw.iter().map(|s| s.parse::<i64>().ok()).collect();
    let (ids, names): (Vec<usize>, Vec<String>) = if let Some(values) = integers {
        let mut distinct = values.clone();
        distinct.sort_unstable();
        distinct.dedup();
        check_class_count(distinct.len(), path)?;
        let ids = values
            .iter()
            .map(|v| distinct.binary_search(v).unwrap_or(0))
            .collect();
        (ids, distinct.iter().map(i64::to_string).collect())
    } else {
        let mut distinct: Vec<&str> = raw.iter().map(AsRef::as_ref).collect();
        distinct.sort_unstable();
        distinct.dedup();
        check_class_count(distinct.len(), path)?;
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

fn check_class_count(n: usize, path: &Path) -> Result<(), DataError> {
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
        #[expect(clippy::cast_precision_loss)]
        return Some(v as f32);
    }
    std::str::from_utf8(cell).ok()?.parse::<f32>().ok()
}

fn csv_error(path: &Path, e: &csv::Error, fallback_line: u64) -> DataError {
    let line = Some(e.position().map_or(fallback_line, csv::Position::line));
    let message = match e.kind() {
        csv::ErrorKind::Io(io) => describe_io(io),
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8 in field {}", err.field() + 1),
        _ => e.to_string(),
    };
    match line {
        Some(l) => DataError::line(path, l, message),
        None => DataError::file(path, message),
    }
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
