use crate::harness::{Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("an object").keys().cloned().collect();
    keys.sort();
    keys
}

async fn create_account(server: &Server, admin: &str, username: &str, email: &str) -> Value {
    let answer = server.post("/v4/serviceAccounts", admin, json!({"username": username, "email": email})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

async fn create_token(server: &Server, admin: &str, idp_id: &str, name: &str) -> Value {
    let answer = server.post(&format!("/v4/serviceAccounts/{idp_id}/tokens"), admin, json!({"name": name})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

fn days_from_now(text: &str) -> i64 {
    (OffsetDateTime::parse(text, &Rfc3339).expect("RFC 3339") - OffsetDateTime::now_utc()).whole_days()
}

/// The flow platform admins script, through the v4 routes, with every body compared
/// field for field.
async fn the_v4_service_account_flow_works_field_for_field(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();

    let account = create_account(&server, &admin, "airflow", "riley+airflow@gmail.com").await;
    assert_eq!(keys_of(&account), ["email", "id", "idpId", "userName"]);
    assert_eq!(account["email"], "riley+airflow@gmail.com");
    assert_eq!(account["userName"], "airflow");
    let id = account["id"].as_str().unwrap();
    assert!(id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let idp_id = account["idpId"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&idp_id).is_ok(), "{idp_id}");
    // Plus addressing makes a distinct address.
    let other = create_account(&server, &admin, "ci-bot", "riley+ci@gmail.com").await;
    let other_idp = other["idpId"].as_str().unwrap().to_string();

    let listed = server.get("/v4/serviceAccounts", &admin).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(keys_of(&listed[0]), ["email", "id", "idpId", "userName", "username"]);
    assert_eq!(listed[0]["username"], "airflow");
    assert_eq!(listed[0]["userName"], "airflow");
    assert_eq!(listed[0]["idpId"], idp_id.as_str());

    let first = create_token(&server, &admin, &idp_id, "nightly").await;
    assert_eq!(keys_of(&first), ["createdAt", "expiresAt", "isValid", "name", "serviceAccountIdpId", "token"]);
    assert_eq!(first["isValid"], true);
    assert_eq!(first["name"], "nightly");
    assert_eq!(first["serviceAccountIdpId"], idp_id.as_str());
    assert!((119..=120).contains(&days_from_now(first["expiresAt"].as_str().unwrap())), "{}", first["expiresAt"]);
    let first_token = first["token"].as_str().unwrap().to_string();
    assert!(first_token.starts_with("kws_"), "{first_token}");
    let second_token = create_token(&server, &admin, &idp_id, "backfill").await["token"].as_str().unwrap().to_string();
    let other_token = create_token(&server, &admin, &other_idp, "nightly").await["token"].as_str().unwrap().to_string();

    let tokens = server.get(&format!("/v4/serviceAccounts/{idp_id}/tokens"), &admin).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert!(!tokens.text.contains(&first_token) && !tokens.text.contains("kws_"), "a list never shows secrets");
    let tokens = tokens.json();
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(keys_of(&tokens[0]), ["createdAt", "expiresAt", "isValid", "name", "serviceAccountIdpId"]);

    // Calling as the account.
    let me = server.call("GET", "/v4/users/self", Via::Header("X-Domino-Api-Key", &first_token), None).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["userName"], "airflow");

    let invalidated =
        server.post(&format!("/v4/serviceAccounts/{idp_id}/tokens/nightly/invalidate"), &admin, json!({})).await;
    assert_eq!(invalidated.status, 200, "{}", invalidated.text);
    assert_eq!(invalidated.json()["isValid"], false);
    assert_eq!(server.get("/v4/users/self", &first_token).await.status, 401, "invalidated on the next request");
    assert_eq!(server.get("/v4/users/self", &second_token).await.status, 200, "the account's other token works");
    assert_eq!(server.get("/v4/users/self", &other_token).await.status, 200, "other accounts' tokens work");
    // The name is free again among valid tokens.
    create_token(&server, &admin, &idp_id, "nightly").await;

    let deactivated = server.post(&format!("/v4/serviceAccounts/{idp_id}/deactivate"), &admin, json!({})).await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    assert_eq!(server.get("/v4/users/self", &second_token).await.status, 401);
    assert_eq!(server.get("/v4/users/self", &other_token).await.status, 200);
    let refused = server.post(&format!("/v4/serviceAccounts/{idp_id}/tokens"), &admin, json!({"name": "new"})).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.json()["detail"].as_str().unwrap().contains("deactivated"));
    let tokens = server.get(&format!("/v4/serviceAccounts/{idp_id}/tokens"), &admin).await.json();
    assert!(tokens.as_array().unwrap().iter().all(|token| token["isValid"] == false), "{tokens}");

    let activated = server.post(&format!("/v4/serviceAccounts/{idp_id}/activate"), &admin, json!({})).await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    assert_eq!(server.get("/v4/users/self", &second_token).await.status, 401, "reactivation revives no token");
    let fresh = create_token(&server, &admin, &idp_id, "after").await["token"].as_str().unwrap().to_string();
    assert_eq!(server.get("/v4/users/self", &fresh).await.status, 200);

    let audit = server.get("/api/v1/audit?format=jsonl", &admin).await.text;
    for action in [
        "service_account.create",
        "service_token.create",
        "service_token.invalidate",
        "service_account.deactivate",
        "service_account.activate",
    ] {
        assert!(audit.contains(&format!("\"action\":\"{action}\"")), "{action} audited");
    }
    for secret in [&first_token, &second_token, &other_token, &fresh] {
        assert!(!audit.contains(secret.as_str()) && !server.stdout_text().contains(secret.as_str()));
    }
}
on_each_store!(the_v4_service_account_flow_works_field_for_field);

async fn bad_service_account_inputs_get_clear_answers(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let account = create_account(&server, &admin, "etl", "etl@example.com").await;
    let idp_id = account["idpId"].as_str().unwrap().to_string();

    for (body, field) in [
        (json!({"email": "a@example.com"}), None),
        (json!({"username": "abc"}), None),
        (json!({"username": "abc", "email": "not-an-address"}), Some("email")),
        (json!({"username": "AB", "email": "ab@example.com"}), Some("username")),
        (json!({"username": "abc", "email": "abc@example.com", "admin": true}), None),
    ] {
        let answer = server.post("/v4/serviceAccounts", &admin, body.clone()).await;
        assert!(matches!(answer.status, 400 | 422), "{body}: {} {}", answer.status, answer.text);
        if let Some(field) = field {
            assert_eq!(answer.json()["field"], field, "{body}");
        }
    }
    let duplicate =
        server.post("/v4/serviceAccounts", &admin, json!({"username": "etl2", "email": "ETL@Example.com"})).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(duplicate.json()["field"], "email");
    let duplicate =
        server.post("/v4/serviceAccounts", &admin, json!({"username": "etl", "email": "etl3@example.com"})).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(duplicate.json()["field"], "username");

    let tokens = format!("/v4/serviceAccounts/{idp_id}/tokens");
    create_token(&server, &admin, &idp_id, "daily").await;
    let duplicate = server.post(&tokens, &admin, json!({"name": "daily"})).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(duplicate.json()["field"], "name");
    for name in ["a/b".to_string(), "x".repeat(300), String::new()] {
        let answer = server.post(&tokens, &admin, json!({"name": name})).await;
        assert_eq!(answer.status, 422, "{name}: {}", answer.text);
        assert_eq!(answer.json()["field"], "name");
    }
    let far = (OffsetDateTime::now_utc() + time::Duration::days(400)).format(&Rfc3339).unwrap();
    let answer = server.post(&tokens, &admin, json!({"name": "far", "expiresAt": far})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json()["field"], "expiresAt");
    let answer = server.post(&tokens, &admin, json!({"name": "short", "lifetimeDays": 7})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(days_from_now(answer.json()["expiresAt"].as_str().unwrap()), 6);

    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/v4/serviceAccounts/{unknown}/tokens"),
        "/v4/serviceAccounts/not-an-id/tokens".to_string(),
        format!("/v4/serviceAccounts/{idp_id}/tokens/missing/invalidate"),
    ] {
        let method = if path.ends_with("invalidate") { "POST" } else { "GET" };
        let answer = server.call(method, &path, Via::Bearer(&admin), None).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
    }
    // A person's id names no service account.
    let person = create_user(&server, &admin, "pat").await;
    assert_eq!(server.get(&format!("/api/v1/service-accounts/{person}"), &admin).await.status, 404);
}
on_each_store!(bad_service_account_inputs_get_clear_answers);

/// Only administrators manage service accounts; never a person without the admin role,
/// and never a service account, even one holding the admin role.
async fn only_administrators_manage_service_accounts(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let account = create_account(&server, &admin, "deployer", "deployer@example.com").await;
    let idp_id = account["idpId"].as_str().unwrap().to_string();
    let account_id = account["id"].as_str().unwrap().to_string();
    let token = create_token(&server, &admin, &idp_id, "t").await["token"].as_str().unwrap().to_string();
    // A service account never holds admin: not granted directly…
    let grant = server.call("PUT", &format!("/api/v1/users/{account_id}/roles/admin"), Via::Bearer(&admin), None).await;
    assert_eq!(grant.status, 422, "{}", grant.text);
    assert_eq!(grant.json()["field"], "role");
    // …and not through a group that has it.
    let group = server.post("/api/v1/groups", &admin, json!({"name": "admins"})).await;
    assert_eq!(group.status, 201, "{}", group.text);
    let group_id = group.json()["id"].as_str().unwrap().to_string();
    for path in
        [format!("/api/v1/groups/{group_id}/roles/admin"), format!("/api/v1/groups/{group_id}/members/{account_id}")]
    {
        let answer = server.call("PUT", &path, Via::Bearer(&admin), None).await;
        assert!(answer.status < 300, "{path}: {}", answer.text);
    }
    let person = create_user(&server, &admin, "pat").await;
    let (_, person_key) = create_key(&server, &admin, &person, json!({"name": "k"})).await;

    let routes = [
        ("POST", "/v4/serviceAccounts".to_string(), Some(json!({"username": "x-y-z", "email": "x@example.com"}))),
        ("GET", "/v4/serviceAccounts".to_string(), None),
        ("POST", format!("/v4/serviceAccounts/{idp_id}/tokens"), Some(json!({"name": "n"}))),
        ("GET", format!("/v4/serviceAccounts/{idp_id}/tokens"), None),
        ("POST", format!("/v4/serviceAccounts/{idp_id}/tokens/t/invalidate"), None),
        ("POST", format!("/v4/serviceAccounts/{idp_id}/deactivate"), None),
        ("POST", format!("/v4/serviceAccounts/{idp_id}/activate"), None),
        ("GET", "/api/v1/service-accounts".to_string(), None),
        ("GET", format!("/api/v1/service-accounts/{account_id}"), None),
        ("GET", format!("/api/v1/service-accounts/{account_id}/tokens"), None),
        ("GET", "/api/v1/service-accounts/tokens?expiringWithin=30d".to_string(), None),
    ];
    for (method, path, body) in &routes {
        let as_person = server.call(method, path, Via::Bearer(&person_key), body.clone()).await;
        assert_eq!(as_person.status, 403, "person {method} {path}: {}", as_person.text);
        assert!(as_person.json()["detail"].as_str().unwrap().contains("admin"), "{}", as_person.text);
        let as_account = server.call(method, path, Via::Bearer(&token), body.clone()).await;
        assert_eq!(as_account.status, 403, "service account {method} {path}: {}", as_account.text);
        assert!(
            as_account.json()["detail"].as_str().unwrap().contains("Service accounts cannot manage service accounts"),
            "{}",
            as_account.text
        );
    }
    // Holding admin through the group opens none of the admin API either: it could
    // otherwise mint a person's key and manage service accounts with that.
    for path in ["/api/v1/users".to_string(), format!("/api/v1/users/{person}/api-keys"), "/api/v1/audit".to_string()] {
        let answer = server.get(&path, &token).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.text);
    }
    let minted = server.post(&format!("/api/v1/users/{person}/api-keys"), &token, json!({"name": "stolen"})).await;
    assert_eq!(minted.status, 403, "{}", minted.text);
    // A service account holds tokens, not personal API keys.
    let key = server.post("/api/v1/users/me/api-keys", &token, json!({"name": "mine"})).await;
    assert_eq!(key.status, 403, "{}", key.text);
    assert!(key.json()["detail"].as_str().unwrap().contains("Service accounts"), "{}", key.text);
    // Nothing was changed by the refused calls.
    assert_eq!(server.get("/v4/users/self", &token).await.status, 200);
}
on_each_store!(only_administrators_manage_service_accounts);

async fn a_second_server_refuses_invalidated_and_deactivated_tokens_within_a_second(backend: Backend) {
    let env = Env::new(backend);
    let first = env.serve(&[]);
    let admin = first.bootstrap_key();
    let second = env.serve(&[]);
    let account = create_account(&first, &admin, "sync", "sync@example.com").await;
    let idp_id = account["idpId"].as_str().unwrap().to_string();
    let one = create_token(&first, &admin, &idp_id, "one").await["token"].as_str().unwrap().to_string();
    let two = create_token(&first, &admin, &idp_id, "two").await["token"].as_str().unwrap().to_string();
    second.wait_for_status("/v4/users/self", &one, 200, Duration::from_secs(1)).await;
    second.wait_for_status("/v4/users/self", &two, 200, Duration::from_secs(1)).await;

    let answer = first.post(&format!("/v4/serviceAccounts/{idp_id}/tokens/one/invalidate"), &admin, json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    second.wait_for_status("/v4/users/self", &one, 401, Duration::from_secs(1)).await;
    assert_eq!(second.get("/v4/users/self", &two).await.status, 200);

    let answer = first.post(&format!("/v4/serviceAccounts/{idp_id}/deactivate"), &admin, json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    second.wait_for_status("/v4/users/self", &two, 401, Duration::from_secs(1)).await;
}
on_each_store!(a_second_server_refuses_invalidated_and_deactivated_tokens_within_a_second);

/// The native routes: the same accounts with more detail, tokens revoked by id, and
/// the admins' view of tokens about to expire.
async fn native_routes_show_who_made_a_token_and_what_expires_soon(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let created = server
        .post("/api/v1/service-accounts", &admin, json!({"username": "reporter", "email": "reporter@example.com"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let account = created.json();
    let id = account["id"].as_str().unwrap().to_string();
    assert_eq!(account["enabled"], true);
    let soon = server
        .post(&format!("/api/v1/service-accounts/{id}/tokens"), &admin, json!({"name": "soon", "lifetimeDays": 3}))
        .await;
    assert_eq!(soon.status, 201, "{}", soon.text);
    let soon = soon.json();
    assert!(soon["secret"].as_str().unwrap().starts_with("kws_"));
    assert!(soon["createdBy"].as_str().unwrap().starts_with("admin_key:"), "{soon}");
    let later = server
        .post(
            &format!("/api/v1/service-accounts/{}/tokens", account["idpId"].as_str().unwrap()),
            &admin,
            json!({"name": "later"}),
        )
        .await;
    assert_eq!(later.status, 201, "{}", later.text);

    let expiring = server.get("/api/v1/service-accounts/tokens?expiringWithin=30d", &admin).await;
    assert_eq!(expiring.status, 200, "{}", expiring.text);
    let names: Vec<Value> = expiring.json().as_array().unwrap().iter().map(|token| token["name"].clone()).collect();
    assert_eq!(names, [json!("soon")]);
    assert_eq!(expiring.json()[0]["serviceAccountUsername"], "reporter");
    for bad in ["30", "30w", "-3d", "1.5d"] {
        let answer = server.get(&format!("/api/v1/service-accounts/tokens?expiringWithin={bad}"), &admin).await;
        assert_eq!(answer.status, 422, "{bad}: {}", answer.text);
    }

    let secret = soon["secret"].as_str().unwrap().to_string();
    let metrics = server.call("GET", "/metrics", Via::None, None).await.text;
    assert!(
        metrics.contains("keyward_service_account_tokens_expiring{realm=\"default\",within=\"7d\"} 1"),
        "{metrics}"
    );
    // Used within a week of its expiry: audited, once a day.
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/users/me", &secret).await.status, 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let warnings = loop {
        let audit = server.get("/api/v1/audit?format=jsonl&action=service_token.near_expiry", &admin).await.text;
        let warnings: Vec<String> = audit.lines().map(str::to_string).collect();
        if !warnings.is_empty() || std::time::Instant::now() > deadline {
            break warnings;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(soon["id"].as_str().unwrap()), "{}", warnings[0]);
    let revoked = server
        .call(
            "DELETE",
            &format!("/api/v1/service-accounts/{id}/tokens/{}", soon["id"].as_str().unwrap()),
            Via::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_eq!(server.get("/api/v1/users/me", &secret).await.status, 401);
    let listed = server.get(&format!("/api/v1/service-accounts/{id}/tokens"), &admin).await.json();
    let soon_listed = listed.as_array().unwrap().iter().find(|token| token["name"] == "soon").unwrap().clone();
    assert_eq!(soon_listed["isValid"], false);
    assert!(soon_listed["invalidatedAt"].is_string());
    assert!(!listed.to_string().contains(&secret), "a list never shows secrets");
}
on_each_store!(native_routes_show_who_made_a_token_and_what_expires_soon);
