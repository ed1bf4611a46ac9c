//! The sdk retries a request whose answer was lost, with the same idempotency key: exactly one
//! order exists afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use suanli_tests::{TestExchange, new_bid, window};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one HTTP request (headers and a Content-Length body) from `client`.
async fn read_request(client: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = client.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the client closed early");
        request.extend_from_slice(&buffer[..read]);
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&request[..end]).to_lowercase();
        let length: usize = headers
            .lines()
            .find_map(|line| {
                line.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            return request;
        }
    }
}

/// A proxy that forwards the first request to `server` but drops the connection instead of
/// passing the answer back; later connections pass through untouched.
async fn lossy_proxy(server: String, forwarded: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    actix_web::rt::spawn(async move {
        let mut first = true;
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut upstream = TcpStream::connect(&server).await.unwrap();
            if first {
                first = false;
                let request = read_request(&mut client).await;
                upstream.write_all(&request).await.unwrap();
                // Wait until the server starts answering (it has committed), then lose the answer.
                let mut byte = [0u8; 1];
                upstream.read_exact(&mut byte).await.unwrap();
                forwarded.fetch_add(1, Ordering::SeqCst);
                drop(client);
                continue;
            }
            forwarded.fetch_add(1, Ordering::SeqCst);
            actix_web::rt::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    format!("http://{address}")
}

#[actix_web::test]
async fn a_lost_answer_is_retried_with_the_same_key_and_one_order_exists() {
    let exchange = TestExchange::start().await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "1000").await;
    let server = exchange
        .anonymous
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let forwarded = Arc::new(AtomicUsize::new(0));
    let proxy = lossy_proxy(server, forwarded.clone()).await;
    let through_proxy = suanli_sdk::Client::new(proxy).with_token(buyer.bearer_token().unwrap());

    let bid = new_bid("ai.ascend-910b", 2, window(3, 2), "5");
    let placed = through_proxy
        .place_bid(&bid)
        .await
        .expect("the retry gets the answer");
    assert!(
        forwarded.load(Ordering::SeqCst) >= 2,
        "the request reached the server twice"
    );
    assert_eq!(placed.bid.idempotency_key, bid.idempotency_key);
    assert_eq!(exchange.count("SELECT count(*) FROM bids"), 1);
    assert_eq!(buyer.bid(placed.bid.id).await.unwrap().id, placed.bid.id);
    let account = buyer.account().await.unwrap();
    assert_eq!(account.held.to_string(), "20", "held once, not twice");
}
