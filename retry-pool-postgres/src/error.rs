//! What can go wrong talking to the queue, each case saying what to do about it.

use std::fmt;

/// An error of the queue: the database, a payload or outcome that does not serialize, or
/// a setting that cannot work.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or could not be reached.
    Database(sqlx::Error),
    /// The schema could not be brought up to date.
    Migrate(sqlx::migrate::MigrateError),
    /// A payload or an outcome could not be turned into JSON.
    Json(serde_json::Error),
    /// A worker setting that cannot work, with what to change.
    Settings(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Database(error) => write!(
                f,
                "PostgreSQL: {error} (check that the server is up and that DATABASE_URL points at it)"
            ),
            Error::Migrate(error) => write!(
                f,
                "could not bring the rp_tasks schema up to date: {error} (the role needs CREATE on the database)"
            ),
            Error::Json(error) => write!(f, "could not serialize to JSON: {error}"),
            Error::Settings(message) => write!(f, "invalid worker settings: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Database(error) => Some(error),
            Error::Migrate(error) => Some(error),
            Error::Json(error) => Some(error),
            Error::Settings(_) => None,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(error)
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Json(error)
    }
}
