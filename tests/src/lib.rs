//! Harness shared by the end-to-end tests: fresh databases on the real Postgres and MariaDB servers that
//! `scripts/test` provides.
//!
//! - Postgres: `AIRLOCK_TEST_PG_URL` (an admin URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
//!   Required: a test that needs it fails with a message saying how to provide it, never skips silently.
//! - MariaDB/MySQL: `AIRLOCK_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/mysql`). When it is not set,
//!   MySQL tests print a loud `SKIPPED` line (and `scripts/test` says so in its summary), unless
//!   `AIRLOCK_TEST_REQUIRE_MYSQL=1`, which turns the skip into a failure.

pub mod airlock;
pub mod bench;
pub mod fake_discord;
pub mod fake_kube;
pub mod fake_oidc;
pub mod fake_slack;
pub mod sshd;

use sqlx::Connection;

/// A database created for one test; dropped by the server when the test cluster is discarded.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// URL of the fresh database (no password; the test servers use trust/empty-password auth).
    pub url: String,
    pub name: String,
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple()).chars().take(48).collect()
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    format!("{host}/{db}{query}")
}

/// The admin URL of the test Postgres server. Panics with instructions when absent.
pub fn pg_admin_url() -> String {
    std::env::var("AIRLOCK_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "AIRLOCK_TEST_PG_URL is not set. Run the suite with scripts/test (it starts a private Postgres \
             cluster), or point AIRLOCK_TEST_PG_URL at a Postgres you may create databases on."
        )
    })
}

/// A fresh, empty Postgres database.
pub async fn postgres_db() -> TestDb {
    let admin = pg_admin_url();
    let name = unique_name("airlock_t");
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to AIRLOCK_TEST_PG_URL ({admin}): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database on {admin}: {e}"));
    TestDb { url: replace_db(&admin, &name), name }
}

/// A fresh MariaDB/MySQL database, or `None` (with a loud SKIPPED line) when no server is configured.
pub async fn mysql_db(test: &str) -> Option<TestDb> {
    let Ok(admin) = std::env::var("AIRLOCK_TEST_MYSQL_URL") else {
        if std::env::var("AIRLOCK_TEST_REQUIRE_MYSQL").is_ok_and(|v| v == "1") {
            panic!("{test}: AIRLOCK_TEST_MYSQL_URL is not set but AIRLOCK_TEST_REQUIRE_MYSQL=1");
        }
        eprintln!("SKIPPED {test}: no MariaDB/MySQL (set AIRLOCK_TEST_MYSQL_URL to run it)");
        return None;
    };
    let name = unique_name("airlock_t");
    let mut conn = sqlx::MySqlConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to AIRLOCK_TEST_MYSQL_URL ({admin}): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database on {admin}: {e}"));
    Some(TestDb { url: replace_db(&admin, &name), name })
}

/// Run setup SQL (several statements) against a database URL.
pub async fn exec(url: &str, sql: &str) {
    if url.starts_with("mysql") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    } else if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Count rows with a scalar query (`SELECT count(*) ...`).
pub async fn count(url: &str, sql: &str) -> i64 {
    if url.starts_with("mysql") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    } else if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// A gateway over a temp dir: SQLite store unless `store_url` is given, the shipped policies, and
/// `connections` (TOML `[connections.*]` tables), with one agent session open.
pub async fn gateway(
    store_url: Option<&str>,
    connections: &str,
) -> (tempfile::TempDir, gateway_core::pipeline::Gateway, gateway_core::pipeline::Caller) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = match store_url {
        Some(u) => u.to_owned(),
        None => format!("sqlite://{}", dir.path().join("airlock.db").display()),
    };
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let toml = format!("[store]\nurl = \"{store}\"\n[policy]\ndir = \"{}\"\n{connections}\n", policies.display());
    let config = gateway_core::config::Config::parse(&toml, "test.toml", Vec::new()).expect("config");
    let gw = gateway_core::pipeline::Gateway::start(config).await.expect("gateway starts");
    let identity = gateway_core::identity::Identity::agent("test-agent", &["agents"]);
    let session_id = gw.open_session(&identity, "test", "airlock-tests").await.expect("session");
    (dir, gw, gateway_core::pipeline::Caller { identity, session_id })
}

/// Run one `sql_query` through the pipeline.
pub async fn sql(
    gw: &gateway_core::pipeline::Gateway,
    caller: &gateway_core::pipeline::Caller,
    connection: &str,
    query: &str,
) -> gateway_core::pipeline::ToolOutcome {
    use gateway_core::pipeline::{SqlRequest, ToolRequest};
    gw.call(caller, ToolRequest::Sql(SqlRequest { connection: connection.into(), query: query.into(), max_rows: None }))
        .await
}

/// Seed SQL shared by the target tests: customers with PII and a marker table.
pub const SEED_SQL: &str = "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100), email VARCHAR(200), ssn VARCHAR(20), note VARCHAR(200));
INSERT INTO customers VALUES (1, 'Grace Hopper', 'grace.hopper@example.com', '123-45-6789', 'vip');
INSERT INTO customers VALUES (2, 'Alan Turing', 'alan@example.org', '219-09-9999', 'n');
INSERT INTO customers VALUES (3, 'Ada Lovelace', 'ada@example.net', '078-05-1120', 'n');";

#[cfg(test)]
mod tests {
    use super::replace_db;

    #[test]
    fn database_name_is_replaced_keeping_host_and_query() {
        assert_eq!(replace_db("postgres://u@h:5/postgres?sslmode=disable", "x"), "postgres://u@h:5/x?sslmode=disable");
        assert_eq!(replace_db("mysql://root@127.0.0.1:3306", "y"), "mysql://root@127.0.0.1:3306/y");
    }
}
