//! The worker thread: it owns the trainer and the model, keeps what is wanted ([`Wants`]), and
//! runs the job [`Wants::next`] derives, each with its own [`Cancel`] token. The UI's
//! [`Worker::send`] cancels the running job when the command supersedes it, under the same lock
//! the worker takes to absorb commands and start the next job, so a command never misses the job
//! it supersedes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ndarray::{ArrayView2, Axis, s};

use super::cancel::Cancel;
use super::film::{self, Reel};
use super::jobs::{Job, Training, Wants};
use super::protocol::{ClassMeanRequest, ClassMeanSnapshot};
use super::protocol::{
    Command, Config, EmbedSnapshot, Event, ExplainRequest, Frame, JobKind, ModelReport,
    SaliencySnapshot,
};
use super::slot::Slots;
use crate::Cancelled;
use crate::data::{Dataset, Part, Split};
use crate::explain::{self, ExplainParams, PreparedBackground};
use crate::nn::{self, Mlp, StopReason, Trainer};
use crate::tsne;

/// The job running now and its token, shared by the worker and its handle.
type Running = Arc<Mutex<Option<(JobKind, Cancel)>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `command` makes a running job of `kind` pointless.
fn supersedes(command: &Command, kind: JobKind) -> bool {
    match command {
        Command::Pause | Command::StopTraining => kind == JobKind::Train,
        Command::RestartTraining { .. } | Command::Quit => true,
        Command::Embed { .. } | Command::EmbedLayers { .. } => kind == JobKind::Embed,
        Command::Explain(_) | Command::ExplainClassMean(_) => kind == JobKind::Explain,
        Command::Resume => false,
    }
}

/// The UI's handle on the worker thread.
pub struct Worker {
    tx: Sender<Command>,
    running: Running,
    /// Latest-wins payloads.
    pub slots: Arc<Slots>,
    done: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the worker; `notify` is called from the worker thread for every event.
    pub fn spawn(config: Config, notify: impl Fn(Event) + Send + 'static) -> Worker {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let running = Running::default();
        let slots = Arc::new(Slots::default());
        let (r, sl) = (Arc::clone(&running), Arc::clone(&slots));
        let handle = std::thread::Builder::new()
            .name("compute".into())
            .spawn(move || {
                let mut state = WorkerState::new(config, rx, r, sl, Box::new(notify));
                state.run();
                let _ = done_tx.send(());
            })
            .ok();
        Worker {
            tx,
            running,
            slots,
            done,
            handle,
        }
    }

    /// Send a command, first cancelling the running job when the command supersedes it.
    pub fn send(&self, command: Command) {
        let running = lock(&self.running);
        if let Some((kind, token)) = running.as_ref()
            && supersedes(&command, *kind)
        {
            token.cancel();
        }
        let _ = self.tx.send(command);
    }

    /// Ask the worker to stop and wait for it at most `timeout` (a job deep inside an engine may
    /// take a moment to see its cancel token; the process may exit without it).
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.send(Command::Quit);
        let finished = self.done.recv_timeout(timeout).is_ok();
        if finished && let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        finished
    }
}

/// The rows of one part of the split.
fn part(split: &Split, part: Part) -> &Dataset {
    match part {
        Part::Train => &split.train,
        Part::Test => &split.test,
    }
}

struct WorkerState {
    config: Config,
    rx: Receiver<Command>,
    running: Running,
    slots: Arc<Slots>,
    notify: Box<dyn Fn(Event) + Send>,
    /// A saved model was given: nothing to train or retrain.
    loaded: bool,
    trainer: Option<Trainer>,
    model: Option<Mlp>,
    /// The model's pass over the background (first layer of every row, mean outputs), made
    /// once per model and shared by every explanation of it.
    prepared: Option<PreparedBackground>,
    wants: Wants,
    include_input: bool,
    /// The latest explanation request, asked again after a restart.
    last_explain: ExplainRequest,
    /// The film's weights per epoch and what it has made.
    reel: Reel,
    /// Seconds the film may still take while training runs (it earns [`FILM_SHARE`] of each
    /// training turn and spends what its jobs take).
    film_credit: f64,
    /// How long the film's last job took: the next one starts while training runs only when
    /// the credit covers that much (no overshoot of the budget by a long job).
    film_job_seconds: f64,
    /// The film failed at this perplexity (too few points, say): not tried again until the
    /// perplexity or the run changes.
    film_failed: bool,
    /// The separation of the input pixels (the same for every epoch).
    pixels_share: Option<f64>,
}

/// The share of the training time the film may take while training runs (a film job starts
/// only when the time saved up covers the last one's length), and the rest of the film is made
/// after it. Training is slowed by a little more than this share (caches, the weights kept per
/// epoch): with 0.2 and this round's faster training, `cargo bench --bench film --
/// --worker-only --runs 5` measured +16%, +25% and +44% in three sets (median of the 15 runs
/// +25%, the goal's edge). The frames made while training are a preview, remade after it, so a
/// smaller share costs only how closely the preview follows.
pub const FILM_SHARE: f64 = 0.15;
/// The most the film may save up (a long turn of training does not buy a long pause later).
const FILM_CREDIT_MAX: f64 = 0.5;

impl WorkerState {
    fn new(
        mut config: Config,
        rx: Receiver<Command>,
        running: Running,
        slots: Arc<Slots>,
        notify: Box<dyn Fn(Event) + Send>,
    ) -> WorkerState {
        let model = config.model.take();
        let perplexity = config.perplexity;
        WorkerState {
            config,
            rx,
            running,
            slots,
            notify,
            loaded: model.is_some(),
            trainer: None,
            model,
            prepared: None,
            wants: Wants {
                training: Training::Idle,
                report: false,
                layers: std::collections::BTreeSet::new(),
                perplexity,
                explanation: None,
                film: None,
                film_budget: false,
                class_mean: None,
            },
            include_input: false,
            last_explain: ExplainRequest::first(),
            reel: Reel::default(),
            film_credit: 0.0,
            film_job_seconds: 0.0,
            film_failed: false,
            pixels_share: None,
        }
    }

    fn emit(&self, event: Event) {
        (self.notify)(event);
    }

    fn fail(&self, job: JobKind, message: String) {
        self.emit(Event::JobFailed { job, message });
    }

    fn embed_rows(&self) -> std::ops::Range<usize> {
        self.config.split.embedded(self.config.embed_n)
    }

    fn run(&mut self) {
        if let Err(message) = self.start() {
            self.fail(JobKind::Load, message);
            self.wait_for_quit();
            return;
        }
        loop {
            let next = {
                let shared = Arc::clone(&self.running);
                let mut running = lock(&shared);
                *running = None;
                // Commands sent until now are taken in under the lock; those sent later find
                // the new job's token in `running`.
                while let Ok(command) = self.rx.try_recv() {
                    if !self.absorb(command) {
                        return;
                    }
                }
                // Training has ended: the film is remade newest first from the trained
                // network's map ([`Reel::settle`]).
                if self.wants.training == Training::Idle {
                    self.reel.settle();
                }
                self.wants.film = self.next_film_job();
                self.wants.film_budget =
                    self.film_credit > 0.0 && self.film_credit >= self.film_job_seconds;
                let job = self.wants.next(self.model.is_some());
                job.map(|job| {
                    let token = Cancel::new();
                    *running = Some((job.kind(), token.clone()));
                    (job, token)
                })
            };
            match next {
                Some((job, token)) => self.run_job(job, &token),
                None => {
                    if self.wants.training != Training::Paused {
                        self.emit(Event::Idle);
                    }
                    let Ok(command) = self.rx.recv() else { return };
                    if !self.absorb(command) {
                        return;
                    }
                }
            }
        }
    }

    /// Announce the data, then adopt the given model or start training; want the rest.
    fn start(&mut self) -> Result<(), String> {
        let split = Arc::clone(&self.config.split);
        self.emit(Event::DataReady {
            split: Arc::clone(&split),
            embed_n: self.embed_rows().len(),
        });
        match &self.model {
            Some(model) => {
                model
                    .check_fits(split.train.n_features(), split.train.n_classes())
                    .map_err(|e| format!("the model does not fit the data: {e}"))?;
                self.wants.report = true;
                // A saved run (`--model DIR`): its film is made from its checkpoints.
                if self.config.film {
                    // The reel keeps them in half precision: the f32 copies are not kept.
                    for (epoch, m) in std::mem::take(&mut self.config.film_models) {
                        m.check_fits(split.train.n_features(), split.train.n_classes())
                            .map_err(|e| format!("checkpoint of epoch {epoch}: {e}"))?;
                        self.reel.keep(epoch, &m);
                    }
                }
            }
            None => self.new_session(self.config.seed),
        }
        self.wants.layers = self.layers();
        self.wants.explanation = Some(self.last_explain);
        Ok(())
    }

    fn wait_for_quit(&self) {
        self.emit(Event::Idle);
        while let Ok(command) = self.rx.recv() {
            if command == Command::Quit {
                return;
            }
        }
    }

    /// The layers to embed, notebook numbering (1 = input pixels).
    fn layers(&self) -> std::collections::BTreeSet<usize> {
        let first = if self.include_input { 1 } else { 2 };
        (first..=self.n_layers()).collect()
    }

    fn new_session(&mut self, seed: u64) {
        let split = &self.config.split;
        let (n_features, n_classes) = (split.train.n_features(), split.train.n_classes());
        let mut layer_sizes = vec![n_features];
        layer_sizes.extend_from_slice(&self.config.hidden);
        layer_sizes.push(n_classes);
        let params = nn::TrainParams {
            hidden: self.config.hidden.clone(),
            max_epochs: self.config.max_epochs,
            seed,
            ..self.config.train.clone()
        };
        self.trainer = Some(Trainer::new(n_features, n_classes, params));
        // A restart clears the film; epoch 0 is the untrained network.
        self.reel.clear();
        self.film_credit = 0.0;
        self.film_failed = false;
        if self.config.film
            && let Some(t) = &self.trainer
        {
            self.reel.keep(0, t.model());
        }
        self.model = None;
        self.prepared = None;
        self.wants.training = Training::Running;
        self.wants.report = true;
        self.emit(Event::TrainingStarted {
            seed,
            max_epochs: self.config.max_epochs,
            layer_sizes,
        });
    }

    /// Take a command in (it changes what is wanted); false means quit.
    fn absorb(&mut self, command: Command) -> bool {
        match command {
            Command::Quit => return false,
            Command::Pause => {
                if self.wants.training == Training::Running {
                    self.wants.training = Training::Paused;
                    self.emit(Event::TrainingStopped(StopReason::Cancelled));
                }
            }
            Command::Resume => {
                if self.wants.training == Training::Paused {
                    self.wants.training = Training::Running;
                }
            }
            // The model so far is kept: `report` is still wanted, and what follows it.
            Command::StopTraining => self.wants.training = Training::Idle,
            Command::RestartTraining { seed } => {
                if self.loaded {
                    self.fail(
                        JobKind::Train,
                        "a saved model was given (--model): nothing to retrain".into(),
                    );
                    return true;
                }
                self.new_session(seed);
                self.wants.layers = self.layers();
                self.wants.explanation = Some(self.last_explain);
            }
            Command::Embed {
                perplexity,
                include_input,
            } => {
                self.new_film_perplexity(perplexity);
                self.include_input = include_input;
                self.wants.perplexity = perplexity;
                self.wants.layers = self.layers();
            }
            Command::EmbedLayers {
                perplexity,
                include_input,
                layers,
            } => {
                self.new_film_perplexity(perplexity);
                self.include_input = include_input;
                self.wants.perplexity = perplexity;
                let valid = self.layers();
                self.wants.layers = layers.into_iter().filter(|l| valid.contains(l)).collect();
            }
            Command::Explain(request) => {
                self.last_explain = request;
                self.wants.explanation = Some(request);
                self.wants.class_mean = None;
            }
            // The view shows one map: a class-level map replaces the explanation asked for.
            Command::ExplainClassMean(request) => {
                self.wants.class_mean = Some(request);
                self.wants.explanation = None;
            }
        }
        true
    }

    /// A new perplexity remakes the film in the chain's order (oldest first while training
    /// runs, newest first from the trained network's map once it has ended: [`Reel::settle`]);
    /// the weights are kept.
    fn new_film_perplexity(&mut self, perplexity: f64) {
        if perplexity != self.wants.perplexity {
            self.reel.restart_frames();
            self.film_failed = false;
        }
    }

    /// The film's next job: the separation of the oldest epoch without one (cheap, and the
    /// chart wants every epoch), then the next frame of the chain ([`Reel::next`]).
    fn next_film_job(&self) -> Option<Job> {
        if !self.config.film || self.film_failed {
            return None;
        }
        let layers = self.layers();
        let n_layers = self.n_layers();
        // Once training has ended, an epoch whose frames are all still to make gets its
        // separation from their neighbour searches ([`Reel::separation_of_frames`]).
        if let Some(&epoch) = self.reel.models.keys().find(|&&e| {
            !self.reel.separated.contains(&e)
                && !self.reel.separation_comes_with_frames(e, &layers, n_layers)
        }) {
            return Some(Job::Separation { epoch });
        }
        self.reel.next(&layers).map(|(layer, epoch)| Job::Frame {
            layer,
            epoch,
            perplexity: self.wants.perplexity,
        })
    }

    fn run_job(&mut self, job: Job, cancel: &Cancel) {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| match &job {
            Job::Train => self.train(cancel),
            Job::Finish => self.finish(),
            Job::Embed { layer, perplexity } => self.embed(*layer, *perplexity, cancel),
            Job::Explain(request) => self.explain(*request, cancel),
            Job::Separation { epoch } => self.separation(*epoch),
            Job::Frame {
                layer,
                epoch,
                perplexity,
            } => self.frame(*layer, *epoch, *perplexity, cancel),
            Job::ClassMean(request) => self.class_mean(*request, cancel),
        }));
        // The film's budget: it earns a share of every turn of training, and spends what its
        // own jobs take while training is wanted.
        let seconds = started.elapsed().as_secs_f64();
        if job == Job::Train {
            // Enough can be saved up for one job like the last one, never much more.
            let cap = FILM_CREDIT_MAX.max(self.film_job_seconds);
            self.film_credit = (self.film_credit + FILM_SHARE * seconds).min(cap);
        } else if job.is_film() {
            self.film_job_seconds = seconds;
            if self.wants.training == Training::Running {
                self.film_credit -= seconds;
            }
        }
        let failed = match &outcome {
            Ok(Ok(())) => false,
            Ok(Err(e)) => !e.is::<Cancelled>() && !e.is::<EpochDone>(),
            Err(_) => true,
        };
        if failed && job.is_film() {
            self.film_failed = true;
        }
        let message = match outcome {
            Ok(Ok(())) => None,
            // Training came back after an epoch: it is still wanted.
            Ok(Err(e)) if e.is::<EpochDone>() => return,
            // Still wanted unless the command that cancelled it changed that.
            Ok(Err(e)) if e.is::<Cancelled>() => return,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(panic) => Some(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into())
            )),
        };
        self.wants.done(&job);
        if let Some(message) = message {
            self.fail(job.kind(), message);
        }
    }

    /// Train (or resume) until the engine stops.
    fn train(&mut self, cancel: &Cancel) -> anyhow::Result<()> {
        // Test hook for the end-to-end tests: a panicking job is reported, the app lives on.
        #[cfg(feature = "test-support")]
        if std::env::var("LAYERSCOPE_TEST_PANIC").as_deref() == Ok("worker") {
            panic!("test panic in the training job");
        }
        let split = Arc::clone(&self.config.split);
        let Some(trainer) = self.trainer.as_mut() else {
            return Ok(());
        };
        let notify = &self.notify;
        let mut on_epoch = |m: &nn::EpochMetrics| notify(Event::Epoch(m.clone()));
        // With the film, training comes back after every epoch (the epoch cap one above the
        // epochs done), so that the epoch's weights are kept and the film can take its turn;
        // the next turn goes on exactly as one uninterrupted run would.
        let cap = self.config.max_epochs;
        if self.config.film {
            trainer.set_max_epochs(cap.min(trainer.epoch() + 1));
        }
        let reason = trainer.run(
            &split.train,
            Some(&split.test),
            &mut on_epoch,
            Some(cancel.flag()),
        );
        trainer.set_max_epochs(cap);
        if self.config.film && reason != StopReason::Cancelled {
            let epoch = trainer.epoch();
            let finite = trainer
                .history()
                .last()
                .is_some_and(|m| m.train_loss.is_finite());
            if finite && !self.reel.models.contains_key(&epoch) {
                self.reel.keep(epoch, trainer.model());
            }
            if reason == StopReason::MaxEpochs && epoch < cap {
                // Not the end: training is still wanted.
                return Err(EpochDone.into());
            }
        }
        match reason {
            StopReason::Cancelled => return Err(Cancelled.into()),
            // The engine's rule: a diverged model is neither shown nor explained.
            StopReason::Diverged { epoch } => {
                self.wants.report = false;
                self.emit(Event::TrainingStopped(reason));
                anyhow::bail!("the training loss diverged at epoch {epoch}: no model to show");
            }
            _ => self.emit(Event::TrainingStopped(reason)),
        }
        Ok(())
    }

    /// Adopt the model so far and report what it predicts.
    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(trainer) = &self.trainer {
            self.model = Some(trainer.model().clone());
            self.prepared = None;
        }
        let model = self.model.as_ref().context("no model")?;
        let split = &self.config.split;
        let embed = split.train.features.slice(s![self.embed_rows(), ..]);
        let embed_probs = model.predict_proba(embed);
        let test_probs = model.predict_proba(split.test.features.view());
        let preds = model.predict(split.test.features.view());
        let confusion = nn::confusion_matrix(&split.test.labels, &preds, split.test.n_classes());
        let embed_layers = (1..=model.n_layers())
            .map(|k| model.layer_output(embed, k))
            .collect();
        self.emit(Event::ModelReady(Arc::new(ModelReport {
            model: Arc::new(model.clone()),
            embed_layers,
            layer_sizes: model.layer_sizes(),
            embed_probs,
            test_probs,
            per_class_accuracy: nn::per_class_accuracy(&confusion),
            confusion,
        })));
        Ok(())
    }

    fn embed(&mut self, layer: usize, perplexity: f64, cancel: &Cancel) -> anyhow::Result<()> {
        let model = self.model.as_ref().context("no model to embed")?;
        if layer > model.n_layers() {
            return Ok(());
        }
        let x = self
            .config
            .split
            .train
            .features
            .slice(s![self.embed_rows(), ..]);
        let high = model.layer_output(x, layer);
        self.emit(Event::EmbedStarted {
            layer,
            size: high.ncols(),
            perplexity,
        });
        let (notify, slots) = (&self.notify, &self.slots);
        let mut progress = |p: &tsne::TsneProgress<'_>| {
            let snapshot = EmbedSnapshot {
                layer,
                iteration: p.iteration,
                n_iter: p.n_iter,
                kl_divergence: p.kl_divergence,
                coords: p.embedding.to_owned(),
            };
            if slots.embedding.put(snapshot) {
                notify(Event::EmbedProgress);
            }
        };
        let params = tsne::TsneParams {
            perplexity,
            seed: self.config.seed,
            progress_every: 10,
            ..tsne::TsneParams::default()
        };
        let result = tsne::tsne(
            high.view(),
            &params,
            Some(&mut progress),
            Some(cancel.flag()),
        );
        cancel.check()?;
        let embedding = result?;
        let trust = tsne::trust(high.view(), embedding.coords.view());
        // The film's remake after training starts from the trained network's cold map: when
        // this model is the last epoch's, this map is that frame (same run), not made twice.
        let anchor = self
            .reel
            .newest()
            .filter(|(_, m)| {
                self.config.film
                    && self.reel.backward
                    && perplexity == self.wants.perplexity
                    && layer > 1
                    && *m == model
            })
            .map(|(epoch, _)| epoch)
            .filter(|&epoch| !self.reel.made.contains(&(layer, epoch)));
        let placed = self.place(model, &high, &embedding, layer, cancel)?;
        let anchor = anchor.map(|epoch| Frame {
            layer,
            epoch,
            coords: embedding.coords.clone(),
            kl_divergence: Some(embedding.kl_divergence),
            trust,
        });
        self.emit(Event::EmbedDone {
            layer,
            embedding,
            trust,
            placed,
        });
        if let Some(frame) = anchor {
            self.reel.adopt(&frame, high.view());
            self.emit(Event::Frame(frame));
        }
        Ok(())
    }

    /// Issue 13: the first `place_n` test rows placed into a layer's final map, which stays as
    /// it is; cancellable with the embedding's token.
    fn place(
        &self,
        model: &Mlp,
        reference: &ndarray::Array2<f32>,
        embedding: &tsne::Embedding,
        layer: usize,
        cancel: &Cancel,
    ) -> anyhow::Result<Option<ndarray::Array2<f32>>> {
        let test = &self.config.split.test.features;
        let m = self.config.place_n.min(test.nrows());
        if m == 0 {
            return Ok(None);
        }
        let new = model.layer_output(test.slice(s![..m, ..]), layer);
        let params = tsne::PlaceParams {
            seed: self.config.seed,
            ..tsne::PlaceParams::default()
        };
        let result = tsne::place_with(
            reference.view(),
            embedding.coords.view(),
            new.view(),
            &params,
            Some(cancel.flag()),
        );
        cancel.check()?;
        Ok(Some(result?))
    }

    /// The separation of every layer after `epoch` (`Event::Separation`).
    fn separation(&mut self, epoch: usize) -> anyhow::Result<()> {
        self.reel.separated.insert(epoch);
        let Some(model) = self.reel.model(epoch) else {
            return Ok(());
        };
        let split = Arc::clone(&self.config.split);
        let rows = self.embed_rows();
        let x = split.train.features.slice(s![rows.clone(), ..]);
        let labels = &split.train.labels[rows];
        let pixels = self.pixels_share(x, labels);
        let separation = film::separation(&model, x, labels, epoch, Some(pixels));
        self.emit(Event::Separation(separation));
        Ok(())
    }

    /// Frame (`layer`, `epoch`) of the film and, once training has ended, the other frames of
    /// `epoch` still to make ([`Reel::next_epoch`]), made at once ([`Reel::make_epoch`]: one task per layer, each
    /// from its own layer's predecessor), one `Event::Frame` each, shallowest first.
    fn frame(
        &mut self,
        layer: usize,
        epoch: usize,
        perplexity: f64,
        cancel: &Cancel,
    ) -> anyhow::Result<()> {
        let split = Arc::clone(&self.config.split);
        let x = split.train.features.slice(s![self.embed_rows(), ..]);
        let seed = self.config.seed;
        // While training runs, one frame per job: a film job there is a turn taken from
        // training (and one in flight when training ends delays the final maps).
        let layers = match self.reel.next_epoch(&self.layers()) {
            Some((e, todo)) if self.reel.backward && e == epoch && todo.contains(&layer) => todo,
            _ => vec![layer],
        };
        let n_layers = self.n_layers();
        let separation = !self.reel.separated.contains(&epoch)
            && self
                .reel
                .separation_comes_with_frames(epoch, &self.layers(), n_layers);
        let Some(results) =
            self.reel
                .make_epoch(x, &layers, epoch, perplexity, seed, Some(cancel.flag()))
        else {
            return Ok(());
        };
        cancel.check()?;
        for (result, layer) in results.into_iter().zip(&layers) {
            let frame = result.with_context(|| format!("film: layer {layer}, epoch {epoch}"))?;
            self.emit(Event::Frame(frame));
        }
        if separation {
            let labels = &split.train.labels[self.embed_rows()];
            let pixels = self.pixels_share(x, labels);
            if let Some(s) = self
                .reel
                .separation_of_frames(epoch, n_layers, labels, pixels)
            {
                self.reel.separated.insert(epoch);
                self.emit(Event::Separation(s));
            }
        }
        Ok(())
    }

    /// The separation's layer 1 (the embedded rows `x` and their `labels`): found once, since
    /// the pixels never change.
    fn pixels_share(&mut self, x: ArrayView2<f32>, labels: &[u8]) -> f64 {
        *self
            .pixels_share
            .get_or_insert_with(|| film::label_share(x, labels, film::SEPARATION_K))
    }

    /// Layers of the network (notebook numbering, 1 = pixels): the model's, or while training
    /// runs the configured network's (the film's epochs are of the same network).
    fn n_layers(&self) -> usize {
        self.model
            .as_ref()
            .map_or(self.config.hidden.len() + 2, Mlp::n_layers)
    }

    fn explain(&mut self, request: ExplainRequest, cancel: &Cancel) -> anyhow::Result<()> {
        let split = Arc::clone(&self.config.split);
        let model = self.model.as_ref().context("no model to explain")?;
        if self.prepared.is_none() {
            self.prepared = PreparedBackground::new(model, split.train.features.view()).ok();
        }
        let data = part(&split, request.part);
        anyhow::ensure!(
            request.index < data.n_rows(),
            "image {} does not exist",
            request.index
        );
        let x = data.features.row(request.index);
        let class = match request.class {
            Some(c) => c,
            None => usize::from(model.predict(x.insert_axis(Axis(0)))[0]),
        };
        self.emit(Event::ExplainStarted { request, class });
        let start = Instant::now();
        let (notify, slots) = (&self.notify, &self.slots);
        let mut progress = |p: &explain::ExplainProgress<'_>| {
            let snapshot = SaliencySnapshot {
                id: request.id,
                values: p.values.to_vec(),
                stderr: p.stderr.map(|s| s.to_vec()),
                samples_done: p.samples_done,
                samples_total: p.samples_total,
                seconds: start.elapsed().as_secs_f64(),
            };
            if slots.saliency.put(snapshot) {
                notify(Event::ExplainProgress);
            }
        };
        // The method's own defaults (samples, steps) come from the engine.
        let params = ExplainParams {
            class: Some(class),
            versus: request.versus,
            units: request.units,
            seed: self.config.seed,
            progress_every: 5,
            ..ExplainParams::for_method(request.method)
        };
        // The notebook's background: the training images (the estimators sample rows of it).
        let result = explain::explain_prepared(
            model,
            x,
            split.train.features.view(),
            self.prepared.as_ref(),
            &params,
            Some(&mut progress),
            Some(cancel.flag()),
        );
        cancel.check()?;
        let attribution = result?;
        self.emit(Event::ExplainDone {
            id: request.id,
            attribution,
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok(())
    }
}

/// The training job came back after an epoch with more to do (not a failure).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("an epoch is done")]
struct EpochDone;
impl WorkerState {
    /// A class-level map (issue 14): the mean attribution over the request's test images, the
    /// running map in the slot after each image, against the model's prepared background.
    fn class_mean(&mut self, request: ClassMeanRequest, cancel: &Cancel) -> anyhow::Result<()> {
        let split = Arc::clone(&self.config.split);
        let model = self.model.as_ref().context("no model to explain")?;
        if self.prepared.is_none() {
            self.prepared = PreparedBackground::new(model, split.train.features.view()).ok();
        }
        let rows = request.rows(&split.test.labels);
        anyhow::ensure!(
            !rows.is_empty(),
            "the test split has no images of class {}",
            request.class
        );
        let images = split.test.features.select(Axis(0), &rows);
        let start = Instant::now();
        let (notify, slots) = (&self.notify, &self.slots);
        let mut progress = |p: &explain::ClassMeanProgress<'_>| {
            let snapshot = ClassMeanSnapshot {
                id: request.id,
                values: p.values.to_vec(),
                stderr: p.stderr.to_vec(),
                images_done: p.images_done,
                images_total: p.images_total,
                seconds: start.elapsed().as_secs_f64(),
            };
            if slots.class_mean.put(snapshot) {
                notify(Event::ClassMeanProgress);
            }
        };
        let params = ExplainParams {
            versus: request.versus,
            units: request.units,
            seed: self.config.seed,
            ..ExplainParams::for_class_mean(request.method, request.class)
        };
        let result = explain::explain_class_mean(
            model,
            images.view(),
            split.train.features.view(),
            self.prepared.as_ref(),
            &params,
            Some(&mut progress),
            Some(cancel.flag()),
        );
        cancel.check()?;
        let mean = Box::new(result?);
        self.emit(Event::ClassMeanDone {
            id: request.id,
            mean,
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok(())
    }
}

/// Run the whole pipeline (train or load, explain the first test image, embed every layer) and
/// hand every event to `on_event` until the worker is idle, or until `timeout`. For headless use
/// (`snapshot`) and tests.
///
/// # Errors
/// When the pipeline does not finish within `timeout`.
pub fn run_pipeline(
    config: Config,
    timeout: Duration,
    mut on_event: impl FnMut(Event, &Slots),
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(config, move |e| {
        let _ = tx.send(e);
    });
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Idle) => break,
            Ok(event) => on_event(event, &worker.slots),
            Err(RecvTimeoutError::Timeout) => {
                worker.shutdown(Duration::from_secs(1));
                anyhow::bail!("the pipeline did not finish within {timeout:?}");
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    worker.shutdown(Duration::from_secs(5));
    Ok(())
}
