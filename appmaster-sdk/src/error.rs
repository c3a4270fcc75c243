//! The one error type of the SDK: the client's transport and protocol errors, plus what only an
//! ApplicationMaster or a waiting client can run into.

use std::time::Duration;

use weft_client::ClientError;
use weft_common::error::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// Sending the request or the server's answer failed (see [`ClientError`]).
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("environment variable {name} is not set; is this process running as an ApplicationMaster?")]
    MissingEnv { name: &'static str },
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
    /// True for errors another try may get past (see [`ClientError::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SdkError::Client(e) if e.is_retryable())
    }

    /// The stable Weft error code of a `RemoteException`, if this is one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.client().and_then(ClientError::code)
    }

    /// The `RemoteException` body behind this error, looking through a `Timeout`.
    pub fn remote_body(&self) -> Option<&ErrorBody> {
        self.client().and_then(ClientError::remote_body)
    }

    pub fn client(&self) -> Option<&ClientError> {
        match self {
            SdkError::Client(e) => Some(e),
            _ => None,
        }
    }
}
