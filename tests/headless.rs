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

/// The split the binary uses for `--sample 600 --seed <seed>`.
fn small_split(seed: u64) -> layerscope::data::Split {
    layerscope::data::LoadOptions {
        path: None,
        sample: Some(600),
        test_fraction: 0.5,
        seed,
    }
    .load()
    .unwrap()
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
    assert_eq!(
        stderr.matches("test acc ").count(),
        4,
        "with --metrics, every epoch is tested: {stderr}"
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
            // Issue 12 (branch film): the class separation of every layer per epoch.
            "separation_l1",
            "separation_l2",
            "separation_l3",
            "separation_l4",
        ]
    );
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (i + 1).to_string());
    }
    // The last epoch's test accuracy is the saved model's, computed here independently.
    let split = small_split(seed.parse().unwrap());
    let mlp = layerscope::nn::load_model(&model, 784, 10).unwrap();
    let predicted = mlp.predict(split.test.features.view());
    let right = predicted
        .iter()
        .zip(&split.test.labels)
        .filter(|(p, l)| p == l)
        .count();
    let accuracy = right as f64 / split.test.n_rows() as f64;
    let last: f64 = rows[3][4].parse().unwrap();
    // At most one row apart: the trainer's forward pass may round differently at a tie.
    assert!(
        (last - accuracy).abs() <= 1.0 / 300.0 + 1e-12,
        "{last} vs {accuracy}"
    );
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
    // Issue 13 (branch errcore): `row` and `split` join the table back to the data.
    assert_eq!(
        header,
        [
            "index",
            "layer",
            "x",
            "y",
            "label",
            "prediction",
            "row",
            "split"
        ]
    );
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

// nn3 (issue 15): the test split per epoch only for --metrics.
/// Without --metrics, `train` evaluates the test split only after the last epoch: the epoch lines
/// carry the training figures alone, the closing line the saved model's test accuracy, and the
/// model is the one a run with --metrics (test figures every epoch) saves.
#[test]
fn train_without_metrics_tests_the_last_epoch_only() {
    let dir = tempfile::tempdir().unwrap();
    let with_metrics = train(dir.path(), "a", "5");
    let model = dir.path().join("b.npz");
    let mut args = vec!["train", "--seed", "5"];
    args.extend(SMALL);
    let stderr = ok(&layerscope(&args, &[Path::new("--save"), &model]));
    let epochs: Vec<&str> = stderr.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 4, "{stderr}");
    assert!(
        epochs
            .iter()
            .all(|l| l.contains("train acc") && !l.contains("test")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(&with_metrics).unwrap(),
        "the evaluation does not change the training"
    );
    let split = small_split(5);
    let mlp = layerscope::nn::load_model(&model, 784, 10).unwrap();
    let right = mlp
        .predict(split.test.features.view())
        .iter()
        .zip(&split.test.labels)
        .filter(|(p, l)| p == l)
        .count();
    let accuracy = right as f64 / split.test.n_rows() as f64;
    let closing: f64 = stderr
        .split("test accuracy ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no test accuracy in {stderr}"));
    assert!(
        (closing - accuracy).abs() <= 1.0 / 300.0 + 1e-4,
        "{closing} vs {accuracy}"
    );
}

/// A command that trains its own model (no --model) evaluates the test split once, after the
/// last epoch (nothing reads the per-epoch figures there), and explains the model `train` saves.
#[test]
fn commands_training_their_own_model_test_the_last_epoch_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = train(d, "a", "5");
    let explain = |own: bool, out: &Path| {
        let mut args = vec![
            "explain",
            "--seed",
            "5",
            "--index",
            "3",
            "--method",
            "gradient-x-input",
        ];
        let mut paths: Vec<&Path> = vec![];
        if own {
            args.extend(SMALL);
        } else {
            args.extend(&SMALL[..2]);
            paths.extend([Path::new("--model"), model.as_path()]);
        }
        paths.extend([Path::new("--out"), out]);
        ok(&layerscope(&args, &paths))
    };
    let (own, saved) = (d.join("own.csv"), d.join("saved.csv"));
    let stderr = explain(true, &own);
    explain(false, &saved);
    assert_eq!(
        std::fs::read(&own).unwrap(),
        std::fs::read(&saved).unwrap(),
        "the model trained in place is the one `train` saves"
    );
    let epochs: Vec<&str> = stderr.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 4, "{stderr}");
    assert!(epochs.iter().all(|l| !l.contains("test")), "{stderr}");
    let closing = stderr
        .lines()
        .find(|l| l.contains("test accuracy 0."))
        .unwrap_or_else(|| panic!("no closing test accuracy in {stderr}"));
    assert!(closing.contains("4 epochs"), "{closing}");
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
        stderr.contains("invalid value 'magic' for '--method <M>'")
            && stderr.contains("notebook, permutation, gradient-x-input, integrated-gradients"),
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
    assert!(!out.exists(), "nothing written");
}

/// No file of `dir` is a temporary file of layerscope's: its prefix, and the old `.tmp` names.
fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with(layerscope::headless::output::TEMP_PREFIX)
                || n.ends_with(".tmp")
                || n.contains(".tmp-")
        })
        .collect()
}

#[test]
fn a_failure_after_the_outputs_were_opened_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The model is written whole into its temporary file; the metrics then fail (a full
    // device): the model must not appear, and its temporary file must be gone.
    let mut args = vec!["train"];
    args.extend(SMALL);
    args.extend(["--save", "m.npz", "--metrics", "/dev/full"]);
    let out = Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .current_dir(d)
        .args(&args)
        .output()
        .unwrap();
    let stderr = failed(&out);
    assert!(
        stderr.contains("--metrics /dev/full: cannot write"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("epoch ").count(),
        4,
        "it failed after the work"
    );
    assert!(!d.join("m.npz").exists());
    assert_eq!(temporary_files(d), Vec::<String>::new());
    // The filter sees a real temporary name: one left by a run killed mid-write would show.
    let planted = d.join(format!(
        "{}abc123.tmp",
        layerscope::headless::output::TEMP_PREFIX
    ));
    std::fs::write(&planted, "").unwrap();
    assert_eq!(temporary_files(d).len(), 1);
}

#[test]
fn explain_writes_the_engines_values() {
    use layerscope::explain::{self, ExplainParams, Method, Units};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = train(d, "m", "2");
    let split = small_split(0);
    let mlp = layerscope::nn::load_model(&model, 784, 10).unwrap();
    for (method, logits) in [
        (Method::Permutation, false),
        (Method::IntegratedGradients, true),
    ] {
        let out = d.join("s.csv");
        let name = match method {
            Method::Permutation => "permutation",
            _ => "integrated-gradients",
        };
        let mut args = vec![
            "explain",
            "--sample",
            "600",
            "--index",
            "5",
            "--class",
            "3",
            "--samples",
            "12",
            "--method",
            name,
        ];
        if logits {
            args.push("--logits");
        }
        args.push("--model");
        ok(&layerscope(&args, &[&model, Path::new("--out"), &out]));
        let mut params = ExplainParams::for_method(method);
        params.class = Some(3);
        params.samples = 12;
        params.units = if logits {
            Units::Logit
        } else {
            Units::Probability
        };
        let expected = explain::explain(
            &mlp,
            split.test.features.row(5),
            split.train.features.view(),
            &params,
            None,
            None,
        )
        .unwrap();
        let (_, rows) = csv_rows(&out);
        assert_eq!(rows.len(), expected.values.len());
        for (i, row) in rows.iter().enumerate() {
            let v: f32 = row[2].parse().unwrap();
            assert_eq!(v, expected.values[i], "{name} pixel {i}");
            match &expected.stderr {
                Some(se) => assert_eq!(row[3].parse::<f32>().unwrap(), se[i]),
                None => assert_eq!(row[3], ""),
            }
        }
    }
}

#[test]
fn explain_and_embed_check_their_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = train(d, "m", "3");
    let out = d.join("x.csv");
    let cases: [(&[&str], &str); 5] = [
        (
            &["explain", "--index", "300"],
            "--index 300: expected 0 to 299",
        ),
        (&["explain", "--class", "10"], "--class 10: expected 0 to 9"),
        (&["embed", "--layers", "0"], "--layers"),
        (
            &["embed", "--layers", "5"],
            "--layers 5: expected layers 1 (input) to 4",
        ),
        (&["explain", "--samples", "0"], "--samples"),
    ];
    for (args, needle) in cases {
        let mut all = args.to_vec();
        all.extend(["--sample", "600", "--model"]);
        let stderr = failed(&layerscope(&all, &[&model, Path::new("--out"), &out]));
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let stderr = failed(&layerscope(&["snapshot", "--width", "0"], &[]));
    assert!(stderr.contains("--width"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn csv_quotes_text_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("names.csv");
    let mut text = String::from("a,b,c,d,target\n");
    for i in 0..40_u32 {
        let name = if i % 2 == 0 {
            "\"a, b\""
        } else {
            "\"say \"\"hi\"\"\""
        };
        let x = f64::from(i % 7) / 7.0 + f64::from(i % 2);
        text += &format!("{x},{},{},{},{name}\n", 1.0 - x, x * x, 0.5);
    }
    std::fs::write(&data, text).unwrap();
    let out = d.join("e.csv");
    let args = [
        "embed",
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--perplexity",
        "5",
        "--data",
    ];
    ok(&layerscope(&args, &[&data, Path::new("--out"), &out]));
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let mut labels = std::collections::BTreeSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(record.len(), 8, "{record:?}"); // with issue 13's `row` and `split`
        labels.insert(record[4].to_owned());
    }
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        ["a, b", "say \"hi\""],
        "names read back whole"
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
        let stderr = ok(&out);
        // Progress on stderr, and only as far as the tab shows.
        let stages = [
            "snapshot: epoch 2",
            "snapshot: t-SNE of layer 4",
            "snapshot: explaining",
        ];
        // The worker explains the opening image before it embeds the layers.
        let needed: [bool; 3] = match tab {
            "training" => [true, false, false],
            "embeddings" => [true, true, true],
            _ => [true, false, true],
        };
        for (stage, needed) in stages.iter().zip(needed) {
            assert_eq!(stderr.contains(stage), needed, "{tab}: {stage}: {stderr}");
        }
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 24, "{text}");
        // What the tab shows once the pipeline is done, not a waiting panel.
        let (shown, waiting): (&[&str], &[&str]) = match tab {
            "training" => (
                &["network 784-32-16-10", "epoch 2"],
                &["waiting for the first epoch"],
            ),
            "embeddings" => (
                &["L2", "L3", "L4", "trust"],
                &["t-SNE queued", "when done", "loading"],
            ),
            _ => (
                &["method", "done"],
                &["waiting for the worker", "not started", "refining"],
            ),
        };
        for s in shown {
            assert!(text.contains(s), "{tab} shows {s:?}: {text}");
        }
        for s in waiting {
            assert!(!text.contains(s), "{tab} does not show {s:?}: {text}");
        }
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
        stderr.contains("invalid value 'nope' for '--tab <TAB>'")
            && stderr.contains("training, embeddings, saliency"),
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

/// The map the binary wrote, compared value by value with the engine's (exact equality).
fn assert_same_map(out: &Path, values: &[f32], stderr: Option<&[f32]>, what: &str) {
    let (header, rows) = csv_rows(out);
    assert_eq!(header, ["row", "col", "value", "stderr"]);
    assert_eq!(rows.len(), values.len(), "{what}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row[2].parse::<f32>().unwrap(),
            values[i],
            "{what} pixel {i}"
        );
        match stderr {
            Some(se) => assert_eq!(row[3].parse::<f32>().unwrap(), se[i], "{what} SE {i}"),
            None => assert_eq!(row[3], "", "{what} SE {i}"),
        }
    }
}

/// The bookkeeping line's figures as the binary prints them (4 decimals here).
fn bookkeeping(stderr: &str, fx: &str, output: f64, base: &str, reference: f64, sum: f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(fx))
        .unwrap_or_else(|| panic!("no line starting {fx:?}: {stderr}"));
    let want = format!("{fx} = {output:.4}  {base} = {reference:.4}  sum = {sum:.4}");
    assert!(line.starts_with(&want), "{want:?} in {line:?}");
    assert!(line.contains("completeness gap = "), "{line}");
}

#[test]
fn explain_versus_writes_the_engines_contrast() {
    use layerscope::explain::{self, ExplainParams, Method, Units};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = train(d, "m", "2");
    let split = small_split(0);
    let mlp = layerscope::nn::load_model(&model, 784, 10).unwrap();
    let out = d.join("v.csv");
    for (method, name, logits) in [
        (Method::Permutation, "permutation", false),
        (Method::IntegratedGradients, "integrated-gradients", true),
    ] {
        let mut args = vec![
            "explain",
            "--sample",
            "600",
            "--index",
            "5",
            "--class",
            "3",
            "--versus",
            "5",
            "--samples",
            "12",
            "--method",
            name,
        ];
        if logits {
            args.push("--logits");
        }
        args.push("--model");
        let stderr = ok(&layerscope(&args, &[&model, Path::new("--out"), &out]));
        let params = ExplainParams {
            class: Some(3),
            versus: Some(5),
            samples: 12,
            units: if logits {
                Units::Logit
            } else {
                Units::Probability
            },
            ..ExplainParams::for_method(method)
        };
        let a = explain::explain(
            &mlp,
            split.test.features.row(5),
            split.train.features.view(),
            &params,
            None,
            None,
        )
        .unwrap();
        assert_eq!(a.versus, Some(5));
        assert_same_map(
            &out,
            a.values.as_slice().unwrap(),
            a.stderr.as_ref().map(|s| s.as_slice().unwrap()),
            name,
        );
        let base = if logits { "f(baseline)" } else { "E[f(b)]" };
        bookkeeping(&stderr, "f(x)", a.output, base, a.reference, a.sum);
        assert!(stderr.contains("class 3 versus 5"), "{stderr}");
        let units = if logits {
            "[logit difference]"
        } else {
            "[probability difference]"
        };
        assert!(stderr.contains(units), "{stderr}");
        if let Some(z) = a.gap_in_stderrs() {
            assert!(stderr.contains(&format!("({z:.1} SE)")), "{stderr}");
        }
    }
    // A contrast of a class with itself, or with a class the data does not have.
    let predicted = mlp.predict(split.test.features.slice(ndarray::s![5..6, ..]))[0].to_string();
    let cases: [(Vec<&str>, String); 4] = [
        (
            vec!["--class", "3", "--versus", "3"],
            "--versus 3: the same class as --class 3".to_owned(),
        ),
        (
            vec!["--versus", "10"],
            "--versus 10: expected 0 to 9".to_owned(),
        ),
        (
            vec!["--class-mean", "4", "--versus", "4"],
            "--versus 4: the same class as --class-mean 4".to_owned(),
        ),
        (
            vec!["--versus", &predicted],
            format!("--versus {predicted}: test row 5 is predicted as {predicted}"),
        ),
    ];
    let bad = d.join("bad.csv");
    for (flags, needle) in cases {
        let mut args = vec!["explain", "--sample", "600"];
        if !flags.contains(&"--class-mean") {
            args.extend(["--index", "5"]);
        }
        args.extend(flags);
        args.push("--model");
        let stderr = failed(&layerscope(&args, &[&model, Path::new("--out"), &bad]));
        assert!(stderr.contains(&needle), "{needle}: {stderr}");
    }
    assert!(!bad.exists(), "nothing written");
}

#[test]
fn explain_class_mean_writes_the_engines_mean() {
    use layerscope::explain::{self, ExplainParams, Method, Units};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = train(d, "m", "4");
    let split = small_split(0);
    let mlp = layerscope::nn::load_model(&model, 784, 10).unwrap();
    let of_class = |c: u8| -> Vec<usize> {
        (0..split.test.n_rows())
            .filter(|&i| split.test.labels[i] == c)
            .collect()
    };
    let out = d.join("m.csv");
    // (class, versus, --images, method, logits)
    let runs = [
        (4, None, Some(5), Method::Permutation, false),
        (4, Some(9), Some(4), Method::Permutation, true),
        // Fewer than the default 100 images of class 7 in 300 test rows: all of them.
        (7, None, None, Method::GradientTimesInput, false),
    ];
    for (class, versus, images, method, logits) in runs {
        let name = if method == Method::Permutation {
            "permutation"
        } else {
            "gradient-x-input"
        };
        let (c, v, n) = (
            class.to_string(),
            versus.map(|v| v.to_string()),
            images.map(|n| n.to_string()),
        );
        let mut args = vec![
            "explain",
            "--sample",
            "600",
            "--class-mean",
            &c,
            "--method",
            name,
        ];
        if let Some(v) = &v {
            args.extend(["--versus", v]);
        }
        if let Some(n) = &n {
            args.extend(["--images", n]);
        }
        if method == Method::Permutation {
            args.extend(["--samples", "6"]);
        }
        if logits {
            args.push("--logits");
        }
        args.push("--model");
        let stderr = ok(&layerscope(&args, &[&model, Path::new("--out"), &out]));
        let rows = of_class(u8::try_from(class).unwrap());
        let rows = &rows[..rows.len().min(images.unwrap_or(100))];
        let mut params = ExplainParams::for_class_mean(method, class);
        params.versus = versus;
        if method == Method::Permutation {
            params.samples = 6;
        }
        if logits {
            params.units = Units::Logit;
        }
        let m = explain::explain_class_mean(
            &mlp,
            split.test.features.select(ndarray::Axis(0), rows).view(),
            split.train.features.view(),
            None,
            &params,
            None,
            None,
        )
        .unwrap();
        assert_eq!(m.images, rows.len());
        let what = format!("class mean {class} {versus:?} {name}");
        assert_same_map(
            &out,
            m.values.as_slice().unwrap(),
            Some(m.stderr.as_slice().unwrap()),
            &what,
        );
        // Progress per image (stderr is not a terminal here: one line each), then the figures.
        for j in 1..=rows.len() {
            let line = format!("class mean: {j}/{} images", rows.len());
            assert!(stderr.contains(&line), "{what}: {line}: {stderr}");
        }
        let base = if method == Method::Permutation {
            "E[f(b)]"
        } else {
            "f(baseline)"
        };
        bookkeeping(&stderr, "mean f(x)", m.output, base, m.reference, m.sum);
        let fewer = format!(
            "--class-mean 7: the test split has only {} images of class 7",
            rows.len()
        );
        assert_eq!(
            stderr.contains(&fewer),
            images.is_none(),
            "{what}: {stderr}"
        );
    }
    // --images needs --class-mean; --index and --class are single-image flags.
    for flags in [
        &["--images", "5"][..],
        &["--class-mean", "4", "--index", "2"],
        &["--class-mean", "4", "--class", "2"],
        &["--class-mean", "10"],
    ] {
        let mut args = vec!["explain", "--sample", "600"];
        args.extend(flags);
        args.push("--model");
        let bad = d.join("bad.csv");
        let stderr = failed(&layerscope(&args, &[&model, Path::new("--out"), &bad]));
        let needle = if flags[0] == "--images" {
            "--class-mean"
        } else if flags[1] == "10" {
            "--class-mean 10: expected 0 to 9"
        } else {
            "cannot be used with"
        };
        assert!(stderr.contains(needle), "{flags:?}: {stderr}");
        assert!(!bad.exists());
    }
}

#[test]
fn snapshot_writes_the_frame_as_svg_too() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("frame.svg");
    let mut args = vec![
        "snapshot", "--tab", "training", "--width", "80", "--height", "24", "--epochs", "2",
        "--sample", "600", "--hidden", "32,16", "--svg",
    ];
    args.extend([svg.to_str().unwrap()]);
    let out = layerscope(&args, &[]);
    ok(&out);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") || text.starts_with("<?xml"),
        "{}",
        &text[..80]
    );
    assert!(text.trim_end().ends_with("</svg>"));
    // 80 x 24 cells of 8 x 16 pixels.
    assert!(
        text.contains("width=\"640\"") && text.contains("height=\"384\""),
        "{}",
        &text[..200]
    );
    // The text of the frame is in it (the tab bar), and the stdout frame is still printed.
    assert!(text.contains("Training"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 24);
    // An SVG path that is the run's own input is refused before any work.
    let data = dir.path().join("d.csv");
    std::fs::write(&data, "a,b,target\n0,1,0\n1,0,1\n0,0,0\n1,1,1\n").unwrap();
    let out = layerscope(
        &[
            "snapshot",
            "--data",
            data.to_str().unwrap(),
            "--svg",
            data.to_str().unwrap(),
        ],
        &[],
    );
    failed(&out);
    assert_eq!(
        std::fs::read_to_string(&data).unwrap(),
        "a,b,target\n0,1,0\n1,0,1\n0,0,0\n1,1,1\n"
    );
}

#[test]
fn info_and_train_take_a_folder_of_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("film");
    let model = dir.path().join("m.npz");
    let mut args = SMALL.to_vec();
    args[5] = "2";
    let mut train_args = vec!["train"];
    train_args.extend(&args);
    train_args.push("--checkpoints");
    let out = layerscope(&train_args, &[&film, Path::new("--save"), &model]);
    ok(&out);
    let out = layerscope(&["info", "--sample", "600", "--model"], &[&film]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("3 checkpoints (epochs 0 to 2)"),
        "the film is described: {text}"
    );
    assert!(
        text.contains("epoch_002.npz: 784 -> 32 -> 16 -> 10"),
        "{text}"
    );
    // Going on training from the folder starts from its last epoch's weights.
    let more = dir.path().join("more.npz");
    let go_on = ["train", "--sample", "600", "--epochs", "1", "--model"];
    let out = layerscope(&go_on, &[&film, Path::new("--save"), &more]);
    let stderr = ok(&out);
    assert!(stderr.contains("warm start from"), "{stderr}");
    // A run that fails before its first epoch (here: data that does not exist) leaves no new
    // checkpoint folder behind.
    let never = dir.path().join("never");
    let out = layerscope(
        &["train", "--data"],
        &[
            &dir.path().join("missing.csv"),
            Path::new("--checkpoints"),
            &never,
            Path::new("--save"),
            &dir.path().join("never.npz"),
        ],
    );
    failed(&out);
    assert!(!never.exists(), "the folder was made for nothing");
    // A folder with no checkpoint in it is an error, not a panic.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = layerscope(&["info", "--sample", "600", "--model"], &[&empty]);
    failed(&out);
}
