//! One logical server reached over HTTP at one or more addresses: JSON in and out, retries with
//! backoff on transient failures, and failover between addresses (RM high availability).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use weft_common::error::ErrorBody;

use crate::error::ClientError;
use crate::retry::{Backoff, RetryPolicy};

/// Longest piece of a non-JSON error body kept in [`ClientError::Status`].
const ERROR_TEXT_LIMIT: usize = 500;

/// Connecting is given up after this (a host that is down; a refused connection fails at once).
/// Long enough for one lost SYN to be sent again.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection pool [`Endpoint`]s share. Redirects are not followed by reqwest: a standby RM
/// redirects to the active one, which is handled in [`Endpoint::execute`] (reqwest would drop
/// the AM's bearer token on a redirect to another host or port, or send it anywhere if told not
/// to drop it).
pub fn http_client() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(ClientError::HttpClient)
}

/// Accepts `http://host:port[/prefix]` or a bare `host:port` (YARN prints node addresses bare).
pub fn parse_address(address: &str) -> Result<Url, ClientError> {
    let invalid = |reason: String| ClientError::InvalidAddress { address: address.to_owned(), reason };
    let trimmed = address.trim();
    let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}") };
    let url = Url::parse(&with_scheme).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(invalid("only http:// addresses are supported".to_owned()));
    }
    Ok(url)
}

/// One HTTP request, relative to whichever server address it is sent to.
pub struct Request<'a> {
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

    pub fn get(path: &'a str) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: &'a str) -> Self {
        Self::new(Method::POST, path)
    }

    pub fn put(path: &'a str) -> Self {
        Self::new(Method::PUT, path)
    }

    pub fn json_body<T: Serialize>(mut self, body: &T) -> Result<Self, ClientError> {
        self.body = Some(serde_json::to_vec(body).map_err(ClientError::Encode)?);
        Ok(self)
    }

    pub fn segment(mut self, segment: impl Into<String>) -> Self {
        self.segments.push(segment.into());
        self
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn accept_text(mut self) -> Self {
        self.accept = "text/plain, */*";
        self
    }

    /// The server may hold this request up to `wait` before answering, so allow for it.
    pub fn long_poll(mut self, wait: Duration) -> Self {
        self.long_poll = wait;
        self
    }
}

/// A successful (2xx) response.
pub struct Reply {
    pub status: StatusCode,
    body: Vec<u8>,
    url: String,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::Decode { url: self.url.clone(), message: e.to_string() })
    }

    pub fn into_text(self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a call came to, and how often it was sent: a request retried after a lost response may
/// already have taken effect on an earlier try, which non-idempotent callers need to know.
pub struct Attempted {
    pub result: Result<Reply, ClientError>,
    pub attempts: u32,
}

/// One of the addresses an [`Endpoint`] sends to.
#[derive(Debug, Clone)]
struct Address {
    base: Url,
    /// Given by the caller. A redirect from a given address may add the address it names; one
    /// from an address learned that way may only point at addresses already known.
    given: bool,
}

/// At most this many addresses learned from redirects are kept (an HA group is a few RMs).
const MAX_LEARNED_ADDRESSES: usize = 8;

/// One logical server (an RM group, one NM) reached at one or more addresses.
///
/// Bearer tokens (AM tokens) go only to addresses the caller gave or that a given address named
/// in a redirect (a standby RM naming the active); a redirect to any other host is not followed.
pub struct Endpoint {
    http: reqwest::Client,
    addresses: Mutex<Vec<Address>>,
    /// Index of the address that answered last; calls start there so failover and redirects
    /// stick. Addresses are only ever appended, so an index keeps naming the same address.
    preferred: AtomicUsize,
    policy: RetryPolicy,
    bearer_token: Option<String>,
    /// YARN's pseudo-authentication: `?user.name=` on every request.
    user_name: Option<String>,
}

impl Endpoint {
    pub fn new(http: reqwest::Client, addresses: &[String], policy: RetryPolicy) -> Result<Self, ClientError> {
        let addresses = addresses
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| parse_address(a).map(|base| Address { base, given: true }))
            .collect::<Result<Vec<_>, _>>()?;
        if addresses.is_empty() {
            return Err(ClientError::NoAddresses);
        }
        Ok(Self {
            http,
            addresses: Mutex::new(addresses),
            preferred: AtomicUsize::new(0),
            policy,
            bearer_token: None,
            user_name: None,
        })
    }

    pub fn with_bearer_token(mut self, token: String) -> Self {
        self.bearer_token = Some(token);
        self
    }

    pub fn with_user_name(mut self, user: String) -> Self {
        self.user_name = Some(user);
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn set_policy(&mut self, policy: RetryPolicy) {
        self.policy = policy;
    }

    /// A client for another server (e.g. a NodeManager) sharing this one's connection pool,
    /// policy and user, but never its bearer token.
    pub fn sibling(&self, address: &str) -> Result<Endpoint, ClientError> {
        let mut endpoint = Endpoint::new(self.http.clone(), &[address.to_owned()], self.policy)?;
        endpoint.user_name = self.user_name.clone();
        Ok(endpoint)
    }

    /// The address calls start at: the one that answered last.
    pub fn current_address(&self) -> String {
        self.base(self.preferred.load(Ordering::Relaxed)).to_string()
    }

    pub async fn call(&self, request: &Request<'_>) -> Result<Reply, ClientError> {
        self.execute(request).await.result
    }

    pub async fn call_json<T: DeserializeOwned>(&self, request: &Request<'_>) -> Result<T, ClientError> {
        self.call(request).await?.json()
    }

    /// Sends `request`, retrying transient failures across all addresses until the policy's
    /// deadline. Every address is tried once before pausing (and before giving up), since during
    /// a failover one of them is usually able to answer at once; a redirect is followed at once.
    pub async fn execute(&self, request: &Request<'_>) -> Attempted {
        let started = Instant::now();
        let mut backoff = Backoff::new(&self.policy);
        let mut attempts = 0u32;
        let mut tried_this_round = 0usize;
        let mut index = self.preferred.load(Ordering::Relaxed);
        loop {
            attempts += 1;
            tried_this_round += 1;
            let base = self.base(index);
            let error = match self.send_once(&base, request).await {
                Err(error) if error.is_retryable() => error,
                result => {
                    // The server answered, so it is the one to start from next time.
                    self.preferred.store(index, Ordering::Relaxed);
                    return Attempted { result, attempts };
                }
            };
            // A standby names the active: go there next, if it may be trusted.
            index = match error.redirect_location().and_then(|location| self.follow(index, location)) {
                Some(target) => target,
                // Wrapped here, so an index stays the same address when more are learned.
                None => (index + 1) % self.lock_addresses().len(),
            };
            let round_done = tried_this_round >= self.lock_addresses().len();
            let pause = if round_done { backoff.next_delay() } else { Duration::ZERO };
            let elapsed = started.elapsed();
            if round_done {
                tried_this_round = 0;
                if elapsed + pause >= self.policy.deadline {
                    let last = Box::new(error);
                    return Attempted { result: Err(ClientError::Timeout { attempts, elapsed, last }), attempts };
                }
            }
            tracing::debug!(%error, attempts, next_address = %self.base(index), ?pause, "transient failure; retrying");
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    fn lock_addresses(&self) -> std::sync::MutexGuard<'_, Vec<Address>> {
        self.addresses.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn base(&self, index: usize) -> Url {
        self.lock_addresses()[index].base.clone()
    }

    /// The index of the address a redirect from address `from` to `location` should go to: a
    /// known address with the same origin, or (only when `from` was given) the location's origin,
    /// learned now. `None`: not followed.
    fn follow(&self, from: usize, location: &str) -> Option<usize> {
        let target = parse_address(location).ok()?;
        let mut addresses = self.lock_addresses();
        if let Some(known) = addresses.iter().position(|a| a.base.origin() == target.origin()) {
            return Some(known);
        }
        let from_given = addresses[from].given;
        let learned = addresses.iter().filter(|a| !a.given).count();
        if !from_given || learned >= MAX_LEARNED_ADDRESSES {
            tracing::warn!(%location, "not following a redirect to an address this client was not given");
            return None;
        }
        let mut base = target;
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        tracing::info!(address = %base, "following a ResourceManager's redirect to a new address");
        addresses.push(Address { base, given: false });
        Some(addresses.len() - 1)
    }

    async fn send_once(&self, base: &Url, request: &Request<'_>) -> Result<Reply, ClientError> {
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
        let response = builder.send().await.map_err(ClientError::Transport)?;
        let status = response.status();
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
            return Err(ClientError::Redirect {
                url: url.to_string(),
                location: location.unwrap_or_default().to_owned(),
            });
        }
        let body = response.bytes().await.map_err(ClientError::Transport)?.to_vec();
        if status.is_success() {
            return Ok(Reply { status, body, url: url.to_string() });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(body) => ClientError::Remote { status: status.as_u16(), body },
            Err(_) => {
                let mut text = String::from_utf8_lossy(&body).into_owned();
                if text.len() > ERROR_TEXT_LIMIT {
                    text.truncate(text.floor_char_boundary(ERROR_TEXT_LIMIT));
                    text.push('…');
                }
                ClientError::Status { status: status.as_u16(), url: url.to_string(), text }
            }
        })
    }

    fn url(&self, base: &Url, request: &Request<'_>) -> Result<Url, ClientError> {
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidAddress {
                address: base.to_string(),
                reason: "not a base URL".to_owned(),
            })?
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
        let url = endpoint.url(&endpoint.base(0), &request).unwrap();
        assert_eq!(url.as_str(), "http://rm:8088/proxy/ws/v1/cluster/apps?states=RUNNING%2CACCEPTED&user.name=alice");
        let request = Request::get("/ws/v1/node/containers/c/logs").segment("a b?/.log");
        let url = endpoint.url(&endpoint.base(0), &request).unwrap();
        assert_eq!(url.path(), "/proxy/ws/v1/node/containers/c/logs/a%20b%3F%2F.log");
    }

    use crate::fake_server::FakeServer;

    const APPS: &str = "/ws/v1/cluster/apps";

    fn endpoint(addresses: &[&str], deadline: Duration) -> Endpoint {
        let addresses: Vec<String> = addresses.iter().map(|a| (*a).to_owned()).collect();
        let policy = RetryPolicy { deadline, ..RetryPolicy::default() };
        Endpoint::new(http_client().unwrap(), &addresses, policy).unwrap().with_bearer_token("am-token".into())
    }

    #[tokio::test]
    async fn a_standby_redirect_is_followed_and_remembered() {
        let (standby, active) = (FakeServer::start().await, FakeServer::start().await);
        standby.respond_redirect(APPS, &format!("{}{APPS}?user.name=x", active.address));
        active.respond(APPS, 200, serde_json::json!({"n": 1})).respond(APPS, 200, serde_json::json!({"n": 2}));
        // Only the standby's address is known, as with the CLI's default `--rm`.
        let rm = endpoint(&[&standby.address], Duration::ZERO);
        for n in [1, 2] {
            let reply: serde_json::Value = rm.call_json(&Request::get(APPS)).await.unwrap();
            assert_eq!(reply["n"], n);
        }
        assert_eq!(standby.recorded_at(APPS).len(), 1, "the second call went straight to the active");
        assert_eq!(rm.current_address(), format!("{}/", active.address));
        // The active was named by an address the client was given: it may have the token.
        let tokens: Vec<_> = active.recorded_at(APPS).into_iter().map(|r| r.authorization).collect();
        assert_eq!(tokens, [Some("Bearer am-token".to_owned()), Some("Bearer am-token".to_owned())]);
    }

    #[tokio::test]
    async fn a_token_never_goes_where_only_an_untrusted_address_pointed() {
        let (given, learned, stranger) =
            (FakeServer::start().await, FakeServer::start().await, FakeServer::start().await);
        given.respond_redirect(APPS, &format!("{}{APPS}", learned.address));
        // An address the client only learned cannot introduce another one.
        learned.respond_redirect(APPS, &format!("{}{APPS}", stranger.address));
        let rm = endpoint(&[&given.address], Duration::ZERO);
        let error = rm.call(&Request::get(APPS)).await.err().unwrap();
        let ClientError::Timeout { last, attempts, .. } = &error else { panic!("{error:?}") };
        assert!(matches!(**last, ClientError::Redirect { .. }), "{last:?}");
        assert_eq!(*attempts, 2, "one round over the given and the learned address");
        assert!(stranger.recorded().is_empty(), "the stranger was contacted: {:?}", stranger.recorded());
        assert_eq!(learned.recorded_at(APPS)[0].authorization.as_deref(), Some("Bearer am-token"));
    }

    #[tokio::test]
    async fn redirects_to_other_schemes_are_not_followed() {
        let given = FakeServer::start().await;
        given.respond_redirect(APPS, "https://elsewhere.invalid/ws/v1/cluster/apps");
        let rm = endpoint(&[&given.address], Duration::ZERO);
        let error = rm.call(&Request::get(APPS)).await.err().unwrap();
        assert!(matches!(&error, ClientError::Timeout { attempts: 1, .. }), "{error:?}");
        assert_eq!(rm.current_address(), format!("{}/", given.address));
    }

    #[tokio::test]
    async fn one_round_tries_every_address_once_then_gives_up() {
        let (busy, down) = (FakeServer::start().await, crate::fake_server::refused_address().await);
        busy.respond_error(APPS, 503, "WEFT-RM-STANDBY");
        let rm = endpoint(&[&down, &busy.address], Duration::ZERO);
        let error = rm.call(&Request::get(APPS)).await.err().unwrap();
        assert!(matches!(&error, ClientError::Timeout { attempts: 2, .. }), "{error:?}");
        assert_eq!(error.code(), Some(weft_common::error::ErrorCode::RmStandby));
        // A refusal that is not retryable ends the call at once and makes that address current.
        busy.respond_error(APPS, 404, "WEFT-APP-NOT-FOUND");
        let error = rm.call(&Request::get(APPS)).await.err().unwrap();
        assert!(matches!(&error, ClientError::Remote { status: 404, .. }), "{error:?}");
        assert_eq!(rm.current_address(), format!("{}/", busy.address));
    }
}
