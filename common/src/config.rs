//! YAML config loading shared by every component: strict parsing (structs use
//! `deny_unknown_fields`), errors that name the file, line and field, then environment overrides.
//!
//! Overrides: `<PREFIX>__A__B_C=value` sets key `a.b-c` (segments separated by `__`,
//! lower-cased, `_` → `-`); the value is parsed as a YAML scalar, so `10`, `true` and `abc` work.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config {source_name}: {message}")]
    Parse { source_name: String, message: String },
    #[error("invalid environment override {var}={value:?}: {message}")]
    Env { var: String, value: String, message: String },
    #[error("invalid config {source_name}: field `{field}`: {message}")]
    Invalid { source_name: String, field: String, message: String },
}

/// Parses YAML text. `source_name` (usually the file path) is used in error messages.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, source_name: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
        source_name: source_name.to_owned(),
        message: e.to_string().replace("<input>", source_name),
    })
}

/// Reads and parses a YAML file, then applies `<env_prefix>__…` overrides from the process
/// environment.
pub fn load_yaml<T: DeserializeOwned + Serialize>(path: &Path, env_prefix: &str) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    let parsed: T = parse_yaml(&text, &path.display().to_string())?;
    apply_env_overrides(parsed, env_prefix, std::env::vars())
}

/// Applies overrides from `vars` (usually `std::env::vars()`) to an already parsed config.
pub fn apply_env_overrides<T: DeserializeOwned + Serialize>(
    config: T,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let marker = format!("{prefix}__");
    let mut overrides: Vec<(String, String)> = vars.into_iter().filter(|(k, _)| k.starts_with(&marker)).collect();
    if overrides.is_empty() {
        return Ok(config);
    }
    overrides.sort();
    let mut tree = serde_json::to_value(&config).expect("config serializes");
    for (var, value) in &overrides {
        let env_err = |message: String| ConfigError::Env { var: var.clone(), value: value.clone(), message };
        let path: Vec<String> =
            var[marker.len()..].split("__").map(|s| s.to_ascii_lowercase().replace('_', "-")).collect();
        let scalar: serde_json::Value = serde_saphyr::from_str(value).map_err(|e| env_err(e.to_string()))?;
        let mut node = &mut tree;
        for (i, key) in path.iter().enumerate() {
            let obj =
                node.as_object_mut().ok_or_else(|| env_err(format!("`{}` is not a section", path[..i].join("."))))?;
            if i + 1 == path.len() {
                obj.insert(key.clone(), scalar.clone());
                break;
            }
            node = obj.entry(key.clone()).or_insert_with(|| serde_json::Value::Object(Default::default()));
            if node.is_null() {
                *node = serde_json::Value::Object(Default::default());
            }
        }
    }
    serde_json::from_value(tree).map_err(|e| ConfigError::Env {
        var: overrides.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(","),
        value: String::new(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Inner {
        heartbeat_interval_ms: u64,
        #[serde(default)]
        name: Option<String>,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Cfg {
        inner: Inner,
    }

    #[test]
    fn error_names_file_line_and_field() {
        let err =
            parse_yaml::<Cfg>("inner:\n  heartbeat-interval-ms: 5\n  nmae: x\n", "rm.yaml").unwrap_err().to_string();
        assert!(err.contains("rm.yaml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("nmae"), "{err}");
        let err = parse_yaml::<Cfg>("inner:\n  heartbeat-interval-ms: -5\n", "rm.yaml").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("heartbeat-interval-ms"), "{err}");
    }

    #[test]
    fn env_overrides() {
        let cfg: Cfg = parse_yaml("inner:\n  heartbeat-interval-ms: 5\n", "x").unwrap();
        let vars = vec![
            ("WEFT_RM__INNER__HEARTBEAT_INTERVAL_MS".to_owned(), "250".to_owned()),
            ("WEFT_RM__INNER__NAME".to_owned(), "rm1".to_owned()),
            ("OTHER".to_owned(), "1".to_owned()),
        ];
        let cfg = apply_env_overrides(cfg, "WEFT_RM", vars).unwrap();
        assert_eq!(cfg.inner, Inner { heartbeat_interval_ms: 250, name: Some("rm1".into()) });
        let bad = vec![("WEFT_RM__INNER__HEARTBEAT_INTERVAL_MS".to_owned(), "soon".to_owned())];
        let err = apply_env_overrides(cfg, "WEFT_RM", bad).unwrap_err().to_string();
        assert!(err.contains("WEFT_RM__INNER__HEARTBEAT_INTERVAL_MS"), "{err}");
    }
}
