//! Renews the leases of the attempts a worker holds, and learns of cancellations.

use std::sync::Arc;

use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::Error;
use crate::lease;
use crate::shared::Shared;

/// Renews every third of the lease, so that two renewals can fail before a lease runs
/// out. Runs until aborted; an error is handed to `report` and retried at the next tick.
pub(crate) async fn run(shared: Arc<Shared>, report: impl Fn(Error)) {
    let lease = shared.settings.lease;
    let mut ticks = interval(lease / 3);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let asked = shared.held.snapshot();
        if asked.is_empty() {
            continue;
        }
        let at = Instant::now();
        match lease::renew(&shared.pool, &shared.owner, &asked, lease).await {
            Ok(kept) => shared.held.renewed(&asked, &kept, at),
            Err(error) => {
                shared.held.expire(lease, Instant::now());
                report(error.into());
            }
        }
    }
}
