//! Networks made elsewhere (issue 16): `.safetensors` state_dicts and `.onnx` graphs written by
//! the real producers (`scripts/make_model_fixtures.py`: scikit-learn, skl2onnx, onnx.helper,
//! safetensors, checked there against onnxruntime), read back and compared with the numbers the
//! script stored beside each file; malformed files of each format refused by the binary with a
//! message and exit code 2. Also the projector export of `embed`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use layerscope::nn::import::{Activation, Network, load_file, read_onnx, read_safetensors};
use ndarray::{Array1, Array2, ArrayView2, Ix1, Ix2, OwnedRepr};
use ndarray_npy::NpzReader;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn expected(name: &str) -> NpzReader<File> {
    NpzReader::new(File::open(fixture(name)).unwrap()).unwrap()
}

fn array2(npz: &mut NpzReader<File>, name: &str) -> Array2<f64> {
    npz.by_name::<OwnedRepr<f64>, Ix2>(name).unwrap()
}

fn layerscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .args(args)
        .output()
        .unwrap()
}

/// Every layer's output (layer 2 onwards) of `net` in f64, as the file's network computes it:
/// the hidden activation the file names, a softmax at the output or raw scores.
fn forward(net: &Network, x: ArrayView2<f64>) -> Vec<Array2<f64>> {
    let mut h = x.to_owned();
    let mut outs = Vec::new();
    let n = net.coefs.len();
    for (i, (w, b)) in net.coefs.iter().zip(&net.intercepts).enumerate() {
        let w = w.mapv(f64::from);
        let b: Array1<f64> = b.mapv(f64::from);
        let mut z = h.dot(&w) + &b;
        if i + 1 < n {
            z.mapv_inplace(|v| match net.activation {
                Activation::Tanh => v.tanh(),
                Activation::Logistic => 1.0 / (1.0 + (-v).exp()),
                Activation::Relu => v.max(0.0),
                Activation::Identity => v,
            });
        } else if net.softmax {
            for mut row in z.rows_mut() {
                let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                row.mapv_inplace(|v| (v - max).exp());
                let sum = row.sum();
                row.mapv_inplace(|v| v / sum);
            }
        }
        outs.push(z.clone());
        h = z;
    }
    outs
}

fn assert_close(got: &Array2<f64>, want: &Array2<f64>, what: &str) {
    assert_eq!(got.dim(), want.dim(), "{what}: shape");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "{what}: largest difference {worst}");
}

/// A small network read from `file`: its shape and output, and every layer's output on the
/// stored inputs within 1e-5 of the numbers the script computed (and onnxruntime confirmed).
fn check_small(net: &Network, file: &str, sizes: &[usize], activation: Activation, softmax: bool) {
    assert_eq!(net.layer_sizes(), sizes, "{file}");
    assert_eq!(net.activation, activation, "{file}");
    assert_eq!(net.softmax, softmax, "{file}");
    let mut npz = expected(
        &file
            .replace(".onnx", ".expected.npz")
            .replace(".safetensors", ".expected.npz"),
    );
    let x = array2(&mut npz, "x");
    for (k, got) in forward(net, x.view()).iter().enumerate() {
        let want = array2(&mut npz, &format!("layer_{}", k + 2));
        assert_close(got, &want, &format!("{file} layer {}", k + 2));
    }
}

/// scikit-learn's MLPClassifier through skl2onnx, and the same weights as a PyTorch
/// `nn.Sequential` state_dict: layerscope's own forward pass predicts every one of the 10,000
/// on-board digits (the test split is half of them) as scikit-learn did, and gives its hidden
/// activations and probabilities within 1e-5.
#[test]
fn scikit_learn_mlp_through_onnx_and_safetensors() {
    let data = layerscope::data::load_or_onboard(None)
        .unwrap()
        .into_unit_scale();
    let mut npz = expected("sklearn_mlp.expected.npz");
    let predictions: Array1<u8> = npz.by_name::<OwnedRepr<u8>, Ix1>("predictions").unwrap();
    let hidden = array2(&mut npz, "layer_2");
    let proba = array2(&mut npz, "layer_3");
    let first = data.features.slice(ndarray::s![..20, ..]);
    for file in ["sklearn_mlp.onnx", "sklearn_mlp.safetensors"] {
        let mlp = load_file(&fixture(file)).unwrap();
        assert_eq!(mlp.layer_sizes(), [784, 16, 10], "{file}");
        let got = mlp.predict(data.features.view());
        let differ = got.iter().zip(&predictions).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "{file}: predictions that differ from scikit-learn's"
        );
        assert_close(
            &mlp.layer_output(first, 2).mapv(f64::from),
            &hidden,
            &format!("{file} layer 2"),
        );
        assert_close(
            &mlp.layer_output(first, 3).mapv(f64::from),
            &proba,
            &format!("{file} layer 3"),
        );
    }
    // The two files hold the same network.
    let a = read_onnx(&fixture("sklearn_mlp.onnx")).unwrap();
    let b = read_safetensors(&fixture("sklearn_mlp.safetensors")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.activation, Activation::Relu);
    assert!(a.softmax);
}

#[test]
fn torch_export_shapes_of_onnx() {
    let net = read_onnx(&fixture("torch_gemm_tanh.onnx")).unwrap();
    check_small(
        &net,
        "torch_gemm_tanh.onnx",
        &[8, 5, 4, 3],
        Activation::Tanh,
        false,
    );
    let net = read_onnx(&fixture("torch_matmul_sigmoid.onnx")).unwrap();
    check_small(
        &net,
        "torch_matmul_sigmoid.onnx",
        &[8, 5, 4, 3],
        Activation::Logistic,
        true,
    );
}

/// skl2onnx's binary classifier (one logistic output, then [1 - p, p]) becomes two outputs
/// with a softmax, giving scikit-learn's predict_proba.
#[test]
fn binary_classifier_becomes_two_classes() {
    let net = read_onnx(&fixture("sklearn_binary_tanh.onnx")).unwrap();
    check_small(
        &net,
        "sklearn_binary_tanh.onnx",
        &[8, 5, 2],
        Activation::Tanh,
        true,
    );
}

#[test]
fn safetensors_dtypes_names_and_metadata() {
    // Names that sort as fc_in, fc_out, hidden: the shapes put hidden in the middle.
    let net = read_safetensors(&fixture("named_f16.safetensors")).unwrap();
    check_small(
        &net,
        "named_f16.safetensors",
        &[8, 5, 4, 3],
        Activation::Relu,
        true,
    );
    // bfloat16; the activation and raw scores from __metadata__.
    let net = read_safetensors(&fixture("sequential_bf16.safetensors")).unwrap();
    check_small(
        &net,
        "sequential_bf16.safetensors",
        &[8, 5, 4, 3],
        Activation::Tanh,
        false,
    );
    // float64; layers.2 before layers.10.
    let net = read_safetensors(&fixture("sequential_f64.safetensors")).unwrap();
    check_small(
        &net,
        "sequential_f64.safetensors",
        &[8, 5, 4, 3],
        Activation::Relu,
        true,
    );
}

/// Each malformed file, given to `info --model` and to `train --model`: exit code 2, a message
/// naming the file and what is wrong, nothing written.
#[test]
fn malformed_files_are_refused_with_exit_code_2() {
    let cases: &[(&str, &[&str])] = &[
        (
            "truncated.safetensors",
            &["not a readable safetensors file"],
        ),
        (
            "int64.safetensors",
            &["tensor `2.weight` has dtype I64", "F32, F64, F16 or BF16"],
        ),
        (
            "broken.safetensors",
            &[
                "do not chain",
                "`0` gives 5 outputs, `2` takes 6",
                "0.weight [5, 8]",
            ],
        ),
        (
            "ambiguous.safetensors",
            &["order is ambiguous", "first (8 -> 4)", "`fc1`, `fc2`"],
        ),
        (
            "batchnorm.safetensors",
            &[
                "tensor `1.running_mean` is not the weight or bias of a Linear layer",
                "explores MLPs",
            ],
        ),
        ("truncated.onnx", &["not a readable ONNX model"]),
        (
            "int8.onnx",
            &["node `/fc0/Gemm` (Gemm): weight `w0` has data type INT8"],
        ),
        (
            "broken.onnx",
            &["shapes do not chain", "/fc1/Gemm", "takes 6 inputs"],
        ),
        (
            "conv.onnx",
            &[
                "node `/conv1/Conv` (Conv) is not part of an MLP",
                "explores MLPs",
            ],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("out.npz");
    for (file, words) in cases {
        let path = fixture(file);
        let path = path.to_str().unwrap();
        for args in [
            vec!["info", "--model", path],
            vec![
                "train",
                "--model",
                path,
                "--epochs",
                "1",
                "--save",
                save.to_str().unwrap(),
            ],
        ] {
            let out = layerscope(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{file} {}: {stderr}", args[0]);
            assert!(stderr.contains(file), "{file}: names the file: {stderr}");
            for w in *words {
                assert!(stderr.contains(w), "{file}: `{w}` in {stderr}");
            }
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(!save.exists(), "{file}: nothing written");
        }
    }
}

/// `info --model` describes an imported model and whether it fits the data.
#[test]
fn info_reads_every_format() {
    let out = layerscope(&[
        "info",
        "--model",
        fixture("sklearn_mlp.onnx").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("784 -> 16 -> 10 (12730 parameters)"),
        "{stdout}"
    );
    assert!(stdout.contains("fits:      yes"), "{stdout}");
    let out = layerscope(&[
        "info",
        "--model",
        fixture("named_f16.safetensors").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("8 -> 5 -> 4 -> 3"), "{stdout}");
    assert!(stdout.contains("fits:      no"), "{stdout}");
}

fn read_tsv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// `embed --projector DIR` with the skl2onnx model: each embedded layer's activations (the
/// model's own outputs for the first training images, read back exactly), the metadata with
/// its header, a sprite of ceil(sqrt(40)) = 7 thumbnails a side, one config entry per layer.
#[test]
fn projector_files_for_tensorboard() {
    let dir = tempfile::tempdir().unwrap();
    let projector = dir.path().join("projector");
    let csv = dir.path().join("embedding.csv");
    let model = fixture("sklearn_mlp.onnx");
    let out = layerscope(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "--n",
        "40",
        "--perplexity",
        "5",
        "--out",
        csv.to_str().unwrap(),
        "--projector",
        projector.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = layerscope::data::LoadOptions::default().load().unwrap();
    let mlp = load_file(&model).unwrap();
    let images = split.train.features.slice(ndarray::s![..40, ..]);
    for (k, units) in [(2, 16), (3, 10)] {
        let rows = read_tsv(&projector.join(format!("tensors-layer{k}.tsv")));
        assert_eq!(rows.len(), 40, "layer {k}");
        assert!(rows.iter().all(|r| r.len() == units), "layer {k}");
        let want = mlp.layer_output(images, k);
        for (i, row) in rows.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                assert_eq!(
                    v.parse::<f32>().unwrap(),
                    want[(i, j)],
                    "layer {k} ({i}, {j})"
                );
            }
        }
    }
    let metadata = read_tsv(&projector.join("metadata.tsv"));
    assert_eq!(metadata[0], ["label", "prediction", "split"]);
    assert_eq!(metadata.len(), 41);
    let predictions = mlp.predict(images);
    for (i, row) in metadata[1..].iter().enumerate() {
        assert_eq!(
            row[0],
            split.train.class_names[usize::from(split.train.labels[i])]
        );
        assert_eq!(row[1], split.train.class_names[usize::from(predictions[i])]);
        assert_eq!(row[2], "train");
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(
        File::open(projector.join("sprite.png")).unwrap(),
    ));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height), (7 * 28, 7 * 28));
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let config = std::fs::read_to_string(projector.join("projector_config.pbtxt")).unwrap();
    assert_eq!(config.matches("embeddings {").count(), 2);
    for needle in [
        "tensor_name: \"layer 2\"",
        "tensor_path: \"tensors-layer2.tsv\"\n  tensor_shape: 40\n  tensor_shape: 16\n",
        "tensor_path: \"tensors-layer3.tsv\"\n  tensor_shape: 40\n  tensor_shape: 10\n",
        "metadata_path: \"metadata.tsv\"",
        "image_path: \"sprite.png\"\n    single_image_dim: 28\n    single_image_dim: 28\n",
    ] {
        assert!(config.contains(needle), "{needle} in {config}");
    }
}

/// A projector folder that is a file is refused before any work, nothing written.
#[test]
fn projector_folder_must_be_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    std::fs::write(&file, "x").unwrap();
    let csv = dir.path().join("embedding.csv");
    let out = layerscope(&[
        "embed",
        "--model",
        fixture("sklearn_mlp.safetensors").to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--projector",
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a folder"), "{stderr}");
    assert!(!csv.exists());
}
