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

/// Reconnections in a row without an event before [`MarketStream::next`] gives up.
const RECONNECTS_MAX: u32 = 8;

/// Events of the market stream, in order. Made by [`Client::market_stream`].
pub struct MarketStream {
    client: Client,
    last_event_id: Option<i64>,
    response: Option<Response>,
    /// Received bytes not yet parsed into whole events.
    unparsed: Vec<u8>,
    ready: VecDeque<MarketEvent>,
    /// Reconnections since the last event.
    reconnects: u32,
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
            ready: VecDeque::new(),
            reconnects: 0,
        }
    }
}

impl MarketStream {
    /// The id of the last event given out: pass it to [`Client::market_stream`] to resume later.
    pub fn last_event_id(&self) -> Option<i64> {
        self.last_event_id
    }

    /// The next event, waiting for it as long as it takes. Reconnects (resuming after the last
    /// event) when the connection ends; fails on a refusal (4xx) or after repeated failures to
    /// reconnect.
    pub async fn next(&mut self) -> Result<MarketEvent, Error> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.last_event_id = Some(event.id);
                self.reconnects = 0;
                return Ok(event);
            }
            let Some(response) = self.response.as_mut() else {
                self.connect().await?;
                continue;
            };
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    self.unparsed.extend_from_slice(&bytes);
                    self.parse()?;
                }
                // The server ended the stream (cut off, shutting down) or the connection failed.
                Ok(None) | Err(_) => {
                    self.response = None;
                    self.unparsed.clear();
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
            let mut request = self.client.request(Method::GET, "/v1/market/stream");
            if let Some(id) = self.last_event_id {
                request = request.header("last-event-id", id.to_string());
            }
            let failure = match request.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    self.response = Some(response);
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

    /// Moves every whole event received into `ready`.
    fn parse(&mut self) -> Result<(), Error> {
        while let Some(end) = find_blank_line(&self.unparsed) {
            let block: Vec<u8> = self.unparsed.drain(..end.0).collect();
            self.unparsed.drain(..end.1 - end.0);
            if let Some(event) = parse_event(&String::from_utf8_lossy(&block))? {
                self.ready.push_back(event);
            }
        }
        Ok(())
    }
}

/// Where the first event ends: (end of its text, start of what follows).
fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    let text = bytes;
    for at in 0..text.len() {
        if text[at..].starts_with(b"\n\n") {
            return Some((at, at + 2));
        }
        if text[at..].starts_with(b"\r\n\r\n") {
            return Some((at, at + 4));
        }
    }
    None
}

/// One event block; `None` for comments and events of kinds this sdk does not know.
fn parse_event(block: &str) -> Result<Option<MarketEvent>, Error> {
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
    let (Some(id), Some(kind)) = (id, kind) else {
        return Ok(None);
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
        _ => return Ok(None),
    };
    Ok(Some(MarketEvent { id, update }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_comments_and_unknown_kinds() {
        let book = parse_event(
            "id: 7\nevent: book\ndata: {\"side\":\"bid\",\"sku\":\"h800\",\"price\":\"1.5\",\"units\":3,\"orders\":1}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(book.id, 7);
        assert!(matches!(book.update, MarketUpdate::Book(ref change) if change.units == 3));
        assert_eq!(parse_event(": heartbeat").unwrap(), None);
        assert_eq!(parse_event("id: 8\nevent: news\ndata: {}").unwrap(), None);
        assert!(parse_event("id: 9\nevent: book\ndata: {").is_err());
        assert_eq!(find_blank_line(b"id: 1\r\n\r\nrest"), Some((5, 9)));
    }
}
