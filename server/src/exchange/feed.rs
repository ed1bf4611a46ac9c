//! The live side of the market stream: the writer publishes each batch's events here after the
//! batch committed, as one entry (on a follower node, the follower feed publishes what it read from
//! the database); every subscriber reads them from one bounded ring of batches. Events go out in id
//! order, each once: a publisher's events at or below the newest already published are dropped. A
//! subscriber that falls a whole ring behind loses its place (it is cut off and resumes from the
//! database); the writer never waits for anyone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use crate::db::stream::StreamEvent;

/// The events of one committed batch, in id order, and their Server-Sent Events text, formatted
/// once for every subscriber.
pub struct PublishedBatch {
    pub events: Vec<StreamEvent>,
    pub text: Bytes,
}

pub type Batch = Arc<PublishedBatch>;

/// One event in the Server-Sent Events format (its data is one line of JSON).
pub fn sse_text(text: &mut String, event: &StreamEvent) {
    use std::fmt::Write;
    let _ = write!(
        text,
        "id: {}\nevent: {}\ndata: {}\n\n",
        event.id, event.kind, event.data
    );
}

/// Where committed market events go live. Cheap to clone.
#[derive(Clone)]
pub struct MarketFeed {
    sender: broadcast::Sender<Batch>,
    subscribers: Arc<AtomicUsize>,
    subscribers_max: usize,
    /// Set when the server shuts down: every subscriber's stream ends, so that shutting down
    /// waits for no one.
    closing: Arc<watch::Sender<bool>>,
    /// The id of the newest event published so far, whoever published it (this node's writer
    /// while it leads, the follower feed otherwise), or where publishing starts; -1 before either
    /// is known.
    last: Arc<Mutex<i64>>,
    /// How often an idle subscriber hears a heartbeat.
    pub heartbeat: Duration,
}

/// One subscriber's place on the feed; gives its seat back when dropped.
pub struct Subscription {
    pub events: broadcast::Receiver<Batch>,
    /// Changes to true when the server shuts down.
    pub closing: watch::Receiver<bool>,
    subscribers: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MarketFeed {
    /// A feed whose ring holds `buffer` batches, for at most `subscribers_max` subscribers.
    pub fn new(buffer: usize, subscribers_max: usize, heartbeat: Duration) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        MarketFeed {
            sender,
            subscribers: Arc::new(AtomicUsize::new(0)),
            subscribers_max,
            closing: Arc::new(watch::channel(false).0),
            last: Arc::new(Mutex::new(-1)),
            heartbeat,
        }
    }

    /// The id of the newest event published (or where publishing started: every event after it
    /// is published), once known.
    pub fn last_published(&self) -> Option<i64> {
        Some(*self.last()).filter(|id| *id >= 0)
    }

    fn last(&self) -> std::sync::MutexGuard<'_, i64> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the feed's count at `id` (the newest stored event, 0 when there is none), unless it
    /// has started already.
    pub fn start_at(&self, id: i64) {
        let mut last = self.last();
        if *last < 0 {
            *last = id;
        }
    }

    /// Sends one batch's committed events to every subscriber, in order. Never blocks.
    pub fn publish(&self, mut events: Vec<StreamEvent>) {
        // Held while sending, so two publishers (a new leader's catch-up and the follower feed,
        // for a moment) go out one after the other, in id order, each event once.
        let mut last = self.last();
        events.retain(|event| event.id > *last);
        let Some(newest) = events.last() else {
            return;
        };
        *last = newest.id;
        if self.sender.receiver_count() == 0 {
            return;
        }
        let mut text = String::new();
        for event in &events {
            sse_text(&mut text, event);
        }
        // No subscriber is not an error: the events are in the database.
        let _ = self.sender.send(Arc::new(PublishedBatch {
            events,
            text: Bytes::from(text),
        }));
    }

    /// A new subscriber, which sees every event published from now on; `None` when the feed
    /// already has as many subscribers as it takes, or is closed.
    pub fn subscribe(&self) -> Option<Subscription> {
        let taken = self.subscribers.fetch_add(1, Ordering::SeqCst);
        let subscription = Subscription {
            events: self.sender.subscribe(),
            closing: self.closing.subscribe(),
            subscribers: self.subscribers.clone(),
        };
        if taken >= self.subscribers_max || *self.closing.borrow() {
            return None;
        }
        Some(subscription)
    }

    /// Ends every subscriber's stream and takes no new one: the server is shutting down.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Whether the server is shutting down.
    pub fn is_closed(&self) -> bool {
        *self.closing.borrow()
    }

    /// How many subscribers are reading now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::SeqCst)
    }
}
