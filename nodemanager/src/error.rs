use std::path::PathBuf;

use weft_common::config::ConfigError;
use weft_common::token::TokenError;
use weft_common::{ApplicationId, ContainerId};

#[derive(Debug, thiserror::Error)]
pub enum NmError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    /// Isolation is configured but this host cannot provide it; the NM refuses to start.
    #[error("isolation mode `{mode}` is unusable on this host: {reason}")]
    IsolationUnavailable { mode: String, reason: String },
    #[error("cgroup operation on {path} failed: {source}")]
    Cgroup { path: PathBuf, source: std::io::Error },
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("container token refused: {0}")]
    InvalidToken(TokenError),
    #[error("container token is for {token_container}, not for {requested}")]
    TokenForOtherContainer { token_container: ContainerId, requested: ContainerId },
    #[error("this node has not registered with a ResourceManager yet, so it cannot verify container tokens")]
    NotRegistered,
    #[error("the NodeManager is shutting down")]
    ShuttingDown,
    #[error("container {0} is not known on this node")]
    ContainerNotFound(ContainerId),
    #[error("container {0} was already started on this node")]
    DuplicateContainer(ContainerId),
    #[error("application {0} has finished; this node no longer starts its containers")]
    ApplicationFinished(ApplicationId),
    #[error("{0}")]
    BadRequest(String),
    #[error("launching container {id} failed: {reason}")]
    LaunchFailed { id: ContainerId, reason: String },
    #[error("log file {file:?} of container {id} does not exist")]
    LogNotFound { id: ContainerId, file: String },
    #[error("background task failed: {0}")]
    Task(String),
    #[error("cannot build the HTTP client for the RM: {0}")]
    HttpClient(String),
    #[error("HTTP server failed: {0}")]
    Server(std::io::Error),
}

impl NmError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NmError {
        let path = path.into();
        move |source| NmError::Io { path, source }
    }

    pub(crate) fn cgroup(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NmError {
        let path = path.into();
        move |source| NmError::Cgroup { path, source }
    }
}
