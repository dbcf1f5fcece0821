"""Cross-check Airlock's Slack request signing with the official slack_sdk SignatureVerifier.

Driven by tests/tests/slack_signature.rs (not by pytest): reads JSON on stdin
  {"secret": ..., "verify": [{"timestamp", "body", "signature"}], "sign": [{"timestamp", "body"}]}
and prints JSON
  {"verified": [bool, ...], "signatures": [str, ...]}
where "verified" is slack_sdk's verdict on Airlock's signatures (sent as real headers) and "signatures" are
slack_sdk's own signatures for Airlock to verify.
"""

import json
import sys

from slack_sdk.signature import SignatureVerifier


def main() -> None:
    request = json.load(sys.stdin)
    verifier = SignatureVerifier(signing_secret=request["secret"])
    verified = [
        verifier.is_valid_request(
            body=case["body"].encode("utf-8"),
            headers={"X-Slack-Request-Timestamp": case["timestamp"], "X-Slack-Signature": case["signature"]},
        )
        for case in request["verify"]
    ]
    signatures = [
        verifier.generate_signature(timestamp=case["timestamp"], body=case["body"].encode("utf-8"))
        for case in request["sign"]
    ]
    json.dump({"verified": verified, "signatures": signatures}, sys.stdout)


if __name__ == "__main__":
    main()
