//! The model engine: gradients against finite differences, learning, model files, pause/resume,
//! and accuracy on the on-board digits.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use layerscope::data::{self, Dataset};
use layerscope::nn::{
    Activation, Mlp, ModelError, Output, StopReason, TrainParams, Trainer, confusion_matrix,
    load_model, load_npz, loss_gradient, per_class_accuracy, write_model,
};
use ndarray::{Array1, Array2, ArrayView1};
use ndarray_npy::WriteNpyExt;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn dataset(features: Array2<f32>, labels: Vec<u8>, n_classes: usize) -> Dataset {
    let n_rows = features.nrows();
    Dataset {
        feature_names: (0..features.ncols()).map(|i| format!("f{i}")).collect(),
        features,
        labels,
        class_names: (0..n_classes).map(|c| c.to_string()).collect(),
        image_shape: None,
        source: "test".to_owned(),
        rows: (0..n_rows).collect(),
    }
}

/// Save `mlp` to `path` through `write_model` (the front-ends hand it their atomic writer).
fn write_model_file(mlp: &Mlp, path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write_model(mlp, &mut file).unwrap();
}

fn random_rows(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(0.0..1.0))
}

/// A hidden activation in f64, written independently of the engine.
fn activate_f64(activation: Activation, v: f64) -> f64 {
    match activation {
        Activation::Identity => v,
        Activation::Logistic => 1.0 / (1.0 + (-v).exp()),
        Activation::Tanh => v.tanh(),
        Activation::Relu => v.max(0.0),
    }
}

/// The network's logits (its output scores before any softmax) in f64, written independently
/// of the engine.
fn logits_f64(mlp: &Mlp, x: ArrayView1<f64>) -> Vec<f64> {
    let mut a: Vec<f64> = x.to_vec();
    for (i, (w, b)) in mlp.coefs.iter().zip(&mlp.intercepts).enumerate() {
        let mut z: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        for (k, &ak) in a.iter().enumerate() {
            for (j, zj) in z.iter_mut().enumerate() {
                *zj += ak * f64::from(w[(k, j)]);
            }
        }
        if i + 1 < mlp.coefs.len() {
            z.iter_mut()
                .for_each(|v| *v = activate_f64(mlp.activation, *v));
        }
        a = z;
    }
    a
}

fn softmax_f64(z: &[f64]) -> Vec<f64> {
    let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// scikit-learn's `_backprop` loss in f64: mean cross-entropy + alpha/2 * sum(W^2) / n.
fn loss_f64(mlp: &Mlp, x: &Array2<f32>, labels: &[u8], alpha: f64) -> f64 {
    let xs = x.mapv(f64::from);
    let ce: f64 = xs
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &y)| -softmax_f64(&logits_f64(mlp, row))[usize::from(y)].ln())
        .sum();
    let n = x.nrows() as f64;
    let sq: f64 = mlp
        .coefs
        .iter()
        .flat_map(|c| c.iter())
        .map(|&w| f64::from(w).powi(2))
        .sum();
    ce / n + 0.5 * alpha * sq / n
}

/// The training gradient matches central differences of an independent f64 loss, weight by
/// weight and bias by bias, penalty included, for each of the four activations: on dense inputs
/// (through the GEMM) and on mostly zero inputs (through the first layer's sparse kernels).
#[test]
fn training_gradient_matches_finite_differences() {
    let dense = random_rows(9, 6, 1);
    let mut sparse = dense.clone();
    sparse.indexed_iter_mut().for_each(|((r, c), v)| {
        if (r + 2 * c) % 4 != 0 {
            *v = 0.0;
        }
    });
    assert!(sparse.iter().filter(|&&v| v != 0.0).count() * 10 < sparse.len() * 4);
    for activation in Activation::ALL {
        check_training_gradient(&dense, activation);
        check_training_gradient(&sparse, activation);
    }
}

fn check_training_gradient(x: &Array2<f32>, activation: Activation) {
    let x = x.clone();
    let mlp = Mlp::initialised(&[6, 5, 4, 3], activation, 7);
    let labels: Vec<u8> = (0..9).map(|i| (i % 3) as u8).collect();
    let alpha = 0.3;
    let (loss, cg, ig) = loss_gradient(&mlp, x.view(), &labels, alpha);
    let reference = loss_f64(&mlp, &x, &labels, f64::from(alpha));
    assert!((loss - reference).abs() < 1e-5, "{loss} vs {reference}");

    let h = 1e-3_f32;
    let mut checked = 0;
    for layer in 0..mlp.coefs.len() {
        for idx in 0..mlp.coefs[layer].len() {
            let (r, c) = (
                idx / mlp.coefs[layer].ncols(),
                idx % mlp.coefs[layer].ncols(),
            );
            let mut plus = mlp.clone();
            plus.coefs[layer][(r, c)] += h;
            let mut minus = mlp.clone();
            minus.coefs[layer][(r, c)] -= h;
            let fd = (loss_f64(&plus, &x, &labels, f64::from(alpha))
                - loss_f64(&minus, &x, &labels, f64::from(alpha)))
                / (2.0 * f64::from(h));
            let an = f64::from(cg[layer][(r, c)]);
            assert!(
                (fd - an).abs() < 1e-4 + 1e-3 * fd.abs(),
                "{activation}: coefs_{layer}[{r},{c}]: backprop {an}, finite difference {fd}"
            );
            checked += 1;
        }
        for (j, &an) in ig[layer].iter().enumerate() {
            let mut plus = mlp.clone();
            plus.intercepts[layer][j] += h;
            let mut minus = mlp.clone();
            minus.intercepts[layer][j] -= h;
            let fd = (loss_f64(&plus, &x, &labels, f64::from(alpha))
                - loss_f64(&minus, &x, &labels, f64::from(alpha)))
                / (2.0 * f64::from(h));
            let an = f64::from(an);
            assert!(
                (fd - an).abs() < 1e-4 + 1e-3 * fd.abs(),
                "{activation}: intercepts_{layer}[{j}]: backprop {an}, finite difference {fd}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
}

/// `input_gradient` of a probability and of a logit matches central differences, for each
/// activation and for a model without a softmax (its logit is its raw score), and the batched
/// form gives the same rows.
#[test]
fn input_gradient_matches_finite_differences() {
    for activation in Activation::ALL {
        for softmax in [true, false] {
            let mut mlp = Mlp::initialised(&[7, 6, 5, 4], activation, 3);
            mlp.softmax = softmax;
            check_input_gradient(&mlp);
        }
    }
}

fn check_input_gradient(mlp: &Mlp) {
    let x = random_rows(3, 7, 2);
    for output in [Output::Probability, Output::Logit] {
        for class in 0..4 {
            let batched = mlp.input_gradients(x.view(), class, output);
            for (r, row) in x.rows().into_iter().enumerate() {
                let g = mlp.input_gradient(row, class, output);
                // The same sums; a one-row product may take another kernel, so allow rounding.
                for (a, b) in g.iter().zip(batched.row(r)) {
                    assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "batched row {r}");
                }
                let f = |v: &Array1<f64>| {
                    let z = logits_f64(mlp, v.view());
                    match output {
                        Output::Logit => z[class],
                        Output::Probability => softmax_f64(&z)[class],
                    }
                };
                let base = row.mapv(f64::from);
                for k in 0..7 {
                    let h = 1e-6;
                    let (mut plus, mut minus) = (base.clone(), base.clone());
                    plus[k] += h;
                    minus[k] -= h;
                    let fd = (f(&plus) - f(&minus)) / (2.0 * h);
                    let an = f64::from(g[k]);
                    assert!(
                        (fd - an).abs() < 1e-5 + 1e-4 * fd.abs(),
                        "{} {output:?} class {class} row {r} input {k}: backprop {an}, \
                         finite difference {fd}",
                        mlp.activation
                    );
                }
            }
        }
    }
}

/// Three well-separated clusters in 2-D are learned perfectly, with each activation (ReLU,
/// and tanh, logistic and identity: training converges with every one).
#[test]
fn learns_a_separable_problem() {
    for activation in Activation::ALL {
        learns_a_separable_problem_with(activation);
    }
}

fn learns_a_separable_problem_with(activation: Activation) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 60;
    let mut x = Array2::zeros((n, 2));
    let mut labels = Vec::new();
    for i in 0..n {
        let class = (i % 3) as u8;
        let (cx, cy) = [(0.2, 0.2), (0.8, 0.3), (0.5, 0.9)][usize::from(class)];
        x[(i, 0)] = cx + rng.random_range(-0.1..0.1);
        x[(i, 1)] = cy + rng.random_range(-0.1..0.1);
        labels.push(class);
    }
    let train = dataset(x, labels.clone(), 3);
    let params = TrainParams {
        hidden: vec![16],
        activation,
        batch_size: 10,
        learning_rate: 1e-2,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(2, 3, params);
    assert_eq!(trainer.model().activation, activation);
    let reason = trainer.run(&train, Some(&train), &mut |_| {}, None);
    assert_eq!(reason, StopReason::Converged, "{activation}");
    let predicted = trainer.model().predict(train.features.view());
    assert_eq!(
        predicted,
        labels,
        "{activation} after {} epochs",
        trainer.epoch()
    );
    let last = trainer.history().last().unwrap();
    assert_eq!(last.test_accuracy, Some(1.0));
    assert!(
        last.train_loss < 0.1,
        "{activation}: loss {}",
        last.train_loss
    );
    assert!(
        last.train_loss < trainer.history()[0].train_loss / 5.0,
        "{activation}: the loss fell from {} to {}",
        trainer.history()[0].train_loss,
        last.train_loss
    );
    // The probabilities are the softmax of the logits an independent f64 pass computes.
    let p = trainer.model().predict_proba(train.features.view());
    for (row, probs) in train.features.rows().into_iter().zip(p.rows()) {
        let want = softmax_f64(&logits_f64(trainer.model(), row.mapv(f64::from).view()));
        for (got, want) in probs.iter().zip(want) {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
        }
    }
}

/// The loss goes down and the stopping rule is scikit-learn's: more than `n_iter_no_change`
/// epochs without an improvement of `tol`.
#[test]
fn stops_as_scikit_learn_does() {
    let x = random_rows(50, 4, 9);
    let labels: Vec<u8> = (0..50).map(|i| (i % 2) as u8).collect();
    let train = dataset(x, labels, 2);
    let params = TrainParams {
        hidden: vec![3],
        batch_size: 50,
        tol: 10.0, // nothing counts as an improvement
        n_iter_no_change: 4,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(4, 2, params);
    let reason = trainer.run(&train, None, &mut |_| {}, None);
    assert_eq!(reason, StopReason::Converged);
    // The first epoch improves on infinity; then 5 epochs without improvement (count > 4).
    assert_eq!(trainer.epoch(), 6);
    assert_eq!(trainer.history()[0].test_loss, None);
    // Running again does nothing more.
    assert_eq!(
        trainer.run(&train, None, &mut |_| {}, None),
        StopReason::Converged
    );
    assert_eq!(trainer.epoch(), 6);

    let mut capped = Trainer::new(
        4,
        2,
        TrainParams {
            max_epochs: 3,
            ..TrainParams::default()
        },
    );
    let mut seen = Vec::new();
    let reason = capped.run(&train, None, &mut |m| seen.push(m.epoch), None);
    assert_eq!(reason, StopReason::MaxEpochs);
    assert_eq!(seen, vec![1, 2, 3]);
    assert!(capped.history()[2].train_loss < capped.history()[0].train_loss);
}

/// Cancelling mid-run and resuming gives exactly the weights of an uninterrupted run.
#[test]
fn cancel_then_resume_continues_training() {
    let x = random_rows(400, 20, 11);
    let labels: Vec<u8> = (0..400).map(|i| (i % 4) as u8).collect();
    let train = dataset(x, labels, 4);
    let params = TrainParams {
        hidden: vec![32, 16],
        max_epochs: 6,
        batch_size: 30,
        ..TrainParams::default()
    };
    let mut straight = Trainer::new(20, 4, params.clone());
    assert_eq!(
        straight.run(&train, None, &mut |_| {}, None),
        StopReason::MaxEpochs
    );

    // Cancel at the end of epoch 2 (checked before the next minibatch), then in the middle of
    // epochs 3 and 5 from the minibatch callback; resume each time.
    let cancel = AtomicBool::new(false);
    let mut paused = Trainer::new(20, 4, params);
    let reason = paused.run(
        &train,
        None,
        &mut |m| {
            if m.epoch == 2 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        Some(&cancel),
    );
    assert_eq!(reason, StopReason::Cancelled);
    assert_eq!(paused.epoch(), 2);
    assert_ne!(paused.model(), straight.model());
    // 400 rows in batches of 30: 14 minibatches per epoch.
    for (epoch, batch) in [(3, 5), (3, 13), (5, 1)] {
        cancel.store(false, Ordering::Relaxed);
        let mut seen = Vec::new();
        let reason = paused.run_with_progress(
            &train,
            None,
            &mut |_| {},
            &mut |p| {
                seen.push((p.epoch, p.batch));
                assert_eq!(p.batches, 14);
                if (p.epoch, p.batch) == (epoch, batch) {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
            Some(&cancel),
        );
        assert_eq!(reason, StopReason::Cancelled);
        assert_eq!(seen.last(), Some(&(epoch, batch)), "stopped right after");
        assert_eq!(paused.epoch(), epoch - 1, "mid-epoch");
        assert_ne!(paused.model(), straight.model());
    }
    cancel.store(false, Ordering::Relaxed);
    let mut batches = 0;
    let reason = paused.run_with_progress(
        &train,
        None,
        &mut |_| {},
        &mut |_| batches += 1,
        Some(&cancel),
    );
    assert_eq!(reason, StopReason::MaxEpochs);
    // What was left: epoch 5 after its first minibatch, and epoch 6.
    assert_eq!(batches, 13 + 14);
    assert_eq!(paused.epoch(), 6);
    assert_eq!(paused.model(), straight.model());
    let losses = |t: &Trainer| t.history().iter().map(|m| m.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&paused), losses(&straight));

    // More epochs after MaxEpochs.
    paused.set_max_epochs(7);
    assert_eq!(
        paused.run(&train, None, &mut |_| {}, None),
        StopReason::MaxEpochs
    );
    assert_eq!(paused.epoch(), 7);
}

/// A trainer run to its epoch cap on `train` in a rayon pool of `threads` threads.
fn trained_on(threads: usize, train: &Dataset, params: &TrainParams) -> Trainer {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = Trainer::new(train.n_features(), train.n_classes(), params.clone());
        t.run(train, None, &mut |_| {}, None);
        t
    })
}

/// The same seed gives the same weights, whether rayon has one thread or several.
#[test]
fn reproducible_across_thread_counts() {
    let x = random_rows(300, 50, 4);
    let labels: Vec<u8> = (0..300).map(|i| (i % 5) as u8).collect();
    let train = dataset(x, labels, 5);
    let params = TrainParams {
        hidden: vec![64, 32],
        max_epochs: 3,
        batch_size: 64,
        seed: 42,
        ..TrainParams::default()
    };
    let train_with = |threads: usize| trained_on(threads, &train, &params).model().clone();
    let one = train_with(1);
    assert_eq!(one, train_with(2));
    assert_eq!(one, train_with(3));
    let mut other_seed = Trainer::new(
        50,
        5,
        TrainParams {
            seed: 43,
            ..params.clone()
        },
    );
    other_seed.run(&train, None, &mut |_| {}, None);
    assert_ne!(&one, other_seed.model());
}

#[test]
fn npz_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.npz");
    let mlp = Mlp::new(&[12, 7, 5, 3], 2);
    write_model_file(&mlp, &path);
    assert_eq!(load_npz(&path).unwrap(), mlp);
    let other = Mlp::new(&[12, 4], 3);
    write_model_file(&other, &path);
    assert_eq!(load_npz(&path).unwrap(), other);
}

/// An `.npy` entry of float64 values, written by `ndarray-npy` as NumPy would.
fn npy_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    let mut bytes = Vec::new();
    ndarray::ArrayD::from_shape_vec(shape, values.to_vec())
        .unwrap()
        .write_npy(&mut bytes)
        .unwrap();
    bytes
}

fn write_zip(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// The checked-in model files, written by numpy itself (`scripts/make_npz_fixtures.py`).
fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/npz")
        .join(name)
}

/// The network every fixture holds, computed from the script's formula: weights
/// `((7 k) mod 23 - 11) / 8` (exact in f32) and biases `0.1 (c + 1) (i + 1)` rounded from f64
/// to the nearest f32.
fn fixture_model() -> Mlp {
    let sizes = [6usize, 5, 4, 3];
    let mut coefs = Vec::new();
    let mut intercepts = Vec::new();
    for (i, pair) in sizes.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        coefs.push(Array2::from_shape_fn((fan_in, fan_out), |(r, c)| {
            let k = r * fan_out + c;
            ((7 * k) % 23) as f32 / 8.0 - 11.0 / 8.0
        }));
        intercepts.push(Array1::from_shape_fn(fan_out, |c| {
            (0.1 * (c + 1) as f64 * (i + 1) as f64) as f32
        }));
    }
    Mlp::from_layers(coefs, intercepts, Activation::Relu, true)
}

/// Files numpy wrote as a scikit-learn user would save a model: `savez` of float32 and float64
/// arrays, `savez_compressed`, Fortran-order weights, and an archive whose directory records
/// are all zip64. Each opens as the same network.
#[test]
fn opens_model_files_numpy_wrote() {
    let expected = fixture_model();
    // The formula itself, spot-checked by hand: k = 1 * 5 + 2 = 7, (49 mod 23 - 11) / 8 = -1.
    assert_eq!(expected.coefs[0][(1, 2)], -1.0);
    assert_eq!(expected.intercepts[2][1], 0.6f32);
    for name in [
        "model_f32.npz",
        "model_f64.npz",
        "model_compressed.npz",
        "model_fortran.npz",
        "model_zip64.npz",
    ] {
        let mlp = load_npz(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(mlp, expected, "{name}");
    }
    // The fixtures are what their names say (so that each case is really exercised).
    let raw = |name: &str| std::fs::read(fixture(name)).unwrap();
    let zip64_end = |b: &[u8]| b.windows(4).any(|w| w == b"PK\x06\x06");
    assert!(zip64_end(&raw("model_zip64.npz")));
    assert!(!zip64_end(&raw("model_f32.npz")));
    let entry = |name: &str, entry: &str| {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(fixture(name)).unwrap()).unwrap();
        let mut f = zip.by_name(entry).unwrap();
        let method = f.compression();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        (method, String::from_utf8_lossy(&bytes[..128]).into_owned())
    };
    let (method, header) = entry("model_compressed.npz", "coefs_0.npy");
    assert_eq!(method, zip::CompressionMethod::Deflated);
    assert!(header.contains("'descr': '<f8'"), "{header}");
    let (method, header) = entry("model_f32.npz", "coefs_0.npy");
    assert_eq!(method, zip::CompressionMethod::Stored);
    assert!(header.contains("'fortran_order': False"), "{header}");
    let (_, header) = entry("model_fortran.npz", "coefs_0.npy");
    assert!(header.contains("'fortran_order': True"), "{header}");
}

/// The `.npz` layerscope writes is the one `scripts/make_npz_fixtures.py` checked with
/// `numpy.load` (byte for byte: the zip crate writes no clock time), and each of its `.npy`
/// entries carries the header numpy writes for that array (same dictionary, 64-byte aligned,
/// version 1.0) and numpy's data bytes.
///
/// `LAYERSCOPE_BLESS_FIXTURES=1` rewrites the pinned file instead; then run the script.
#[test]
fn npz_written_by_layerscope_is_pinned() {
    let mlp = load_npz(&fixture("model_f32.npz")).unwrap();
    let mut ours = Vec::new();
    write_model(&mlp, &mut ours).unwrap();
    let pinned = fixture("layerscope_model_f32.npz");
    if std::env::var_os("LAYERSCOPE_BLESS_FIXTURES").is_some() {
        std::fs::write(&pinned, &ours).unwrap();
    }
    let on_disk = std::fs::read(&pinned).unwrap();
    assert!(
        ours == on_disk,
        "the .npz writer changed: check the new file with numpy (see \
         scripts/make_npz_fixtures.py)"
    );

    let entries = |bytes: Vec<u8>| {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut out = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).unwrap();
            out.push((f.name().to_owned(), b));
        }
        out.sort();
        out
    };
    let theirs = entries(std::fs::read(fixture("model_f32.npz")).unwrap());
    let (ours, meta): (Vec<_>, Vec<_>) = entries(ours)
        .into_iter()
        .partition(|(name, _)| name.ends_with(".npy"));
    // Beside numpy's arrays, the activations (a trained model's file also has its options).
    assert_eq!(
        meta,
        vec![(
            "meta.json".to_owned(),
            b"{\"format\": \"layerscope-model/1\", \"activation\": \"relu\", \
              \"out_activation\": \"softmax\"}\n"
                .to_vec()
        )]
    );
    assert_eq!(
        ours.iter().map(|e| &e.0).collect::<Vec<_>>(),
        theirs.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
        let (ha, da) = split_npy(a);
        let (hb, db) = split_npy(b);
        assert_eq!(da, db, "{name}: data bytes");
        assert_eq!(&a[..8], b"\x93NUMPY\x01\x00", "{name}: version 1.0");
        assert_eq!((a.len() - da.len()) % 64, 0, "{name}: aligned data");
        assert_eq!(npy_dict(ha), npy_dict(hb), "{name}: header");
    }
    // One header against numpy's `save` of the same array, on its own.
    let numpy = std::fs::read(fixture("array_f32_3x2.npy")).unwrap();
    let mut ours = Vec::new();
    mlp.coefs[0]
        .slice(ndarray::s![..3, ..2])
        .write_npy(&mut ours)
        .unwrap();
    assert_eq!(split_npy(&ours).1, split_npy(&numpy).1);
    assert_eq!(
        npy_dict(split_npy(&ours).0),
        vec![
            ("descr".to_owned(), "'<f4'".to_owned()),
            ("fortran_order".to_owned(), "False".to_owned()),
            ("shape".to_owned(), "(3, 2)".to_owned()),
        ]
    );
    assert_eq!(npy_dict(split_npy(&ours).0), npy_dict(split_npy(&numpy).0));
}

/// A version 1.0 `.npy` file's header text and data bytes.
fn split_npy(bytes: &[u8]) -> (&str, &[u8]) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.ends_with('\n'));
    (header, &bytes[10 + len..])
}

/// The header dictionary's `(key, value)` pairs as text, whitespace and a trailing comma aside.
fn npy_dict(header: &str) -> Vec<(String, String)> {
    let body = header.trim().trim_start_matches('{').trim_end_matches('}');
    let mut pairs = Vec::new();
    let mut rest = body;
    while let Some(colon) = rest.find(':') {
        let key = rest[..colon].trim().trim_matches(|c| c == ',' || c == ' ');
        let after = rest[colon + 1..].trim_start();
        let end = if after.starts_with('(') {
            after.find(')').unwrap() + 1
        } else {
            after.find([',', '}']).unwrap_or(after.len())
        };
        pairs.push((
            key.trim_matches('\'').to_owned(),
            after[..end].trim().to_owned(),
        ));
        rest = &after[end..];
    }
    pairs.sort();
    pairs
}

fn error_text(path: &Path) -> String {
    let e = load_npz(path).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "the message names the file: {text}"
    );
    text
}

#[test]
fn malformed_model_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();

    let not_zip = dir.path().join("not-a-zip.npz");
    std::fs::write(&not_zip, b"hello, not an archive").unwrap();
    let text = error_text(&not_zip);
    assert!(text.contains("not a zip archive"), "{text}");

    let missing = dir.path().join("missing.npz");
    write_zip(&missing, &[("coefs_0.npy", npy_f64(&[2, 2], &[0.0; 4]))]);
    let text = error_text(&missing);
    assert!(text.contains("no intercepts_0"), "{text}");

    let empty = dir.path().join("other.npz");
    write_zip(&empty, &[("weights.npy", npy_f64(&[2], &[0.0; 2]))]);
    let text = error_text(&empty);
    assert!(
        text.contains("no array coefs_0") && text.contains("found: weights"),
        "{text}"
    );

    let unchained = dir.path().join("unchained.npz");
    write_zip(
        &unchained,
        &[
            ("coefs_0.npy", npy_f64(&[4, 3], &[0.0; 12])),
            ("intercepts_0.npy", npy_f64(&[3], &[0.0; 3])),
            ("coefs_1.npy", npy_f64(&[5, 2], &[0.0; 10])),
            ("intercepts_1.npy", npy_f64(&[2], &[0.0; 2])),
        ],
    );
    let text = error_text(&unchained);
    assert!(
        text.contains("do not chain") && text.contains("3 columns") && text.contains("5 rows"),
        "{text}"
    );

    let bad_bias = dir.path().join("bias.npz");
    write_zip(
        &bad_bias,
        &[
            ("coefs_0.npy", npy_f64(&[4, 3], &[0.0; 12])),
            ("intercepts_0.npy", npy_f64(&[2], &[0.0; 2])),
        ],
    );
    let text = error_text(&bad_bias);
    assert!(text.contains("intercepts_0 has 2 values"), "{text}");

    let mut int_bytes = Vec::new();
    ndarray::arr1(&[0i64, 0]).write_npy(&mut int_bytes).unwrap();
    let ints = dir.path().join("ints.npz");
    write_zip(
        &ints,
        &[
            ("coefs_0.npy", npy_f64(&[1, 2], &[0.0; 2])),
            ("intercepts_0.npy", int_bytes),
        ],
    );
    let text = error_text(&ints);
    assert!(text.contains("dtype <i8") && text.contains("<f8"), "{text}");

    // A header for 3 x 2 values followed by only 4 of them.
    let mut cut = npy_f64(&[3, 2], &[0.0; 6]);
    cut.truncate(cut.len() - 16);
    let short = dir.path().join("short.npz");
    write_zip(
        &short,
        &[
            ("coefs_0.npy", cut),
            ("intercepts_0.npy", npy_f64(&[2], &[0.0; 2])),
        ],
    );
    let text = error_text(&short);
    assert!(
        text.contains("coefs_0.npy") && text.contains("cut short"),
        "{text}"
    );

    let infinite = dir.path().join("infinite.npz");
    write_zip(
        &infinite,
        &[
            ("coefs_0.npy", npy_f64(&[1, 2], &[0.0, f64::INFINITY])),
            ("intercepts_0.npy", npy_f64(&[2], &[0.0; 2])),
        ],
    );
    let text = error_text(&infinite);
    assert!(
        text.contains("coefs_0.npy") && text.contains("NaN or infinite"),
        "{text}"
    );

    let flat = dir.path().join("flat.npz");
    write_zip(
        &flat,
        &[
            ("coefs_0.npy", npy_f64(&[4], &[0.0; 4])),
            ("intercepts_0.npy", npy_f64(&[2], &[0.0; 2])),
        ],
    );
    let text = error_text(&flat);
    assert!(text.contains("coefs_0 is not 2-D"), "{text}");

    let absent = dir.path().join("absent.npz");
    assert!(error_text(&absent).contains("cannot open"));
}

#[test]
fn input_width_mismatch_is_a_clear_error() {
    let mlp = Mlp::new(&[64, 8, 10], 0);
    assert!(mlp.check_fits(64, 10).is_ok());
    let e = mlp.check_fits(784, 10).unwrap_err();
    assert!(matches!(e, ModelError::Mismatch { .. }));
    let text = e.to_string();
    assert!(
        text.contains("64 inputs") && text.contains("784 features"),
        "{text}"
    );
}

/// The notebook's network on the on-board digits, scaled to [0, 1], 50/50 split, seed 0: at
/// least 0.94 test accuracy (scikit-learn reaches 0.948 at convergence).
#[test]
fn onboard_digits_reach_94_percent() {
    let started = Instant::now();
    let full = data::load_onboard().unwrap().into_unit_scale();
    let split = full.split(0.5, 0).unwrap();
    let params = TrainParams {
        max_epochs: 12,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(full.n_features(), full.n_classes(), params);
    trainer.run(&split.train, Some(&split.test), &mut |_| {}, None);
    let last = trainer.history().last().unwrap();
    let predicted = trainer.model().predict(split.test.features.view());
    let confusion = confusion_matrix(&split.test.labels, &predicted, 10);
    assert_eq!(confusion.sum(), split.test.n_rows());
    let diagonal: usize = confusion.diag().sum();
    let accuracy = diagonal as f64 / split.test.n_rows() as f64;
    assert!((accuracy - last.test_accuracy.unwrap()).abs() < 1e-12);
    let per_class = per_class_accuracy(&confusion);
    assert!(per_class.iter().all(|&a| a > 0.85), "{per_class:?}");
    eprintln!(
        "on-board digits: test accuracy {accuracy:.4} after {} epochs, {:.1} s",
        trainer.epoch(),
        started.elapsed().as_secs_f64()
    );
    assert!(accuracy >= 0.94, "test accuracy {accuracy}");
    // The fast path's probabilities (sparse first layer, GEMM) against an independent f64
    // pass, on a few test rows.
    let p = trainer.model().predict_proba(split.test.features.view());
    for r in (0..split.test.n_rows()).step_by(997) {
        let row = split.test.features.row(r).mapv(f64::from);
        let want = softmax_f64(&logits_f64(trainer.model(), row.view()));
        for (got, want) in p.row(r).iter().zip(want) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-4,
                "row {r}: {got} vs {want}"
            );
        }
    }
}

/// The GEMM gives bit-identical products on one thread and on several, at the training shapes
/// (plain and transposed operands), so training is reproducible whatever the thread count.
#[test]
fn gemm_is_independent_of_thread_count() {
    use layerscope::nn::gemm;
    let a = random_rows(200, 784, 21);
    let b = random_rows(784, 512, 22);
    let d = random_rows(200, 512, 23);
    let product = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut forward = d.clone();
            gemm(1.0, a.view(), b.view(), 1.0, forward.view_mut());
            let mut weight_grad = Array2::zeros((784, 512));
            gemm(0.005, a.t(), d.view(), 0.0, weight_grad.view_mut());
            let mut delta = Array2::zeros((200, 784));
            gemm(1.0, d.view(), b.t(), 0.0, delta.view_mut());
            (forward, weight_grad, delta)
        })
    };
    let one = product(1);
    assert_eq!(one, product(2));
    assert_eq!(one, product(4));
    // And it is the product: spot-check one element of each in f64.
    let dot = |r: ndarray::ArrayView1<f32>, c: ndarray::ArrayView1<f32>| -> f64 {
        r.iter()
            .zip(c)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    };
    let f = dot(a.row(3), b.column(7)) + f64::from(d[(3, 7)]);
    assert!((f64::from(one.0[(3, 7)]) - f).abs() < 1e-3 * f.abs());
    let g = 0.005 * dot(a.column(5), d.column(9));
    assert!((f64::from(one.1[(5, 9)]) - g).abs() < 1e-3 * g.abs());
    let h = dot(d.row(2), b.row(11));
    assert!((f64::from(one.2[(2, 11)]) - h).abs() < 1e-3 * h.abs());
}

/// The trainer can move to a background thread.
#[test]
fn trainer_is_send() {
    fn send<T: Send>() {}
    send::<Trainer>();
    send::<Mlp>();
}

/// A network whose weights hold a NaN has a NaN training loss in its first epoch: `run` stops
/// there with `Diverged`, reports that epoch, and refuses to go on when called again.
#[test]
fn poisoned_weights_diverge_in_the_first_epoch() {
    let x = random_rows(40, 5, 31);
    let labels: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
    let train = dataset(x, labels, 2);
    let mut mlp = Mlp::new(&[5, 4, 2], 3);
    mlp.coefs[0][(2, 1)] = f32::NAN;
    let mut trainer = Trainer::from_model(
        mlp,
        TrainParams {
            batch_size: 10,
            ..TrainParams::default()
        },
    );
    let mut seen = Vec::new();
    let reason = trainer.run(&train, Some(&train), &mut |m| seen.push(m.train_loss), None);
    assert_eq!(reason, StopReason::Diverged { epoch: 1 });
    assert_eq!(trainer.epoch(), 1);
    assert_eq!(seen.len(), 1);
    assert!(seen[0].is_nan());
    assert_eq!(
        trainer.run(&train, None, &mut |_| panic!("no more epochs"), None),
        StopReason::Diverged { epoch: 1 }
    );
    assert_eq!(trainer.epoch(), 1);
}

/// A learning rate far too large sends the weights to infinity within a few epochs: the run
/// stops with `Diverged` at the first epoch whose loss is not finite, not at `max_epochs`.
#[test]
fn a_huge_learning_rate_diverges() {
    let x = random_rows(60, 6, 32);
    let labels: Vec<u8> = (0..60).map(|i| (i % 3) as u8).collect();
    let train = dataset(x, labels, 3);
    let params = TrainParams {
        hidden: vec![8],
        batch_size: 20,
        learning_rate: 1e37,
        max_epochs: 50,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(6, 3, params);
    let reason = trainer.run(&train, None, &mut |_| {}, None);
    let StopReason::Diverged { epoch } = reason else {
        panic!("expected divergence, got {reason:?}");
    };
    let history = trainer.history();
    assert_eq!(epoch, history.len());
    assert!(epoch < 50);
    assert!(!history[epoch - 1].train_loss.is_finite());
    assert!(
        history[..epoch - 1]
            .iter()
            .all(|m| m.train_loss.is_finite())
    );
    // The same settings at scikit-learn's step size train without trouble.
    let mut sane = Trainer::new(
        6,
        3,
        TrainParams {
            hidden: vec![8],
            batch_size: 20,
            max_epochs: 50,
            ..TrainParams::default()
        },
    );
    assert_eq!(
        sane.run(&train, None, &mut |_| {}, None),
        StopReason::MaxEpochs
    );
}

/// `load_model` names the file in every message: a file that does not open, a malformed one,
/// and a model of the wrong shape for the data.
#[test]
fn load_model_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digits-model.npz");
    let mlp = Mlp::new(&[64, 8, 10], 0);
    write_model_file(&mlp, &path);
    assert_eq!(load_model(&path, 64, 10).unwrap(), mlp);

    let e = format!("{:#}", load_model(&path, 784, 10).unwrap_err());
    assert!(
        e.contains("digits-model.npz") && e.contains("64 inputs") && e.contains("784 features"),
        "{e}"
    );
    let e = format!("{:#}", load_model(&path, 64, 2).unwrap_err());
    assert!(
        e.contains("digits-model.npz") && e.contains("10 classes") && e.contains("2 classes"),
        "{e}"
    );
    let absent = dir.path().join("absent-model.npz");
    let e = format!("{:#}", load_model(&absent, 64, 10).unwrap_err());
    assert!(
        e.contains("absent-model.npz") && e.contains("cannot open"),
        "{e}"
    );
    let garbage = dir.path().join("garbage-model.npz");
    std::fs::write(&garbage, b"not a zip").unwrap();
    let e = format!("{:#}", load_model(&garbage, 64, 10).unwrap_err());
    assert!(
        e.contains("garbage-model.npz") && e.contains("not a zip archive"),
        "{e}"
    );
}

/// One epoch of one full batch takes exactly one Adam step from the gradient `loss_gradient`
/// gives; the step is scikit-learn's `AdamOptimizer` written out here: with zero moments,
/// m = 0.1 g, v = 0.001 g^2 and lr_t = lr sqrt(1 - 0.999) / (1 - 0.9), so each parameter moves
/// by lr_t m / (sqrt(v) + eps).
#[test]
fn one_epoch_is_one_adam_step() {
    let x = random_rows(12, 5, 41);
    let labels: Vec<u8> = (0..12).map(|i| (i % 3) as u8).collect();
    let train = dataset(x.clone(), labels.clone(), 3);
    let params = TrainParams {
        hidden: vec![4],
        batch_size: 12,
        shuffle: false,
        max_epochs: 1,
        learning_rate: 0.01,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(5, 3, params.clone());
    let before = trainer.model().clone();
    trainer.run(&train, None, &mut |_| {}, None);
    let (_, cg, ig) = loss_gradient(&before, x.view(), &labels, params.alpha);
    let lr_t = 0.01 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
    let step = |p: f32, g: f32| {
        let g = f64::from(g);
        let (m, v) = (0.1 * g, 0.001 * g * g);
        f64::from(p) - lr_t * m / (v.sqrt() + 1e-8)
    };
    let after = trainer.model();
    let mut moved = 0;
    for layer in 0..2 {
        for ((&p0, &g), &p1) in before.coefs[layer]
            .iter()
            .zip(&cg[layer])
            .zip(&after.coefs[layer])
        {
            let want = step(p0, g);
            assert!((f64::from(p1) - want).abs() < 1e-6, "{p1} vs {want}");
            moved += usize::from(p1 != p0);
        }
        for ((&p0, &g), &p1) in before.intercepts[layer]
            .iter()
            .zip(&ig[layer])
            .zip(&after.intercepts[layer])
        {
            let want = step(p0, g);
            assert!((f64::from(p1) - want).abs() < 1e-6, "{p1} vs {want}");
        }
    }
    assert!(moved > 20, "the step moved the weights");
}

/// The 3 -> 2 -> 3 network of `hand_network` below, with each activation, against values worked
/// out by hand. Row [1, 2, 3] has hidden pre-activations [-0.9, 2.5]; row [0, 0, 2] has
/// [-1.9, -0.5]. Output weights [[1, 0, -1], [0.2, -0.4, 1]], biases [0, 1, 0.5]: logits
/// [h0 + 0.2 h1, 1 - 0.4 h1, 0.5 - h0 + h1].
fn hand_network(activation: Activation, softmax: bool) -> Mlp {
    Mlp::from_layers(
        vec![
            ndarray::arr2(&[[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]]),
            ndarray::arr2(&[[1.0, 0.0, -1.0], [0.2, -0.4, 1.0]]),
        ],
        vec![ndarray::arr1(&[0.1, -0.5]), ndarray::arr1(&[0.0, 1.0, 0.5])],
        activation,
        softmax,
    )
}

/// Each activation's forward output against hand-computed hidden values (tanh(-0.9) =
/// -0.716298, tanh(2.5) = 0.986614, 1 / (1 + e^0.9) = 0.289050, 1 / (1 + e^-2.5) = 0.924142,
/// tanh(-1.9) = -0.956237, tanh(-0.5) = -0.462117, 1 / (1 + e^1.9) = 0.130108, 1 / (1 + e^0.5)
/// = 0.377541) and the logits they give, through the dense path (two rows) and the sparse first
/// layer (the same rows among zero rows); and a model without a softmax returns those logits as
/// its output while `predict_proba` still gives their softmax.
#[test]
fn each_activation_forward_matches_hand_computed_values() {
    let hidden: [(Activation, [[f64; 2]; 2]); 4] = [
        (Activation::Identity, [[-0.9, 2.5], [-1.9, -0.5]]),
        (Activation::Relu, [[0.0, 2.5], [0.0, 0.0]]),
        (
            Activation::Tanh,
            [[-0.716_298, 0.986_614], [-0.956_237, -0.462_117]],
        ),
        (
            Activation::Logistic,
            [[0.289_050, 0.924_142], [0.130_108, 0.377_541]],
        ),
    ];
    let rows = ndarray::arr2(&[[1.0f32, 2.0, 3.0], [0.0, 0.0, 2.0]]);
    let mut with_zeros = Array2::<f32>::zeros((8, 3));
    with_zeros.row_mut(0).assign(&rows.row(0));
    with_zeros.row_mut(1).assign(&rows.row(1));
    for (activation, h) in hidden {
        let logits: Vec<[f64; 3]> = h
            .iter()
            .map(|h| [h[0] + 0.2 * h[1], 1.0 - 0.4 * h[1], 0.5 - h[0] + h[1]])
            .collect();
        for softmax in [true, false] {
            let m = hand_network(activation, softmax);
            for x in [rows.view(), with_zeros.view()] {
                let got_h = m.layer_output(x, 2);
                let out = m.layer_output(x, 3);
                let probs = m.predict_proba(x);
                for r in 0..2 {
                    for j in 0..2 {
                        let got = f64::from(got_h[(r, j)]);
                        assert!(
                            (got - h[r][j]).abs() < 2e-6,
                            "{activation} row {r} unit {j}: {got} vs {}",
                            h[r][j]
                        );
                    }
                    let want_p = softmax_f64(&logits[r]);
                    for c in 0..3 {
                        let want = if softmax { want_p[c] } else { logits[r][c] };
                        let got = f64::from(out[(r, c)]);
                        assert!(
                            (got - want).abs() < 5e-6,
                            "{activation} softmax {softmax} row {r} class {c}: {got} vs {want}"
                        );
                        assert!((f64::from(probs[(r, c)]) - want_p[c]).abs() < 5e-6);
                    }
                }
            }
        }
    }
}

/// The activation, the output and the training options go into the model file and come back;
/// a file without `meta.json` (numpy's, or an older layerscope's) opens as ReLU with a softmax,
/// and `meta.json` is an entry any zip reader sees by that name.
#[test]
fn model_file_keeps_activation_and_training_options() {
    let dir = tempfile::tempdir().unwrap();
    let mut mlp = Mlp::initialised(&[4, 3, 2], Activation::Logistic, 5);
    mlp.softmax = false;
    let record = layerscope::nn::TrainingRecord {
        params: TrainParams {
            hidden: vec![3],
            activation: Activation::Logistic,
            learning_rate: 0.002,
            alpha: 0.5,
            batch_size: 17,
            seed: 9,
            ..TrainParams::default()
        },
        epochs: 4,
        data: vec![("data".to_owned(), "digits.tsv".to_owned())],
    };
    let path = dir.path().join("m.npz");
    let mut bytes = Vec::new();
    layerscope::nn::write_trained_model(&mlp, Some(&record), &mut bytes).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let back = load_npz(&path).unwrap();
    assert_eq!(back, mlp);
    assert_eq!(layerscope::nn::read_training(&path).unwrap(), Some(record));
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "coefs_0.npy",
            "coefs_1.npy",
            "intercepts_0.npy",
            "intercepts_1.npy",
            "meta.json"
        ]
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("meta.json").unwrap(), &mut text).unwrap();
    assert!(text.contains("\"activation\": \"logistic\", \"out_activation\": \"identity\""));
    assert!(text.contains("\"learning_rate_init\": 0.002, \"alpha\": 0.5, \"batch_size\": 17"));

    // write_model records the activations, no training.
    let plain = dir.path().join("plain.npz");
    write_model_file(&mlp, &plain);
    assert_eq!(load_npz(&plain).unwrap().activation, Activation::Logistic);
    assert_eq!(layerscope::nn::read_training(&plain).unwrap(), None);

    // Without meta.json: ReLU, softmax, no training record.
    let old = dir.path().join("old.npz");
    write_zip(
        &old,
        &[
            ("coefs_0.npy", npy_f64(&[4, 2], &[0.5; 8])),
            ("intercepts_0.npy", npy_f64(&[2], &[0.0; 2])),
        ],
    );
    let m = load_npz(&old).unwrap();
    assert_eq!((m.activation, m.softmax), (Activation::Relu, true));
    assert_eq!(layerscope::nn::read_training(&old).unwrap(), None);

    // A malformed meta.json is a clear error naming the file and the entry.
    let bad = dir.path().join("bad.npz");
    write_zip(
        &bad,
        &[
            ("coefs_0.npy", npy_f64(&[4, 2], &[0.5; 8])),
            ("intercepts_0.npy", npy_f64(&[2], &[0.0; 2])),
            ("meta.json", b"{\"activation\": \"softplus\"}".to_vec()),
        ],
    );
    let err = load_npz(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.npz: meta.json: activation is \"softplus\": expected identity"),
        "{err}"
    );
}

/// `.safetensors` and `.onnx` files go to their own readers (not the .npz one), with a message
/// naming the file.
#[test]
fn load_model_dispatches_on_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["m.safetensors", "m.ONNX"] {
        let path = dir.path().join(name);
        std::fs::write(&path, b"not an npz").unwrap();
        let err = format!("{:#}", load_model(&path, 4, 2).unwrap_err());
        assert!(err.contains(name), "{err}");
        assert!(!err.contains("zip"), "{name} was read as an .npz: {err}");
    }
}

/// Rows like the digits' pixels: about 80% zeros (the first layer's sparse kernels run on them),
/// the rest in (0, 1].
fn sparse_rows(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || {
        if rng.random_range(0.0..1.0) < 0.8 {
            0.0
        } else {
            rng.random_range(0.01..1.0)
        }
    })
}

/// Labels a network can learn from `sparse_rows`: which of five column bands holds the most.
fn band_labels(x: &Array2<f32>) -> Vec<u8> {
    let band = x.ncols() / 5;
    x.rows()
        .into_iter()
        .map(|r| {
            let sums: Vec<f32> = (0..5)
                .map(|b| r.iter().skip(b * band).take(band).sum())
                .collect();
            layerscope::nn::argmax(&sums) as u8
        })
        .collect()
}

/// Training on mostly-zero rows (the sparse first layer, forward and weight gradient) gives the
/// same weights on one thread and on several.
#[test]
fn sparse_inputs_reproducible_across_thread_counts() {
    let x = sparse_rows(500, 120, 7);
    let labels = band_labels(&x);
    let train = dataset(x, labels, 5);
    let params = TrainParams {
        hidden: vec![96, 40],
        max_epochs: 3,
        batch_size: 90,
        seed: 3,
        ..TrainParams::default()
    };
    let train_with = |threads: usize| {
        let t = trained_on(threads, &train, &params);
        (t.model().clone(), t.history()[2].train_loss.to_bits())
    };
    let one = train_with(1);
    assert_eq!(one, train_with(2));
    assert_eq!(one, train_with(3));
    let untrained = Trainer::new(120, 5, params.clone());
    assert_ne!(&one.0, untrained.model());
}

/// The test figures evaluated only for the last epoch (`set_test_every_epoch(false)`, then
/// `test_last_epoch`) are those of a run that evaluates every epoch, and the training is the
/// same; the skipped epochs have none.
#[test]
fn test_figures_on_demand_equal_every_epoch() {
    let x = sparse_rows(700, 120, 9);
    let labels = band_labels(&x);
    let all = dataset(x, labels, 5);
    let split = all.split(0.3, 1).unwrap();
    let params = TrainParams {
        hidden: vec![64, 32],
        max_epochs: 4,
        batch_size: 100,
        seed: 5,
        ..TrainParams::default()
    };
    let mut every = Trainer::new(120, 5, params.clone());
    every.run(&split.train, Some(&split.test), &mut |_| {}, None);
    let mut last_only = Trainer::new(120, 5, params.clone());
    assert!(
        last_only.test_last_epoch(&split.test).is_none(),
        "no epoch yet"
    );
    last_only.set_test_every_epoch(false);
    let mut seen = Vec::new();
    last_only.run(
        &split.train,
        Some(&split.test),
        &mut |m| seen.push(m.test_accuracy),
        None,
    );
    assert_eq!(seen, vec![None; 4]);
    assert_eq!(every.model(), last_only.model());
    let want = every.history().last().unwrap().clone();
    assert!(want.test_loss.is_some_and(f64::is_finite), "{want:?}");
    let got = last_only.test_last_epoch(&split.test).unwrap().clone();
    let figures = |m: &layerscope::nn::EpochMetrics| {
        (
            m.epoch,
            m.train_loss.to_bits(),
            m.test_loss.map(f64::to_bits),
            m.test_accuracy.map(f64::to_bits),
        )
    };
    assert_eq!(figures(&got), figures(&want));
    assert_eq!(
        figures(last_only.history().last().unwrap()),
        figures(&want),
        "kept in the history"
    );
    assert!(
        last_only.history()[..3]
            .iter()
            .all(|m| m.test_loss.is_none())
    );
}
