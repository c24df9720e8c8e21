//! Identus sources: the envelope, the four record types, out-of-order delivery, retries.

use crate::helpers::*;

#[tokio::test]
async fn the_four_sample_events_are_stored_and_projected() {
    let app = spawn_app().await;
    for body in [
        IDENTUS_CONNECTION,
        IDENTUS_CREDENTIAL,
        IDENTUS_PRESENTATION,
        IDENTUS_DID,
    ] {
        let (_, duplicate) = accepted(app.identus(body).await).await;
        assert!(!duplicate);
    }
    for (path, state) in [
        (
            "connections/0527aea1-d131-3948-a34d-03af39aba8b4",
            "ConnectionResponseSent",
        ),
        (
            "credentials/80d612dc-0ded-4ac9-90b4-1b8eabb04545",
            "CredentialSent",
        ),
        (
            "presentations/3c6d9fa5-d277-431e-a6cb-d3956e47e610",
            "PresentationVerified",
        ),
        (
            "dids/did:prism:4a5b5cf0a513e83b598bbea25cd6196746747f361a73ef77068268bc9bd732ff",
            "PUBLISHED",
        ),
    ] {
        let record = app.admin_json(&format!("/admin/identus/{path}")).await;
        assert_eq!(record["state"], state, "{path}");
        assert_eq!(record["wallet_id"], "00000000-0000-0000-0000-000000000000");
    }
    let events = app
        .admin_json("/admin/events?source=identus&event_type=PresentationUpdated")
        .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        events["events"][0]["payload"]["data"]["status"],
        "PresentationVerified"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retried_event_is_stored_once_and_answered_with_the_first_id() {
    let app = spawn_app().await;
    let (first, dup) = accepted(app.identus(IDENTUS_CONNECTION).await).await;
    assert!(!dup);
    for _ in 0..2 {
        let (again, dup) = accepted(app.identus(IDENTUS_CONNECTION).await).await;
        assert_eq!(again, first);
        assert!(dup);
    }
    assert_eq!(app.all_events().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_copies_of_one_event_are_stored_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let app = app.clone();
        // Half the same event, half distinct ones, all at once: group commit sees them together.
        let body = if i % 2 == 0 {
            IDENTUS_DID.to_string()
        } else {
            connection_event(
                &uuid::Uuid::new_v4().to_string(),
                &format!("c-{i}"),
                "InvitationGenerated",
                "2024-05-01T10:00:00Z",
            )
        };
        tasks.push(tokio::spawn(async move {
            accepted(app.identus(&body).await).await
        }));
    }
    let mut same = std::collections::HashSet::new();
    let mut new_rows = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let (id, dup) = t.await.unwrap();
        if i % 2 == 0 {
            same.insert(id);
        } else {
            assert!(!dup);
        }
        new_rows += usize::from(!dup);
    }
    assert_eq!(
        same.len(),
        1,
        "every copy is answered with the first copy's id"
    );
    assert_eq!(
        new_rows, 33,
        "32 distinct events and one copy of the repeated one"
    );
    assert_eq!(app.all_events().await.len(), 33);
    std::sync::Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test]
async fn an_older_event_arriving_late_never_overwrites_a_newer_state() {
    let app = spawn_app().await;
    let conn = "11111111-2222-4333-8444-555555555555";
    let newer = connection_event(
        "aaaaaaaa-0000-4000-8000-000000000002",
        conn,
        "ConnectionResponseSent",
        "2024-05-01T10:20:31Z",
    );
    let older = connection_event(
        "aaaaaaaa-0000-4000-8000-000000000001",
        conn,
        "ConnectionRequestReceived",
        "2024-05-01T10:20:30.999999Z",
    );
    let newest = connection_event(
        "aaaaaaaa-0000-4000-8000-000000000003",
        conn,
        "ProblemReportSent",
        "2024-05-01T11:00:00+01:00",
    );
    let newest_later = connection_event(
        "aaaaaaaa-0000-4000-8000-000000000004",
        conn,
        "SomeFutureState",
        "2024-05-01T10:00:00.000001Z",
    );

    let (newer_id, _) = accepted(app.identus(&newer).await).await;
    accepted(app.identus(&older).await).await;
    let record = app
        .admin_json(&format!("/admin/identus/connections/{conn}"))
        .await;
    assert_eq!(
        record["state"], "ConnectionResponseSent",
        "the late, older event is stored but not projected"
    );
    assert_eq!(record["event_id"], newer_id.as_str());

    // +01:00: 10:00:00Z, earlier than the current state, so it does not win either.
    accepted(app.identus(&newest).await).await;
    assert_eq!(
        app.admin_json(&format!("/admin/identus/connections/{conn}"))
            .await["state"],
        "ConnectionResponseSent"
    );
    // A state value no OpenAPI file lists, and newer: accepted and projected.
    let newest_later =
        newest_later.replace("2024-05-01T10:00:00.000001Z", "2024-05-01T10:20:31.000001Z");
    let (latest_id, _) = accepted(app.identus(&newest_later).await).await;
    let record = app
        .admin_json(&format!("/admin/identus/connections/{conn}"))
        .await;
    assert_eq!(record["state"], "SomeFutureState");
    assert_eq!(record["event_id"], latest_id.as_str());
    assert_eq!(
        record["events"],
        serde_json::json!([latest_id, newer_id]),
        "the events that set the record, newest first; the two late ones did not"
    );
    assert_eq!(
        app.all_events().await.len(),
        4,
        "every event is stored, whatever its order"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_event_types_and_fields_are_accepted() {
    let app = spawn_app().await;
    let body = IDENTUS_DID
        .replace("DIDStatusUpdated", "WalletKeysRotated")
        .replace("\"status\":\"PUBLISHED\"", "\"whatever\":[1,2,3]");
    let (id, _) = accepted(app.identus(&body).await).await;
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(event["event_type"], "WalletKeysRotated");
    assert_eq!(event["kind"], "identus");
    app.stop().await;
}

#[tokio::test]
async fn events_that_do_not_fit_get_422_with_pointers_and_bad_json_400() {
    let app = spawn_app().await;
    let res = app
        .identus(&IDENTUS_CONNECTION.replace(
            "\"connectionId\":\"0527aea1-d131-3948-a34d-03af39aba8b4\",",
            "",
        ))
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["pointer"], "/data/connectionId");
    assert_eq!(body["status"], 422);

    let res = app
        .identus(&IDENTUS_DID.replace("2024-05-01T10:40:00Z", "not a time"))
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["errors"][0]["pointer"],
        "/ts"
    );

    let res = app.identus("{\"type\":").await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let auth = format!("Bearer {IDENTUS_TOKEN}");
    let res = app
        .post(
            "/identus/events",
            &[("content-type", "text/plain"), ("authorization", &auth)],
            IDENTUS_DID,
        )
        .await;
    assert_eq!(res.status(), 415);
    let res = app
        .post("/identus/events", &[("authorization", &auth)], IDENTUS_DID)
        .await;
    assert_eq!(res.status(), 415, "no content type at all");
    assert!(app.all_events().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_envelope_id_that_is_not_a_uuid_is_422_at_id_and_not_stored() {
    // The agent's `Event[A]` has `id: UUID`: a real agent cannot send anything else.
    let app = spawn_app().await;
    for id in ["event-1", "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b", "42"] {
        let body = IDENTUS_DID.replace("4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", id);
        let res = app.identus(&body).await;
        assert_eq!(res.status(), 422, "{id}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["pointer"], "/id", "{id}: {body}");
        assert!(
            body["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("must be a UUID"),
            "{body}"
        );
    }
    assert!(app.all_events().await.is_empty(), "nothing is stored");
    let res = app.identus(IDENTUS_DID).await;
    assert_eq!(res.status(), 200, "the sample's UUID id is accepted");
    app.stop().await;
}
