//! Connectors execute an allowed call against its target with credentials from the vault, under a time
//! limit and output caps. They return raw (unmasked) output: the pipeline masks it before it leaves or is
//! recorded.

pub mod sql;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::Limits;
use crate::error::Result;

/// What to run, per tool.
#[derive(Debug, Clone)]
pub enum Execution {
    /// Run SQL text; keep at most `max_rows` rows.
    Sql { sql: String, max_rows: u32 },
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
}

/// A target that can execute calls.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Run `execution` within `limits`. Errors name the connection and never contain credentials.
    async fn execute(&self, execution: &Execution, limits: &Limits) -> Result<Output>;
}
