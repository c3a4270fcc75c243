//! The one error type of the SDK, and which errors are worth retrying.

use std::time::Duration;

use weft_common::error::ErrorBody;

/// RM error code meaning the RM lost track of this AM (restart or failover): register again.
pub const AM_NOT_REGISTERED: &str = "WEFT-AM-NOT-REGISTERED";
/// RM error code a standby ResourceManager answers with; another address may be the active one.
pub const RM_STANDBY: &str = "WEFT-RM-STANDBY";
/// Suffix of every error code the server marks as transient.
pub const RETRYABLE_SUFFIX: &str = "-RETRYABLE";

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The server refused the request with a YARN `RemoteException` body.
    #[error("HTTP {status}: {body}")]
    Remote { status: u16, body: ErrorBody },
    /// The server (or a proxy in front of it) failed without a `RemoteException` body.
    #[error("HTTP {status} from {url}: {text}")]
    Status { status: u16, url: String, text: String },
    /// A standby ResourceManager redirected to the active one (followed by trying that address).
    #[error("HTTP redirect from {url} to {location:?}")]
    Redirect { url: String, location: String },
    /// The request could not be sent or its response could not be read.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// Transient failures went on until the call's deadline passed.
    #[error("gave up after {attempts} attempts in {elapsed:.1?}; last error: {last}")]
    Timeout { attempts: u32, elapsed: Duration, last: Box<SdkError> },
    /// A successful response whose body is not what the protocol says.
    #[error("unexpected response body from {url}: {message}")]
    Decode { url: String, message: String },
    #[error("environment variable {name} is not set; is this process running as an ApplicationMaster?")]
    MissingEnv { name: &'static str },
    #[error("invalid server address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("no server addresses given")]
    NoAddresses,
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot encode the request body: {0}")]
    Encode(#[source] serde_json::Error),
    /// The server kept accepting a request without completing it (e.g. a kill still pending).
    #[error("{what} did not complete within {elapsed:.1?}")]
    Incomplete { what: String, elapsed: Duration },
    /// `allocate` or `finish` was called before `register`.
    #[error("the ApplicationMaster has not registered yet")]
    NotRegistered,
    /// The ResourceManager ended this attempt; the AM process should exit.
    #[error("the ResourceManager told this ApplicationMaster to shut down")]
    ShutdownRequested,
    /// Re-registering did not satisfy the RM; looping on it would hammer the RM forever.
    #[error("the ResourceManager asked for a resync {times} times in a row")]
    ResyncLoop { times: u32 },
}

impl SdkError {
    /// True for errors another try (possibly at another RM address) may get past: connection
    /// failures, timeouts, 502/503/504, and error codes the server marks as transient.
    pub fn is_retryable(&self) -> bool {
        match self {
            SdkError::Remote { status, body } => {
                let code = &body.remote_exception.code;
                is_transient_status(*status) || code.ends_with(RETRYABLE_SUFFIX) || code == RM_STANDBY
            }
            SdkError::Status { status, .. } => is_transient_status(*status),
            SdkError::Redirect { .. } => true,
            SdkError::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            _ => false,
        }
    }

    /// Where a standby RM sent this request.
    pub(crate) fn redirect_location(&self) -> Option<&str> {
        match self {
            SdkError::Redirect { location, .. } => Some(location),
            _ => None,
        }
    }

    /// The stable Weft error code of a `RemoteException`, if this is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SdkError::Remote { body, .. } => Some(&body.remote_exception.code),
            _ => None,
        }
    }

    /// The `RemoteException` body behind this error, looking through a `Timeout`.
    pub fn remote_body(&self) -> Option<&ErrorBody> {
        match self {
            SdkError::Remote { body, .. } => Some(body),
            SdkError::Timeout { last, .. } => last.remote_body(),
            _ => None,
        }
    }
}

fn is_transient_status(status: u16) -> bool {
    matches!(status, 502..=504)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(status: u16, code: &str) -> SdkError {
        SdkError::Remote { status, body: ErrorBody::new("X", code, "m", "h") }
    }

    #[test]
    fn retryable_classification() {
        assert!(remote(503, "WEFT-INTERNAL").is_retryable());
        assert!(remote(500, "WEFT-STORE-RETRYABLE").is_retryable());
        assert!(remote(409, RM_STANDBY).is_retryable());
        assert!(!remote(404, "WEFT-APP-NOT-FOUND").is_retryable());
        assert!(!remote(500, "WEFT-INTERNAL").is_retryable());
        assert!(SdkError::Status { status: 502, url: String::new(), text: String::new() }.is_retryable());
        assert!(!SdkError::Status { status: 400, url: String::new(), text: String::new() }.is_retryable());
        assert!(!SdkError::NoAddresses.is_retryable());
    }
}
