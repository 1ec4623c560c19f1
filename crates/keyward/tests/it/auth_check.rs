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
    // An admin key is no user.
    let check = server.call("GET", "/api/v1/auth/check", Via::Header("X-Api-Key", &admin), None).await;
    assert_eq!(check.headers["x-keyward-kind"], "admin-key");
    assert!(check.headers.get("x-keyward-user-id").is_none());
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
