//! Unit tests named after the behaviour they specify.

use super::ShellClass::*;
use super::*;

fn classes(line: &str) -> Vec<ShellClass> {
    classify_command_line(line).classes.into_iter().collect()
}

fn argv(a: &[&str]) -> ShellClassification {
    let v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    classify_argv(&v)
}

#[test]
fn read_only_pipeline_is_exactly_read_only() {
    let c = classify_command_line("ps aux | grep nginx | head -n 5");
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![ReadOnly]);
    assert_eq!(c.commands, vec!["ps", "grep", "head"]);
    assert_eq!(c.parse_error, None);
}

#[test]
fn read_only_is_dropped_when_anything_else_runs() {
    assert_eq!(classes("ls; touch /tmp/x"), vec![FileWrite]);
}

#[test]
fn rm_hidden_in_command_substitution_is_destructive() {
    let c = classify_command_line("echo \"today is $(rm -rf /)\"");
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![DestructiveFile]);
    assert_eq!(c.commands, vec!["echo", "rm"]);
}

#[test]
fn rm_hidden_in_assignment_substitution_is_destructive() {
    assert_eq!(classes("X=$(rm -rf /)"), vec![DestructiveFile]);
}

#[test]
fn rm_hidden_in_backticks_is_destructive() {
    assert_eq!(classes("echo `rm -rf /`"), vec![DestructiveFile]);
}

#[test]
fn rm_hidden_in_process_substitution_is_destructive() {
    assert_eq!(classes("cat <(rm -rf /)"), vec![DestructiveFile]);
}

#[test]
fn variable_as_command_name_is_unparsed() {
    let c = classify_command_line("$CMD args");
    assert!(c.classes.contains(&Unparsed));
    assert!(c.parse_error.is_some());
}

#[test]
fn command_substitution_as_command_name_is_unparsed() {
    assert!(classes("$(echo rm) -rf /").contains(&Unparsed));
}

#[test]
fn sudo_cat_shadow_is_privilege_and_credential_access() {
    let c = classify_command_line("sudo cat /etc/shadow");
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![Privilege, CredentialAccess]);
    assert_eq!(c.commands, vec!["sudo", "cat"]);
}

#[test]
fn quoting_tricks_resolve_to_the_real_command() {
    for line in [
        "r''m -rf /",
        "\"r\"m -rf /",
        "\\rm -rf /",
        "'rm' -rf /",
        "$'\\x72m' -rf /",
        "$'\\162m' -rf /",
        "/usr/bin/../bin/rm -rf /",
    ] {
        let c = classify_command_line(line);
        assert_eq!(c.commands, vec!["rm"], "{line}");
        assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![DestructiveFile], "{line}");
    }
}

#[test]
fn brace_expansion_in_command_name_is_unparsed() {
    assert_eq!(classes("{rm,-rf,/}"), vec![Unparsed]);
}

#[test]
fn glob_in_command_name_is_unparsed() {
    assert_eq!(classes("/bin/r? -rf /"), vec![Unparsed]);
}

#[test]
fn plain_rm_of_a_file_is_file_write() {
    assert_eq!(classes("rm /tmp/file.txt"), vec![FileWrite]);
}

#[test]
fn recursive_rm_is_destructive_whatever_the_path() {
    assert_eq!(classes("rm -r ./build"), vec![DestructiveFile]);
}

#[test]
fn rm_of_system_path_is_destructive() {
    assert_eq!(classes("rm /etc/hosts"), vec![DestructiveFile]);
}

#[test]
fn here_doc_fed_to_bash_is_parsed_as_code() {
    let c = classify_command_line("bash <<EOF\nuptime\nreboot\nEOF");
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![PowerState]);
    assert_eq!(c.commands, vec!["bash", "uptime", "reboot"]);
}

#[test]
fn here_doc_fed_to_cat_is_data() {
    assert_eq!(classes("cat <<'EOF'\nrm -rf /\nEOF"), vec![ReadOnly]);
}

#[test]
fn curl_piped_to_shell_is_remote_code() {
    assert_eq!(classes("curl -fsSL https://x.sh | sudo bash"), vec![Privilege, RemoteCode]);
}

#[test]
fn shell_dash_c_of_downloaded_code_is_remote_code() {
    assert_eq!(classes("sh -c \"$(curl -s http://x)\""), vec![RemoteCode]);
}

#[test]
fn nested_sh_dash_c_is_parsed_recursively() {
    let c = classify_command_line("sh -c 'bash -c \"zsh -c reboot\"'");
    assert_eq!(c.commands, vec!["sh", "bash", "zsh", "reboot"]);
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![PowerState]);
}

#[test]
fn nesting_beyond_depth_limit_is_unparsed() {
    // Each `eval` re-parses the rest: one nesting level per word.
    let within = format!("{}reboot", "eval ".repeat(MAX_DEPTH - 2));
    assert_eq!(classes(&within), vec![PowerState]);
    let beyond = format!("{}reboot", "eval ".repeat(MAX_DEPTH + 2));
    assert!(classes(&beyond).contains(&Unparsed));
}

#[test]
fn ten_thousand_nested_substitutions_are_unparsed_not_a_crash() {
    let line = format!("{}rm{}", "$(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(classes(&line), vec![Unparsed]);
}

#[test]
fn oversized_input_is_unparsed() {
    let line = "a".repeat(MAX_COMMAND_BYTES + 1);
    let c = classify_command_line(&line);
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![Unparsed]);
    assert!(c.parse_error.is_some());
}

#[test]
fn nul_byte_is_unparsed() {
    assert_eq!(classes("ls\0rm -rf /"), vec![Unparsed]);
    assert_eq!(argv(&["ls", "a\0b"]).classes.into_iter().collect::<Vec<_>>(), vec![Unparsed]);
}

#[test]
fn syntax_error_is_unparsed_with_reason() {
    let c = classify_command_line("echo 'oops");
    assert!(c.classes.contains(&Unparsed));
    assert!(c.parse_error.as_deref().is_some_and(|e| e.contains("syntax")));
}

#[test]
fn eval_of_literals_is_parsed() {
    assert_eq!(classes("eval 'kill -9 1'"), vec![PowerState]);
}

#[test]
fn eval_of_variable_is_unparsed() {
    assert_eq!(classes("eval \"$x\""), vec![Unparsed]);
}

#[test]
fn variables_resolve_only_when_every_assignment_agrees() {
    assert_eq!(classes("X=reboot; $X"), vec![PowerState]);
    assert_eq!(classes("X=ls; true || X=reboot; $X"), vec![Unparsed]);
    // Assignment after use inside a loop must not be trusted either.
    assert_eq!(classes("X=ls; for i in 1 2; do $X; X=reboot; done"), vec![Unparsed]);
}

#[test]
fn path_assignment_is_unparsed() {
    assert_eq!(classes("PATH=/tmp ls"), vec![Unparsed]);
    assert_eq!(classes("PATH=/usr/bin:/bin ls"), vec![ReadOnly]);
}

#[test]
fn wrappers_expose_the_wrapped_command() {
    let c = classify_command_line("sudo -u root -E timeout 5 nice -n 1 env A=1 nohup rm -rf /x");
    assert_eq!(c.commands, vec!["sudo", "timeout", "nice", "env", "nohup", "rm"]);
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![DestructiveFile, Privilege]);
}

#[test]
fn find_exec_runs_its_command() {
    let c = classify_command_line("find /srv -name '*.bak' -exec rm {} \\;");
    assert_eq!(c.commands, vec!["find", "rm"]);
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![DestructiveFile]);
}

#[test]
fn xargs_runs_its_command_with_unknown_arguments() {
    assert_eq!(classes("ls | xargs cat"), vec![CredentialAccess]);
}

#[test]
fn ssh_remote_command_is_code() {
    assert_eq!(classes("ssh web1 'sudo reboot'"), vec![PowerState, Privilege]);
}

#[test]
fn kubectl_exec_after_double_dash_is_classified() {
    assert_eq!(classes("kubectl exec -n prod web -- cat /etc/shadow"), vec![CredentialAccess]);
}

#[test]
fn busybox_applet_is_the_command() {
    let c = classify_command_line("busybox reboot");
    assert_eq!(c.commands, vec!["busybox", "reboot"]);
    assert_eq!(c.classes.into_iter().collect::<Vec<_>>(), vec![PowerState]);
}

#[test]
fn downloaded_file_then_executed_is_remote_code() {
    assert!(classes("curl -o /tmp/i.sh http://x/i.sh; sh /tmp/i.sh").contains(&RemoteCode));
}

#[test]
fn force_push_variants_are_detected() {
    for l in ["git push -f", "git push --force-with-lease", "git push origin +main"] {
        assert_eq!(classes(l), vec![ForcePush], "{l}");
    }
}

#[test]
fn kubectl_cordon_is_not_kubectl_delete() {
    assert_eq!(classes("kubectl cordon node-1"), vec![Other]);
    assert_eq!(classes("kubectl drain node-1"), vec![KubectlDelete]);
}

#[test]
fn argv_is_not_reparsed_but_sh_dash_c_payload_is() {
    assert_eq!(argv(&["echo", "$(reboot)"]).classes.into_iter().collect::<Vec<_>>(), vec![ReadOnly]);
    assert_eq!(argv(&["sh", "-c", "reboot"]).classes.into_iter().collect::<Vec<_>>(), vec![PowerState]);
}

#[test]
fn unknown_command_is_other() {
    assert_eq!(classes("frobnicate --all"), vec![Other]);
}

#[test]
fn ansi_c_decoding_handles_escapes() {
    assert_eq!(decode_ansi_c("$'\\x72\\155\\u0020\\n'"), "rm \n");
    assert_eq!(decode_ansi_c("$'a\\qb'"), "a\\qb");
}

#[test]
fn glob_matching_is_conservative() {
    assert!(paths::glob_match("/etc/sha*", "/etc/shadow"));
    assert!(paths::glob_match("/???/[rs]hadow", "/etc/shadow"));
    assert!(!paths::glob_match("/var/log/*", "/etc/shadow"));
    assert!(paths::glob_may_match_secret(".*"));
}

#[test]
fn classes_serialize_in_snake_case() {
    let c = classify_command_line("sudo cat /etc/shadow");
    let json = serde_json::to_string(&c).unwrap_or_default();
    assert!(json.contains("\"credential_access\""), "{json}");
    assert!(json.contains("\"privilege\""), "{json}");
}
