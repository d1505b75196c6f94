//! The `tracing` feature: a span per attempt, events on retry and give-up.
//! Run with `cargo test -p retry-pool --features tracing`.
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use retry_pool::{Pool, Retry};
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Records each span's fields and each event's message with the span it happened in.
#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(&format!("{}={:?}", field.name(), value));
    }
}

impl<S> Layer<S> for Recorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let name = attrs.metadata().name();
        self.lines
            .lock()
            .unwrap()
            .push(format!("span {name} {}", fields.0));
    }

    fn on_event(&self, event: &tracing::Event<'_>, cx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let inside = cx.event_span(event).map_or("-", |span| span.name());
        let level = event.metadata().level();
        self.lines
            .lock()
            .unwrap()
            .push(format!("event {level} in {inside}: {}", fields.0));
    }
}

#[tokio::test]
async fn spans_per_attempt_and_events_on_retry_and_give_up() {
    let recorder = Recorder::default();
    let subscriber = Registry::default().with(recorder.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let tasks = (0..2).map(|n| {
        async move || {
            tracing::info!("working");
            if n == 1 { Err("down") } else { Ok(n) }
        }
    });
    let outcomes: Vec<_> = Pool::new(1)
        .retry(Retry::Lifo)
        .attempts(2)
        .run(tasks)
        .collect()
        .await;
    assert_eq!(outcomes.len(), 2);

    let lines = recorder.lines.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "span attempt task=0 attempt=1",
            "event INFO in attempt: message=working",
            "span attempt task=1 attempt=1",
            "event INFO in attempt: message=working",
            "event DEBUG in -: message=retrying task=1 attempt=1 cause=\"error\"",
            "span attempt task=1 attempt=2",
            "event INFO in attempt: message=working",
            "event WARN in -: message=gave up task=1 attempts=2 cause=\"error\"",
        ]
    );
}
