//! The AST walk: a `Visitor` over every node of every statement, nested ones included (DML in
//! CTEs, the statement under EXPLAIN ANALYZE or PREPARE, bodies of procedures), and every
//! expression (so a function called in a subquery, CASE, ORDER BY, VALUES or INSERT ... SELECT is
//! seen).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, CommentObject, CopySource, CopyTarget, DiscardObject, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, GrantObjects, ObjectName, ObjectType, Reset, Select, Set, SetExpr, Statement,
    TableFactor, Value, Visitor,
};

use super::functions::{dangerous_function, dangerous_relation};
use crate::classify::{Dialect, SqlClass};

/// How deep SQL carried in string arguments (`dblink_exec(c, 'DELETE ...')`) is followed.
const MAX_EMBEDDED_DEPTH: usize = 1;

pub(crate) struct Walker {
    dialect: Dialect,
    /// 0 for the input itself, 1 for SQL found in a string argument of it, ...
    depth: usize,
    max_bytes: usize,
    pub classes: BTreeSet<SqlClass>,
    pub tables: BTreeSet<String>,
    pub functions: BTreeSet<String>,
    /// Non-zero while below a plain EXPLAIN: the statement under it is not run, so its own class
    /// does not count (the functions in it still do, as the token scan sees them anyway).
    suppress: usize,
    /// For each statement being visited: whether it raised `suppress`.
    stack: Vec<bool>,
    /// The name of a table function (`FROM pg_ls_dir('.')`), which the visitor also reports as a
    /// relation: it is a function, not a table. Kept as an address, only ever compared.
    table_function: Option<usize>,
    /// How many classes `add` was asked for: tells whether a statement got any.
    added: usize,
}

impl Walker {
    pub(crate) fn new(dialect: Dialect, depth: usize, max_bytes: usize) -> Self {
        Walker {
            dialect,
            depth,
            max_bytes,
            classes: BTreeSet::new(),
            tables: BTreeSet::new(),
            functions: BTreeSet::new(),
            suppress: 0,
            stack: Vec::new(),
            table_function: None,
            added: 0,
        }
    }

    fn add(&mut self, class: SqlClass) {
        self.added += 1;
        self.classes.insert(class);
    }

    /// The classes a statement has by its kind alone (not counting what is nested in it).
    fn statement_classes(&mut self, s: &Statement) {
        use SqlClass::*;
        let before = self.added;
        match s {
            // `WITH ... INSERT/UPDATE/DELETE/MERGE` parses as a query whose body is that statement:
            // the nested statement brings its own class, like INSERT ... SELECT it is not a read.
            Statement::Query(q) => {
                if !matches!(*q.body, SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_))
                {
                    self.add(Read)
                } else {
                    self.added += 1; // no class of its own, by design: not `other`
                }
            }
            Statement::Insert(_) => self.add(Insert),
            Statement::Update(u) => self.add(if u.selection.is_some() { Update } else { UpdateWithoutWhere }),
            // Only a WHERE bounds a DELETE: USING (or a join) without WHERE removes every row that
            // joins, and MySQL's ORDER BY ... LIMIT n is no bound on what an agent may ask for.
            // `WHERE true` / `WHERE 1=1` is accepted as "with WHERE": recognising tautologies is
            // a game without end, and the policy can require approval for any DELETE anyway.
            Statement::Delete(d) => self.add(if d.selection.is_some() { Delete } else { DeleteWithoutWhere }),
            Statement::Merge(_) => self.add(Merge),
            Statement::Drop { object_type, .. } => {
                self.add(Drop);
                if matches!(object_type, ObjectType::Role | ObjectType::User) {
                    self.add(Privilege); // dropping a role changes who may do what
                }
            }
            Statement::DropPolicy(_) => {
                self.add(Drop);
                self.add(Privilege); // row-level security policy
            }
            Statement::DropFunction(_)
            | Statement::DropDomain(_)
            | Statement::DropProcedure { .. }
            | Statement::DropSecret { .. }
            | Statement::DropConnector { .. }
            | Statement::DropExtension(_)
            | Statement::DropOperator(_)
            | Statement::DropOperatorFamily(_)
            | Statement::DropOperatorClass(_)
            | Statement::DropTrigger(_) => self.add(Drop),
            Statement::Truncate(_) => self.add(Truncate),
            Statement::Grant(_)
            | Statement::Revoke(_)
            | Statement::Deny(_)
            | Statement::CreateRole(_)
            | Statement::CreateUser(_)
            | Statement::AlterRole { .. }
            | Statement::AlterUser(_) => self.add(Privilege),
            Statement::CreatePolicy(_) | Statement::AlterPolicy(_) => {
                self.add(Ddl);
                self.add(Privilege);
            }
            Statement::AlterTable(t) => {
                self.add(Ddl);
                for op in &t.operations {
                    match op {
                        // These destroy data as surely as a DROP TABLE.
                        AlterTableOperation::DropColumn { .. } | AlterTableOperation::DropPartitions { .. } => {
                            self.add(Drop)
                        }
                        AlterTableOperation::OwnerTo { .. }
                        | AlterTableOperation::DisableRowLevelSecurity
                        | AlterTableOperation::NoForceRowLevelSecurity => self.add(Privilege),
                        _ => {}
                    }
                }
            }
            Statement::CreateView(_)
            | Statement::CreateTable(_)
            | Statement::CreateVirtualTable { .. }
            | Statement::CreateIndex(_)
            | Statement::CreateSecret { .. }
            | Statement::CreateServer(_)
            | Statement::CreateConnector(_)
            | Statement::CreateOperator(_)
            | Statement::CreateOperatorFamily(_)
            | Statement::CreateOperatorClass(_)
            | Statement::CreateTextSearch(_)
            | Statement::CreateExtension(_)
            | Statement::CreateCollation(_)
            | Statement::CreateSchema { .. }
            | Statement::CreateDatabase { .. }
            | Statement::CreateFunction(_)
            | Statement::CreateTrigger(_)
            | Statement::CreateProcedure { .. }
            | Statement::CreateMacro { .. }
            | Statement::CreateStage { .. }
            | Statement::CreateFileFormat { .. }
            | Statement::CreateWarehouse(_)
            | Statement::CreateSequence { .. }
            | Statement::CreateDomain(_)
            | Statement::CreateType { .. }
            | Statement::AlterSchema(_)
            | Statement::AlterIndex { .. }
            | Statement::AlterView { .. }
            | Statement::AlterFunction(_)
            | Statement::AlterType(_)
            | Statement::AlterCollation(_)
            | Statement::AlterOperator(_)
            | Statement::AlterOperatorFamily(_)
            | Statement::AlterOperatorClass(_)
            | Statement::AlterTextSearch(_)
            | Statement::AlterConnector { .. }
            | Statement::Comment { .. }
            | Statement::RenameTable(_) => self.add(Ddl),
            Statement::Copy { to, target, .. } => {
                self.add(if *to { Read } else { Insert });
                match target {
                    CopyTarget::Stdin | CopyTarget::Stdout => {}
                    CopyTarget::File { .. } => self.add(FileAccess),
                    CopyTarget::Program { .. } => self.add(CopyProgram),
                }
            }
            Statement::CopyIntoSnowflake { .. }
            | Statement::Unload { .. }
            | Statement::Directory { .. }
            | Statement::ExportData(_)
            | Statement::LoadData { .. }
            | Statement::Put { .. }
            | Statement::List(_)
            | Statement::Remove(_)
            | Statement::AttachDatabase { .. }
            | Statement::AttachDuckDBDatabase { .. } => self.add(FileAccess),
            Statement::Set(set) => self.set_classes(set),
            Statement::Reset(r) => match (&r.reset, self.dialect) {
                // MySQL's RESET is RESET MASTER / REPLICA / PERSIST / QUERY CACHE: server-wide.
                (_, Dialect::Mysql) => self.add(ServerAdmin),
                (Reset::SessionAuthorization, _) => self.add(RoleSwitch),
                (Reset::ConfigurationParameter(name), _) if is_role_variable(name) => self.add(RoleSwitch),
                _ => self.add(SessionSetting),
            },
            Statement::Use(_) | Statement::AlterSession { .. } | Statement::Deallocate { .. } => {
                self.add(SessionSetting)
            }
            Statement::DetachDuckDBDatabase { .. } => self.add(SessionSetting),
            Statement::Discard { object_type } => {
                self.add(SessionSetting);
                // DISCARD ALL runs SET SESSION AUTHORIZATION DEFAULT: back to the login identity.
                if matches!(object_type, DiscardObject::ALL) {
                    self.add(RoleSwitch);
                }
            }
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => self.add(Transaction),
            Statement::Call(_)
            | Statement::Execute { .. }
            | Statement::Prepare { .. }
            | Statement::Case(_)
            | Statement::If(_)
            | Statement::While(_)
            | Statement::Raise(_)
            | Statement::Assert { .. }
            | Statement::RaisError { .. }
            | Statement::Throw(_)
            | Statement::Print(_)
            | Statement::WaitFor(_)
            | Statement::Return(_) => self.add(Procedural),
            Statement::Declare { stmts } => {
                // DECLARE c CURSOR FOR SELECT ... reads; other DECLAREs belong to procedural code.
                self.add(if stmts.iter().any(|d| d.for_query.is_some()) { Read } else { Procedural })
            }
            Statement::Fetch { .. } => self.add(Read),
            Statement::Vacuum(_)
            | Statement::Analyze(_)
            | Statement::Lock(_)
            | Statement::LockTables { .. }
            | Statement::UnlockTables
            | Statement::OptimizeTable { .. }
            | Statement::Msck(_) => self.add(Maintenance),
            Statement::Kill { .. } | Statement::Flush { .. } => self.add(ServerAdmin),
            // Postgres LOAD 'library' / DuckDB INSTALL/LOAD: native code into the server.
            Statement::Load { .. } | Statement::Install { .. } => self.add(ServerAdmin),
            Statement::Pragma { name, value, .. } => {
                let name = last_part(name);
                self.add(if value.is_none() || READ_ONLY_PRAGMAS.contains(&name.as_str()) {
                    Read
                } else {
                    SessionSetting
                })
            }
            Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowProcessList { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. } => self.add(Read),
            // Cursors, LISTEN/NOTIFY, caching hints: nothing above applies.
            _ => {}
        }
        if self.added == before {
            self.add(Other); // parsed, but none of the classes applies
        }
    }

    fn set_classes(&mut self, set: &Set) {
        use SqlClass::*;
        match set {
            Set::SetRole { .. } | Set::SetSessionAuthorization(_) => self.add(RoleSwitch),
            Set::SingleAssignment { scope, variable, .. } => self.set_variable(scope.as_ref(), variable),
            Set::ParenthesizedAssignments { variables, .. } => {
                for v in variables {
                    self.set_variable(None, v);
                }
            }
            Set::MultipleAssignments { assignments } => {
                for a in assignments {
                    self.set_variable(a.scope.as_ref(), &a.name);
                }
            }
            _ => self.add(SessionSetting),
        }
    }

    fn set_variable(&mut self, scope: Option<&sqlparser::ast::ContextModifier>, variable: &ObjectName) {
        use SqlClass::*;
        if is_role_variable(variable) {
            // Postgres: SET role = x, SET session_authorization = x are SET ROLE / SESSION AUTHORIZATION.
            self.add(RoleSwitch);
            return;
        }
        self.add(SessionSetting);
        let first =
            variable.0.first().and_then(|p| p.as_ident()).map(|i| i.value.to_ascii_lowercase()).unwrap_or_default();
        let server_wide = matches!(scope, Some(sqlparser::ast::ContextModifier::Global))
            || first.starts_with("@@global")
            || first.starts_with("@@persist");
        if server_wide {
            // SET GLOBAL general_log_file = '/var/www/x.php' is a classic file write.
            self.add(ServerAdmin);
        }
        if self.dialect == Dialect::Mysql && last_part(variable) == "password" {
            self.add(Privilege); // SET PASSWORD = '...'
        }
    }

    /// Tables named by statements whose names the visitor does not report as relations.
    fn statement_tables(&mut self, s: &Statement) {
        let mut add = |name: &ObjectName| {
            self.tables.insert(full_name(name));
        };
        match s {
            Statement::Drop {
                object_type: ObjectType::Table | ObjectType::View | ObjectType::MaterializedView,
                names,
                ..
            } => names.iter().for_each(&mut add),
            Statement::Copy { source: CopySource::Table { table_name, .. }, .. } => add(table_name),
            Statement::Vacuum(v) => v.table_name.iter().for_each(&mut add),
            Statement::Comment { object_type: CommentObject::Table, object_name, .. } => add(object_name),
            Statement::Grant(g) => {
                if let Some(GrantObjects::Tables(t) | GrantObjects::Views(t)) = &g.objects {
                    t.iter().for_each(&mut add)
                }
            }
            Statement::Revoke(r) => {
                if let Some(GrantObjects::Tables(t) | GrantObjects::Views(t)) = &r.objects {
                    t.iter().for_each(&mut add)
                }
            }
            Statement::RenameTable(renames) => {
                for r in renames {
                    add(&r.old_name);
                    add(&r.new_name);
                }
            }
            Statement::LockTables { tables } => {
                for t in tables {
                    self.tables.insert(t.table.value.to_lowercase());
                }
            }
            _ => {}
        }
    }

    /// A function call anywhere: record it, and apply the dangerous-name table.
    fn note_function(&mut self, name: &ObjectName, args: &[FunctionArg]) {
        let full = full_name(name);
        let last = last_part(name);
        self.functions.insert(full);
        let Some(d) = dangerous_function(&last) else {
            return;
        };
        self.classes.extend(d.classes.iter().copied());
        if last == "set_config" {
            // set_config('role', ...) is SET ROLE; a non-literal parameter name could be too.
            let first = args.first().and_then(literal_arg);
            if first.is_none_or(|p| is_role_name(&p.to_ascii_lowercase())) {
                self.add(SqlClass::RoleSwitch);
            }
        }
        if d.runs_sql && self.depth < MAX_EMBEDDED_DEPTH {
            for text in args.iter().filter_map(literal_arg) {
                let inner = super::classify_at_depth(text, self.dialect, self.max_bytes, self.depth + 1);
                // Merged, but see `counts_when_embedded` for what does not carry over.
                self.classes.extend(inner.classes.into_iter().filter(|c| super::counts_when_embedded(*c)));
                self.tables.extend(inner.tables);
                self.functions.extend(inner.functions);
            }
        }
    }
}

/// SQLite pragmas that only report.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "database_list",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "compile_options",
    "integrity_check",
    "quick_check",
];

fn is_role_name(lower: &str) -> bool {
    lower == "role" || lower == "session_authorization"
}

fn is_role_variable(name: &ObjectName) -> bool {
    is_role_name(&last_part(name))
}

/// Lower-cased parts joined with `.`, quotes removed: `"Public".Users` -> `public.users`.
pub(crate) fn full_name(name: &ObjectName) -> String {
    let mut out = String::new();
    for (i, part) in name.0.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match part.as_ident() {
            Some(ident) => out.push_str(&ident.value.to_lowercase()),
            None => out.push_str(&part.to_string().to_lowercase()),
        }
    }
    out
}

fn last_part(name: &ObjectName) -> String {
    match name.0.last() {
        Some(part) => match part.as_ident() {
            Some(ident) => ident.value.to_lowercase(),
            None => part.to_string().to_lowercase(),
        },
        None => String::new(),
    }
}

/// The text of a string-literal argument.
fn literal_arg(arg: &FunctionArg) -> Option<&str> {
    let expr = match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
        | FunctionArg::Named { arg: FunctionArgExpr::Expr(e), .. }
        | FunctionArg::ExprNamed { arg: FunctionArgExpr::Expr(e), .. } => e,
        _ => return None,
    };
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::NationalStringLiteral(s)
            | Value::UnicodeStringLiteral(s) => Some(s),
            Value::DollarQuotedString(d) => Some(&d.value),
            _ => None,
        },
        _ => None,
    }
}

fn address(name: &ObjectName) -> usize {
    std::ptr::from_ref(name) as usize
}

fn function_args(f: &Function) -> &[FunctionArg] {
    match &f.args {
        FunctionArguments::List(list) => &list.args,
        _ => &[],
    }
}

/// EXPLAIN runs its statement with ANALYZE, spelled `EXPLAIN ANALYZE` or `EXPLAIN (ANALYZE ...)`.
/// Any ANALYZE option counts, even `(ANALYZE false)`: stricter, never laxer.
fn explain_executes(analyze: bool, options: Option<&Vec<sqlparser::ast::UtilityOption>>) -> bool {
    analyze || options.is_some_and(|o| o.iter().any(|o| o.name.value.eq_ignore_ascii_case("analyze")))
}

impl Visitor for Walker {
    type Break = ();

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        let quiet_below = match s {
            Statement::Explain { analyze, options, .. } => !explain_executes(*analyze, options.as_ref()),
            _ => false,
        };
        if self.suppress == 0 {
            self.statement_classes(s);
        }
        if let Statement::Call(f) = s {
            self.note_function(&f.name, function_args(f));
        }
        self.statement_tables(s);
        self.stack.push(quiet_below);
        if quiet_below {
            self.suppress += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _s: &Statement) -> ControlFlow<()> {
        if self.stack.pop() == Some(true) {
            self.suppress = self.suppress.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() && self.suppress == 0 {
            // Postgres/SQLite SELECT ... INTO t creates table t; MySQL SELECT ... INTO @v sets a
            // variable (INTO OUTFILE/DUMPFILE does not parse, the token scan catches it).
            self.add(if self.dialect == Dialect::Mysql { SqlClass::SessionSetting } else { SqlClass::Ddl });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        match tf {
            TableFactor::Table { name, args: Some(args), .. } => {
                self.table_function = Some(address(name));
                self.note_function(name, &args.args);
            }
            TableFactor::Function { name, args, .. } => self.note_function(name, args),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if self.table_function == Some(address(relation)) {
            self.table_function = None;
            return ControlFlow::Continue(());
        }
        self.tables.insert(full_name(relation));
        if let Some(d) = dangerous_relation(&last_part(relation)) {
            self.classes.extend(d.classes.iter().copied());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            self.note_function(&f.name, function_args(f));
        }
        ControlFlow::Continue(())
    }
}
