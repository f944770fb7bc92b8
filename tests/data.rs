//! Loading the formats users bring, and a clear error (file, line, column, what was expected;
//! exit code 2, no panic) for every kind of bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use layerscope::data::{self, DataError, Dataset, LoadOptions, Part, Split};
use ndarray::{Array2, ShapeBuilder};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

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
        assert_eq!(
            d.image_shape, None,
            "4 features are no image: a 2 x 2 square is too small"
        );
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

fn options(path: &Path) -> LoadOptions {
    LoadOptions::new(Some(path.to_path_buf()), None, 0.5, 0)
}

fn load_options_err(options: &LoadOptions) -> String {
    format!(
        "{:#}",
        options.load().expect_err("the options must be refused")
    )
}

/// The split the old `DataArgs::load` made (a sample, then a split of it, each by `select`),
/// written out here so that an in-place split that moved a row would fail.
fn reference_split(d: &Dataset, sample: Option<usize>, test_fraction: f64, seed: u64) -> Split {
    let mut order: Vec<usize> = (0..d.n_rows()).collect();
    let rows = match sample {
        Some(n) => {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            order.truncate(n);
            order
        }
        None => order,
    };
    let m = rows.len();
    let n_test = (test_fraction * m as f64).ceil() as usize;
    let mut inner: Vec<usize> = (0..m).collect();
    inner.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5911));
    let pick = |js: &[usize]| d.select(&js.iter().map(|&j| rows[j]).collect::<Vec<_>>());
    Split {
        train: pick(&inner[n_test..]),
        test: pick(&inner[..n_test]),
    }
}

fn numbered(rows: usize, cols: usize) -> Dataset {
    Dataset {
        features: Array2::from_shape_fn((rows, cols), |(r, c)| (r * cols + c) as f32),
        labels: (0..rows).map(|r| (r % 3) as u8).collect(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
        feature_names: (0..cols).map(|c| format!("f{c}")).collect(),
        image_shape: None,
        source: "numbered".into(),
        rows: (0..rows).collect(),
    }
}

#[test]
fn in_place_split_keeps_the_old_rows_and_order() {
    let d = numbered(1_000, 7);
    for (sample, fraction, seed) in [(None, 0.5, 0), (Some(333), 0.25, 9), (Some(1_000), 0.9, 4)] {
        let want = reference_split(&d, sample, fraction, seed);
        let got = d.clone().into_split(sample, fraction, seed).unwrap();
        assert_eq!(
            got, want,
            "sample {sample:?}, fraction {fraction}, seed {seed}"
        );
    }
    // a matrix that is not in row-major order splits the same
    let mut t = numbered(50, 4);
    t.features = Array2::from_shape_fn((50, 4).f(), |(r, c)| (r * 4 + c) as f32);
    assert!(!t.features.is_standard_layout());
    assert_eq!(
        t.clone().into_split(Some(20), 0.5, 3).unwrap(),
        reference_split(&t, Some(20), 0.5, 3)
    );
}

#[test]
fn load_options_load_the_split() {
    let options = LoadOptions::new(None, Some(1_000), 0.25, 5);
    let split = options.load().unwrap();
    assert_eq!((split.train.n_rows(), split.test.n_rows()), (750, 250));
    assert_eq!(split.n_rows(), 1_000);
    assert_eq!(split.class_counts().iter().sum::<usize>(), 1_000);
    assert_eq!(split.source(), data::ONBOARD_NAME);
    assert_eq!(split.image_shape(), Some((28, 28)));
    assert_eq!(split.n_classes(), 10);
    let full = data::load_onboard().unwrap().into_unit_scale();
    assert_eq!(split, reference_split(&full, Some(1_000), 0.25, 5));
    assert_eq!(LoadOptions::default().test_fraction, 0.5);
}

#[test]
fn load_options_are_checked_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.csv", b"a,target\n1,x\n2,y\n3,x\n4,y\n");
    for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        let e = load_options_err(&LoadOptions::new(Some(path.clone()), None, bad, 0));
        assert!(
            e.contains("expected a number between 0 and 1"),
            "{bad}: {e}"
        );
    }
    let e = load_options_err(&LoadOptions::new(Some(path.clone()), Some(0), 0.5, 0));
    assert!(e.contains("a sample of 0 rows: expected at least 1"), "{e}");
    let e = load_options_err(&LoadOptions::new(Some(path.clone()), Some(5), 0.5, 0));
    assert!(e.contains("a sample of 5 rows: expected 1 to 4"), "{e}");
    // the options are checked before the file is opened
    let e = load_options_err(&LoadOptions::new(
        Some(dir.path().join("none")),
        None,
        2.0,
        0,
    ));
    assert!(e.contains("test fraction 2"), "{e}");
}

#[test]
fn embedded_points_are_the_first_training_rows() {
    let split = numbered(30, 2).into_split(None, 0.5, 1).unwrap();
    assert_eq!(split.embedded(10), 0..10);
    assert_eq!(split.embedded(100), 0..15, "at most every training row");
    assert_eq!(split.part(Part::Train), &split.train);
    assert_eq!(split.part(Part::Test), &split.test);
    assert_eq!((Part::Train.name(), Part::Test.name()), ("train", "test"));
}

/// The binary's on-board digits are the digits of `data/mnist10k.tsv.gz`, byte for byte.
#[test]
fn onboard_digits_equal_the_tsv() {
    let tsv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist10k.tsv.gz");
    let text = data::load(&tsv).unwrap();
    let onboard = data::load_onboard().unwrap();
    assert_eq!(onboard.features, text.features);
    assert_eq!(onboard.labels, text.labels);
    assert_eq!(onboard.class_names, text.class_names);
    assert_eq!(onboard.feature_names, text.feature_names);
    assert_eq!(onboard.image_shape, text.image_shape);
}

// Issue 17 item 10: a line without a break must not grow memory without bound.

#[test]
fn dev_zero_is_not_a_text_table() {
    let e = data::load(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(e.contains("not a text table"), "{e}");
}

#[test]
fn an_endless_data_line_is_refused_by_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"a,b,target\n1,2,0\n".to_vec();
    text.extend(std::iter::repeat_n(b'1', 3 << 20));
    let e = load_err(dir.path(), "long.csv.gz", &gzip(&text));
    assert_eq!(e.location.line, Some(3), "{e}");
    assert!(
        e.to_string()
            .contains("line 3 is longer than 65536 bytes: not a text table?"),
        "{e}"
    );
}

#[test]
fn an_endless_header_is_refused_by_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let text = vec![b'a'; 20 << 20];
    let e = load_err(dir.path(), "head.tsv.gz", &gzip(&text));
    assert_eq!(e.location.line, Some(1), "{e}");
    assert!(e.to_string().contains("line 1 is longer than"), "{e}");
    assert!(e.to_string().contains("not a text table?"), "{e}");
}

#[test]
fn a_wide_table_is_not_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let cols = 3_000;
    let mut text: String = (0..cols).map(|c| format!("feature_{c},")).collect();
    text.push_str("target\n");
    for r in 0..2 {
        let row: String = (0..cols)
            .map(|c| format!("{}.123456789e-3,", c + r))
            .collect();
        text.push_str(&format!("{row}{r}\n"));
    }
    let d = data::load(&write(dir.path(), "wide.csv", text.as_bytes())).unwrap();
    assert_eq!(d.features.shape(), &[2, cols]);
}

// Issue 17 item 12: labels that are not UTF-8.

#[test]
fn labels_that_are_not_utf8_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(
        dir.path(),
        "latin1.csv",
        b"a,target\n1,caf\xe9\n2,caf\xe8\n",
    );
    assert_eq!(e.location.line, Some(2));
    assert_eq!(e.location.column.as_ref().map(|c| c.0), Some(2));
    let s = e.to_string();
    assert!(s.contains("caf\\xe9"), "{s}");
    assert!(s.contains("not UTF-8"), "{s}");
    assert!(s.contains("Windows-1252"), "{s}");
}

// Issue 17 item 13: ambiguous headers.

#[test]
fn two_label_columns_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for header in ["a,target,label", "target,a,Target"] {
        let e = load_err(
            dir.path(),
            "two.csv",
            format!("{header}\n1,2,3\n4,5,6\n").as_bytes(),
        );
        assert_eq!(e.location.line, Some(1));
        let s = e.to_string();
        assert!(s.contains("2 label columns"), "{s}");
        assert!(s.contains("leak the class into the inputs"), "{s}");
    }
}

#[test]
fn duplicated_column_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(
        dir.path(),
        "dup.tsv",
        b"x\ty\tx\ttarget\n1\t2\t3\t0\n1\t2\t3\t1\n",
    );
    assert!(
        e.to_string()
            .contains("the column name `x` appears twice (columns 1 and 3)"),
        "{e}"
    );
}

// Issue 17 item 14 (data): one class is nothing to classify.

#[test]
fn one_class_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "one.csv", b"a,target\n1,x\n2,x\n");
    assert!(
        e.to_string()
            .contains("every row has the label `x`: a classifier needs at least two classes"),
        "{e}"
    );
    write(dir.path(), "train-labels-idx1-ubyte", &idx_labels(&[4, 4]));
    let e = load_err(dir.path(), "train-images-idx3-ubyte", &idx_images(2, 2, 2));
    assert!(e.to_string().contains("every row has the label `4`"), "{e}");
}

#[test]
fn a_training_part_of_one_class_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "two.csv", b"a,target\n1,x\n2,y\n");
    let split = options(&path).load().unwrap();
    let e = split.check_trainable().unwrap_err();
    assert!(e.contains("the training part (1 row of"), "{e}");
    assert!(
        e.contains("holds one class only: a classifier needs at least two"),
        "{e}"
    );
    let digits = LoadOptions::new(None, Some(100), 0.5, 0).load().unwrap();
    assert_eq!(digits.check_trainable(), Ok(()));
}

// Issue 17 item 16 (data): messages that say what is wrong.

#[test]
fn trailing_bytes_after_complete_gzip_are_not_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gzip(b"a,target\n1,0\n2,1\n");
    bytes.extend(b"garbage");
    let e = load_err(dir.path(), "tail.csv.gz", &bytes).to_string();
    assert!(!e.contains("truncated"), "{e}");
    assert!(
        e.contains("the compressed data is complete, but bytes that are not gzip follow it"),
        "{e}"
    );
    // zero padding, which gzip itself ignores, is fine
    let mut padded = gzip(b"a,target\n1,0\n2,1\n");
    padded.extend([0; 100]);
    let d = data::load(&write(dir.path(), "pad.csv.gz", &padded)).unwrap();
    assert_eq!(d.n_rows(), 2);
}

#[test]
fn binary_input_is_not_a_text_table() {
    let dir = tempfile::tempdir().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x1c";
    for (name, bytes) in [
        ("image.png", png.to_vec()),
        ("model.npz", b"PK\x03\x04\x14\0\0\0".to_vec()),
    ] {
        let s = load_err(dir.path(), name, &bytes).to_string();
        assert!(s.contains("binary data"), "{s}");
        assert!(s.contains("not a text table"), "{s}");
        assert!(!s.contains("columns"), "{s}");
    }
}

#[test]
fn idx_with_a_wrong_magic_number_is_reported_as_idx() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train-labels-idx1-ubyte", &idx_labels(&[1, 2]));
    // signed bytes instead of unsigned
    let mut signed = idx_images(2, 2, 2);
    signed[2] = 0x09;
    let e = load_err(dir.path(), "train-images-idx3-ubyte", &signed).to_string();
    assert!(
        e.contains("an IDX file with the wrong magic number 0x00000903 (it holds signed bytes)"),
        "{e}"
    );
    // the magic number written little-endian: recognised by the file's name
    let mut swapped = idx_images(2, 2, 2);
    swapped[..4].copy_from_slice(&[3, 8, 0, 0]);
    let e = load_err(dir.path(), "train-images-idx3-ubyte", &swapped).to_string();
    assert!(
        e.contains("an IDX file with the wrong magic number 0x03080000"),
        "{e}"
    );
}

#[test]
fn one_column_is_singular() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), "one.csv", b"a\nx\n").to_string();
    assert!(e.contains("(1 column)"), "{e}");
    let e = load_err(dir.path(), "r.csv", b"a,b,target\n1,2,0\n7\n").to_string();
    assert!(e.contains("a ragged row: 1 field, expected 3"), "{e}");
}

// Issue 17 item 17 (data): names are data.

#[test]
fn class_names_with_escape_codes_are_escaped_for_display() {
    let dir = tempfile::tempdir().unwrap();
    let d = data::load(&write(
        dir.path(),
        "esc.csv",
        b"a,target\n1,\x1b[2Jevil\n2,ok\n",
    ))
    .unwrap();
    assert_eq!(d.class_names[0], "\u{1b}[2Jevil", "the name itself is kept");
    let shown: Vec<String> = d
        .class_names
        .iter()
        .map(|n| data::display_name(n).into_owned())
        .collect();
    assert_eq!(shown, vec!["\\u{1b}[2Jevil", "ok"]);
    assert!(shown.iter().all(|n| !n.chars().any(char::is_control)));
}

// Issue 11 item 5: an image shape by a rule, and the reason.

#[test]
fn image_shape_by_rule_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let iris = data::load(&write(
        dir.path(),
        "iris.csv",
        b"a,b,c,d,target\n1,2,3,4,x\n5,6,7,8,y\n",
    ))
    .unwrap();
    assert_eq!(iris.image_shape, None);
    let reason = iris.image_shape_reason();
    assert!(
        reason.starts_with("none: the 4 features make a 2 x 2 square, smaller than 8 x 8"),
        "{reason}"
    );

    let mut text: String = (0..64).map(|c| format!("p{c},")).collect();
    text.push_str("target\n");
    for r in 0..2 {
        text.push_str(&format!("{}{r}\n", "0,".repeat(64)));
    }
    let digits = data::load(&write(dir.path(), "d64.csv", text.as_bytes())).unwrap();
    assert_eq!(digits.image_shape, Some((8, 8)));
    assert!(
        digits
            .image_shape_reason()
            .starts_with("8 x 8: the 64 features are a square")
    );

    let wide = numbered(3, 10);
    assert!(
        wide.image_shape_reason()
            .starts_with("none: 10 features are not a square")
    );
    let shaped = wide.clone().with_image_shape(2, 5).unwrap();
    assert_eq!(shaped.image_shape, Some((2, 5)));
    assert!(
        shaped
            .image_shape_reason()
            .contains("the shape given with the data")
    );
    assert!(
        wide.with_image_shape(3, 3)
            .unwrap_err()
            .contains("expected the 10 features")
    );

    // IDX images keep the shape their header gives, however small
    write(dir.path(), "t10k-labels-idx1-ubyte", &idx_labels(&[0, 1]));
    write(dir.path(), "t10k-images-idx3-ubyte", &idx_images(2, 4, 4));
    let idx = data::load(&dir.path().join("t10k-images-idx3-ubyte")).unwrap();
    assert_eq!(idx.image_shape, Some((4, 4)));
}
