//! The schema, embedded at build time and applied on connect.

use sqlx::PgPool;

use crate::Error;

/// The channel on which pushes announce their queue; a wake-up hint only.
pub(crate) const CHANNEL: &str = "rp_tasks";

/// Brings the schema up to date. sqlx's migrator takes an advisory lock, so that workers
/// starting together apply each migration once.
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), Error> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}
