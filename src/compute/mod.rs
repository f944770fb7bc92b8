//! The background worker: one thread owns the model and runs jobs (train, embed a layer,
//! explain an image) with rayon inside. Commands come in through [`Worker::send`]; progress goes
//! out as typed [`Event`]s through one callback, and the large, fast-changing payloads go through
//! latest-wins [`Slot`]s. The next job is derived from what is wanted by one priority rule
//! (`jobs`), each job has its own [`Cancel`] token, and a job that fails or panics is reported as
//! [`Event::JobFailed`] while the worker carries on.
//!
//! The engines' own types are handed to the UI as they are: the rules (divergence, default
//! samples per method, when the trust figure means something) live once, in their engines.

mod cancel;
pub mod film;
mod jobs;
pub mod protocol;
pub mod slot;
mod worker;

pub use cancel::Cancel;
pub use protocol::{ClassMeanRequest, ClassMeanSnapshot};
pub use protocol::{
    Command, Config, EmbedSnapshot, Event, ExplainRequest, Frame, JobKind, ModelReport,
    SaliencySnapshot, Separation,
};
pub use slot::{Slot, Slots};
pub use worker::{Worker, run_pipeline};

pub use crate::Cancelled;
pub use crate::data::Part;
pub use crate::explain::{Attribution, ExplainProgress, Method};
pub use crate::explain::{ClassMean, Units};
pub use crate::nn::{EpochMetrics, StopReason};
pub use crate::tsne::{Embedding, TsneProgress};
