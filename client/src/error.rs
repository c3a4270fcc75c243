//! What a call can fail with, and which failures are worth another try.

use std::time::Duration;

use weft_common::error::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request with a YARN `RemoteException` body.
    #[error("HTTP {status}: {body}")]
    Remote { status: u16, body: ErrorBody },
    /// The server (or a proxy in front of it) failed without a `RemoteException` body.
    #[error("HTTP {status} from {url}: {text}")]
    Status { status: u16, url: String, text: String },
    /// A standby ResourceManager redirected to the active one; followed by trying there when the
    /// target may be trusted (see [`crate::Endpoint`]).
    #[error("HTTP redirect from {url} to {location:?}")]
    Redirect { url: String, location: String },
    /// The request could not be sent or its response could not be read.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// Transient failures went on until the call's deadline passed.
    #[error("gave up after {attempts} attempts in {elapsed:.1?}; last error: {last}")]
    Timeout { attempts: u32, elapsed: Duration, last: Box<ClientError> },
    /// A successful response whose body is not what the protocol says.
    #[error("unexpected response body from {url}: {message}")]
    Decode { url: String, message: String },
    #[error("invalid server address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("no server addresses given")]
    NoAddresses,
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot encode the request body: {0}")]
    Encode(#[source] serde_json::Error),
}

impl ClientError {
    /// True for errors another try (possibly at another address) may get past: connection
    /// failures, timeouts, a redirect, and refusals whose [`ErrorCode`] is retryable. A status
    /// alone decides only when the body carries no code this build knows (e.g. a proxy's 502).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Remote { status, body } => is_retryable_refusal(*status, body.error_code()),
            ClientError::Status { status, .. } => is_retryable_refusal(*status, None),
            ClientError::Redirect { .. } => true,
            ClientError::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            _ => false,
        }
    }

    /// Where a standby RM sent this request.
    pub(crate) fn redirect_location(&self) -> Option<&str> {
        match self {
            ClientError::Redirect { location, .. } => Some(location),
            _ => None,
        }
    }

    /// The stable Weft error code of a `RemoteException`, if this build knows it.
    pub fn code(&self) -> Option<ErrorCode> {
        self.remote_body().and_then(ErrorBody::error_code)
    }

    /// The `RemoteException` body behind this error, looking through a `Timeout`.
    pub fn remote_body(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Remote { body, .. } => Some(body),
            ClientError::Timeout { last, .. } => last.remote_body(),
            _ => None,
        }
    }
}

/// Whether a non-2xx answer is worth another try: its [`ErrorCode`] decides; without a code this
/// build knows, only a gateway failure (502/503/504, e.g. of a proxy) is.
pub fn is_retryable_refusal(status: u16, code: Option<ErrorCode>) -> bool {
    match code {
        Some(code) => code.is_retryable(),
        None => matches!(status, 502..=504),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(status: u16, code: &str) -> ClientError {
        ClientError::Remote { status, body: ErrorBody::new("X", code, "m", "h") }
    }

    #[test]
    fn retry_is_decided_by_the_code() {
        for &code in ErrorCode::ALL {
            let error = remote(code.status(), code.as_str());
            assert_eq!(error.is_retryable(), code.is_retryable(), "{code}");
            assert_eq!(error.code(), Some(code));
        }
        // The code wins over the status: a node going away is not retried however it answers.
        assert!(!remote(503, "WEFT-NM-SHUTTING-DOWN").is_retryable());
        assert!(remote(409, "WEFT-RM-STANDBY").is_retryable());
        // No code this build knows: a gateway status is transient, others are not.
        assert!(remote(503, "WEFT-FROM-THE-FUTURE").is_retryable());
        assert!(!remote(500, "").is_retryable());
        assert!(ClientError::Status { status: 502, url: String::new(), text: String::new() }.is_retryable());
        assert!(!ClientError::Status { status: 400, url: String::new(), text: String::new() }.is_retryable());
        assert!(!ClientError::NoAddresses.is_retryable());
    }
}
