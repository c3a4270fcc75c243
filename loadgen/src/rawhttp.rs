//! A minimal HTTP/1.1 keep-alive client for the node protocol (register and heartbeat), which is
//! most of the generator's traffic: 10k heartbeats/s. Through reqwest a heartbeat cost the
//! generator about as much CPU as it cost the RM (~90 µs, measured with perf: pool, URL and
//! header handling, allocations), and the generator shares the machine with the RM it measures.
//! This client writes the request in one buffer and reads a `Content-Length` framed answer, which
//! is all the RM's JSON endpoints send.
//!
//! It is the one raw path kept beside `weft-client`: `docs/loadgen.md` measured 30–50 µs of
//! generator CPU per heartbeat through it against 90 µs through reqwest, and the 10k nodes'
//! heartbeats must leave the RM most of a 2-core machine. Timeouts and retries around it still
//! come from `weft-client`'s policy (`crate::world::retrying`).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why an exchange failed below HTTP.
#[derive(Debug)]
pub struct IoFailure {
    /// Low-cardinality: "timeout", "connect failed", "connection error", "bad response".
    pub kind: &'static str,
    pub message: String,
}

pub struct RawClient {
    addr: SocketAddr,
    host: String,
    idle: Mutex<Vec<TcpStream>>,
    max_idle: usize,
}

/// Status code and body of an answer.
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

const HEADER_LIMIT: usize = 16 * 1024;

impl RawClient {
    pub fn new(addr: SocketAddr, max_idle: usize) -> Self {
        Self { addr, host: addr.to_string(), idle: Mutex::new(Vec::new()), max_idle }
    }

    /// POSTs a JSON body to `path`. A kept-alive connection the server had closed is retried
    /// once on a fresh one (register and heartbeat are safe to repeat).
    pub async fn post(&self, path: &str, body: &[u8], timeout: Duration) -> Result<RawResponse, IoFailure> {
        let mut request = Vec::with_capacity(160 + body.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        request.extend_from_slice(self.host.as_bytes());
        request
            .extend_from_slice(b"\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: ");
        request.extend_from_slice(body.len().to_string().as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);
        let exchange = async {
            if let Some(stream) = self.checkout() {
                match exchange(stream, &request).await {
                    Ok(done) => return Ok(done),
                    Err(Exchange::Stale) => {}
                    Err(Exchange::Failed(e)) => return Err(e),
                }
            }
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| IoFailure { kind: "connect failed", message: format!("{}: {e}", self.addr) })?;
            let _ = stream.set_nodelay(true);
            match exchange(stream, &request).await {
                Ok(done) => Ok(done),
                Err(Exchange::Stale) => Err(IoFailure {
                    kind: "connection error",
                    message: "the server closed a new connection without answering".into(),
                }),
                Err(Exchange::Failed(e)) => Err(e),
            }
        };
        let (response, stream) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| IoFailure { kind: "timeout", message: format!("no answer within {timeout:?}") })??;
        if let Some(stream) = stream {
            self.checkin(stream);
        }
        Ok(response)
    }

    fn checkout(&self) -> Option<TcpStream> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn checkin(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(stream);
        }
    }
}

enum Exchange {
    /// Nothing came back on a reused connection: the server had closed it.
    Stale,
    Failed(IoFailure),
}

/// One request/response on `stream`; the stream back if it may be reused.
async fn exchange(mut stream: TcpStream, request: &[u8]) -> Result<(RawResponse, Option<TcpStream>), Exchange> {
    let io = |e: std::io::Error| Exchange::Failed(IoFailure { kind: "connection error", message: e.to_string() });
    let bad = |m: &str| Exchange::Failed(IoFailure { kind: "bad response", message: m.to_owned() });
    if let Err(e) = stream.write_all(request).await {
        return Err(if e.kind() == std::io::ErrorKind::BrokenPipe { Exchange::Stale } else { io(e) });
    }
    let mut buf = Vec::with_capacity(1024);
    let header_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > HEADER_LIMIT {
            return Err(bad("response headers too long"));
        }
        let n = read_some(&mut stream, &mut buf).await.map_err(|e| {
            if buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset { Exchange::Stale } else { io(e) }
        })?;
        if n == 0 {
            return Err(if buf.is_empty() { Exchange::Stale } else { bad("connection closed inside the headers") });
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).map_err(|_| bad("response headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let (mut length, mut close) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported"));
        }
    }
    let length = length.ok_or_else(|| bad("response without Content-Length"))?;
    while buf.len() < header_end + length {
        if read_some(&mut stream, &mut buf).await.map_err(io)? == 0 {
            return Err(bad("connection closed inside the body"));
        }
    }
    let body = buf.split_off(header_end);
    Ok((RawResponse { status, body }, (!close).then_some(stream)))
}

async fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 512 {
        buf.reserve(4096);
    }
    stream.read_buf(buf).await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers each request on a connection with a fixed response, then closes
    /// after `per_connection` requests.
    async fn server(response: &'static str, per_connection: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    for _ in 0..per_connection {
                        let mut buf = Vec::new();
                        // Headers, then the declared body.
                        loop {
                            if let Some(end) = find(&buf, b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                                let len: usize = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length: ").map(|v| v.parse().unwrap()))
                                    .unwrap_or(0);
                                if buf.len() >= end + 4 + len {
                                    break;
                                }
                            }
                            if stream.read_buf(&mut buf).await.unwrap() == 0 {
                                return;
                            }
                        }
                        stream.write_all(response.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn reuses_connections_and_recovers_from_closed_ones() {
        let addr = server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}", 1).await;
        let client = RawClient::new(addr, 4);
        for _ in 0..3 {
            // The server closes after each answer: the pooled connection is stale every time.
            let r = client.post("/x", b"{\"a\":1}", Duration::from_secs(5)).await.unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, b"{}".as_slice()));
        }
    }

    #[tokio::test]
    async fn reports_status_and_body_of_errors() {
        let addr = server("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy", 100).await;
        let client = RawClient::new(addr, 4);
        let r = client.post("/x", b"{}", Duration::from_secs(5)).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, b"busy".as_slice()));
    }
}
