//! Issue 13's engines and headless commands: test images placed into a map without moving it
//! (`tsne::place`), nearest neighbours in a layer's space (`neighbours::nearest`, `label_share`),
//! the worker's placed points and report, `embed`'s `row`/`split` columns and `neighbours`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use layerscope::compute::{Config, Event, run_pipeline};
use layerscope::data::LoadOptions;
use layerscope::neighbours::{Neighbour, label_share, nearest};
use layerscope::tsne::{PlaceParams, place};
use ndarray::{Array1, Array2, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `clusters` Gaussian clusters of `per` points each in `d` dimensions, centres 10 apart; the
/// label of each row is its cluster.
fn blobs(clusters: usize, per: usize, d: usize, seed: u64) -> (Array2<f32>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f32>::zeros((clusters * per, d));
    let mut labels = Vec::new();
    for c in 0..clusters {
        for i in 0..per {
            let row = c * per + i;
            for j in 0..d {
                let noise: f32 = StandardNormal.sample(&mut rng);
                x[[row, j]] = if j == c { 10.0 } else { 0.0 } + noise;
            }
            labels.push(c as u8);
        }
    }
    (x, labels)
}

/// A layout with each cluster of `blobs` around its own 2-D centre (20 apart on a circle).
fn blob_layout(labels: &[u8], clusters: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((labels.len(), 2), |(i, d)| {
        let angle = f32::from(labels[i]) / clusters as f32 * std::f32::consts::TAU;
        let centre = if d == 0 { angle.cos() } else { angle.sin() } * 20.0;
        centre + rng.random_range(-2.0..2.0)
    })
}

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn placing_points_never_moves_the_reference_layout() {
    let (x, labels) = blobs(3, 60, 8, 1);
    let layout = blob_layout(&labels, 3, 2);
    let before = bits(&layout);
    let (new, _) = blobs(3, 10, 8, 3);
    let placed = place(x.view(), layout.view(), new.view(), &PlaceParams::default()).unwrap();
    assert_eq!(placed.dim(), (30, 2));
    assert!(placed.iter().all(|v| v.is_finite()));
    assert_eq!(bits(&layout), before, "the reference layout changed");
}

#[test]
fn placement_is_reproducible_with_the_seed() {
    let (x, labels) = blobs(3, 60, 8, 1);
    let layout = blob_layout(&labels, 3, 2);
    let (new, _) = blobs(3, 10, 8, 4);
    let run = |seed| {
        let params = PlaceParams {
            seed,
            ..PlaceParams::default()
        };
        place(x.view(), layout.view(), new.view(), &params).unwrap()
    };
    let first = run(7);
    assert_eq!(
        bits(&first),
        bits(&run(7)),
        "same seed, different positions"
    );
    // Each point runs on its own: one thread gives the same bits as the pool.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| run(7));
    assert_eq!(
        bits(&first),
        bits(&one),
        "the thread count changed the positions"
    );
    // The seed only jitters the start by 1e-4 of the map's spread: the points end where the
    // affinities put them, whatever the seed.
    let other = run(8);
    let moved = first
        .iter()
        .zip(&other)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved < 0.05, "another seed moved a point by {moved}");
}

#[test]
fn a_new_point_lands_in_the_cluster_it_belongs_to() {
    let (x, labels) = blobs(4, 50, 6, 11);
    let layout = blob_layout(&labels, 4, 12);
    let (new, new_labels) = blobs(4, 8, 6, 13);
    let placed = place(x.view(), layout.view(), new.view(), &PlaceParams::default()).unwrap();
    let centre = |c: u8| {
        let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        let m = layout
            .select(ndarray::Axis(0), &rows)
            .mean_axis(ndarray::Axis(0));
        m.unwrap()
    };
    let centres: Vec<Array1<f32>> = (0..4).map(centre).collect();
    for (i, p) in placed.outer_iter().enumerate() {
        let dist = |c: &Array1<f32>| ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt();
        let nearest_centre = (0..4)
            .min_by(|&a, &b| dist(&centres[a]).total_cmp(&dist(&centres[b])))
            .unwrap();
        assert_eq!(
            nearest_centre,
            usize::from(new_labels[i]),
            "new point {i} of cluster {} landed at {p} (nearest centre {nearest_centre})",
            new_labels[i]
        );
        assert!(
            dist(&centres[nearest_centre]) < 5.0,
            "new point {i} is {} from its cluster's centre",
            dist(&centres[nearest_centre])
        );
    }
}

#[test]
fn bad_placement_input_is_an_error() {
    let (x, labels) = blobs(2, 10, 4, 1);
    let layout = blob_layout(&labels, 2, 2);
    let (new, _) = blobs(2, 2, 4, 3);
    let p = PlaceParams::default();
    let short = layout.slice(s![..5, ..]);
    assert!(place(x.view(), short, new.view(), &p).is_err());
    let wide = Array2::<f32>::zeros((3, 5));
    assert!(place(x.view(), layout.view(), wide.view(), &p).is_err());
    let mut nan = new.clone();
    nan[[1, 2]] = f32::NAN;
    assert!(place(x.view(), layout.view(), nan.view(), &p).is_err());
    let zero = PlaceParams {
        perplexity: 0.0,
        ..PlaceParams::default()
    };
    assert!(place(x.view(), layout.view(), new.view(), &zero).is_err());
    let none = Array2::<f32>::zeros((0, 4));
    assert_eq!(
        place(x.view(), layout.view(), none.view(), &p)
            .unwrap()
            .dim(),
        (0, 2)
    );
}

/// Every row's distance to `q`, sorted by (distance, index): the plain definition.
fn brute(reference: &Array2<f32>, q: &[f32], exclude: Option<usize>) -> Vec<(usize, f32)> {
    let mut all: Vec<(usize, f32)> = reference
        .outer_iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != exclude)
        .map(|(i, r)| {
            let d: f64 = r.iter().zip(q).map(|(a, b)| f64::from(a - b).powi(2)).sum();
            (i, d.sqrt() as f32)
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all
}

#[test]
fn nearest_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for d in [1usize, 7, 8, 33, 100] {
        let mut reference = Array2::from_shape_fn((300, d), |_| rng.random_range(-1.0f32..1.0));
        // Duplicated rows: ties go to the smaller index.
        for r in 0..5 {
            let row = reference.row(r).to_owned();
            reference.row_mut(200 + r).assign(&row);
        }
        for (q_row, exclude) in [(3usize, None), (3, Some(3)), (250, Some(17))] {
            let q = reference.row(q_row).to_vec();
            let want = brute(&reference, &q, exclude);
            for k in [1usize, 8, 40, 299, 400] {
                let got = nearest(reference.view(), ndarray::ArrayView1::from(&q), k, exclude);
                assert_eq!(got.len(), k.min(want.len()), "d {d} k {k}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.index, w.0, "d {d} k {k} query {q_row}");
                    assert!(
                        (g.distance - w.1).abs() <= 1e-4 * (1.0 + w.1),
                        "d {d}: {} vs {}",
                        g.distance,
                        w.1
                    );
                }
            }
        }
    }
}

#[test]
fn nearest_of_a_row_is_itself_unless_excluded() {
    let reference = Array2::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as f32);
    let q = reference.row(4).to_owned();
    let got = nearest(reference.view(), q.view(), 3, None);
    assert_eq!(
        got[0],
        Neighbour {
            index: 4,
            distance: 0.0
        }
    );
    // Rows 3 and 5 are equally far (sqrt 27): the smaller index first.
    assert_eq!(got[1].index, 3);
    assert_eq!(got[2].index, 5);
    assert!((got[1].distance - 27f32.sqrt()).abs() < 1e-5);
    let got = nearest(reference.view(), q.view(), 2, Some(4));
    assert_eq!(got.iter().map(|n| n.index).collect::<Vec<_>>(), vec![3, 5]);
    assert!(nearest(reference.view(), q.view(), 0, None).is_empty());
}

#[test]
fn label_share_on_known_cases() {
    // On a line: 0, 1, 3 (labels a a b) and far away 100, 101.5 (b b). k = 1: 0 -> 1 (a, same),
    // 1 -> 0 (same), 3 -> 1 (differs), 100 -> 101.5 (same), 101.5 -> 100 (same): 4 of 5.
    let x = Array2::from_shape_vec((5, 1), vec![0.0f32, 1.0, 3.0, 100.0, 101.5]).unwrap();
    let labels = [0u8, 0, 1, 1, 1];
    assert!((label_share(x.view(), &labels, 1) - 0.8).abs() < 1e-12);
    // k = 2: 0 -> {1, 3}: 1/2; 1 -> {0, 3}: 1/2; 3 -> {1, 0}: 0; 100 -> {101.5, 3}: 1;
    // 101.5 -> {100, 3}: 1. Mean: (0.5 + 0.5 + 0 + 1 + 1) / 5 = 0.6.
    assert!((label_share(x.view(), &labels, 2) - 0.6).abs() < 1e-12);
    // Alternating labels on evenly spaced-out pairs: every nearest neighbour differs.
    let y = Array2::from_shape_vec((4, 1), vec![0.0f32, 1.0, 10.0, 11.0]).unwrap();
    assert_eq!(label_share(y.view(), &[0, 1, 0, 1], 1), 0.0);
    assert_eq!(label_share(y.view(), &[0, 0, 1, 1], 1), 1.0);
    let (b, bl) = blobs(3, 30, 5, 9);
    assert!(label_share(b.view(), &bl, 10) > 0.99);
    assert_eq!(label_share(y.view(), &[0, 0, 1, 1], 0), 0.0);
}

#[test]
fn the_worker_places_test_rows_without_moving_the_maps() {
    let split = LoadOptions {
        sample: Some(300),
        ..LoadOptions::default()
    }
    .load()
    .unwrap();
    let base = Config {
        hidden: vec![16],
        max_epochs: 2,
        embed_n: 100,
        perplexity: 10.0,
        ..Config::new(split, None)
    };
    let run = |place_n: usize| {
        let mut maps = Vec::new();
        let mut report = None;
        let config = Config {
            place_n,
            ..base.clone()
        };
        run_pipeline(config, Duration::from_secs(240), |event, _| match event {
            Event::EmbedDone {
                layer,
                embedding,
                placed,
                ..
            } => maps.push((layer, embedding.coords, placed)),
            Event::ModelReady(r) => report = Some(r),
            _ => {}
        })
        .unwrap();
        (maps, report.unwrap())
    };
    let (with, report) = run(40);
    let (without, _) = run(0);
    assert_eq!(with.len(), 2, "layers 2 and 3 embedded");
    for ((layer, coords, placed), (layer0, coords0, placed0)) in with.iter().zip(&without) {
        assert_eq!(layer, layer0);
        assert_eq!(
            bits(coords),
            bits(coords0),
            "placing moved layer {layer}'s map"
        );
        assert!(placed0.is_none());
        let placed = placed.as_ref().expect("placed points");
        assert_eq!(placed.dim(), (40, 2));
        assert!(placed.iter().all(|v| v.is_finite()));
    }
    // The report carries the model and every layer's activations of the embedded images.
    assert_eq!(report.embed_layers.len(), 3);
    assert_eq!(report.embed_layers[0].dim(), (100, 784));
    assert_eq!(report.embed_layers[1].dim(), (100, 16));
    assert_eq!(report.embed_layers[2].dim(), (100, 10));
    assert_eq!(report.model.layer_sizes(), vec![784, 16, 10]);
    let out = report.embed_layers[2].row(0).sum();
    assert!((out - 1.0).abs() < 1e-4, "the output layer is the softmax");
}

// ---- the headless commands ----

fn layerscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .args(args)
        .output()
        .expect("run layerscope")
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

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A CSV of 48 rows whose labels name their row (`r00` .. `r47`), with a blank line in the
/// middle that pandas skips without counting it.
fn labelled_rows_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("rows.csv");
    let mut text = String::from("a,b,c,d,target\n");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for row in 0..48 {
        if row == 20 {
            text.push('\n');
        }
        let v: Vec<String> = (0..4)
            .map(|_| format!("{:.3}", rng.random_range(0.0..1.0f32)))
            .collect();
        text.push_str(&format!("{},r{row:02}\n", v.join(",")));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn embed_rows_map_back_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = labelled_rows_file(dir.path());
    let data = data.to_str().unwrap();
    for sample in [None, Some("30")] {
        let out = dir.path().join("embedding.csv");
        let mut args = vec![
            "embed",
            "--data",
            data,
            "--hidden",
            "6",
            "--epochs",
            "2",
            "--perplexity",
            "3",
            "--place",
            "5",
            "--layers",
            "1,2",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(n) = sample {
            args.extend(["--sample", n]);
        }
        ok(&layerscope(&args));
        let (header, rows) = read_csv(&out);
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
        let n_rows = sample.map_or(48, |s| s.parse().unwrap());
        let n_test = n_rows / 2;
        let n_train = n_rows - n_test;
        assert_eq!(rows.len(), 2 * (n_train + 5), "sample {sample:?}");
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            let row: usize = r[6].parse().unwrap();
            assert!(row < 48);
            // The label names the file's row: the row column points at it.
            assert_eq!(r[4], format!("r{row:02}"), "sample {sample:?}: {r:?}");
            assert!(r[7] == "train" || r[7] == "test");
            if r[1] == "1" {
                assert!(seen.insert((r[7].clone(), row)), "row {row} twice");
            }
        }
        let test_rows = rows.iter().filter(|r| r[7] == "test").count();
        assert_eq!(test_rows, 2 * 5);
        assert_eq!(seen.len(), n_train + 5);
    }
}

#[test]
fn embed_rejects_a_placement_larger_than_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.csv");
    let stderr = failed(&layerscope(&[
        "embed",
        "--sample",
        "40",
        "--perplexity",
        "5",
        "--place",
        "21",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(stderr.contains("--place 21"), "{stderr}");
    assert!(!out.exists());
}

fn trained_model(dir: &Path) -> std::path::PathBuf {
    let model = dir.join("m.npz");
    ok(&layerscope(&[
        "train",
        "--sample",
        "400",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--save",
        model.to_str().unwrap(),
    ]));
    model
}

#[test]
fn neighbours_writes_k_rows_per_layer_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path());
    let model = model.to_str().unwrap();
    let out = dir.path().join("nb.csv");
    let out_s = out.to_str().unwrap();
    let common = ["--sample", "400", "--model", model, "--n", "150"];
    let run = |extra: &[&str]| {
        let mut args = vec!["neighbours"];
        args.extend(common);
        args.extend(extra);
        args.extend(["--out", out_s]);
        layerscope(&args)
    };
    ok(&run(&["--index", "7", "--k", "5"]));
    let (header, rows) = read_csv(&out);
    assert_eq!(
        header,
        [
            "layer",
            "rank",
            "row",
            "label",
            "prediction",
            "distance",
            "in_map"
        ]
    );
    assert_eq!(rows.len(), 3 * 5, "5 neighbours in each of 3 layers");
    let split = LoadOptions {
        sample: Some(400),
        ..LoadOptions::default()
    }
    .load()
    .unwrap();
    let mlp = layerscope::nn::load_npz(Path::new(model)).unwrap();
    let embedded = split.train.features.slice(s![..150, ..]);
    let query = split.test.features.slice(s![7..8, ..]);
    for (layer, chunk) in rows.chunks(5).enumerate() {
        let layer = layer + 1;
        let reference = mlp.layer_output(embedded, layer);
        let q = mlp.layer_output(query, layer);
        let want = nearest(reference.view(), q.row(0), 5, None);
        for (rank, (r, w)) in chunk.iter().zip(&want).enumerate() {
            assert_eq!(r[0], layer.to_string());
            assert_eq!(r[1], (rank + 1).to_string());
            assert_eq!(r[2], split.train.rows[w.index].to_string(), "layer {layer}");
            assert_eq!(
                r[3],
                split.train.class_names[usize::from(split.train.labels[w.index])]
            );
            let d: f32 = r[5].parse().unwrap();
            assert!((d - w.distance).abs() <= 1e-5 * (1.0 + w.distance));
            assert_eq!(r[6], "", "no maps asked for");
        }
    }

    ok(&run(&[
        "--index", "0", "--layer", "3", "--k", "4", "--maps",
    ]));
    let (_, rows) = read_csv(&out);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r[0] == "3"));
    assert!(rows.iter().all(|r| r[6] == "true" || r[6] == "false"));
    // In the output layer the nearest neighbours in the map mostly are the nearest ones.
    assert!(rows.iter().any(|r| r[6] == "true"), "{rows:?}");

    std::fs::remove_file(&out).unwrap();
    for (extra, flag) in [
        (&["--index", "200"][..], "--index 200"),
        (&["--index", "0", "--layer", "4"][..], "--layer 4"),
        (&["--index", "0", "--layer", "0"][..], "--layer 0"),
        (&["--index", "0", "--k", "0"][..], "--k 0"),
        (&["--index", "0", "--k", "151"][..], "--k 151"),
    ] {
        let stderr = failed(&run(extra));
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(!out.exists(), "{flag}: a file was written");
    }
}

#[test]
fn every_part_keeps_the_rows_of_its_source() {
    let all = layerscope::data::load_onboard().unwrap();
    assert_eq!(all.rows, (0..all.n_rows()).collect::<Vec<_>>());
    for (sample, fraction, seed) in [(None, 0.5, 0u64), (Some(700), 0.3, 4)] {
        let split = all.clone().into_split(sample, fraction, seed).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for part in [&split.train, &split.test] {
            assert_eq!(part.rows.len(), part.n_rows());
            for (i, &row) in part.rows.iter().enumerate() {
                assert_eq!(part.features.row(i), all.features.row(row), "row {row}");
                assert_eq!(part.labels[i], all.labels[row]);
                assert!(seen.insert(row), "row {row} in two places");
            }
        }
        assert_eq!(seen.len(), sample.unwrap_or(all.n_rows()));
    }
    // `sample` and `select` carry the rows along.
    let s = all.sample(50, 9).unwrap();
    let picked = s.select(&[3, 1]);
    assert_eq!(picked.rows, vec![s.rows[3], s.rows[1]]);
    assert_eq!(picked.features.row(0), all.features.row(s.rows[3]));
}
