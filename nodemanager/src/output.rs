//! A container's stdout and stderr: read from pipes by the NM and written to files in the
//! container's log dir, each capped at `containers.log-max-bytes`.
//!
//! The file keeps the head of the output: once the cap is reached one last line says so and
//! the rest is read and discarded, so a chatty container neither fills the disk nor blocks on a
//! full pipe. Head rather than head and tail because what is in the file is final the moment it
//! is written (readers of a running container and an NM crash see a consistent file) and the
//! NM needs no memory for a tail, only one read buffer per stream; a container that needs the
//! end of a long log writes its own rotated files under `<LOG_DIR>`, which are not capped.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Child;
use tokio::task::JoinHandle;

pub const STDOUT_FILE: &str = "stdout";
pub const STDERR_FILE: &str = "stderr";
/// The smallest cap the config accepts: room for the truncation line and some output.
pub const MIN_LOG_MAX_BYTES: u64 = 1024;
const CHUNK_BYTES: usize = 64 * 1024;

/// What became of one stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Bytes of output in the file (the truncation line not counted).
    pub kept: u64,
    /// Bytes read and thrown away after the cap was reached (or after a write error).
    pub discarded: u64,
    /// The first error writing the file; the stream was still drained to its end.
    pub write_error: Option<String>,
}

/// The files stdout and stderr go to, created before the process starts so that a log dir that
/// cannot be written fails the launch.
pub struct LogFiles {
    stdout: std::fs::File,
    stderr: std::fs::File,
}

impl LogFiles {
    pub fn create(log_dir: &Path) -> io::Result<Self> {
        Ok(Self {
            stdout: std::fs::File::create(log_dir.join(STDOUT_FILE))?,
            stderr: std::fs::File::create(log_dir.join(STDERR_FILE))?,
        })
    }
}

/// The tasks draining a running container's stdout and stderr.
pub struct Capture {
    tasks: Vec<(&'static str, JoinHandle<Drained>)>,
}

impl Capture {
    /// Takes the child's stdout and stderr pipes and drains each into its file in a task.
    pub fn start(child: &mut Child, files: LogFiles, max_bytes: u64) -> Self {
        let mut tasks = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let file = tokio::fs::File::from_std(files.stdout);
            tasks.push((STDOUT_FILE, tokio::spawn(drain_capped(stdout, file, max_bytes, STDOUT_FILE))));
        }
        if let Some(stderr) = child.stderr.take() {
            let file = tokio::fs::File::from_std(files.stderr);
            tasks.push((STDERR_FILE, tokio::spawn(drain_capped(stderr, file, max_bytes, STDERR_FILE))));
        }
        Self { tasks }
    }

    /// Waits until both streams ended (every process holding them exited) and the files are
    /// written, at most `timeout`; a stream still open then (held by a process that escaped the
    /// container) is abandoned. Returns what became of each stream, by file name.
    pub async fn finish(self, timeout: Duration) -> Vec<(&'static str, Drained)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut results = Vec::new();
        for (stream, mut task) in self.tasks {
            let drained = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(drained)) => drained,
                Ok(Err(e)) => Drained { write_error: Some(format!("drain task failed: {e}")), ..Default::default() },
                Err(_) => {
                    task.abort();
                    let error = "still open after the container ended (held by a process outside it); abandoned";
                    Drained { write_error: Some(error.into()), ..Default::default() }
                }
            };
            results.push((stream, drained));
        }
        results
    }
}

/// The last line of a capped file.
fn truncation_line(stream: &str, max_bytes: u64) -> String {
    format!("[weft] {stream} truncated: containers.log-max-bytes ({max_bytes} bytes) reached; later output discarded\n")
}

/// Copies `from` into `to` until the file would exceed `max_bytes`, then ends the file with a
/// line saying so and reads `from` to its end, discarding, so the writer never blocks.
pub async fn drain_capped(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    max_bytes: u64,
    stream: &'static str,
) -> Drained {
    let note = truncation_line(stream, max_bytes);
    // Room for the note, plus the newline that may be needed to start it on its own line.
    let head_limit = max_bytes.saturating_sub(note.len() as u64 + 1);
    let mut drained = Drained::default();
    let mut writing = true;
    let mut last_byte = b'\n';
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                drained.write_error.get_or_insert_with(|| format!("reading the pipe failed: {e}"));
                break;
            }
        };
        if !writing {
            drained.discarded += n as u64;
            continue;
        }
        let chunk = &buf[..n];
        let room = head_limit - drained.kept;
        let (head, overflow) =
            if (n as u64) <= room { (chunk, false) } else { (&chunk[..utf8_boundary(chunk, room as usize)], true) };
        let mut result = to.write_all(head).await;
        if overflow && result.is_ok() {
            let separator = if head.last().copied().unwrap_or(last_byte) == b'\n' { "" } else { "\n" };
            result = to.write_all(format!("{separator}{note}").as_bytes()).await;
        }
        if let Err(e) = result.and(to.flush().await) {
            drained.write_error = Some(e.to_string());
            writing = false;
            drained.discarded += n as u64;
            continue;
        }
        drained.kept += head.len() as u64;
        drained.discarded += (n - head.len()) as u64;
        last_byte = head.last().copied().unwrap_or(last_byte);
        writing = !overflow;
    }
    if let Err(e) = to.shutdown().await {
        drained.write_error.get_or_insert_with(|| e.to_string());
    }
    drained
}

/// The largest cut point `<= at` that does not split a UTF-8 sequence (at most 3 bytes back),
/// so a capped text log stays valid text.
fn utf8_boundary(chunk: &[u8], at: usize) -> usize {
    let mut cut = at.min(chunk.len());
    while cut > 0 && at - cut < 3 && cut < chunk.len() && (chunk[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drain(input: &[u8], max_bytes: u64) -> (Vec<u8>, Drained) {
        let mut out = Vec::new();
        let drained = drain_capped(input, &mut out, max_bytes, "stdout").await;
        (out, drained)
    }

    #[tokio::test]
    async fn output_below_the_cap_is_copied_unchanged() {
        let input = b"hello\nworld\n".repeat(100);
        let (out, drained) = drain(&input, 4096).await;
        assert_eq!(out, input);
        assert_eq!(drained, Drained { kept: input.len() as u64, discarded: 0, write_error: None });
    }

    #[tokio::test]
    async fn output_above_the_cap_keeps_the_head_and_ends_with_a_note() {
        let input = vec![b'x'; 1_000_000];
        let (out, drained) = drain(&input, 4096).await;
        let text = String::from_utf8(out).unwrap();
        assert!(text.len() <= 4096, "{}", text.len());
        let note = truncation_line("stdout", 4096);
        let (head, tail) = text.split_at(text.len() - note.len());
        assert_eq!(tail, note);
        assert!(tail.starts_with("[weft] stdout truncated: containers.log-max-bytes (4096 bytes)"));
        assert!(head.ends_with("x\n") && head[..head.len() - 1].bytes().all(|b| b == b'x'), "{head:?}");
        assert_eq!(drained.kept, head.len() as u64 - 1);
        assert_eq!(drained.kept + drained.discarded, 1_000_000);
        assert_eq!(drained.write_error, None);
    }

    #[tokio::test]
    async fn a_cut_does_not_split_a_character() {
        let input = "é€".repeat(5000);
        // Caps a byte apart put the cut in every position of a two- and a three-byte character.
        for max_bytes in 2048..2054 {
            let (out, _) = drain(input.as_bytes(), max_bytes).await;
            let text = String::from_utf8(out).unwrap_or_else(|e| panic!("cap {max_bytes}: not UTF-8: {e}"));
            assert!(text.lines().next().unwrap().chars().all(|c| c == 'é' || c == '€'));
        }
    }

    #[tokio::test]
    async fn a_writer_far_beyond_the_cap_is_never_blocked() {
        // A real pipe-like channel with a small buffer: if the drain stopped reading at the cap,
        // the writer would wait forever.
        let (mut writer, reader) = tokio::io::duplex(1024);
        let mut out = Vec::new();
        let writing = tokio::spawn(async move {
            for _ in 0..1000 {
                writer.write_all(&[b'y'; 1024]).await.unwrap();
            }
        });
        let drained = tokio::time::timeout(Duration::from_secs(10), drain_capped(reader, &mut out, 2048, "stderr"))
            .await
            .expect("the drain reads to the end");
        writing.await.unwrap();
        assert_eq!(drained.kept + drained.discarded, 1024 * 1000);
        assert!(out.len() <= 2048);
        assert!(String::from_utf8(out).unwrap().ends_with("later output discarded\n"));
    }

    #[test]
    fn boundaries() {
        let text = "aé".as_bytes(); // a, 0xC3, 0xA9
        assert_eq!(utf8_boundary(text, 2), 1);
        assert_eq!(utf8_boundary(text, 1), 1);
        assert_eq!(utf8_boundary(text, 3), 3);
        assert_eq!(utf8_boundary(b"abc", 10), 3);
    }
}
