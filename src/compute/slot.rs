//! Latest-wins mailboxes for the big, fast-changing payloads (a t-SNE embedding mid-run, a
//! running saliency estimate): a new value replaces an unread one, so a slow link never queues
//! stale frames.

use std::sync::Mutex;

use super::protocol::{ClassMeanSnapshot, EmbedSnapshot, SaliencySnapshot};

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
    /// The running class-level map.
    pub class_mean: Slot<ClassMeanSnapshot>,
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
}
