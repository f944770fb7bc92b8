//! The background worker: one thread owns the data and the model and runs jobs (train, embed a
//! layer, explain an image) with rayon inside. Commands come in through [`Worker::send`]; progress
//! goes out as typed [`Event`]s through one callback, and the large, fast-changing payloads (a
//! t-SNE embedding mid-run, a running saliency estimate) go through latest-wins [`Slot`]s so a
//! slow link never queues stale frames. Every job checks a cancel flag; a job that fails or
//! panics is reported as [`Event::JobFailed`] and the worker carries on.

pub mod engines;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ndarray::{Array2, Axis, s};

use crate::cli::{Cli, DataArgs};
use crate::data::Split;
use crate::nn::Mlp;
use engines::TrainSession;

/// The Shapley estimator or gradient method behind a saliency map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// The notebook's sampling estimator (Strumbelj and Kononenko 2014).
    #[default]
    Notebook,
    /// Antithetic permutation sampling of Shapley values.
    Permutation,
    /// Gradient times input.
    GradientTimesInput,
    /// Integrated gradients (Sundararajan et al. 2017).
    IntegratedGradients,
}

impl Method {
    /// The next method in the cycle.
    pub fn next(self) -> Method {
        match self {
            Method::Notebook => Method::Permutation,
            Method::Permutation => Method::GradientTimesInput,
            Method::GradientTimesInput => Method::IntegratedGradients,
            Method::IntegratedGradients => Method::Notebook,
        }
    }

    /// A short name for titles.
    pub fn label(self) -> &'static str {
        match self {
            Method::Notebook => "notebook Shapley",
            Method::Permutation => "permutation Shapley",
            Method::GradientTimesInput => "gradient x input",
            Method::IntegratedGradients => "integrated gradients",
        }
    }
}

/// Why a training run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The loss stopped improving.
    Converged,
    /// The epoch limit was reached.
    MaxEpochs,
    /// Paused or stopped by the user.
    Cancelled,
}

/// One epoch of training, as the UI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy on the training split.
    pub train_loss: f64,
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Cross-entropy on the test split.
    pub test_loss: Option<f64>,
    /// Accuracy on the test split.
    pub test_accuracy: Option<f64>,
    /// Wall time of this epoch.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_sec: f64,
}

/// Everything the worker needs, taken from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data, sampling, split and seed.
    pub data: DataArgs,
    /// Hidden layer sizes for training.
    pub hidden: Vec<usize>,
    /// Epoch limit.
    pub max_epochs: usize,
    /// A saved model to use instead of training.
    pub model_path: Option<PathBuf>,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// Training images embedded per layer.
    pub embed_n: usize,
    /// Seed for training, t-SNE and Shapley.
    pub seed: u64,
}

impl Config {
    /// The worker's configuration from the parsed command line.
    pub fn from_cli(cli: &Cli) -> Config {
        Config {
            data: cli.data.clone(),
            hidden: cli.model.hidden.clone(),
            max_epochs: cli.model.epochs.unwrap_or(200),
            model_path: cli.model.model.clone(),
            perplexity: cli.view.perplexity,
            embed_n: cli.view.embed_n,
            seed: cli.data.seed,
        }
    }
}

/// A request to explain one test image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExplainRequest {
    /// Identifies the request, so that late progress of a superseded one is ignored.
    pub id: u64,
    /// The image is a training row (picked in the Embeddings tab), not a test row.
    pub from_train: bool,
    /// Row of its split.
    pub index: usize,
    /// Class to explain; `None` for the predicted class.
    pub class: Option<usize>,
    /// Attribution method.
    pub method: Method,
}

/// What the UI asks of the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Pause training (resumable).
    Pause,
    /// Resume paused training.
    Resume,
    /// Stop training now and keep the model so far.
    StopTraining,
    /// Train again from scratch with another seed (and redo what follows).
    RestartTraining {
        /// The new seed.
        seed: u64,
    },
    /// Re-run t-SNE on every layer with this perplexity.
    Embed {
        /// Perplexity.
        perplexity: f64,
        /// Also embed the input pixels (layer 1).
        include_input: bool,
    },
    /// Explain one image (cancels an explanation in progress).
    Explain(ExplainRequest),
    /// Stop everything and end the thread.
    Quit,
}

/// Which kind of job an event or failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Loading the data or the model.
    Load,
    /// Training.
    Train,
    /// t-SNE of one layer.
    Embed,
    /// A saliency map.
    Explain,
}

/// What the model says about the embedded images and the test split, computed once per model.
#[derive(Debug, Clone)]
pub struct ModelReport {
    /// Units per layer, input first.
    pub layer_sizes: Vec<usize>,
    /// Class probabilities of the embedded training images (n x classes).
    pub embed_probs: Array2<f32>,
    /// Class probabilities of the test split (n_test x classes).
    pub test_probs: Array2<f32>,
    /// Confusion matrix of the test split (true x predicted).
    pub confusion: Array2<usize>,
}

/// A t-SNE embedding of one layer, mid-run or final.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedSnapshot {
    /// Layer, notebook numbering (1 = input pixels).
    pub layer: usize,
    /// Iterations done.
    pub iteration: usize,
    /// Iterations planned.
    pub n_iter: usize,
    /// KL divergence, when known.
    pub kl_divergence: Option<f64>,
    /// n x 2 coordinates.
    pub coords: Array2<f32>,
}

/// A saliency estimate, running or final.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencySnapshot {
    /// The request this answers.
    pub id: u64,
    /// One value per pixel.
    pub values: Vec<f32>,
    /// Standard error per pixel, when the method gives one.
    pub stderr: Option<Vec<f32>>,
    /// Samples done.
    pub samples_done: usize,
    /// Samples planned.
    pub samples_total: usize,
    /// Time since the explanation started.
    pub seconds: f64,
}

/// What the worker tells the UI.
#[derive(Debug, Clone)]
pub enum Event {
    /// The data is loaded and split; `embed_n` first training rows are the embedded images.
    DataReady {
        /// The split, shared read-only with the UI.
        split: Arc<Split>,
        /// How many training images are embedded.
        embed_n: usize,
    },
    /// A training run starts (also after a restart).
    TrainingStarted {
        /// Its seed.
        seed: u64,
        /// Epoch limit.
        max_epochs: usize,
        /// Layer sizes, input first.
        layer_sizes: Vec<usize>,
    },
    /// One epoch finished.
    Epoch(EpochRecord),
    /// Training stopped (converged, hit the limit, or paused).
    TrainingStopped(StopReason),
    /// A model is ready (trained, stopped early or loaded).
    ModelReady(Arc<ModelReport>),
    /// t-SNE of a layer starts.
    EmbedStarted {
        /// Layer, notebook numbering.
        layer: usize,
        /// Its width.
        size: usize,
        /// Perplexity.
        perplexity: f64,
    },
    /// A new mid-run embedding is in [`Slots::embedding`].
    EmbedProgress,
    /// t-SNE of a layer finished.
    EmbedDone {
        /// The final embedding.
        snapshot: EmbedSnapshot,
        /// Neighbour preservation at k = 10.
        trust: Option<f64>,
    },
    /// An explanation starts.
    ExplainStarted {
        /// The request, with the class resolved.
        request: ExplainRequest,
        /// The class explained.
        class: usize,
    },
    /// A new running estimate is in [`Slots::saliency`].
    ExplainProgress,
    /// An explanation finished.
    ExplainDone(SaliencySnapshot),
    /// A job failed or panicked; the worker keeps running.
    JobFailed {
        /// Which job.
        job: JobKind,
        /// What went wrong.
        message: String,
    },
    /// Nothing left to do.
    Idle,
}

/// A latest-wins mailbox: a new value replaces an unread one.
#[derive(Debug)]
pub struct Slot<T>(Mutex<Option<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    /// Store `value`; true when the slot was empty (the reader needs a nudge).
    pub fn put(&self, value: T) -> bool {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.replace(value).is_none()
    }

    /// Take the latest value, if any.
    pub fn take(&self) -> Option<T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// The latest-wins slots shared by the worker and the UI.
#[derive(Debug, Default)]
pub struct Slots {
    /// The embedding of the layer being embedded.
    pub embedding: Slot<EmbedSnapshot>,
    /// The running saliency estimate.
    pub saliency: Slot<SaliencySnapshot>,
}

/// Cancel flags the UI raises before it sends a command, checked by the running job.
#[derive(Debug, Default)]
struct Flags {
    train: AtomicBool,
    embed: AtomicBool,
    explain: AtomicBool,
}

/// The UI's handle on the worker thread.
pub struct Worker {
    tx: Sender<Command>,
    flags: Arc<Flags>,
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
        let flags = Arc::new(Flags::default());
        let slots = Arc::new(Slots::default());
        let (f, sl) = (Arc::clone(&flags), Arc::clone(&slots));
        let handle = std::thread::Builder::new()
            .name("compute".into())
            .spawn(move || {
                let mut state = WorkerState::new(config, rx, f, sl, Box::new(notify));
                state.run();
                let _ = done_tx.send(());
            })
            .ok();
        Worker {
            tx,
            flags,
            slots,
            done,
            handle,
        }
    }

    /// Send a command, first raising the cancel flag of the job it supersedes.
    pub fn send(&self, command: Command) {
        match &command {
            Command::Pause | Command::StopTraining => {
                self.flags.train.store(true, Ordering::SeqCst)
            }
            Command::RestartTraining { .. } | Command::Quit => {
                self.flags.train.store(true, Ordering::SeqCst);
                self.flags.embed.store(true, Ordering::SeqCst);
                self.flags.explain.store(true, Ordering::SeqCst);
            }
            Command::Embed { .. } => self.flags.embed.store(true, Ordering::SeqCst),
            Command::Explain(_) => self.flags.explain.store(true, Ordering::SeqCst),
            Command::Resume => {}
        }
        let _ = self.tx.send(command);
    }

    /// Ask the worker to stop and wait for it at most `timeout` (a job deep inside an engine may
    /// take a moment to see its cancel flag; the process may exit without it).
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.send(Command::Quit);
        let finished = self.done.recv_timeout(timeout).is_ok();
        if finished && let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        finished
    }
}

/// A unit of work in the worker's queue.
#[derive(Debug, Clone, PartialEq)]
enum Job {
    Train,
    Finish,
    Embed { layer: usize, perplexity: f64 },
    Explain(ExplainRequest),
}

struct WorkerState {
    config: Config,
    rx: Receiver<Command>,
    flags: Arc<Flags>,
    slots: Arc<Slots>,
    notify: Box<dyn Fn(Event) + Send>,
    split: Option<Arc<Split>>,
    embed_n: usize,
    session: Option<TrainSession>,
    model: Option<Mlp>,
    /// The model's pass over the background (first layer of every row, mean outputs), made
    /// once per model and shared by every explanation of it.
    prepared: Option<crate::explain::PreparedBackground>,
    queue: VecDeque<Job>,
    paused: bool,
    perplexity: f64,
    include_input: bool,
    last_explain: ExplainRequest,
}

impl WorkerState {
    fn new(
        config: Config,
        rx: Receiver<Command>,
        flags: Arc<Flags>,
        slots: Arc<Slots>,
        notify: Box<dyn Fn(Event) + Send>,
    ) -> WorkerState {
        let perplexity = config.perplexity;
        WorkerState {
            config,
            rx,
            flags,
            slots,
            notify,
            split: None,
            embed_n: 0,
            session: None,
            model: None,
            prepared: None,
            queue: VecDeque::new(),
            paused: false,
            perplexity,
            include_input: false,
            last_explain: ExplainRequest {
                id: 0,
                from_train: false,
                index: 0,
                class: None,
                method: Method::default(),
            },
        }
    }

    fn emit(&self, event: Event) {
        (self.notify)(event);
    }

    fn fail(&self, job: JobKind, message: String) {
        self.emit(Event::JobFailed { job, message });
    }

    fn run(&mut self) {
        match self.config.data.load() {
            Ok((_, split)) => {
                self.embed_n = self.config.embed_n.min(split.train.n_rows());
                let split = Arc::new(split);
                self.split = Some(Arc::clone(&split));
                self.emit(Event::DataReady {
                    split,
                    embed_n: self.embed_n,
                });
            }
            Err(e) => {
                self.fail(JobKind::Load, format!("{e:#}"));
                self.wait_for_quit();
                return;
            }
        }
        if let Some(path) = self.config.model_path.clone() {
            let (n_features, n_classes) = self
                .split
                .as_ref()
                .map_or((0, 0), |s| (s.train.n_features(), s.train.n_classes()));
            match engines::load_model(&path, n_features, n_classes) {
                Ok(model) => {
                    self.model = Some(model);
                    self.prepared = None;
                    self.queue.push_back(Job::Finish);
                }
                Err(e) => {
                    self.fail(JobKind::Load, format!("{e:#}"));
                    self.wait_for_quit();
                    return;
                }
            }
        } else {
            self.new_session(self.config.seed);
            self.queue.push_back(Job::Train);
            self.queue.push_back(Job::Finish);
        }
        self.queue_embeddings();
        self.queue.push_back(Job::Explain(self.last_explain));
        loop {
            while let Ok(cmd) = self.rx.try_recv() {
                if !self.absorb(cmd) {
                    return;
                }
            }
            let next = if self.paused {
                None
            } else {
                self.queue.pop_front()
            };
            match next {
                Some(job) => self.run_job(job),
                None => {
                    if !self.paused {
                        self.emit(Event::Idle);
                    }
                    match self.rx.recv() {
                        Ok(cmd) => {
                            if !self.absorb(cmd) {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            }
        }
    }

    fn wait_for_quit(&self) {
        self.emit(Event::Idle);
        while let Ok(cmd) = self.rx.recv() {
            if cmd == Command::Quit {
                return;
            }
        }
    }

    fn layers(&self) -> Vec<usize> {
        let n_layers = self
            .model
            .as_ref()
            .map(Mlp::n_layers)
            .unwrap_or(self.config.hidden.len() + 2);
        let first = if self.include_input { 1 } else { 2 };
        (first..=n_layers).collect()
    }

    fn queue_embeddings(&mut self) {
        self.queue.retain(|j| !matches!(j, Job::Embed { .. }));
        let perplexity = self.perplexity;
        let at = self
            .queue
            .iter()
            .position(|j| matches!(j, Job::Explain(_)))
            .unwrap_or(self.queue.len());
        for (i, layer) in self.layers().into_iter().enumerate() {
            self.queue.insert(at + i, Job::Embed { layer, perplexity });
        }
    }

    fn new_session(&mut self, seed: u64) {
        let Some(split) = &self.split else { return };
        let layer_sizes = {
            let mut v = vec![split.train.n_features()];
            v.extend_from_slice(&self.config.hidden);
            v.push(split.train.n_classes());
            v
        };
        self.session = Some(TrainSession::new(
            split.train.n_features(),
            split.train.n_classes(),
            &self.config.hidden,
            self.config.max_epochs,
            seed,
        ));
        self.model = None;
        self.prepared = None;
        self.emit(Event::TrainingStarted {
            seed,
            max_epochs: self.config.max_epochs,
            layer_sizes,
        });
    }

    /// Take a command in; false means quit.
    fn absorb(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Quit => return false,
            Command::Pause => {
                if self.queue.contains(&Job::Train) {
                    self.paused = true;
                    self.emit(Event::TrainingStopped(StopReason::Cancelled));
                }
            }
            Command::Resume => {
                self.paused = false;
                self.flags.train.store(false, Ordering::SeqCst);
            }
            Command::StopTraining => {
                self.paused = false;
                self.flags.train.store(false, Ordering::SeqCst);
                self.queue.retain(|j| *j != Job::Train);
            }
            Command::RestartTraining { seed } => {
                self.paused = false;
                self.flags.train.store(false, Ordering::SeqCst);
                self.flags.embed.store(false, Ordering::SeqCst);
                self.flags.explain.store(false, Ordering::SeqCst);
                if self.config.model_path.is_some() {
                    self.fail(
                        JobKind::Train,
                        "a saved model was given (--model): nothing to retrain".into(),
                    );
                    return true;
                }
                self.queue.clear();
                self.new_session(seed);
                self.queue.push_back(Job::Train);
                self.queue.push_back(Job::Finish);
                self.queue.push_back(Job::Explain(self.last_explain));
                self.queue_embeddings();
            }
            Command::Embed {
                perplexity,
                include_input,
            } => {
                self.flags.embed.store(false, Ordering::SeqCst);
                self.perplexity = perplexity;
                self.include_input = include_input;
                self.queue_embeddings();
            }
            Command::Explain(request) => {
                self.flags.explain.store(false, Ordering::SeqCst);
                self.last_explain = request;
                self.queue.retain(|j| !matches!(j, Job::Explain(_)));
                // The user is looking at it: run it before the remaining t-SNE layers, but
                // after the model exists.
                let at = self
                    .queue
                    .iter()
                    .position(|j| matches!(j, Job::Embed { .. }))
                    .unwrap_or(self.queue.len());
                self.queue.insert(at, Job::Explain(request));
            }
        }
        true
    }

    fn run_job(&mut self, job: Job) {
        let kind = match job {
            Job::Train | Job::Finish => JobKind::Train,
            Job::Embed { .. } => JobKind::Embed,
            Job::Explain(_) => JobKind::Explain,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| match &job {
            Job::Train => self.train(),
            Job::Finish => self.finish(),
            Job::Embed { layer, perplexity } => self.embed(*layer, *perplexity),
            Job::Explain(request) => self.explain(*request),
        }));
        match outcome {
            Ok(Ok(true)) => {}
            // Cancelled: put it back; the command that cancelled it decides its fate.
            Ok(Ok(false)) => self.queue.push_front(job),
            Ok(Err(e)) => {
                if kind == JobKind::Train {
                    self.queue.retain(|j| *j != Job::Train);
                }
                self.fail(kind, format!("{e:#}"));
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                if kind == JobKind::Train {
                    self.queue.retain(|j| *j != Job::Train);
                }
                self.fail(kind, format!("panicked: {message}"));
            }
        }
    }

    /// Train (or resume); Ok(false) when cancelled.
    fn train(&mut self) -> anyhow::Result<bool> {
        // Test hook for the end-to-end tests: a panicking job is reported, the app lives on.
        if std::env::var("LAYERSCOPE_TEST_PANIC").as_deref() == Ok("worker") {
            panic!("test panic in the training job");
        }
        let (Some(split), Some(session)) = (self.split.clone(), self.session.as_mut()) else {
            return Ok(true);
        };
        let notify = &self.notify;
        let mut on_epoch = |m: &EpochRecord| notify(Event::Epoch(m.clone()));
        let reason = session.run(
            &split.train,
            Some(&split.test),
            &mut on_epoch,
            &self.flags.train,
        )?;
        if reason == StopReason::Cancelled {
            return Ok(false);
        }
        self.emit(Event::TrainingStopped(reason));
        Ok(true)
    }

    /// Adopt the model so far and report what it predicts.
    fn finish(&mut self) -> anyhow::Result<bool> {
        if let Some(session) = &self.session {
            self.model = Some(session.model().clone());
            self.prepared = None;
        }
        let (Some(split), Some(model)) = (&self.split, &self.model) else {
            anyhow::bail!("no model");
        };
        let embed = split.train.features.slice(s![..self.embed_n, ..]);
        let embed_probs = model.predict_proba(embed);
        let test_probs = model.predict_proba(split.test.features.view());
        let preds: Vec<u8> = test_probs
            .axis_iter(Axis(0))
            .map(|r| u8::try_from(crate::nn::argmax(r.as_slice().unwrap_or(&[]))).unwrap_or(0))
            .collect();
        let confusion =
            engines::confusion_matrix(&split.test.labels, &preds, split.test.n_classes());
        self.emit(Event::ModelReady(Arc::new(ModelReport {
            layer_sizes: model.layer_sizes(),
            embed_probs,
            test_probs,
            confusion,
        })));
        Ok(true)
    }

    fn embed(&mut self, layer: usize, perplexity: f64) -> anyhow::Result<bool> {
        let (Some(split), Some(model)) = (&self.split, &self.model) else {
            anyhow::bail!("no model to embed");
        };
        if layer > model.n_layers() {
            return Ok(true);
        }
        let x = split.train.features.slice(s![..self.embed_n, ..]);
        let high = model.layer_output(x, layer);
        self.emit(Event::EmbedStarted {
            layer,
            size: high.ncols(),
            perplexity,
        });
        let notify = &self.notify;
        let slots = &self.slots;
        let mut progress = |step: &engines::TsneStep| {
            let snap = EmbedSnapshot {
                layer,
                iteration: step.iteration,
                n_iter: step.n_iter,
                kl_divergence: step.kl_divergence,
                coords: step.embedding.to_owned(),
            };
            if slots.embedding.put(snap) {
                notify(Event::EmbedProgress);
            }
        };
        let seed = self.config.seed;
        let result = engines::tsne(
            high.view(),
            perplexity,
            seed,
            &mut progress,
            &self.flags.embed,
        );
        if self.flags.embed.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let (coords, kl, n_iter) = result?;
        let trust = engines::trust(high.view(), coords.view());
        self.emit(Event::EmbedDone {
            snapshot: EmbedSnapshot {
                layer,
                iteration: n_iter,
                n_iter,
                kl_divergence: kl,
                coords,
            },
            trust,
        });
        Ok(true)
    }

    fn explain(&mut self, request: ExplainRequest) -> anyhow::Result<bool> {
        if self.prepared.is_none()
            && let (Some(split), Some(model)) = (&self.split, &self.model)
        {
            self.prepared =
                crate::explain::PreparedBackground::new(model, split.train.features.view()).ok();
        }
        let (Some(split), Some(model)) = (&self.split, &self.model) else {
            anyhow::bail!("no model to explain");
        };
        let data = if request.from_train {
            &split.train
        } else {
            &split.test
        };
        if request.index >= data.n_rows() {
            anyhow::bail!("image {} does not exist", request.index);
        }
        let x = data.features.row(request.index);
        let class = match request.class {
            Some(c) => c,
            None => {
                let p = model.predict_proba(x.insert_axis(Axis(0)));
                crate::nn::argmax(p.row(0).as_slice().unwrap_or(&[]))
            }
        };
        self.emit(Event::ExplainStarted { request, class });
        // The notebook's background: the training images (the estimators sample rows of it).
        let background = split.train.features.view();
        let start = Instant::now();
        let notify = &self.notify;
        let slots = &self.slots;
        let mut progress = |step: &engines::ExplainStep| {
            let snap = SaliencySnapshot {
                id: request.id,
                values: step.values.to_vec(),
                stderr: step.stderr.map(|s| s.to_vec()),
                samples_done: step.samples_done,
                samples_total: step.samples_total,
                seconds: start.elapsed().as_secs_f64(),
            };
            if slots.saliency.put(snap) {
                notify(Event::ExplainProgress);
            }
        };
        let result = engines::explain(
            model,
            x,
            background,
            request.method,
            class,
            self.prepared.as_ref(),
            self.config.seed,
            &mut progress,
            &self.flags.explain,
        );
        if self.flags.explain.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let attribution = result?;
        self.emit(Event::ExplainDone(SaliencySnapshot {
            id: request.id,
            values: attribution.values.to_vec(),
            stderr: attribution.stderr.map(|s| s.to_vec()),
            samples_done: attribution.samples,
            samples_total: attribution.samples,
            seconds: start.elapsed().as_secs_f64(),
        }));
        Ok(true)
    }
}

/// Run the whole pipeline (train or load, embed every layer, explain the first test image) on
/// this thread's behalf and hand every event to `on_event` until the worker is idle, or until
/// `timeout`. For headless use (`snapshot`) and tests.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keeps_the_latest_and_nudges_once() {
        let slot = Slot::default();
        assert!(slot.put(1), "empty: the reader needs a nudge");
        assert!(!slot.put(2), "unread: no second nudge");
        assert_eq!(slot.take(), Some(2));
        assert_eq!(slot.take(), None);
        assert!(slot.put(3));
    }

    #[test]
    fn methods_cycle() {
        let mut m = Method::default();
        for _ in 0..4 {
            m = m.next();
        }
        assert_eq!(m, Method::default());
    }
}
