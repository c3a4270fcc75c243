//! A scripted HTTP server standing in for an RM or NM in tests of clients built on this crate:
//! every request is recorded, and each path answers from its own queue of canned responses (500
//! once the queue is empty).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use weft_common::error::ErrorBody;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: Value,
}

struct Canned {
    status: StatusCode,
    body: Value,
    location: Option<String>,
}

#[derive(Default)]
struct Script {
    responses: HashMap<String, VecDeque<Canned>>,
    recorded: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeServer {
    pub address: String,
    script: Arc<Mutex<Script>>,
}

impl FakeServer {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = script.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let script = shared.clone();
            async move { answer(&script, method, uri, headers, body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, script }
    }

    pub fn respond(&self, path: &str, status: u16, body: Value) -> &Self {
        self.push(path, Canned { status: StatusCode::from_u16(status).unwrap(), body, location: None })
    }

    /// Answers `path` once with `307 Temporary Redirect` to `location`, as a standby RM does.
    pub fn respond_redirect(&self, path: &str, location: &str) -> &Self {
        let canned =
            Canned { status: StatusCode::TEMPORARY_REDIRECT, body: Value::Null, location: Some(location.to_owned()) };
        self.push(path, canned)
    }

    fn push(&self, path: &str, canned: Canned) -> &Self {
        self.script.lock().unwrap().responses.entry(path.to_owned()).or_default().push_back(canned);
        self
    }

    pub fn respond_error(&self, path: &str, status: u16, code: &str) -> &Self {
        let body =
            serde_json::to_value(ErrorBody::new("BadRequestException", code, "scripted failure", "a hint")).unwrap();
        self.respond(path, status, body)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().recorded.clone()
    }

    pub fn recorded_at(&self, path: &str) -> Vec<Recorded> {
        self.recorded().into_iter().filter(|r| r.path == path).collect()
    }
}

fn answer(script: &Mutex<Script>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut script = script.lock().unwrap();
    let path = uri.path().to_owned();
    script.recorded.push(Recorded {
        method,
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_owned(),
        authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let next = script.responses.get_mut(&path).and_then(VecDeque::pop_front);
    let canned = next.unwrap_or_else(|| Canned {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Value::String(format!("nothing scripted for {path}")),
        location: None,
    });
    let mut response = (canned.status, axum::Json(canned.body)).into_response();
    if let Some(location) = canned.location {
        response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
    }
    response
}

/// An address nothing listens on, so connecting to it is refused.
pub async fn refused_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    address
}
