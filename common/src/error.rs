//! The error body every Weft HTTP endpoint returns: YARN's `RemoteException` shape, plus a stable
//! machine-readable `code` and an operator `hint` (YARN clients ignore the extra fields).

use serde::{Deserialize, Serialize};

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
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.remote_exception;
        write!(f, "{} ({}): {}", e.code, e.exception, e.message)?;
        if !e.hint.is_empty() {
            write!(f, " — hint: {}", e.hint)?;
        }
        Ok(())
    }
}
