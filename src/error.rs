//! The one domain error type; `http::error` turns each variant into a status code and a JSON body.

use std::time::Duration;

/// Result of every fallible domain operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on. `code` strings are stable API (clients switch on them).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is malformed or out of range.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// No valid credentials were presented.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// The caller is known but may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The object does not exist (or the caller may not know that it does).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The request clashes with the current state (duplicate, already decided, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The object existed but is over for good (an ended room).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// The object is locked against this action.
    #[error("{message}")]
    Locked { code: &'static str, message: String },
    /// The request body is larger than allowed.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// The request body is in a format this route does not take.
    #[error("{message}")]
    UnsupportedMediaType { code: &'static str, message: String },
    /// Too many attempts; try again after `retry_after`.
    #[error("too many attempts, retry in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    /// A dependency (database, LiveKit, storage) is not answering. The message is a fixed sentence: an
    /// upstream error's text (URLs, host:port, paths) is logged where it happens and never sent to a client.
    #[error("{message}")]
    Unavailable { code: &'static str, message: &'static str },
    /// A bug or an unexpected failure; details go to the log, not to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated { code, message: message.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::Gone { code, message: message.into() }
    }
    pub fn locked(code: &'static str, message: impl Into<String>) -> Self {
        Self::Locked { code, message: message.into() }
    }
    /// Takes only a `&'static str`, so that no `format!` of an upstream error can end up in a response.
    pub fn unavailable(code: &'static str, message: &'static str) -> Self {
        Self::Unavailable { code, message }
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{message}"))
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::Locked { code, .. }
            | Self::TooLarge { code, .. }
            | Self::UnsupportedMediaType { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "internal",
        }
    }
}
