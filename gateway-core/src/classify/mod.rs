//! Classification: what a call would do, in terms the policy engine matches on.
//!
//! SQL goes through `sqlparser` with the connection's dialect ([`sql`]); shell command lines go through a bash
//! parser that sees every command that would run ([`shell`]). What cannot be parsed or resolved is classified
//! `unparsed` and treated as risky by the shipped policy (fail closed).

pub mod shell;
pub mod sql;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// SQL dialect of a connection; decides how statements are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

/// A class of SQL statement. A statement (or an input of several) carries every class that applies:
/// `SELECT pg_read_file('/etc/passwd')` is both `read` and `file_access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SqlClass {
    /// SELECT / VALUES / SHOW / EXPLAIN (without ANALYZE) / DESCRIBE: reads data or metadata.
    Read,
    /// INSERT (including INSERT ... SELECT, REPLACE, UPSERT).
    Insert,
    /// UPDATE with a WHERE clause.
    Update,
    /// UPDATE without a WHERE clause: touches every row.
    UpdateWithoutWhere,
    /// DELETE with a WHERE clause.
    Delete,
    /// DELETE without a WHERE clause: removes every row.
    DeleteWithoutWhere,
    /// MERGE.
    Merge,
    /// DROP of any object (table, database, schema, index, view, function, role, ...).
    Drop,
    /// TRUNCATE.
    Truncate,
    /// Other DDL: CREATE, ALTER (except ALTER SYSTEM), COMMENT, RENAME, ...
    Ddl,
    /// GRANT, REVOKE, CREATE/ALTER ROLE or USER: changes who may do what.
    Privilege,
    /// ALTER SYSTEM (Postgres server configuration).
    AlterSystem,
    /// COPY ... PROGRAM: runs a shell command on the database server.
    CopyProgram,
    /// Reads or writes server-side files: pg_read_file, pg_ls_dir, lo_import/lo_export, COPY to/from a
    /// server file, LOAD_FILE, SELECT ... INTO OUTFILE/DUMPFILE, LOAD DATA INFILE.
    FileAccess,
    /// Server administration functions and statements: pg_terminate_backend, pg_cancel_backend,
    /// pg_reload_conf, KILL, SHUTDOWN, dblink, set_config of server settings, ...
    ServerAdmin,
    /// Identity switching: SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE.
    RoleSwitch,
    /// Other session settings: SET, RESET, SET TRANSACTION, USE.
    SessionSetting,
    /// Transaction control: BEGIN, COMMIT, ROLLBACK, SAVEPOINT.
    Transaction,
    /// Runs stored or anonymous code: CALL, DO blocks, EXECUTE of a prepared statement, PREPARE.
    Procedural,
    /// Maintenance: VACUUM, ANALYZE, REINDEX, CHECKPOINT, CLUSTER, OPTIMIZE, LOCK.
    Maintenance,
    /// More than one statement in one input.
    MultiStatement,
    /// The input could not be parsed (or was too deeply nested, or too large): treated as risky.
    Unparsed,
    /// Parsed, but none of the classes above applies.
    Other,
}

impl SqlClass {
    /// Every class, in declaration order (for docs, schema and validation messages).
    pub const ALL: &'static [SqlClass] = &[
        SqlClass::Read,
        SqlClass::Insert,
        SqlClass::Update,
        SqlClass::UpdateWithoutWhere,
        SqlClass::Delete,
        SqlClass::DeleteWithoutWhere,
        SqlClass::Merge,
        SqlClass::Drop,
        SqlClass::Truncate,
        SqlClass::Ddl,
        SqlClass::Privilege,
        SqlClass::AlterSystem,
        SqlClass::CopyProgram,
        SqlClass::FileAccess,
        SqlClass::ServerAdmin,
        SqlClass::RoleSwitch,
        SqlClass::SessionSetting,
        SqlClass::Transaction,
        SqlClass::Procedural,
        SqlClass::Maintenance,
        SqlClass::MultiStatement,
        SqlClass::Unparsed,
        SqlClass::Other,
    ];

    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            SqlClass::Read => "read",
            SqlClass::Insert => "insert",
            SqlClass::Update => "update",
            SqlClass::UpdateWithoutWhere => "update_without_where",
            SqlClass::Delete => "delete",
            SqlClass::DeleteWithoutWhere => "delete_without_where",
            SqlClass::Merge => "merge",
            SqlClass::Drop => "drop",
            SqlClass::Truncate => "truncate",
            SqlClass::Ddl => "ddl",
            SqlClass::Privilege => "privilege",
            SqlClass::AlterSystem => "alter_system",
            SqlClass::CopyProgram => "copy_program",
            SqlClass::FileAccess => "file_access",
            SqlClass::ServerAdmin => "server_admin",
            SqlClass::RoleSwitch => "role_switch",
            SqlClass::SessionSetting => "session_setting",
            SqlClass::Transaction => "transaction",
            SqlClass::Procedural => "procedural",
            SqlClass::Maintenance => "maintenance",
            SqlClass::MultiStatement => "multi_statement",
            SqlClass::Unparsed => "unparsed",
            SqlClass::Other => "other",
        }
    }
}

impl std::fmt::Display for SqlClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
