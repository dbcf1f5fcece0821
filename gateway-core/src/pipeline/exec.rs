//! Steps 5–7 for `ssh_run` and `kube_exec`: run the command, mask its output **while it streams**, record
//! it in timed frames (so replay can play it back at the original pace), and return the masked result.
//!
//! Output is never held unmasked beyond the streaming masker's window, never recorded unmasked, and never
//! more than the connection's `max_output_bytes` (the connector stops reading there). Frames are flushed to
//! the recorder every [`FLUSH_BYTES`] or [`FLUSH_EVERY`], so a long command's output is durable as it goes;
//! the last frames are committed together with the result.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{CallStatus, Gateway, Progress, ToolOutcome, ToolRequest};
use crate::config::{ConnectionConfig, Limits};
use crate::connector::{Chunk, Execution, ExitInfo, Output, Stream};
use crate::error::{Error, Result};
use crate::mask::stream::MaskStream;
use crate::mask::{MaskCounts, Masker};
use crate::record::EventKind;

/// Buffered frame text that triggers a flush to the recorder.
const FLUSH_BYTES: usize = 64 * 1024;
/// Longest time frames wait before they are flushed.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Chunks in flight between connector and pipeline (backpressure beyond that).
const CHUNKS_IN_FLIGHT: usize = 16;

/// The masked result of a command.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    /// Exit status, when the target reported one (absent when the command was stopped).
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Output reached `max_output_bytes`: the rest was not read and the command was stopped.
    pub truncated: bool,
    /// The time limit was reached: the command was stopped.
    pub timed_out: bool,
    /// Some output was not valid UTF-8 and was shown with U+FFFD replacement characters.
    pub non_utf8: bool,
    /// Raw bytes received, per stream.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub duration_ms: u64,
}

impl ExecResult {
    /// The result without its text, for the result event (the text is in the output frames).
    pub fn summary(&self) -> Value {
        json!({
            "exit_code": self.exit_code,
            "signal": self.signal,
            "truncated": self.truncated,
            "timed_out": self.timed_out,
            "non_utf8": self.non_utf8,
            "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes,
            "duration_ms": self.duration_ms,
        })
    }

    /// One line: `exit 0`, `exit 3`, `killed by KILL`, `stopped after 30 s`, plus truncation.
    pub fn status_line(&self) -> String {
        let mut line = match (self.exit_code, &self.signal) {
            _ if self.timed_out => format!("stopped: time limit reached after {} ms", self.duration_ms),
            (_, Some(sig)) => format!("killed by signal {sig}"),
            (Some(code), None) => format!("exit {code}"),
            (None, None) if self.truncated => "stopped at the output cap".to_owned(),
            (None, None) => "no exit status".to_owned(),
        };
        if self.truncated {
            line.push_str(&format!("; output truncated at {} bytes", self.stdout_bytes + self.stderr_bytes));
        }
        line
    }
}

/// A shell-quoted rendering of an argv (`sh -c 'echo hi'`), for records, approvers and `raw_regex`.
pub fn quote_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The namespace of a `kube_exec` request.
pub(super) fn namespace_of(request: &ToolRequest) -> Option<&str> {
    match request {
        ToolRequest::Kube(r) => Some(&r.namespace),
        _ => None,
    }
}

/// Whether the connection's `namespaces` allow the request (non-Kubernetes requests always pass).
pub(super) fn namespace_allowed(conn: &ConnectionConfig, request: &ToolRequest) -> bool {
    let Some(ns) = namespace_of(request) else { return true };
    conn.namespaces.is_empty()
        || conn
            .namespaces
            .iter()
            .any(|g| crate::policy::compile_glob(g).is_ok_and(|g| g.compile_matcher().is_match(ns)))
}

/// Decodes a byte stream as UTF-8 across chunk boundaries: a character split between two chunks is kept
/// whole; invalid bytes become U+FFFD and are flagged.
#[derive(Default)]
struct Utf8Decoder {
    carry: Vec<u8>,
    lossy: bool,
}

impl Utf8Decoder {
    fn push(&mut self, data: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(data);
        let mut out = String::with_capacity(bytes.len());
        let mut chunks = bytes.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            out.push_str(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            if chunks.peek().is_none() && is_incomplete_prefix(invalid) {
                self.carry = invalid.to_vec();
            } else {
                out.push('\u{FFFD}');
                self.lossy = true;
            }
        }
        out
    }

    fn finish(&mut self) -> String {
        if self.carry.is_empty() {
            return String::new();
        }
        self.carry.clear();
        self.lossy = true;
        "\u{FFFD}".to_owned()
    }
}

/// `bytes` could be the start of one multi-byte character whose remaining bytes have not arrived yet.
fn is_incomplete_prefix(bytes: &[u8]) -> bool {
    let Some((&lead, rest)) = bytes.split_first() else { return false };
    let need = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return false,
    };
    bytes.len() < need && rest.iter().all(|b| b & 0xC0 == 0x80)
}

/// One output stream: decode, mask, accumulate.
struct StreamState<'m> {
    decoder: Utf8Decoder,
    masker: MaskStream<'m>,
    text: String,
    bytes: u64,
}

impl<'m> StreamState<'m> {
    fn new(masker: &'m Masker) -> Self {
        Self { decoder: Utf8Decoder::default(), masker: masker.stream(), text: String::new(), bytes: 0 }
    }
}

/// Masked frames waiting to be recorded: `[ms since start, "o" | "e", text]`, as asciicast does.
#[derive(Default)]
struct Frames {
    pending: Vec<Value>,
    pending_bytes: usize,
    since: Option<Instant>,
}

impl Frames {
    fn push(&mut self, at_ms: u64, stream: Stream, text: String) {
        if text.is_empty() {
            return;
        }
        self.pending_bytes += text.len();
        self.since.get_or_insert_with(Instant::now);
        let tag = match stream {
            Stream::Stdout => "o",
            Stream::Stderr => "e",
        };
        self.pending.push(json!([at_ms, tag, text]));
    }

    fn due(&self) -> bool {
        self.pending_bytes >= FLUSH_BYTES || self.since.is_some_and(|t| t.elapsed() >= FLUSH_EVERY)
    }

    fn take(&mut self) -> Option<Value> {
        if self.pending.is_empty() {
            return None;
        }
        self.pending_bytes = 0;
        self.since = None;
        Some(json!({ "frames": std::mem::take(&mut self.pending) }))
    }
}

// === impl Gateway (commands) ===

impl Gateway {
    /// Steps 5–7 for `ssh_run` and `kube_exec`.
    pub(super) async fn execute_command(
        &self,
        mut out: ToolOutcome,
        conn: &ConnectionConfig,
        request: &ToolRequest,
        masker: &Masker,
        mut counts: MaskCounts,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<ToolOutcome> {
        let connection = match request {
            ToolRequest::Ssh(r) => &r.connection,
            ToolRequest::Kube(r) => &r.connection,
            ToolRequest::Sql(r) => &r.connection,
        };
        let Some(connector) = self.connectors.get(connection) else {
            return Err(Error::UnknownConnection(connection.clone()));
        };
        let limits: Limits = self.config.limits_for(conn);
        let timeout_of = |asked: Option<u64>| {
            let max = limits.statement_timeout.0;
            asked.map_or(max, |s| Duration::from_secs(s.max(1)).min(max))
        };
        let execution = match request {
            ToolRequest::Ssh(r) => Execution::Ssh { command: r.command.clone(), timeout: timeout_of(r.timeout_s) },
            ToolRequest::Kube(r) => Execution::Kube {
                namespace: r.namespace.clone(),
                pod: r.pod.clone(),
                container: r.container.clone(),
                argv: r.command.clone(),
                timeout: timeout_of(r.timeout_s),
            },
            ToolRequest::Sql(_) => return Err(Error::InvalidRequest("sql_query is not a command".into())),
        };

        // 5. execute, with 6. masking as the output streams in.
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let run = connector.execute(&execution, &limits, tx);
        tokio::pin!(run);
        let mut executed = None;
        let mut stdout = StreamState::new(masker);
        let mut stderr = StreamState::new(masker);
        let mut frames = Frames::default();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = &mut run, if executed.is_none() => executed = Some(r),
                chunk = rx.recv() => {
                    // `None`: the connector finished and dropped its sender, and every chunk was read.
                    let Some(chunk) = chunk else { break };
                    let state = match chunk.stream {
                        Stream::Stdout => &mut stdout,
                        Stream::Stderr => &mut stderr,
                    };
                    state.bytes += chunk.data.len() as u64;
                    let text = state.decoder.push(&chunk.data);
                    let masked = state.masker.push(&text, &mut counts);
                    state.text.push_str(&masked);
                    frames.push(started.elapsed().as_millis() as u64, chunk.stream, masked);
                }
                _ = tick.tick() => {}
            }
            if frames.due()
                && let Some(batch) = frames.take()
            {
                // A frame that cannot be recorded is not returned: fail closed (dropping `run` stops the
                // command).
                self.recorder.append(&out.session_id, Some(&out.call_id), EventKind::Output, &batch).await?;
                let received = stdout.bytes + stderr.bytes;
                progress(Progress {
                    progress: received as f64,
                    // How much more will come is unknown: no total (the cap is not a forecast).
                    total: None,
                    message: format!("{received} bytes of output so far"),
                });
            }
        }
        let executed = match executed {
            Some(r) => r,
            None => run.await,
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        for (stream, state) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
            let StreamState { mut decoder, masker: mask_stream, mut text, bytes } = state;
            let tail = decoder.push(&[]) + &decoder.finish();
            let mut rest = String::new();
            if !tail.is_empty() {
                // The decoder's tail goes through the masker like everything else.
                let mut ms = mask_stream;
                rest.push_str(&ms.push(&tail, &mut counts));
                rest.push_str(&ms.finish(&mut counts));
            } else {
                rest.push_str(&mask_stream.finish(&mut counts));
            }
            text.push_str(&rest);
            frames.push(duration_ms, stream, rest);
            let result = out.exec.get_or_insert_with(ExecResult::default);
            result.non_utf8 |= decoder.lossy;
            match stream {
                Stream::Stdout => {
                    result.stdout = text;
                    result.stdout_bytes = bytes;
                }
                Stream::Stderr => {
                    result.stderr = text;
                    result.stderr_bytes = bytes;
                }
            }
        }

        // 7. record: the last frames and the result in one commit.
        let mut exec = out.exec.take().unwrap_or_default();
        exec.duration_ms = duration_ms;
        match executed {
            Ok(Output::Exec(ExitInfo { exit_code, signal, truncated, timed_out })) => {
                exec.exit_code = exit_code;
                exec.signal = signal;
                exec.truncated = truncated;
                exec.timed_out = timed_out;
                // A command that ran is `completed` whatever its exit status (the agent reads `exit_code`);
                // stopping it at the time limit is an error the agent must notice.
                out.status = if timed_out { CallStatus::Error } else { CallStatus::Completed };
                out.message = Some(exec.status_line());
            }
            Ok(Output::Sql(_)) => {
                out.status = CallStatus::Error;
                out.message = Some("the connector returned rows for a command".into());
            }
            Err(e) => {
                out.status = CallStatus::Error;
                out.message = Some(masker.mask_text(&e.to_string(), &mut counts).into_owned());
            }
        }
        out.exec = Some(exec);
        out.masked = counts;
        let last = frames.take();
        self.record_result_after(&mut out, Some(duration_ms), last.as_ref()).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let text = "naïve — ✓ 𝄞";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut d = Utf8Decoder::default();
            let mut got = d.push(&bytes[..cut]);
            got.push_str(&d.push(&bytes[cut..]));
            got.push_str(&d.finish());
            assert_eq!(got, text, "cut at {cut}");
            assert!(!d.lossy);
        }
    }

    #[test]
    fn invalid_bytes_are_replaced_and_flagged() {
        let mut d = Utf8Decoder::default();
        let got = d.push(b"ok \xff\xfe done \xe2\x82");
        assert_eq!(got, "ok \u{FFFD}\u{FFFD} done ");
        assert_eq!(d.finish(), "\u{FFFD}", "an unfinished character at the end is replaced");
        assert!(d.lossy);
    }

    #[test]
    fn argv_quoting_is_shell_readable() {
        let argv = ["sh", "-c", "echo 'hi' && rm -rf /tmp/x", ""].map(String::from);
        assert_eq!(quote_argv(&argv), r#"sh -c 'echo '\''hi'\'' && rm -rf /tmp/x' ''"#);
    }

    #[test]
    fn status_lines_say_how_the_command_ended() {
        let r = ExecResult { exit_code: Some(3), ..Default::default() };
        assert_eq!(r.status_line(), "exit 3");
        let r = ExecResult { timed_out: true, duration_ms: 5000, ..Default::default() };
        assert!(r.status_line().contains("time limit"));
        let r = ExecResult { truncated: true, stdout_bytes: 10, ..Default::default() };
        assert_eq!(r.status_line(), "stopped at the output cap; output truncated at 10 bytes");
    }
}
