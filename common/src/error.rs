//! Every error a Weft server answers with: a stable [`ErrorCode`] (its wire string, HTTP status,
//! YARN exception name, default hint and whether a client should retry), and the body it travels
//! in, YARN's `RemoteException` shape plus the code and an operator `hint` (YARN clients ignore
//! the extra fields).
//!
//! Architecture Invariant: whether a refusal is worth retrying is decided by its code alone
//! ([`ErrorCode::is_retryable`]), the same on servers and clients; no header or naming
//! convention says it a second way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] from one table: variant, wire string, HTTP status, YARN exception
/// simple name, default hint.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal, $status:literal, $exception:literal, $hint:literal;)*) => {
        /// A stable, machine-readable Weft error code. Its wire string (e.g. `WEFT-APP-NOT-FOUND`)
        /// never changes once released: scripts, tests and YARN clients read it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire string, e.g. `WEFT-APP-NOT-FOUND`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status this code is answered with.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// YARN's exception simple name for the `RemoteException` body.
            pub fn exception(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $exception,)*
                }
            }

            /// What the caller can do about it, unless the server knows something more specific.
            pub fn default_hint(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $hint,)*
                }
            }
        }
    };
}

error_codes! {
    // Applications and attempts.
    AppNotFound => "WEFT-APP-NOT-FOUND", 404, "NotFoundException", "list applications with `weft app list`";
    AppIdInvalid => "WEFT-APP-ID-INVALID", 400, "BadRequestException",
        "application ids look like application_1700000000000_0001";
    AppIdNotIssued => "WEFT-APP-ID-NOT-ISSUED", 400, "BadRequestException",
        "obtain an id from POST /ws/v1/cluster/apps/new-application on this ResourceManager first";
    AppAlreadySubmitted => "WEFT-APP-ALREADY-SUBMITTED", 400, "BadRequestException",
        "each submission needs a fresh id from new-application";
    AppStateInvalid => "WEFT-APP-STATE-INVALID", 400, "BadRequestException", "PUT {\"state\":\"KILLED\"}";
    AppAccessDenied => "WEFT-APP-ACCESS-DENIED", 403, "ForbiddenException",
        "only the application's owner or an administrator of its queue (acl-administer-queue) may do this";
    AppMoveRefused => "WEFT-APP-MOVE-REFUSED", 400, "BadRequestException",
        "pick a queue with room, or wait for usage to drop";
    AppFinished => "WEFT-APP-FINISHED", 400, "BadRequestException", "this only applies to unfinished applications";
    AttemptIdInvalid => "WEFT-ATTEMPT-ID-INVALID", 400, "BadRequestException",
        "attempt ids look like appattempt_1700000000000_0001_000001";
    AttemptNotCurrent => "WEFT-ATTEMPT-NOT-CURRENT", 409, "ApplicationAttemptNotFoundException",
        "this attempt is over; the AM should exit";
    SubmissionInvalid => "WEFT-SUBMISSION-INVALID", 400, "BadRequestException", "fix the named field and submit again";
    PlacementRejected => "WEFT-PLACEMENT-REJECTED", 400, "BadRequestException", "name a queue you may submit to";
    ResourceAboveMaximum => "WEFT-RESOURCE-ABOVE-MAXIMUM", 400, "BadRequestException",
        "ask for at most the maximum allocation (see maximum-resource-capability in new-application)";
    ResourceRequestInvalid => "WEFT-RESOURCE-REQUEST-INVALID", 400, "BadRequestException",
        "resources must be positive";
    // The ApplicationMaster protocol.
    AmNotRegistered => "WEFT-AM-NOT-REGISTERED", 409, "ApplicationMasterNotRegisteredException",
        "register the AM again, then re-send all asks";
    AmInvalidResponseId => "WEFT-AM-INVALID-RESPONSE-ID", 400, "InvalidApplicationMasterRequestException",
        "send the response_id of the last allocate response";
    AmTokenInvalid => "WEFT-AM-TOKEN-INVALID", 401, "AuthorizationException",
        "AMs authenticate with the WEFT_AM_TOKEN their container was given";
    ContainerForbidden => "WEFT-CONTAINER-FORBIDDEN", 403, "ForbiddenException",
        "an AM may only release its own containers";
    // Queues.
    QueueUnknown => "WEFT-QUEUE-UNKNOWN", 400, "BadRequestException",
        "list queues with `weft queue list`; submit to a leaf queue";
    QueueNotLeaf => "WEFT-QUEUE-NOT-LEAF", 400, "BadRequestException", "submit to one of the leaf queues below it";
    QueueStopped => "WEFT-QUEUE-STOPPED", 400, "BadRequestException",
        "the administrator stopped this queue; submit elsewhere";
    QueueAclDenied => "WEFT-QUEUE-ACL-DENIED", 403, "ForbiddenException",
        "ask the queue's administrator to add you to acl-submit-applications";
    QueueFull => "WEFT-QUEUE-FULL", 400, "BadRequestException", "wait for applications to finish (max-applications)";
    QueueAdminDenied => "WEFT-QUEUE-ADMIN-DENIED", 403, "ForbiddenException",
        "root's acl-administer-queue must name you";
    QueueReloadRefused => "WEFT-QUEUE-RELOAD-REFUSED", 400, "BadRequestException",
        "the running configuration is unchanged; fix the file and reload again";
    QueueNoFile => "WEFT-QUEUE-NO-FILE", 400, "BadRequestException", "set scheduler.queues-file in the RM config";
    // Nodes, as the RM sees them.
    NodeUnknown => "WEFT-NODE-UNKNOWN", 404, "NotFoundException", "register the node first";
    NodeNotFound => "WEFT-NODE-NOT-FOUND", 404, "NotFoundException", "list nodes with `weft node list`";
    NodeIdInvalid => "WEFT-NODE-ID-INVALID", 400, "BadRequestException", "node ids look like host:port";
    NodeResourcesInvalid => "WEFT-NODE-RESOURCES-INVALID", 400, "BadRequestException",
        "configure positive memory and vcores on the NodeManager";
    // Requests as such.
    QueryInvalid => "WEFT-QUERY-INVALID", 400, "BadRequestException", "see YARN's REST query parameters";
    BodyInvalid => "WEFT-BODY-INVALID", 400, "BadRequestException", "send a JSON body in the documented shape";
    XmlUnsupported => "WEFT-XML-UNSUPPORTED", 406, "NotAcceptableException", "send Accept: application/json";
    PathNotFound => "WEFT-PATH-NOT-FOUND", 404, "NotFoundException", "see the REST reference in the README";
    UserMissing => "WEFT-USER-MISSING", 401, "AuthorizationException", "add ?user.name=<you> to the URL";
    Internal => "WEFT-INTERNAL", 500, "YarnRuntimeException", "this is a bug; see the RM log";
    // ResourceManager high availability.
    /// A standby that knows no active RM yet (one that knows it redirects instead).
    RmStandby => "WEFT-RM-STANDBY", 503, "ServiceUnavailableException",
        "retry, or try another ResourceManager address; a failover is probably under way";
    /// The RM's core stopped (shutdown or the end of an active term) while a request waited.
    RmShuttingDown => "WEFT-RM-SHUTTING-DOWN", 503, "ServiceUnavailableException",
        "retry against another ResourceManager";
    HaNotEnabled => "WEFT-HA-NOT-ENABLED", 409, "BadRequestException",
        "set ha.enabled in the RM config and run two RMs on a shared store";
    // The NodeManager's container API.
    /// 401 for a forged, corrupted or expired token; the NM answers 403 (`ForbiddenException`)
    /// for a valid token naming another container or node.
    NmInvalidToken => "WEFT-NM-INVALID-TOKEN", 401, "AuthorizationException",
        "the token is forged, corrupted or expired; ask the RM for a new allocation";
    NmNotReady => "WEFT-NM-NOT-READY", 503, "NMNotYetReadyException",
        "retry shortly: the NM is still registering with the ResourceManager";
    NmShuttingDown => "WEFT-NM-SHUTTING-DOWN", 503, "YarnException",
        "this node is going away; ask the RM for a container elsewhere";
    NmContainerNotFound => "WEFT-NM-CONTAINER-NOT-FOUND", 404, "NotFoundException",
        "check the container id; GET /ws/v1/node/containers lists the containers of this node";
    NmLogNotFound => "WEFT-NM-LOG-NOT-FOUND", 404, "NotFoundException", "GET …/logs lists the container's log files";
    NmDuplicateContainer => "WEFT-NM-DUPLICATE-CONTAINER", 409, "YarnException",
        "a container id can be started only once; GET it to see its status";
    /// The RM named the application finished; the node is deleting its directories.
    NmAppFinished => "WEFT-NM-APP-FINISHED", 409, "YarnException",
        "the ResourceManager considers the application finished; submit a new one to run more work";
    NmBadRequest => "WEFT-NM-BAD-REQUEST", 400, "BadRequestException",
        "fix the request; the message names the offending part";
    NmLaunchFailed => "WEFT-NM-LAUNCH-FAILED", 500, "YarnException",
        "the container completed without running; see the message and the NM log";
    NmInternal => "WEFT-NM-INTERNAL", 500, "YarnException", "see the NodeManager log";
    NmNoSuchEndpoint => "WEFT-NM-NO-SUCH-ENDPOINT", 404, "NotFoundException",
        "the NM serves /ws/v1/node/containers[/{id}[/stop|/logs[/{file}]]], /ws/v1/node/info and /metrics";
}

impl ErrorCode {
    /// True when the same request may succeed if sent again (possibly to another address of the
    /// same service) without the caller changing anything: the one signal clients retry on.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::RmStandby | ErrorCode::RmShuttingDown | ErrorCode::NmNotReady)
    }

    /// The error body for this code with its default hint.
    pub fn body(self, message: impl Into<String>) -> ErrorBody {
        self.body_with_hint(message, self.default_hint())
    }

    pub fn body_with_hint(self, message: impl Into<String>, hint: impl Into<String>) -> ErrorBody {
        ErrorBody::new(self.exception(), self.as_str(), message, hint)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code string this build does not know (a newer server, or not Weft at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Weft error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL.iter().copied().find(|code| code.as_str() == s).ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    #[serde(rename = "RemoteException")]
    pub remote_exception: RemoteException,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RemoteException {
    /// YARN exception simple name, e.g. `BadRequestException`.
    pub exception: String,
    pub message: String,
    pub java_class_name: String,
    /// Stable Weft error code, e.g. `WEFT-APP-NOT-FOUND`.
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub hint: String,
}

impl ErrorBody {
    /// A body with any exception name and code string. Servers build theirs from an
    /// [`ErrorCode`] ([`ErrorCode::body`]); this is for the exceptions to a code's defaults and
    /// for test servers.
    pub fn new(exception: &str, code: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        let java_class_name = match exception {
            "NotFoundException" | "BadRequestException" | "ForbiddenException" => {
                format!("org.apache.hadoop.yarn.webapp.{exception}")
            }
            "AuthorizationException" => "org.apache.hadoop.security.authorize.AuthorizationException".into(),
            other => format!("org.apache.hadoop.yarn.exceptions.{other}"),
        };
        Self {
            remote_exception: RemoteException {
                exception: exception.into(),
                message: message.into(),
                java_class_name,
                code: code.into(),
                hint: hint.into(),
            },
        }
    }

    /// The body's code, if this build knows it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.remote_exception.code.parse().ok()
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.remote_exception;
        write!(f, "{} ({}): {}", e.code, e.exception, e.message)?;
        if !e.hint.is_empty() {
            write!(f, " — hint: {}", e.hint)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_round_trips_and_is_well_formed() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} declared twice");
            assert_eq!(s.parse::<ErrorCode>(), Ok(code));
            assert!(s.starts_with("WEFT-") && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'-'), "{s}");
            // The retry decision is the code's, not its name's.
            assert!(!s.contains("RETRY"), "{s}");
            assert!((400..600).contains(&code.status()), "{s}");
            assert!(code.exception().ends_with("Exception"), "{s}");
        }
        assert!("WEFT-NO-SUCH-CODE".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn only_transient_refusals_are_retryable() {
        let retryable: Vec<ErrorCode> = ErrorCode::ALL.iter().copied().filter(|c| c.is_retryable()).collect();
        assert_eq!(retryable, [ErrorCode::RmStandby, ErrorCode::RmShuttingDown, ErrorCode::NmNotReady]);
        // A retryable code is a server-side condition, never the caller's mistake.
        assert!(retryable.iter().all(|c| c.status() == 503));
    }

    #[test]
    fn bodies_carry_the_code_its_exception_and_hint() {
        let body = ErrorCode::NmNotReady.body("registering");
        assert_eq!(body.remote_exception.code, "WEFT-NM-NOT-READY");
        assert_eq!(body.remote_exception.exception, "NMNotYetReadyException");
        assert_eq!(body.remote_exception.java_class_name, "org.apache.hadoop.yarn.exceptions.NMNotYetReadyException");
        assert_eq!(body.remote_exception.hint, ErrorCode::NmNotReady.default_hint());
        assert_eq!(body.error_code(), Some(ErrorCode::NmNotReady));
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["RemoteException"]["code"], "WEFT-NM-NOT-READY");
    }
}
