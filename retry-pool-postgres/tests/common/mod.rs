//! A fresh database per test, on the real PostgreSQL at `DATABASE_URL`, so that tests
//! run in parallel without seeing one another's tasks.

#![allow(dead_code, reason = "each test file uses a part of these helpers")]

use std::str::FromStr;
use std::time::Duration;

pub use retry_pool_postgres::database_url;
use retry_pool_postgres::sqlx::postgres::PgConnectOptions;
use retry_pool_postgres::sqlx::{Connection, Executor, PgConnection};
use retry_pool_postgres::{Queue, TaskId, TaskInfo};

/// A database made for one test, dropped by [`TestDb::finish`].
pub struct TestDb {
    pub queue: Queue,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!(
            "rp_test_{}_{:012x}",
            std::process::id(),
            fastrand::u64(..1 << 48)
        );
        let mut admin = PgConnection::connect(&database_url())
            .await
            .expect("PostgreSQL is not reachable at DATABASE_URL: start it (see the README)");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("the role at DATABASE_URL needs CREATEDB");
        let options = PgConnectOptions::from_str(&database_url())
            .unwrap()
            .database(&name);
        let queue = Queue::connect_with(options).await.unwrap();
        TestDb { queue, name }
    }

    /// Closes the pool and drops the database.
    pub async fn finish(self) {
        self.queue.pool().close().await;
        let mut admin = PgConnection::connect(&database_url()).await.unwrap();
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }

    pub async fn task(&self, id: TaskId) -> TaskInfo {
        self.queue.task(id).await.unwrap().expect("the task exists")
    }

    /// Waits until `check` holds, or panics after `within`.
    pub async fn eventually<F, Fut>(&self, within: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + within;
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
