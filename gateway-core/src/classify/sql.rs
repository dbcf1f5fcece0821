//! SQL classification: what an input would do, as a set of [`SqlClass`]es.
//!
//! This is a security boundary (the policy decides allow / block / approval from these classes),
//! so two independent passes look at every input and their findings are merged:
//!
//! 1. **Token scan** (always, even when parsing fails): sqlparser's `Tokenizer` for the
//!    connection's dialect, so string literals, quoted identifiers, dollar-quoting and comments are
//!    told apart from code. Calls of dangerous functions (one table, in `sql/functions.rs`) and keyword
//!    pairs such as `INTO OUTFILE`, `LOAD DATA`, `COPY ... PROGRAM`, `ALTER SYSTEM`, `SET ROLE`
//!    add their classes. Garbage around `pg_read_file(` is still `file_access`.
//! 2. **AST walk**: the statements are parsed (recursion limit [`MAX_NESTING`]) and a `Visitor`
//!    walks every node: DML inside CTEs, the statement under EXPLAIN ANALYZE, functions in
//!    subqueries, CASE, ORDER BY, VALUES, every statement after a `;`.
//!
//! It fails closed: anything it cannot parse, or can parse but not trust (an executable MySQL
//! comment it cannot unwrap safely, a Postgres `U&"..."` identifier), or that is empty, too large
//! or too deep, is [`SqlClass::Unparsed`], and unparsed inputs are also scanned as raw text (their
//! string boundaries are exactly what cannot be trusted). Evasion can add classes, never remove
//! them: the classes found by any pass are kept.
//!
//! MySQL executable comments (`/*! ... */`, `/*!50000 ... */`, MariaDB `/*M! ... */`) are run by
//! the server, so for the MySQL dialect they are unwrapped before tokenizing; for Postgres and
//! SQLite they are ordinary comments.
//!
//! Never panics (a panic anywhere inside is caught and reported as `unparsed`) and never
//! overflows the stack: the parser's recursion is bounded, and inputs with many tokens (whose
//! left-deep expression chains like `1+1+...+1` can make the AST deeper than the parser's
//! recursion) are parsed, walked and dropped on a thread whose stack grows with the token count.

mod functions;
mod scan;
mod walk;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use sqlparser::ast::Visit;
use sqlparser::dialect::{Dialect as ParserDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{TokenWithSpan, Tokenizer};

use super::{Dialect, SqlClass};

/// Inputs larger than this are `unparsed` without being looked at.
pub const DEFAULT_MAX_SQL_BYTES: usize = 256 * 1024;

/// The parser's recursion limit (nesting of parentheses, subqueries, expressions).
pub const MAX_NESTING: usize = 64;

/// Inputs with at most this many significant tokens are parsed on the caller's thread: the AST
/// cannot be deeper than the token count, and this many levels fit a 2 MiB stack in debug builds.
const INLINE_TOKEN_LIMIT: usize = 2_000;

/// Stack given to the parsing thread of larger inputs: a base plus this much per token. The AST
/// depth is at most the token count; one level of dropping and visiting measured ~100 bytes in a
/// debug build, so this leaves a 5x margin (the memory is reserved, not touched).
const STACK_BASE_BYTES: usize = 4 << 20;
const STACK_BYTES_PER_TOKEN: usize = 512;

/// What an input would do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SqlClassification {
    /// Every class that applies (never empty).
    pub classes: BTreeSet<SqlClass>,
    /// Relations referenced, lower-cased and unquoted, as qualified in the text: `public.users`.
    /// CTE names are included (fail closed: a CTE may shadow a real table name elsewhere).
    pub tables: BTreeSet<String>,
    /// Lower-cased names of the functions called anywhere, as qualified in the text.
    pub functions: BTreeSet<String>,
    /// Number of statements parsed (0 if unparsed).
    pub statements: usize,
    /// Why the input is `unparsed`, for the audit trail.
    pub parse_error: Option<String>,
}

/// Classify `sql` for `dialect`, refusing inputs over [`DEFAULT_MAX_SQL_BYTES`].
pub fn classify(sql: &str, dialect: Dialect) -> SqlClassification {
    classify_with_limit(sql, dialect, DEFAULT_MAX_SQL_BYTES)
}

/// Classify `sql` for `dialect`; inputs over `max_bytes` are `unparsed`.
pub fn classify_with_limit(sql: &str, dialect: Dialect, max_bytes: usize) -> SqlClassification {
    classify_at_depth(sql, dialect, max_bytes, 0)
}

/// `depth` > 0 when classifying SQL found in a string argument (`dblink_exec(c, '...')`).
pub(crate) fn classify_at_depth(sql: &str, dialect: Dialect, max_bytes: usize, depth: usize) -> SqlClassification {
    // Nothing in here should panic; if something does (a parser bug), fail closed, don't crash.
    catch_unwind(AssertUnwindSafe(|| classify_inner(sql, dialect, max_bytes, depth)))
        .unwrap_or_else(|_| unparsed_only("internal error: the classifier panicked"))
}

fn parser_dialect(dialect: Dialect) -> &'static dyn ParserDialect {
    match dialect {
        Dialect::Postgres => &PostgreSqlDialect {},
        Dialect::Mysql => &MySqlDialect {},
        Dialect::Sqlite => &SQLiteDialect {},
    }
}

fn unparsed_only(why: &str) -> SqlClassification {
    SqlClassification {
        classes: BTreeSet::from([SqlClass::Unparsed]),
        parse_error: Some(why.to_string()),
        ..SqlClassification::default()
    }
}

fn classify_inner(sql: &str, dialect: Dialect, max_bytes: usize, depth: usize) -> SqlClassification {
    if sql.len() > max_bytes {
        return unparsed_only(&format!("input is {} bytes, over the limit of {max_bytes} bytes", sql.len()));
    }
    let pd = parser_dialect(dialect);
    let mut out = SqlClassification::default();

    // Why the parser's reading cannot be trusted even if it succeeds.
    let mut distrust: Option<String> = None;
    let text: Cow<'_, str> = if dialect == Dialect::Mysql {
        scan::unwrap_mysql_executable_comments(sql).unwrap_or_else(|why| {
            distrust = Some(why);
            Cow::Borrowed(sql)
        })
    } else {
        Cow::Borrowed(sql)
    };

    let mut tokens = Vec::new();
    // On error the buffer keeps the tokens before it: the scan still sees them.
    let token_error = Tokenizer::new(pd, &text).tokenize_with_location_into_buf(&mut tokens).err();

    let mut findings = scan::TokenFindings::default();
    let cx = scan::ScanContext { dialect, parser_dialect: pd, depth, max_bytes };
    scan::scan_tokens(&tokens, &cx, &mut findings);
    out.classes.append(&mut findings.classes);
    out.functions.append(&mut findings.functions);
    distrust = distrust.or(findings.distrust);

    let failure = if let Some(e) = token_error {
        Some(match distrust {
            Some(why) => format!("{why} (and the tokenizer says: {e})"),
            None => format!("tokenizer error: {e}"),
        })
    } else if scan::only_whitespace(&tokens) {
        Some("empty statement".to_string())
    } else {
        match parse_and_walk(tokens, dialect, max_bytes, depth, findings.significant) {
            Ok(walked) => {
                out.statements = walked.statements;
                if walked.statements > 1 {
                    out.classes.insert(SqlClass::MultiStatement);
                }
                out.classes.extend(walked.classes);
                out.tables = walked.tables;
                out.functions.extend(walked.functions);
                distrust
            }
            Err(e) => Some(match distrust {
                Some(why) => format!("{why} (and the parser says: {e})"),
                None => e,
            }),
        }
    };

    if let Some(why) = failure {
        out.statements = 0;
        out.classes.insert(SqlClass::Unparsed);
        out.parse_error = Some(why);
        out.classes.append(&mut findings.start_classes);
        scan::scan_raw(sql, dialect, &mut out.classes, &mut out.functions);
        if let Cow::Owned(unwrapped) = &text {
            scan::scan_raw(unwrapped, dialect, &mut out.classes, &mut out.functions);
        }
    }
    out
}

/// Which classes of SQL found in a string (`dblink_exec(c, '...')`, `PREPARE s FROM '...'`)
/// carry over to the input. Not `unparsed` (the literal may be a connection string, not SQL) and
/// not `multi_statement` (the input itself is still one statement).
pub(crate) fn counts_when_embedded(class: SqlClass) -> bool {
    !matches!(class, SqlClass::Unparsed | SqlClass::MultiStatement)
}

/// What the AST walk found.
struct Walked {
    statements: usize,
    classes: BTreeSet<SqlClass>,
    tables: BTreeSet<String>,
    functions: BTreeSet<String>,
}

fn parse_and_walk(
    tokens: Vec<TokenWithSpan>,
    dialect: Dialect,
    max_bytes: usize,
    depth: usize,
    significant: usize,
) -> Result<Walked, String> {
    // Parses, walks and drops the AST: all three recurse as deep as the AST is.
    let work = move || -> Result<Walked, String> {
        let statements = Parser::new(parser_dialect(dialect))
            .with_recursion_limit(MAX_NESTING)
            .with_tokens_with_locations(tokens)
            .parse_statements()
            .map_err(|e| e.to_string())?;
        if statements.is_empty() {
            return Err("empty statement".to_string()); // only `;`
        }
        let mut walker = walk::Walker::new(dialect, depth, max_bytes);
        for s in &statements {
            let _ = s.visit(&mut walker);
        }
        Ok(Walked {
            statements: statements.len(),
            classes: walker.classes,
            tables: walker.tables,
            functions: walker.functions,
        })
    };
    if significant <= INLINE_TOKEN_LIMIT {
        return work();
    }
    let stack = STACK_BYTES_PER_TOKEN.saturating_mul(significant).saturating_add(STACK_BASE_BYTES);
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("sql-classify".to_string())
            .stack_size(stack)
            .spawn_scoped(scope, work)
            .map_err(|e| format!("cannot start the parsing thread: {e}"))?;
        handle.join().unwrap_or_else(|_| Err("internal error: the parser panicked".to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use SqlClass::*;

    fn classes(sql: &str, d: Dialect) -> BTreeSet<SqlClass> {
        classify(sql, d).classes
    }

    fn set(c: &[SqlClass]) -> BTreeSet<SqlClass> {
        c.iter().copied().collect()
    }

    const PG: Dialect = Dialect::Postgres;
    const MY: Dialect = Dialect::Mysql;

    #[test]
    fn delete_hidden_in_cte_is_delete_without_where() {
        assert_eq!(
            classes("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", PG),
            set(&[Read, DeleteWithoutWhere])
        );
        assert_eq!(
            classes("WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d", PG),
            set(&[Read, Delete])
        );
    }

    #[test]
    fn update_and_insert_hidden_in_cte_count() {
        assert_eq!(
            classes("WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT 1", PG),
            set(&[Read, UpdateWithoutWhere])
        );
        assert_eq!(classes("WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1", PG), set(&[Read, Insert]));
    }

    #[test]
    fn delete_with_using_but_no_where_is_unbounded() {
        assert_eq!(classes("DELETE FROM t USING u", PG), set(&[DeleteWithoutWhere]));
    }

    #[test]
    fn where_true_counts_as_bounded() {
        // Documented choice: any WHERE is a WHERE; the policy may still require approval.
        assert_eq!(classes("DELETE FROM t WHERE true", PG), set(&[Delete]));
        assert_eq!(classes("UPDATE t SET a = 1 WHERE 1=1", PG), set(&[Update]));
    }

    #[test]
    fn dangerous_function_in_nested_positions_is_seen() {
        for sql in [
            "SELECT * FROM t WHERE id IN (SELECT length(pg_read_file('/etc/passwd')))",
            "SELECT CASE WHEN x THEN pg_read_file('/etc/passwd') END FROM t",
            "SELECT a FROM t ORDER BY pg_read_file('/etc/passwd')",
            "SELECT * FROM pg_read_file('/etc/passwd')",
        ] {
            assert_eq!(classes(sql, PG), set(&[Read, FileAccess]), "{sql}");
        }
        assert_eq!(classes("INSERT INTO t VALUES (pg_read_file('/etc/passwd'))", PG), set(&[Insert, FileAccess]));
        assert_eq!(classes("INSERT INTO t SELECT pg_ls_dir('.')", PG), set(&[Insert, FileAccess]));
    }

    #[test]
    fn table_function_is_a_function_not_a_table() {
        let c = classify("SELECT * FROM pg_ls_dir('.') AS f, users", PG);
        assert_eq!(c.tables, BTreeSet::from(["users".to_string()]));
        assert!(c.functions.contains("pg_ls_dir"), "{:?}", c.functions);
    }

    #[test]
    fn explain_analyze_classifies_the_inner_statement_and_plain_explain_does_not() {
        assert_eq!(classes("EXPLAIN ANALYZE DELETE FROM t", PG), set(&[Read, DeleteWithoutWhere]));
        assert_eq!(classes("EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", PG), set(&[Read, UpdateWithoutWhere]));
        assert_eq!(classes("EXPLAIN DELETE FROM t", PG), set(&[Read]));
    }

    #[test]
    fn executable_mysql_comment_is_unwrapped() {
        assert_eq!(classes("/*!50000 DROP TABLE t */", MY), set(&[Drop]));
        assert_eq!(classes("SELECT 1 /*!, load_file('/etc/passwd') */", MY), set(&[Read, FileAccess]));
        // For Postgres it is an ordinary comment.
        assert_eq!(classes("SELECT 1 /*!50000 , pg_read_file('/etc/passwd') */", PG), set(&[Read]));
    }

    #[test]
    fn mariadb_executable_comment_is_unwrapped() {
        assert_eq!(classes("SELECT 1 /*M!100100 , load_file('/etc/passwd') */", MY), set(&[Read, FileAccess]));
    }

    #[test]
    fn executable_comment_that_cannot_be_unwrapped_is_unparsed() {
        let c = classify("SELECT 1 /*! -- */ , 2 */", MY);
        assert!(c.classes.contains(&Unparsed), "{c:?}");
        assert!(c.parse_error.is_some_and(|e| e.contains("executable comment")));
    }

    #[test]
    fn postgres_unicode_identifier_is_unparsed_and_still_decoded() {
        let c = classify("SELECT U&\"\\0070g_read_file\"('/etc/passwd')", PG);
        assert!(c.classes.contains(&Unparsed) && c.classes.contains(&FileAccess), "{c:?}");
    }

    #[test]
    fn string_literal_is_not_a_call() {
        assert_eq!(classes("SELECT 'pg_read_file(' AS x", PG), set(&[Read]));
        assert_eq!(classes("SELECT $$ pg_read_file('/x') $$", PG), set(&[Read]));
        assert_eq!(classes("SELECT 1 -- pg_read_file('/x')\n", PG), set(&[Read]));
    }

    #[test]
    fn garbage_around_dangerous_call_is_unparsed_and_file_access() {
        assert_eq!(classes("SELEC pg_read_file('/etc/passwd') FRM", PG), set(&[Unparsed, FileAccess]));
        assert_eq!(classes("COPY t TO PROGRAM 'id' WITH (((", PG), set(&[Unparsed, CopyProgram]));
    }

    #[test]
    fn empty_and_comment_only_inputs_are_unparsed() {
        for sql in ["", "   \n\t", "-- nothing", "/* nothing */", ";", " ; ; "] {
            let c = classify(sql, PG);
            assert_eq!(c.classes, set(&[Unparsed]), "{sql:?}");
            assert_eq!(c.parse_error.as_deref(), Some("empty statement"), "{sql:?}");
        }
    }

    #[test]
    fn oversized_input_is_unparsed_with_reason() {
        let c = classify_with_limit("SELECT 1", PG, 4);
        assert_eq!(c.classes, set(&[Unparsed]));
        assert!(c.parse_error.is_some_and(|e| e.contains("over the limit")));
    }

    #[test]
    fn set_config_of_role_is_a_role_switch() {
        assert_eq!(classes("SELECT set_config('role', 'admin', false)", PG), set(&[Read, ServerAdmin, RoleSwitch]));
        assert_eq!(classes("SELECT set_config('search_path', 'x', false)", PG), set(&[Read, ServerAdmin]));
    }

    #[test]
    fn sql_in_dblink_argument_is_classified() {
        assert_eq!(classes("SELECT dblink_exec('dbname=x', 'DROP TABLE t')", PG), set(&[Read, ServerAdmin, Drop]));
    }

    #[test]
    fn do_block_body_is_scanned() {
        assert_eq!(
            classes("DO $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$", PG),
            set(&[Unparsed, Procedural, FileAccess])
        );
    }

    #[test]
    fn deep_expression_chains_do_not_overflow_the_stack() {
        // Left-deep chains are not bounded by the parser's recursion limit.
        let sql = format!("SELECT 1{}", "+1".repeat(100_000));
        assert_eq!(classes(&sql, PG), set(&[Read]));
    }
}
