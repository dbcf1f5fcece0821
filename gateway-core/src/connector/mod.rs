//! Connectors execute an allowed call against its target with credentials from the vault, under a time
//! limit and output caps. They return raw (unmasked) output: the pipeline masks it before it leaves or is
//! recorded.

pub mod kube;
pub mod sql;
pub mod ssh;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Limits;
use crate::error::Result;

/// What to run, per tool.
#[derive(Debug, Clone)]
pub enum Execution {
    /// Run SQL text; keep at most `max_rows` rows.
    Sql { sql: String, max_rows: u32 },
    /// Run a command line with the login shell of an SSH host.
    Ssh { command: String, timeout: Duration },
    /// Run an argv (no shell) in a pod's container.
    Kube { namespace: String, pod: String, container: Option<String>, argv: Vec<String>, timeout: Duration },
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Raw bytes of command output, as they arrive. The pipeline masks them before anything else sees them.
#[derive(Debug)]
pub struct Chunk {
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// Where command connectors send output while the command runs. Bounded: a slow consumer slows the remote
/// reader instead of growing memory.
pub type ChunkSender = mpsc::Sender<Chunk>;

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ExitInfo {
    /// Exit status, when the target reported one.
    pub exit_code: Option<i64>,
    /// Signal that ended the command (`KILL`, `TERM`, ...), when the target reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// The output cap was reached: the rest was not read and the command was stopped.
    pub truncated: bool,
    /// The time limit was reached: the command was stopped.
    pub timed_out: bool,
}

/// Why a result is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "cap", content = "limit")]
pub enum Truncation {
    /// More rows than the row cap.
    Rows(u32),
    /// More bytes than the output cap.
    Bytes(usize),
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SqlColumn {
    pub name: String,
    /// The database's type name (`INT4`, `TEXT`, `BLOB`, ...).
    pub type_name: String,
}

/// Rows of a SQL call, unmasked.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SqlOutput {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows changed by writes (summed over statements), when the database reports it.
    pub rows_affected: u64,
    pub truncated: Option<Truncation>,
    /// Binary or non-UTF-8 values were rendered as hex (`\x…`).
    pub binary_values: bool,
}

/// Raw output of an execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    Sql(SqlOutput),
    /// A command ran; its output went to the chunk channel.
    Exec(ExitInfo),
}

/// A target that can execute calls.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Run `execution` within `limits`. Command output is sent to `output` as it arrives (SQL connectors
    /// return their rows instead). Errors name the connection and never contain credentials.
    async fn execute(&self, execution: &Execution, limits: &Limits, output: ChunkSender) -> Result<Output>;
}

/// Counts output against the byte cap, so connectors stop reading (and stop the command) once it is reached.
#[derive(Debug)]
pub(crate) struct OutputBudget {
    left: usize,
    pub(crate) truncated: bool,
}

impl OutputBudget {
    pub(crate) fn new(cap: usize) -> Self {
        Self { left: cap, truncated: false }
    }

    /// The part of `data` that still fits; sets `truncated` when something had to be cut.
    pub(crate) fn take<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let n = data.len().min(self.left);
        self.left -= n;
        if n < data.len() {
            self.truncated = true;
        }
        &data[..n]
    }

    pub(crate) fn exhausted(&self) -> bool {
        self.truncated
    }
}
