//! Loading the formats users bring, and a clear error (file, line, column, what was expected;
//! exit code 2, no panic) for every kind of bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use layerscope::data::{self, DataError};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(n: u32, h: u32, w: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * h * w).map(|i| (i % 256) as u8));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

fn load_err(dir: &Path, name: &str, bytes: &[u8]) -> DataError {
    let path = write(dir, name, bytes);
    data::load(&path).expect_err("bad input must not load")
}

#[test]
fn pmlb_tsv_with_target_anywhere_and_gz() {
    let dir = tempfile::tempdir().unwrap();
    let text = "1\t2\ttarget\t3\t4\n0\t255\t7\t3\t4\n1.5\t2\t3\t0\t0\n";
    for (name, bytes) in [
        ("a.tsv", text.as_bytes().to_vec()),
        ("a.tsv.gz", gzip(text.as_bytes())),
    ] {
        let d = data::load(&write(dir.path(), name, &bytes)).unwrap();
        assert_eq!(d.features.shape(), &[2, 4]);
        assert_eq!(d.features.row(0).to_vec(), vec![0.0, 255.0, 3.0, 4.0]);
        assert_eq!(d.feature_names, vec!["1", "2", "3", "4"]);
        assert_eq!(d.class_names, vec!["3", "7"]);
        assert_eq!(d.labels, vec![1, 0]);
        assert_eq!(d.image_shape, Some((2, 2)));
    }
}

#[test]
fn kaggle_csv_and_text_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = data::load(&write(
        dir.path(),
        "k.csv",
        b"label,pixel0,pixel1,pixel2\n1,0,0,9\n0,1,1,1\n",
    ))
    .unwrap();
    assert_eq!(d.labels, vec![1, 0]);
    assert_eq!(d.image_shape, None, "3 features make no square image");
    let d = data::load(&write(
        dir.path(),
        "iris.csv",
        b"sepal,petal,target\n1,2,virginica\n3,4,setosa\n5,6,versicolor\n7,8,setosa\r\n",
    ))
    .unwrap();
    assert_eq!(d.class_names, vec!["setosa", "versicolor", "virginica"]);
    assert_eq!(d.labels, vec![2, 0, 1, 0]);
}

#[test]
fn integer_labels_sort_numerically() {
    let dir = tempfile::tempdir().unwrap();
    let d = data::load(&write(dir.path(), "n.csv", b"a,label\n1,10\n2,9\n3,-1\n")).unwrap();
    assert_eq!(d.class_names, vec!["-1", "9", "10"]);
    assert_eq!(d.labels, vec![2, 1, 0]);
}

#[test]
fn idx_pairs_images_with_labels_plain_or_gz() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "train-images-idx3-ubyte.gz",
        &gzip(&idx_images(3, 4, 4)),
    );
    write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx_labels(&[5, 0, 5]),
    );
    let d = data::load(&dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(d.features.shape(), &[3, 16]);
    assert_eq!(d.image_shape, Some((4, 4)));
    assert_eq!(d.features[[1, 0]], 16.0);
    assert_eq!(d.class_names, vec!["0", "5"]);
    assert_eq!(d.labels, vec![1, 0, 1]);
}

#[test]
fn missing_file() {
    let e = data::load(Path::new("/no/such/file.tsv")).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("/no/such/file.tsv: cannot open"), "{text}");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "empty.tsv", b"");
    assert!(
        e.to_string()
            .contains("empty.tsv: the file is empty: expected a header row"),
        "{e}"
    );
}

#[test]
fn header_only() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "h.csv", b"a,b,target\n");
    assert!(
        e.to_string().contains("no data rows after the header"),
        "{e}"
    );
}

#[test]
fn no_header() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "nohead.tsv", b"0\t1\t2\n3\t4\t5\n");
    assert_eq!(e.location.line, Some(1));
    assert!(e.to_string().contains("nohead.tsv:1: no header row"), "{e}");
}

#[test]
fn no_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "nolabel.csv", b"a,b,c\n1,2,3\n");
    assert!(
        e.to_string()
            .contains("nolabel.csv:1: no `target` or `label` column"),
        "{e}"
    );
}

#[test]
fn ragged_row() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "ragged.csv", b"a,b,target\n1,2,0\n1,2\n3,4,1\n");
    assert_eq!(e.location.line, Some(3));
    assert!(
        e.to_string()
            .contains("ragged.csv:3: a ragged row: 2 fields, expected 3"),
        "{e}"
    );
}

#[test]
fn non_numeric_cell_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(
        dir.path(),
        "text.tsv",
        b"x\ty\ttarget\n1\t2\t0\n1\tabc\t1\n",
    );
    assert_eq!(e.location.line, Some(3));
    assert_eq!(e.location.column, Some((2, Some("y".to_owned()))));
    assert!(
        e.to_string()
            .contains("text.tsv:3:2: column `y`: `abc` is not a number: expected a number"),
        "{e}"
    );
}

#[test]
fn nan_and_infinity() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, col) in [("NaN", 1), ("inf", 2), ("-infinity", 1)] {
        let row = if col == 1 {
            format!("{bad},1,0")
        } else {
            format!("1,{bad},0")
        };
        let e = load_err(
            dir.path(),
            "nan.csv",
            format!("a,b,label\n{row}\n").as_bytes(),
        );
        assert_eq!(e.location.line, Some(2));
        assert_eq!(e.location.column.as_ref().map(|c| c.0), Some(col));
        assert!(e.to_string().contains("expected a finite number"), "{e}");
    }
}

#[test]
fn truncated_gz() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,target\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i},{},{}\n", i * 7 % 1000, i % 10));
    }
    let gz = gzip(text.as_bytes());
    let e = load_err(dir.path(), "cut.csv.gz", &gz[..gz.len() / 2]);
    let s = e.to_string();
    assert!(
        s.starts_with(&format!("{}:", dir.path().join("cut.csv.gz").display())),
        "{s}"
    );
    assert!(
        e.location.line.is_some(),
        "a truncated stream names the line it stopped at: {s}"
    );
    assert!(s.contains("truncated"), "{s}");
}

#[test]
fn idx_wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = idx_images(2, 2, 2);
    bytes[3] = 1; // a labels magic number where images belong
    write(dir.path(), "t10k-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    let e = load_err(dir.path(), "t10k-images-idx3-ubyte", &bytes);
    assert!(
        e.to_string()
            .contains("wrong magic number 0x00000801: expected 0x00000802 or 0x00000803"),
        "{e}"
    );
}

#[test]
fn idx_counts_disagree() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    let e = load_err(dir.path(), "train-images-idx3-ubyte", &idx_images(3, 2, 2));
    assert!(e.to_string().contains("2 labels, but"), "{e}");
    assert!(e.to_string().contains("holds 3 images"), "{e}");
}

#[test]
fn idx_truncated_images_name_the_record() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx_labels(&[1, 2, 3]),
    );
    let bytes = idx_images(3, 2, 2);
    let e = load_err(
        dir.path(),
        "train-images-idx3-ubyte",
        &bytes[..bytes.len() - 2],
    );
    assert_eq!(e.location.record, Some(3));
    assert!(
        e.to_string().contains("record 3: the file ends early"),
        "{e}"
    );
}

#[test]
fn idx_without_labels_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "train-images-idx3-ubyte", &idx_images(1, 2, 2));
    assert!(e.to_string().contains("no labels file beside it"), "{e}");
}

#[test]
fn more_than_255_classes() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,target\n");
    for i in 0..256 {
        text.push_str(&format!("1,c{i}\n"));
    }
    let e = load_err(dir.path(), "many.csv", text.as_bytes());
    assert!(
        e.to_string()
            .contains("256 distinct labels: expected at most 255 classes"),
        "{e}"
    );
    // 255 classes are fine
    let text: String = std::iter::once("a,target\n".to_owned())
        .chain((0..255).map(|i| format!("1,{i}\n")))
        .collect();
    let d = data::load(&write(dir.path(), "ok.csv", text.as_bytes())).unwrap();
    assert_eq!(d.n_classes(), 255);
}

/// The binary: a clear one-line error on stderr, exit code 2, nothing on stdout, no panic.
#[test]
fn binary_exits_2_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.csv", b"a,b,target\n1,x,0\n");
    let out = Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .args(["info", "--data"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.csv:2:2: column `b`: `x` is not a number"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn binary_info_on_board() {
    let out = Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .args(["info", "--sample", "1000", "--test-fraction", "0.25"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rows:      1000"), "{stdout}");
    assert!(stdout.contains("image:     28 x 28"), "{stdout}");
    assert!(
        stdout.contains("split:     750 train, 250 test"),
        "{stdout}"
    );
}
