//! TEMPORARY STUB — replaced by the real classifier.
use super::{Dialect, SqlClass};
use std::collections::BTreeSet;
pub const DEFAULT_MAX_SQL_BYTES: usize = 256 * 1024;
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SqlClassification {
    pub classes: BTreeSet<SqlClass>,
    pub tables: BTreeSet<String>,
    pub functions: BTreeSet<String>,
    pub statements: usize,
    pub parse_error: Option<String>,
}
pub fn classify(sql: &str, dialect: Dialect) -> SqlClassification {
    classify_with_limit(sql, dialect, DEFAULT_MAX_SQL_BYTES)
}
pub fn classify_with_limit(sql: &str, _dialect: Dialect, _max: usize) -> SqlClassification {
    let u = sql.trim().to_ascii_uppercase();
    let c = if u.starts_with("SELECT") {
        SqlClass::Read
    } else if u.starts_with("DROP") {
        SqlClass::Drop
    } else if u.starts_with("DELETE") && !u.contains("WHERE") {
        SqlClass::DeleteWithoutWhere
    } else if u.starts_with("INSERT") {
        SqlClass::Insert
    } else {
        SqlClass::Unparsed
    };
    SqlClassification { classes: [c].into(), statements: 1, ..Default::default() }
}
