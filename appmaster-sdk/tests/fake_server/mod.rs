//! A scripted HTTP server standing in for an RM or NM: every request is recorded, and each path
//! answers from its own queue of canned responses (500 once the queue is empty).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
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

#[derive(Default)]
struct Script {
    responses: HashMap<String, VecDeque<(StatusCode, Value)>>,
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
        let mut script = self.script.lock().unwrap();
        let queue = script.responses.entry(path.to_owned()).or_default();
        queue.push_back((StatusCode::from_u16(status).unwrap(), body));
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

fn answer(
    script: &Mutex<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
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
    let (status, value) =
        next.unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, Value::String(format!("nothing scripted for {path}"))));
    (status, axum::Json(value))
}

/// An address nothing listens on, so connecting to it is refused.
pub async fn refused_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    address
}
