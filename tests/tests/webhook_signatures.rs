//! Webhook signatures as customers check them: each signed delivery is verified by the Standard
//! Webhooks reference library from PyPI (`standardwebhooks`, installed into `.tools/venv` by the test
//! command), with the secret as the customer is shown it.
#![allow(
    clippy::disallowed_methods,
    reason = "a delivery is stamped with the real time: the library refuses one more than 5 minutes off"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use webhooks::{Secret, Signed};

/// Verifies each case with the library; answers, per case, the parsed body or the library's error.
const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
out = []
for case in json.load(sys.stdin):
    try:
        out.append({"ok": Webhook(case["secret"]).verify(case["body"], case["headers"])})
    except Exception as e:
        out.append({"error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python"))
}

/// What the library says of each `(secret, body, headers)`.
fn verify(cases: &[(String, String, &Signed)]) -> Vec<Value> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, body, signed)| {
            let headers: serde_json::Map<String, Value> =
                signed.headers().iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
            json!({"secret": secret, "body": body, "headers": headers})
        })
        .collect();
    let mut child = Command::new(python())
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test command installs .tools/venv (infra/local/stack.sh install-fuzz)");
    child.stdin.take().unwrap().write_all(Value::Array(input).to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_reference_library_verifies_every_delivery_and_refuses_a_wrong_secret_or_a_changed_body() {
    let now = chrono::Utc::now().timestamp();
    let (current, previous, stranger) =
        (Secret::generate().unwrap(), Secret::generate().unwrap(), Secret::generate().unwrap());
    let body = json!({
        "type": "assignment.created",
        "timestamp": "2026-12-07T10:00:00Z",
        "data": {"id": "0193a0b2-7c1d-7000-8000-000000000001", "targetTitle": "Injection — SQL «1»", "note": null},
    })
    .to_string();
    let id = "0193a0b2-7c1d-7000-8000-0000000000aa";
    let one = Signed::new(id, now, &body, &current, None);
    // During a rotation both secrets sign; the customer verifies with either.
    let both = Signed::new(id, now, &body, &current, Some(&previous));
    let tampered = body.replace("SQL", "XSS");
    let stale = Signed::new(id, now - 3_600, &body, &current, None);

    let results = verify(&[
        (current.expose(), body.clone(), &one),
        (current.expose(), body.clone(), &both),
        (previous.expose(), body.clone(), &both),
        (stranger.expose(), body.clone(), &both),
        (current.expose(), tampered, &one),
        (current.expose(), body.clone(), &stale),
    ]);
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(results[0], json!({"ok": parsed}));
    assert_eq!(results[1], json!({"ok": parsed}));
    assert_eq!(results[2], json!({"ok": parsed}), "the previous secret verifies during the overlap");
    for (i, refused) in [(3, "No matching signature"), (4, "No matching signature"), (5, "too old")] {
        let error = results[i]["error"].as_str().unwrap_or_default();
        assert!(error.contains(refused), "case {i}: {}", results[i]);
    }
}
