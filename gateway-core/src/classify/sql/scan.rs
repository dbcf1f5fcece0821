//! Everything below the parser: MySQL executable-comment unwrapping, the token scan that runs on
//! every input, and the raw-text scan that runs on inputs the parser rejected.

use std::borrow::Cow;
use std::collections::BTreeSet;

use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

use super::functions::dangerous_function;
use crate::classify::{Dialect, SqlClass};

/// What the token scan found.
#[derive(Debug, Default)]
pub(crate) struct TokenFindings {
    pub classes: BTreeSet<SqlClass>,
    /// Dangerous functions seen called (lower-cased, last part of the name).
    pub functions: BTreeSet<String>,
    /// Tokens other than whitespace and comments: an upper bound on how deep the AST can be.
    pub significant: usize,
    /// Why the parser's view of the input cannot be trusted even if it parses.
    pub distrust: Option<String>,
    /// What the first words of the statements announce: used only if the parse fails.
    pub start_classes: BTreeSet<SqlClass>,
}

// ---------------------------------------------------------------------------------------------
// MySQL executable comments
// ---------------------------------------------------------------------------------------------

/// MySQL runs the content of `/*! ... */` and `/*!NNNNN ... */` (and MariaDB that of
/// `/*M! ... */`): remove the markers, keep the content, so the parser classifies what the server
/// runs. The version number is ignored: whatever some server version would run counts.
///
/// MySQL lexes the content as SQL (a `*/` inside a string in it does not close the comment), so
/// this walks strings, identifiers and comments the way MySQL does. Whatever MySQL versions treat
/// differently (a comment, `--` or `#`, nested inside the executable one) or that does not close
/// is refused: the caller then classifies the input `unparsed`.
pub(crate) fn unwrap_mysql_executable_comments(sql: &str) -> Result<Cow<'_, str>, String> {
    let b = sql.as_bytes();
    let mut out: Option<String> = None; // allocated on the first executable comment only
    let mut copied = 0; // bytes of `sql` already copied to `out`
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => i = skip_quoted(b, i, q, true),
            b'`' => i = skip_quoted(b, i, b'`', false),
            b'#' => i = skip_line(b, i),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                if let Some(why) = ambiguous_dash_comment(sql, i) {
                    return Err(why);
                }
                i = if dash_comment_starts(b, i) { skip_line(b, i) } else { i + 2 };
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let marker_len = match (b.get(i + 2), b.get(i + 3)) {
                    (Some(b'!'), _) => 3,
                    (Some(b'M' | b'm'), Some(b'!')) => 4,
                    _ => 0,
                };
                if marker_len == 0 {
                    // An ordinary comment: MySQL does not nest them, it ends at the first `*/`.
                    i = match find(b, i + 2, b"*/") {
                        Some(end) => end + 2,
                        None => b.len(),
                    };
                    continue;
                }
                let mut start = i + marker_len;
                while start < b.len() && b[start].is_ascii_digit() {
                    start += 1;
                }
                let end = executable_comment_end(sql, start)?;
                let buf = out.get_or_insert_with(|| String::with_capacity(sql.len()));
                buf.push_str(slice(sql, copied, i)?);
                buf.push(' ');
                buf.push_str(slice(sql, start, end)?);
                buf.push(' ');
                i = end + 2;
                copied = i;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Ok(Cow::Borrowed(sql)),
        Some(mut buf) => {
            buf.push_str(slice(sql, copied, sql.len())?);
            Ok(Cow::Owned(buf))
        }
    }
}

/// Where the `*/` closing an executable comment whose content starts at `start` is.
fn executable_comment_end(sql: &str, start: usize) -> Result<usize, String> {
    const UNSAFE: &str = "MySQL executable comment cannot be unwrapped safely";
    let b = sql.as_bytes();
    let mut i = start;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => i = skip_quoted(b, i, q, true),
            b'`' => i = skip_quoted(b, i, b'`', false),
            b'*' if b.get(i + 1) == Some(&b'/') => return Ok(i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                return Err(format!("{UNSAFE}: it contains another comment"));
            }
            b'#' => return Err(format!("{UNSAFE}: it contains a '#' comment")),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                return Err(format!("{UNSAFE}: it contains a '--' comment"));
            }
            _ => i += 1,
        }
    }
    Err("unterminated MySQL executable comment".to_string())
}

/// MySQL takes `--` as a comment only when followed by a space or control character; sqlparser
/// when followed by any Unicode whitespace. Where they differ (`--` + U+2003 ...) the parser could
/// take for a comment what MySQL runs: refuse.
fn ambiguous_dash_comment(sql: &str, i: usize) -> Option<String> {
    let next = sql.get(i + 2..)?.chars().next()?;
    (next.is_whitespace() && !next.is_ascii())
        .then(|| format!("'--' followed by {next:?}: MySQL and the parser disagree on comments"))
}

fn dash_comment_starts(b: &[u8], i: usize) -> bool {
    b.get(i + 2).is_some_and(|c| c.is_ascii_whitespace() || c.is_ascii_control())
}

/// Index just past the string / quoted identifier opening at `i` (or the end if unterminated).
fn skip_quoted(b: &[u8], i: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if backslash_escapes && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2; // doubled quote
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

fn skip_line(b: &[u8], i: usize) -> usize {
    find(b, i, b"\n").map_or(b.len(), |n| n + 1)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// `sql[from..to]` without a panic path (the indices are always at ASCII bytes).
fn slice(sql: &str, from: usize, to: usize) -> Result<&str, String> {
    sql.get(from..to).ok_or_else(|| "internal error: bad slice while unwrapping".to_string())
}

// ---------------------------------------------------------------------------------------------
// Token scan
// ---------------------------------------------------------------------------------------------

fn is_kw(t: Option<&&Token>, kw: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn is_any_kw(t: Option<&&Token>, kws: &[&str]) -> bool {
    kws.iter().any(|k| is_kw(t, k))
}

fn is_string(t: Option<&&Token>) -> bool {
    t.is_some_and(|t| string_of(t).is_some())
}

/// The text of a string-literal token.
pub(crate) fn string_of(t: &Token) -> Option<&str> {
    match t {
        Token::SingleQuotedString(s)
        | Token::DoubleQuotedString(s)
        | Token::EscapedStringLiteral(s)
        | Token::NationalStringLiteral(s)
        | Token::UnicodeStringLiteral(s)
        | Token::TripleSingleQuotedString(s)
        | Token::TripleDoubleQuotedString(s) => Some(s),
        Token::DollarQuotedString(d) => Some(&d.value),
        _ => None,
    }
}

fn is_role_variable(t: Option<&&Token>) -> bool {
    // `SET ROLE x`, `SET role = x`, `SET "role" TO x`, `SET session_authorization = x`: any quoting.
    matches!(t, Some(Token::Word(w))
        if w.value.eq_ignore_ascii_case("role") || w.value.eq_ignore_ascii_case("session_authorization"))
}

/// How many levels of code-in-strings the token scan looks into.
const MAX_EMBEDDED_SCAN_DEPTH: usize = 2;

/// What the scans need to know besides the tokens.
pub(crate) struct ScanContext<'a> {
    pub dialect: Dialect,
    pub parser_dialect: &'a dyn sqlparser::dialect::Dialect,
    /// 0 for the input itself, 1 for code embedded in it (bodies of DO blocks and functions,
    /// PREPARE texts), which is looked into once, not recursively.
    pub depth: usize,
    pub max_bytes: usize,
}

/// Scan the tokens of one input.
pub(crate) fn scan_tokens(tokens: &[TokenWithSpan], cx: &ScanContext<'_>, out: &mut TokenFindings) {
    let dialect = cx.dialect;
    if dialect == Dialect::Postgres {
        check_unicode_identifiers(tokens, out);
    }
    let toks: Vec<&Token> = tokens.iter().map(|t| &t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    out.significant += toks.len();
    if cx.depth == 0 {
        out.start_classes = statement_start_classes(&toks, dialect);
    }

    let mut stmt_start = 0;
    let mut embedded_code = false; // inside a statement whose string literals are code
    for i in 0..toks.len() {
        let t = toks[i];
        if matches!(t, Token::SemiColon) {
            stmt_start = i + 1;
            embedded_code = false;
            continue;
        }
        let at = |k: usize| toks.get(k);
        // Strings of a DO/function body/PREPARE are code; inside such code, strings are usually
        // dynamic SQL (`EXECUTE 'COPY ...'`): look one level further, no more.
        if (embedded_code || cx.depth > 0)
            && cx.depth < MAX_EMBEDDED_SCAN_DEPTH
            && let Some(code) = string_of(t)
        {
            scan_embedded(code, cx, out);
        }
        let Token::Word(w) = t else { continue };
        if matches!(at(i + 1), Some(Token::LParen)) {
            note_call(&toks, i, w, out);
        }
        if w.quote_style.is_some() {
            continue;
        }
        let v = w.value.as_str();
        let eq = |k: &str| v.eq_ignore_ascii_case(k);
        let next = at(i + 1);
        // Statement-leading pairs count at the start of a statement, or after the words that open
        // a statement inside procedural code (`BEGIN SET ROLE x; ...`): elsewhere `SET role = 'x'`
        // is an UPDATE of a column named role, and `load data` a column and its alias.
        let leading = i == stmt_start
            || is_any_kw(i.checked_sub(1).and_then(|p| toks.get(p)), &["BEGIN", "THEN", "ELSE", "LOOP"]);
        if eq("INTO") && is_any_kw(next, &["OUTFILE", "DUMPFILE"]) {
            out.classes.insert(SqlClass::FileAccess);
        }
        if eq("SESSION") && is_kw(next, "AUTHORIZATION") {
            out.classes.insert(SqlClass::RoleSwitch);
        }
        if leading {
            let role_next =
                is_role_variable(next) || (is_any_kw(next, &["SESSION", "LOCAL"]) && is_role_variable(at(i + 2)));
            if eq("LOAD") && is_any_kw(next, &["DATA", "XML"]) {
                out.classes.insert(SqlClass::FileAccess);
            } else if eq("ALTER") && is_kw(next, "SYSTEM") {
                out.classes.insert(SqlClass::AlterSystem);
            } else if (eq("SET") || eq("RESET")) && role_next {
                out.classes.insert(SqlClass::RoleSwitch);
            } else if (eq("INSTALL") || eq("UNINSTALL")) && is_any_kw(next, &["PLUGIN", "COMPONENT"]) {
                out.classes.insert(SqlClass::ServerAdmin);
            }
        }
        if i != stmt_start {
            continue;
        }
        // Words that mean something only at the start of a statement.
        let stmt_end = toks[i..].iter().position(|t| matches!(t, Token::SemiColon)).map_or(toks.len(), |p| p + i);
        let rest = &toks[i + 1..stmt_end];
        if eq("KILL") || eq("SHUTDOWN") {
            out.classes.insert(SqlClass::ServerAdmin);
        } else if eq("COPY") {
            for (k, t) in rest.iter().enumerate() {
                let after = rest.get(k + 1);
                if is_kw(Some(t), "PROGRAM") && is_string(after) {
                    out.classes.insert(SqlClass::CopyProgram);
                } else if is_any_kw(Some(t), &["FROM", "TO"]) && is_string(after) {
                    out.classes.insert(SqlClass::FileAccess);
                }
            }
        } else if eq("SET") {
            // MySQL server-wide variables: SET GLOBAL x = .., SET PERSIST x = .., SET @@global.x = ..
            let server_wide = rest.iter().any(|t| match t {
                Token::Word(w) if w.quote_style.is_none() => {
                    let l = w.value.to_ascii_lowercase();
                    matches!(l.as_str(), "global" | "persist" | "persist_only")
                        || l.starts_with("@@global")
                        || l.starts_with("@@persist")
                }
                _ => false,
            });
            if server_wide {
                out.classes.insert(SqlClass::ServerAdmin);
            }
        } else if eq("DO") && dialect == Dialect::Postgres {
            out.classes.insert(SqlClass::Procedural);
            embedded_code = true;
        } else if eq("PREPARE") {
            out.classes.insert(SqlClass::Procedural);
            embedded_code = true;
            // MySQL PREPARE s FROM '<sql>': the text is plain SQL, classify it fully.
            if is_kw(rest.get(1), "FROM")
                && cx.depth == 0
                && let Some(sql) = rest.get(2).and_then(|t| string_of(t))
            {
                let inner = super::classify_at_depth(sql, dialect, cx.max_bytes, cx.depth + 1);
                out.classes.extend(inner.classes.into_iter().filter(|c| super::counts_when_embedded(*c)));
                out.functions.extend(inner.functions);
            }
        } else if eq("VACUUM") {
            // SQLite VACUUM INTO 'file' writes a copy of the database to any path.
            if rest.windows(2).any(|w| is_kw(w.first(), "INTO") && is_string(w.get(1))) {
                out.classes.insert(SqlClass::FileAccess);
            }
        } else if eq("CREATE") {
            let mut k = 0;
            if is_kw(rest.first(), "OR") && is_any_kw(rest.get(1), &["REPLACE", "ALTER"]) {
                k = 2;
            }
            embedded_code = is_any_kw(rest.get(k), &["FUNCTION", "PROCEDURE", "TRIGGER"]);
        }
    }
}

/// A word (at `i`) followed by `(`: a call, perhaps of a dangerous function. The name recorded is
/// qualified as written (`pg_catalog.pg_read_file`), like the AST walk records it.
fn note_call(toks: &[&Token], i: usize, w: &Word, out: &mut TokenFindings) {
    let last = w.value.to_lowercase();
    let Some(d) = dangerous_function(&last) else {
        return;
    };
    out.classes.extend(d.classes.iter().copied());
    // Walk back over `part .` pairs; real names have a few parts, the cap keeps this linear.
    let mut parts = vec![last];
    let mut k = i;
    while k >= 2 && parts.len() < 8 {
        match (toks[k - 1], toks[k - 2]) {
            (Token::Period, Token::Word(q)) => {
                parts.push(q.value.to_lowercase());
                k -= 2;
            }
            _ => break,
        }
    }
    parts.reverse();
    let name = parts.join(".");
    out.functions.insert(name);
}

/// Token-scan code carried in a string (a DO body, a function body, a PREPARE text).
fn scan_embedded(code: &str, cx: &ScanContext<'_>, out: &mut TokenFindings) {
    let mut tokens = Vec::new();
    // A tokenizer error only cuts the scan short: tokens before it are still scanned.
    let _ = Tokenizer::new(cx.parser_dialect, code).tokenize_with_location_into_buf(&mut tokens);
    let mut inner = TokenFindings::default();
    let inner_cx = ScanContext { depth: cx.depth + 1, ..*cx };
    scan_tokens(&tokens, &inner_cx, &mut inner);
    out.classes.append(&mut inner.classes);
    out.functions.append(&mut inner.functions);
}

/// Postgres `U&"\0070g_read_file"` is the identifier `pg_read_file`; sqlparser reads it as
/// `U & "\0070g_read_file"` and would happily classify the wrong thing. Such inputs are distrusted
/// (→ unparsed), and the decoded name still goes through the dangerous-function table.
fn check_unicode_identifiers(tokens: &[TokenWithSpan], out: &mut TokenFindings) {
    for (i, w) in tokens.windows(3).enumerate() {
        let (Token::Word(u), Token::Ampersand, Token::Word(ident)) = (&w[0].token, &w[1].token, &w[2].token) else {
            continue;
        };
        if u.quote_style.is_some() || !u.value.eq_ignore_ascii_case("u") || ident.quote_style != Some('"') {
            continue;
        }
        out.distrust = Some("Unicode-escaped identifier (U&\"...\") is not supported".to_string());
        let decoded = decode_unicode_escapes(&ident.value).to_lowercase();
        let called = tokens[i + 3..]
            .iter()
            .find(|t| !matches!(t.token, Token::Whitespace(_)))
            .is_some_and(|t| t.token == Token::LParen);
        if called && let Some(d) = dangerous_function(&decoded) {
            out.classes.extend(d.classes.iter().copied());
            out.functions.insert(decoded);
        }
    }
}

/// Decode `\XXXX`, `\+XXXXXX` and `\\` (the default escape of Postgres `U&` literals).
fn decode_unicode_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (digits, skip) =
            if let Some(plus) = after.strip_prefix('+') { (plus.get(..6), 7) } else { (after.get(..4), 4) };
        if let Some(tail) = after.strip_prefix('\\') {
            out.push('\\');
            rest = tail;
        } else if let Some(c) = digits.and_then(|d| u32::from_str_radix(d, 16).ok()).and_then(char::from_u32) {
            out.push(c);
            rest = after.get(skip..).unwrap_or("");
        } else {
            out.push('\\');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// For an input the parser rejected: the class each statement's first words announce (`DROP ...`
/// is `drop` even when the rest is beyond the parser). Only ever used on `unparsed` inputs, where
/// it can only make the verdict stricter. UPDATE and DELETE are taken as unbounded: without a
/// parse there is no telling whether the WHERE belongs to them. A `(` also starts a statement
/// here, for the DML of a CTE (`WITH d AS (DELETE ...`) or a subquery.
fn statement_start_classes(toks: &[&Token], dialect: Dialect) -> BTreeSet<SqlClass> {
    use SqlClass::*;
    let mut classes = BTreeSet::new();
    let mut at_start = true;
    for (i, t) in toks.iter().enumerate() {
        if matches!(t, Token::SemiColon | Token::LParen) {
            at_start = true;
            continue;
        }
        if !std::mem::take(&mut at_start) {
            continue;
        }
        let Token::Word(w) = t else { continue };
        if w.quote_style.is_some() {
            continue;
        }
        let next = toks.get(i + 1);
        let identity = is_any_kw(next, &["ROLE", "USER"]);
        let first = w.value.to_ascii_uppercase();
        let class = match first.as_str() {
            "SELECT" | "WITH" | "VALUES" | "TABLE" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "HANDLER" | "FETCH" => {
                Read
            }
            "INSERT" | "REPLACE" | "UPSERT" => Insert,
            "UPDATE" => UpdateWithoutWhere,
            "DELETE" => DeleteWithoutWhere,
            "MERGE" => Merge,
            "DROP" => {
                if identity {
                    classes.insert(Privilege);
                }
                Drop
            }
            "TRUNCATE" => Truncate,
            "ALTER" if is_kw(next, "SYSTEM") => continue, // alter_system, from the keyword pairs
            "CREATE" | "ALTER" | "RENAME" if identity => Privilege,
            "CREATE" | "ALTER" | "RENAME" | "COMMENT" | "IMPORT" | "SECURITY" | "REFRESH" => Ddl,
            "GRANT" | "REVOKE" | "REASSIGN" => Privilege,
            "SET" if is_any_kw(next, &["PASSWORD", "DEFAULT"]) => Privilege,
            "SET" | "RESET" | "USE" | "DISCARD" | "DEALLOCATE" => SessionSetting,
            "START" | "STOP" if is_any_kw(next, &["SLAVE", "REPLICA", "GROUP_REPLICATION"]) => ServerAdmin,
            "BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "END" | "ABORT" | "XA" => Transaction,
            "DO" if dialect != Dialect::Postgres => Read, // MySQL DO expr: a SELECT without result
            "CALL" | "DO" | "EXECUTE" | "EXEC" | "PREPARE" => Procedural,
            "VACUUM" | "ANALYZE" | "ANALYSE" | "REINDEX" | "CHECKPOINT" | "CLUSTER" | "OPTIMIZE" | "LOCK"
            | "UNLOCK" | "CHECK" | "REPAIR" => Maintenance,
            "KILL" | "SHUTDOWN" | "FLUSH" | "PURGE" | "CHANGE" | "INSTALL" | "UNINSTALL" | "RESTART" => ServerAdmin,
            "LOAD" => {
                if is_any_kw(next, &["DATA", "XML"]) {
                    FileAccess
                } else {
                    ServerAdmin
                }
            }
            "ATTACH" => FileAccess,
            _ => continue,
        };
        classes.insert(class);
    }
    classes
}

/// Whether the token stream holds nothing to run (only whitespace and comments).
pub(crate) fn only_whitespace(tokens: &[TokenWithSpan]) -> bool {
    tokens.iter().all(|t| matches!(t.token, Token::Whitespace(_)))
}

// ---------------------------------------------------------------------------------------------
// Raw-text scan (unparsed inputs only)
// ---------------------------------------------------------------------------------------------

/// When the parser rejected an input, its idea of where strings and comments are cannot be
/// trusted either (the server may lex differently: `standard_conforming_strings = off`, a
/// tokenizer gap, ...). So unparsed inputs are also scanned as plain lower-cased text, strings and
/// comments included, once as written and once with `/* */` comments removed. It only ever adds
/// classes to an input that is already `unparsed`: false positives make the verdict stricter.
pub(crate) fn scan_raw(
    sql: &str,
    dialect: Dialect,
    classes: &mut BTreeSet<SqlClass>,
    functions: &mut BTreeSet<String>,
) {
    let lower = sql.to_lowercase();
    let stripped = strip_block_comments(&lower);
    for text in [lower.as_str(), stripped.as_str()] {
        scan_raw_text(text, dialect, classes, functions);
    }
}

fn strip_block_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        out.push(' ');
        // Keep the content of executable comments: strip only their markers.
        let body = &rest[start + 2..];
        if let Some(exec) = body.strip_prefix('!').or_else(|| body.strip_prefix("m!")) {
            rest = exec.trim_start_matches(|c: char| c.is_ascii_digit());
            continue;
        }
        rest = body.find("*/").map_or("", |end| &body[end + 2..]);
    }
    out.push_str(rest);
    out.replace("*/", " ")
}

struct RawWord<'a> {
    word: &'a str,
    called: bool,          // followed by `(` (across spaces and quote characters)
    statement_start: bool, // first word of the text or after a `;`
}

fn raw_words(text: &str) -> Vec<RawWord<'_>> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '@';
    let mut words = Vec::new();
    let mut statement_start = true;
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_ident(c) || c == ';') {
        let from = &rest[start..];
        if let Some(after) = from.strip_prefix(';') {
            statement_start = true;
            rest = after;
            continue;
        }
        let len = from.find(|c: char| !is_ident(c)).unwrap_or(from.len());
        let (word, after) = from.split_at(len);
        let called =
            after.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '`' | ']')).starts_with('(');
        // Digits glued in front (`/*!50000load_file(`) are not part of a dangerous name.
        let word = word.trim_start_matches(|c: char| c.is_ascii_digit());
        if !word.is_empty() {
            words.push(RawWord { word, called, statement_start });
            statement_start = false;
        }
        rest = after;
    }
    words
}

fn scan_raw_text(text: &str, dialect: Dialect, classes: &mut BTreeSet<SqlClass>, functions: &mut BTreeSet<String>) {
    let words = raw_words(text);
    let mut copy_seen = false;
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).map_or("", |n| n.word);
        let next2 = words.get(i + 2).map_or("", |n| n.word);
        if w.called
            && let Some(d) = dangerous_function(w.word)
        {
            classes.extend(d.classes.iter().copied());
            functions.insert(w.word.to_string());
        }
        if w.statement_start {
            copy_seen = w.word == "copy";
            if matches!(w.word, "kill" | "shutdown") {
                classes.insert(SqlClass::ServerAdmin);
            }
            if w.word == "do" && dialect == Dialect::Postgres {
                classes.insert(SqlClass::Procedural);
            }
        }
        let role = |x: &str| x == "role" || x == "session_authorization";
        match (w.word, next) {
            ("into", "outfile" | "dumpfile") | ("load", "data" | "xml") => {
                classes.insert(SqlClass::FileAccess);
            }
            ("alter", "system") => {
                classes.insert(SqlClass::AlterSystem);
            }
            ("session", "authorization") => {
                classes.insert(SqlClass::RoleSwitch);
            }
            ("set" | "reset", n) if role(n) || (matches!(n, "session" | "local") && role(next2)) => {
                classes.insert(SqlClass::RoleSwitch);
            }
            ("install" | "uninstall", "plugin" | "component") => {
                classes.insert(SqlClass::ServerAdmin);
            }
            ("program", _) if copy_seen => {
                classes.insert(SqlClass::CopyProgram);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrapping_keeps_the_content_and_drops_the_markers() {
        let got = unwrap_mysql_executable_comments("SELECT 1 /*!50000 , 2 */ FROM t");
        assert_eq!(got.as_deref(), Ok("SELECT 1   , 2   FROM t"));
        let got = unwrap_mysql_executable_comments("/*!DROP TABLE t*/");
        assert_eq!(got.as_deref(), Ok(" DROP TABLE t "));
        let got = unwrap_mysql_executable_comments("SELECT 1 /*M!100100 , 2 */");
        assert_eq!(got.as_deref(), Ok("SELECT 1   , 2  "));
    }

    #[test]
    fn unwrapping_ignores_markers_in_strings_and_plain_comments() {
        for sql in ["SELECT '/*!DROP TABLE t*/'", "SELECT 1 /* /*!DROP TABLE t */", "SELECT 1 -- /*!x */"] {
            assert_eq!(unwrap_mysql_executable_comments(sql).as_deref(), Ok(sql), "{sql}");
        }
    }

    #[test]
    fn unwrapping_respects_strings_inside_the_executable_comment() {
        // MySQL lexes the content: the `*/` in the string does not close the comment.
        let got = unwrap_mysql_executable_comments("SELECT 1 /*! , '*/' */");
        assert_eq!(got.as_deref(), Ok("SELECT 1   , '*/'  "));
    }

    #[test]
    fn unwrapping_refuses_what_mysql_versions_disagree_on() {
        for sql in [
            "SELECT 1 /*! -- */ , 2 */",
            "SELECT 1 /*! # */ , 2 */",
            "SELECT 1 /*! /* x */ , 2 */",
            "SELECT 1 /*! , 2",
            "SELECT 1 --\u{2003}, 2",
        ] {
            assert!(unwrap_mysql_executable_comments(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn unicode_escapes_decode() {
        assert_eq!(decode_unicode_escapes("\\0070g_read_file"), "pg_read_file");
        assert_eq!(decode_unicode_escapes("a\\+000062c\\\\"), "abc\\");
        assert_eq!(decode_unicode_escapes("bad\\zz"), "bad\\zz");
    }

    #[test]
    fn raw_scan_finds_names_strings_or_not() {
        let mut classes = BTreeSet::new();
        let mut functions = BTreeSet::new();
        scan_raw("x 'PG_READ_FILE  (' /*!50000load_file(*/", Dialect::Mysql, &mut classes, &mut functions);
        assert!(classes.contains(&SqlClass::FileAccess));
        assert!(functions.contains("pg_read_file") && functions.contains("load_file"), "{functions:?}");
        let mut classes = BTreeSet::new();
        scan_raw("select load_filex(1), xpg_read_file(2), copy", Dialect::Mysql, &mut classes, &mut functions);
        assert!(classes.is_empty(), "{classes:?}");
    }
}
