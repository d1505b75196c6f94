//! Where the queue's database is, for programs that take it from the environment.

/// The database the README's examples and the tests use when `DATABASE_URL` is not set:
/// the local PostgreSQL, user `postgres`, trust authentication, database `test`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `DATABASE_URL`, or [`DEFAULT_DATABASE_URL`].
///
/// ```
/// let url = retry_pool_postgres::database_url();
/// assert!(url.starts_with("postgres"));
/// ```
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}
