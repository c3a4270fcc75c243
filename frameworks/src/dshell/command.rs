//! Carrying the user's command from `weft dshell` to the AM and into containers.
//!
//! The words travel to the AM as base64 of their JSON in [`COMMAND_ENV`], so no quoting layer
//! (the submission, the NM's launch script) can alter them. Containers get them joined with
//! spaces as one shell command line, as `ssh host words…` and YARN's distributed shell do: the
//! container's shell expands `$CONTAINER_ID`, pipes and globs. The NM still applies YARN's
//! substitutions (`<LOG_DIR>`, `{{VAR}}`, `<CPS>`) to that line, as it does for any app.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Environment variable holding the command for the AM: base64 of a JSON array of strings.
pub const COMMAND_ENV: &str = "WEFT_DSHELL_COMMAND";

pub fn encode_command(argv: &[String]) -> anyhow::Result<String> {
    Ok(STANDARD.encode(serde_json::to_vec(argv).context("encoding the command")?))
}

pub fn decode_command(encoded: &str) -> anyhow::Result<Vec<String>> {
    let json = STANDARD.decode(encoded.trim()).with_context(|| format!("{COMMAND_ENV} is not base64"))?;
    serde_json::from_slice(&json).with_context(|| format!("{COMMAND_ENV} is not a JSON array of strings"))
}

/// The shell command line containers run.
pub fn command_line(words: &[String]) -> String {
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn the_container_shell_interprets_the_joined_words() {
        let line = command_line(&argv(&["echo", "a  b", "$X", "|", "tr", "a-z", "A-Z"]));
        let output = std::process::Command::new("bash").arg("-c").arg(&line).env("X", "x").output().unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "A B X\n");
    }

    #[test]
    fn command_env_round_trips() {
        let words = argv(&["sh", "-c", "echo \"$X\" | tr a-z A-Z", "ünïcode"]);
        let encoded = encode_command(&words).unwrap();
        assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
        assert_eq!(decode_command(&encoded).unwrap(), words);
        assert!(decode_command("not base64!").is_err());
    }
}
