//! API tokens: admin-managed signed JWTs bound to a user, with an expiry, an IP filter,
//! a description and an enabled switch.

use crate::harness::{Answer, Backend, Env, Server, Via, create_key, create_user, grant_role};
use crate::on_each_store;
use base64::Engine;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Many refusals come from one address in these tests; keep the throttle out of them.
const NO_THROTTLE: [&str; 2] = ["--auth-failures-per-minute", "10000"];

async fn create_token(server: &Server, manager: &str, body: Value) -> Answer {
    server.post("/api/v1/api-tokens", manager, body).await
}

/// Creates a token for `user_id` as `manager`; returns (record id, JWT).
async fn token_for(server: &Server, manager: &str, user_id: &str, name: &str, filter: Value) -> (String, String) {
    let answer = create_token(server, manager, json!({"userId": user_id, "name": name, "filter": filter})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let json = answer.json();
    (json["id"].as_str().unwrap().to_string(), json["token"].as_str().unwrap().to_string())
}

/// A user "tess" with the token-manager role and an API key; returns (id, key).
async fn token_manager(server: &Server, admin: &str) -> (String, String) {
    let manager = create_user(server, admin, "tess").await;
    grant_role(server, admin, &manager, "token-manager").await;
    let (_, key) = create_key(server, admin, &manager, json!({"name": "k"})).await;
    (manager, key)
}

async fn patch(server: &Server, key: &str, id: &str, body: Value) -> Answer {
    server.call("PATCH", &format!("/api/v1/api-tokens/{id}"), Via::Header("X-Api-Key", key), Some(body)).await
}

async fn me(server: &Server, token: &str) -> Answer {
    server.call("GET", "/api/user/me", Via::Bearer(token), None).await
}

fn claims(token: &str) -> Value {
    let segment = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn detail(answer: &Answer) -> String {
    answer.json()["detail"].as_str().unwrap_or_default().to_string()
}

/// GET `path` with `token` from the local address `source`, with optional
/// `X-Forwarded-For` values.
async fn get_from(url: &str, path: &str, token: &str, source: &str, forwarded_for: &[&str]) -> u16 {
    let client = reqwest::Client::builder().local_address(source.parse::<IpAddr>().unwrap()).build().unwrap();
    let mut request = client.get(format!("{url}{path}")).bearer_auth(token);
    for value in forwarded_for {
        request = request.header("X-Forwarded-For", *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Polls until `token` answers `status` on `/api/user/me`.
async fn wait_for(server: &Server, token: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        if me(server, token).await.status == status {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{} did not answer {status} within 1 s", server.url);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn audit_details(server: &Server, admin: &str, action: &str) -> Vec<(String, String)> {
    // Refusals reach the audit log off the request path.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = server.get(&format!("/api/v1/audit?action={action}&limit=200"), admin).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (event["target"].as_str().unwrap().to_string(), event["detail"].as_str().unwrap().to_string()))
        .collect()
}

async fn an_admin_makes_a_token_that_acts_as_its_user_until_disabled_filtered_unlocked_or_expired(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&NO_THROTTLE);
    let admin = server.bootstrap_key();
    let pat = create_user(&server, &admin, "pat").await;

    let created = create_token(
        &server,
        &admin,
        json!({"userId": pat, "name": "nightly-export", "description": "the export script", "filter": []}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let record = created.json();
    let id = record["id"].as_str().unwrap().to_string();
    let token = record["token"].as_str().unwrap().to_string();
    assert_eq!(record["userId"], pat.as_str());
    assert_eq!(record["username"], "pat");
    assert_eq!(record["status"], "active");
    assert_eq!(record["enabled"], true);
    assert_eq!(record["generation"], 1);
    assert_eq!(record["filter"], json!([]));
    // It is a JWT signed by the realm's key, naming its record and generation.
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    // Explicitly typed, with its own audience: nothing that expects access tokens takes it.
    assert_eq!(header["typ"], "api-token+jwt");
    assert!(header["kid"].is_string());
    let body = claims(&token);
    assert_eq!(body["sub"], pat.as_str());
    assert_eq!(body["api_token_id"], id.as_str());
    assert_eq!(body["api_token_gen"], 1);
    assert_eq!(body["aud"], "urn:keyward:api-token");
    assert!(body["iss"].as_str().unwrap().ends_with("/auth/realms/default"));

    let answer = me(&server, &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["userName"], "pat", "{}", answer.text);
    let answer = server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // The JWT is never listed or shown again.
    let listed = server.get("/api/v1/api-tokens", &admin).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&token) && !listed.text.contains("\"token\""), "{}", listed.text);
    assert_eq!(listed.json()["items"][0]["name"], "nightly-export");
    let shown = server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(!shown.text.contains(&token));
    assert_eq!(shown.json()["description"], "the export script");

    // The enabled switch and the filter hold from the next request on.
    let answer = patch(&server, &admin, &id, json!({"enabled": false})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["status"], "disabled");
    assert_eq!(me(&server, &token).await.status, 401);
    assert_eq!(patch(&server, &admin, &id, json!({"enabled": true})).await.status, 200);
    assert_eq!(me(&server, &token).await.status, 200);
    let answer = patch(&server, &admin, &id, json!({"filter": ["10.0.0.0/8", "2001:db8::/32"]})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(me(&server, &token).await.status, 401, "the client is 127.0.0.1, outside the filter");
    let answer = patch(&server, &admin, &id, json!({"filter": ["127.0.0.1/32"], "description": "pinned"})).await;
    assert_eq!(answer.json()["filter"], json!(["127.0.0.1"]), "entries are stored in canonical form");
    assert_eq!(me(&server, &token).await.status, 200);

    // Unlock: a new JWT for the same record; the old one stops at once.
    let unlocked = server.post(&format!("/api/v1/api-tokens/{id}/unlock"), &admin, json!({})).await;
    assert_eq!(unlocked.status, 200, "{}", unlocked.text);
    let fresh = unlocked.json()["token"].as_str().unwrap().to_string();
    assert_eq!(unlocked.json()["generation"], 2);
    assert_eq!(claims(&fresh)["api_token_gen"], 2);
    assert_eq!(me(&server, &token).await.status, 401, "the JWT from before the unlock");
    assert_eq!(me(&server, &fresh).await.status, 200);

    // The record's expiry wins over the JWT's exp: moving it out keeps the JWT working,
    // and expiring the record ends it while keeping the record.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(200))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(patch(&server, &admin, &id, json!({"expiresAt": later})).await.status, 200);
    assert_eq!(me(&server, &fresh).await.status, 200);
    let expired = server.post(&format!("/api/v1/api-tokens/{id}/expire"), &admin, json!({})).await;
    assert_eq!(expired.status, 200, "{}", expired.text);
    assert_eq!(expired.json()["status"], "expired");
    assert_eq!(me(&server, &fresh).await.status, 401);
    assert_eq!(server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.json()["status"], "expired");

    // Every change and every refusal is audited; the reasons are for admins only.
    let changes: Vec<String> =
        ["create", "update", "unlock", "expire"].iter().map(|action| format!("api_token.{action}")).collect();
    for action in &changes {
        let events = audit_details(&server, &admin, action).await;
        assert!(events.iter().any(|(target, _)| *target == format!("api_token:{id}")), "{action}: {events:?}");
    }
    let refusals = audit_details(&server, &admin, "auth.authenticate").await;
    for reason in ["disabled", "ip_filter", "superseded", "expired"] {
        assert!(
            refusals.iter().any(|(target, detail)| *target == format!("api_token:{id}") && detail == reason),
            "no {reason} refusal in {refusals:?}"
        );
    }
    let refused = me(&server, &fresh).await;
    assert!(!refused.text.contains("expired"), "the caller only gets the generic 401: {}", refused.text);

    let deleted = server.call("DELETE", &format!("/api/v1/api-tokens/{id}"), Via::Bearer(&admin), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.status, 404);
    assert!(audit_details(&server, &admin, "api_token.delete").await.iter().any(|(target, _)| target.ends_with(&id)));
}
on_each_store!(an_admin_makes_a_token_that_acts_as_its_user_until_disabled_filtered_unlocked_or_expired);

async fn bad_inputs_are_refused_with_what_to_fix_and_nothing_is_written(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = create_user(&server, &admin, "pat").await;

    let answer =
        create_token(&server, &admin, json!({"userId": pat, "name": "a", "filter": ["10.0.0.0/8", "10.0.0.0/33"]}))
            .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(detail(&answer).contains("filter[1]") && detail(&answer).contains("10.0.0.0/33"), "{}", answer.text);
    let answer = create_token(&server, &admin, json!({"userId": pat, "name": "a", "filter": ["192.168.1.7/24"]})).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(detail(&answer).contains("192.168.1.0/24"), "names the range it probably meant: {}", answer.text);
    let answer = create_token(&server, &admin, json!({"userId": pat, "name": "a", "filter": ["localhost"]})).await;
    assert_eq!(answer.status, 400, "{}", answer.text);

    let answer =
        create_token(&server, &admin, json!({"userId": pat, "name": "a", "expiresAt": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json()["field"], "expiresAt");
    assert!(detail(&answer).contains("future"), "{}", answer.text);
    let answer =
        create_token(&server, &admin, json!({"userId": pat, "name": "a", "expiresAt": "2099-01-01T00:00:00Z"})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert!(detail(&answer).contains("366 days"), "{}", answer.text);

    for user in ["0123456789abcdef01234567", "not-an-id"] {
        let answer = create_token(&server, &admin, json!({"userId": user, "name": "a"})).await;
        assert_eq!(answer.status, 404, "{}", answer.text);
    }
    // A user of another realm is not there at all.
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/api-tokens", &acme_admin, 200, Duration::from_secs(1)).await;
    let stranger = create_user(&server, &acme_admin, "stranger").await;
    let answer = create_token(&server, &admin, json!({"userId": stranger, "name": "a"})).await;
    assert_eq!(answer.status, 404, "{}", answer.text);

    // Service accounts hold service-account tokens instead.
    let account =
        server.post("/api/v1/service-accounts", &admin, json!({"username": "robot", "email": "r@example.com"})).await;
    assert_eq!(account.status, 201, "{}", account.text);
    let account_id = account.json()["id"].as_str().unwrap().to_string();
    let answer = create_token(&server, &admin, json!({"userId": account_id, "name": "a"})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json()["field"], "userId");
    assert!(detail(&answer).contains("service-account tokens"), "{}", answer.text);

    let answer = create_token(&server, &admin, json!({"userId": pat, "name": "a/b"})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json()["field"], "name");
    let answer = create_token(&server, &admin, json!({"userId": pat, "name": "a", "admin": true})).await;
    assert_eq!(answer.status, 422, "unknown fields are refused: {}", answer.text);

    // Nothing was written by any of those.
    let listed = server.get("/api/v1/api-tokens", &admin).await.json();
    assert_eq!(listed["items"], json!([]), "{listed}");

    let (id, _) = token_for(&server, &admin, &pat, "a", json!([])).await;
    let answer = create_token(&server, &admin, json!({"userId": pat, "name": "a"})).await;
    assert_eq!(answer.status, 409, "{}", answer.text);
    assert_eq!(answer.json()["field"], "name");
    let answer = patch(&server, &admin, &id, json!({"filter": ["::1/200"]})).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let answer = patch(&server, &admin, &id, json!({"expiresAt": "2001-01-01T00:00:00Z"})).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    let record = server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.json();
    assert_eq!(record["filter"], json!([]), "a refused edit changes nothing: {record}");

    // Another realm's admin sees no such token.
    assert_eq!(server.get(&format!("/api/v1/api-tokens/{id}"), &acme_admin).await.status, 404);
    assert_eq!(patch(&server, &acme_admin, &id, json!({"enabled": false})).await.status, 404);
    assert_eq!(server.post(&format!("/api/v1/api-tokens/{id}/unlock"), &acme_admin, json!({})).await.status, 404);

    // People without the admin or token-manager role cannot manage tokens.
    let (_, key) = create_key(&server, &admin, &pat, json!({"name": "k"})).await;
    let answer = server.get("/api/v1/api-tokens", &key).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(detail(&answer).contains("token-manager"), "{}", answer.text);
    assert_eq!(server.call("GET", "/api/v1/api-tokens", Via::None, None).await.status, 401);
}
on_each_store!(bad_inputs_are_refused_with_what_to_fix_and_nothing_is_written);

async fn token_managers_cannot_reach_roles_they_lack_and_tokens_act_with_roles_as_they_are_now(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, manager_key) = token_manager(&server, &admin).await;
    let pat = create_user(&server, &admin, "pat").await;
    let boss = create_user(&server, &admin, "boss").await;
    let grant = server.call("PUT", &format!("/api/v1/users/{boss}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(grant.status < 300, "{}", grant.text);

    // A token manager makes tokens for people whose roles it holds too.
    let (pat_token_id, pat_token) = token_for(&server, &manager_key, &pat, "script", json!([])).await;
    assert_eq!(me(&server, &pat_token).await.status, 200);
    let answer = create_token(&server, &manager_key, json!({"userId": boss, "name": "escalate"})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(detail(&answer).contains("admin"), "names the role: {}", answer.text);
    let answer = patch(&server, &manager_key, &pat_token_id, json!({"userId": boss})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);

    // An admin's token for the boss is beyond the manager's reach, though visible.
    let (boss_token_id, boss_token) = token_for(&server, &admin, &boss, "boss-script", json!([])).await;
    assert_eq!(server.get(&format!("/api/v1/api-tokens/{boss_token_id}"), &manager_key).await.status, 200);
    // Listing one user's tokens.
    let bosses = server.get(&format!("/api/v1/api-tokens?userId={boss}"), &manager_key).await.json();
    let names: Vec<&str> =
        bosses["items"].as_array().unwrap().iter().map(|token| token["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["boss-script"], "{bosses}");
    let pats = server.get(&format!("/api/v1/api-tokens?userId={pat}"), &manager_key).await.json();
    assert_eq!(pats["items"].as_array().unwrap().len(), 1, "{pats}");
    for (method, path, body) in [
        ("POST", format!("/api/v1/api-tokens/{boss_token_id}/unlock"), Some(json!({}))),
        ("POST", format!("/api/v1/api-tokens/{boss_token_id}/expire"), Some(json!({}))),
        ("PATCH", format!("/api/v1/api-tokens/{boss_token_id}"), Some(json!({"filter": []}))),
        ("DELETE", format!("/api/v1/api-tokens/{boss_token_id}"), None),
    ] {
        let answer = server.call(method, &path, Via::Header("X-Api-Key", &manager_key), body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
    }
    assert_eq!(me(&server, &boss_token).await.status, 200);

    // An admin gives a token to the boss; the new JWT names the boss, the old one ends.
    let moved = patch(&server, &admin, &pat_token_id, json!({"userId": boss})).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let moved_token = moved.json()["token"].as_str().expect("a new JWT for the new user").to_string();
    assert_eq!(claims(&moved_token)["sub"], boss.as_str());
    assert_eq!(me(&server, &pat_token).await.status, 401);
    assert_eq!(me(&server, &moved_token).await.json()["userName"], "boss");
    let moved_back = patch(&server, &admin, &pat_token_id, json!({"userId": pat})).await;
    let pat_token = moved_back.json()["token"].as_str().unwrap().to_string();

    // The token acts with its user's roles as they are now.
    assert_eq!(server.call("GET", "/api/v1/users", Via::Bearer(&pat_token), None).await.status, 403);
    let grant = server.call("PUT", &format!("/api/v1/users/{pat}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(grant.status < 300, "{}", grant.text);
    assert_eq!(server.call("GET", "/api/v1/users", Via::Bearer(&pat_token), None).await.status, 200);
    // Now that pat is an admin, the manager can no longer touch pat's token.
    let answer = server.post(&format!("/api/v1/api-tokens/{pat_token_id}/unlock"), &manager_key, json!({})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    let revoke = server.call("DELETE", &format!("/api/v1/users/{pat}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(revoke.status < 300, "{}", revoke.text);
    assert_eq!(server.call("GET", "/api/v1/users", Via::Bearer(&pat_token), None).await.status, 403);

    // An API token makes no credentials, not even for an admin.
    let answer = server
        .call(
            "POST",
            "/api/v1/api-tokens",
            Via::Bearer(&boss_token),
            Some(json!({"userId": boss, "name": "self-replicating"})),
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    let answer = server
        .call("POST", "/api/v1/users/me/api-keys", Via::Bearer(&boss_token), Some(json!({"name": "escape"})))
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    // Nor a password, which would work from anywhere.
    let answer = server
        .call(
            "PUT",
            &format!("/api/v1/users/{pat}/password"),
            Via::Bearer(&boss_token),
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    // A disabled user's token stops working.
    let disable = server.call("POST", &format!("/api/v1/users/{pat}/disable"), Via::Bearer(&admin), None).await;
    assert!(disable.status < 300, "{}", disable.text);
    assert_eq!(me(&server, &pat_token).await.status, 401);
}
on_each_store!(token_managers_cannot_reach_roles_they_lack_and_tokens_act_with_roles_as_they_are_now);

/// A token a manager (not an admin) minted never acts beyond what its user held then: a
/// copy the manager kept does not gain what the user is granted later.
async fn a_managers_token_stops_when_its_user_gains_a_role_or_group(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (manager, manager_key) = token_manager(&server, &admin).await;
    let quinn = create_user(&server, &admin, "quinn").await;
    let (quinn_token_id, quinn_token) = token_for(&server, &manager_key, &quinn, "script", json!([])).await;
    assert_eq!(me(&server, &quinn_token).await.status, 200);

    // quinn becomes an admin: the manager's copy does not become an admin's token.
    grant_role(&server, &admin, &quinn, "admin").await;
    let escalate =
        server.call("PUT", &format!("/api/v1/users/{manager}/roles/admin"), Via::Bearer(&quinn_token), None).await;
    assert_eq!(escalate.status, 401, "{}", escalate.text);
    assert_eq!(me(&server, &quinn_token).await.status, 401);
    // The refusal is audited, saying why (the audit queue is written in the background).
    let started = Instant::now();
    while !server.get("/api/v1/audit?result=denied", &admin).await.text.contains("outgrown") {
        assert!(started.elapsed() < Duration::from_secs(5), "no audited refusal says outgrown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An admin re-issues it: the new JWT acts as quinn does now.
    let unlocked = server.post(&format!("/api/v1/api-tokens/{quinn_token_id}/unlock"), &admin, json!({})).await;
    assert_eq!(unlocked.status, 200, "{}", unlocked.text);
    let reissued = unlocked.json()["token"].as_str().unwrap().to_string();
    assert_eq!(server.call("GET", "/api/v1/users", Via::Bearer(&reissued), None).await.status, 200);

    // Groups count too, and a token back within its bounds works again.
    let rae = create_user(&server, &admin, "rae").await;
    let (_, rae_token) = token_for(&server, &manager_key, &rae, "script", json!([])).await;
    assert_eq!(me(&server, &rae_token).await.status, 200);
    let group = crate::deployer::group(&server, &admin, "finance", &[&rae], None).await;
    assert_eq!(me(&server, &rae_token).await.status, 401, "rae is now in a group the token was not given");
    let left = server.call("DELETE", &format!("/api/v1/groups/{group}/members/{rae}"), Via::Bearer(&admin), None).await;
    assert!(left.status < 300, "{}", left.text);
    assert_eq!(me(&server, &rae_token).await.status, 200);

    // Nor does it act as the owner of an API service its user makes later.
    let sol = create_user(&server, &admin, "sol").await;
    for user in [&sol, &manager] {
        grant_role(&server, &admin, user, "create-api-service").await;
    }
    let (_, sol_token) = token_for(&server, &manager_key, &sol, "script", json!([])).await;
    let (_, sol_key) = create_key(&server, &admin, &sol, json!({"name": "k"})).await;
    let service =
        server.post("/api/v1/api-services", &sol_key, json!({"name": "ledger", "auth": {"type": "none"}})).await;
    assert_eq!(service.status, 201, "{}", service.text);
    let path = format!("/api/v1/api-services/{}", service.json()["id"].as_str().unwrap());
    assert_eq!(server.get(&path, &sol_key).await.status, 200, "sol owns it");
    assert_eq!(me(&server, &sol_token).await.status, 200, "the token still works");
    let delete = server.call("DELETE", &path, Via::Bearer(&sol_token), None).await;
    assert!([403, 404].contains(&delete.status), "{}", delete.text);
    assert_eq!(server.get(&path, &sol_key).await.status, 200, "still there");
}
on_each_store!(a_managers_token_stops_when_its_user_gains_a_role_or_group);

/// Privileges on infrastructures and API services come from groups and ownership, not
/// roles: a token manager cannot borrow them through a token either.
async fn token_managers_cannot_reach_group_privileges_or_owned_services_they_lack(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (manager, manager_key) = token_manager(&server, &admin).await;

    // alice holds no role, but her group administers the prod infrastructure.
    let alice = create_user(&server, &admin, "alice").await;
    let group = server.post("/api/v1/groups", &admin, json!({"name": "prod-admins"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let joined =
        server.call("PUT", &format!("/api/v1/groups/{group}/members/{alice}"), Via::Bearer(&admin), None).await;
    assert!(joined.status < 300, "{}", joined.text);
    let prod = server.post("/api/v1/infrastructures", &admin, json!({"name": "prod"})).await;
    assert_eq!(prod.status, 201, "{}", prod.text);
    let prod = prod.json()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/infrastructures/{prod}/permissions/{group}");
    let granted = server.call("PUT", &path, Via::Bearer(&admin), Some(json!({"privilege": "admin"}))).await;
    assert!(granted.status < 300, "{}", granted.text);
    let answer = create_token(&server, &manager_key, json!({"userId": alice, "name": "borrow"})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    // The refusal counts the groups and names none: it must not tell a manager which exist.
    let refusal = detail(&answer);
    assert!(refusal.contains("in 1 group(s) you are not in") && !refusal.contains("prod-admins"), "{}", answer.text);
    // In the same group, the manager may.
    let joined =
        server.call("PUT", &format!("/api/v1/groups/{group}/members/{manager}"), Via::Bearer(&admin), None).await;
    assert!(joined.status < 300, "{}", joined.text);
    let answer = create_token(&server, &manager_key, json!({"userId": alice, "name": "shared"})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);

    // bob owns an API service (he made it while he held create-api-service).
    let bob = create_user(&server, &admin, "bob").await;
    let role = format!("/api/v1/users/{bob}/roles/create-api-service");
    assert!(server.call("PUT", &role, Via::Bearer(&admin), None).await.status < 300);
    let (_, bob_key) = create_key(&server, &admin, &bob, json!({"name": "k"})).await;
    let service = server.post("/api/v1/api-services", &bob_key, json!({"name": "churn"})).await;
    assert_eq!(service.status, 201, "{}", service.text);
    assert!(server.call("DELETE", &role, Via::Bearer(&admin), None).await.status < 300);
    let answer = create_token(&server, &manager_key, json!({"userId": bob, "name": "borrow"})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(detail(&answer).contains("owns API services"), "{}", answer.text);
    // An admin may act for anyone.
    let answer = create_token(&server, &admin, json!({"userId": bob, "name": "by-admin"})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}
on_each_store!(token_managers_cannot_reach_group_privileges_or_owned_services_they_lack);

async fn the_filter_sees_the_real_client_address_behind_trusted_proxies_only(backend: Backend) {
    let env = Env::new(backend);
    // One issuer for the three servers, so each accepts the others' tokens.
    let public = ["--public-url", "http://keyward.test", NO_THROTTLE[0], NO_THROTTLE[1]];
    let direct = env.serve(&public);
    let admin = direct.bootstrap_key();
    let pat = create_user(&direct, &admin, "pat").await;
    let (_, loopback_only) = token_for(&direct, &admin, &pat, "loopback", json!(["127.0.0.1/32"])).await;
    let (_, documentation) = token_for(&direct, &admin, &pat, "office", json!(["203.0.113.0/24"])).await;
    let (_, loopback_range) = token_for(&direct, &admin, &pat, "range", json!(["127.0.0.0/8"])).await;

    // No trusted proxy: the socket peer is the client, and X-Forwarded-For is ignored.
    let url = &direct.url;
    assert_eq!(get_from(url, "/api/user/me", &loopback_only, "127.0.0.1", &[]).await, 200);
    assert_eq!(get_from(url, "/api/user/me", &loopback_only, "127.0.0.2", &[]).await, 401);
    assert_eq!(get_from(url, "/api/user/me", &loopback_only, "127.0.0.2", &["127.0.0.1"]).await, 401, "spoofed");
    assert_eq!(get_from(url, "/api/user/me", &documentation, "127.0.0.1", &["203.0.113.9"]).await, 401, "spoofed");

    // Behind a trusted proxy (127.0.0.2): the right-most untrusted X-Forwarded-For entry.
    let proxied = env.serve(&[&public[..], &["--trusted-proxy", "127.0.0.2"]].concat());
    let url = &proxied.url;
    wait_for(&proxied, &loopback_range, 200).await;
    assert_eq!(get_from(url, "/api/user/me", &documentation, "127.0.0.2", &["203.0.113.9"]).await, 200);
    assert_eq!(get_from(url, "/api/user/me", &documentation, "127.0.0.2", &["203.0.113.9, 198.51.100.1"]).await, 401);
    assert_eq!(get_from(url, "/api/user/me", &documentation, "127.0.0.2", &["198.51.100.1, 203.0.113.9"]).await, 200);
    assert_eq!(get_from(url, "/api/user/me", &documentation, "127.0.0.3", &["203.0.113.9"]).await, 401, "untrusted");
    assert_eq!(get_from(url, "/api/user/me", &documentation, "127.0.0.2", &["203.0.113.9:4711"]).await, 200, "a port");
    // Something that is not an address makes the client unknown, never the proxy itself.
    let (_, proxy_only) = token_for(&direct, &admin, &pat, "proxy", json!(["127.0.0.2"])).await;
    let started = Instant::now();
    while get_from(url, "/api/user/me", &proxy_only, "127.0.0.2", &[]).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(1), "the proxy's own call is refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get_from(url, "/api/user/me", &proxy_only, "127.0.0.2", &["junk"]).await, 401);
    assert_eq!(get_from(url, "/api/user/me", &proxy_only, "127.0.0.2", &["203.0.113.9, unknown"]).await, 401);

    // A dual-stack listener sees IPv4 clients as ::ffff:127.0.0.1; the filter matches
    // them as the IPv4 addresses they are.
    let dual = env.serve_on("[::]:0", &public);
    let port = dual.url.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while get_from(&url, "/api/user/me", &loopback_range, "127.0.0.1", &[]).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(1), "::ffff:127.0.0.1 is not let in by 127.0.0.0/8");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get_from(&url, "/api/user/me", &loopback_only, "127.0.0.1", &[]).await, 200);
    assert_eq!(get_from(&url, "/api/user/me", &documentation, "127.0.0.1", &[]).await, 401);
}
on_each_store!(the_filter_sees_the_real_client_address_behind_trusted_proxies_only);

async fn tokens_stay_in_their_realm_and_are_never_turned_into_other_tokens(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&NO_THROTTLE);
    let admin = server.bootstrap_key();
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let pat = create_user(&server, &admin, "pat").await;
    let (id, token) = token_for(&server, &admin, &pat, "script", json!([])).await;
    let (_, filtered) = token_for(&server, &admin, &pat, "pinned", json!(["127.0.0.1"])).await;

    // Realm acme's token endpoint does not know a token of realm default.
    let (status, body) = server.exchange("acme", &token, &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // Nor does its own realm exchange it: an access token would escape the record.
    for subject in [token.clone(), filtered] {
        let (status, body) = server.exchange("default", &subject, &[]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("not exchanged"), "{body}");
    }
    let _ = id;
    // RFC 7009 revocation points to the record instead of pretending.
    let answer = server
        .http
        .post(format!("{}/auth/realms/default/protocol/openid-connect/revoke", server.url))
        .header("X-Api-Key", &admin)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    assert!(answer.text().await.unwrap().contains("/expire"));
    // Userinfo takes access tokens, not API tokens.
    let answer =
        server.call("GET", "/auth/realms/default/protocol/openid-connect/userinfo", Via::Bearer(&token), None).await;
    assert_eq!(answer.status, 401, "{}", answer.text);
}
on_each_store!(tokens_stay_in_their_realm_and_are_never_turned_into_other_tokens);

async fn a_second_process_honours_every_change_within_a_second(backend: Backend) {
    let env = Env::new(backend);
    let public = ["--public-url", "http://keyward.test", NO_THROTTLE[0], NO_THROTTLE[1]];
    let mut first = env.serve(&public);
    let admin = first.bootstrap_key();
    let second = env.serve(&public);
    let pat = create_user(&first, &admin, "pat").await;
    let (id, token) = token_for(&first, &admin, &pat, "script", json!([])).await;
    wait_for(&second, &token, 200).await;

    assert_eq!(patch(&first, &admin, &id, json!({"enabled": false})).await.status, 200);
    wait_for(&second, &token, 401).await;
    assert_eq!(patch(&first, &admin, &id, json!({"enabled": true, "filter": ["10.0.0.0/8"]})).await.status, 200);
    wait_for(&first, &token, 401).await;
    assert_eq!(me(&second, &token).await.status, 401, "the new filter holds on the second node too");
    assert_eq!(patch(&first, &admin, &id, json!({"filter": []})).await.status, 200);
    wait_for(&second, &token, 200).await;
    let unlocked = first.post(&format!("/api/v1/api-tokens/{id}/unlock"), &admin, json!({})).await;
    let fresh = unlocked.json()["token"].as_str().unwrap().to_string();
    wait_for(&second, &token, 401).await;
    wait_for(&second, &fresh, 200).await;
    assert_eq!(me(&first, &fresh).await.status, 200);
    assert_eq!(first.post(&format!("/api/v1/api-tokens/{id}/expire"), &admin, json!({})).await.status, 200);
    wait_for(&second, &fresh, 401).await;
    // Last use is written in batches, and at shutdown: the second node reads it back.
    assert!(first.terminate().success());
    let record = second.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.json();
    assert!(record["lastUsedAt"].is_string(), "{record}");
}
on_each_store!(a_second_process_honours_every_change_within_a_second);
