//! What is wanted, and the one rule that picks the next job from it. Nothing here is a queue:
//! a command changes what is wanted (a new explanation request replaces the old one, as gitui's
//! `AsyncSingleJob` overwrites its pending job; a new perplexity replaces the layers still to
//! embed), and [`Wants::next`] derives the job to run now.

use std::collections::BTreeSet;

use super::protocol::{ClassMeanRequest, ExplainRequest, JobKind};

/// Where training is, as far as the scheduler cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Training {
    /// Epochs are wanted.
    Running,
    /// Paused by the user: nothing runs until resumed (nothing else can run without a model).
    Paused,
    /// Not training: converged, stopped, diverged, or a model was loaded.
    Idle,
}

/// A unit of work.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Train (or resume training).
    Train,
    /// Adopt the model so far and report what it predicts.
    Finish,
    /// t-SNE of one layer.
    Embed {
        /// Layer, notebook numbering.
        layer: usize,
        /// Perplexity.
        perplexity: f64,
    },
    /// Explain one image.
    Explain(ExplainRequest),
    /// The class separation of every layer after `epoch` (the film, issue 12).
    Separation {
        /// Epochs trained.
        epoch: usize,
    },
    /// One frame of the film: `layer`'s map after `epoch`.
    Frame {
        /// Layer, notebook numbering.
        layer: usize,
        /// Epochs trained.
        epoch: usize,
        /// Perplexity.
        perplexity: f64,
    },
    /// A class-level map (an explanation job: superseded by the next explanation request).
    ClassMean(ClassMeanRequest),
}

impl Job {
    /// The kind of job, for failures and for which command supersedes it.
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Train | Job::Finish => JobKind::Train,
            // A new perplexity supersedes a frame as it does a layer's map.
            Job::Embed { .. } | Job::Separation { .. } | Job::Frame { .. } => JobKind::Embed,
            Job::Explain(_) | Job::ClassMean(_) => JobKind::Explain,
        }
    }

    /// A job of the film (made alongside training, within its budget).
    pub fn is_film(&self) -> bool {
        matches!(self, Job::Separation { .. } | Job::Frame { .. })
    }
}

/// Everything the user wants done and not yet done.
#[derive(Debug, Clone, PartialEq)]
pub struct Wants {
    /// Training.
    pub training: Training,
    /// The model so far is to be adopted and reported (after training or on loading).
    pub report: bool,
    /// Layers still to embed, at `perplexity`.
    pub layers: BTreeSet<usize>,
    /// Perplexity of the embeddings wanted.
    pub perplexity: f64,
    /// The latest explanation request not yet answered.
    pub explanation: Option<ExplainRequest>,
    /// The film's next job ([`Job::Separation`] or [`Job::Frame`]), if any is wanted.
    pub film: Option<Job>,
    /// Whether the film may take a turn while training runs (its share of the time is left).
    pub film_budget: bool,
    /// The latest class-level map request not yet answered (after the explanation).
    pub class_mean: Option<ClassMeanRequest>,
}

impl Wants {
    /// The job to run now, by one priority rule: training, then adopting its model; nothing
    /// else without a model; then the explanation the user is looking at; then the next layer
    /// to embed, shallowest first; then the film. The film needs no adopted model (it has the
    /// weights of every epoch): it takes a turn between epochs while `film_budget` allows, and
    /// runs while training is paused (training has nothing to do then).
    pub fn next(&self, has_model: bool) -> Option<Job> {
        match self.training {
            Training::Running => {
                return Some(match &self.film {
                    Some(job) if self.film_budget => job.clone(),
                    _ => Job::Train,
                });
            }
            Training::Paused => return self.film.clone(),
            Training::Idle => {}
        }
        if self.report {
            return Some(Job::Finish);
        }
        if !has_model {
            return self.film.clone();
        }
        if let Some(request) = self.explanation {
            return Some(Job::Explain(request));
        }
        if let Some(request) = self.class_mean {
            return Some(Job::ClassMean(request));
        }
        self.layers
            .first()
            .map(|&layer| Job::Embed {
                layer,
                perplexity: self.perplexity,
            })
            .or_else(|| self.film.clone())
    }

    /// `job` finished (or failed for good): it is no longer wanted. A request superseded while
    /// it ran stays wanted (it is another request).
    pub fn done(&mut self, job: &Job) {
        match job {
            Job::Train => self.training = Training::Idle,
            Job::Finish => self.report = false,
            Job::Embed { layer, perplexity } => {
                if *perplexity == self.perplexity {
                    self.layers.remove(layer);
                }
            }
            Job::Explain(request) => {
                if self.explanation.is_some_and(|r| r.id == request.id) {
                    self.explanation = None;
                }
            }
            // The worker's reel keeps what the film has made.
            Job::Separation { .. } | Job::Frame { .. } => {}
            Job::ClassMean(request) => {
                if self.class_mean.is_some_and(|r| r.id == request.id) {
                    self.class_mean = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: u64) -> ExplainRequest {
        ExplainRequest {
            id,
            ..ExplainRequest::first()
        }
    }

    fn pipeline() -> Wants {
        Wants {
            training: Training::Running,
            report: true,
            layers: [2, 3, 4].into_iter().collect(),
            perplexity: 30.0,
            explanation: Some(request(0)),
            film: None,
            film_budget: false,
            class_mean: None,
        }
    }

    #[test]
    fn the_pipeline_runs_in_priority_order() {
        let mut wants = pipeline();
        let mut has_model = false;
        let mut order = Vec::new();
        while let Some(job) = wants.next(has_model) {
            has_model |= job == Job::Finish;
            wants.done(&job);
            order.push(job);
        }
        let embed = |layer| Job::Embed {
            layer,
            perplexity: 30.0,
        };
        assert_eq!(
            order,
            vec![
                Job::Train,
                Job::Finish,
                Job::Explain(request(0)),
                embed(2),
                embed(3),
                embed(4)
            ]
        );
    }

    #[test]
    fn nothing_runs_while_paused_or_without_a_model() {
        let mut wants = pipeline();
        wants.training = Training::Paused;
        assert_eq!(wants.next(true), None);
        wants.training = Training::Idle;
        wants.report = false;
        assert_eq!(wants.next(false), None, "nothing to explain or embed yet");
        assert_eq!(wants.next(true), Some(Job::Explain(request(0))));
    }

    #[test]
    fn a_superseded_request_finishing_late_does_not_clear_the_new_one() {
        let mut wants = pipeline();
        wants.training = Training::Idle;
        wants.report = false;
        let running = wants.next(true).unwrap();
        wants.explanation = Some(request(7));
        wants.done(&running);
        assert_eq!(wants.next(true), Some(Job::Explain(request(7))));
        let old_layer = Job::Embed {
            layer: 2,
            perplexity: 30.0,
        };
        wants.explanation = None;
        wants.perplexity = 5.0;
        wants.done(&old_layer);
        assert!(
            wants.layers.contains(&2),
            "layer 2 at the new perplexity is still wanted"
        );
    }

    #[test]
    fn the_film_runs_within_its_budget_while_training_and_last_otherwise() {
        let frame = Job::Frame {
            layer: 2,
            epoch: 0,
            perplexity: 30.0,
        };
        let mut wants = pipeline();
        wants.film = Some(frame.clone());
        assert_eq!(wants.next(false), Some(Job::Train), "no budget: training");
        wants.film_budget = true;
        assert_eq!(wants.next(false), Some(frame.clone()), "its turn");
        wants.film_budget = false;
        wants.training = Training::Paused;
        assert_eq!(
            wants.next(false),
            Some(frame.clone()),
            "paused: the film goes on"
        );
        wants.training = Training::Idle;
        assert_eq!(wants.next(false), Some(Job::Finish));
        wants.report = false;
        assert_eq!(wants.next(true), Some(Job::Explain(request(0))));
        wants.explanation = None;
        assert!(matches!(
            wants.next(true),
            Some(Job::Embed { layer: 2, .. })
        ));
        wants.layers.clear();
        assert_eq!(
            wants.next(true),
            Some(frame),
            "the final maps first, then the film"
        );
        wants.film = None;
        assert_eq!(wants.next(true), None);
    }
}
