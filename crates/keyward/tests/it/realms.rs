use crate::harness::{Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::{Value, json};
use std::time::Duration;

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("an object").keys().cloned().collect();
    keys.sort();
    keys
}

async fn create_realm(server: &Server, admin: &str, body: Value) -> Value {
    let answer = server.post("/api/v1/realms", admin, body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()
}

async fn patch(server: &Server, key: &str, path: &str, body: Value) -> crate::harness::Answer {
    server.call("PATCH", path, Via::Header("X-Api-Key", key), Some(body)).await
}

fn names(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|realm| realm["name"].as_str().unwrap().to_string()).collect()
}

/// An admin key of another realm, made with the CLI, once the server accepts it.
async fn realm_admin_key(env: &Env, server: &Server, realm: &str) -> String {
    let (ok, key, stderr) = env.cli(&["admin-key", "create", "--realm", realm, "--name", &format!("{realm}-admin")]);
    assert!(ok, "{stderr}");
    let key = key.trim().to_string();
    server.wait_for_status("/api/v1/realms", &key, 200, Duration::from_secs(1)).await;
    key
}

async fn an_admin_key_of_the_default_realm_creates_lists_updates_disables_and_enables_realms(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();

    let acme = create_realm(
        &server,
        &admin,
        json!({"name": "acme", "displayName": "ACME Corp", "signingAlg": "RS256", "accessTokenLifetimeSeconds": 600}),
    )
    .await;
    assert_eq!(
        keys_of(&acme),
        [
            "accessTokenLifetimeSeconds",
            "createdAt",
            "displayName",
            "enabled",
            "name",
            "serviceTokenMaxLifetimeDays",
            "signingAlg",
            "userApiKeyMaxLifetimeDays",
            "userApiKeysAllowed"
        ]
    );
    assert_eq!(acme["name"], "acme");
    assert_eq!(acme["displayName"], "ACME Corp");
    assert_eq!(acme["enabled"], true);
    assert_eq!(acme["signingAlg"], "RS256");
    assert_eq!(acme["accessTokenLifetimeSeconds"], 600);
    assert_eq!(acme["userApiKeysAllowed"], true);
    assert_eq!(acme["userApiKeyMaxLifetimeDays"], 90);
    assert_eq!(acme["serviceTokenMaxLifetimeDays"], 365);
    let beta = create_realm(&server, &admin, json!({"name": "beta_2"})).await;
    assert_eq!(
        (&beta["displayName"], &beta["signingAlg"], &beta["accessTokenLifetimeSeconds"]),
        (&json!(""), &json!("ES256"), &json!(300)),
        "the defaults"
    );

    let listed = server.get("/api/v1/realms", &admin).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(names(&listed.json()), ["default", "acme", "beta_2"]);
    let first = server.get("/api/v1/realms?limit=2", &admin).await.json();
    assert_eq!(names(&first), ["default", "acme"]);
    let cursor = first["nextCursor"].as_str().expect("a next page").to_string();
    let rest = server.get(&format!("/api/v1/realms?limit=2&cursor={cursor}"), &admin).await.json();
    assert_eq!((names(&rest), rest["nextCursor"].clone()), (vec!["beta_2".to_string()], Value::Null));

    let got = server.get("/api/v1/realms/acme", &admin).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json(), acme);

    let patched = patch(
        &server,
        &admin,
        "/api/v1/realms/acme",
        json!({"displayName": "ACME", "signingAlg": "EdDSA", "accessTokenLifetimeSeconds": 3600}),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let patched = patched.json();
    assert_eq!(
        (&patched["displayName"], &patched["signingAlg"], &patched["accessTokenLifetimeSeconds"]),
        (&json!("ACME"), &json!("EdDSA"), &json!(3600))
    );
    // A field left out stays as it is.
    let patched = patch(&server, &admin, "/api/v1/realms/acme", json!({"accessTokenLifetimeSeconds": 60})).await.json();
    assert_eq!(
        (&patched["displayName"], &patched["signingAlg"], &patched["accessTokenLifetimeSeconds"]),
        (&json!("ACME"), &json!("EdDSA"), &json!(60))
    );
    assert_eq!(server.get("/api/v1/realms/acme", &admin).await.json(), patched);

    let disabled = server.post("/api/v1/realms/acme/disable", &admin, json!({})).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.json()["enabled"], false);
    assert_eq!(server.get("/api/v1/realms/acme", &admin).await.json()["enabled"], false);
    let enabled = server.post("/api/v1/realms/acme/enable", &admin, json!({})).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.json()["enabled"], true);

    let events = server.get("/api/v1/audit?format=jsonl", &admin).await.text;
    for expected in ["realm.create", "realm.update", "realm.disable", "realm.enable"] {
        assert!(events.contains(&format!("\"action\":\"{expected}\"")), "{expected} in {events}");
    }
    assert!(events.contains("\"target\":\"realm:acme\""), "{events}");

    let openapi = server.call("GET", "/api/v1/openapi.json", Via::None, None).await.text;
    for path in
        ["/api/v1/realms", "/api/v1/realms/{name}", "/api/v1/realms/{name}/disable", "/api/v1/realms/{name}/enable"]
    {
        assert!(openapi.contains(&format!("\"{path}\"")), "{path} in the OpenAPI document");
    }
}
on_each_store!(an_admin_key_of_the_default_realm_creates_lists_updates_disables_and_enables_realms);

async fn users_and_service_accounts_cannot_manage_realms_even_with_the_admin_role(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "ada").await;
    let grant = server.call("PUT", &format!("/api/v1/users/{user}/roles/admin"), Via::Bearer(&admin), None).await;
    assert_eq!(grant.status, 200, "{}", grant.text);
    let (_, user_key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.get("/api/v1/users", &user_key).await.status, 200, "the user is an administrator");
    let account =
        server.post("/v4/serviceAccounts", &admin, json!({"username": "bot", "email": "bot@example.com"})).await;
    let idp_id = account.json()["idpId"].as_str().unwrap().to_string();
    let token = server.post(&format!("/v4/serviceAccounts/{idp_id}/tokens"), &admin, json!({"name": "t"})).await;
    let token = token.json()["token"].as_str().unwrap().to_string();

    for key in [&user_key, &token] {
        for (method, path, body) in [
            ("GET", "/api/v1/realms", None),
            ("POST", "/api/v1/realms", Some(json!({"name": "sneaky"}))),
            ("GET", "/api/v1/realms/default", None),
            ("PATCH", "/api/v1/realms/default", Some(json!({"displayName": "x"}))),
            ("POST", "/api/v1/realms/default/disable", None),
            ("POST", "/api/v1/realms/default/enable", None),
        ] {
            let answer = server.call(method, path, Via::Bearer(key), body).await;
            assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
            let detail = answer.json()["detail"].as_str().unwrap().to_string();
            assert!(detail.contains("admin key") && detail.contains("keyward admin-key create"), "{detail}");
        }
    }
    assert_eq!(names(&server.get("/api/v1/realms", &admin).await.json()), ["default"], "nothing was created");
}
on_each_store!(users_and_service_accounts_cannot_manage_realms_even_with_the_admin_role);

async fn an_admin_key_of_another_realm_sees_only_its_own_realm(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    create_realm(&server, &admin, json!({"name": "acme"})).await;
    create_realm(&server, &admin, json!({"name": "beta"})).await;
    let acme_admin = realm_admin_key(&env, &server, "acme").await;

    assert_eq!(names(&server.get("/api/v1/realms", &acme_admin).await.json()), ["acme"]);
    assert_eq!(server.get("/api/v1/realms/acme", &acme_admin).await.status, 200);
    let patched = patch(&server, &acme_admin, "/api/v1/realms/acme", json!({"displayName": "Ours"})).await;
    assert_eq!((patched.status, patched.json()["displayName"].clone()), (200, json!("Ours")), "{}", patched.text);

    // Another realm answers exactly like a realm that does not exist.
    let missing = server.get("/api/v1/realms/nonexistent", &acme_admin).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    for name in ["default", "beta", "nonexistent"] {
        for (method, path, body) in [
            ("GET", format!("/api/v1/realms/{name}"), None),
            ("PATCH", format!("/api/v1/realms/{name}"), Some(json!({"displayName": "x"}))),
            ("POST", format!("/api/v1/realms/{name}/disable"), None),
            ("POST", format!("/api/v1/realms/{name}/enable"), None),
        ] {
            let answer = server.call(method, &path, Via::Bearer(&acme_admin), body).await;
            assert_eq!((answer.status, answer.text.as_str()), (404, missing.text.as_str()), "{method} {path}");
        }
    }
    let answer = server.post("/api/v1/realms", &acme_admin, json!({"name": "gamma"})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(answer.json()["detail"].as_str().unwrap().contains("\"default\""), "{}", answer.text);
    assert_eq!(server.get("/api/v1/realms/beta", &admin).await.json()["displayName"], "", "beta is untouched");
    assert_eq!(names(&server.get("/api/v1/realms", &admin).await.json()), ["default", "acme", "beta"]);
}
on_each_store!(an_admin_key_of_another_realm_sees_only_its_own_realm);

async fn bad_realm_inputs_get_clear_problems_and_write_nothing(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let long = "r".repeat(65);
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "-acme"}), "name"),
        (json!({"name": "_acme"}), "name"),
        (json!({"name": "Acme"}), "name"),
        (json!({"name": "acme corp"}), "name"),
        (json!({"name": "acme/corp"}), "name"),
        (json!({"name": long}), "name"),
        (json!({"name": "acme", "signingAlg": "none"}), "signingAlg"),
        (json!({"name": "acme", "signingAlg": "HS256"}), "signingAlg"),
        (json!({"name": "acme", "signingAlg": "es256"}), "signingAlg"),
        (json!({"name": "acme", "accessTokenLifetimeSeconds": 5}), "accessTokenLifetimeSeconds"),
        (json!({"name": "acme", "accessTokenLifetimeSeconds": 86_401}), "accessTokenLifetimeSeconds"),
        (json!({"name": "acme", "displayName": "d".repeat(101)}), "displayName"),
        (json!({"name": "acme", "enabled": false}), "enabled"),
    ] {
        let answer = server.post("/api/v1/realms", &admin, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert_eq!(answer.headers.get("content-type").unwrap(), "application/problem+json");
        let problem = answer.json();
        assert!(problem["detail"].as_str().unwrap().contains(field), "{body}: {problem}");
        if field != "enabled" {
            assert_eq!(problem["field"], field, "{body}: {problem}");
        }
    }
    assert_eq!(names(&server.get("/api/v1/realms", &admin).await.json()), ["default"], "nothing half-written");

    create_realm(&server, &admin, json!({"name": "acme"})).await;
    for name in ["acme", "default"] {
        let answer = server.post("/api/v1/realms", &admin, json!({"name": name})).await;
        assert_eq!((answer.status, answer.json()["field"].clone()), (409, json!("name")), "{}", answer.text);
    }
    for (body, field) in [
        (json!({"signingAlg": "none"}), "signingAlg"),
        (json!({"accessTokenLifetimeSeconds": 5}), "accessTokenLifetimeSeconds"),
        (json!({"displayName": "d".repeat(101)}), "displayName"),
        (json!({"name": "renamed"}), "name"),
    ] {
        let answer = patch(&server, &admin, "/api/v1/realms/acme", body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert!(answer.json()["detail"].as_str().unwrap().contains(field), "{body}: {}", answer.text);
    }
    let acme = server.get("/api/v1/realms/acme", &admin).await.json();
    assert_eq!((&acme["signingAlg"], &acme["accessTokenLifetimeSeconds"]), (&json!("ES256"), &json!(300)));
    assert_eq!(patch(&server, &admin, "/api/v1/realms/nope", json!({"displayName": "x"})).await.status, 404);
}
on_each_store!(bad_realm_inputs_get_clear_problems_and_write_nothing);

async fn disabling_a_realm_refuses_its_credentials_at_once_and_enabling_restores_them(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    create_realm(&server, &admin, json!({"name": "acme"})).await;
    let acme_admin = realm_admin_key(&env, &server, "acme").await;
    let user = create_user(&server, &acme_admin, "rae").await;
    let (_, user_key) = create_key(&server, &acme_admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.get("/v4/users/self", &user_key).await.status, 200);

    let answer = server.post("/api/v1/realms/acme/disable", &admin, json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // The next request, not a poll interval later.
    assert_eq!(server.get("/api/v1/realms", &acme_admin).await.status, 401);
    assert_eq!(server.get("/v4/users/self", &user_key).await.status, 401);
    assert_eq!(server.get("/api/v1/realms", &admin).await.status, 200, "the default realm is untouched");

    let answer = server.post("/api/v1/realms/acme/enable", &admin, json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(server.get("/api/v1/realms", &acme_admin).await.status, 200);
    assert_eq!(server.get("/v4/users/self", &user_key).await.status, 200);

    // A realm's own admin key may disable its realm, and is refused from then on.
    let answer = server.post("/api/v1/realms/acme/disable", &acme_admin, json!({})).await;
    assert_eq!((answer.status, answer.json()["enabled"].clone()), (200, json!(false)), "{}", answer.text);
    assert_eq!(server.get("/api/v1/realms/acme", &acme_admin).await.status, 401);

    // Disabling the default realm would lock out realm management.
    let answer = server.post("/api/v1/realms/default/disable", &admin, json!({})).await;
    assert_eq!(answer.status, 409, "{}", answer.text);
    assert!(answer.json()["detail"].as_str().unwrap().contains("lock out realm management"), "{}", answer.text);
    let default = server.get("/api/v1/realms/default", &admin).await;
    assert_eq!((default.status, default.json()["enabled"].clone()), (200, json!(true)));
}
on_each_store!(disabling_a_realm_refuses_its_credentials_at_once_and_enabling_restores_them);
