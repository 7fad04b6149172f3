//! Answers given before a request's body is read (a wrong key, the rate limit, a body over its
//! limit, the database away) must reach the client. A client that sends its whole body before
//! it reads — Python's `http.client`, many others — meets a reset connection instead when the
//! server closes with the body unread. So every request's body is shared with this layer, and
//! after an answer that is not a success, what is left of the body is read and dropped, up to
//! `DRAIN_BYTES` and `DRAIN_TIME`, before the answer goes out. Past either bound the connection
//! is closed as before: a client cannot hold a process with an endless body.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use http_body::Frame;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most of an unread body read and dropped after an early answer.
pub const DRAIN_BYTES: usize = 16 * 1024 * 1024;
/// The longest a slow sender is waited for after an early answer.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request's body, read by the handler through a clone; the rest is left for `drain`.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Option<Body>>>);

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Ok(mut guard) = self.0.lock() else {
            return Poll::Ready(None);
        };
        match guard.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

impl SharedBody {
    /// Reads and drops what is left, within the bounds.
    async fn drain(&self) {
        let Some(body) = self.0.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let mut rest = body.into_data_stream();
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            let mut read = 0usize;
            while let Some(Ok(chunk)) = rest.next().await {
                read += chunk.len();
                if read >= DRAIN_BYTES {
                    break;
                }
            }
        })
        .await;
    }
}

/// The layer: shares the body with the handler, drains it after an answer that is not 2xx.
pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let shared = SharedBody(Arc::new(Mutex::new(Some(body))));
    let response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    if !response.status().is_success() {
        shared.drain().await;
    }
    response
}
