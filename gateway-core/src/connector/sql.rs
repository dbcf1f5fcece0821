//! SQL targets: Postgres, MySQL/MariaDB and SQLite through sqlx.
//!
//! Statements run over the simple (text) protocol (`raw_sql`), which is what a human's `psql` would do: any
//! statement the policy allowed runs as written, and every value comes back in its text form, so no type is
//! left undecodable. Caps are enforced while streaming: no more than `max_rows + 1` rows or `max_output_bytes`
//! are ever held. `read_only` connections run each call inside a read-only transaction that the database
//! enforces (Postgres/MySQL), or open the file read-only (SQLite); a read-only connection accepts one
//! statement per call so nothing can end that transaction early.

use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Column, ConnectOptions as _, Database, Either, Row, TypeInfo, ValueRef};

use super::{ChunkSender, Connector, Execution, Output, SqlColumn, SqlOutput, Truncation};
use crate::config::{ConnectionConfig, ConnectionKind, Limits};
use crate::error::{Error, Result};
use crate::store::url_with_password;
use crate::vault::Secret;

enum Pool {
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// A SQL connection (pool) to one target.
pub struct SqlConnector {
    name: String,
    pool: Pool,
    read_only: bool,
    // MySQL and MariaDB name their statement timeout differently; remember which one worked (0 = unknown).
    mysql_timeout_flavour: AtomicU8,
}

/// Closes the connection instead of returning it to the pool unless the call finished cleanly, so a call
/// abandoned mid-stream (timeout, truncated result) never hands a half-read connection or an open
/// transaction to the next call.
struct Guarded<DB: Database> {
    conn: Option<PoolConnection<DB>>,
    clean: bool,
}

impl<DB: Database> Guarded<DB> {
    fn conn(&mut self) -> Result<&mut PoolConnection<DB>> {
        self.conn.as_mut().ok_or_else(|| Error::Record("connection already released".into()))
    }
}

impl<DB: Database> Drop for Guarded<DB> {
    fn drop(&mut self) {
        if !self.clean
            && let Some(conn) = self.conn.as_mut()
        {
            conn.close_on_drop();
        }
    }
}

impl SqlConnector {
    /// Build a lazily connecting pool; the target is contacted on first use, so a target that is down does
    /// not stop the gateway from starting (its calls fail with a clear error instead).
    pub fn new(name: &str, config: &ConnectionConfig, password: Option<&Secret>) -> Result<Self> {
        let target_err = |e: sqlx::Error| Error::Target { connection: name.to_owned(), message: e.to_string() };
        let url = match password {
            Some(p) => url_with_password(&config.url, p.expose()),
            None => config.url.clone(),
        };
        // Statement logging off: sqlx would log every statement as sent (debug) and slow ones at warn, i.e. the
        // agent's raw, unmasked SQL. Airlock records the masked statement instead.
        let pool = match config.kind {
            ConnectionKind::Postgres => {
                let opts = PgConnectOptions::from_str(&url)
                    .map_err(target_err)?
                    .application_name("airlock")
                    .disable_statement_logging();
                Pool::Postgres(PgPoolOptions::new().max_connections(8).connect_lazy_with(opts))
            }
            ConnectionKind::Mysql => {
                let url = url.replacen("mariadb://", "mysql://", 1);
                let opts = MySqlConnectOptions::from_str(&url).map_err(target_err)?.disable_statement_logging();
                Pool::Mysql(MySqlPoolOptions::new().max_connections(8).connect_lazy_with(opts))
            }
            ConnectionKind::Sqlite => {
                let opts = SqliteConnectOptions::from_str(&url)
                    .map_err(target_err)?
                    .read_only(config.read_only)
                    .busy_timeout(Duration::from_secs(5))
                    .disable_statement_logging();
                Pool::Sqlite(SqlitePoolOptions::new().max_connections(4).connect_lazy_with(opts))
            }
            ConnectionKind::Ssh | ConnectionKind::Kubernetes => {
                return Err(Error::Target { connection: name.to_owned(), message: "not a SQL connection".into() });
            }
        };
        Ok(Self { name: name.to_owned(), pool, read_only: config.read_only, mysql_timeout_flavour: AtomicU8::new(0) })
    }

    fn target_err(&self, e: sqlx::Error) -> Error {
        Error::Target { connection: self.name.clone(), message: describe(&e) }
    }

    async fn run(&self, sql: &str, max_rows: u32, limits: &Limits) -> Result<SqlOutput> {
        let timeout = limits.statement_timeout.0;
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut g = Guarded { conn: Some(pool.acquire().await.map_err(|e| self.target_err(e))?), clean: false };
                let ms = timeout.as_millis();
                let prelude = if self.read_only {
                    format!("BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}")
                } else {
                    format!("SET statement_timeout = {ms}")
                };
                sqlx::raw_sql(AssertSqlSafe(prelude))
                    .execute(&mut **g.conn()?)
                    .await
                    .map_err(|e| self.target_err(e))?;
                let out = collect::<Postgres>(&mut g, sql, max_rows, limits, pg_value).await;
                let out = self.finish(&mut g, out, "ROLLBACK").await?;
                Ok(out)
            }
            Pool::Mysql(pool) => {
                let mut g = Guarded { conn: Some(pool.acquire().await.map_err(|e| self.target_err(e))?), clean: false };
                self.mysql_set_timeout(&mut g, timeout).await?;
                if self.read_only {
                    sqlx::raw_sql("START TRANSACTION READ ONLY")
                        .execute(&mut **g.conn()?)
                        .await
                        .map_err(|e| self.target_err(e))?;
                }
                let out = collect::<MySql>(&mut g, sql, max_rows, limits, mysql_value).await;
                self.finish(&mut g, out, "ROLLBACK").await
            }
            Pool::Sqlite(pool) => {
                let mut g = Guarded { conn: Some(pool.acquire().await.map_err(|e| self.target_err(e))?), clean: false };
                let out = collect::<Sqlite>(&mut g, sql, max_rows, limits, sqlite_value).await;
                // SQLite read-only is enforced by opening the file read-only; no transaction to end.
                match out {
                    Ok(o) => {
                        g.clean = o.truncated.is_none();
                        Ok(o)
                    }
                    Err(e) => Err(self.target_err(e)),
                }
            }
        }
    }

    /// End a read-only transaction (if any) and mark the connection reusable when the call ended cleanly.
    async fn finish<DB: Database>(
        &self,
        g: &mut Guarded<DB>,
        out: Result<SqlOutput, sqlx::Error>,
        end: &'static str,
    ) -> Result<SqlOutput>
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    {
        let out = out.map_err(|e| self.target_err(e))?;
        if out.truncated.is_some() {
            // Closing abandons the rest of the result server-side instead of draining it.
            return Ok(out);
        }
        if self.read_only {
            sqlx::raw_sql(end).execute(&mut **g.conn()?).await.map_err(|e| self.target_err(e))?;
        }
        g.clean = true;
        Ok(out)
    }

    async fn mysql_set_timeout(&self, g: &mut Guarded<MySql>, timeout: Duration) -> Result<()> {
        // 1 = MariaDB `max_statement_time` (seconds, any statement); 2 = MySQL `max_execution_time` (ms, SELECT).
        let flavours = match self.mysql_timeout_flavour.load(Ordering::Relaxed) {
            1 => vec![1u8],
            2 => vec![2u8],
            _ => vec![1u8, 2u8],
        };
        for f in flavours {
            let stmt = if f == 1 {
                format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64())
            } else {
                format!("SET SESSION max_execution_time = {}", timeout.as_millis())
            };
            if sqlx::raw_sql(AssertSqlSafe(stmt)).execute(&mut **g.conn()?).await.is_ok() {
                self.mysql_timeout_flavour.store(f, Ordering::Relaxed);
                return Ok(());
            }
        }
        // Neither setting exists: the gateway's own timer still bounds the call.
        Ok(())
    }
}

#[async_trait]
impl Connector for SqlConnector {
    async fn execute(&self, execution: &Execution, limits: &Limits, _output: ChunkSender) -> Result<Output> {
        let Execution::Sql { sql, max_rows } = execution else {
            return Err(Error::InvalidRequest(format!("{} is a SQL connection; use sql_query", self.name)));
        };
        // The database enforces the timeout too; this outer timer is the backstop (and covers SQLite).
        let backstop = limits.statement_timeout.0 + Duration::from_secs(2);
        match tokio::time::timeout(backstop, self.run(sql, *max_rows, limits)).await {
            Ok(r) => r.map(Output::Sql),
            Err(_) => {
                Err(Error::Timeout { connection: self.name.clone(), seconds: limits.statement_timeout.as_secs() })
            }
        }
    }
}

/// Reads cell `i` of a row as JSON, flagging values rendered as hex.
type CellReader<DB> = fn(&<DB as Database>::Row, usize) -> Result<(Value, bool), sqlx::Error>;

/// Stream rows until the caps; the last result set that returned rows wins.
async fn collect<DB: Database>(
    g: &mut Guarded<DB>,
    sql: &str,
    max_rows: u32,
    limits: &Limits,
    value: CellReader<DB>,
) -> Result<SqlOutput, sqlx::Error>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let mut out = SqlOutput::default();
    let mut bytes = 0usize;
    let conn = g.conn().map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).fetch_many(&mut **conn);
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Left(done) => out.rows_affected += done_rows::<DB>(&done),
            Either::Right(row) => {
                let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
                if out.columns.len() != names.len() || out.columns.iter().zip(&names).any(|(c, n)| c.name != *n) {
                    // A new result set: keep the latest one's rows.
                    out.columns = row
                        .columns()
                        .iter()
                        .map(|c| SqlColumn { name: c.name().to_owned(), type_name: c.type_info().name().to_owned() })
                        .collect();
                    out.rows.clear();
                    bytes = 0;
                }
                if out.rows.len() >= max_rows as usize {
                    out.truncated = Some(Truncation::Rows(max_rows));
                    break;
                }
                let mut cells = Vec::with_capacity(names.len());
                for i in 0..names.len() {
                    let (v, binary) = value(&row, i)?;
                    bytes += match &v {
                        Value::String(s) => s.len(),
                        _ => 8,
                    };
                    out.binary_values |= binary;
                    cells.push(v);
                }
                if bytes > limits.max_output_bytes {
                    out.truncated = Some(Truncation::Bytes(limits.max_output_bytes));
                    break;
                }
                out.rows.push(cells);
            }
        }
    }
    Ok(out)
}

fn done_rows<DB: Database>(done: &DB::QueryResult) -> u64 {
    // Each backend's QueryResult exposes rows_affected; go through Any-free trait objects.
    let any: &dyn std::any::Any = done;
    if let Some(r) = any.downcast_ref::<sqlx::postgres::PgQueryResult>() {
        r.rows_affected()
    } else if let Some(r) = any.downcast_ref::<sqlx::mysql::MySqlQueryResult>() {
        r.rows_affected()
    } else if let Some(r) = any.downcast_ref::<sqlx::sqlite::SqliteQueryResult>() {
        r.rows_affected()
    } else {
        0
    }
}

/// Text bytes to a JSON value: invalid UTF-8 becomes `\x…` hex (flagged), never a panic.
fn text_value(bytes: &[u8]) -> (Value, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Value::String(s.to_owned()), false),
        Err(_) => (Value::String(format!("\\x{}", hex::encode(bytes))), true),
    }
}

fn number_or_text(text: &str, integer: bool) -> Value {
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::from(u);
        }
    } else if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

fn pg_value(row: &sqlx::postgres::PgRow, i: usize) -> Result<(Value, bool), sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok((Value::Null, false));
    }
    let ty = raw.type_info().name().to_owned();
    let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
    let (text, binary) = text_value(bytes);
    let Value::String(s) = &text else { return Ok((text, binary)) };
    Ok(match ty.as_str() {
        "INT2" | "INT4" | "INT8" | "OID" => (number_or_text(s, true), false),
        "FLOAT4" | "FLOAT8" => (number_or_text(s, false), false),
        "BOOL" => (Value::Bool(s == "t"), false),
        _ => (text, binary),
    })
}

fn mysql_value(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<(Value, bool), sqlx::Error> {
    let ty = row.try_get_raw(i)?.type_info().name().to_owned();
    let bytes: Option<Vec<u8>> = row.try_get_unchecked(i)?;
    let Some(bytes) = bytes else { return Ok((Value::Null, false)) };
    let binary_type = ty.contains("BLOB") || ty.contains("BINARY");
    if binary_type && std::str::from_utf8(&bytes).is_err() {
        return Ok((Value::String(format!("\\x{}", hex::encode(&bytes))), true));
    }
    let (text, binary) = text_value(&bytes);
    let Value::String(s) = &text else { return Ok((text, binary)) };
    Ok(match ty.as_str() {
        t if t.starts_with("TINYINT")
            || t.starts_with("SMALLINT")
            || t.starts_with("MEDIUMINT")
            || t.starts_with("INT")
            || t.starts_with("BIGINT") =>
        {
            (number_or_text(s, true), false)
        }
        "FLOAT" | "DOUBLE" => (number_or_text(s, false), false),
        "BOOLEAN" => (Value::Bool(s == "1"), false),
        _ => (text, binary),
    })
}

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<(Value, bool), sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok((Value::Null, false));
    }
    // SQLite values carry their own storage class, whatever the column was declared as.
    let ty = raw.type_info().name().to_owned();
    Ok(match ty.as_str() {
        "INTEGER" => (Value::from(row.try_get_unchecked::<i64, _>(i)?), false),
        "REAL" => {
            let f: f64 = row.try_get_unchecked(i)?;
            (serde_json::Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(f.to_string())), false)
        }
        "BLOB" => {
            let b: Vec<u8> = row.try_get_unchecked(i)?;
            match String::from_utf8(b) {
                Ok(s) => (Value::String(s), false),
                Err(e) => (Value::String(format!("\\x{}", hex::encode(e.as_bytes()))), true),
            }
        }
        _ => {
            let b: Vec<u8> = row.try_get_unchecked(i)?;
            text_value(&b)
        }
    })
}

/// A database error as the agent should see it: the server's message, without connection details.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "could not get a database connection in time".into(),
        sqlx::Error::Io(io) => format!("cannot reach the database: {io}"),
        other => other.to_string(),
    }
}
