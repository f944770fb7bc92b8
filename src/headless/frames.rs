//! The film, headless (issue 12): `embed --frames all|E,E,...` writes every layer's map per
//! epoch, aligned from epoch to epoch, as one tidy table with an `epoch` column first;
//! `train --checkpoints DIR` saves `epoch_NNN.npz` after every epoch (and the untrained
//! network as `epoch_000.npz`); `--model DIR` opens such a folder. The frames are made by the
//! worker's own functions (`compute::film`), so a table and the app's film agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use ndarray::{ArrayView2, Axis, s};

use super::output::{Plan, Staged};
use super::{
    check_tsne, epoch_line, inputs, load_data, new_layer_sizes, planned_layers, train_params,
};
use crate::cli::{EmbedArgs, FramesSpec};
use crate::compute::{Frame, Separation, film};
use crate::data::Split;
use crate::nn::checkpoints::{checkpoint_name, load_checkpoints};
use crate::nn::{self, Mlp, StopReason, Trainer};

/// Training images whose separation `train` reports per epoch: the app's embedded sample
/// (the first 1,500 training rows, `compute::Config::embed_n`).
pub const SEPARATION_N: usize = 1500;

/// Train `trainer` one epoch at a time, handing the network to `on_model` at epoch 0 (before
/// training) and after every epoch; one line per epoch on stderr. The same weights as one
/// uninterrupted run (the epoch cap is raised one epoch at a time). A diverged run is an error.
///
/// # Errors
/// When the loss diverges, or `on_model` fails.
pub fn train_by_epoch(
    trainer: &mut Trainer,
    split: &Split,
    max_epochs: usize,
    on_model: &mut dyn FnMut(usize, &Mlp) -> anyhow::Result<()>,
) -> anyhow::Result<StopReason> {
    on_model(trainer.epoch(), trainer.model())?;
    let mut on_epoch = |m: &nn::EpochMetrics| note!("{}", epoch_line(m));
    loop {
        trainer.set_max_epochs(max_epochs.min(trainer.epoch() + 1));
        let stop = trainer.run(&split.train, Some(&split.test), &mut on_epoch, None);
        trainer.set_max_epochs(max_epochs);
        if let StopReason::Diverged { epoch } = stop {
            bail!(
                "the training loss diverged (not a finite number) at epoch {epoch}: nothing \
                 saved; try another --seed or smaller --hidden layers"
            );
        }
        on_model(trainer.epoch(), trainer.model())?;
        if stop != StopReason::MaxEpochs || trainer.epoch() >= max_epochs {
            return Ok(stop);
        }
    }
}

/// The per-epoch extras of `train`: the separation of every layer on the embedded sample, and
/// the checkpoints (`--checkpoints DIR`), staged as the epochs end and put in place with the
/// other outputs.
pub struct TrainFilm {
    dir: Option<PathBuf>,
    staged: Vec<Staged>,
    separations: Vec<Separation>,
    pixels: Option<f64>,
    /// Whether the separation figures are wanted (`--metrics`): they cost a k-NN search per
    /// layer per epoch, more than a short epoch itself.
    separation: bool,
    /// The `--checkpoints` folder is missing: it is made with the first checkpoint, so that a
    /// run that fails before (bad data, say) leaves nothing behind.
    create: bool,
}

impl TrainFilm {
    /// Check `--checkpoints DIR` before any work: a folder (created with the first checkpoint
    /// when missing), never a file
    /// replaced; its first checkpoint can be written there and is none of the `inputs`.
    ///
    /// # Errors
    /// When DIR is not a folder, cannot be created, or cannot be written.
    pub fn new(
        dir: Option<&Path>,
        separation: bool,
        inputs: &[(&str, &Path)],
    ) -> anyhow::Result<TrainFilm> {
        let mut create = false;
        if let Some(dir) = dir {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!(
                    "--checkpoints {}: not a folder: expected a folder for epoch_NNN.npz files \
                     (created when missing)",
                    dir.display()
                ),
                Err(_) => {
                    // Made with the first checkpoint (and any missing parent); a file where a
                    // parent folder should be is an error now, not after the data is read.
                    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
                    if parent.is_some_and(|p| p.exists() && !p.is_dir()) {
                        bail!(
                            "--checkpoints {}: {} is not a folder: expected a new folder inside \
                             an existing one",
                            dir.display(),
                            parent.unwrap_or(dir).display()
                        );
                    }
                    create = true;
                }
            }
            if inputs.iter().any(|(_, p)| same_folder(p, dir)) {
                bail!(
                    "--checkpoints {}: this is the input --model folder: choose another folder \
                     (layerscope never overwrites its own input)",
                    dir.display()
                );
            }
            if !create {
                Plan::new(&[("--checkpoints", &dir.join(checkpoint_name(0)))], inputs)?;
            }
        }
        Ok(TrainFilm {
            dir: dir.map(Path::to_path_buf),
            staged: Vec::new(),
            separations: Vec::new(),
            pixels: None,
            separation,
            create,
        })
    }

    /// Take in the network after `epoch` epochs.
    ///
    /// # Errors
    /// When its checkpoint cannot be written.
    pub fn epoch(&mut self, epoch: usize, mlp: &Mlp, split: &Split) -> anyhow::Result<()> {
        if self.separation {
            let n = SEPARATION_N.min(split.train.n_rows());
            let x = split.train.features.slice(s![..n, ..]);
            let separation = film::separation(mlp, x, &split.train.labels[..n], epoch, self.pixels);
            self.pixels = separation.shares.first().map(|&(_, p)| p);
            self.separations.push(separation);
        }
        if let Some(dir) = &self.dir {
            if std::mem::take(&mut self.create) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!(
                        "--checkpoints {}: cannot create the folder: {e}",
                        dir.display()
                    )
                })?;
            }
            let path = dir.join(checkpoint_name(epoch));
            let plan = Plan::new(&[("--checkpoints", &path)], &[])?;
            self.staged
                .push(plan.stage(0, |w| nn::write_model(mlp, w))?);
        }
        Ok(())
    }

    /// The checkpoints staged, to commit with the other outputs.
    pub fn staged(&mut self) -> Vec<Staged> {
        std::mem::take(&mut self.staged)
    }

    /// The separation of every layer after each epoch (epoch 0 first).
    pub fn separations(&self) -> &[Separation] {
        &self.separations
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The metrics columns `train` adds: `separation_l1`, ... one per layer.
pub fn separation_header(separations: &[Separation]) -> Vec<String> {
    separations
        .first()
        .map(|s| {
            s.shares
                .iter()
                .map(|(l, _)| format!("separation_l{l}"))
                .collect()
        })
        .unwrap_or_default()
}

/// The separation figures of `epoch`, in the columns of [`separation_header`].
pub fn separation_fields(separations: &[Separation], epoch: usize) -> Vec<String> {
    let width = separations.first().map_or(0, |s| s.shares.len());
    match separations.iter().find(|s| s.epoch == epoch) {
        Some(s) => s.shares.iter().map(|(_, v)| v.to_string()).collect(),
        None => vec![String::new(); width],
    }
}

/// The film `embed --frames` writes: the app's film once training has ended, made by the
/// same [`film::Reel`]. Every epoch's weights are kept as they end (in half precision, as the
/// app keeps them); then each layer's map of the trained network is a cold run (the app's
/// final map) and every earlier frame is warm-started from the one after it, newest first.
struct FilmTable<'a> {
    x: ArrayView2<'a, f32>,
    layers: &'a [usize],
    wanted: &'a FramesSpec,
    perplexity: f64,
    seed: u64,
    reel: film::Reel,
    /// Predictions of the embedded images by epoch (of the weights as they were).
    predictions: BTreeMap<usize, Vec<u8>>,
    /// Epoch -> (frames in `layers` order, predictions).
    written: BTreeMap<usize, (Vec<Frame>, Vec<u8>)>,
    /// The last epoch seen.
    end: Option<usize>,
}

impl FilmTable<'_> {
    fn wants(&self, epoch: usize) -> bool {
        match self.wanted {
            FramesSpec::All => true,
            FramesSpec::Epochs(list) => list.contains(&epoch),
        }
    }

    /// Keep the network after `epoch` epochs.
    fn epoch(&mut self, epoch: usize, mlp: &Mlp) {
        self.end = Some(epoch);
        self.reel.keep(epoch, mlp);
        if self.wants(epoch) {
            self.predictions.insert(epoch, mlp.predict(self.x));
        }
    }

    /// Make the film as the app does once training has ended, and keep the epochs wanted.
    fn film(&mut self) -> anyhow::Result<()> {
        let (x, perplexity, seed) = (self.x, self.perplexity, self.seed);
        self.reel.settle();
        // The anchors: each layer's final map of the trained network (the app's `Embed` job,
        // adopted by its reel), a cold run.
        if let Some((last, model)) = self.reel.newest().map(|(e, m)| (e, m.clone())) {
            for &layer in self.layers.iter().filter(|&&l| l > 1) {
                let high = model.layer_output(x, layer);
                let frame =
                    film::make_frame(high.view(), None, layer, last, perplexity, seed, None)
                        .map_err(|e| {
                            anyhow::anyhow!("t-SNE of layer {layer} at epoch {last}: {e}")
                        })?;
                self.reel.adopt(&frame, high.view());
                self.keep(frame);
            }
        }
        let layers: std::collections::BTreeSet<usize> = self.layers.iter().copied().collect();
        while let Some((epoch, todo)) = self.reel.next_epoch(&layers) {
            let frames = self
                .reel
                .make_epoch(x, &todo, epoch, perplexity, seed, None)
                .unwrap_or_default();
            for (frame, layer) in frames.into_iter().zip(&todo) {
                let frame = frame
                    .map_err(|e| anyhow::anyhow!("t-SNE of layer {layer} at epoch {epoch}: {e}"))?;
                self.keep(frame);
            }
        }
        // Layer 1 (the pixels) does not change: its one frame is epoch 0's, shown at every
        // epoch.
        let pixels = self
            .written
            .get(&0)
            .and_then(|(frames, _)| frames.iter().find(|f| f.layer == 1))
            .map(|f| f.coords.clone());
        let epochs: Vec<usize> = self
            .reel
            .models
            .keys()
            .copied()
            .filter(|&e| self.wants(e))
            .collect();
        for &epoch in &epochs {
            let predictions = self.predictions.remove(&epoch).unwrap_or_default();
            let entry = self.written.entry(epoch).or_default();
            entry.1 = predictions;
            if let Some(coords) = &pixels
                && epoch > 0
            {
                entry.0.push(Frame {
                    layer: 1,
                    epoch,
                    coords: coords.clone(),
                    kl_divergence: None,
                    trust: None,
                });
            }
            let order = |f: &Frame| self.layers.iter().position(|&l| l == f.layer);
            entry.0.sort_by_key(order);
            let shown: Vec<String> = entry
                .0
                .iter()
                .map(|f| {
                    let kl = f.kl_divergence.map_or("-".into(), |k| format!("{k:.3}"));
                    let trust = f.trust.map_or("-".into(), |t| format!("{t:.3}"));
                    format!("layer {} KL {kl} trust {trust}", f.layer)
                })
                .collect();
            note!("frames of epoch {epoch}: {}", shown.join(", "));
        }
        self.written.retain(|e, _| epochs.contains(e));
        Ok(())
    }

    /// Keep `frame` for the table.
    fn keep(&mut self, frame: Frame) {
        self.written.entry(frame.epoch).or_default().0.push(frame);
    }
}

/// `layerscope embed --frames`: the film of a run trained now, or of a folder of checkpoints
/// (`--model DIR`).
///
/// # Errors
/// Bad options, data or models; an epoch asked for that the run does not reach.
pub fn embed_frames(args: &EmbedArgs, wanted: &FramesSpec) -> anyhow::Result<()> {
    let data = &args.data;
    let model_path = args.model.model.as_deref();
    let plan = Plan::new(&[("--out", args.out.as_path())], &inputs(data, model_path))?;
    let split = load_data(data)?;
    let (n_features, n_classes) = (split.train.n_features(), split.train.n_classes());
    let checkpoints = match model_path {
        Some(path) if path.is_dir() => Some(load_checkpoints(path, n_features, n_classes)?),
        Some(path) => bail!(
            "--frames needs the network after every epoch, and --model {} is one model: train \
             here (no --model), or give a folder of checkpoints (--model DIR, written by \
             `layerscope train --checkpoints DIR`)",
            path.display()
        ),
        None => None,
    };
    let last = checkpoints.as_ref().and_then(|c| c.last().map(|(_, m)| m));
    let n_layers = planned_layers(&args.model, last);
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
    let n = args.tsne.embed_n.min(split.train.n_rows());
    let x = split.train.features.slice(s![..n, ..]);
    let mut table = FilmTable {
        x,
        layers: &layers,
        wanted,
        perplexity: args.tsne.perplexity,
        seed: data.seed,
        reel: film::Reel::default(),
        predictions: BTreeMap::new(),
        written: BTreeMap::new(),
        end: None,
    };
    // The whole run, whatever the epochs written: the film is anchored at the trained
    // network's maps, as the app's is once training has ended.
    match checkpoints {
        Some(models) => {
            for (epoch, mlp) in models {
                table.epoch(epoch, &mlp);
            }
        }
        None => {
            split.check_trainable().map_err(anyhow::Error::msg)?;
            new_layer_sizes(&args.model, &split)?;
            let params = train_params(&args.model, data.seed);
            let max_epochs = params.max_epochs;
            if let FramesSpec::Epochs(list) = wanted
                && let Some(late) = list.iter().find(|&&e| e > max_epochs)
            {
                bail!("--frames {late}: after the last epoch ({max_epochs}, --epochs)");
            }
            let mut trainer = Trainer::new(n_features, n_classes, params);
            note!("no --model given: training, then the film of every layer, newest epoch first");
            train_by_epoch(
                &mut trainer,
                &split,
                max_epochs.max(1),
                &mut |epoch, mlp| {
                    table.epoch(epoch, mlp);
                    Ok(())
                },
            )?;
        }
    }
    if let FramesSpec::Epochs(list) = wanted
        && let Some(missing) = list.iter().find(|e| !table.reel.models.contains_key(e))
    {
        bail!(
            "--frames {missing}: the run has no epoch {missing} in its film (it ended after {} \
             epochs, and a run of more than {} epochs keeps a spaced subset): nothing written",
            table.end.unwrap_or(0),
            film::KEPT_EPOCHS_MAX
        );
    }
    table.film()?;
    let names = &split.train.class_names;
    let labels = &split.train.labels[..n];
    let written = &table.written;
    let staged = plan.stage(0, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["epoch", "index", "layer", "x", "y", "label", "prediction"])?;
        for (epoch, (frames, predictions)) in written {
            for frame in frames {
                for (i, xy) in frame.coords.axis_iter(Axis(0)).enumerate() {
                    let prediction = names
                        .get(usize::from(predictions[i]))
                        .map_or("?", String::as_str);
                    csv.write_record([
                        epoch.to_string().as_str(),
                        &i.to_string(),
                        &frame.layer.to_string(),
                        &xy[0].to_string(),
                        &xy[1].to_string(),
                        &names[usize::from(labels[i])],
                        prediction,
                    ])?;
                }
            }
        }
        csv.flush()
    })?;
    Plan::commit(vec![staged])
}

/// The weights of a saved run by epoch, for the app's film: every checkpoint of `--model DIR`;
/// nothing for a model file or a run trained now.
///
/// # Errors
/// When a checkpoint cannot be read or does not fit the data.
pub fn film_models(
    model: Option<&Path>,
    n_features: usize,
    n_classes: usize,
) -> anyhow::Result<Vec<(usize, Arc<Mlp>)>> {
    match model {
        Some(dir) if dir.is_dir() => Ok(load_checkpoints(dir, n_features, n_classes)?
            .into_iter()
            .map(|(e, m)| (e, Arc::new(m)))
            .collect()),
        _ => Ok(Vec::new()),
    }
}
