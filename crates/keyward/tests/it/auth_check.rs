//! `GET|POST /api/v1/auth/check`, as nginx `auth_request` and Envoy `ext_authz` call it.

use crate::harness::{Backend, Env, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::json;

async fn the_auth_check_answers_the_callers_identity_in_headers(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let ada = create_user(&server, &admin, "ada").await;
    let (_, key) = create_key(&server, &admin, &ada, json!({"name": "k"})).await;
    for name in ["analysts", "admins-eu"] {
        let group = server.post("/api/v1/groups", &admin, json!({"name": name})).await;
        assert_eq!(group.status, 201, "{}", group.text);
        let group = group.json()["id"].as_str().unwrap().to_string();
        let added =
            server.call("PUT", &format!("/api/v1/groups/{group}/members/{ada}"), Via::Bearer(&admin), None).await;
        assert!(added.status < 300, "{}", added.text);
    }

    for method in ["GET", "POST"] {
        let check = server.call(method, "/api/v1/auth/check", Via::Header("X-Api-Key", &key), None).await;
        assert_eq!(check.status, 200, "{}", check.text);
        let header = |name: &str| check.headers.get(name).map(|value| value.to_str().unwrap().to_string());
        assert_eq!(header("x-keyward-user-id").as_deref(), Some(ada.as_str()));
        assert_eq!(header("x-keyward-username").as_deref(), Some("ada"));
        assert_eq!(header("x-keyward-email").as_deref(), Some("ada@example.com"));
        assert_eq!(header("x-keyward-groups").as_deref(), Some("admins-eu,analysts"));
        assert_eq!(header("x-keyward-kind").as_deref(), Some("user"));
        assert_eq!(header("x-keyward-credential-kind").as_deref(), Some("user_api_key"));
    }
    // The answer is made once and kept with the user; a change to the user shows at once.
    let grant =
        server.call("PUT", &format!("/api/v1/users/{ada}/roles/token-manager"), Via::Bearer(&admin), None).await;
    assert!(grant.status < 300, "{}", grant.text);
    let group = server.post("/api/v1/groups", &admin, json!({"name": "zeta"})).await;
    let group = group.json()["id"].as_str().unwrap().to_string();
    let added = server.call("PUT", &format!("/api/v1/groups/{group}/members/{ada}"), Via::Bearer(&admin), None).await;
    assert!(added.status < 300, "{}", added.text);
    let check = server.call("GET", "/api/v1/auth/check", Via::Header("X-Api-Key", &key), None).await;
    assert_eq!(check.headers["x-keyward-groups"], "admins-eu,analysts,zeta");
    assert_eq!(check.headers["x-keyward-roles"], "token-manager");
    assert_eq!(check.headers["content-type"], "application/json");
    assert_eq!(check.headers["cache-control"], "no-store");
    assert_eq!(check.headers["content-length"], check.text.len().to_string().as_str());
    assert_eq!(check.headers.get_all("content-length").iter().count(), 1);
    assert_eq!(
        check.json(),
        json!({"subject": ada, "username": "ada", "realm": "default", "credentialKind": "user_api_key",
               "roles": ["token-manager"]})
    );
    // Each answer carries its own request id: the one the caller sent, or a new one.
    let traced = server
        .http
        .get(format!("{}/api/v1/auth/check", server.url))
        .header("X-Api-Key", &key)
        .header("X-Request-Id", "trace-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "trace-4711");
    let first = check.headers["x-request-id"].to_str().unwrap().to_string();
    let again = server.call("GET", "/api/v1/auth/check", Via::Header("X-Api-Key", &key), None).await;
    let second = again.headers["x-request-id"].to_str().unwrap();
    assert!(first.len() == 36 && second.len() == 36 && first != second, "{first} {second}");
    // The same user through an access token: the answer names that kind of credential.
    let (status, exchanged) = server.exchange("default", &key, &[]).await;
    assert_eq!(status, 200);
    let access_token = exchanged["access_token"].as_str().unwrap();
    let check = server.call("GET", "/api/v1/auth/check", Via::Bearer(access_token), None).await;
    assert_eq!(check.status, 200, "{}", check.text);
    assert_eq!(check.headers["x-keyward-credential-kind"], "access_token");
    assert_eq!(check.headers["x-keyward-user-id"], ada.as_str());
    assert_eq!(check.json()["credentialKind"], "access_token");
    let check = server.call("GET", "/api/v1/auth/check", Via::Header("X-Api-Key", &key), None).await;
    assert_eq!(check.headers["x-keyward-credential-kind"], "user_api_key");
    // An admin key is no user.
    let check = server.call("GET", "/api/v1/auth/check", Via::Header("X-Api-Key", &admin), None).await;
    assert_eq!(check.headers["x-keyward-kind"], "admin-key");
    assert!(check.headers.get("x-keyward-user-id").is_none());
    assert_eq!(check.json()["credentialKind"], "admin_key");
    assert_eq!(check.json()["subject"], serde_json::Value::Null);
    // A service account says so.
    let account =
        server.post("/api/v1/service-accounts", &admin, json!({"username": "etl", "email": "etl@example.com"})).await;
    let account = account.json()["id"].as_str().unwrap().to_string();
    let token = server.post(&format!("/api/v1/service-accounts/{account}/tokens"), &admin, json!({"name": "t"})).await;
    let token = token.json()["secret"].as_str().unwrap().to_string();
    let check = server.call("GET", "/api/v1/auth/check", Via::Bearer(&token), None).await;
    assert_eq!(check.headers["x-keyward-kind"], "service");
    assert_eq!(check.headers["x-keyward-email"], "etl@example.com");
    // No credential, or a refused one: 401, with nothing about anyone.
    for via in [Via::None, Via::Bearer("kwu_nope")] {
        let check = server.call("GET", "/api/v1/auth/check", via, None).await;
        assert_eq!(check.status, 401);
        assert!(check.headers.get("x-keyward-user-id").is_none());
    }
}
on_each_store!(the_auth_check_answers_the_callers_identity_in_headers);
