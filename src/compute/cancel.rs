//! One cancellation token per job (bottom's `CancellationToken`): the UI side raises it, the job
//! checks it. The engines take `Option<&AtomicBool>`; [`Cancel::flag`] hands them that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Cancelled;

/// A cancel token shared by a job and whoever may supersede it; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A fresh token, not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Ask the job to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// `Err(Cancelled)` once [`Cancel::cancel`] was called.
    ///
    /// # Errors
    /// [`Cancelled`] when the token was cancelled.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.0.load(Ordering::SeqCst) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// The flag itself, for the engines' `cancel: Option<&AtomicBool>` argument.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_sees_the_cancel() {
        let token = Cancel::new();
        let held_by_job = token.clone();
        assert_eq!(held_by_job.check(), Ok(()));
        token.cancel();
        assert_eq!(held_by_job.check(), Err(Cancelled));
        assert!(held_by_job.flag().load(Ordering::SeqCst));
        assert_eq!(Cancel::new().check(), Ok(()), "a new token is its own");
    }
}
