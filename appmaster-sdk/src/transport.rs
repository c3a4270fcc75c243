//! One logical server reached over HTTP at one or more addresses: JSON in and out, retries with
//! backoff on transient failures, and failover between addresses (RM high availability).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_common::error::ErrorBody;

use crate::error::SdkError;
use crate::retry::{Backoff, RetryPolicy};

/// Longest piece of a non-JSON error body kept in [`SdkError::Status`].
const ERROR_TEXT_LIMIT: usize = 500;

/// Redirects are not followed by reqwest: a standby RM redirects to the active one, which is
/// handled in [`Endpoint::execute`] (following it here would drop the AM's bearer token, as
/// reqwest strips credentials on redirects to another host or port).
pub(crate) fn http_client() -> Result<reqwest::Client, SdkError> {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(SdkError::HttpClient)
}

/// Accepts `http://host:port[/prefix]` or a bare `host:port` (YARN prints node addresses bare).
pub(crate) fn parse_address(address: &str) -> Result<Url, SdkError> {
    let invalid = |reason: String| SdkError::InvalidAddress { address: address.to_owned(), reason };
    let trimmed = address.trim();
    let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}") };
    let url = Url::parse(&with_scheme).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(invalid("only http:// addresses are supported".to_owned()));
    }
    Ok(url)
}

/// One HTTP request, relative to whichever server address it is sent to.
pub(crate) struct Request<'a> {
    method: Method,
    path: &'a str,
    /// Appended after `path`, percent-encoded whole (a `/` inside stays part of the segment).
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    accept: &'static str,
    long_poll: Duration,
}

impl<'a> Request<'a> {
    fn new(method: Method, path: &'a str) -> Self {
        Self {
            method,
            path,
            segments: Vec::new(),
            query: Vec::new(),
            body: None,
            accept: "application/json",
            long_poll: Duration::ZERO,
        }
    }

    pub(crate) fn get(path: &'a str) -> Self {
        Self::new(Method::GET, path)
    }

    pub(crate) fn post(path: &'a str) -> Self {
        Self::new(Method::POST, path)
    }

    pub(crate) fn put(path: &'a str) -> Self {
        Self::new(Method::PUT, path)
    }

    pub(crate) fn json_body<T: Serialize>(mut self, body: &T) -> Result<Self, SdkError> {
        self.body = Some(serde_json::to_vec(body).map_err(SdkError::Encode)?);
        Ok(self)
    }

    pub(crate) fn segment(mut self, segment: impl Into<String>) -> Self {
        self.segments.push(segment.into());
        self
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(crate) fn accept_text(mut self) -> Self {
        self.accept = "text/plain, */*";
        self
    }

    /// The server may hold this request up to `wait` before answering, so allow for it.
    pub(crate) fn long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait;
        self
    }
}

/// A successful (2xx) response.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    body: Vec<u8>,
    url: String,
}

impl Reply {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, SdkError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| SdkError::Decode { url: self.url.clone(), message: e.to_string() })
    }

    pub(crate) fn into_text(self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a call came to, and how often it was sent: a request retried after a lost response may
/// already have taken effect on an earlier try, which non-idempotent callers need to know.
pub(crate) struct Attempted {
    pub(crate) result: Result<Reply, SdkError>,
    pub(crate) attempts: u32,
}

pub(crate) struct Endpoint {
    http: reqwest::Client,
    bases: Vec<Url>,
    /// The address that answered last; calls start there so failover sticks.
    preferred: AtomicUsize,
    policy: RetryPolicy,
    bearer_token: Option<String>,
    /// YARN's pseudo-authentication: `?user.name=` on every request.
    user_name: Option<String>,
}

impl Endpoint {
    pub(crate) fn new(http: reqwest::Client, addresses: &[String], policy: RetryPolicy) -> Result<Self, SdkError> {
        let bases = addresses
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| parse_address(a))
            .collect::<Result<Vec<_>, _>>()?;
        if bases.is_empty() {
            return Err(SdkError::NoAddresses);
        }
        Ok(Self { http, bases, preferred: AtomicUsize::new(0), policy, bearer_token: None, user_name: None })
    }

    pub(crate) fn with_bearer_token(mut self, token: String) -> Self {
        self.bearer_token = Some(token);
        self
    }

    pub(crate) fn with_user_name(mut self, user: String) -> Self {
        self.user_name = Some(user);
        self
    }

    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub(crate) fn set_policy(&mut self, policy: RetryPolicy) {
        self.policy = policy;
    }

    /// A client for another server (e.g. a NodeManager) sharing this one's connection pool,
    /// policy and user.
    pub(crate) fn sibling(&self, address: &str) -> Result<Endpoint, SdkError> {
        let mut endpoint = Endpoint::new(self.http.clone(), &[address.to_owned()], self.policy)?;
        endpoint.user_name = self.user_name.clone();
        Ok(endpoint)
    }

    pub(crate) async fn call(&self, request: &Request<'_>) -> Result<Reply, SdkError> {
        self.execute(request).await.result
    }

    pub(crate) async fn call_json<T: DeserializeOwned>(&self, request: &Request<'_>) -> Result<T, SdkError> {
        self.call(request).await?.json()
    }

    /// Sends `request`, retrying transient failures across all addresses until the policy's
    /// deadline. Every address is tried once before pausing, since during a failover one of
    /// them is usually able to answer at once.
    pub(crate) async fn execute(&self, request: &Request<'_>) -> Attempted {
        let started = Instant::now();
        let mut backoff = Backoff::new(&self.policy);
        let mut attempts = 0u32;
        let mut index = self.preferred.load(Ordering::Relaxed) % self.bases.len();
        loop {
            attempts += 1;
            let error = match self.send_once(&self.bases[index], request).await {
                Err(error) if error.is_retryable() => error,
                result => {
                    // The server answered, so it is the one to start from next time.
                    self.preferred.store(index, Ordering::Relaxed);
                    return Attempted { result, attempts };
                }
            };
            // A standby names the active: go there next, if it is one of ours.
            index = error
                .redirect_location()
                .and_then(|location| self.index_of(location))
                .unwrap_or((index + 1) % self.bases.len());
            let full_round = (attempts as usize).is_multiple_of(self.bases.len());
            let pause = if full_round { backoff.next_delay() } else { Duration::ZERO };
            let elapsed = started.elapsed();
            if elapsed + pause >= self.policy.deadline {
                let last = Box::new(error);
                return Attempted { result: Err(SdkError::Timeout { attempts, elapsed, last }), attempts };
            }
            tracing::debug!(%error, attempts, next_address = %self.bases[index], ?pause, "transient failure; retrying");
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    async fn send_once(&self, base: &Url, request: &Request<'_>) -> Result<Reply, SdkError> {
        let url = self.url(base, request)?;
        let mut builder = self
            .http
            .request(request.method.clone(), url.clone())
            .timeout(self.policy.request_timeout + request.long_poll)
            .header(ACCEPT, request.accept);
        if let Some(token) = &self.bearer_token {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = &request.body {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body.clone());
        }
        let response = builder.send().await.map_err(SdkError::Transport)?;
        let status = response.status();
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
            return Err(SdkError::Redirect { url: url.to_string(), location: location.unwrap_or_default().to_owned() });
        }
        let body = response.bytes().await.map_err(SdkError::Transport)?.to_vec();
        if status.is_success() {
            return Ok(Reply { status, body, url: url.to_string() });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(body) => SdkError::Remote { status: status.as_u16(), body },
            Err(_) => {
                let mut text = String::from_utf8_lossy(&body).into_owned();
                if text.len() > ERROR_TEXT_LIMIT {
                    text.truncate(text.floor_char_boundary(ERROR_TEXT_LIMIT));
                    text.push('…');
                }
                SdkError::Status { status: status.as_u16(), url: url.to_string(), text }
            }
        })
    }

    /// The configured address a redirect `location` points into (same scheme, host and port).
    fn index_of(&self, location: &str) -> Option<usize> {
        let target = Url::parse(location).ok()?;
        self.bases.iter().position(|base| base.origin() == target.origin())
    }

    fn url(&self, base: &Url, request: &Request<'_>) -> Result<Url, SdkError> {
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| SdkError::InvalidAddress { address: base.to_string(), reason: "not a base URL".to_owned() })?
            .pop_if_empty()
            .extend(request.path.split('/').filter(|segment| !segment.is_empty()))
            .extend(&request.segments);
        let user = self.user_name.as_deref().map(|user| ("user.name", user));
        let pairs: Vec<(&str, &str)> = request.query.iter().map(|(k, v)| (*k, v.as_str())).chain(user).collect();
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_accept_bare_host_port_and_prefixes() {
        assert_eq!(parse_address("nm1:8042").unwrap().as_str(), "http://nm1:8042/");
        assert!(parse_address("https://rm:8090").is_err());
        let endpoint = Endpoint::new(http_client().unwrap(), &["http://rm:8088/proxy/".into()], RetryPolicy::default())
            .unwrap()
            .with_user_name("alice".into());
        let request = Request::get("/ws/v1/cluster/apps").query("states", "RUNNING,ACCEPTED");
        let url = endpoint.url(&endpoint.bases[0], &request).unwrap();
        assert_eq!(url.as_str(), "http://rm:8088/proxy/ws/v1/cluster/apps?states=RUNNING%2CACCEPTED&user.name=alice");
        let request = Request::get("/ws/v1/node/containers/c/logs").segment("a b?/.log");
        let url = endpoint.url(&endpoint.bases[0], &request).unwrap();
        assert_eq!(url.path(), "/proxy/ws/v1/node/containers/c/logs/a%20b%3F%2F.log");
    }
}
