use crate::harness::{Backend, Env, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::json;

/// Every bad input answers a 4xx problem that says what to fix, and writes nothing.
async fn bad_inputs_get_clear_problems_and_write_nothing(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let post_raw = |body: Vec<u8>, content_type: &'static str| {
        let request = server
            .http
            .post(format!("{}/api/v1/users", server.url))
            .header("X-Api-Key", admin.clone())
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").map(|value| value.to_str().unwrap().to_string());
            (status, content_type, response.text().await.unwrap())
        }
    };
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"".to_vec(), "application/json", 400, "not valid JSON"),
        (b"{\"username\": ".to_vec(), "application/json", 400, "not valid JSON"),
        (b"{\"username\": 5, \"email\": \"a@b.co\"}".to_vec(), "application/json", 422, "username"),
        (b"{\"username\": \"abc\"}".to_vec(), "application/json", 422, "email"),
        (
            b"{\"username\": \"abc\", \"email\": \"a@b.co\", \"isAdmin\": true}".to_vec(),
            "application/json",
            422,
            "isAdmin",
        ),
        (b"{\"username\": \"abc\", \"email\": \"a@b.co\"}".to_vec(), "text/plain", 415, "Content-Type"),
    ];
    for (body, content_type, status, mentions) in cases {
        let (got, got_type, text) = post_raw(body, content_type).await;
        assert_eq!(got, status, "{text}");
        assert_eq!(got_type.as_deref(), Some("application/problem+json"), "{text}");
        assert!(text.contains(mentions), "{status} should mention {mentions}: {text}");
    }
    let (status, head) = declare_ten_megabytes(&server.url, &admin).await;
    assert_eq!(status, 413, "{head}");
    assert!(head.contains("application/problem+json"), "{head}");

    let long_name = "a".repeat(65);
    for (body, field) in [
        (json!({"username": long_name, "email": "x@example.com"}), "username"),
        (json!({"username": "Has Spaces", "email": "x@example.com"}), "username"),
        (json!({"username": "okname", "email": "not-an-email"}), "email"),
        (json!({"username": "okname", "email": "x@example.com", "avatarUrl": "javascript:alert(1)"}), "avatarUrl"),
        (json!({"username": "okname", "email": "x@example.com", "firstName": "a".repeat(101)}), "firstName"),
    ] {
        let answer = server.post("/api/v1/users", &admin, body).await;
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.json()["field"], field, "{}", answer.text);
    }
    assert_eq!(server.get("/api/v1/users", &admin).await.json()["items"], json!([]), "nothing half-written");

    let user = create_user(&server, &admin, "val").await;
    let answer = server.post("/api/v1/users", &admin, json!({"username": "val", "email": "other@example.com"})).await;
    assert_eq!((answer.status, answer.json()["field"].clone()), (409, json!("username")));
    let answer = server.post("/api/v1/users", &admin, json!({"username": "val2", "email": "VAL@example.com"})).await;
    assert_eq!(
        (answer.status, answer.json()["field"].clone()),
        (409, json!("email")),
        "emails compare case-insensitively"
    );
    let answer = server.post("/api/v1/users", &admin, json!({"username": "val3", "email": "val+ci@example.com"})).await;
    assert_eq!(answer.status, 201, "plus addressing makes a distinct address: {}", answer.text);

    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "a/b"}), "name"),
        (json!({"name": "n".repeat(300)}), "name"),
        (json!({"name": "ok", "audience": "Not Valid"}), "audience"),
        (json!({"name": "ok", "expiresAt": "tomorrow"}), "expiresAt"),
    ] {
        let answer = server.post("/api/v1/users/me/api-keys", &key, body).await;
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.json()["field"], field, "{}", answer.text);
    }
    assert_eq!(server.get("/api/v1/users/not-an-id", &admin).await.status, 404);
    assert_eq!(server.get("/api/v1/no-such-route", &admin).await.status, 404);
}
on_each_store!(bad_inputs_get_clear_problems_and_write_nothing);

/// Missing, malformed, unknown, tampered and revoked credentials all get the same 401.
async fn every_refused_credential_gets_the_same_401(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "zed").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    let mut flipped = key.clone().into_bytes();
    let position = 10;
    flipped[position] = if flipped[position] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let unknown_but_well_formed = {
        let (_, other) = create_key(&server, &admin, &user, json!({"name": "other"})).await;
        let listed = server.get(&format!("/api/v1/users/{user}/api-keys"), &admin).await.json();
        let id = listed.as_array().unwrap().iter().find(|item| item["name"] == "other").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        server.call("DELETE", &format!("/api/v1/users/{user}/api-keys/{id}"), Via::Bearer(&admin), None).await;
        other
    };
    let mut bodies = std::collections::BTreeSet::new();
    for via in [
        Via::None,
        Via::Bearer(""),
        Via::Header("Authorization", "Basic dXNlcjpwYXNz"),
        Via::Bearer("kwu_short"),
        Via::Bearer(&flipped),
        Via::Bearer(&unknown_but_well_formed),
        Via::Header("X-Api-Key", "not a key at all"),
    ] {
        let answer = server.call("GET", "/v4/users/self", via, None).await;
        assert_eq!(answer.status, 401, "{}", answer.text);
        assert_eq!(answer.headers.get("www-authenticate").unwrap(), "Bearer realm=\"keyward\"");
        bodies.insert(answer.text);
    }
    let non_utf8 = server
        .http
        .get(format!("{}/v4/users/self", server.url))
        .header("X-Api-Key", reqwest::header::HeaderValue::from_bytes(b"kwu_\xff\xfe").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(non_utf8.status().as_u16(), 401);
    bodies.insert(non_utf8.text().await.unwrap());
    assert_eq!(bodies.len(), 1, "one generic body for every refusal: {bodies:?}");
    assert_eq!(server.get("/v4/users/self", &key).await.status, 200);
}
on_each_store!(every_refused_credential_gets_the_same_401);

async fn repeated_failures_from_one_address_are_throttled(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&["--auth-failures-per-minute", "5"]);
    let admin = server.bootstrap_key();
    for _ in 0..5 {
        assert_eq!(server.get("/api/v1/users", "kwu_guess").await.status, 401);
    }
    let answer = server.get("/api/v1/users", "kwu_guess").await;
    assert_eq!(answer.status, 429, "{}", answer.text);
    let retry_after: u64 = answer.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(server.get("/api/v1/users", &admin).await.status, 429, "the address is throttled, whatever it sends");
    assert_eq!(
        server.call("GET", "/healthz", Via::None, None).await.status,
        200,
        "unauthenticated routes still answer"
    );
}
on_each_store!(repeated_failures_from_one_address_are_throttled);

/// Sends the headers of a 10 MB POST and the first 64 KiB of its body, then reads the
/// answer, as a client that watches for an early response does.
async fn declare_ten_megabytes(url: &str, key: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/users HTTP/1.1\r\nHost: {address}\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&vec![b' '; 64 * 1024]).await;
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, text)
}
