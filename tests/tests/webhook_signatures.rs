//! Webhook signatures as customers check them: each signed delivery is verified by the Standard
//! Webhooks reference library from PyPI (`standardwebhooks`, installed into `.tools/venv` by the test
//! command), with the secret as the customer is shown it.
#![allow(
    clippy::disallowed_methods,
    reason = "a delivery is stamped with the real time: the library refuses one more than 5 minutes off"
)]

use serde_json::{Value, json};
use webhooks::{Secret, Signed};

/// What the library says of each `(secret, body, signature)`: `{"ok": payload}` or `{"error": why}`.
fn verify(cases: &[(String, String, &Signed)]) -> Vec<Value> {
    let received: Vec<Value> = cases
        .iter()
        .map(|(_, body, signed)| {
            let headers: serde_json::Map<String, Value> =
                signed.headers().iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
            json!({"body": body, "headers": headers})
        })
        .collect();
    let pairs: Vec<(&str, &Value)> =
        cases.iter().zip(&received).map(|((secret, _, _), r)| (secret.as_str(), r)).collect();
    testkit::webhooks::verify(&pairs)
        .into_iter()
        .map(|checked| match checked {
            Ok(payload) => json!({"ok": payload}),
            Err(error) => json!({"error": error}),
        })
        .collect()
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
