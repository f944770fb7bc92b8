//! The binary as a hostile user meets it, one temporary folder per case: the exit code, a one-line
//! message, no panic, no file changed that should not be, no temporary file left.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run left: exit code and both streams.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_layerscope"));
    cmd.current_dir(dir).args(args).stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let out = command(dir, args).output().expect("run layerscope");
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn succeeded(r: &Run) {
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

/// Exit 2, no panic, and the message (our one line, or clap's first line) says `needle`.
fn refused(r: &Run, needle: &str) {
    assert_eq!(r.code, Some(2), "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("layerscope: error:") || l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {}", r.stderr);
    assert!(
        errors[0].contains(needle),
        "expected {needle:?} in: {}",
        r.stderr
    );
}

/// Every file of a folder (not descending) with its bytes, hidden ones included.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// No temporary file of layerscope's (or of its old naming) in `dir`.
fn no_temporary_files(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".layerscope-") || n.ends_with(".tmp") || n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// A small two-class table, 4 features, 40 rows: fast to train and embed.
fn tiny_data(dir: &Path) -> PathBuf {
    let mut text = String::from("a,b,c,d,target\n");
    for i in 0..40_u32 {
        let class = i % 2;
        let v = |k: u32| f64::from((i * 7 + k * 3) % 11) / 10.0 + f64::from(class * k);
        text += &format!("{},{},{},{},{class}\n", v(0), v(1), v(2), v(3));
    }
    let path = dir.join("tiny.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// A model of `tiny_data`, trained by the binary.
fn tiny_model(dir: &Path) -> PathBuf {
    tiny_data(dir);
    let r = run(
        dir,
        &[
            "train", "--data", "tiny.csv", "--hidden", "8", "--epochs", "3", "--save", "m.npz",
        ],
    );
    succeeded(&r);
    dir.join("m.npz")
}

const EXPLAIN_TINY: [&str; 7] = [
    "explain",
    "--data",
    "tiny.csv",
    "--model",
    "m.npz",
    "--method",
    "gradient-x-input",
];

#[test]
fn an_output_that_is_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    std::fs::write(d.join("target.csv"), "old").unwrap();
    std::os::unix::fs::symlink("target.csv", d.join("link.csv")).unwrap();
    let mut args = EXPLAIN_TINY.to_vec();
    args.extend(["--out", "link.csv"]);
    succeeded(&run(d, &args));
    assert!(
        std::fs::symlink_metadata(d.join("link.csv"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is kept"
    );
    let text = std::fs::read_to_string(d.join("target.csv")).unwrap();
    assert!(text.starts_with("row,col,value,stderr\n"), "{text}");
    no_temporary_files(d);
}

#[test]
fn a_device_is_written_in_place_and_dash_is_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    let mut args = EXPLAIN_TINY.to_vec();
    args.extend(["--out", "/dev/null"]);
    succeeded(&run(d, &args));
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(!null.is_file(), "/dev/null is still a device");
    let mut args = EXPLAIN_TINY.to_vec();
    args.extend(["--out", "-"]);
    let r = run(d, &args);
    succeeded(&r);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.starts_with("row,col,value,stderr\n"), "{text}");
    assert_eq!(text.lines().count(), 5, "4 features and a header: {text}");
    assert!(!d.join("-").exists());
    // A model on stdout is the whole .npz (a zip archive).
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--hidden", "4", "--epochs", "1", "--save", "-",
        ],
    );
    succeeded(&r);
    assert!(
        r.stdout.starts_with(b"PK\x03\x04"),
        "a zip archive on stdout"
    );
    assert!(r.stderr.contains("saved to stdout"), "{}", r.stderr);
    std::fs::write(d.join("piped.npz"), &r.stdout).unwrap();
    let r = run(d, &["info", "--data", "tiny.csv", "--model", "piped.npz"]);
    succeeded(&r);
    assert!(String::from_utf8(r.stdout).unwrap().contains("4 -> 4 -> 2"));
    no_temporary_files(d);
}

#[test]
fn an_output_is_never_an_input_or_another_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    std::fs::hard_link(d.join("m.npz"), d.join("same.npz")).unwrap();
    let before = files(d);
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "explain", "--data", "tiny.csv", "--model", "m.npz", "--out", "m.npz",
            ],
            "is the input --model",
        ),
        (
            &[
                "explain", "--data", "tiny.csv", "--model", "m.npz", "--out", "same.npz",
            ],
            "is the input --model",
        ),
        (
            &[
                "embed",
                "--data",
                "tiny.csv",
                "--perplexity",
                "5",
                "--out",
                "tiny.csv",
            ],
            "is the input --data",
        ),
        (
            &[
                "train",
                "--data",
                "tiny.csv",
                "--save",
                "x",
                "--metrics",
                "./x",
            ],
            "are the same file",
        ),
    ];
    for (args, needle) in cases {
        let r = run(d, args);
        refused(&r, needle);
        assert!(
            !r.stderr.contains("epoch"),
            "refused before any work: {}",
            r.stderr
        );
    }
    assert_eq!(files(d), before, "nothing changed");
}

#[test]
fn train_with_a_model_warm_starts_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = tiny_model(d);
    let original = std::fs::read(&model).unwrap();
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--model", "m.npz", "--epochs", "2", "--save",
            "more.npz",
        ],
    );
    succeeded(&r);
    assert!(r.stderr.contains("warm start from m.npz"), "{}", r.stderr);
    let more = std::fs::read(d.join("more.npz")).unwrap();
    assert_ne!(more, original, "trained further");
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--model", "m.npz", "--save", "m.npz",
        ],
    );
    refused(&r, "is the input --model");
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--model", "m.npz", "--hidden", "4", "--save", "y.npz",
        ],
    );
    refused(&r, "--hidden");
    assert_eq!(std::fs::read(&model).unwrap(), original);
    assert!(!d.join("y.npz").exists());
}

#[test]
fn temporary_names_are_random_short_and_keep_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    // The old predictable name, planted as a link to a file that must not change.
    std::fs::write(d.join("victim"), "precious").unwrap();
    let pid_guess = format!(".out.csv.{}.tmp", std::process::id());
    std::os::unix::fs::symlink("victim", d.join(&pid_guess)).unwrap();
    std::fs::write(d.join("out.csv"), "old").unwrap();
    std::fs::set_permissions(d.join("out.csv"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut args = EXPLAIN_TINY.to_vec();
    args.extend(["--out", "out.csv"]);
    succeeded(&run(d, &args));
    assert_eq!(
        std::fs::read_to_string(d.join("victim")).unwrap(),
        "precious"
    );
    let mode = std::fs::metadata(d.join("out.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the destination's mode is kept");
    std::fs::remove_file(d.join(&pid_guess)).unwrap();
    // A legal 254-byte name.
    let long = "x".repeat(250) + ".csv";
    let mut args = EXPLAIN_TINY.to_vec();
    args.extend(["--out", &long]);
    succeeded(&run(d, &args));
    assert!(d.join(&long).is_file());
    no_temporary_files(d);
}

#[test]
fn outputs_are_checked_before_work_and_renamed_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_data(d);
    // A missing folder for the second output: refused before training.
    let r = run(
        d,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--save",
            "m.npz",
            "--metrics",
            "no/met.csv",
        ],
    );
    refused(&r, "--metrics no/met.csv");
    assert!(!r.stderr.contains("epoch"), "before any work: {}", r.stderr);
    // A second output that fails after the first was written whole: the model stays out.
    let r = run(
        d,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "2",
            "--save",
            "m.npz",
            "--metrics",
            "/dev/full",
        ],
    );
    refused(&r, "--metrics /dev/full: cannot write");
    assert!(
        r.stderr.contains("epoch"),
        "this one fails after the work: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(".layerscope-"),
        "the user's path, not the temporary one"
    );
    assert!(!d.join("m.npz").exists(), "no model without its metrics");
    no_temporary_files(d);
}

#[test]
fn sigterm_during_training_exits_by_the_signal_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut child = command(
        d,
        &[
            "train", "--hidden", "256,128", "--epochs", "200", "--save", "m.npz",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // The options line comes first, then the first epoch's.
    let first = lines
        .by_ref()
        .take(5)
        .map(Result::unwrap)
        .find(|l| !l.starts_with("training:"))
        .unwrap();
    assert!(first.starts_with("epoch"), "{first}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exits by the handler: {status:?}"
    );
    assert!(!d.join("m.npz").exists());
    no_temporary_files(d);
}

#[test]
fn huge_sizes_are_refused_up_front_with_the_memory_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = run(
        d,
        &[
            "train",
            "--sample",
            "100",
            "--hidden",
            "1000000,1000000",
            "--save",
            "m.npz",
        ],
    );
    refused(&r, "--hidden 1000000,1000000 needs 4003.2 GB of weights");
    let r = run(
        d,
        &[
            "train",
            "--sample",
            "100",
            "--hidden",
            "99999999999",
            "--save",
            "m.npz",
        ],
    );
    refused(&r, "GB of weights");
    let r = run(
        d,
        &[
            "embed",
            "--sample",
            "100",
            "--hidden",
            "1000000,1000000",
            "--out",
            "e.csv",
        ],
    );
    refused(&r, "GB of weights");
    let r = run(d, &["snapshot", "--width", "65535", "--height", "65535"]);
    refused(&r, "--width");
    let r = run(d, &["snapshot", "--width", "0"]);
    refused(&r, "--width");
    assert!(files(d).is_empty());
}

#[test]
fn layer_sizes_are_checked_at_parse_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_data(d);
    for hidden in ["0", "8,0", "-3", "x"] {
        let r = run(
            d,
            &[
                "train", "--data", "tiny.csv", "--hidden", hidden, "--save", "m.npz",
            ],
        );
        refused(&r, "--hidden");
        assert!(!r.stderr.contains("epoch"));
    }
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--hidden", "8, 8", "--epochs", "1", "--save", "m.npz",
        ],
    );
    succeeded(&r);
    let r = run(d, &["info", "--data", "tiny.csv", "--model", "m.npz"]);
    succeeded(&r);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.contains("4 -> 8 -> 8 -> 2"), "{text}");
}

#[test]
fn a_closed_or_full_stream_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_data(d);
    // stdout closed by its reader before anything is written: a quiet exit.
    let mut child = command(d, &["info", "--data", "tiny.csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "quiet: {stderr}");
    // stdout full: a message, exit 2.
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = command(d, &["info", "--data", "tiny.csv"])
        .stdout(full)
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    refused(&r, "stdout: cannot write");
    // stderr full: progress is lost, the run is not.
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = command(
        d,
        &[
            "train", "--data", "tiny.csv", "--hidden", "4", "--epochs", "2", "--save", "m.npz",
        ],
    )
    .stderr(full)
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(d.join("m.npz").is_file(), "the model is saved");
}

#[test]
fn plain_words_for_limits_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_data(d);
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--epochs", "0", "--save", "m.npz",
        ],
    );
    refused(&r, "--epochs");
    let r = run(
        d,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--test-fraction",
            "-0.5",
            "--save",
            "m.npz",
        ],
    );
    refused(&r, "between 0 and 1");
    assert!(!r.stderr.contains("unexpected argument"), "{}", r.stderr);
    let r = run(
        d,
        &[
            "train", "--data", "tiny.csv", "--hidden", "4", "--epochs", "1", "--save", "m.npz",
        ],
    );
    succeeded(&r);
    assert!(
        r.stderr
            .contains("stopped at the limit of 1 epoch (--epochs)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("MaxEpochs"), "{}", r.stderr);
}

#[test]
fn info_escapes_names_and_describes_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    std::fs::write(
        d.join("evil.csv"),
        "a,b,c,d,target\n1,2,3,4,\x1b[31mred\n4,3,2,1,blue\n1,1,1,1,blue\n2,2,2,2,\x1b[31mred\n",
    )
    .unwrap();
    let r = run(d, &["info", "--data", "evil.csv"]);
    succeeded(&r);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("\\u{1b}[31mred"), "{text}");
    let r = run(d, &["info", "--data", "tiny.csv", "--model", "m.npz"]);
    succeeded(&r);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.contains("model:     m.npz: 4 -> 8 -> 2"), "{text}");
    assert!(text.contains("fits:      yes"), "{text}");
    let r = run(d, &["info", "--sample", "100", "--model", "m.npz"]);
    succeeded(&r);
    let text = String::from_utf8(r.stdout).unwrap();
    assert!(text.contains("fits:      no"), "{text}");
    assert!(text.contains("784"), "{text}");
}

#[test]
fn metrics_are_the_same_file_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_data(d);
    for name in ["a", "b"] {
        let (save, metrics) = (format!("{name}.npz"), format!("{name}.csv"));
        let r = run(
            d,
            &[
                "train",
                "--data",
                "tiny.csv",
                "--hidden",
                "4",
                "--epochs",
                "3",
                "--save",
                &save,
                "--metrics",
                &metrics,
            ],
        );
        succeeded(&r);
    }
    let a = std::fs::read_to_string(d.join("a.csv")).unwrap();
    assert_eq!(a, std::fs::read_to_string(d.join("b.csv")).unwrap());
    assert!(
        // Issue 12 (branch film): a separation column per layer follows.
        a.starts_with("epoch,train_loss,train_accuracy,test_loss,test_accuracy,separation_l1,"),
        "{a}"
    );
    assert_eq!(a.lines().count(), 4);
}

#[test]
fn embed_checks_its_options_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_data(d);
    let base = [
        "embed", "--data", "tiny.csv", "--hidden", "4", "--out", "e.csv",
    ];
    let cases: [(&[&str], &str); 5] = [
        (
            &["--layers", "9", "--perplexity", "5"],
            "--layers 9: expected layers 1 (input) to 3",
        ),
        (
            &["--perplexity", "1000"],
            "--perplexity 1000 needs more points",
        ),
        (&["--n", "1", "--perplexity", "5"], "--n 1 embeds 1 point"),
        (&["--n", "0"], "--n"),
        (&["--perplexity", "nan"], "--perplexity"),
    ];
    for (extra, needle) in cases {
        let mut args = base.to_vec();
        args.extend(extra);
        let r = run(d, &args);
        refused(&r, needle);
        assert!(!r.stderr.contains("epoch"), "before training: {}", r.stderr);
    }
    assert!(!d.join("e.csv").exists());
}

#[test]
fn the_terminal_app_checks_data_and_model_before_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    std::fs::write(d.join("notzip.npz"), "hello").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--data", "/missing.tsv"], "missing.tsv"),
        (&["--sample", "0"], "--sample"),
        (
            &["--data", "tiny.csv", "--model", "notzip.npz"],
            "not a zip",
        ),
        (&["--sample", "100", "--model", "m.npz"], "m.npz"),
        (
            &["--sample", "100", "--hidden", "1000000,1000000"],
            "GB of weights",
        ),
    ];
    for (args, needle) in cases {
        let r = run(d, args);
        refused(&r, needle);
        assert!(
            !r.stderr.contains("terminal"),
            "the data's error first: {}",
            r.stderr
        );
    }
}

#[test]
fn each_subcommand_lists_only_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let help = |sub: &str| {
        let r = run(dir.path(), &[sub, "--help"]);
        succeeded(&r);
        String::from_utf8(r.stdout).unwrap()
    };
    let train = help("train");
    for absent in ["--perplexity", "--ascii", "--n ", "--layers", "--tab"] {
        assert!(
            !train.contains(absent),
            "train --help lists {absent}: {train}"
        );
    }
    for present in ["--data", "--seed", "--hidden", "--save", "--model"] {
        assert!(
            train.contains(present),
            "train --help lacks {present}: {train}"
        );
    }
    let embed = help("embed");
    assert!(
        embed.contains("--perplexity") && !embed.contains("--ascii"),
        "{embed}"
    );
    let info = help("info");
    assert!(
        info.contains("--data") && !info.contains("--hidden"),
        "{info}"
    );
    let snapshot = help("snapshot");
    assert!(
        snapshot.contains("--ascii")
            && snapshot.contains("- embeddings: A t-SNE scatter per layer"),
        "{snapshot}"
    );
    // Data options come after the subcommand; before it they belong to the terminal app.
    tiny_data(dir.path());
    succeeded(&run(dir.path(), &["info", "--data", "tiny.csv"]));
    refused(
        &run(dir.path(), &["--data", "tiny.csv", "info"]),
        "cannot be used with '--data <PATH>'",
    );
}

#[test]
fn a_long_explanation_reports_progress_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_model(d);
    let r = run(
        d,
        &[
            "explain",
            "--data",
            "tiny.csv",
            "--model",
            "m.npz",
            "--samples",
            "50",
            "--out",
            "s.csv",
        ],
    );
    succeeded(&r);
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("explain: "))
        .collect();
    // At most one line per tenth, and none at the end (the summary line follows).
    assert!((2..=9).contains(&lines.len()), "{}", r.stderr);
    assert!(
        lines.iter().all(|l| l.contains("/50 samples")),
        "{}",
        r.stderr
    );
}

#[test]
fn a_costly_notebook_estimate_is_announced_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2 x 40,000 samples x 784 pixels: warned, then refused here by the missing model, so the
    // test does not pay for it.
    let r = run(
        d,
        &[
            "explain",
            "--sample",
            "100",
            "--method",
            "notebook",
            "--samples",
            "40000",
            "--model",
            "missing.npz",
            "--out",
            "s.csv",
        ],
    );
    refused(&r, "missing.npz");
    assert!(
        r.stderr
            .contains("the notebook estimator will evaluate the network 62720000 times"),
        "{}",
        r.stderr
    );
    let r = run(
        d,
        &[
            "explain",
            "--sample",
            "100",
            "--method",
            "notebook",
            "--samples",
            "100",
            "--model",
            "missing.npz",
            "--out",
            "s.csv",
        ],
    );
    refused(&r, "missing.npz");
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}
