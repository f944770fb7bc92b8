//! Headless subcommands for servers and batch jobs: the same engines as the terminal app,
//! progress on stderr (a bar when stderr is a terminal, lines otherwise), files out.
//!
//! Every command checks what it can before any work (output paths, argument ranges, the memory a
//! network would need), writes all its outputs, then renames them all into place
//! ([`output::Plan`]). A full or closed stderr never stops a run; a closed stdout ends it quietly.

/// A line on stderr; a full or closed stderr is ignored (progress never aborts a run).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod frames;
mod neighbours;
pub mod output;
pub mod projector;
mod saliency;

pub use neighbours::neighbours;
pub use saliency::{CLASS_MEAN_IMAGES, explain};

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;

use crate::cli::{DataArgs, EmbedArgs, InfoArgs, ModelArgs, SnapshotArgs, TrainArgs, ViewArgs};
use crate::data::{self, Dataset, Split};
use crate::nn::{self, EpochMetrics, Mlp, StopReason, TrainParams, Trainer};
use crate::tsne::{self, TsneParams};
use crate::tui::Tab;
use crate::tui::snapshot::render_snapshot_with;
use crate::tui::theme::{ColorDepth, Theme};
use output::{Plan, write_stdout};

/// A name taken from a file, safe to print on a terminal: control characters (escape codes,
/// carriage returns, ...) are shown escaped.
pub fn printable(s: &str) -> String {
    data::display_name(s).into_owned()
}

/// `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The paths of a run's inputs, to keep outputs off them.
fn inputs<'a>(data: &'a DataArgs, model: Option<&'a Path>) -> Vec<(&'static str, &'a Path)> {
    let mut v = Vec::new();
    if let Some(p) = &data.data {
        v.push(("--data", p.as_path()));
    }
    if let Some(p) = model {
        v.push(("--model", p));
    }
    v
}

/// Bytes of memory available to this process, when the system says (Linux: `MemAvailable`).
fn memory_available() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn gigabytes(bytes: u128) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Refuse a network that would not fit in memory, before allocating it: the weights in f32, and
/// four times that to train (weights, gradients and Adam's two moments).
pub fn check_model_size(flag: &str, layer_sizes: &[usize]) -> anyhow::Result<()> {
    check_model_size_within(flag, layer_sizes, memory_available().unwrap_or(1 << 40))
}

fn check_model_size_within(
    flag: &str,
    layer_sizes: &[usize],
    available: u128,
) -> anyhow::Result<()> {
    let parameters: u128 = layer_sizes
        .windows(2)
        .map(|w| w[0] as u128 * (w[1] as u128 + 1))
        .sum();
    let weights = parameters * 4;
    let training = weights * 4;
    if training > available {
        bail!(
            "{flag} needs {} of weights ({} to train), more than the {} of memory available: \
             expected smaller layers",
            gigabytes(weights),
            gigabytes(training),
            gigabytes(available)
        );
    }
    Ok(())
}

/// The data, loaded as the data options say.
fn load_data(data: &DataArgs) -> anyhow::Result<Split> {
    data.options().load()
}

/// `layerscope info`: a summary of the data set, and of a model when one is given.
pub fn info(args: &InfoArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let split = load_data(data)?;
    let mut text = summary(&split);
    if let Some(given) = &args.model {
        // A folder of checkpoints (`train --checkpoints`): its last epoch is the model.
        let (path, film) = model_file(given)?;
        let path = &path;
        if let Some(film) = &film {
            let _ = writeln!(
                text,
                "film:      {}: {film}",
                printable(&given.display().to_string())
            );
        }
        let mlp = nn::import::load_file(path)?;
        let sizes: Vec<String> = mlp.layer_sizes().iter().map(usize::to_string).collect();
        let parameters: usize = mlp.coefs.iter().map(|c| c.len()).sum::<usize>()
            + mlp.intercepts.iter().map(|b| b.len()).sum::<usize>();
        let _ = writeln!(
            text,
            "model:     {}: {} ({} parameters)",
            printable(&path.display().to_string()),
            sizes.join(" -> "),
            parameters
        );
        let _ = writeln!(
            text,
            "layers:    hidden {}, output {}",
            mlp.activation,
            if mlp.softmax {
                "softmax"
            } else {
                "raw scores (no softmax)"
            }
        );
        match nn::read_training(path)? {
            Some(r) => {
                let _ = writeln!(
                    text,
                    "trained:   {}, seed {}; {}",
                    plural(r.epochs, "epoch"),
                    r.params.seed,
                    training_words(&r.params)
                );
                for (k, v) in &r.data {
                    let _ = writeln!(text, "  {k:>13}  {}", printable(v));
                }
            }
            None => {
                let _ = writeln!(text, "trained:   not recorded in the file");
            }
        }
        let _ = match mlp.check_fits(split.train.n_features(), split.train.n_classes()) {
            Ok(()) => writeln!(text, "fits:      yes"),
            Err(e) => writeln!(text, "fits:      no: {e}"),
        };
    }
    write_stdout(text.as_bytes())
}

/// The file a `--model` names: itself, or for a folder of checkpoints its last epoch's file
/// and a line about the film it holds.
fn model_file(path: &Path) -> anyhow::Result<(std::path::PathBuf, Option<String>)> {
    if !path.is_dir() {
        return Ok((path.to_path_buf(), None));
    }
    let files = nn::checkpoints::checkpoint_files(path)?;
    let (first, _) = files.first().expect("checkpoint_files is never empty");
    let (last, file) = files.last().expect("checkpoint_files is never empty");
    let film = format!(
        "{} (epochs {first} to {last}); the model below is the last",
        plural(files.len(), "checkpoint")
    );
    Ok((file.clone(), Some(film)))
}

/// The text `info` prints about the data: every name taken from the file printed escaped.
pub fn summary(split: &Split) -> String {
    let (train, test) = (&split.train, &split.test);
    let mut s = String::new();
    let _ = writeln!(s, "data:      {}", printable(&train.source));
    let _ = writeln!(s, "rows:      {}", train.n_rows() + test.n_rows());
    let _ = writeln!(s, "features:  {}", train.n_features());
    let _ = writeln!(s, "image:     {}", train.image_shape_reason());
    let _ = writeln!(s, "classes:   {}", train.n_classes());
    let counts = train
        .class_counts()
        .into_iter()
        .zip(test.class_counts())
        .map(|(a, b)| a + b);
    for (name, count) in train.class_names.iter().zip(counts) {
        let _ = writeln!(s, "  {:>8}  {count}", printable(name));
    }
    let _ = writeln!(
        s,
        "split:     {} train, {} test",
        train.n_rows(),
        test.n_rows()
    );
    s
}

/// The training parameters the command line asks for.
pub fn train_params(model: &ModelArgs, seed: u64) -> TrainParams {
    train_params_from(model, seed, None)
}

/// The training parameters the command line asks for; the training options not given on it
/// come from `saved` (a warm start's model file) when it has them, else scikit-learn's defaults.
fn train_params_from(model: &ModelArgs, seed: u64, saved: Option<&TrainParams>) -> TrainParams {
    let base = saved.cloned().unwrap_or_default();
    let t = &model.training;
    TrainParams {
        hidden: model.hidden.clone(),
        max_epochs: model.epochs.unwrap_or(nn::DEFAULT_MAX_EPOCHS),
        seed,
        learning_rate: t.learning_rate.unwrap_or(base.learning_rate),
        alpha: t.alpha.unwrap_or(base.alpha),
        batch_size: t.batch_size.unwrap_or(base.batch_size),
        activation: t.activation.unwrap_or(base.activation),
        ..base
    }
}

/// The options of a training run, as `info` and the epoch log show them.
pub fn training_words(p: &TrainParams) -> String {
    format!(
        "activation {}, learning_rate_init {}, alpha {}, batch_size {}",
        p.activation, p.learning_rate, p.alpha, p.batch_size
    )
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

/// The new network's layer sizes, checked against the memory they need.
fn new_layer_sizes(model: &ModelArgs, split: &Split) -> anyhow::Result<Vec<usize>> {
    let mut sizes = vec![split.train.n_features()];
    sizes.extend(&model.hidden);
    sizes.push(split.train.n_classes());
    let hidden: Vec<String> = model.hidden.iter().map(usize::to_string).collect();
    check_model_size(&format!("--hidden {}", hidden.join(",")), &sizes)?;
    Ok(sizes)
}

/// Train `trainer` on the training split, reporting each epoch on stderr; a diverged run is an
/// error (its model is never saved or shown).
fn run_training(
    trainer: &mut Trainer,
    split: &Split,
    max_epochs: usize,
) -> anyhow::Result<StopReason> {
    let bar = progress_bar(max_epochs as u64, "train");
    let mut on_epoch = |m: &EpochMetrics| match &bar {
        Some(b) => {
            b.set_position(m.epoch as u64);
            // An epoch not evaluated on the test rows shows its training figures only.
            let test = m
                .test_accuracy
                .map_or(String::new(), |a| format!(" test acc {a:.4}"));
            b.set_message(format!("loss {:.4}{test}", m.train_loss));
        }
        None => note!("{}", epoch_line(m)),
    };
    let stop = trainer.run(&split.train, Some(&split.test), &mut on_epoch, None);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let StopReason::Diverged { epoch } = stop {
        bail!(
            "the training loss diverged (not a finite number) at epoch {epoch}: nothing saved; \
             try another --seed or smaller --hidden layers"
        );
    }
    Ok(stop)
}

/// One epoch as a line of text (timings included: they go to stderr, not to files).
pub fn epoch_line(m: &EpochMetrics) -> String {
    // An epoch not evaluated on the test rows (`train` without --metrics) shows none.
    let test = match (m.test_loss, m.test_accuracy) {
        (Some(loss), Some(accuracy)) => format!("  test loss {loss:.5}  test acc {accuracy:.4}"),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}  loss {:.5}  train acc {:.4}{test}  {:.2} s  {:.0} samples/s",
        m.epoch, m.train_loss, m.train_accuracy, m.seconds, m.samples_per_sec
    )
}

/// Why training stopped, in words.
fn stop_words(stop: StopReason, epochs: usize, max_epochs: usize) -> String {
    match stop {
        StopReason::Converged => format!(
            "converged after {} (the loss stopped improving)",
            plural(epochs, "epoch")
        ),
        StopReason::MaxEpochs => format!(
            "stopped at the limit of {} (--epochs)",
            plural(max_epochs, "epoch")
        ),
        StopReason::Cancelled => format!("cancelled after {}", plural(epochs, "epoch")),
        StopReason::Diverged { epoch } => format!("diverged at epoch {epoch}"),
    }
}

/// The model to explore: the one named by `--model` (checked against the data), or one trained
/// now.
pub fn model_for(model: &ModelArgs, split: &Split, seed: u64) -> anyhow::Result<Mlp> {
    match &model.model {
        Some(path) => nn::load_model(path, split.train.n_features(), split.train.n_classes()),
        None => {
            new_layer_sizes(model, split)?;
            note!("no --model given: training one first (save one with `layerscope train`)");
            let params = train_params(model, seed);
            let max_epochs = params.max_epochs;
            let mut trainer =
                Trainer::new(split.train.n_features(), split.train.n_classes(), params);
            // Nothing reads the per-epoch test figures here (no curves, no metrics file): the
            // test split once, after the last epoch, for the closing line. Same weights.
            trainer.set_test_every_epoch(false);
            let stop = run_training(&mut trainer, split, max_epochs)?;
            let accuracy = trainer
                .test_last_epoch(&split.test)
                .and_then(|m| m.test_accuracy)
                .map_or("n/a (no test rows)".to_owned(), |a| format!("{a:.4}"));
            note!(
                "{}; test accuracy {accuracy}",
                stop_words(stop, trainer.epoch(), max_epochs)
            );
            Ok(trainer.model().clone())
        }
    }
}

/// The model named by `--model`, checked against the data; `None` when one is to be trained.
fn saved_model(model: &ModelArgs, split: &Split) -> anyhow::Result<Option<Mlp>> {
    model
        .model
        .as_deref()
        .map(|path| nn::load_model(path, split.train.n_features(), split.train.n_classes()))
        .transpose()
}

/// The number of layers (the notebook's numbering: 1 = input, last = output) of the model a
/// command will use, known before training.
fn planned_layers(model: &ModelArgs, loaded: Option<&Mlp>) -> usize {
    loaded.map_or(model.hidden.len() + 2, Mlp::n_layers)
}

/// `layerscope train`: train a new network or go on training a saved one (warm start).
pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let mut outputs = vec![("--save", args.save.as_path())];
    if let Some(m) = &args.metrics {
        outputs.push(("--metrics", m.as_path()));
    }
    let plan = Plan::new(&outputs, &inputs(data, args.model.model.as_deref()))?;
    let mut film = frames::TrainFilm::new(
        args.checkpoints.as_deref(),
        args.metrics.is_some(),
        &inputs(data, args.model.model.as_deref()),
    )?;
    let split = load_data(data)?;
    let saved = match &args.model.model {
        Some(path) => nn::read_training(&model_file(path)?.0)?.map(|r| r.params),
        None => None,
    };
    let params = train_params_from(&args.model, data.seed, saved.as_ref());
    let max_epochs = params.max_epochs;
    let mut trainer = match &args.model.model {
        Some(path) => {
            let mlp = nn::load_model(path, split.train.n_features(), split.train.n_classes())?;
            let sizes: Vec<String> = mlp.layer_sizes().iter().map(usize::to_string).collect();
            note!(
                "warm start from {} ({}): training goes on from its weights with a fresh \
                 optimiser; epochs count from 1; {} is not changed",
                path.display(),
                sizes.join("-"),
                path.display()
            );
            Trainer::from_model(mlp, params)
        }
        None => {
            new_layer_sizes(&args.model, &split)?;
            Trainer::new(split.train.n_features(), split.train.n_classes(), params)
        }
    };
    split.check_trainable().map_err(anyhow::Error::msg)?;
    note!("training: {}", training_words(trainer.params()));
    // The test split per epoch only for the metrics file (its curves); otherwise once, after
    // the last epoch, for the closing line: each evaluation is about a quarter of an epoch.
    trainer.set_test_every_epoch(args.metrics.is_some());
    let stop = frames::train_by_epoch(&mut trainer, &split, max_epochs, &mut |e, m| {
        film.epoch(e, m, &split)
    })?;
    trainer.test_last_epoch(&split.test);
    let record = training_record(&trainer, data, args.model.model.as_deref());
    let mut staged = vec![plan.stage(0, |w| {
        nn::write_trained_model(trainer.model(), Some(&record), w)
    })?];
    if args.metrics.is_some() {
        staged.push(plan.stage(1, |w| {
            write_metrics(w, trainer.history(), film.separations())
        })?);
    }
    staged.extend(film.staged());
    Plan::commit(staged)?;
    let accuracy = trainer
        .history()
        .last()
        .and_then(|m| m.test_accuracy)
        .map_or("n/a (no test rows)".to_owned(), |a| format!("{a:.4}"));
    note!(
        "{}; test accuracy {accuracy}; saved {}",
        stop_words(stop, trainer.epoch(), max_epochs),
        if plan.output(0).is_stdout() {
            "to stdout".to_owned()
        } else {
            args.save.display().to_string()
        }
    );
    Ok(())
}

/// What the model file records of this run, so that it can be repeated: the options, the epochs,
/// and the data options (the data file, the sample, the split, and a warm start's model).
fn training_record(
    trainer: &Trainer,
    data: &DataArgs,
    warm_start: Option<&Path>,
) -> nn::TrainingRecord {
    let mut notes = vec![(
        "data".to_owned(),
        data.data
            .as_ref()
            .map_or("on-board digits".to_owned(), |p| p.display().to_string()),
    )];
    if let Some(n) = data.sample {
        notes.push(("sample".to_owned(), n.to_string()));
    }
    notes.push(("test_fraction".to_owned(), data.test_fraction.to_string()));
    notes.push(("seed".to_owned(), data.seed.to_string()));
    if let Some(p) = warm_start {
        notes.push(("warm_start".to_owned(), p.display().to_string()));
    }
    nn::TrainingRecord {
        params: trainer.params().clone(),
        epochs: trainer.epoch(),
        data: notes,
    }
}

/// The metrics file: one row per epoch, no timings (the same seed gives the same file; the
/// timings are on stderr).
fn write_metrics(
    w: &mut dyn output::Sink,
    history: &[EpochMetrics],
    separations: &[crate::compute::Separation],
) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    let mut header: Vec<String> = [
        "epoch",
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
    ]
    .map(String::from)
    .to_vec();
    header.extend(frames::separation_header(separations));
    csv.write_record(&header)?;
    let figure = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
    for m in history {
        let mut row = vec![
            m.epoch.to_string(),
            m.train_loss.to_string(),
            m.train_accuracy.to_string(),
            figure(m.test_loss),
            figure(m.test_accuracy),
        ];
        row.extend(frames::separation_fields(separations, m.epoch));
        csv.write_record(&row)?;
    }
    csv.flush()
}

/// The training images the notebook embeds: the first `n` rows of the training split.
pub fn embed_rows(train: &Dataset, n: usize) -> Array2<f32> {
    let n = n.min(train.n_rows());
    train.features.slice(ndarray::s![..n, ..]).to_owned()
}

/// Check the t-SNE settings against the points there will be, before any training. The engine
/// refuses the same (perplexity below the point count, at least 2 points); here it is said in
/// the options' words, before minutes of training.
fn check_tsne(perplexity: f64, embed_n: usize, train_rows: usize) -> anyhow::Result<()> {
    let n = embed_n.min(train_rows);
    if n < 2 || perplexity >= n as f64 {
        bail!(
            "--perplexity {perplexity} needs more points than that: --n {embed_n} embeds {} \
             (the training split has {train_rows} rows); raise --n or lower --perplexity",
            plural(n, "point")
        );
    }
    Ok(())
}

/// `layerscope embed`.
pub fn embed(args: &EmbedArgs) -> anyhow::Result<()> {
    if let Some(wanted) = &args.frames {
        return frames::embed_frames(args, wanted);
    }
    let data = &args.data;
    let plan = Plan::new(
        &[("--out", args.out.as_path())],
        &inputs(data, args.model.model.as_deref()),
    )?;
    let split = load_data(data)?;
    let loaded = saved_model(&args.model, &split)?;
    let n_layers = planned_layers(&args.model, loaded.as_ref());
    let layers: Vec<usize> = if args.layers.is_empty() {
        (2..=n_layers).collect()
    } else {
        args.layers.clone()
    };
    if let Some(&bad) = layers.iter().find(|&&k| k == 0 || k > n_layers) {
        bail!("--layers {bad}: expected layers 1 (input) to {n_layers} (output)");
    }
    check_tsne(
        args.tsne.perplexity,
        args.tsne.embed_n,
        split.train.n_rows(),
    )?;
    neighbours::check_place(args.place, split.test.n_rows())?;
    // Issue 16 item 6: the projector's files, checked now (before training and t-SNE).
    let projector = args
        .projector
        .as_deref()
        .map(|dir| {
            projector::Projector::plan(
                dir,
                &layers,
                args.tsne.embed_n.min(split.train.n_rows()),
                split.train.image_shape,
                &args.out,
                &inputs(data, args.model.model.as_deref()),
            )
        })
        .transpose()?;
    let model = match loaded {
        Some(m) => m,
        None => model_for(&args.model, &split, data.seed)?,
    };
    let x = embed_rows(&split.train, args.tsne.embed_n);
    let n = x.nrows();
    let mut tables = Vec::new();
    for &k in &layers {
        let activations = model.layer_output(x.view(), k);
        let params = TsneParams {
            perplexity: args.tsne.perplexity,
            seed: data.seed,
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
        let trust = tsne::trust(activations.view(), embedding.coords.view())
            .map_or("n/a (10 points or fewer)".to_owned(), |t| format!("{t:.3}"));
        note!(
            "layer {k} ({} units, {n} points): KL {:.4}, trust (10-NN preserved) {trust}, {} iterations, {:.2} s",
            activations.ncols(),
            embedding.kl_divergence,
            embedding.n_iter,
            started.elapsed().as_secs_f64()
        );
        // Issue 13: the first --place test images placed into this map.
        let placed = neighbours::place_into(
            &model,
            activations.view(),
            embedding.coords.view(),
            &split.test,
            args.place,
            k,
            data.seed,
        )?;
        tables.push(neighbours::LayerMap {
            layer: k,
            coords: embedding.coords,
            placed,
        });
    }
    let staged = plan.stage(0, |w| {
        neighbours::write_embedding(w, &split, &model, &tables)
    })?;
    let mut staged = vec![staged];
    if let Some(p) = &projector {
        let labels = &split.train.labels[..n];
        let predictions = model.predict(x.view());
        let names = &split.train.class_names;
        staged.extend(p.stage(&model, x.view(), labels, &predictions, names)?);
    }
    Plan::commit(staged)
}

/// `layerscope snapshot`: run the pipeline to the end, then print one frame of a tab.
pub fn snapshot(args: &SnapshotArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let outputs: Vec<(&str, &Path)> = args.svg.iter().map(|p| ("--svg", p.as_path())).collect();
    let plan = Plan::new(&outputs, &inputs(data, args.model.model.as_deref()))?;
    let tab = Tab::from(args.tab);
    let tab_name = clap::ValueEnum::to_possible_value(&args.tab)
        .map_or(String::new(), |v| v.get_name().to_owned());
    note!(
        "snapshot: running the pipeline as far as the {tab_name} tab shows (train or load, embed \
         every layer, explain a test image)"
    );
    let app = snapshot_app(data, &args.model, &args.view, tab, args.film)?;
    // Plain text has no colours to tell pixels and classes apart: draw it as the no-colour
    // theme does (shade characters, digit glyphs); with --ansi, in 24-bit colour.
    let depth = if args.ansi {
        ColorDepth::TrueColor
    } else {
        ColorDepth::None
    };
    let theme = Theme::new(depth, args.view.ascii);
    let frame = render_snapshot_with(&app, tab, args.width, args.height, args.ansi, &theme);
    if args.svg.is_some() {
        let theme = Theme::new(ColorDepth::TrueColor, args.view.ascii);
        let buf = crate::tui::snapshot::render_buffer(&app, tab, args.width, args.height, &theme);
        let svg = crate::tui::svg::buffer_to_svg(&buf, &crate::tui::svg::SvgStyle::default());
        Plan::commit(vec![plan.stage(0, |w| w.write_all(svg.as_bytes()))?])?;
    }
    write_stdout(frame.as_bytes())
}

/// The app state as `tui::build_app` builds it, computed only as far as `tab` shows: the
/// training tab stops when the model is ready, the embeddings tab when the last layer is embedded
/// (when the explanation would start), the saliency tab runs to the end. A line of progress goes
/// to stderr for each stage (epochs, each layer's t-SNE, the explanation), so a long run is never
/// silent.
fn snapshot_app(
    data: &DataArgs,
    model: &ModelArgs,
    view: &ViewArgs,
    tab: Tab,
    film: bool,
) -> anyhow::Result<crate::tui::App> {
    use crate::compute::{self, Event};
    let mut app = crate::tui::App::new(view.perplexity);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut config = crate::tui::config(data, model, view)?;
    // The film is made after the final maps and takes minutes: only when asked for.
    if !film {
        config.film = false;
        config.film_models.clear();
    }
    let worker = compute::Worker::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let started = Instant::now();
    let mut failure = None;
    while let Ok(event) = rx.recv() {
        let seconds = started.elapsed().as_secs_f64();
        let enough = match &event {
            Event::Idle => break,
            Event::Epoch(m) => {
                note!("snapshot: epoch {} ({seconds:.1} s)", m.epoch);
                false
            }
            Event::ModelReady(_) => tab == Tab::Training,
            Event::EmbedStarted { layer, .. } => {
                note!("snapshot: t-SNE of layer {layer} ({seconds:.1} s)");
                false
            }
            // The worker explains the opening image before it embeds the layers (it is quick);
            // the saliency tab needs nothing more, the embeddings tab waits for every layer.
            Event::ExplainStarted { .. } => {
                note!("snapshot: explaining a test image ({seconds:.1} s)");
                false
            }
            Event::ExplainDone { .. } => tab == Tab::Saliency,
            Event::JobFailed { message, .. } => {
                failure.get_or_insert_with(|| message.clone());
                false
            }
            _ => false,
        };
        app.on_event(event, &worker.slots);
        if enough {
            break;
        }
    }
    worker.shutdown(Duration::from_secs(5));
    if let Some(message) = failure {
        bail!("{message}");
    }
    app.idle = true;
    Ok(app)
}

/// What the terminal app (and `snapshot`) needs, loaded and checked before the screen changes.
#[derive(Debug)]
pub struct Session {
    /// The data, split.
    pub split: Split,
    /// The model named by `--model`, checked against the data.
    pub model: Option<Mlp>,
}

/// Load and check the data and the model (or the size of the one to train) and the t-SNE
/// settings, so that every error is a message before the alternate screen, not a stuck panel.
pub fn preflight(data: &DataArgs, model: &ModelArgs, view: &ViewArgs) -> anyhow::Result<Session> {
    let split = load_data(data)?;
    let loaded = match &model.model {
        Some(path) => Some(nn::load_model(
            path,
            split.train.n_features(),
            split.train.n_classes(),
        )?),
        None => {
            split.check_trainable().map_err(anyhow::Error::msg)?;
            new_layer_sizes(model, &split)?;
            None
        }
    };
    check_tsne(view.perplexity, view.embed_n, split.train.n_rows())?;
    Ok(Session {
        split,
        model: loaded,
    })
}

/// Print an error the way every command does; a closed stderr is ignored.
pub fn report_error(e: &anyhow::Error) {
    let _ = writeln!(std::io::stderr(), "layerscope: error: {e:#}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn dataset(rows: usize) -> Dataset {
        let features = Array2::from_shape_fn((rows, 3), |(i, j)| ((i * 3 + j) % 5) as f32 / 4.0);
        Dataset {
            features,
            labels: (0..rows).map(|i| u8::from(i % 2 == 1)).collect(),
            class_names: vec!["a".into(), "b".into()],
            feature_names: vec!["x".into(), "y".into(), "z".into()],
            image_shape: None,
            source: "test".into(),
            rows: (0..rows).collect(),
        }
    }

    #[test]
    fn a_diverged_run_is_an_error_not_a_model() {
        let split = Split {
            train: dataset(40),
            test: dataset(10),
        };
        let params = TrainParams {
            hidden: vec![8],
            max_epochs: 20,
            learning_rate: 1e30,
            ..TrainParams::default()
        };
        let mut trainer = Trainer::new(3, 2, params);
        let e = run_training(&mut trainer, &split, 20).unwrap_err();
        assert!(e.to_string().contains("diverged"), "{e}");
        assert!(e.to_string().contains("nothing saved"), "{e}");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(
            printable("\u{1b}[31mred\r\u{202e}"),
            "\\u{1b}[31mred\\u{d}\\u{202e}"
        );
    }

    #[test]
    fn model_size_in_words() {
        let gb = 1_000_000_000;
        let sizes = [784, 100_000, 100_000, 10];
        let e = check_model_size_within("--hidden 100000,100000", &sizes, 22 * gb)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--hidden 100000,100000 needs 40.3 GB of weights (161.3 GB to train)"),
            "{e}"
        );
        assert!(e.ends_with("more than the 22.0 GB of memory available: expected smaller layers"));
        assert!(check_model_size_within("--hidden 100000,100000", &sizes, 200 * gb).is_ok());
        assert!(check_model_size("--hidden 8", &[784, 8, 10]).is_ok());
    }
}
