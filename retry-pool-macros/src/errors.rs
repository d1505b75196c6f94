//! Every mistake in one build: errors are collected, not returned at the first one.

/// Errors collected so far, combined into one `syn::Error` (which reports each of them).
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.combined
    }
}
