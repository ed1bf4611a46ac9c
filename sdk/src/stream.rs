//! The live market (`GET /v1/market/stream`), read as typed events that resume by themselves:
//! when the connection ends (a restart, a cut-off for falling behind, a network failure), the
//! stream reconnects with the id of the last event it gave out, and goes on without a gap or a
//! repeat.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::{Method, Response, StatusCode};

use crate::client::{Client, decode};
use crate::error::Error;
use crate::types::{BookChange, MarketEvent, MarketTrade, MarketUpdate};

/// Failed connection attempts in a row before [`MarketStream::next`] gives up (about a minute).
const RECONNECTS_MAX: u32 = 24;

/// Largest event accepted from the server; a stream that sends a larger one is refused.
const EVENT_BYTES_MAX: usize = 1 << 20;

/// Events of the market stream, in order. Made by [`Client::market_stream`].
pub struct MarketStream {
    client: Client,
    last_event_id: Option<i64>,
    response: Option<Response>,
    /// Received bytes not yet parsed into whole events (carriage returns dropped).
    unparsed: Vec<u8>,
    /// How far `unparsed` was searched for the end of an event.
    scanned: usize,
    ready: VecDeque<MarketEvent>,
    /// Failed connection attempts since the last success.
    reconnects: u32,
    /// Connections opened after the first.
    reconnections: u64,
    connected_once: bool,
}

impl Client {
    /// The live market from now on, or from just after `last_event_id` (every event since then
    /// first). Nothing is requested until [`MarketStream::next`] is called.
    pub fn market_stream(&self, last_event_id: Option<i64>) -> MarketStream {
        MarketStream {
            client: self.clone(),
            last_event_id,
            response: None,
            unparsed: Vec::new(),
            scanned: 0,
            ready: VecDeque::new(),
            reconnects: 0,
            reconnections: 0,
            connected_once: false,
        }
    }
}

impl MarketStream {
    /// The id of the last event given out: pass it to [`Client::market_stream`] to resume later.
    pub fn last_event_id(&self) -> Option<i64> {
        self.last_event_id
    }

    /// How many times the stream had to reconnect (after a cut-off, a restart, a failure).
    pub fn reconnections(&self) -> u64 {
        self.reconnections
    }

    /// The next event, waiting for it as long as it takes. Reconnects (resuming after the last
    /// event) when the connection ends; fails on a refusal (4xx) or after repeated failures to
    /// reconnect.
    pub async fn next(&mut self) -> Result<MarketEvent, Error> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.last_event_id = Some(event.id);
                return Ok(event);
            }
            let Some(response) = self.response.as_mut() else {
                self.connect().await?;
                continue;
            };
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    self.unparsed
                        .extend(bytes.iter().copied().filter(|byte| *byte != b'\r'));
                    self.parse()?;
                }
                // The server ended the stream (cut off, shutting down) or the connection failed.
                Ok(None) | Err(_) => {
                    self.response = None;
                    self.unparsed.clear();
                    self.scanned = 0;
                }
            }
        }
    }

    /// Opens the stream after the last event; waits a little longer before each retry.
    async fn connect(&mut self) -> Result<(), Error> {
        loop {
            if self.reconnects > 0 {
                let wait = 50u64 << self.reconnects.min(6);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            self.reconnects += 1;
            if std::mem::replace(&mut self.connected_once, true) {
                self.reconnections += 1;
            }
            let mut request = self.client.request(Method::GET, "/v1/market/stream");
            if let Some(id) = self.last_event_id {
                request = request.header("last-event-id", id.to_string());
            }
            let failure = match request.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    self.response = Some(response);
                    self.reconnects = 0;
                    return Ok(());
                }
                Ok(response) if response.status().is_client_error() => {
                    return Err(decode::<serde_json::Value>(response)
                        .await
                        .err()
                        .unwrap_or_else(|| Error::Unexpected {
                            status: StatusCode::OK,
                            detail: "a refusal without an error body".into(),
                        }));
                }
                Ok(response) => decode::<serde_json::Value>(response).await.err(),
                Err(error) => Some(Error::Transport(error)),
            };
            if self.reconnects >= RECONNECTS_MAX {
                return Err(failure.unwrap_or_else(|| Error::Unexpected {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    detail: "the market stream could not be reopened".into(),
                }));
            }
        }
    }

    /// Moves every whole event received into `ready`, skipping any already given out.
    fn parse(&mut self) -> Result<(), Error> {
        loop {
            let from = self.scanned.saturating_sub(1);
            let Some(at) = self.unparsed[from..]
                .windows(2)
                .position(|pair| pair == b"\n\n")
            else {
                self.scanned = self.unparsed.len();
                if self.unparsed.len() > EVENT_BYTES_MAX {
                    return Err(Error::Unexpected {
                        status: StatusCode::OK,
                        detail: format!("a market event longer than {EVENT_BYTES_MAX} bytes"),
                    });
                }
                return Ok(());
            };
            let end = from + at;
            let block: Vec<u8> = self.unparsed.drain(..end + 2).collect();
            self.scanned = 0;
            let newest = self
                .ready
                .back()
                .map(|event| event.id)
                .or(self.last_event_id);
            match parse_block(&String::from_utf8_lossy(&block[..end]))? {
                Block::Event(event) if newest.is_none_or(|newest| event.id > newest) => {
                    self.ready.push_back(event)
                }
                // Where a fresh stream starts: a reconnection resumes from there.
                Block::Position(id) if self.ready.is_empty() => self.last_event_id = Some(id),
                _ => {}
            }
        }
    }
}

/// What one block of the stream says.
#[derive(Debug, PartialEq, Eq)]
enum Block {
    Event(MarketEvent),
    /// An id without an event: the stream's position.
    Position(i64),
    /// A comment, or an event of a kind this sdk does not know.
    Nothing,
}

/// One event block.
fn parse_block(block: &str) -> Result<Block, Error> {
    let (mut id, mut kind, mut data) = (None, None, String::new());
    for line in block.lines() {
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "" => {} // a comment (heartbeat, cut-off notice)
            "id" => id = value.parse::<i64>().ok(),
            "event" => kind = Some(value.to_owned()),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    let (id, kind) = match (id, kind) {
        (Some(id), Some(kind)) => (id, kind),
        (Some(id), None) if data.is_empty() => return Ok(Block::Position(id)),
        _ => return Ok(Block::Nothing),
    };
    let unexpected = |error: serde_json::Error| Error::Unexpected {
        status: StatusCode::OK,
        detail: format!("market event {id}: {error}"),
    };
    let update = match kind.as_str() {
        "trade" => {
            MarketUpdate::Trade(serde_json::from_str::<MarketTrade>(&data).map_err(unexpected)?)
        }
        "book" => {
            MarketUpdate::Book(serde_json::from_str::<BookChange>(&data).map_err(unexpected)?)
        }
        _ => return Ok(Block::Nothing),
    };
    Ok(Block::Event(MarketEvent { id, update }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_positions_comments_and_unknown_kinds() {
        let book = parse_block(
            "id: 7\nevent: book\ndata: {\"side\":\"bid\",\"sku\":\"h800\",\"price\":\"1.5\",\"units\":3,\"orders\":1}",
        )
        .unwrap();
        let Block::Event(book) = book else {
            panic!("{book:?}")
        };
        assert_eq!(book.id, 7);
        assert!(matches!(book.update, MarketUpdate::Book(ref change) if change.units == 3));
        assert_eq!(parse_block(": heartbeat").unwrap(), Block::Nothing);
        assert_eq!(
            parse_block(": suanli market stream\nid: 12").unwrap(),
            Block::Position(12)
        );
        assert_eq!(
            parse_block("id: 8\nevent: news\ndata: {}").unwrap(),
            Block::Nothing
        );
        assert!(parse_block("id: 9\nevent: book\ndata: {").is_err());
    }
}
