//! `keyward proxy`: a run's code calls through it and never holds a long-lived secret.

use crate::harness::{Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// An upstream that answers every request with what it received: method, path, headers.
async fn echo_upstream() -> String {
    echo_upstream_counting().await.0
}

/// The same, with a count of the requests it received.
async fn echo_upstream_counting() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::Request;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move |request: Request| async move {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), Value::from(value.to_str().unwrap_or("<binary>"))))
            .collect();
        let method = request.method().to_string();
        let path = request.uri().to_string();
        let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
        axum::Json(json!({"method": method, "path": path, "headers": headers, "body": body.len()}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

/// A workload of a new user "pat"; returns (workload id, credential file path, launcher key).
async fn workload(env: &Env, server: &Server, admin: &str) -> (String, String, String) {
    let lena = create_user(server, admin, "lena").await;
    let grant =
        server.call("PUT", &format!("/api/v1/users/{lena}/roles/workload-launcher"), Via::Bearer(admin), None).await;
    assert!(grant.status < 300, "{}", grant.text);
    let (_, launcher) = create_key(server, admin, &lena, json!({"name": "launcher"})).await;
    let pat = create_user(server, admin, "pat").await;
    let created =
        server.post("/api/v1/workloads", &launcher, json!({"userId": pat, "kind": "job", "runId": "r1"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = env.dir.path().join("run-credential");
    std::fs::write(&path, created.json()["credential"].as_str().unwrap()).unwrap();
    (created.json()["id"].as_str().unwrap().to_string(), path.display().to_string(), launcher)
}

/// Sends raw bytes to `url`'s host and returns the status line.
fn raw_status(url: &str, request: &str) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = [0u8; 512];
    let read = stream.read(&mut buffer).unwrap();
    String::from_utf8_lossy(&buffer[..read]).lines().next().unwrap_or_default().to_string()
}

async fn get(url: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{url}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_run_calls_through_the_proxy_as_its_user_and_never_holds_a_secret(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (workload_id, credential_file, launcher) = workload(&env, &server, &admin).await;
    let token_file = env.dir.path().join("token");
    let token_file_text = token_file.display().to_string();
    let proxy =
        env.proxy(&["--server", &server.url, "--credential-file", &credential_file, "--token-file", &token_file_text]);

    // To keyward itself (the default upstream): the run's user, whatever the caller sent.
    let (status, me) = get(&proxy.url, "/v4/users/self", &[]).await;
    assert_eq!((status, me["userName"].as_str()), (200, Some("pat")), "{me}");
    let (status, me) = get(&proxy.url, "/v4/users/self", &[("Authorization", &format!("Bearer {admin}"))]).await;
    assert_eq!((status, me["userName"].as_str()), (200, Some("pat")), "the caller's credential is replaced: {me}");

    // The token file holds a valid token, mode 0600, that works against the server.
    let started = Instant::now();
    while !token_file.exists() {
        assert!(started.elapsed() < Duration::from_secs(5), "no token file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let answer = server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await;
    assert_eq!(answer.json()["userName"], "pat", "{}", answer.text);

    // Ending the workload makes the next proxied call fail with 401.
    let ended = server
        .call("DELETE", &format!("/api/v1/workloads/{workload_id}"), Via::Header("X-Api-Key", &launcher), None)
        .await;
    assert_eq!(ended.status, 204, "{}", ended.text);
    let (status, body) = get(&proxy.url, "/v4/users/self", &[]).await;
    assert_eq!(status, 401, "{body}");
}
on_each_store!(a_run_calls_through_the_proxy_as_its_user_and_never_holds_a_secret);

async fn the_upstream_never_sees_the_callers_credential_and_nothing_else_is_reachable(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, credential_file, _) = workload(&env, &server, &admin).await;
    let upstream = echo_upstream().await;
    let proxy = env.proxy(&["--server", &server.url, "--credential-file", &credential_file, "--upstream", &upstream]);

    let (status, seen) = get(
        &proxy.url,
        "/api/jobs/v1/jobs?state=running",
        &[("Authorization", "Bearer caller-secret"), ("X-Api-Key", "kwu_caller"), ("X-Domino-Api-Key", "kwu_alias")],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["path"], "/api/jobs/v1/jobs?state=running");
    let headers = &seen["headers"];
    let authorization = headers["authorization"].as_str().unwrap();
    assert!(authorization.starts_with("Bearer eyJ"), "an access token is injected: {headers}");
    assert!(!seen.to_string().contains("caller-secret") && !seen.to_string().contains("kwu_"), "{seen}");
    assert_eq!(headers["host"].as_str(), Some(upstream.trim_start_matches("http://")));

    // A body goes through (and a small one is held for a retry).
    let response = reqwest::Client::new()
        .post(format!("{}/api/jobs/v1/jobs", proxy.url))
        .body(vec![b'x'; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["body"], 200_000);

    // No tunnels, no other hosts.
    let connect = raw_status(&proxy.url, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert!(connect.contains(" 405 "), "{connect}");
    let absolute = raw_status(&proxy.url, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert!(absolute.contains(" 400 "), "{absolute}");

    // --print-env, for a launcher to export.
    let (ok, printed, stderr) = env.run(&[
        "proxy",
        "--server",
        &server.url,
        "--credential-file",
        &credential_file,
        "--token-file",
        "/run/keyward/token",
        "--print-env",
    ]);
    assert!(ok, "{stderr}");
    for line in [
        "KEYWARD_API_PROXY=http://127.0.0.1:8899",
        "DOMINO_API_PROXY=http://127.0.0.1:8899",
        "KEYWARD_TOKEN_FILE=/run/keyward/token",
        "DOMINO_TOKEN_FILE=/run/keyward/token",
    ] {
        assert!(printed.lines().any(|printed| printed == line), "{line} missing from {printed}");
    }
    assert!(printed.contains(&format!("KEYWARD_API_HOST={}", server.url)), "{printed}");
}
on_each_store!(the_upstream_never_sees_the_callers_credential_and_nothing_else_is_reachable);

async fn the_proxy_starts_without_the_server_and_recovers_when_it_returns(backend: Backend) {
    let env = Env::new(backend);
    let mut server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, credential_file, _) = workload(&env, &server, &admin).await;
    let listen = server.url.trim_start_matches("http://").to_string();
    server.terminate();

    // It starts at once, and says clearly that the server is away.
    let proxy = env.proxy(&["--server", &format!("http://{listen}"), "--credential-file", &credential_file]);
    let (status, body) = get(&proxy.url, "/v4/users/self", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("keyward proxy"), "{body}");

    // The server comes back on the same address: the proxy recovers by itself.
    let _server = env.serve_on(&listen, &[]);
    let started = Instant::now();
    loop {
        let (status, body) = get(&proxy.url, "/v4/users/self", &[]).await;
        if status == 200 {
            assert_eq!(body["userName"], "pat");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the proxy did not recover: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
on_each_store!(the_proxy_starts_without_the_server_and_recovers_when_it_returns);

/// Tokens of 10 seconds, calls for 20: refreshes happen underneath, no call sees a 401,
/// and the token file always holds a whole, valid token.
async fn short_lived_tokens_are_refreshed_without_a_single_401(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let realm = server
        .call("PATCH", "/api/v1/realms/default", Via::Bearer(&admin), Some(json!({"accessTokenLifetimeSeconds": 10})))
        .await;
    assert_eq!(realm.status, 200, "{}", realm.text);
    let (_, credential_file, _) = workload(&env, &server, &admin).await;
    let token_file = env.dir.path().join("token");
    let token_file_text = token_file.display().to_string();
    let proxy =
        env.proxy(&["--server", &server.url, "--credential-file", &credential_file, "--token-file", &token_file_text]);

    // A reader looping on the token file in its own thread: every read is a whole JWT.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, path) = (stop.clone(), token_file.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut tokens = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    assert_eq!(text.split('.').count(), 3, "a partial token file: {text:?}");
                    assert!(text.starts_with("eyJ") && !text.ends_with('.'), "{text:?}");
                    tokens.insert(text);
                    reads += 1;
                }
            }
            (reads, tokens)
        })
    };
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let (status, body) = get(&proxy.url, "/v4/users/self", &[]).await;
        assert_eq!(status, 200, "call {calls} after {:?}: {body}", started.elapsed());
        calls += 1;
        if calls % 20 == 0 {
            let token = std::fs::read_to_string(&token_file).unwrap();
            let answer = server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await;
            assert_eq!(answer.status, 200, "the token file's token after {:?}", started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, tokens) = reader.join().unwrap();
    assert!(reads > 100, "the reader read {reads} times");
    assert!(tokens.len() >= 2, "the token file was refreshed: {} distinct tokens", tokens.len());
}
on_each_store!(short_lived_tokens_are_refreshed_without_a_single_401);

/// Upstream routes of `keyward serve`: authenticated, stripped, identified, forwarded.
async fn upstream_routes_forward_authenticated_calls_only(backend: Backend) {
    let env = Env::new(backend);
    let (upstream, count) = echo_upstream_counting().await;
    let jobs = format!("/api/jobs={upstream}");
    let models = format!("/api/models={upstream},audience=models");
    let server = env.serve(&["--route", &jobs, "--route", &models, "--route", "/api/down=http://127.0.0.1:9"]);
    let admin = server.bootstrap_key();
    let account =
        server.post("/api/v1/service-accounts", &admin, json!({"username": "etl", "email": "etl@example.com"})).await;
    let account = account.json()["id"].as_str().unwrap().to_string();
    let token = server.post(&format!("/api/v1/service-accounts/{account}/tokens"), &admin, json!({"name": "t"})).await;
    let token = token.json()["secret"].as_str().unwrap().to_string();

    // No credential, or a bad one: 401 from keyward; the upstream never hears of it.
    for via in [Via::None, Via::Bearer("kws_nope")] {
        assert_eq!(server.call("GET", "/api/jobs/v1/jobs", via, None).await.status, 401);
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);

    let response = server
        .http
        .post(format!("{}/api/jobs/v1/jobs?queue=nightly", server.url))
        .header("X-Api-Key", &token)
        .header("X-Keyward-User-Id", "forged")
        .header("X-Domino-Api-Key", "kwu_other")
        .header("Cookie", "kw_session=0123abcd; theme=dark")
        .body(vec![b'j'; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/api/jobs/v1/jobs?queue=nightly");
    assert_eq!(seen["body"], 300_000, "bodies over the API's limit stream through");
    let headers = &seen["headers"];
    assert_eq!(headers["x-keyward-user-id"], account.as_str(), "set by keyward, not the client: {headers}");
    assert_eq!(headers["x-keyward-kind"], "service");
    assert_eq!(headers["x-keyward-username"], "etl");
    for name in ["x-api-key", "x-domino-api-key", "authorization"] {
        assert!(headers.get(name).is_none(), "{name} reached the upstream: {headers}");
    }
    assert_eq!(headers["cookie"], "theme=dark", "the portal session is keyward's alone: {headers}");

    // A route with an audience adds an access token for the caller, verifiable with JWKS.
    let (status, seen) = get(&server.url, "/api/models/churn/predict", &[("X-Api-Key", &token)]).await;
    assert_eq!(status, 200, "{seen}");
    let bearer = seen["headers"]["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_string();
    let segment = bearer.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap();
    assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some(account.as_str()), Some("models")));

    // Credentials that may only identify their user do not go through: a key bound to
    // an audience and a token narrowed by a scope are answered 403, as on keyward's API.
    // An API token passes where no access token is made from it, not where one is.
    let user = create_user(&server, &admin, "dana").await;
    let (_, monitor) = create_key(&server, &admin, &user, json!({"name": "dmm", "audience": "model-monitor"})).await;
    let (status, scoped) = server.exchange("default", &token, &[("scope", "read")]).await;
    assert_eq!(status, 200, "{scoped}");
    let scoped = scoped["access_token"].as_str().unwrap().to_string();
    let api_token = server.post("/api/v1/api-tokens", &admin, json!({"userId": user, "name": "script"})).await;
    assert_eq!(api_token.status, 201, "{}", api_token.text);
    let api_token = api_token.json()["token"].as_str().unwrap().to_string();
    let before = count.load(std::sync::atomic::Ordering::SeqCst);
    for (path, via) in [
        ("/api/jobs/x", Via::Header("X-DMM-API-KEY", &monitor)),
        ("/api/jobs/x", Via::Bearer(&scoped)),
        ("/api/models/x", Via::Bearer(&api_token)),
    ] {
        let refused = server.call("GET", path, via, None).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text);
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), before, "the upstream heard of none of them");
    let (status, seen) = get(&server.url, "/api/jobs/x", &[("Authorization", &format!("Bearer {api_token}"))]).await;
    assert_eq!((status, seen["headers"]["x-keyward-username"].as_str()), (200, Some("dana")), "{seen}");

    // The prefix itself and its bare trailing slash are the route's too.
    for path in ["/api/jobs", "/api/jobs/"] {
        let (status, seen) = get(&server.url, path, &[("X-Api-Key", &token)]).await;
        assert_eq!((status, seen["path"].as_str()), (200, Some(path)), "{seen}");
    }
    // An upstream that is down: 502, said plainly.
    let answer = server.call("GET", "/api/down/x", Via::Bearer(&token), None).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    // keyward's own routes are unaffected.
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await.status, 200);
}
on_each_store!(upstream_routes_forward_authenticated_calls_only);

/// A request as `refusing_upstream` received it: every header, and the body.
type Attempt = (Vec<(String, String)>, Vec<u8>);
/// What `refusing_upstream` received, each request with its `x-refuse` value.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Attempt)>>>;

/// An upstream that refuses with 401 the first request carrying each `x-refuse` value and
/// answers every other with the length of the body it received, recording each request;
/// a request with `x-answer-bytes: N` is answered at once with N bytes of `pattern`.
async fn refusing_upstream() -> (String, Received) {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    let seen = Received::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            if let Some(size) = parts.headers.get("x-answer-bytes") {
                return pattern(size.to_str().unwrap().parse().unwrap()).into_response();
            }
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("<binary>").to_string()))
                .collect();
            let refuse = parts.headers.get("x-refuse").and_then(|value| value.to_str().ok()).unwrap_or_default();
            let refuse = refuse.to_string();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let first = {
                let mut log = log.lock().unwrap();
                let first = !log.iter().any(|(seen, _)| *seen == refuse);
                log.push((refuse, (headers, body.to_vec())));
                first
            };
            if first {
                (axum::http::StatusCode::UNAUTHORIZED, "refused once").into_response()
            } else {
                axum::Json(json!({"body": body.len()})).into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// `length` bytes that differ from one position to the next.
fn pattern(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index % 251) as u8).collect()
}

/// A 401 from the upstream (a token revoked or its key rotated meanwhile) is retried
/// once with a fresh token, with the same body, when the proxy could hold the body; a
/// chunked body has streamed and cannot be sent again, so its 401 reaches the caller.
/// The caller's credentials stay out of both attempts, even when its `Connection` header
/// names `Authorization` (the proxy's own token goes in after the stripping). And large
/// answers stream back whole.
async fn a_call_the_upstream_refuses_is_sent_again_with_its_body_and_a_fresh_token(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, credential_file, _) = workload(&env, &server, &admin).await;
    let (upstream, seen) = refusing_upstream().await;
    let proxy = env.proxy(&["--server", &server.url, "--credential-file", &credential_file, "--upstream", &upstream]);
    let attempts = |refuse: &str| -> Vec<Attempt> {
        let log = seen.lock().unwrap();
        log.iter().filter(|(seen, _)| seen == refuse).map(|(_, attempt)| attempt.clone()).collect()
    };
    let authorization = |headers: &[(String, String)]| -> Vec<String> {
        headers.iter().filter(|(name, _)| name == "authorization").map(|(_, value)| value.clone()).collect()
    };

    // A small body with a Content-Length: held, and sent twice, the same bytes each time.
    let sent = pattern(1000);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/jobs", proxy.url))
        .header("x-refuse", "sized")
        .header("Authorization", "Bearer caller-secret")
        .header("X-Api-Key", "kwu_caller")
        .header("Connection", "authorization, x-api-key")
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["body"], 1000);
    let sized = attempts("sized");
    assert_eq!(sized.len(), 2, "the refused call was sent again");
    let tokens: Vec<Vec<String>> = sized.iter().map(|(headers, _)| authorization(headers)).collect();
    for (headers, body) in &sized {
        assert!(*body == sent, "an attempt carried other bytes than the caller sent");
        let token = authorization(headers);
        assert!(token.len() == 1 && token[0].starts_with("Bearer eyJ"), "one injected token per attempt");
        assert!(
            !headers.iter().any(|(name, value)| name == "x-api-key" || value.contains("caller-secret")),
            "a caller's credential reached the upstream: {:?}",
            headers.iter().map(|(name, _)| name).collect::<Vec<_>>()
        );
    }
    assert!(tokens[0] != tokens[1], "the retry carries a freshly exchanged token");

    // No body at all: sent again too.
    let (status, body) = get(&proxy.url, "/v1/jobs", &[("x-refuse", "empty")]).await;
    assert_eq!((status, body["body"].as_u64()), (200, Some(0)), "{body}");
    assert_eq!(attempts("empty").len(), 2);

    // A chunked body streams through once; the refusal is the caller's answer.
    let chunked = raw_status(
        &proxy.url,
        "POST /v1/jobs HTTP/1.1\r\nHost: proxy\r\nx-refuse: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert!(chunked.contains(" 401 "), "{chunked}");
    let chunked = attempts("chunked");
    assert_eq!(chunked.iter().map(|(_, body)| body.as_slice()).collect::<Vec<_>>(), [b"hello".as_slice()]);

    // An answer far larger than the proxy's buffers (`forward::PROXY_BUFFER_BYTES`) streams
    // back whole, twice over the same connections.
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let response =
            client.get(format!("{}/download", proxy.url)).header("x-answer-bytes", "3000000").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.bytes().await.unwrap() == pattern(3_000_000), "the answer arrived altered");
    }
}
on_each_store!(a_call_the_upstream_refuses_is_sent_again_with_its_body_and_a_fresh_token);
