//! `--webhook URL`: every event is also POSTed, as JSON Lines (`application/x-ndjson`, up to
//! [`BATCH`] events a request, in order). Delivery runs on a thread of its own with a bounded
//! queue: a slow or dead receiver costs dropped events (counted), never a stalled call. A
//! failed request is retried with backoff (0.5, 1, 2 s) before its events are given up
//! (counted). Plain `http://` only: put a TLS-terminating relay in front of an https receiver.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::service::metrics::Metrics;

/// Events waiting for delivery at most; beyond, new events are dropped.
const QUEUE: usize = 10_000;
/// Events per request at most.
const BATCH: usize = 100;
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// After the server stops, how long the queue may take to empty.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

pub(super) struct Webhook {
    queue: Option<mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Webhook {
    pub fn start(url: &str, metrics: Arc<Metrics>) -> Result<Webhook> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::Config(format!("the webhook URL '{url}': {e}")))?;
        if parsed.scheme() != "http" {
            return Err(Error::Config(format!(
                "the webhook URL '{url}' must be http:// (put a TLS relay in front of an https receiver)"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Runtime(format!("cannot make the webhook client: {e}")))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread_metrics = Arc::clone(&metrics);
        let thread = std::thread::Builder::new()
            .name("synthscan-webhook".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(deliver(client, parsed, rx, thread_metrics));
            })
            .map_err(|e| Error::Runtime(format!("cannot start the webhook thread: {e}")))?;
        Ok(Webhook {
            queue: Some(tx),
            thread: Some(thread),
            metrics,
        })
    }

    /// Queues an event; drops it (and counts it) when the queue is full.
    pub fn offer(&self, event: String) {
        if let Some(queue) = &self.queue
            && queue.try_send(event).is_err()
        {
            Metrics::inc(&self.metrics.webhook_dropped);
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn deliver(client: reqwest::Client, url: reqwest::Url, mut rx: mpsc::Receiver<String>, metrics: Arc<Metrics>) {
    let mut batch: Vec<String> = Vec::with_capacity(BATCH);
    let mut closed_at: Option<Instant> = None;
    loop {
        if batch.is_empty() {
            match rx.recv().await {
                Some(event) => batch.push(event),
                None => return,
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(event) => batch.push(event),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        let body = batch.join("\n") + "\n";
        let mut delivered = false;
        // the first try, then one after each delay
        let mut delays = RETRY_DELAYS.iter();
        loop {
            let sent = client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(body.clone())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                delivered = true;
                break;
            }
            let out_of_time = closed_at.is_some_and(|t| t.elapsed() > FINAL_FLUSH);
            match delays.next() {
                Some(delay) if !out_of_time => tokio::time::sleep(*delay).await,
                _ => break,
            }
        }
        let counter = if delivered {
            &metrics.webhook_sent
        } else {
            &metrics.webhook_failed
        };
        counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
        if closed_at.is_some_and(|t| t.elapsed() > FINAL_FLUSH) {
            let mut left = 0u64;
            while rx.try_recv().is_ok() {
                left += 1;
            }
            metrics.webhook_failed.fetch_add(left, Ordering::Relaxed);
            return;
        }
    }
}
