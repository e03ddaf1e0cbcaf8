//! The router's body wrappers: `Reclaim` (a request body that comes back when the upstream
//! connection could not be made, so the request can go elsewhere), `Flight` (one request in an
//! instance's `in_flight`) and `RespBody` (what the client gets: an upstream body that ends its
//! flight and logs when it ends or is dropped, or a small page).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use hyper::body::{Bytes, Incoming};

use super::log::Pending;
use super::table::InstanceStats;

/// Where a [`Reclaim`] returns its body.
pub(crate) type Slot = Arc<Mutex<Option<Incoming>>>;

/// A request body (none for an empty one) that, dropped before anyone polled it, puts the
/// `Incoming` back into its slot.
pub(crate) struct Reclaim {
    body: Option<Incoming>,
    slot: Option<Slot>,
    polled: bool,
}

impl Reclaim {
    pub(crate) fn new(body: Option<Incoming>, slot: Option<Slot>) -> Reclaim {
        Reclaim {
            body,
            slot,
            polled: false,
        }
    }
}

impl Body for Reclaim {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.polled = true;
        match &mut self.body {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Reclaim {
    fn drop(&mut self) {
        if !self.polled
            && let (Some(body), Some(slot)) = (self.body.take(), &self.slot)
            && let Ok(mut s) = slot.lock()
        {
            *s = Some(body);
        }
    }
}

/// One request counted in an instance's `in_flight`, from its creation to its drop.
pub(crate) struct Flight(Arc<InstanceStats>);

impl Flight {
    pub(crate) fn new(stats: Arc<InstanceStats>) -> Flight {
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        Flight(stats)
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The body the client gets.
pub(crate) enum RespBody {
    /// An upstream body; its flight ends and its log line goes when it ends or is dropped.
    Upstream {
        body: Incoming,
        done: Option<(Flight, Option<Pending>)>,
    },
    /// A page of the router's own, or nothing (101).
    Full(Option<Bytes>),
}

impl RespBody {
    pub(crate) fn upstream(body: Incoming, flight: Flight, log: Option<Pending>) -> RespBody {
        RespBody::Upstream {
            body,
            done: Some((flight, log)),
        }
    }

    fn finish(&mut self) {
        if let RespBody::Upstream { done, .. } = self
            && let Some((flight, log)) = done.take()
        {
            drop(flight);
            if let Some(log) = log {
                log.send();
            }
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        match this {
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Upstream { body, .. } => {
                let r = Pin::new(body).poll_frame(cx);
                if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    this.finish();
                }
                r
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(b) => b.is_none(),
            RespBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        self.finish();
    }
}
