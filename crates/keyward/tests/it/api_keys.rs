use crate::harness::{Backend, Env, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::json;
use std::time::Duration;

/// The README's quickstart: admin key → user → the user's key → `/v4/users/self`.
async fn quickstart_answers_v4_users_self_field_for_field(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user_id = create_user(&server, &admin, "ada").await;
    let (_, key) = create_key(&server, &admin, &user_id, json!({"name": "laptop"})).await;
    assert!(key.starts_with("kwu_"), "{key}");

    let answer = server.call("GET", "/v4/users/self", Via::Header("X-Domino-Api-Key", &key), None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({"firstName": "Ada", "lastName": "Lovelace", "fullName": "Ada Lovelace", "userName": "ada",
               "email": "ada@example.com", "avatarUrl": null, "id": user_id})
    );
    for via in [Via::Bearer(&key), Via::Header("X-Api-Key", &key), Via::Header("x-domino-api-key", &key)] {
        let answer = server.call("GET", "/api/user/me", via, None).await;
        assert_eq!(answer.json()["userName"], "ada");
    }
    let me = server.get("/api/v1/users/me", &key).await.json();
    assert_eq!(me["id"], user_id.as_str());
}
on_each_store!(quickstart_answers_v4_users_self_field_for_field);

async fn a_user_lists_and_revokes_their_own_keys_and_the_secret_is_never_listed(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user_id = create_user(&server, &admin, "bea").await;
    let (_, first) = create_key(&server, &admin, &user_id, json!({"name": "first"})).await;
    let created =
        server.post("/api/v1/users/me/api-keys", &first, json!({"name": "second", "description": "ci"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let second = created["secret"].as_str().unwrap().to_string();
    let expires = time::OffsetDateTime::parse(
        created["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "default lifetime is the realm's 90 days, got {days}");

    let duplicate = server.post("/api/v1/users/me/api-keys", &first, json!({"name": "second"})).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(duplicate.json()["field"], "name");

    let listed = server.get("/api/v1/users/me/api-keys", &second).await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(&first) && !listed.text.contains(&second), "a list never shows secrets");
    let names: Vec<String> =
        listed.json().as_array().unwrap().iter().map(|key| key["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["first", "second"]);
    let admin_view = server.get(&format!("/api/v1/users/{user_id}/api-keys"), &admin).await;
    assert_eq!(admin_view.json().as_array().unwrap().len(), 2);

    let revoked = server
        .call(
            "DELETE",
            &format!("/api/v1/users/me/api-keys/{}", created["id"].as_str().unwrap()),
            Via::Bearer(&first),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_eq!(server.get("/v4/users/self", &second).await.status, 401, "revoked on the next request");
    assert_eq!(server.get("/v4/users/self", &first).await.status, 200);
    // The name is free again once the key is revoked.
    assert_eq!(server.post("/api/v1/users/me/api-keys", &first, json!({"name": "second"})).await.status, 201);
}
on_each_store!(a_user_lists_and_revokes_their_own_keys_and_the_secret_is_never_listed);

async fn one_users_key_ids_are_404_for_another_user(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = create_user(&server, &admin, "alice").await;
    let bob = create_user(&server, &admin, "bob").await;
    let (alice_key_id, alice_key) = create_key(&server, &admin, &alice, json!({"name": "a"})).await;
    let (_, bob_key) = create_key(&server, &admin, &bob, json!({"name": "b"})).await;
    let answer =
        server.call("DELETE", &format!("/api/v1/users/me/api-keys/{alice_key_id}"), Via::Bearer(&bob_key), None).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(server.get("/v4/users/self", &alice_key).await.status, 200);
    let answer = server.get(&format!("/api/v1/users/{alice}"), &bob_key).await;
    assert_eq!(answer.status, 403, "users are admin only: {}", answer.text);
    // An admin revoking through the wrong user's path finds nothing either.
    let answer =
        server.call("DELETE", &format!("/api/v1/users/{bob}/api-keys/{alice_key_id}"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 404);
    let answer = server
        .call("DELETE", &format!("/api/v1/users/{alice}/api-keys/{alice_key_id}"), Via::Bearer(&admin), None)
        .await;
    assert_eq!(answer.status, 204);
    assert_eq!(server.get("/v4/users/self", &alice_key).await.status, 401);
}
on_each_store!(one_users_key_ids_are_404_for_another_user);

async fn the_model_monitor_header_takes_only_model_monitor_keys(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "mona").await;
    let (_, general) = create_key(&server, &admin, &user, json!({"name": "general"})).await;
    let (_, monitor) = create_key(&server, &admin, &user, json!({"name": "dmm", "audience": "model-monitor"})).await;
    let dmm = |key| Via::Header("X-DMM-API-KEY", key);
    assert_eq!(server.call("GET", "/v4/users/self", dmm(&monitor), None).await.status, 200);
    assert_eq!(server.call("GET", "/v4/users/self", dmm(&general), None).await.status, 401);
    // A key made for the model monitor is not a general-purpose key.
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&monitor), None).await.status, 401);
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&general), None).await.status, 200);
}
on_each_store!(the_model_monitor_header_takes_only_model_monitor_keys);

async fn realm_policy_limits_personal_keys(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "pat").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    let far = (time::OffsetDateTime::now_utc() + time::Duration::days(91))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let answer = server.post("/api/v1/users/me/api-keys", &key, json!({"name": "far", "expiresAt": far})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json()["field"], "expiresAt");
    let answer = server
        .post("/api/v1/users/me/api-keys", &key, json!({"name": "past", "expiresAt": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    let (status, exchanged) = server.exchange("default", &key, &[]).await;
    assert_eq!(status, 200, "{exchanged}");
    let exchanged = exchanged["access_token"].as_str().unwrap().to_string();
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&exchanged), None).await.status, 200);

    let policy = server
        .call(
            "PUT",
            "/api/v1/realm/policy",
            Via::Bearer(&admin),
            Some(json!({"userApiKeysAllowed": false, "userApiKeyMaxLifetimeDays": 30})),
        )
        .await;
    assert_eq!(policy.status, 200, "{}", policy.text);
    // Disallowing personal keys refuses the ones already handed out, on the next request
    // (as an organisation turning off personal access tokens does), and the access tokens
    // exchanged from them, and refuses new ones.
    assert_eq!(server.get("/v4/users/self", &key).await.status, 401);
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&exchanged), None).await.status, 401);
    let answer = server.post(&format!("/api/v1/users/{user}/api-keys"), &admin, json!({"name": "no"})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(
        answer.json()["detail"].as_str().unwrap().contains("only service accounts may hold long-lived credentials")
    );
    // Allowing them again restores the keys that were never revoked.
    let policy = server
        .call(
            "PUT",
            "/api/v1/realm/policy",
            Via::Bearer(&admin),
            Some(json!({"userApiKeysAllowed": true, "userApiKeyMaxLifetimeDays": 30})),
        )
        .await;
    assert_eq!(policy.status, 200, "{}", policy.text);
    assert_eq!(server.get("/v4/users/self", &key).await.status, 200);
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&exchanged), None).await.status, 200);
    assert_eq!(server.get("/api/v1/realm/policy", &key).await.status, 403, "policy is admin only");
}
on_each_store!(realm_policy_limits_personal_keys);

async fn a_revoked_key_stays_refused_after_kill_9_and_restart(backend: Backend) {
    let env = Env::new(backend);
    let mut server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "kim").await;
    let (revoked_id, revoked) = create_key(&server, &admin, &user, json!({"name": "old"})).await;
    let (_, kept) = create_key(&server, &admin, &user, json!({"name": "new"})).await;
    let (_, monitor) = create_key(&server, &admin, &user, json!({"name": "dmm", "audience": "model-monitor"})).await;
    let answer =
        server.call("DELETE", &format!("/api/v1/users/{user}/api-keys/{revoked_id}"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 204);
    server.kill9();
    let server = env.serve(&[]);
    assert!(!server.stderr_text().contains("kwa_"), "no second bootstrap key while an admin exists");
    assert_eq!(server.get("/v4/users/self", &revoked).await.status, 401);
    assert_eq!(server.get("/v4/users/self", &kept).await.status, 200);
    assert_eq!(server.get("/api/v1/users", &admin).await.status, 200, "admin keys load too");
    // The audience is loaded with the key: still only good behind its own header.
    let dmm = server.call("GET", "/v4/users/self", Via::Header("X-DMM-API-KEY", &monitor), None).await;
    assert_eq!(dmm.status, 200, "{}", dmm.text);
    assert_eq!(server.get("/v4/users/self", &monitor).await.status, 401);
}
on_each_store!(a_revoked_key_stays_refused_after_kill_9_and_restart);

async fn a_second_server_on_the_same_store_honours_revocation_within_a_second(backend: Backend) {
    let env = Env::new(backend);
    let first = env.serve(&[]);
    let admin = first.bootstrap_key();
    let second = env.serve(&[]);
    let user = create_user(&first, &admin, "nia").await;
    let (key_id, key) = create_key(&first, &admin, &user, json!({"name": "k"})).await;
    second.wait_for_status("/v4/users/self", &key, 200, Duration::from_secs(1)).await;
    let answer =
        first.call("DELETE", &format!("/api/v1/users/{user}/api-keys/{key_id}"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 204);
    second.wait_for_status("/v4/users/self", &key, 401, Duration::from_secs(1)).await;
}
on_each_store!(a_second_server_on_the_same_store_honours_revocation_within_a_second);

/// A key bound to an audience is for that audience's service only: it cannot manage
/// keys, act as an admin, or mint keys; and no key mints one that outlives it.
async fn audience_bound_and_short_lived_keys_cannot_widen_themselves(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "nia").await;
    let grant = server.call("PUT", &format!("/api/v1/users/{user}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(grant.status < 300, "{}", grant.text);
    let (_, monitor) = create_key(&server, &admin, &user, json!({"name": "dmm", "audience": "model-monitor"})).await;
    let dmm = |key| Via::Header("X-DMM-API-KEY", key);
    for (method, path) in [("GET", "/api/v1/users/me/api-keys"), ("GET", "/api/v1/users"), ("GET", "/api/v1/audit")] {
        let answer = server.call(method, path, dmm(&monitor), None).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
    }
    let mint = server.call("POST", "/api/v1/users/me/api-keys", dmm(&monitor), Some(json!({"name": "x"}))).await;
    assert_eq!(mint.status, 403, "{}", mint.text);
    // Who am I still answers: that is what the model monitor asks.
    assert_eq!(server.call("GET", "/api/v1/users/me", dmm(&monitor), None).await.status, 200);

    let unknown = server
        .post(&format!("/api/v1/users/{user}/api-keys"), &admin, json!({"name": "odd", "audience": "elsewhere"}))
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(unknown.json()["field"], "audience");

    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, short) = create_key(&server, &admin, &user, json!({"name": "short", "expiresAt": soon})).await;
    let longer = server.post("/api/v1/users/me/api-keys", &short, json!({"name": "longer", "expiresAt": later})).await;
    assert_eq!(longer.status, 422, "{}", longer.text);
    assert_eq!(longer.json()["field"], "expiresAt");
    let capped = server.post("/api/v1/users/me/api-keys", &short, json!({"name": "capped"})).await;
    assert_eq!(capped.status, 201, "{}", capped.text);
    let capped_at = capped.json()["expiresAt"].as_str().unwrap().to_string();
    let parse = |text: &str| time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(parse(&capped_at) <= parse(&soon), "{capped_at} is capped at the calling key's {soon}");
}
on_each_store!(audience_bound_and_short_lived_keys_cannot_widen_themselves);
