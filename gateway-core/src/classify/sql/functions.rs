//! The one table of dangerous names: functions (and a few relations) whose mere use gives an input
//! a class, whatever the statement around them.
//!
//! Matching is on the lower-cased *last* part of a name, so `pg_catalog.pg_read_file`,
//! `"pg_read_file"` and `PG_READ_FILE` all match, and so does `myschema.pg_read_file` (a user
//! function shadowing a dangerous name is flagged too: fail closed). `prefix` entries match every
//! name that starts with them (`dblink` covers `dblink_exec`, `dblink_connect_u`, ...).
//!
//! The same table drives both the AST walk and the token scan, so the two can never disagree about
//! what is dangerous.

use crate::classify::SqlClass;

/// One entry of the table.
#[derive(Debug)]
pub(crate) struct DangerousName {
    /// Lower-case name (or prefix).
    pub name: &'static str,
    /// Whether `name` is a prefix rather than a whole name.
    pub prefix: bool,
    /// Classes the input gets when the name is called (or, for relations, referenced).
    pub classes: &'static [SqlClass],
    /// Whether string-literal arguments are SQL text the function runs: those literals are
    /// classified too and their classes merged (`dblink_exec(conn, 'DROP TABLE t')`).
    pub runs_sql: bool,
}

const FILE: &[SqlClass] = &[SqlClass::FileAccess];
const ADMIN: &[SqlClass] = &[SqlClass::ServerAdmin];
const FILE_ADMIN: &[SqlClass] = &[SqlClass::FileAccess, SqlClass::ServerAdmin];
const CODE: &[SqlClass] = &[SqlClass::Procedural];

const fn exact(name: &'static str, classes: &'static [SqlClass]) -> DangerousName {
    DangerousName { name, prefix: false, classes, runs_sql: false }
}
const fn prefix(name: &'static str, classes: &'static [SqlClass]) -> DangerousName {
    DangerousName { name, prefix: true, classes, runs_sql: false }
}
const fn runs_sql(name: &'static str, prefix: bool, classes: &'static [SqlClass]) -> DangerousName {
    DangerousName { name, prefix, classes, runs_sql: true }
}

/// Dangerous functions. Keep it sorted by engine, then by class.
pub(crate) const DANGEROUS_FUNCTIONS: &[DangerousName] = &[
    // --- Postgres: server-side files (superuser or pg_read_server_files / pg_write_server_files).
    prefix("pg_read_", FILE), // pg_read_file, pg_read_binary_file
    exact("pg_stat_file", FILE),
    prefix("pg_ls_", FILE), // pg_ls_dir, pg_ls_logdir, pg_ls_waldir, pg_ls_tmpdir, pg_ls_archive_statusdir, ...
    exact("pg_current_logfile", FILE), // reads $PGDATA/current_logfiles
    exact("lo_import", FILE), // server file -> large object
    exact("lo_export", FILE), // large object -> server file (arbitrary write)
    prefix("pg_file_", FILE), // adminpack: pg_file_write/rename/unlink/sync/read/length
    exact("pg_logdir_ls", FILE), // adminpack
    exact("pg_show_all_file_settings", FILE), // parses postgresql.conf (view pg_file_settings)
    exact("pg_hba_file_rules", FILE), // parses pg_hba.conf
    exact("pg_ident_file_mappings", FILE), // parses pg_ident.conf
    // lo_get / lo_put / loread / lowrite only touch large objects stored in the database, not
    // files: they are deliberately NOT here (the lo_import that filled the object is).
    //
    // --- Postgres: server administration.
    exact("pg_terminate_backend", ADMIN),
    exact("pg_cancel_backend", ADMIN),
    exact("pg_reload_conf", ADMIN),
    exact("pg_rotate_logfile", ADMIN),
    exact("pg_promote", ADMIN),
    exact("pg_switch_wal", ADMIN),
    exact("pg_switch_xlog", ADMIN),
    exact("pg_create_restore_point", ADMIN),
    exact("pg_start_backup", ADMIN),
    exact("pg_stop_backup", ADMIN),
    exact("pg_backup_start", ADMIN),
    exact("pg_backup_stop", ADMIN),
    prefix("pg_wal_replay_", ADMIN),
    prefix("pg_xlog_replay_", ADMIN),
    exact("pg_create_physical_replication_slot", ADMIN),
    exact("pg_create_logical_replication_slot", ADMIN),
    exact("pg_drop_replication_slot", ADMIN),
    prefix("pg_copy_", ADMIN), // pg_copy_physical/logical_replication_slot
    exact("pg_replication_slot_advance", ADMIN),
    exact("pg_sync_replication_slots", ADMIN),
    prefix("pg_logical_slot_", ADMIN), // get/peek changes: consumes or reads the whole WAL stream
    exact("pg_logical_emit_message", ADMIN),
    prefix("pg_replication_origin_", ADMIN),
    exact("pg_log_backend_memory_contexts", ADMIN),
    exact("pg_log_standby_snapshot", ADMIN),
    prefix("pg_stat_reset", ADMIN), // pg_stat_reset, _shared, _single_table_counters, _slru, ...
    exact("pg_stat_statements_reset", ADMIN),
    exact("pg_import_system_collations", ADMIN),
    // set_config can change any user-settable parameter, including `role` and
    // `session_authorization` (the walker adds role_switch for those).
    exact("set_config", ADMIN),
    // dblink: opens connections from the server, and runs its SQL argument there.
    runs_sql("dblink", true, ADMIN),
    // Functions that run SQL passed as text: dynamic SQL hides from the walk, so they are
    // `procedural`, and literal arguments are classified too.
    runs_sql("query_to_xml", false, CODE),
    runs_sql("query_to_xmlschema", false, CODE),
    runs_sql("query_to_xml_and_xmlschema", false, CODE),
    runs_sql("ts_stat", false, CODE),
    runs_sql("run_command_on_workers", false, CODE), // Citus
    //
    // --- MySQL / MariaDB.
    exact("load_file", FILE),
    // lib_mysqludf_sys: run shell commands (there is no shell-execution class: server_admin).
    exact("sys_exec", ADMIN),
    exact("sys_eval", ADMIN),
    //
    // --- SQLite (extensions of the CLI / common builds).
    exact("load_extension", FILE_ADMIN), // loads and runs a native library
    exact("readfile", FILE),
    exact("writefile", FILE),
    exact("lsdir", FILE),
    exact("fsdir", FILE),
    exact("edit", FILE_ADMIN), // runs $EDITOR on the server
    exact("zipfile", FILE),
];

/// Relations whose mere reading touches server files: views over the config-file parsers.
pub(crate) const DANGEROUS_RELATIONS: &[DangerousName] =
    &[exact("pg_file_settings", FILE), exact("pg_hba_file_rules", FILE), exact("pg_ident_file_mappings", FILE)];

fn lookup<'t>(table: &'t [DangerousName], last_part_lower: &str) -> Option<&'t DangerousName> {
    table.iter().find(|d| if d.prefix { last_part_lower.starts_with(d.name) } else { last_part_lower == d.name })
}

/// The entry for a function, by the lower-cased last part of its name.
pub(crate) fn dangerous_function(last_part_lower: &str) -> Option<&'static DangerousName> {
    lookup(DANGEROUS_FUNCTIONS, last_part_lower)
}

/// The entry for a relation, by the lower-cased last part of its name.
pub(crate) fn dangerous_relation(last_part_lower: &str) -> Option<&'static DangerousName> {
    lookup(DANGEROUS_RELATIONS, last_part_lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_lower_case_and_unique() {
        for table in [DANGEROUS_FUNCTIONS, DANGEROUS_RELATIONS] {
            let mut seen = std::collections::BTreeSet::new();
            for d in table {
                assert_eq!(d.name, d.name.to_ascii_lowercase(), "{}", d.name);
                assert!(!d.classes.is_empty(), "{}", d.name);
                assert!(seen.insert(d.name), "duplicate {}", d.name);
            }
        }
    }

    #[test]
    fn prefix_entries_cover_the_family_and_exact_entries_do_not() {
        assert!(dangerous_function("dblink_connect_u").is_some());
        assert!(dangerous_function("pg_read_binary_file").is_some());
        assert!(dangerous_function("pg_ls_waldir").is_some());
        assert!(dangerous_function("load_file").is_some());
        assert!(dangerous_function("load_files").is_none());
        assert!(dangerous_function("count").is_none());
        assert!(dangerous_function("lo_get").is_none());
    }
}
