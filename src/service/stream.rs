//! `GET /v1/stream`: one WebSocket connection, live call audio in, events out.
//!
//! Promises to the client: every track it sent audio on gets a summary after `stop` (or after
//! an idle timeout, a shutdown, an over-size message or a protocol error, each announced first
//! by an error event), and then a close frame; the socket is read to the end meanwhile, so
//! frames sent after `stop` and keep-alive pings never reset the connection. A client that
//! sends a close frame itself has ended the conversation: the protocol lets the server answer
//! only with its own close frame, so its tracks are summarised into the metrics alone.
//!
//! Memory a client can make the server hold is bounded: [`MAX_TRACKS`] tracks, at most
//! [`CONNECTION_BUFFER_SAMPLES`] decoded samples waiting for the scorer per connection, and a
//! server-wide budget; a client over its budget is simply not read (TCP slows it down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use super::engine::{AudioJob, Buffered, Job, Reply};
use super::media::{self, Action, MAX_TRACKS, StreamProtocol};
use super::metrics::Metrics;
use super::{App, bearer, error_response, refuse_access};
use crate::audio::RawFormat;
use crate::error::{Error, Result};
use crate::report::{ErrorEvent, event_text};

/// Decoded samples one connection may have waiting for the scorer (more than any real-time
/// stream ever has: 4 min of 16 kHz stereo; 16 MiB).
pub const CONNECTION_BUFFER_SAMPLES: usize = 1 << 22;

/// Largest WebSocket message read.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// How long a client gets to answer the server's close frame.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Deserialize)]
pub(super) struct StreamQuery {
    token: Option<String>,
    /// Encoding of raw binary frames: s16le, ulaw or alaw.
    encoding: Option<String>,
    /// Sample rate of raw binary frames (default 8000).
    rate: Option<u32>,
    /// Interleaved channels in raw binary frames (default 1).
    channels: Option<usize>,
}

/// Decrements the open-stream gauge however the connection ends.
struct StreamSlot(Arc<Metrics>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) async fn upgrade(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: std::result::Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: std::result::Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                format!("this endpoint takes a WebSocket connection ({e})"),
            );
        }
    };
    let q = match super::query(query) {
        Ok(q) => q,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    // `?token=` is accepted here only: browsers cannot set headers on a WebSocket
    let token = bearer(&headers).or(q.token.as_deref());
    if let Some(refusal) = refuse_access(&app, client, token) {
        return refusal;
    }
    if app.draining.load(Ordering::SeqCst) {
        Metrics::inc(&app.metrics.streams_rejected);
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
    }
    let raw = match raw_format(&q) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Reserve a slot before upgrading, so a full server says so with a status code.
    let open = app.metrics.streams_open.fetch_add(1, Ordering::SeqCst);
    let slot = StreamSlot(Arc::clone(&app.metrics));
    if open >= app.max_streams {
        Metrics::inc(&app.metrics.streams_rejected);
        drop(slot);
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server is at its limit of {} concurrent streams", app.max_streams),
        );
    }
    Metrics::inc(&app.metrics.streams_total);
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| handle_socket(app, socket, raw, slot))
}

/// The raw-frame format declared in the query, if any.
fn raw_format(q: &StreamQuery) -> Result<Option<(RawFormat, u32, usize)>> {
    let Some(enc) = &q.encoding else { return Ok(None) };
    let format = media::encoding_from_name(enc)?;
    let rate = q.rate.unwrap_or(8000);
    let channels = q.channels.unwrap_or(1);
    crate::audio::check_stream_limits(rate, channels)?;
    Ok(Some((format, rate, channels)))
}

/// Decoded audio waiting for its share of the connection's and the server's buffer.
struct Pending {
    track: String,
    rate_hz: u32,
    channels: usize,
    samples: Vec<f32>,
    received: Instant,
}

/// Takes `n` samples of the connection's budget, then of the server's (always in this order,
/// so two connections never hold each other's half).
async fn reserve(app: &App, connection: &Arc<Semaphore>, n: usize) -> Option<Buffered> {
    let n32 = u32::try_from(n).ok()?;
    let own = Arc::clone(connection).acquire_many_owned(n32).await.ok()?;
    let shared = Arc::clone(&app.buffer).acquire_many_owned(n32).await.ok()?;
    Some(Buffered::new(own, shared, n as u64, Arc::clone(&app.metrics)))
}

/// Close code and reason of the server's close frame.
struct Closing {
    code: u16,
    reason: &'static str,
}

const NORMAL: Closing = Closing { code: 1000, reason: "" };

async fn handle_socket(app: Arc<App>, socket: WebSocket, raw: Option<(RawFormat, u32, usize)>, slot: StreamSlot) {
    let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut incoming) = socket.split();
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<Reply>();
    let mut protocol = StreamProtocol::new(format!("stream-{conn}"), raw);
    let budget = Arc::new(Semaphore::new(CONNECTION_BUFFER_SAMPLES));
    let mut finish_now = app.finish_now.clone();
    // whether the socket is still read (until the client closes, fails, or the stream ends)
    let mut reading = true;
    // whether events can still be sent (not after the client's close frame or a failed send)
    let mut sending = true;
    let mut finishing = false;
    let mut closing = NORMAL;
    let mut pending: Option<Pending> = None;
    let idle = app.idle_timeout;
    let mut idle_deadline = tokio::time::Instant::now() + idle;
    let mut dropped_tracks_reported = false;

    macro_rules! finish {
        () => {
            if !finishing {
                finishing = true;
                app.engine.send(
                    conn,
                    Job::Finish {
                        conn,
                        label: protocol.label().to_string(),
                        reply: reply_tx.clone(),
                    },
                );
            }
        };
    }
    let error_text = |e: &str| Message::Text(Utf8Bytes::from(event_text(&ErrorEvent::new(None, e))));

    loop {
        tokio::select! {
            buffered = async {
                match &pending {
                    Some(p) => reserve(&app, &budget, p.samples.len()).await,
                    None => std::future::pending().await,
                }
            }, if pending.is_some() => {
                let Some(p) = pending.take() else { continue };
                // time spent waiting for the scorer is not the client's silence
                idle_deadline = tokio::time::Instant::now() + idle;
                if let Some(buffered) = buffered {
                    app.engine.send(conn, Job::Audio(AudioJob {
                        conn,
                        track: p.track,
                        call: None,
                        rate_hz: p.rate_hz,
                        channels: p.channels,
                        samples: p.samples,
                        received: p.received,
                        reply: reply_tx.clone(),
                        buffered: Some(buffered),
                    }));
                }
            }
            msg = incoming.next(), if reading && pending.is_none() => {
                match msg {
                    // the TCP connection ended without a close frame: nobody to send to
                    None => {
                        app.engine.send(conn, Job::Forget { conn });
                        return;
                    }
                    Some(Err(e)) => {
                        // an over-size message or a protocol violation: say so, then summarise
                        Metrics::inc(&app.metrics.errors);
                        reading = false;
                        let text = e.to_string();
                        closing = if text.contains("too long") || text.contains("Space limit") {
                            Closing { code: 1009, reason: "message too big" }
                        } else {
                            Closing { code: 1002, reason: "protocol error" }
                        };
                        let what = format!("the stream broke the WebSocket protocol ({text}); summarising what was received");
                        if sink.send(error_text(&what)).await.is_err() {
                            sending = false;
                        }
                        finish!();
                    }
                    Some(Ok(Message::Close(_))) => {
                        reading = false;
                        sending = false;
                        finish!();
                    }
                    // after `stop` the rest of what the client sends is read and dropped
                    Some(Ok(Message::Binary(_) | Message::Text(_))) if finishing => {}
                    Some(Ok(message @ (Message::Binary(_) | Message::Text(_)))) => {
                        idle_deadline = tokio::time::Instant::now() + idle;
                        let action = match &message {
                            Message::Binary(bytes) => protocol.on_binary(bytes),
                            Message::Text(text) => protocol.on_text(text),
                            _ => Ok(Action::None),
                        };
                        match action {
                            Ok(Action::Audio { track, rate_hz, channels, samples }) => {
                                if !samples.is_empty() {
                                    pending = Some(Pending { track, rate_hz, channels, samples, received: Instant::now() });
                                }
                            }
                            Ok(Action::Stop) => finish!(),
                            Ok(Action::None) => {}
                            Err(e) => {
                                Metrics::inc(&app.metrics.errors);
                                let over_tracks = protocol.tracks() >= MAX_TRACKS && matches!(e, Error::Limit(_));
                                // one error event for a flood of new track names, not one each
                                if !(over_tracks && dropped_tracks_reported) {
                                    dropped_tracks_reported |= over_tracks;
                                    let _ = reply_tx.send(Reply::Event(event_text(&ErrorEvent::new(None, &e.to_string()))));
                                }
                            }
                        }
                    }
                    // pings are answered by the WebSocket layer; they are not audio, so they
                    // do not keep an idle stream open
                    Some(Ok(_)) => {}
                }
            }
            () = tokio::time::sleep_until(idle_deadline), if !finishing && pending.is_none() => {
                Metrics::inc(&app.metrics.errors);
                let e = format!("no audio for {:.0} s: closing the stream", idle.as_secs_f64());
                if sink.send(error_text(&e)).await.is_err() {
                    sending = false;
                }
                finish!();
            }
            changed = finish_now.changed(), if !finishing => {
                if changed.is_ok() && *finish_now.borrow() {
                    if sink.send(error_text("the server is shutting down: closing the stream")).await.is_err() {
                        sending = false;
                    }
                    finish!();
                }
            }
            reply = reply_rx.recv() => {
                match reply {
                    Some(Reply::Event(text)) => {
                        if sending && sink.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                            sending = false;
                        }
                    }
                    Some(Reply::Done) | None => break,
                }
            }
        }
    }
    let broken = !reading && closing.code != NORMAL.code;
    let mut slot = Some(slot);
    if !broken {
        // the stream is over: the closing handshake below is the connection's, not the stream's
        slot = None;
    }
    if sending {
        let frame = CloseFrame {
            code: closing.code,
            reason: Utf8Bytes::from_static(closing.reason),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    } else {
        // flushes the answer to the client's close frame
        let _ = sink.close().await;
    }
    if reading {
        // Read until the client's close frame (or its end), so that nothing it still sends
        // turns the socket's closing into a reset that could lose the summaries on their way.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(m)) = incoming.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    } else if broken {
        // After a protocol error the rest of the bad message cannot be read safely, and closing
        // a socket with unread data resets it, which can destroy the summaries before the
        // client reads them: the socket stays open a moment (the stream slot with it, so
        // lingering sockets stay under the stream cap).
        tokio::time::sleep(CLOSE_WAIT).await;
    }
    drop(slot);
}
