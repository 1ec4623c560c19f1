use crate::harness::{Backend, Env, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::json;

async fn health_metrics_and_openapi_are_served(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    assert_eq!(server.call("GET", "/healthz", Via::None, None).await.json(), json!({"status": "ok"}));
    assert_eq!(server.call("GET", "/readyz", Via::None, None).await.status, 200);
    server.get("/api/v1/users", &admin).await;
    server.get("/api/v1/users", "kwu_nope").await;
    let metrics = server.call("GET", "/metrics", Via::None, None).await.text;
    assert!(metrics.contains("keyward_authentications_total{kind=\"admin_key\",result=\"ok\"}"), "{metrics}");
    assert!(metrics.contains("keyward_authentications_total{kind=\"unknown\",result=\"refused\"}"), "{metrics}");
    assert!(metrics.contains("keyward_http_request_duration_seconds_bucket"), "{metrics}");

    let openapi = server.call("GET", "/api/v1/openapi.json", Via::None, None).await.json();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"), "{}", openapi["openapi"]);
    for path in ["/api/v1/users", "/api/v1/users/me/api-keys", "/v4/users/self", "/api/v1/audit"] {
        assert!(openapi["paths"][path].is_object(), "{path} documented");
    }
    let docs = server.call("GET", "/api/docs/", Via::None, None).await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("swagger"), "{}", &docs.text[..200.min(docs.text.len())]);
}
on_each_store!(health_metrics_and_openapi_are_served);

/// Every secret the server hands out stays out of its log stream; the bootstrap key
/// appears once, on stderr, by design.
async fn no_secret_reaches_the_logs(backend: Backend) {
    let env = Env::new(backend);
    let mut server = env.serve(&["--log", "debug"]);
    let admin = server.bootstrap_key();
    let (_, cli_key, _) = env.cli(&["admin-key", "create", "--name", "logged"]);
    let cli_key = cli_key.trim().to_string();
    let mut secrets = vec![admin.clone(), cli_key.clone()];
    let user = create_user(&server, &admin, "lou").await;
    for index in 0..3 {
        let (_, key) = create_key(&server, &admin, &user, json!({"name": format!("k{index}")})).await;
        server.get("/v4/users/self", &key).await;
        secrets.push(key);
    }
    server.wait_for_status("/api/v1/users", &cli_key, 200, std::time::Duration::from_secs(1)).await;
    // Wrong keys are secrets too, as far as logs go.
    let mut typo = secrets[2].clone();
    typo.replace_range(8..9, if &typo[8..9] == "x" { "y" } else { "x" });
    server.get("/v4/users/self", &typo).await;
    secrets.push(typo);
    server.terminate();
    let logs = server.stdout_text();
    assert!(logs.lines().count() > 5, "the server logged something: {logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "secret {} in the logs", &secret[..8]);
        assert!(!logs.contains(&secret[4..]), "secret body in the logs");
    }
    let stderr = server.stderr_text();
    for secret in &secrets[1..] {
        assert!(!stderr.contains(secret.as_str()));
    }
}
on_each_store!(no_secret_reaches_the_logs);

async fn last_used_is_written_in_batches_and_flushed_at_shutdown(backend: Backend) {
    let env = Env::new(backend);
    let mut server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "lee").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    for _ in 0..20 {
        assert_eq!(server.get("/v4/users/self", &key).await.status, 200);
    }
    let listed = server.get("/api/v1/users/me/api-keys", &key).await.json();
    assert_eq!(listed[0]["lastUsedAt"], serde_json::Value::Null, "not written per request");
    assert!(server.terminate().success());
    let server = env.serve(&[]);
    let listed = server.get(&format!("/api/v1/users/{user}/api-keys"), &admin).await.json();
    assert!(listed[0]["lastUsedAt"].is_string(), "flushed at shutdown: {listed}");
}
on_each_store!(last_used_is_written_in_batches_and_flushed_at_shutdown);
