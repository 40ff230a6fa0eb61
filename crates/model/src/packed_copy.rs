//! A copy of a model's weights laid out for inference (packed in column panels), and the
//! one rule for how long it lives: kept for good once the model is frozen
//! ([`crate::TranslationModel::freeze`]), kept for an inference span
//! ([`crate::TranslationModel::begin_inference`] to `end_inference`) while the weights
//! stand still, else made for each decoding call and dropped after it.

use std::sync::{Arc, PoisonError, RwLock};

use crate::error::Result;

/// The packed copy, if one is kept, and whether it belongs to a span (`true`) or to a
/// frozen model (`false`).
#[derive(Debug)]
pub(crate) struct PackedCopy<T> {
    kept: RwLock<Option<(Arc<T>, bool)>>,
}

impl<T> Default for PackedCopy<T> {
    fn default() -> Self {
        Self { kept: RwLock::new(None) }
    }
}

impl<T> PackedCopy<T> {
    /// The copy kept, else one made now by `pack` for this call only.
    pub(crate) fn get(&self, pack: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        match &*self.kept.read().unwrap_or_else(PoisonError::into_inner) {
            Some((copy, _)) => Ok(Arc::clone(copy)),
            None => Ok(Arc::new(pack()?)),
        }
    }

    /// Keeps a copy for good (the weights will not change any more).
    pub(crate) fn freeze(&self, pack: impl FnOnce() -> Result<T>) -> Result<()> {
        let copy = Arc::new(pack()?);
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Some((copy, false));
        Ok(())
    }

    /// Keeps a copy until [`PackedCopy::end_span`], unless one is kept already.
    pub(crate) fn begin_span(&self, pack: impl FnOnce() -> Result<T>) -> Result<()> {
        if self.kept.read().unwrap_or_else(PoisonError::into_inner).is_none() {
            let copy = Arc::new(pack()?);
            *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Some((copy, true));
        }
        Ok(())
    }

    /// Drops the span's copy (a frozen model's stays).
    pub(crate) fn end_span(&self) {
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        if kept.as_ref().is_some_and(|(_, span)| *span) {
            *kept = None;
        }
    }

    /// Whether a copy is kept now.
    #[cfg(test)]
    pub(crate) fn is_kept(&self) -> bool {
        self.kept.read().unwrap_or_else(PoisonError::into_inner).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span keeps its copy until it ends; a frozen model keeps its own through a span;
    /// without either, each call packs anew.
    #[test]
    fn copies_live_as_long_as_the_weights_stand_still() {
        let copy = PackedCopy::<u32>::default();
        let mut packs = 0;
        let mut pack = || {
            packs += 1;
            Ok(packs)
        };
        assert_eq!(*copy.get(&mut pack).expect("get"), 1);
        assert_eq!(*copy.get(&mut pack).expect("get"), 2);
        assert!(!copy.is_kept());
        copy.begin_span(&mut pack).expect("begin");
        assert_eq!(*copy.get(&mut pack).expect("get"), 3);
        assert_eq!(*copy.get(&mut pack).expect("get"), 3);
        copy.end_span();
        assert!(!copy.is_kept());
        copy.freeze(&mut pack).expect("freeze");
        copy.begin_span(&mut pack).expect("begin");
        copy.end_span();
        assert_eq!(*copy.get(&mut pack).expect("get"), 4);
        assert!(copy.is_kept());
    }
}
