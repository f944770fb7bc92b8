//! Benchmark of the explain engine: seconds and model evaluations per image for each method, the
//! error against a high-budget permutation reference (relative L2, correlation), and the
//! equal-accuracy cost (seconds each method needs to match the notebook estimator at 200
//! iterations). On a trained MLP(512, 256) and a test image of the on-board digits.
//!
//! `cargo bench --bench explain [-- --runs 5 --reference 20000 --model PATH --quick]`
//!
//! The model is `target/bench_explain/model.npz`, trained by `scripts/bench_explain_model.py`
//! (scikit-learn, the notebook's split), which this runs when the file is missing.
//! `scripts/bench_explain.py` runs this with `--quick` next to the notebook's Python estimator.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use layerscope::explain::{
    Attribution, ClassMeanProgress, ExplainParams, Method, PreparedBackground, explain,
    explain_class_mean, explain_prepared,
};
use layerscope::nn::{Activation, Mlp};
use ndarray::{Array1, Array2, ArrayView1};

struct Args {
    model: PathBuf,
    runs: usize,
    reference: usize,
    quick: bool,
    only: Option<String>,
    progress_every: usize,
    class_mean_only: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        model: PathBuf::from("target/bench_explain/model.npz"),
        runs: 5,
        reference: 20_000,
        quick: false,
        only: None,
        progress_every: 0,
        class_mean_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--model" => args.model = PathBuf::from(it.next().expect("--model PATH")),
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--reference" => {
                args.reference = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--reference N");
            }
            "--quick" => args.quick = true,
            "--class-mean" => args.class_mean_only = true,
            "--only" => args.only = it.next(),
            "--progress-every" => {
                args.progress_every = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--progress-every N");
            }
            // The GEMM routine (nn::linalg): gemm (default) or matrixmultiply.
            "--backend" => match it.next().as_deref() {
                Some("matrixmultiply") => {
                    layerscope::nn::set_gemm_backend(layerscope::nn::GemmBackend::MatrixMultiply)
                }
                _ => layerscope::nn::set_gemm_backend(layerscope::nn::GemmBackend::Gemm),
            },
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

/// One array of an .npz written by numpy: little-endian f4/f8/i8, C order.
fn read_npy(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> (Vec<usize>, Vec<f64>) {
    let mut bytes = Vec::new();
    archive
        .by_name(&format!("{name}.npy"))
        .unwrap_or_else(|e| panic!("{name}.npy: {e}"))
        .read_to_end(&mut bytes)
        .expect("read npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name}: not an .npy");
    let (header_len, start) = if bytes[6] == 1 {
        (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10)
    } else {
        let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        (usize::try_from(n).expect("header length"), 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("utf-8 header");
    assert!(
        header.contains("'fortran_order': False"),
        "{name}: C order expected"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .expect("shape")
        .split(')')
        .next()
        .expect(")");
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = &bytes[start + header_len..];
    let values = if header.contains("'<f4'") {
        data.chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect()
    } else if header.contains("'<f8'") {
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    } else if header.contains("'<i8'") {
        data.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect()
    } else {
        panic!("{name}: unsupported dtype in {header}");
    };
    (shape, values)
}

fn load_model(path: &Path) -> (Mlp, Vec<usize>, Vec<usize>) {
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(path).expect("open model")).expect("npz");
    let mut coefs = Vec::new();
    let mut intercepts = Vec::new();
    let mut l = 0;
    while archive.by_name(&format!("coefs_{l}.npy")).is_ok() {
        let (shape, w) = read_npy(&mut archive, &format!("coefs_{l}"));
        let (_, b) = read_npy(&mut archive, &format!("intercepts_{l}"));
        coefs.push(
            Array2::from_shape_vec((shape[0], shape[1]), w.iter().map(|&v| v as f32).collect())
                .expect("weights"),
        );
        intercepts.push(b.iter().map(|&v| v as f32).collect::<Array1<f32>>());
        l += 1;
    }
    let idx = |name: &str, a: &mut zip::ZipArchive<std::fs::File>| -> Vec<usize> {
        read_npy(a, name).1.iter().map(|&v| v as usize).collect()
    };
    let train = idx("train_idx", &mut archive);
    let test = idx("test_idx", &mut archive);
    (
        Mlp::from_layers(coefs, intercepts, Activation::Relu, true),
        train,
        test,
    )
}

/// CPU seconds (user + system, all threads) this process has used: /proc/self/stat, in ticks of
/// 1/100 s. Next to wall time because the benchmark machine is shared.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command: state is 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn rel_l2(a: ArrayView1<f32>, reference: ArrayView1<f32>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (&x, &r) in a.iter().zip(reference) {
        num += (f64::from(x) - f64::from(r)).powi(2);
        den += f64::from(r).powi(2);
    }
    (num / den).sqrt()
}

fn correlation(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mb = b.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

/// Median seconds, evaluations, rel. L2 and correlation over `runs` seeds.
struct Measured {
    label: String,
    method: Method,
    samples: usize,
    seconds: f64,
    cpu_seconds: f64,
    evaluations: u64,
    rel_l2: f64,
    corr: f64,
    gap: f64,
    drift: f64,
}

#[expect(clippy::too_many_arguments)]
fn measure(
    label: &str,
    model: &Mlp,
    x: ArrayView1<f32>,
    background: &Array2<f32>,
    params: &ExplainParams,
    runs: usize,
    reference: Option<&Attribution>,
    prepared: Option<&PreparedBackground>,
) -> (Measured, Attribution) {
    let (mut secs, mut errs, mut corrs, mut gaps) = (vec![], vec![], vec![], vec![]);
    let mut last = None;
    let mut drift = 0.0f64;
    let cpu0 = cpu_seconds();
    for run in 0..runs {
        let p = ExplainParams {
            seed: params.seed + run as u64,
            ..params.clone()
        };
        let t = Instant::now();
        let a = match prepared {
            Some(pb) => explain_prepared(model, x, background.view(), Some(pb), &p, None, None),
            None => explain(model, x, background.view(), &p, None, None),
        }
        .expect("explain");
        secs.push(t.elapsed().as_secs_f64());
        if let Some(r) = reference {
            errs.push(rel_l2(a.values.view(), r.values.view()));
            corrs.push(correlation(a.values.view(), r.values.view()));
        }
        gaps.push(a.completeness_gap.abs());
        drift = drift.max(a.max_drift);
        last = Some(a);
    }
    let cpu = (cpu_seconds() - cpu0) / runs as f64;
    let a = last.expect("at least one run");
    let m = Measured {
        label: label.to_owned(),
        method: params.method,
        samples: params.samples,
        seconds: median(&mut secs),
        cpu_seconds: cpu,
        evaluations: a.model_evaluations,
        rel_l2: if errs.is_empty() {
            f64::NAN
        } else {
            median(&mut errs)
        },
        corr: if corrs.is_empty() {
            f64::NAN
        } else {
            median(&mut corrs)
        },
        gap: median(&mut gaps),
        drift,
    };
    (m, a)
}

fn main() {
    let args = parse_args();
    if !args.model.exists() {
        eprintln!(
            "{} is missing: training it with scripts/bench_explain_model.py (about 2 minutes)",
            args.model.display()
        );
        if let Some(dir) = args.model.parent() {
            std::fs::create_dir_all(dir).expect("model directory");
        }
        let status = std::process::Command::new("python3")
            .arg("scripts/bench_explain_model.py")
            .arg(&args.model)
            .status()
            .expect("python3");
        assert!(status.success(), "training the benchmark model failed");
    }
    let (model, train_idx, test_idx) = load_model(&args.model);
    let data = layerscope::data::load_onboard()
        .expect("on-board data")
        .into_unit_scale();
    let background = data.features.select(ndarray::Axis(0), &train_idx);
    let x = data.features.row(test_idx[0]).to_owned();
    let label = data.labels[test_idx[0]];
    let threads = rayon::current_num_threads();
    eprintln!(
        "model {:?}, background {} rows, test image {} (label {label}), {threads} threads",
        model.layer_sizes(),
        background.nrows(),
        test_idx[0]
    );

    let base = ExplainParams {
        progress_every: args.progress_every,
        ..ExplainParams::default()
    };
    let notebook = ExplainParams {
        method: Method::Notebook,
        samples: 200,
        ..base.clone()
    };
    let permutation = ExplainParams {
        method: Method::Permutation,
        samples: 200,
        ..base.clone()
    };
    let prepared = PreparedBackground::new(&model, background.view()).expect("prepare");
    if args.class_mean_only {
        class_mean_table(&model, &data, &background, &test_idx, label, args.runs);
        return;
    }
    if let Some(only) = &args.only {
        // Profiling aid: one method at its default budget, `--runs` times.
        let p = match only.as_str() {
            "notebook" => notebook.clone(),
            _ => permutation.clone(),
        };
        let (m, _) = measure(
            only,
            &model,
            x.view(),
            &background,
            &p,
            args.runs,
            None,
            None,
        );
        println!(
            "{only}: {:.4} s wall, {:.4} s CPU",
            m.seconds, m.cpu_seconds
        );
        return;
    }
    if args.quick {
        let (nb, _) = measure(
            "notebook",
            &model,
            x.view(),
            &background,
            &notebook,
            args.runs,
            None,
            None,
        );
        let (pm, _) = measure(
            "perm",
            &model,
            x.view(),
            &background,
            &permutation,
            args.runs,
            None,
            None,
        );
        let (pp, a) = measure(
            "perm, prepared",
            &model,
            x.view(),
            &background,
            &permutation,
            args.runs,
            None,
            Some(&prepared),
        );
        println!(
            "BENCH_JSON {{\"notebook_s\": {}, \"permutation_s\": {}, \"permutation_prepared_s\": {}, \"notebook_cpu_s\": {}, \"permutation_cpu_s\": {}, \"permutation_prepared_cpu_s\": {}, \"notebook_evals\": {}, \"permutation_evals\": {}, \"permutation_prepared_evals\": {}, \"class\": {}, \"output\": {}, \"threads\": {threads}}}",
            nb.seconds,
            pm.seconds,
            pp.seconds,
            nb.cpu_seconds,
            pm.cpu_seconds,
            pp.cpu_seconds,
            nb.evaluations,
            pm.evaluations,
            pp.evaluations,
            a.class,
            a.output
        );
        return;
    }

    let t = Instant::now();
    let reference_params = ExplainParams {
        samples: args.reference,
        seed: 1_000_000,
        ..permutation.clone()
    };
    let reference = explain(
        &model,
        x.view(),
        background.view(),
        &reference_params,
        None,
        None,
    )
    .expect("reference");
    let reference_s = t.elapsed().as_secs_f64();
    let se = reference.stderr.as_ref().expect("stderr");
    let se_norm = se.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let ref_norm = reference
        .values
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    eprintln!(
        "reference: {} permutations in {reference_s:.1} s, class {}, f(x) = {:.4}, mean f(background) = {:.4}, own relative error ~{:.4}",
        args.reference,
        reference.class,
        reference.output,
        reference.reference,
        se_norm / ref_norm
    );

    let configs: Vec<(&str, ExplainParams)> = vec![
        ("notebook, 200 iterations", notebook.clone()),
        ("permutation, 200", permutation.clone()),
        (
            "permutation, 200, background prepared once",
            permutation.clone(),
        ),
        (
            "permutation, 200 antithetic",
            ExplainParams {
                antithetic: true,
                ..permutation.clone()
            },
        ),
        (
            "gradient x input (black)",
            ExplainParams {
                method: Method::GradientTimesInput,
                samples: 1,
                ..base.clone()
            },
        ),
        (
            "integrated gradients, 50 (black)",
            ExplainParams {
                method: Method::IntegratedGradients,
                samples: 50,
                ..base.clone()
            },
        ),
        (
            "integrated gradients, 50 (bg mean)",
            ExplainParams {
                method: Method::IntegratedGradients,
                samples: 50,
                baseline: layerscope::explain::Baseline::BackgroundMean,
                ..base.clone()
            },
        ),
    ];
    let mut rows = Vec::new();
    for (label, p) in &configs {
        let (m, _) = measure(
            label,
            &model,
            x.view(),
            &background,
            p,
            args.runs,
            Some(&reference),
            label.contains("prepared").then_some(&prepared),
        );
        eprintln!("{label}: {:.4} s", m.seconds);
        rows.push(m);
    }

    // Equal accuracy: Monte Carlo error falls as 1/sqrt(budget), so the budget that matches the
    // notebook's error at 200 iterations is budget * (error / target)^2; measured, not assumed.
    let target = rows[0].rel_l2;
    let mut equal = Vec::new();
    for m in &rows {
        let line = match m.method {
            Method::Notebook => format!(
                "{} (CPU {}; {} iterations)",
                secs(m.seconds),
                secs(m.cpu_seconds),
                m.samples
            ),
            Method::Permutation => {
                let need = ((m.samples as f64) * (m.rel_l2 / target).powi(2)).ceil() as usize;
                let need = need.max(2);
                let p = ExplainParams {
                    samples: need,
                    ..if m.label.contains("antithetic") {
                        ExplainParams {
                            antithetic: true,
                            ..permutation.clone()
                        }
                    } else {
                        permutation.clone()
                    }
                };
                let (check, _) = measure(
                    &m.label,
                    &model,
                    x.view(),
                    &background,
                    &p,
                    args.runs,
                    Some(&reference),
                    m.label.contains("prepared").then_some(&prepared),
                );
                format!(
                    "{} (CPU {}; {need} permutations, measured rel. L2 {:.3})",
                    secs(check.seconds),
                    secs(check.cpu_seconds),
                    check.rel_l2
                )
            }
            Method::GradientTimesInput | Method::IntegratedGradients => {
                if m.rel_l2 <= target {
                    secs(m.seconds)
                } else {
                    "never (a different quantity)".to_owned()
                }
            }
        };
        equal.push(line);
    }

    println!();
    println!(
        "Explain one MNIST test image (class {}, f(x) = {:.4}); MLP {:?}; background {} rows; {threads} threads; median of {} runs; reference: {} permutations",
        reference.class,
        reference.output,
        model.layer_sizes(),
        background.nrows(),
        args.runs,
        args.reference
    );
    println!();
    println!(
        "| method | seconds | CPU seconds | model evaluations | rel. L2 vs reference | correlation | |completeness gap| | seconds to match notebook@200 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (m, e) in rows.iter().zip(&equal) {
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.2e} | {} |",
            m.label,
            secs(m.seconds),
            secs(m.cpu_seconds),
            m.evaluations,
            m.rel_l2,
            m.corr,
            m.gap,
            e
        );
    }
    println!();
    println!(
        "float32 drift of the incremental first layer (max |incremental - full| at a walk's end): {:.2e}",
        rows.iter().map(|m| m.drift).fold(0.0, f64::max)
    );
    println!(
        "notebook@200 / permutation@200: {:.1}x in wall time, {:.1}x in CPU time",
        rows[0].seconds / rows[1].seconds,
        rows[0].cpu_seconds / rows[1].cpu_seconds
    );
    println!(
        "BENCH_JSON {{\"notebook_s\": {}, \"permutation_s\": {}, \"notebook_evals\": {}, \"permutation_evals\": {}, \"threads\": {threads}}}",
        rows[0].seconds, rows[1].seconds, rows[0].evaluations, rows[1].evaluations
    );
    class_mean_table(&model, &data, &background, &test_idx, label, args.runs);
}

/// The class-level map of the first test image's class over its first 100 test images, for
/// several per-image budgets: seconds to the first usable picture (20 images) and to 100 images,
/// the mean standard error relative to the map's largest value at both, and the share of the
/// mean's variance that comes from per-image sampling noise. Goal (issue: class-level maps): 100
/// images with relative standard error below 0.1 in under 10 s, 20 images in under 2 s.
fn class_mean_table(
    model: &Mlp,
    data: &layerscope::data::Dataset,
    background: &Array2<f32>,
    test_idx: &[usize],
    label: u8,
    runs: usize,
) {
    let rows: Vec<usize> = test_idx
        .iter()
        .copied()
        .filter(|&i| data.labels[i] == label)
        .take(100)
        .collect();
    let images = data.features.select(ndarray::Axis(0), &rows);
    let class = usize::from(label);
    println!();
    println!(
        "Class-level map of class {class} over {} test images (permutation Shapley, probability, background {} rows prepared per run, {} threads); median of {runs} runs",
        images.nrows(),
        background.nrows(),
        rayon::current_num_threads()
    );
    println!();
    println!(
        "| permutations per image | s to 20 images | rel. SE at 20 | s to 100 images | CPU s | rel. SE at 100 | largest SE / largest value at 100 | sampling share at 100 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for per_image in [10, 20, 50, 200] {
        let (mut t20, mut t100, mut cpu) = (vec![], vec![], vec![]);
        let (mut rel20, mut rel100, mut share, mut worst) = (0.0, 0.0, 0.0, 0.0);
        for run in 0..runs {
            let params = ExplainParams {
                samples: per_image,
                seed: run as u64 * 1000,
                ..ExplainParams::for_class_mean(Method::Permutation, class)
            };
            let start = Instant::now();
            let cpu0 = cpu_seconds();
            let mut at20 = (0.0, 0.0);
            let mut cb = |p: &ClassMeanProgress<'_>| {
                if p.images_done == 20 {
                    at20 = (start.elapsed().as_secs_f64(), p.relative_stderr());
                }
            };
            // The background pass is part of the wait a user sees: not prepared beforehand.
            let m = explain_class_mean(
                model,
                images.view(),
                background.view(),
                None,
                &params,
                Some(&mut cb),
                None,
            )
            .expect("class mean");
            t100.push(start.elapsed().as_secs_f64());
            cpu.push(cpu_seconds() - cpu0);
            t20.push(at20.0);
            rel20 = at20.1;
            rel100 = m.relative_stderr();
            share = m.sampling_share.unwrap_or(f64::NAN);
            let largest = |v: &Array1<f32>| v.iter().fold(0.0f32, |a, b| a.max(b.abs()));
            worst = f64::from(largest(&m.stderr) / largest(&m.values));
        }
        println!(
            "| {per_image} | {} | {rel20:.3} | {} | {} | {rel100:.3} | {worst:.3} | {share:.2} |",
            secs(median(&mut t20)),
            secs(median(&mut t100)),
            secs(median(&mut cpu)),
        );
    }
}

fn secs(s: f64) -> String {
    if s < 0.01 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3}")
    }
}
