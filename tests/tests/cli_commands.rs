//! `airlock policy test` for ssh and kubernetes connections: what an administrator sees before an agent calls.

use std::io::Write as _;

use airlock_tests::airlock::Airlock;

const HOST_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

fn installation() -> Airlock {
    let dir = tempfile::tempdir().expect("tempdir");
    let airlock = Airlock::new(Airlock::sqlite_target(dir.path()), None);
    let mut config = std::fs::OpenOptions::new().append(true).open(&airlock.config).expect("config");
    write!(
        config,
        "\n[connections.web-1]\nkind = \"ssh\"\nurl = \"ssh://deploy@web-1.internal\"\n\
         password = {{ env = \"WEB1_PASSWORD\" }}\nhost_key = \"{HOST_KEY}\"\n\n\
         [connections.prod]\nkind = \"kubernetes\"\nurl = \"https://k8s.internal:6443\"\n\
         token = {{ env = \"PROD_TOKEN\" }}\nnamespaces = [\"shop\", \"kube-system\"]\n"
    )
    .expect("append");
    std::mem::forget(dir); // the sqlite target file is never opened by `policy test`
    airlock
}

fn stdout_of(airlock: &Airlock, args: &[&str]) -> String {
    let out = airlock.run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn policy_test_explains_ssh_commands() {
    let airlock = installation();
    let out =
        stdout_of(&airlock, &["policy", "test", "--connection", "web-1", "--command", "sudo systemctl restart nginx"]);
    assert!(out.contains("connection: web-1 (ssh)"), "{out}");
    assert!(out.contains("classification: power_state, privilege"), "{out}");
    assert!(out.contains("commands: sudo, systemctl"), "{out}");
    assert!(out.contains("decision: require_approval") && out.contains("rule: approve-risky-commands"), "{out}");

    let out = stdout_of(&airlock, &["policy", "test", "--connection", "web-1", "--command", "uptime; rm -rf /etc"]);
    assert!(out.contains("decision: block") && out.contains("rule: block-destructive-commands"), "{out}");
    let out = stdout_of(&airlock, &["policy", "test", "--connection", "web-1", "--command", "df -h | tail -n 3"]);
    assert!(out.contains("decision: allow") && out.contains("rule: allow-read-only-diagnostics"), "{out}");
}

#[test]
fn policy_test_explains_kube_exec_argv() {
    let airlock = installation();
    let args = ["policy", "test", "--connection", "prod", "--namespace", "kube-system", "--pod", "coredns-0", "--"];
    let out = stdout_of(&airlock, &[&args[..], &["cat", "/etc/resolv.conf"]].concat());
    assert!(out.contains("connection: prod (kubernetes)"), "{out}");
    assert!(out.contains("rule: approve-system-namespaces"), "{out}");
    let args = ["policy", "test", "--connection", "prod", "--namespace", "shop", "--pod", "web-0", "--"];
    let out = stdout_of(&airlock, &[&args[..], &["sh", "-c", "cat /etc/shadow"]].concat());
    assert!(out.contains("commands: sh, cat") && out.contains("rule: block-credential-access"), "{out}");
}

#[test]
fn policy_test_says_which_argument_a_connection_needs() {
    let airlock = installation();
    let out = airlock.run(&["policy", "test", "--connection", "web-1", "--sql", "SELECT 1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--command"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = airlock.run(&["policy", "test", "--connection", "prod", "--", "ls"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--namespace"));
}
