//! PutEvents faults moto cannot produce on demand, injected with the SDK's mocking crate: partially
//! failed batches must be resent (only the failed entries), and every call carries at most 10.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::Utc;
use domain::OrgId;
use events::Publisher;
use serde_json::json;
use service::DomainEvent;

fn events(n: usize) -> Vec<DomainEvent> {
    let org = OrgId::parse("acme").unwrap();
    (0..n)
        .map(|i| {
            let (id, time) = (uuid::Uuid::now_v7(), Utc::now());
            let detail = json!({"n": i, "eventId": id, "orgId": org, "occurredAt": time});
            DomainEvent { id, detail_type: "export.ready".into(), detail, time }
        })
        .collect()
}

fn ok(id: &str) -> PutEventsResultEntry {
    PutEventsResultEntry::builder().event_id(id).build()
}

#[tokio::test]
async fn failed_entries_are_resent_alone_and_batches_hold_at_most_ten() {
    // 12 events → a call of 10 where entries 3 and 7 fail, their resend, then the remaining 2.
    let first = mock!(Client::put_events).match_requests(|req| req.entries().len() == 10).then_output(|| {
        let mut entries: Vec<_> = (0..10).map(|i| ok(&format!("e{i}"))).collect();
        for i in [3, 7] {
            entries[i] = PutEventsResultEntry::builder()
                .error_code("ThrottlingException")
                .error_message("Rate exceeded")
                .build();
        }
        PutEventsOutput::builder().failed_entry_count(2).set_entries(Some(entries)).build()
    });
    let resend = mock!(Client::put_events)
        .match_requests(|req| {
            let ns: Vec<_> = req.entries().iter().filter_map(|e| e.detail()).map(|d| d.to_owned()).collect();
            ns.len() == 2 && ns[0].contains("\"n\":3") && ns[1].contains("\"n\":7")
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).entries(ok("r3")).entries(ok("r7")).build());
    let rest = mock!(Client::put_events)
        .match_requests(|req| {
            req.entries().len() == 2 && req.entries().iter().all(|e| e.source() == Some("assignments"))
        })
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).entries(ok("a")).entries(ok("b")).build());
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&first, &resend, &rest]);

    Publisher::new(client, "bus").publish(&events(12)).await.unwrap();
    assert_eq!((first.num_calls(), resend.num_calls(), rest.num_calls()), (1, 1, 1));
}

// Paused: the publisher's backoff (about 20 s before it reports a failure) passes at once.
#[tokio::test(start_paused = true)]
async fn entries_that_keep_failing_are_reported_not_dropped_silently() {
    let failing = mock!(Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(PutEventsResultEntry::builder().error_code("InternalFailure").build())
            .build()
    });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&failing]);
    let err = Publisher::new(client, "bus").publish(&events(1)).await.unwrap_err();
    assert!(err.to_string().contains("1 of 1 events not published"), "{err}");
    assert!(failing.num_calls() > 1, "resent before giving up");
    assert!(matches!(err, events::PublishError::Failed { .. }), "to be tried again: {err}");
}

#[tokio::test(start_paused = true)]
async fn an_event_eventbridge_refuses_does_not_stop_the_others_and_is_not_resent() {
    // 12 events: the first call's entry 4 is malformed; the rest of that call and the next call go out.
    let first = mock!(Client::put_events).match_requests(|req| req.entries().len() == 10).then_output(|| {
        let mut entries: Vec<_> = (0..10).map(|i| ok(&format!("e{i}"))).collect();
        entries[4] =
            PutEventsResultEntry::builder().error_code("MalformedDetail").error_message("Detail is malformed.").build();
        PutEventsOutput::builder().failed_entry_count(1).set_entries(Some(entries)).build()
    });
    let rest = mock!(Client::put_events)
        .match_requests(|req| req.entries().len() == 2)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).entries(ok("a")).entries(ok("b")).build());
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&first, &rest]);

    let err = Publisher::new(client, "bus").publish(&events(12)).await.unwrap_err();
    assert!(
        matches!(&err, events::PublishError::Refused { refused: 1, total: 12, reason } if reason.starts_with("MalformedDetail")),
        "{err}"
    );
    assert_eq!((first.num_calls(), rest.num_calls()), (1, 1), "the refused entry is not resent");
}
