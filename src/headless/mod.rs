//! Headless subcommands for servers and batch jobs: the same engines as the terminal app,
//! progress on stderr (a bar when stderr is a terminal, one line per step otherwise), files out,
//! each written whole or not at all.

pub mod output;

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Axis};

use crate::cli::{Cli, EmbedArgs, ExplainArgs, SnapshotArgs, TrainArgs};
use crate::data::{Dataset, Split};
use crate::explain::{self, ExplainParams, Method, Units};
use crate::nn::{self, EpochMetrics, Mlp, TrainParams, Trainer};
use crate::tsne::{self, TsneParams};
use crate::tui::Tab;
use crate::tui::snapshot::render_snapshot_with;
use crate::tui::theme::{ColorDepth, Theme};
use output::{check_writable, write_atomic};

/// `layerscope info`: a summary of the data set.
pub fn info(cli: &Cli) -> anyhow::Result<()> {
    let (data, split) = cli.data.load()?;
    print!(
        "{}",
        summary(&data, split.train.n_rows(), split.test.n_rows())
    );
    Ok(())
}

/// The text `info` prints.
pub fn summary(data: &Dataset, n_train: usize, n_test: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "data:      {}", data.source);
    let _ = writeln!(s, "rows:      {}", data.n_rows());
    let _ = writeln!(s, "features:  {}", data.n_features());
    let _ = match data.image_shape {
        Some((h, w)) => writeln!(s, "image:     {h} x {w}"),
        None => writeln!(
            s,
            "image:     none (the feature count is not a perfect square)"
        ),
    };
    let _ = writeln!(s, "classes:   {}", data.n_classes());
    for (name, count) in data.class_names.iter().zip(data.class_counts()) {
        let _ = writeln!(s, "  {name:>8}  {count}");
    }
    let _ = writeln!(s, "split:     {n_train} train, {n_test} test");
    s
}

/// The training parameters the command line asks for.
pub fn train_params(cli: &Cli) -> TrainParams {
    TrainParams {
        hidden: cli.model.hidden.clone(),
        max_epochs: cli
            .model
            .epochs
            .unwrap_or(TrainParams::default().max_epochs),
        seed: cli.data.seed,
        ..TrainParams::default()
    }
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (lines are printed instead).
fn progress_bar(len: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:30}} {{pos}}/{{len}} {{msg}} [{{elapsed_precise}}<{{eta_precise}}]"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Train a network on the training split, reporting each epoch on stderr.
fn train_model(cli: &Cli, split: &Split) -> (Trainer, nn::StopReason) {
    let params = train_params(cli);
    let bar = progress_bar(params.max_epochs as u64, "train");
    let mut trainer = Trainer::new(split.train.n_features(), split.train.n_classes(), params);
    let mut on_epoch = |m: &EpochMetrics| match &bar {
        Some(b) => {
            b.set_position(m.epoch as u64);
            b.set_message(format!(
                "loss {:.4} test acc {:.4}",
                m.train_loss,
                m.test_accuracy.unwrap_or(f64::NAN)
            ));
        }
        None => eprintln!("{}", epoch_line(m)),
    };
    let stop = trainer.run(&split.train, Some(&split.test), &mut on_epoch, None);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    (trainer, stop)
}

/// One epoch as a line of text.
pub fn epoch_line(m: &EpochMetrics) -> String {
    format!(
        "epoch {:>3}  loss {:.5}  train acc {:.4}  test loss {:.5}  test acc {:.4}  {:.2} s  {:.0} samples/s",
        m.epoch,
        m.train_loss,
        m.train_accuracy,
        m.test_loss.unwrap_or(f64::NAN),
        m.test_accuracy.unwrap_or(f64::NAN),
        m.seconds,
        m.samples_per_sec
    )
}

/// The model to explore: the one named by `--model` (checked against the data's width), or one
/// trained now.
pub fn model_for(cli: &Cli, split: &Split) -> anyhow::Result<Mlp> {
    match &cli.model.model {
        Some(path) => load_model(path, &split.train),
        None => {
            eprintln!("no --model given: training one first (save one with `layerscope train`)");
            Ok(train_model(cli, split).0.model().clone())
        }
    }
}

/// Open a saved model and check that it fits the data (input width and classes).
pub fn load_model(path: &Path, data: &Dataset) -> anyhow::Result<Mlp> {
    let mlp = nn::load_npz(path)?;
    mlp.check_fits(data.n_features(), data.n_classes())
        .with_context(|| format!("{} with {}", path.display(), data.source))?;
    Ok(mlp)
}

/// `layerscope train`.
pub fn train(cli: &Cli, args: &TrainArgs) -> anyhow::Result<()> {
    check_writable(&args.save)?;
    if let Some(m) = &args.metrics {
        check_writable(m)?;
    }
    let (_, split) = cli.data.load()?;
    let (trainer, stop) = train_model(cli, &split);
    write_atomic(&args.save, |w| nn::write_model(trainer.model(), w))?;
    if let Some(path) = &args.metrics {
        write_atomic(path, |w| {
            writeln!(
                w,
                "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds,samples_per_sec"
            )?;
            for m in trainer.history() {
                writeln!(
                    w,
                    "{},{},{},{},{},{},{}",
                    m.epoch,
                    m.train_loss,
                    m.train_accuracy,
                    m.test_loss.unwrap_or(f64::NAN),
                    m.test_accuracy.unwrap_or(f64::NAN),
                    m.seconds,
                    m.samples_per_sec
                )?;
            }
            Ok(())
        })?;
    }
    let last = trainer.history().last();
    eprintln!(
        "{:?} after {} epochs; test accuracy {:.4}; saved {}",
        stop,
        trainer.epoch(),
        last.and_then(|m| m.test_accuracy).unwrap_or(f64::NAN),
        args.save.display()
    );
    Ok(())
}

/// The training images the notebook embeds: the first `n` rows of the training split.
pub fn embed_rows(train: &Dataset, n: usize) -> Array2<f32> {
    let n = n.min(train.n_rows());
    train.features.slice(ndarray::s![..n, ..]).to_owned()
}

/// `layerscope embed`.
pub fn embed(cli: &Cli, args: &EmbedArgs) -> anyhow::Result<()> {
    check_writable(&args.out)?;
    let (_, split) = cli.data.load()?;
    let model = model_for(cli, &split)?;
    let layers: Vec<usize> = if args.layers.is_empty() {
        (2..=model.n_layers()).collect()
    } else {
        args.layers.clone()
    };
    if let Some(&bad) = layers.iter().find(|&&k| k == 0 || k > model.n_layers()) {
        bail!(
            "--layers {bad}: expected layers 1 (input) to {} (output)",
            model.n_layers()
        );
    }
    let x = embed_rows(&split.train, cli.view.embed_n);
    let n = x.nrows();
    let labels = &split.train.labels[..n];
    let predictions = model.predict(x.view());
    let mut tables = Vec::new();
    for &k in &layers {
        let activations = model.layer_output(x.view(), k);
        let params = TsneParams {
            perplexity: cli.view.perplexity,
            seed: cli.data.seed,
            ..TsneParams::default()
        };
        let bar = progress_bar(params.n_iter as u64, &format!("layer {k}"));
        let mut on_progress = |p: &tsne::TsneProgress<'_>| {
            if let Some(b) = &bar {
                b.set_position(p.iteration as u64);
                if let Some(kl) = p.kl_divergence {
                    b.set_message(format!("KL {kl:.3}"));
                }
            }
        };
        let started = Instant::now();
        let embedding = tsne::tsne(activations.view(), &params, Some(&mut on_progress), None)
            .with_context(|| format!("t-SNE of layer {k}"))?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let trust = tsne::neighbour_preservation(activations.view(), embedding.coords.view(), 10);
        eprintln!(
            "layer {k} ({} units, {n} points): KL {:.4}, trust (10-NN preserved) {:.3}, {} iterations, {:.2} s",
            activations.ncols(),
            embedding.kl_divergence,
            trust,
            embedding.n_iter,
            started.elapsed().as_secs_f64()
        );
        tables.push((k, embedding.coords));
    }
    let names = &split.train.class_names;
    write_atomic(&args.out, |w| {
        writeln!(w, "index,layer,x,y,label,prediction")?;
        for (k, coords) in &tables {
            for (i, xy) in coords.axis_iter(Axis(0)).enumerate() {
                writeln!(
                    w,
                    "{i},{k},{},{},{},{}",
                    xy[0],
                    xy[1],
                    csv_field(&names[usize::from(labels[i])]),
                    csv_field(
                        names
                            .get(usize::from(predictions[i]))
                            .map_or("?", String::as_str)
                    )
                )?;
            }
        }
        Ok(())
    })
}

/// Quote a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The explanation method named on the command line.
pub fn parse_method(name: &str) -> anyhow::Result<Method> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "notebook" | "sampling" => Method::Notebook,
        "permutation" | "shapley" => Method::Permutation,
        "gradient-x-input" | "gradient" | "gxi" => Method::GradientTimesInput,
        "integrated-gradients" | "ig" => Method::IntegratedGradients,
        other => bail!(
            "--method {other}: expected notebook, permutation, gradient-x-input or integrated-gradients"
        ),
    })
}

/// `layerscope explain`.
pub fn explain(cli: &Cli, args: &ExplainArgs) -> anyhow::Result<()> {
    check_writable(&args.out)?;
    let method = parse_method(&args.method)?;
    let (_, split) = cli.data.load()?;
    if args.index >= split.test.n_rows() {
        bail!(
            "--index {}: expected 0 to {} (rows of the test split)",
            args.index,
            split.test.n_rows() - 1
        );
    }
    let model = model_for(cli, &split)?;
    if let Some(c) = args.class
        && c >= model.n_outputs()
    {
        bail!("--class {c}: expected 0 to {}", model.n_outputs() - 1);
    }
    let params = ExplainParams {
        method,
        class: args.class,
        units: if args.logits {
            Units::Logit
        } else {
            Units::Probability
        },
        samples: args.samples,
        seed: cli.data.seed,
        ..ExplainParams::default()
    };
    let x = split.test.features.row(args.index);
    let bar = progress_bar(args.samples as u64, "explain");
    let mut on_progress = |p: &explain::ExplainProgress<'_>| {
        if let Some(b) = &bar {
            b.set_length(p.samples_total as u64);
            b.set_position(p.samples_done as u64);
        }
    };
    let started = Instant::now();
    let a = explain::explain(
        &model,
        x,
        split.train.features.view(),
        &params,
        Some(&mut on_progress),
        None,
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let names = &split.test.class_names;
    eprintln!(
        "test row {}: label {}, explained class {}; f(x) {:.4}, reference {:.4}, sum {:.4}, \
         completeness gap {:.2e}; {} samples, {} model evaluations, {:.2} s",
        args.index,
        names[usize::from(split.test.labels[args.index])],
        names.get(a.class).map_or("?", String::as_str),
        a.output,
        a.reference,
        a.values.sum(),
        a.completeness_gap,
        a.samples,
        a.model_evaluations,
        started.elapsed().as_secs_f64()
    );
    let width = split.test.image_shape.map_or(a.values.len(), |(_, w)| w);
    write_atomic(&args.out, |w| {
        writeln!(w, "row,col,value,stderr")?;
        for (i, v) in a.values.iter().enumerate() {
            let se = a
                .stderr
                .as_ref()
                .map(|s| s[i].to_string())
                .unwrap_or_default();
            writeln!(w, "{},{},{v},{se}", i / width, i % width)?;
        }
        Ok(())
    })
}

/// `layerscope snapshot`: run the pipeline to the end, then print one frame of a tab.
pub fn snapshot(cli: &Cli, args: &SnapshotArgs) -> anyhow::Result<()> {
    let tab = match args.tab.to_ascii_lowercase().as_str() {
        "training" | "1" => Tab::Training,
        "embeddings" | "2" => Tab::Embeddings,
        "saliency" | "3" => Tab::Saliency,
        other => bail!("--tab {other}: expected training, embeddings or saliency"),
    };
    if args.width == 0 || args.height == 0 {
        bail!(
            "--width {} --height {}: expected at least 1 x 1",
            args.width,
            args.height
        );
    }
    let app = crate::tui::build_app(cli, Duration::from_secs(24 * 3600))?;
    // Plain text has no colours to tell pixels and classes apart: draw it as the no-colour
    // theme does (shade characters, digit glyphs); with --ansi, in 24-bit colour.
    let depth = if args.ansi {
        ColorDepth::TrueColor
    } else {
        ColorDepth::None
    };
    let theme = Theme::new(depth, cli.view.ascii);
    let frame = render_snapshot_with(&app, tab, args.width, args.height, args.ansi, &theme);
    print!("{frame}");
    Ok(())
}
