use crate::harness::{Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::{Value, json};

const FIRST: &str = "correct horse battery";
const SECOND: &str = "staple gun orbit 42";

async fn put(server: &Server, path: &str, key: &str, body: Value) -> crate::harness::Answer {
    server.call("PUT", path, Via::Bearer(key), Some(body)).await
}

fn detail(answer: &crate::harness::Answer) -> String {
    answer.json()["detail"].as_str().unwrap_or_default().to_string()
}

/// A service account through the native route; returns (id, kws_ token).
async fn create_service_account(server: &Server, admin: &str, username: &str) -> (String, String) {
    let created =
        server.post("/api/v1/service-accounts", admin, json!({"username": username, "email": "sa@example.com"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let token = server.post(&format!("/api/v1/service-accounts/{id}/tokens"), admin, json!({"name": "t"})).await;
    assert_eq!(token.status, 201, "{}", token.text);
    (id, token.json()["secret"].as_str().unwrap().to_string())
}

async fn administrators_set_the_passwords_of_people_only(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = create_user(&server, &admin, "pat").await;
    let path = format!("/api/v1/users/{pat}/password");

    let set = put(&server, &path, &admin, json!({"password": FIRST})).await;
    assert_eq!(set.status, 204, "{}", set.text);
    for (password, expected) in
        [("short", "at least 12 characters"), ("PAT", "at least 12"), (&*"x".repeat(257), "at most 256")]
    {
        let answer = put(&server, &path, &admin, json!({"password": password})).await;
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.json()["field"], "password");
        assert!(detail(&answer).contains(expected), "{}", answer.text);
    }
    let long_name = create_user(&server, &admin, "long.username.1").await;
    let answer =
        put(&server, &format!("/api/v1/users/{long_name}/password"), &admin, json!({"password": "Long.Username.1"}))
            .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert!(detail(&answer).contains("must not be the username"), "{}", answer.text);
    let answer = put(&server, &path, &admin, json!({"password": FIRST, "admin": true})).await;
    assert_eq!(answer.status, 422, "unknown fields are refused: {}", answer.text);

    // A service account has no password to set.
    let (account, _) = create_service_account(&server, &admin, "robot").await;
    let answer = put(&server, &format!("/api/v1/users/{account}/password"), &admin, json!({"password": FIRST})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(detail(&answer).contains("Service accounts have no password"), "{}", answer.text);
    assert!(detail(&answer).contains("kws_"), "{}", answer.text);

    // Unknown, malformed and other realms' ids are all 404.
    for id in ["0123456789abcdef01234567", "not-an-id"] {
        let answer = put(&server, &format!("/api/v1/users/{id}/password"), &admin, json!({"password": FIRST})).await;
        assert_eq!(answer.status, 404, "{id}: {}", answer.text);
    }
    let (ok, other_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "other", "--name", "other-admin"]);
    assert!(ok, "{stderr}");
    let other_admin = other_admin.trim().to_string();
    server.wait_for_status("/api/v1/users", &other_admin, 200, std::time::Duration::from_secs(1)).await;
    let answer = put(&server, &path, &other_admin, json!({"password": SECOND})).await;
    assert_eq!(answer.status, 404, "{}", answer.text);

    // Only administrators set other people's passwords.
    let (_, pat_key) = create_key(&server, &admin, &pat, json!({"name": "k"})).await;
    let sam = create_user(&server, &admin, "sam").await;
    let answer = put(&server, &format!("/api/v1/users/{sam}/password"), &pat_key, json!({"password": SECOND})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(detail(&answer).contains("admin role"), "{}", answer.text);

    // The user can be created with a password; a bad one creates nothing.
    let bad = server
        .post("/api/v1/users", &admin, json!({"username": "ria", "email": "ria@example.com", "password": "short"}))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.json()["field"], "password");
    let created = server
        .post("/api/v1/users", &admin, json!({"username": "ria", "email": "ria@example.com", "password": FIRST}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // A service account is never created with one.
    for route in ["/api/v1/service-accounts", "/v4/serviceAccounts"] {
        let answer = server
            .post(route, &admin, json!({"username": "bot-2", "email": "bot2@example.com", "password": FIRST}))
            .await;
        assert_eq!(answer.status, 422, "{route}: {}", answer.text);
    }

    let audit = server.get("/api/v1/audit?format=jsonl", &admin).await.text;
    let sets = audit.lines().filter(|line| line.contains("\"action\":\"user.password.set\"")).count();
    assert_eq!(sets, 2, "one for pat, one for ria at creation: {audit}");
    assert!(audit.contains(&format!("\"target\":\"user:{pat}\"")));
    assert_no_password_anywhere(&server, &admin, &[&pat, created.json()["id"].as_str().unwrap()]).await;
}
on_each_store!(administrators_set_the_passwords_of_people_only);

async fn people_change_their_own_password_knowing_the_current_one(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = create_user(&server, &admin, "pat").await;
    let (_, key) = create_key(&server, &admin, &pat, json!({"name": "k"})).await;
    let mine = "/api/v1/users/me/password";

    // No password yet: an API key alone cannot set the first one; an administrator does.
    let first = put(&server, mine, &key, json!({"newPassword": FIRST})).await;
    assert_eq!(first.status, 403, "{}", first.text);
    assert!(detail(&first).contains("administrator sets the first one"), "{}", first.text);
    let set = put(&server, &format!("/api/v1/users/{pat}/password"), &admin, json!({"password": FIRST})).await;
    assert_eq!(set.status, 204, "{}", set.text);
    let missing = put(&server, mine, &key, json!({"newPassword": SECOND})).await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert_eq!(missing.json()["field"], "currentPassword");
    let wrong = put(&server, mine, &key, json!({"currentPassword": "not my password", "newPassword": SECOND})).await;
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert!(detail(&wrong).contains("currentPassword is not your current password"), "{}", wrong.text);
    let short = put(&server, mine, &key, json!({"currentPassword": FIRST, "newPassword": "short"})).await;
    assert_eq!(short.status, 422, "{}", short.text);
    assert_eq!(short.json()["field"], "newPassword");
    let changed = put(&server, mine, &key, json!({"currentPassword": FIRST, "newPassword": SECOND})).await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    let old = put(&server, mine, &key, json!({"currentPassword": FIRST, "newPassword": FIRST})).await;
    assert_eq!(old.status, 403, "the old password is no longer current: {}", old.text);

    // Neither an admin key nor a service account has a password of its own.
    let as_admin_key = put(&server, mine, &admin, json!({"newPassword": FIRST})).await;
    assert_eq!(as_admin_key.status, 403, "{}", as_admin_key.text);
    assert!(detail(&as_admin_key).contains("admin key"), "{}", as_admin_key.text);
    let (_, token) = create_service_account(&server, &admin, "robot").await;
    let as_account = put(&server, mine, &token, json!({"newPassword": FIRST})).await;
    assert_eq!(as_account.status, 403, "{}", as_account.text);
    assert!(detail(&as_account).contains("Service accounts have no password"), "{}", as_account.text);

    // The refusals and the changes are audited, and nothing but the events names them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let audit = loop {
        let audit = server.get("/api/v1/audit?format=jsonl&action=user.password.change", &admin).await.text;
        if audit.lines().count() >= 3 || std::time::Instant::now() > deadline {
            break audit;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let results: Vec<String> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(results.iter().filter(|result| *result == "ok").count(), 1, "{audit}");
    assert_eq!(results.iter().filter(|result| *result == "denied").count(), 2, "{audit}");
    assert!(audit.contains("wrong current password"), "{audit}");
    assert_no_password_anywhere(&server, &admin, &[&pat]).await;
}
on_each_store!(people_change_their_own_password_knowing_the_current_one);

/// A wrong current password is a failed authentication: past the limit, the address
/// gets 429 like any other guesser.
async fn wrong_current_passwords_are_throttled(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&["--auth-failures-per-minute", "3"]);
    let admin = server.bootstrap_key();
    let pat = create_user(&server, &admin, "pat").await;
    let (_, key) = create_key(&server, &admin, &pat, json!({"name": "k"})).await;
    let set = put(&server, &format!("/api/v1/users/{pat}/password"), &admin, json!({"password": FIRST})).await;
    assert_eq!(set.status, 204, "{}", set.text);
    let guess = json!({"currentPassword": "guess number one", "newPassword": SECOND});
    for _ in 0..3 {
        assert_eq!(put(&server, "/api/v1/users/me/password", &key, guess.clone()).await.status, 403);
    }
    let throttled =
        put(&server, "/api/v1/users/me/password", &key, json!({"currentPassword": FIRST, "newPassword": SECOND})).await;
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert!(throttled.headers.get("retry-after").is_some());

    // Guesses sent at once: only as many are checked as the limit leaves, not one each
    // (another node, whose throttle has not seen this address yet).
    let other = env.serve(&["--auth-failures-per-minute", "3"]);
    let sam = create_user(&other, &admin, "sam").await;
    let (_, key) = create_key(&other, &admin, &sam, json!({"name": "k"})).await;
    let set = put(&other, &format!("/api/v1/users/{sam}/password"), &admin, json!({"password": FIRST})).await;
    assert_eq!(set.status, 204, "{}", set.text);
    let guesses = (0..20).map(|guess| {
        let body = json!({"currentPassword": format!("guess number {guess:02}"), "newPassword": SECOND});
        other.call("PUT", "/api/v1/users/me/password", Via::Bearer(&key), Some(body))
    });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses).await.iter().map(|answer| answer.status).collect();
    let checked = statuses.iter().filter(|status| **status == 403).count();
    assert!((1..=3).contains(&checked), "{statuses:?}");
    assert!(statuses.iter().all(|status| [403, 429].contains(status)), "{statuses:?}");
}
on_each_store!(wrong_current_passwords_are_throttled);

/// Neither the hash nor a password shows in users, lists, the audit log or the logs.
async fn assert_no_password_anywhere(server: &Server, admin: &str, user_ids: &[&str]) {
    let mut texts = vec![
        server.get("/api/v1/users", admin).await.text,
        server.get("/api/v1/audit?format=jsonl", admin).await.text,
        server.get("/api/v1/audit", admin).await.text,
        server.stdout_text(),
    ];
    for id in user_ids {
        let user = server.get(&format!("/api/v1/users/{id}"), admin).await;
        assert_eq!(user.status, 200, "{}", user.text);
        texts.push(user.text);
    }
    for text in &texts {
        for needle in ["$argon2", "argon2id", "password_hash", "passwordHash", FIRST, SECOND] {
            assert!(!text.contains(needle), "{needle:?} appears in {text}");
        }
    }
    let openapi = server.call("GET", "/api/v1/openapi.json", Via::None, None).await.json();
    for path in ["/api/v1/users/{id}/password", "/api/v1/users/me/password"] {
        assert!(openapi["paths"][path]["put"].is_object(), "{path} is documented");
    }
}
