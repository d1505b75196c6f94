//! LISTEN for pushes to the worker's queue: a hint that wakes the claim loop early.
//!
//! Only a hint: notifications are lost while the listening connection is down, and the
//! claim loop polls anyway, so nothing depends on them but latency.

use std::sync::Arc;

use sqlx::postgres::PgListener;
use tokio::time::sleep;

use crate::schema::CHANNEL;
use crate::shared::Shared;

/// Listens until aborted, reconnecting after each poll interval while the database is
/// away.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&shared.pool).await
            && listener.listen(CHANNEL).await.is_ok()
        {
            // A reconnect may have missed notifications: claim once to catch up.
            shared.wake.notify_one();
            while let Ok(notification) = listener.recv().await {
                if notification.payload() == shared.queue {
                    shared.wake.notify_one();
                }
            }
        }
        sleep(shared.settings.poll).await;
    }
}
