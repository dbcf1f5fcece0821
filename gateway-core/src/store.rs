//! Airlock's own store. One query layer over `sqlx::Any`: every query is written once with `$n` placeholders,
//! which both SQLite and Postgres accept; only the migrations differ per backend.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::error::{Error, Result};
use crate::vault::Secret;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    // Kept for LISTEN/NOTIFY, which needs a dedicated Postgres connection outside the pool.
    url: String,
}

impl Store {
    /// Connect to `url` (`sqlite://path` or `postgres://…`), creating a SQLite file and its directory if
    /// missing. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, password: Option<&Secret>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::Config {
                file: "store".into(),
                key: "store.url".into(),
                message: "must start with sqlite:// or postgres://".into(),
            });
        };
        let (url, synchronous) = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => (url.to_owned(), "FULL"),
        };
        let url = match backend {
            Backend::Sqlite => url,
            Backend::Postgres => match password {
                Some(p) => url_with_password(&url, p.expose()),
                None => url.to_owned(),
            },
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let listen_url = url.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers (replay UI) run beside the writer; FULL (the default) makes each
                        // committed event durable on disk before the call it records executes; NORMAL keeps it
                        // safe from a crash of Airlock but not of the machine. busy_timeout rides out writer
                        // contention.
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend, url: listen_url })
    }

    /// Apply pending migrations for this backend.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    /// The pool, for the store's query modules.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection URL (with password), for dedicated connections such as LISTEN. Never log it.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Cheap liveness probe (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Close the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Make sure the SQLite file's directory exists and ask SQLite to create the file. Airlock's own URL
/// parameter `synchronous=full|normal` (default full) is taken out here and applied as a pragma.
fn sqlite_url(url: &str) -> Result<(String, &'static str)> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if file != ":memory:"
        && let Some(dir) = Path::new(file).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    }
    let mut synchronous = "FULL";
    let mut params = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("synchronous", "full")) => synchronous = "FULL",
            Some(("synchronous", "normal")) => synchronous = "NORMAL",
            Some(("synchronous", other)) => {
                return Err(Error::Config {
                    file: "store".into(),
                    key: "store.url".into(),
                    message: format!("synchronous={other}: use full or normal"),
                });
            }
            _ => params.push(param),
        }
    }
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok((format!("sqlite://{file}?{}", params.join("&")), synchronous))
}

/// Insert a password into a `scheme://user@host/...` URL, percent-encoding it.
pub(crate) fn url_with_password(url: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((user, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{scheme}://{user}:{encoded}@{host}{tail}")
}

impl Store {
    /// Take or renew the lease `name` for `owner` until `lease` from now: `true` when `owner` holds it now,
    /// `false` while another owner's lease runs. For work one replica at a time must do.
    pub async fn take_lease(&self, name: &str, owner: &str, lease: std::time::Duration) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms \
             WHERE leases.owner = excluded.owner OR leases.until_ms < $4",
        )
        .bind(name)
        .bind(owner)
        .bind(now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give up `owner`'s lease `name` (a clean shutdown), so another replica need not wait it out.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, the store's one time unit.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A store timestamp as UTC calendar fields `(year, month, day, hour, minute, second, millisecond)`, without a
/// time-zone database (Howard Hinnant's civil-from-days).
pub fn utc_fields(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// A store timestamp in RFC 3339 (`2026-11-21T23:59:01.250Z`), as SIEMs expect.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = utc_fields(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_inserted_and_percent_encoded() {
        assert_eq!(
            url_with_password("postgres://app@db:5432/shop?sslmode=require", "p@ss:w/rd"),
            "postgres://app:p%40ss%3Aw%2Frd@db:5432/shop?sslmode=require"
        );
    }

    #[test]
    fn sqlite_synchronous_parameter_is_taken_out_of_the_url() {
        let (url, sync) = sqlite_url("sqlite://x.db?synchronous=normal").expect("parses");
        assert_eq!((url.as_str(), sync), ("sqlite://x.db?mode=rwc", "NORMAL"));
        let (url, sync) = sqlite_url("sqlite://x.db").expect("parses");
        assert_eq!((url.as_str(), sync), ("sqlite://x.db?mode=rwc", "FULL"));
        assert!(sqlite_url("sqlite://x.db?synchronous=off").is_err());
    }

    #[tokio::test]
    async fn sqlite_store_is_created_with_its_directory_and_migrates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/nested/airlock.db", dir.path().display());
        let store = Store::connect(&url, None).await.expect("connects");
        store.migrate().await.expect("migrates");
        store.migrate().await.expect("migrating twice is a no-op");
        store.ping().await.expect("pings");
        assert!(dir.path().join("nested/airlock.db").exists());
    }
}
