//! `Failure<E>`: what it says, and how it travels as an error.

use std::error::Error;
use std::time::Duration;

use futures::StreamExt;
use retry_pool::{Failure, Pool, Retry};

/// Runs one task to its end and returns its failure.
async fn fail_with<F, T>(pool: Pool, task: F) -> Failure<std::io::Error>
where
    F: AsyncFnMut() -> std::io::Result<T>,
    T: std::fmt::Debug,
{
    let mut stream = pool.run([task]);
    let failure = stream.next().await.unwrap().unwrap_err();
    assert!(stream.next().await.is_none());
    failure
}

fn refused() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
}

#[tokio::test]
async fn an_error_says_which_task_how_often_and_why() {
    let pool = Pool::new(1).retry(Retry::Lifo).attempts(4);
    let failure = fail_with(pool, async || Err::<(), _>(refused())).await;
    assert_eq!(failure.index(), 0);
    assert_eq!(failure.attempts(), 4);
    assert!(!failure.is_panic() && !failure.is_timeout() && !failure.is_cancelled());
    assert_eq!(
        failure.to_string(),
        "task #0 failed after 4 attempts: connection refused"
    );
    let source = failure.source().expect("the inner error is the source");
    assert_eq!(source.to_string(), "connection refused");
    let debug = format!("{failure:?}");
    assert!(
        debug.starts_with("Failure { index: 0, attempts: 4, error: Custom"),
        "{debug}"
    );
    let error = failure.into_error().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn one_attempt_is_singular() {
    let failure = fail_with(Pool::new(1), async || Err::<(), _>(refused())).await;
    assert_eq!(
        failure.to_string(),
        "task #0 failed after 1 attempt: connection refused"
    );
}

#[tokio::test]
async fn a_panic_has_no_error_but_its_message() {
    let pool = Pool::new(1).retry(Retry::Lifo);
    let failure = fail_with(pool, async || -> std::io::Result<()> {
        panic!("index out of range")
    })
    .await;
    assert!(failure.is_panic());
    assert!(failure.error().is_none() && failure.source().is_none());
    assert_eq!(failure.panic_message(), Some("index out of range"));
    assert_eq!(
        failure.to_string(),
        "task #0 panicked on attempt 1: index out of range"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_has_no_error() {
    let pool = Pool::new(1)
        .retry(Retry::Lifo)
        .attempts(2)
        .timeout(Duration::from_millis(50));
    let failure = fail_with(pool, async || -> std::io::Result<()> {
        std::future::pending().await
    })
    .await;
    assert!(failure.is_timeout());
    assert!(failure.error().is_none());
    assert_eq!(failure.to_string(), "task #0 timed out after 2 attempts");
}

#[tokio::test]
async fn question_mark_carries_it_into_anyhow() {
    async fn first_page() -> anyhow::Result<u32> {
        let mut stream = Pool::new(1).run([async || Err::<u32, _>(refused())]);
        let page = stream.next().await.expect("one outcome")?;
        Ok(page)
    }
    let error = first_page().await.unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "task #0 failed after 1 attempt: connection refused: connection refused"
    );
    let failure = error.downcast_ref::<Failure<std::io::Error>>().unwrap();
    assert_eq!(failure.attempts(), 1);
}

#[test]
fn failures_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Failure<std::io::Error>>();
}
