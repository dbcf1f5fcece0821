//! PII detectors: true positives and the near-misses they must leave alone.

use gateway_core::mask::Detector::*;

use super::{assert_clean, assert_only, found, mask};

#[test]
fn email_is_masked_in_common_contexts() {
    assert_only("user alice.smith@example.com logged in", Email, "alice.smith@example.com");
    assert_only("To: <j.doe+billing@mail.example.co.uk>", Email, "j.doe+billing@mail.example.co.uk");
    assert_only("mailto:bob_99@acme.io.", Email, "bob_99@acme.io");
    assert_only("\"email\":\"zoe@example.org\"", Email, "zoe@example.org");
}

#[test]
fn email_lookalikes_are_not_masked() {
    for text in [
        "icon logo@2x.png",
        "git clone git@github.com:acme/infra.git",
        "npm i lodash@4.17.21",
        "ssh user@localhost",
        "decorator @app.route('/x')",
        "ops at example dot com",
    ] {
        assert_clean(text);
    }
}

#[test]
fn card_with_spaces_dashes_or_contiguous_is_masked() {
    assert_only("card 4111111111111111 ok", PaymentCard, "4111111111111111");
    assert_only("card 4111 1111 1111 1111 ok", PaymentCard, "4111 1111 1111 1111");
    assert_only("card 5555-5555-5555-4444 ok", PaymentCard, "5555-5555-5555-4444");
    assert_only("amex 3782 822463 10005", PaymentCard, "3782 822463 10005");
    assert_only("mc2 2223003122003222", PaymentCard, "2223003122003222");
}

#[test]
fn card_followed_by_an_amount_is_still_found() {
    assert_only("4111111111111111 100.00 USD", PaymentCard, "4111111111111111");
    assert_only("order 12 4111 1111 1111 1111 2024", PaymentCard, "4111 1111 1111 1111");
}

#[test]
fn card_failing_luhn_is_not_masked() {
    assert_clean("card 4111111111111112 declined");
    assert_clean("card 4111 1111 1111 1112 declined");
}

#[test]
fn card_inside_a_longer_digit_run_or_identifier_is_not_masked() {
    assert_clean("bytes_total=184111111111111111112");
    assert_clean("id x4111111111111111");
    assert_clean("value 0.4111111111111111");
    assert_clean("epoch_ms=1714566645123"); // prefix 1 is no issuer
    assert_clean("phone +4111111111111111"); // a '+' number is a phone, never a card
}

#[test]
fn ssn_formatted_is_masked() {
    assert_only("ssn 123-45-6789", UsSsn, "123-45-6789");
    assert_only("SSN:078-05-1121,", UsSsn, "078-05-1121");
}

#[test]
fn ssn_with_reserved_area_group_or_serial_is_not_masked() {
    for text in ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"] {
        assert_clean(text);
    }
}

#[test]
fn bare_nine_digits_are_an_ssn_only_when_labelled() {
    assert_only("ssn: 123456789", UsSsn, "123456789");
    assert_only("\"social_security_number\": \"123456789\"", UsSsn, "123456789");
    assert_clean("order 123456789 shipped");
    assert_clean("ssn: 000456789");
}

#[test]
fn ssn_lookalikes_are_not_masked() {
    assert_clean("ref 123-45-67890");
    assert_clean("ORD-123-45-6789");
    assert_clean("ISBN 978-3-16-148410-0");
}

#[test]
fn phone_numbers_in_common_formats_are_masked() {
    for p in [
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "+44 20 7946 0958",
        "+14155552671",
        "+1 (415) 555-2671",
        "+33 1 23 45 67 89",
        "1-800-555-0199",
    ] {
        assert_only(&format!("call {p} today"), Phone, p);
    }
}

#[test]
fn phone_followed_by_another_number_keeps_its_own_digits() {
    assert_only("+44 20 7946 0958 2024-05-01", Phone, "+44 20 7946 0958");
}

#[test]
fn timestamps_dates_order_numbers_and_versions_are_not_phones() {
    for text in [
        "2024-05-01T12:30:45Z",
        "2024-05-01 12:30:45 +05:30",
        "ORD-2024-000123",
        "version 1.2.3",
        "+1500 rows",
        "1.5e+10",
        "call 555-0100",
        "4155552671",
        "415-555-26710",
        "INV-415-555-2671",
        "192.168.100.200",
    ] {
        assert!(found(text).iter().all(|(d, _)| *d != Phone), "{text}: {:?}", found(text));
    }
}

#[test]
fn iban_compact_or_grouped_is_masked() {
    assert_only("iban DE89370400440532013000", Iban, "DE89370400440532013000");
    assert_only("iban DE89 3704 0044 0532 0130 00.", Iban, "DE89 3704 0044 0532 0130 00");
    assert_only("to GB29 NWBK 6016 1331 9268 19 now", Iban, "GB29 NWBK 6016 1331 9268 19");
    assert_only("BE68 5390 0754 7034 EUR", Iban, "BE68 5390 0754 7034");
}

#[test]
fn iban_with_bad_checksum_length_or_country_is_not_masked() {
    assert_clean("DE00 3704 0044 0532 0130 00");
    assert_clean("DE89 3704 0044 0532 0130"); // too short for DE
    assert_clean("US12 3456 7890 1234 5678");
    assert_clean("XDE89370400440532013000");
}

#[test]
fn ipv4_is_masked_with_ports_and_cidrs() {
    assert_only("from 203.0.113.45 port 22", Ipv4, "203.0.113.45");
    assert_only("db=10.0.0.12:5432", Ipv4, "10.0.0.12");
    assert_only("allow 192.168.0.0/16", Ipv4, "192.168.0.0");
}

#[test]
fn ipv4_lookalikes_and_uninformative_addresses_are_not_masked() {
    for text in [
        "1.2.3.4.5",
        "oid 1.3.6.1.4.1.311",
        "256.1.1.1",
        "version 1.2.3.4",
        "v1.2.3.4",
        "127.0.0.1",
        "0.0.0.0:8080",
        "255.255.255.255",
        "price 1.2.3",
        "01.02.03.04",
    ] {
        assert_clean(text);
    }
}

#[test]
fn ipv6_is_validated_by_std_parser() {
    assert_only("from fe80::1ff:fe23:4567:890a", Ipv6, "fe80::1ff:fe23:4567:890a");
    assert_only("[2001:db8:85a3::8a2e:370:7334]:443", Ipv6, "2001:db8:85a3::8a2e:370:7334");
    assert_only("addr 2001:0db8:0000:0000:0000:ff00:0042:8329 up", Ipv6, "2001:0db8:0000:0000:0000:ff00:0042:8329");
    assert_only("mapped ::ffff:192.0.2.128", Ipv6, "::ffff:192.0.2.128");
}

#[test]
fn ipv6_lookalikes_are_not_masked() {
    for text in
        ["std::io::Result", "Vec::new()", "mac 00:1a:2b:3c:4d:5e", "12:30:45", "::1", "a:b:c", "1:2:3:4:5:6:7:8:9"]
    {
        assert_clean(text);
    }
}

#[test]
fn uuids_git_shas_prices_and_timestamps_are_clean() {
    assert_clean(
        "2024-05-01T12:30:45.123Z INFO request_id=9c41d8ae-3a47-4e9f-a3f7-a0b038163241 commit \
         2a4f806d8ad5d6ac519d181acd0411235e22d166 total=$1,234.56 order=ORD-2024-000123 took 35ms \
         release 1.2.3 sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
}

#[test]
fn several_values_on_one_line_are_all_masked() {
    assert_eq!(
        mask("alice@example.com 4111111111111111 123-45-6789 (415) 555-2671 10.1.2.3"),
        "[EMAIL] [CARD] [SSN] [PHONE] [IPV4]"
    );
}

#[test]
fn values_whose_shapes_overlap_are_all_found() {
    // The prefilter is one non-overlapping pass; overlapping shapes must not hide each other.
    let m = super::masker();
    for text in [
        "415-555-2671 4111 1111 1111 1111",
        "4111 1111 1111 1111 415-555-2671",
        "ssn 123-45-6789 4111111111111111",
        "10.0.0.1 123-45-6789 +44 20 7946 0958",
        "mail a@10.0.0.1 and b@example.com",
        "https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/acme/repo",
        "DE89 3704 0044 0532 0130 00 4111111111111111",
        "fe80::1 192.168.1.20 (415) 555-2671",
    ] {
        assert_eq!(m.find(text), m.find_unfiltered(text), "in {text:?}");
    }
    assert_eq!(found("415-555-2671 4111 1111 1111 1111").len(), 2);
    assert_eq!(
        found("https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/acme/repo"),
        vec![(GithubToken, "ghp_abcdefghijklmnopqrstuvwxyz0123456789".to_owned())]
    );
}
