//! The headless subcommands end to end on the on-board data (small sizes): shapes, columns, value
//! ranges, the same seed giving the same file, and clear errors with exit code 2.

use std::path::Path;
use std::process::{Command, Output};

/// Small settings shared by every run: 600 digits, a small network, a few epochs.
const SMALL: [&str; 6] = ["--sample", "600", "--hidden", "32,16", "--epochs", "4"];

fn layerscope(args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_layerscope"));
    cmd.args(args);
    for p in paths {
        cmd.arg(p);
    }
    cmd.output().expect("run layerscope")
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    stderr
}

fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn train(dir: &Path, name: &str, seed: &str) -> std::path::PathBuf {
    let model = dir.join(format!("{name}.npz"));
    let metrics = dir.join(format!("{name}.csv"));
    let mut args = vec!["train", "--seed", seed];
    args.extend(SMALL);
    args.extend(["--metrics"]);
    let out = layerscope(&args, &[&metrics, Path::new("--save"), &model]);
    let stderr = ok(&out);
    assert_eq!(
        stderr.matches("epoch ").count(),
        4,
        "one line per epoch: {stderr}"
    );
    let (header, rows) = csv_rows(&metrics);
    assert_eq!(
        header,
        [
            "epoch",
            "train_loss",
            "train_accuracy",
            "test_loss",
            "test_accuracy",
            "seconds",
            "samples_per_sec"
        ]
    );
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (i + 1).to_string());
        let acc: f64 = row[4].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    model
}

#[test]
fn train_embed_explain_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = train(d, "a", "5");
    let b = train(d, "b", "5");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same seed, same model file"
    );
    let c = train(d, "c", "6");
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());

    // embed: 3 layers x 100 points, tidy long table
    let embed = |out: &Path| {
        let args = [
            "embed", "--sample", "600", "--n", "100", "--seed", "5", "--model",
        ];
        ok(&layerscope(&args, &[&a, Path::new("--out"), out]))
    };
    let e1 = d.join("e1.csv");
    let stderr = embed(&e1);
    for k in 2..=4 {
        assert!(stderr.contains(&format!("layer {k} (")), "{stderr}");
    }
    assert!(stderr.contains("trust"), "{stderr}");
    let (header, rows) = csv_rows(&e1);
    assert_eq!(header, ["index", "layer", "x", "y", "label", "prediction"]);
    assert_eq!(rows.len(), 300);
    for row in &rows {
        let x: f32 = row[2].parse().unwrap();
        let y: f32 = row[3].parse().unwrap();
        assert!(x.is_finite() && y.is_finite());
        assert!(row[4].parse::<u8>().unwrap() < 10 && row[5].parse::<u8>().unwrap() < 10);
    }
    let e2 = d.join("e2.csv");
    embed(&e2);
    assert_eq!(
        std::fs::read(&e1).unwrap(),
        std::fs::read(&e2).unwrap(),
        "same seed, same embedding"
    );

    // explain: one row per pixel
    for method in [
        "permutation",
        "notebook",
        "gradient-x-input",
        "integrated-gradients",
    ] {
        let out = d.join(format!("s-{method}.csv"));
        let args = [
            "explain",
            "--sample",
            "600",
            "--index",
            "3",
            "--samples",
            "8",
            "--method",
            method,
            "--model",
        ];
        let stderr = ok(&layerscope(&args, &[&a, Path::new("--out"), &out]));
        assert!(stderr.contains("completeness gap"), "{stderr}");
        let (header, rows) = csv_rows(&out);
        assert_eq!(header, ["row", "col", "value", "stderr"]);
        assert_eq!(rows.len(), 784);
        assert_eq!(rows[29][..2], ["1".to_owned(), "1".to_owned()]);
        assert!(
            rows.iter()
                .all(|r| r[2].parse::<f32>().unwrap().is_finite())
        );
        if method == "permutation" {
            let again = d.join("again.csv");
            ok(&layerscope(&args, &[&a, Path::new("--out"), &again]));
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
        }
    }
}

#[test]
fn errors_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("x.csv");
    let stderr = failed(&layerscope(
        &["explain", "--sample", "600", "--method", "magic", "--out"],
        &[&out],
    ));
    assert!(
        stderr.contains("--method magic: expected notebook, permutation"),
        "{stderr}"
    );
    let stderr = failed(&layerscope(
        &["train", "--save"],
        &[&d.join("no/such/dir/m.npz")],
    ));
    assert!(stderr.contains("does not exist"), "{stderr}");
    let stderr = failed(&layerscope(
        &["embed", "--model"],
        &[&d.join("missing.npz"), Path::new("--out"), &out],
    ));
    assert!(stderr.contains("missing.npz"), "{stderr}");
    assert!(!out.exists(), "nothing written");
    // a model whose input width does not fit the data
    let small = d.join("small.csv");
    std::fs::write(
        &small,
        "a,b,c,d,target\n1,2,3,4,0\n4,3,2,1,1\n1,1,1,1,0\n2,2,2,2,1\n",
    )
    .unwrap();
    let model = train(d, "m", "1");
    let stderr = failed(&layerscope(
        &["explain", "--data"],
        &[
            &small,
            Path::new("--model"),
            &model,
            Path::new("--out"),
            &out,
        ],
    ));
    assert!(stderr.contains("the model takes 784 inputs"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(d)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count(),
        0
    );
}

#[test]
fn snapshot_prints_one_frame() {
    let small = [
        "--sample", "600", "--hidden", "32,16", "--epochs", "2", "--n", "100",
    ];
    for (tab, ansi) in [
        ("training", false),
        ("embeddings", true),
        ("saliency", false),
    ] {
        let mut args = vec!["snapshot", "--tab", tab, "--width", "80", "--height", "24"];
        args.extend(small);
        if ansi {
            args.push("--ansi");
        }
        let out = layerscope(&args, &[]);
        ok(&out);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 24, "{text}");
        if ansi {
            assert!(
                text.contains("\x1b[") && text.contains(";38;2;"),
                "24-bit colour codes"
            );
        } else {
            assert!(!text.contains('\x1b'));
            assert!(text.lines().all(|l| l.chars().count() == 80), "{text}");
        }
    }
    let stderr = failed(&layerscope(&["snapshot", "--tab", "nope"], &[]));
    assert!(
        stderr.contains("--tab nope: expected training, embeddings or saliency"),
        "{stderr}"
    );
}

#[test]
fn no_subcommand_without_a_terminal_points_to_the_subcommands() {
    let out = layerscope(&[], &[]);
    let stderr = failed(&out);
    assert!(stderr.contains("snapshot"), "{stderr}");
    assert!(out.stdout.is_empty());
}
