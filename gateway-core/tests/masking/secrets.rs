//! Secret detectors: keys, tokens and `key=value` assignments.

use gateway_core::mask::Detector::*;

use super::{assert_clean, assert_only, mask};

const JWT: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn jwt_is_masked() {
    assert_only(&format!("Authorization: Bearer {JWT}"), Jwt, JWT);
    assert_only(&format!("{{\"id_token\":\"{JWT}\"}}"), Jwt, JWT);
}

#[test]
fn jwt_lookalikes_without_alg_header_are_not_masked() {
    // header {"typ":"JWT"} has no alg; a bare base64 JSON cursor has no dots.
    assert_clean("cursor=eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln");
    assert_clean("cursor=eyJwYWdlIjoyfQ");
}

#[test]
fn private_key_block_is_masked_whole() {
    for label in ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"] {
        let block = format!(
            "-----BEGIN {label}-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END {label}-----"
        );
        let text = format!("key:\n{block}\nnext line");
        assert_only(&text, PrivateKey, &block);
        assert_eq!(mask(&text), "key:\n[PRIVATE_KEY]\nnext line");
    }
}

#[test]
fn private_key_inside_json_with_escaped_newlines_is_masked() {
    let block = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----";
    assert_only(&format!("{{\"private_key\": \"{block}\\n\"}}"), PrivateKey, block);
}

#[test]
fn unterminated_private_key_is_masked_to_the_end() {
    assert_eq!(mask("ok\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nMIIEow"), "ok\n[PRIVATE_KEY]");
}

#[test]
fn certificates_and_public_keys_are_not_masked() {
    assert_clean("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----");
    assert_clean("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----");
}

#[test]
fn aws_access_key_id_and_labelled_secret_are_masked() {
    assert_only("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", AwsKey, "AKIAIOSFODNN7EXAMPLE");
    assert_only("\"AccessKeyId\": \"ASIAY34FZKBOKMUTVV7A\"", AwsKey, "ASIAY34FZKBOKMUTVV7A");
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert_only(&format!("aws_secret_access_key = {secret}"), AwsKey, secret);
    assert_only(&format!("\"SecretAccessKey\": \"{secret}\""), AwsKey, secret);
}

#[test]
fn aws_lookalikes_are_not_masked() {
    assert_clean("keys start with AKIA and are rotated");
    assert_clean("AKIAIOSFODNN7EXAMPL"); // 19 chars
    assert_clean("XAKIAIOSFODNN7EXAMPLE");
}

#[test]
fn github_tokens_are_masked() {
    let classic = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    assert_only(&format!("GITHUB_TOKEN={classic}"), GithubToken, classic);
    let fine = "github_pat_11ABCDEFG0123456789abcde_abcdefxyzijklmnopqrstuvwxyzABCDEFxYZIJKLMNOPQRSTUVWXYZ0123456";
    assert_only(&format!("token: {fine}"), GithubToken, fine);
    assert_clean("prefix ghp_1234 is documented");
}

#[test]
fn slack_tokens_are_masked() {
    let bot = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
    assert_only(&format!("slack {bot}"), SlackToken, bot);
    let app = "xapp-1-A0123456789-1234567890123-0123456789abcdef";
    assert_only(&format!("SLACK_APP={app}."), SlackToken, app);
    assert_clean("tokens look like xoxb-…");
}

#[test]
fn stripe_secret_and_restricted_keys_are_masked_but_publishable_keys_are_not() {
    for k in ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "rk_live_51H8abcdEFGH1234ijkl"] {
        assert_only(&format!("key {k}"), StripeKey, k);
    }
    assert_clean("pk_live_4eC39HqLyjWDarjtT1zdp7dc");
    assert_clean("risk_live_monitoring_enabled");
}

#[test]
fn secret_assignment_masks_the_value_and_keeps_the_key() {
    assert_eq!(mask("password=hunter2 user=bob"), "password=[SECRET] user=bob");
    assert_eq!(
        mask("{\"password\": \"s3cr3t!\", \"user\": \"bob\"}"),
        "{\"password\": \"[SECRET]\", \"user\": \"bob\"}"
    );
    assert_eq!(mask("export PGPASSWORD='abc123'"), "export PGPASSWORD='[SECRET]'");
    assert_eq!(mask("db_password: \"x y z\""), "db_password: \"[SECRET]\"");
    assert_eq!(mask("passwd:letmein"), "passwd:[SECRET]");
    assert_eq!(mask("pwd=Tr0ub4dor"), "pwd=[SECRET]");
    assert_eq!(mask("secret=abc api_key=def API-KEY: ghi"), "secret=[SECRET] api_key=[SECRET] API-KEY: [SECRET]");
    assert_eq!(mask("GET /export?token=abc123&format=csv"), "GET /export?token=[SECRET]&format=csv");
    assert_eq!(mask("spring.datasource.password=pa55"), "spring.datasource.password=[SECRET]");
}

#[test]
fn password_inside_a_url_is_masked() {
    assert_eq!(mask("postgres://app:S3cretP4ss@db.internal:5432/app"), "postgres://app:[SECRET]@db.internal:5432/app");
    assert_eq!(mask("redis://:p4ss@cache:6379/0"), "redis://:[SECRET]@cache:6379/0");
    assert_clean("https://example.com:8443/path");
}

#[test]
fn cli_flags_sql_and_authorization_headers_are_masked() {
    assert_eq!(mask("mysql -u root --password hunter22 app"), "mysql -u root --password [SECRET] app");
    assert_eq!(mask("ALTER USER bob WITH PASSWORD 'tiger123';"), "ALTER USER bob WITH PASSWORD '[SECRET]';");
    assert_eq!(mask("CREATE USER x IDENTIFIED BY 'tiger123'"), "CREATE USER x IDENTIFIED BY '[SECRET]'");
    assert_eq!(mask("Authorization: Basic dXNlcjpwYXNzd29yZA=="), "Authorization: Basic [SECRET]");
}

#[test]
fn settings_that_merely_mention_secrets_are_not_masked() {
    for text in [
        "max_tokens=4096 input_tokens: 523",
        "password_reset=true password_min_length: 12",
        "secret_name: db-creds token_type: bearer",
        "password: ******** token=<redacted> api_key=[SECRET]",
        "token=${API_TOKEN} password: $DB_PASSWORD secret: {{ .Values.secret }}",
        "\"token\": null, \"password\": \"\"",
        "PWD=/home/deploy/app",
        "basic auth enabled",
    ] {
        assert_clean(text);
    }
}

#[test]
fn specific_token_wins_over_generic_assignment() {
    assert_only(
        "GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        GithubToken,
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    );
    assert_only(&format!("token={JWT}"), Jwt, JWT);
}

#[test]
fn masking_twice_changes_nothing() {
    let once = mask(&format!("password=hunter2 {JWT} alice@example.com 4111111111111111 AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(mask(&once), once);
}
