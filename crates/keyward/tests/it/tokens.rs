//! The token service end to end: discovery, JWKS, the grants, access tokens on the API,
//! introspection, revocation, rotation, and the attacks the verifier must refuse.

use crate::harness::{Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::time::Duration;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn token_path(realm: &str) -> String {
    format!("/auth/realms/{realm}/protocol/openid-connect/token")
}

/// POSTs a form, optionally with HTTP Basic client credentials.
async fn form(server: &Server, path: &str, basic: Option<(&str, &str)>, fields: &[(&str, &str)]) -> (u16, Value) {
    let mut request = server.http.post(format!("{}{path}", server.url)).form(fields);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A service account with one token, made by `admin` in its realm.
async fn service_token(server: &Server, admin: &str, username: &str) -> (String, String) {
    let account = server
        .post("/v4/serviceAccounts", admin, json!({"username": username, "email": format!("{username}@example.com")}))
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let account = account.json();
    let idp_id = account["idpId"].as_str().unwrap().to_string();
    let token = server.post(&format!("/v4/serviceAccounts/{idp_id}/tokens"), admin, json!({"name": "ci"})).await;
    assert_eq!(token.status, 200, "{}", token.text);
    (account["id"].as_str().unwrap().to_string(), token.json()["token"].as_str().unwrap().to_string())
}

async fn client_credentials(server: &Server, realm: &str, username: &str, secret: &str) -> String {
    let (status, body) =
        form(server, &token_path(realm), Some((username, secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The realm's current signing key, opened from the store with the data dir's master
/// key: what an attacker who had stolen both could sign with. Used here to forge tokens
/// that are validly signed but wrong in one other way each.
async fn signing_key(env: &Env, realm: &str) -> server::oidc::keys::LoadedKey {
    let url = match &env.backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rw", env.data_dir().join("keyward.db").display()),
        Backend::Postgres { url } => url.clone(),
    };
    let store = store::Store::connect(&url).await.expect("connect");
    let master_text = std::fs::read_to_string(env.data_dir().join("master.key")).expect("master key");
    let master = keyward_core::MasterKey::from_file_text(&master_text).expect("master key text");
    let realm = store.realm_by_name(realm).await.expect("realm");
    let rows = store.realm_signing_keys(realm.id, time::OffsetDateTime::now_utc()).await.expect("keys");
    let row = rows.iter().max_by_key(|row| row.activates_at).expect("a key");
    let key = server::oidc::keys::LoadedKey::from_row(row, &master.key_sealer()).expect("opens");
    store.close().await;
    key
}

fn sign(key: &server::oidc::keys::LoadedKey, header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = key.sign_message(message.as_bytes()).expect("sign");
    format!("{message}.{}", b64(&signature))
}

async fn status_with(server: &Server, token: &str) -> u16 {
    server.call("GET", "/v4/users/self", Via::Bearer(token), None).await.status
}

async fn a_service_account_gets_an_access_token_that_works_everywhere_a_key_does(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (account_id, secret) = service_token(&server, &admin, "airflow").await;
    let issuer = format!("{}/auth/realms/default", server.url);

    let discovery = server.call("GET", "/auth/realms/default/.well-known/openid-configuration", Via::None, None).await;
    assert_eq!(discovery.status, 200);
    let discovery = discovery.json();
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(discovery["jwks_uri"], format!("{issuer}/protocol/openid-connect/certs").as_str());
    assert_eq!(discovery["token_endpoint"], format!("{issuer}/protocol/openid-connect/token").as_str());

    let (status, body) =
        form(&server, &token_path("default"), Some(("airflow", &secret)), &[("grant_type", "client_credentials")])
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let token = body["access_token"].as_str().unwrap().to_string();
    let header = segment(&token, 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    let claims = segment(&token, 1);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["sub"], account_id.as_str());
    assert_eq!(claims["aud"], "keyward");
    assert_eq!(claims["preferred_username"], "airflow");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    for claim in ["jti", "nbf", "azp", "email", "groups"] {
        assert!(!claims[claim].is_null(), "{claim} in {claims}");
    }

    let jwks = server.call("GET", "/auth/realms/default/protocol/openid-connect/certs", Via::None, None).await;
    assert_eq!(jwks.status, 200);
    assert!(jwks.headers["cache-control"].to_str().unwrap().contains("max-age="), "JWKS is cacheable");
    let jwks = jwks.json();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(jwks["keys"][0].get("d").is_none(), "never a private part");
    let realm = server.call("GET", "/auth/realms/default", Via::None, None).await.json();
    let mut fields: Vec<&str> = realm.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["account-service", "public_key", "realm", "token-service", "tokens-not-before"]);

    // The token is a credential like any other, on the native and compatibility routes.
    let me = server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["id"], account_id.as_str());
    assert_eq!(server.call("GET", "/api/user/me", Via::Bearer(&token), None).await.status, 200);
    let check = server.call("GET", "/api/v1/auth/check", Via::Bearer(&token), None).await;
    assert_eq!(check.status, 200);
    assert_eq!(check.headers["x-keyward-subject"], account_id.as_str());
    assert_eq!(check.headers["x-keyward-credential-kind"], "access_token");
    assert_eq!(server.call("GET", "/api/v1/auth/check", Via::None, None).await.status, 401);
    let userinfo =
        server.call("GET", "/auth/realms/default/protocol/openid-connect/userinfo", Via::Bearer(&token), None).await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
    assert_eq!(userinfo.json()["sub"], account_id.as_str());

    // Introspection (RFC 7662) by a resource server holding any credential of the realm.
    let introspect = "/auth/realms/default/protocol/openid-connect/token/introspect";
    let (status, active) = form(&server, introspect, Some(("rs", &admin)), &[("token", &token)]).await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], account_id.as_str());
    assert_eq!(active["username"], "airflow");
    let (_, opaque) = form(&server, introspect, Some(("rs", &admin)), &[("token", &secret)]).await;
    assert_eq!(opaque["active"], true);
    let (_, garbage) = form(&server, introspect, Some(("rs", &admin)), &[("token", "eyJ.nope.x")]).await;
    assert_eq!(garbage, json!({"active": false}));
    let (status, _) = form(&server, introspect, None, &[("token", &token)]).await;
    assert_eq!(status, 401, "introspection needs a credential");

    // Revocation (RFC 7009): the subject revokes its own token; unknown tokens answer 200.
    let revoke = "/auth/realms/default/protocol/openid-connect/revoke";
    let (status, _) = form(&server, revoke, Some(("airflow", &secret)), &[("token", "eyJhbGciOi.x.y")]).await;
    assert_eq!(status, 200);
    let (status, _) = form(&server, revoke, Some(("airflow", &secret)), &[("token", &token)]).await;
    assert_eq!(status, 200);
    assert_eq!(status_with(&server, &token).await, 401);
    let (_, revoked) = form(&server, introspect, Some(("rs", &admin)), &[("token", &token)]).await;
    assert_eq!(revoked, json!({"active": false}));
    let audit = server.get("/api/v1/audit?format=jsonl", &admin).await.text;
    assert!(audit.contains("access_token.revoke"), "{audit}");
    assert!(audit.contains("access_token.issue"), "{audit}");
    assert!(!audit.contains(&token), "no token in the audit log");
    assert!(!server.stdout_text().contains(&token[token.len() - 20..]), "no token in the logs");
}
on_each_store!(a_service_account_gets_an_access_token_that_works_everywhere_a_key_does);

/// The JWT access-token profile (RFC 9068 §2.2) requires `iss exp aud sub client_id iat
/// jti`: resource servers that validate the profile (oauth4webapi's
/// `validateJwtAccessToken`, for one) refused keyward's tokens while `client_id` was
/// missing. Every grant sets it, to the same client as `azp`.
async fn access_tokens_carry_every_claim_the_jwt_profile_requires(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, secret) = service_token(&server, &admin, "airflow").await;
    let issued = client_credentials(&server, "default", "airflow", &secret).await;
    let user = create_user(&server, &admin, "riley").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "laptop"})).await;
    let fields = [("grant_type", EXCHANGE), ("subject_token", key.as_str()), ("subject_token_type", ACCESS_TOKEN_TYPE)];
    let (status, exchanged) = form(&server, &token_path("default"), None, &fields).await;
    assert_eq!(status, 200, "{exchanged}");
    let exchanged = exchanged["access_token"].as_str().unwrap().to_string();
    let (status, on_behalf) = form(&server, &token_path("default"), Some(("airflow", &secret)), &fields).await;
    assert_eq!(status, 200, "{on_behalf}");
    let on_behalf = on_behalf["access_token"].as_str().unwrap().to_string();

    for (token, client) in [(&issued, "airflow"), (&exchanged, "riley"), (&on_behalf, "airflow")] {
        assert_eq!(segment(token, 0)["typ"], "at+jwt");
        let claims = segment(token, 1);
        for claim in ["iss", "sub", "client_id", "jti"] {
            assert!(claims[claim].as_str().is_some_and(|value| !value.is_empty()), "{claim} in {claims}");
        }
        for claim in ["exp", "iat"] {
            assert!(claims[claim].is_i64(), "{claim} in {claims}");
        }
        assert!(!claims["aud"].is_null(), "aud in {claims}");
        assert_eq!(claims["client_id"], client, "{claims}");
        assert_eq!(claims["azp"], claims["client_id"], "{claims}");
    }
    let discovery = server.call("GET", "/auth/realms/default/.well-known/openid-configuration", Via::None, None).await;
    assert!(discovery.json()["claims_supported"].as_array().unwrap().contains(&json!("client_id")));
}
on_each_store!(access_tokens_carry_every_claim_the_jwt_profile_requires);

/// Client credentials, form fields, and the expected status and OAuth error.
type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>, u16, &'a str);

async fn the_token_endpoint_refuses_bad_requests_in_oauth_form(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, secret) = service_token(&server, &admin, "airflow").await;
    let path = token_path("default");
    let cases: Vec<Case> = vec![
        (None, vec![], 400, "invalid_request"),
        (None, vec![("grant_type", "authorization_code")], 400, "unsupported_grant_type"),
        (None, vec![("grant_type", "client_credentials")], 401, "invalid_client"),
        (Some(("airflow", "kws_wrong")), vec![("grant_type", "client_credentials")], 401, "invalid_client"),
        (Some(("someone-else", &secret)), vec![("grant_type", "client_credentials")], 401, "invalid_client"),
        (Some(("x", &admin)), vec![("grant_type", "client_credentials")], 400, "unauthorized_client"),
        (
            Some(("airflow", &secret)),
            vec![("grant_type", "client_credentials"), ("audience", "has space")],
            400,
            "invalid_target",
        ),
        (None, vec![("grant_type", EXCHANGE), ("subject_token_type", ACCESS_TOKEN_TYPE)], 400, "invalid_request"),
        (None, vec![("grant_type", EXCHANGE), ("subject_token", &secret)], 400, "invalid_request"),
        (
            None,
            vec![("grant_type", EXCHANGE), ("subject_token", "kws_nope"), ("subject_token_type", ACCESS_TOKEN_TYPE)],
            400,
            "invalid_grant",
        ),
        (
            None,
            vec![("grant_type", EXCHANGE), ("subject_token", &admin), ("subject_token_type", ACCESS_TOKEN_TYPE)],
            400,
            "invalid_grant",
        ),
    ];
    for (basic, fields, status, error) in cases {
        let (got, body) = form(&server, &path, basic, &fields).await;
        assert_eq!((got, body["error"].as_str().unwrap_or("")), (status, error), "{fields:?}: {body}");
        assert!(body["error_description"].as_str().is_some_and(|text| text.len() > 10), "{body}");
    }
    let (status, _) =
        form(&server, &token_path("nope"), Some(("airflow", &secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 404);
}
on_each_store!(the_token_endpoint_refuses_bad_requests_in_oauth_form);

async fn token_exchange_narrows_and_never_widens(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "riley").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "laptop"})).await;
    let exchange = |subject: String, extra: Vec<(&'static str, &'static str)>| {
        let server = &server;
        async move {
            let mut fields = vec![
                ("grant_type", EXCHANGE.to_string()),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE.to_string()),
            ];
            fields.extend(extra.into_iter().map(|(name, value)| (name, value.to_string())));
            let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
            form(server, &token_path("default"), None, &fields).await
        }
    };
    let (status, wide) = exchange(key.clone(), vec![("scope", "read write")]).await;
    assert_eq!(status, 200, "{wide}");
    assert_eq!(wide["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(wide["scope"], "read write");
    let wide = wide["access_token"].as_str().unwrap().to_string();
    assert_eq!(segment(&wide, 1)["sub"], user.as_str());
    assert_eq!(status_with(&server, &wide).await, 200);

    let (status, narrow) = exchange(wide.clone(), vec![("scope", "read")]).await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(segment(narrow["access_token"].as_str().unwrap(), 1)["scope"], "read");
    let (status, body) = exchange(wide.clone(), vec![("scope", "read admin")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    let (status, body) = exchange(wide.clone(), vec![("audience", "billing")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");

    // A token for another audience does not work on keyward's own API.
    let (status, other) = exchange(key.clone(), vec![("audience", "billing")]).await;
    assert_eq!(status, 200, "{other}");
    let other = other["access_token"].as_str().unwrap();
    assert_eq!(segment(other, 1)["aud"], "billing");
    assert_eq!(status_with(&server, other).await, 401);

    // Disabling the user stops their access tokens at once.
    let disabled = server.post(&format!("/api/v1/users/{user}/disable"), &admin, json!({})).await;
    assert!(disabled.status < 300, "{}", disabled.text);
    assert_eq!(status_with(&server, &wide).await, 401);
}
on_each_store!(token_exchange_narrows_and_never_widens);

/// Each forged token is validly signed with the realm's own key (or not signed at all)
/// and wrong in exactly one way; each is refused with 401 and makes no outbound request.
async fn the_verifier_refuses_every_forgery(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&["--auth-failures-per-minute", "1000"]);
    let admin = server.bootstrap_key();
    let (account_id, secret) = service_token(&server, &admin, "airflow").await;
    let real = client_credentials(&server, "default", "airflow", &secret).await;
    let key = signing_key(&env, "default").await;
    let kid = key.kid.clone();
    let issuer = format!("{}/auth/realms/default", server.url);
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
    let t = now();
    let claims = json!({"iss": issuer, "sub": account_id, "aud": "keyward", "exp": t + 300, "iat": t, "nbf": t,
        "jti": "forged-1", "azp": "airflow", "preferred_username": "airflow", "groups": []});
    let with = |name: &str, value: Value| {
        let mut changed = claims.clone();
        changed[name] = value;
        changed
    };
    let header_with = |name: &str, value: Value| {
        let mut changed = header.clone();
        changed[name] = value;
        changed
    };
    // The baseline forgery is accepted: the cases below differ from it in one way only.
    assert_eq!(status_with(&server, &sign(&key, &header, &claims)).await, 200);
    assert_eq!(status_with(&server, &sign(&key, &header, &with("exp", json!(t - 10)))).await, 200, "leeway");
    // Introspection (RFC 7662) of an expired token: inactive, nothing else said.
    let introspect = "/auth/realms/default/protocol/openid-connect/token/introspect";
    let expired = sign(&key, &header, &with("exp", json!(t - 120)));
    let (status, answer) = form(&server, introspect, Some(("rs", &admin)), &[("token", &expired)]).await;
    assert_eq!((status, answer), (200, json!({"active": false})));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let elsewhere = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let public_jwk =
        server.call("GET", "/auth/realms/default/protocol/openid-connect/certs", Via::None, None).await.json()["keys"]
            [0]
        .clone();
    let message = |header: &Value, claims: &Value| {
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
    };
    let unsigned = format!("{}.", message(&header_with("alg", json!("none")), &claims));
    let hs256 = {
        let realm = server.call("GET", "/auth/realms/default", Via::None, None).await.json();
        let public_key =
            base64::engine::general_purpose::STANDARD.decode(realm["public_key"].as_str().unwrap()).unwrap();
        let signed = message(&header_with("alg", json!("HS256")), &claims);
        let hmac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public_key),
            signed.as_bytes(),
        );
        format!("{signed}.{}", b64(hmac.as_ref()))
    };
    let zero_signature = format!("{}.{}", message(&header, &claims), b64(&[0u8; 64]));
    let mut cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned),
        ("HS256 with the public key", hs256),
        ("ES256 r = s = 0", zero_signature),
        ("embedded jwk", sign(&key, &header_with("jwk", public_jwk), &claims)),
        ("jku elsewhere", sign(&key, &header_with("jku", json!(elsewhere)), &claims)),
        ("x5u elsewhere", sign(&key, &header_with("x5u", json!(elsewhere)), &claims)),
        ("kid with path characters", sign(&key, &header_with("kid", json!("../../keys/x")), &claims)),
        ("unknown kid", sign(&key, &header_with("kid", json!("ffffffffffffffffffffffff")), &claims)),
        ("crit", sign(&key, &header_with("crit", json!(["exp"])), &claims)),
        ("typ JWT", sign(&key, &header_with("typ", json!("JWT")), &claims)),
        ("no typ", sign(&key, &json!({"alg": "ES256", "kid": kid}), &claims)),
        (
            "missing aud",
            sign(&key, &header, &{
                let mut changed = claims.clone();
                changed.as_object_mut().unwrap().remove("aud");
                changed
            }),
        ),
        ("wrong aud", sign(&key, &header, &with("aud", json!("billing")))),
        (
            "missing iss",
            sign(&key, &header, &{
                let mut changed = claims.clone();
                changed.as_object_mut().unwrap().remove("iss");
                changed
            }),
        ),
        ("wrong iss", sign(&key, &header, &with("iss", json!("https://evil.example/auth/realms/default")))),
        ("expired beyond the leeway", sign(&key, &header, &with("exp", json!(t - 31)))),
        ("nbf in the future", sign(&key, &header, &with("nbf", json!(t + 120)))),
        ("iat in the future", sign(&key, &header, &with("iat", json!(t + 120)))),
        ("unknown subject", sign(&key, &header, &with("sub", json!("ffffffffffffffffffffffff")))),
        ("100 KB", format!("eyJ{}.e30.sig", "A".repeat(100 * 1024))),
        ("malformed base64", "eyJ!!!.e30.c2ln".to_string()),
        ("four segments", format!("{real}.x")),
        ("tampered payload", {
            let parts: Vec<&str> = real.split('.').collect();
            let changed = with("sub", json!("someone"));
            format!("{}.{}.{}", parts[0], b64(changed.to_string().as_bytes()), parts[2])
        }),
    ];
    // A revoked token and its high-S twin (s' = n - s is also a valid ECDSA signature).
    let revoke = "/auth/realms/default/protocol/openid-connect/revoke";
    let (status, _) = form(&server, revoke, Some(("airflow", &secret)), &[("token", &real)]).await;
    assert_eq!(status, 200);
    cases.push(("revoked", real.clone()));
    cases.push(("high-S twin of the revoked token", high_s_twin(&real)));
    for (case, token) in cases {
        let answer = server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.text);
    }
    assert!(listener.accept().is_err(), "the verifier fetched a URL from a token header");
}
on_each_store!(the_verifier_refuses_every_forgery);

/// `s' = n - s` on P-256: the other valid signature of the same message.
fn high_s_twin(token: &str) -> String {
    const ORDER: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6,
        0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ];
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let mut borrow = 0i16;
    for index in (0..32).rev() {
        let difference = i16::from(ORDER[index]) - i16::from(signature[32 + index]) - borrow;
        borrow = i16::from(difference < 0);
        signature[32 + index] = (difference + 256 * borrow) as u8;
    }
    format!("{message}.{}", b64(&signature))
}

async fn realms_sign_with_their_own_algorithm_and_refuse_each_others_tokens(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, secret) = service_token(&server, &admin, "airflow").await;
    let default_token = client_credentials(&server, "default", "airflow", &secret).await;
    for (realm, alg, kty) in [("rsa", "RS256", "RSA"), ("edwards", "EdDSA", "OKP")] {
        let created = server.post("/api/v1/realms", &admin, json!({"name": realm, "signingAlg": alg})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let (ok, realm_admin, stderr) = env.cli(&["admin-key", "create", "--realm", realm]);
        assert!(ok, "{stderr}");
        let realm_admin = realm_admin.trim().to_string();
        let (account, realm_secret) = service_token(&server, &realm_admin, "bot").await;
        let token = client_credentials(&server, realm, "bot", &realm_secret).await;
        assert_eq!(segment(&token, 0)["alg"], alg);
        let jwks =
            server.call("GET", &format!("/auth/realms/{realm}/protocol/openid-connect/certs"), Via::None, None).await;
        assert_eq!(jwks.json()["keys"][0]["kty"], kty);
        let me = server.call("GET", "/v4/users/self", Via::Bearer(&token), None).await;
        assert_eq!((me.status, me.json()["id"].as_str().map(str::to_string)), (200, Some(account)));
        // Each realm's endpoints refuse the other's tokens.
        let userinfo = format!("/auth/realms/{realm}/protocol/openid-connect/userinfo");
        assert_eq!(server.call("GET", &userinfo, Via::Bearer(&token), None).await.status, 200);
        assert_eq!(server.call("GET", &userinfo, Via::Bearer(&default_token), None).await.status, 401);
        let introspect = format!("/auth/realms/{realm}/protocol/openid-connect/token/introspect");
        let (_, answer) = form(&server, &introspect, Some(("rs", &realm_admin)), &[("token", &default_token)]).await;
        assert_eq!(answer, json!({"active": false}));
        // The default realm's key cannot sign for this realm.
        let key = signing_key(&env, "default").await;
        let mut claims = segment(&token, 1);
        claims["jti"] = json!("forged-across-realms");
        let forged = sign(&key, &json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}), &claims);
        assert_eq!(status_with(&server, &forged).await, 401);
        // A client secret from another realm is not a client here.
        let (status, _) =
            form(&server, &token_path(realm), Some(("airflow", &secret)), &[("grant_type", "client_credentials")])
                .await;
        assert_eq!(status, 401);
    }
}
on_each_store!(realms_sign_with_their_own_algorithm_and_refuse_each_others_tokens);

async fn rotation_publishes_the_next_key_before_it_signs(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (_, secret) = service_token(&server, &admin, "airflow").await;
    let before = client_credentials(&server, "default", "airflow", &secret).await;
    let old_kid = segment(&before, 0)["kid"].as_str().unwrap().to_string();

    let (ok, new_kid, stderr) = env.cli(&["keys", "rotate", "--prepublish", "4"]);
    assert!(ok, "{stderr}");
    let new_kid = new_kid.trim().to_string();
    let jwks = server.call("GET", "/auth/realms/default/protocol/openid-connect/certs", Via::None, None).await.json();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()), "{kids:?}");
    let during = client_credentials(&server, "default", "airflow", &secret).await;
    assert_eq!(segment(&during, 0)["kid"], old_kid.as_str(), "the new key is only published for now");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = client_credentials(&server, "default", "airflow", &secret).await;
    assert_eq!(segment(&after, 0)["kid"], new_kid.as_str());
    assert_eq!(status_with(&server, &before).await, 200, "old tokens verify until they expire");
    assert_eq!(status_with(&server, &after).await, 200);

    let keys = server.get("/api/v1/realms/default/keys", &admin).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let keys = keys.json();
    let old = keys.as_array().unwrap().iter().find(|key| key["kid"] == old_kid.as_str()).unwrap();
    assert!(old["removesAt"].is_string(), "{keys}");
    assert_eq!(old["signing"], false);

    // Through the API: to RS256, and a grace shorter than a token's life is refused.
    let rotate = "/api/v1/realms/default/keys/rotate";
    let short = server.post(rotate, &admin, json!({"graceSeconds": 10})).await;
    assert_eq!((short.status, short.json()["field"].as_str()), (422, Some("graceSeconds")), "{}", short.text);
    let bad = server.post(rotate, &admin, json!({"alg": "HS256"})).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let user = create_user(&server, &admin, "riley").await;
    let (_, user_key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.post(rotate, &user_key, json!({})).await.status, 403);
    let rotated = server.post(rotate, &admin, json!({"alg": "RS256", "prepublishSeconds": 0})).await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let rsa = client_credentials(&server, "default", "airflow", &secret).await;
    assert_eq!(segment(&rsa, 0)["alg"], "RS256");
    assert_eq!(status_with(&server, &rsa).await, 200);
    assert_eq!(status_with(&server, &after).await, 200);

    let (ok, exported, stderr) = env.cli(&["keys", "export-jwks"]);
    assert!(ok, "{stderr}");
    let exported: Value = serde_json::from_str(&exported).expect("JWKS JSON");
    assert_eq!(exported["keys"].as_array().unwrap().len(), 3);
    assert!(!exported.to_string().contains("\"d\""), "public keys only");
}
on_each_store!(rotation_publishes_the_next_key_before_it_signs);

/// Two processes on one store with one public URL: a token revoked on one is refused by
/// the other within a second.
async fn a_revoked_access_token_is_refused_by_another_node_within_a_second(backend: Backend) {
    let env = Env::new(backend);
    let first = env.serve(&["--public-url", "http://keyward.test"]);
    let admin = first.bootstrap_key();
    let second = env.serve(&["--public-url", "http://keyward.test"]);
    let (_, secret) = service_token(&first, &admin, "airflow").await;
    let token = client_credentials(&first, "default", "airflow", &secret).await;
    assert_eq!(segment(&token, 1)["iss"], "http://keyward.test/auth/realms/default");
    // The realm's first key and the account reach the second node through its change feed.
    let started = std::time::Instant::now();
    while status_with(&second, &token).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(1), "the second node does not accept the token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoke = "/auth/realms/default/protocol/openid-connect/revoke";
    let (status, _) = form(&first, revoke, Some(("rs", &admin)), &[("token", &token)]).await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    while status_with(&second, &token).await != 401 {
        assert!(started.elapsed() < Duration::from_secs(1), "the second node still accepts the revoked token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
on_each_store!(a_revoked_access_token_is_refused_by_another_node_within_a_second);

/// The CLI login: a person's username and password for an access token. A service
/// account is refused with 403 and told why; other failures share one message.
async fn people_log_in_with_a_password_and_service_accounts_cannot(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = create_user(&server, &admin, "pat").await;
    let password = "correct horse battery staple";
    let set = server
        .call("PUT", &format!("/api/v1/users/{pat}/password"), Via::Bearer(&admin), Some(json!({"password": password})))
        .await;
    assert_eq!(set.status, 204, "{}", set.text);
    service_token(&server, &admin, "robot").await;
    let path = token_path("default");
    let login = |username: &'static str, password: &'static str| {
        let server = &server;
        let path = path.clone();
        async move {
            form(server, &path, None, &[("grant_type", "password"), ("username", username), ("password", password)])
                .await
        }
    };
    let (status, body) = login("pat", "correct horse battery staple").await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(segment(token, 1)["sub"], pat.as_str());
    let (_, spoofed) = form(
        &server,
        &path,
        None,
        &[("grant_type", "password"), ("username", "pat"), ("password", password), ("client_id", "reports-app")],
    )
    .await;
    let spoofed = segment(spoofed["access_token"].as_str().unwrap(), 1);
    assert_eq!((&spoofed["azp"], &spoofed["client_id"]), (&json!("keyward-cli"), &json!("keyward-cli")));
    assert_eq!(status_with(&server, token).await, 200);

    let (status, wrong) = login("pat", "not the password at all").await;
    assert_eq!((status, wrong["error"].as_str()), (400, Some("invalid_grant")), "{wrong}");
    let (status, unknown) = login("nobody", "not the password at all").await;
    assert_eq!(status, 400);
    assert_eq!(unknown["error_description"], wrong["error_description"], "one message for both");
    let (status, robot) = login("robot", "anything at all here").await;
    assert_eq!(status, 403, "{robot}");
    assert!(robot["error_description"].as_str().unwrap().contains("service accounts cannot log in"), "{robot}");
    let (status, missing) = form(&server, &path, None, &[("grant_type", "password"), ("username", "pat")]).await;
    assert_eq!((status, missing["error"].as_str()), (400, Some("invalid_request")), "{missing}");
}
on_each_store!(people_log_in_with_a_password_and_service_accounts_cannot);

/// What the security review found, each now refused: tokens outliving the credential
/// they came from, scoped tokens acting with full power, minting keys with a token,
/// rotation leaving a realm without a signing key, a superseded pending key signing,
/// revocations lost when the subject was disabled, and introspection as a key oracle.
async fn access_tokens_follow_their_source_credential_and_stay_narrow(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (account_id, secret) = service_token(&server, &admin, "airflow").await;
    let from_account = client_credentials(&server, "default", "airflow", &secret).await;
    assert_eq!(status_with(&server, &from_account).await, 200);
    let invalidated = server
        .call(
            "DELETE",
            &format!("/api/v1/service-accounts/{account_id}/tokens/{}", token_id(&server, &admin, &account_id).await),
            Via::Bearer(&admin),
            None,
        )
        .await;
    assert_eq!(invalidated.status, 204, "{}", invalidated.text);
    assert_eq!(status_with(&server, &from_account).await, 401, "the token dies with its service-account token");

    let user = create_user(&server, &admin, "riley").await;
    let grant = server.call("PUT", &format!("/api/v1/users/{user}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(grant.status < 300, "{}", grant.text);
    let (key_id, key) = create_key(&server, &admin, &user, json!({"name": "laptop"})).await;
    let exchange = |subject: &str, scope: Option<&str>| {
        let mut fields = vec![
            ("grant_type", EXCHANGE.to_string()),
            ("subject_token", subject.to_string()),
            ("subject_token_type", ACCESS_TOKEN_TYPE.to_string()),
        ];
        if let Some(scope) = scope {
            fields.push(("scope", scope.to_string()));
        }
        let server = &server;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
            let (status, body) = form(server, &token_path("default"), None, &fields).await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let full = exchange(&key, None).await;
    let narrow = exchange(&key, Some("read")).await;
    assert_eq!(server.call("GET", "/api/v1/users", Via::Bearer(&full), None).await.status, 200);
    let refused = server.call("GET", "/api/v1/users", Via::Bearer(&narrow), None).await;
    assert_eq!(refused.status, 403, "a narrowed token only identifies: {}", refused.text);
    assert_eq!(status_with(&server, &narrow).await, 200);
    let minted = server.call("POST", "/api/v1/users/me/api-keys", Via::Bearer(&full), Some(json!({"name": "x"}))).await;
    assert_eq!(minted.status, 403, "{}", minted.text);
    let minted = server
        .call(
            "POST",
            "/v4/serviceAccounts",
            Via::Bearer(&full),
            Some(json!({"username": "evil", "email": "e@example.com"})),
        )
        .await;
    assert_eq!(minted.status, 200, "an admin may still create the account itself: {}", minted.text);
    let idp_id = minted.json()["idpId"].as_str().unwrap().to_string();
    let token = server
        .call("POST", &format!("/v4/serviceAccounts/{idp_id}/tokens"), Via::Bearer(&full), Some(json!({"name": "t"})))
        .await;
    assert_eq!(token.status, 403, "but not mint its token with an access token: {}", token.text);

    // Introspecting an opaque key is for admins only.
    let introspect = "/auth/realms/default/protocol/openid-connect/token/introspect";
    let other_user = create_user(&server, &admin, "sam").await;
    let (_, sams_key) = create_key(&server, &admin, &other_user, json!({"name": "k"})).await;
    let (_, answer) = form(&server, introspect, Some(("rs", &sams_key)), &[("token", &key)]).await;
    assert_eq!(answer, json!({"active": false}));
    let (_, answer) = form(&server, introspect, Some(("rs", &admin)), &[("token", &key)]).await;
    assert_eq!(answer["active"], true);
    // An admin's token narrowed by a scope only identifies its subject: it neither asks
    // about keys nor revokes other people's tokens, but still revokes its own.
    let sams_token = exchange(&sams_key, None).await;
    let (status, answer) = form(&server, introspect, Some(("rs", &narrow)), &[("token", &sams_key)]).await;
    assert_eq!((status, answer), (200, json!({"active": false})));
    let (_, answer) = form(&server, introspect, Some(("rs", &narrow)), &[("token", &sams_token)]).await;
    assert_eq!(answer["active"], true, "access tokens are anyone's to ask about");
    let revoke = "/auth/realms/default/protocol/openid-connect/revoke";
    let (status, answer) = form(&server, revoke, Some(("rs", &narrow)), &[("token", &sams_token)]).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(status_with(&server, &sams_token).await, 200);
    let (status, answer) = form(&server, revoke, Some(("rs", &narrow)), &[("token", &narrow)]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(status_with(&server, &narrow).await, 401);

    // Revoked while its user is disabled: still revoked once the user is back.
    let disable = server.post(&format!("/api/v1/users/{user}/disable"), &admin, json!({})).await;
    assert!(disable.status < 300, "{}", disable.text);
    let (status, _) = form(&server, revoke, Some(("rs", &admin)), &[("token", &full)]).await;
    assert_eq!(status, 200);
    let enable = server.post(&format!("/api/v1/users/{user}/enable"), &admin, json!({})).await;
    assert!(enable.status < 300, "{}", enable.text);
    assert_eq!(status_with(&server, &full).await, 401);

    // Revoking the personal key stops the tokens exchanged from it.
    let again = exchange(&key, None).await;
    assert_eq!(status_with(&server, &again).await, 200);
    let revoked =
        server.call("DELETE", &format!("/api/v1/users/{user}/api-keys/{key_id}"), Via::Bearer(&admin), None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_eq!(status_with(&server, &again).await, 401);

    // A realm's first key signs at once even when made by a rotation, and a pending key
    // superseded by a later rotation never signs.
    let created = server.post("/api/v1/realms", &admin, json!({"name": "fresh"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let rotate = "/api/v1/realms/fresh/keys/rotate";
    let first = server.post(rotate, &admin, json!({"prepublishSeconds": 600})).await.json();
    assert_eq!(first[0]["signing"], true, "{first}");
    let pending = server.post(rotate, &admin, json!({"prepublishSeconds": 600})).await.json();
    let pending_kid = pending.as_array().unwrap().iter().find(|key| key["signing"] == false).unwrap()["kid"].clone();
    let latest = server.post(rotate, &admin, json!({"prepublishSeconds": 600})).await.json();
    let kids: Vec<&Value> = latest.as_array().unwrap().iter().map(|key| &key["kid"]).collect();
    assert!(!kids.contains(&&pending_kid), "the superseded pending key left JWKS: {latest}");
    assert_eq!(kids.len(), 2, "{latest}");
}
on_each_store!(access_tokens_follow_their_source_credential_and_stay_narrow);

async fn token_id(server: &Server, admin: &str, account_id: &str) -> String {
    let tokens = server.get(&format!("/api/v1/service-accounts/{account_id}/tokens"), admin).await.json();
    tokens[0]["id"].as_str().unwrap().to_string()
}

/// A registered client: client_credentials for its service account with its audiences,
/// lifetime and claim mappers (after the realm's), token exchange only when granted, a
/// renewed secret replacing the old one, and bad settings refused naming the field.
async fn registered_clients_issue_tokens_with_their_mappers(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let (account_id, _) = service_token(&server, &admin, "reporting").await;
    let group = server.post("/api/v1/groups", &admin, json!({"name": "analysts"})).await;
    assert_eq!(group.status, 201, "{}", group.text);
    let group_id = group.json()["id"].as_str().unwrap().to_string();
    let member =
        server.call("PUT", &format!("/api/v1/groups/{group_id}/members/{account_id}"), Via::Bearer(&admin), None).await;
    assert!(member.status < 300, "{}", member.text);
    let realm_mappers = server
        .call(
            "PUT",
            "/api/v1/realms/default/claim-mappers",
            Via::Bearer(&admin),
            Some(json!([{"type": "static", "claim": "tenant", "value": "acme"}, {"type": "groups", "claim": "teams"}])),
        )
        .await;
    assert_eq!(realm_mappers.status, 200, "{}", realm_mappers.text);

    let clients = "/api/v1/realms/default/clients";
    let created = server
        .post(
            clients,
            &admin,
            json!({"clientId": "reports-app", "grants": ["client_credentials"], "audiences": ["reports", "keyward"],
                   "serviceAccountId": account_id, "accessTokenLifetimeSeconds": 120,
                   "claimMappers": [{"type": "static", "claim": "tenant", "value": "acme-eu"},
                                    {"type": "attribute", "claim": "org", "attribute": "organization"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let secret = created["clientSecret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kwc_"), "{created}");
    assert_eq!(created["serviceAccountId"], account_id.as_str());
    let listed = server.get(clients, &admin).await;
    assert!(!listed.text.contains(&secret), "lists never show the secret");
    let patched = server
        .call(
            "PATCH",
            &format!("/api/v1/users/{account_id}"),
            Via::Bearer(&admin),
            Some(json!({"attributes": {"organization": "Acme Corp"}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    let (status, body) =
        form(&server, &token_path("default"), Some(("reports-app", &secret)), &[("grant_type", "client_credentials")])
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 120);
    let token = body["access_token"].as_str().unwrap();
    let claims = segment(token, 1);
    assert_eq!(claims["sub"], account_id.as_str());
    assert_eq!(claims["aud"], "reports", "the client's first audience is the default");
    assert_eq!(claims["azp"], "reports-app");
    assert_eq!(claims["client_id"], "reports-app");
    assert_eq!(claims["tenant"], "acme-eu", "the client's mapper wins over the realm's");
    assert_eq!(claims["teams"], json!(["analysts"]));
    assert_eq!(claims["org"], "Acme Corp", "a user attribute through the client's mapper");
    let (status, body) = form(
        &server,
        &token_path("default"),
        Some(("reports-app", &secret)),
        &[("grant_type", "client_credentials"), ("audience", "billing")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");
    let (status, body) = form(
        &server,
        &token_path("default"),
        Some(("reports-app", &secret)),
        &[("grant_type", "client_credentials"), ("audience", "keyward")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let keyward_token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(status_with(&server, &keyward_token).await, 200);
    let (status, body) = form(
        &server,
        &token_path("default"),
        Some(("reports-app", &secret)),
        &[("grant_type", EXCHANGE), ("subject_token", token), ("subject_token_type", ACCESS_TOKEN_TYPE)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
    // An exchange only narrows: a client's default audience does not take the place of the
    // audience the subject token holds, as asking for it would not either.
    let orders = server
        .post(clients, &admin, json!({"clientId": "orders-app", "grants": [EXCHANGE], "audiences": ["orders"]}))
        .await;
    assert_eq!(orders.status, 201, "{}", orders.text);
    let orders_secret = orders.json()["clientSecret"].as_str().unwrap().to_string();
    for asked in [None, Some("orders")] {
        let mut fields = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", &keyward_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ];
        fields.extend(asked.map(|audience| ("audience", audience)));
        let (status, body) = form(&server, &token_path("default"), Some(("orders-app", &orders_secret)), &fields).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{asked:?}: {body}");
    }
    let (status, _) = form(
        &server,
        &token_path("default"),
        Some(("reports-app", "kwc_wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);

    let renewed = server.post(&format!("{clients}/reports-app/secret"), &admin, json!({})).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let new_secret = renewed.json()["clientSecret"].as_str().unwrap().to_string();
    let (status, _) =
        form(&server, &token_path("default"), Some(("reports-app", &secret)), &[("grant_type", "client_credentials")])
            .await;
    assert_eq!(status, 401, "the old secret stops working");
    let (status, _) = form(
        &server,
        &token_path("default"),
        Some(("reports-app", &new_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200);

    for (body, field) in [
        (json!({"clientId": "bad id", "grants": ["client_credentials"]}), "clientId"),
        (json!({"clientId": "x", "grants": ["password"]}), "grants"),
        (json!({"clientId": "x", "grants": []}), "grants"),
        (
            json!({"clientId": "x", "grants": ["client_credentials"], "accessTokenLifetimeSeconds": 5}),
            "accessTokenLifetimeSeconds",
        ),
        (
            json!({"clientId": "x", "grants": ["client_credentials"], "claimMappers": [{"type": "static", "claim": "sub", "value": "root"}]}),
            "claimMappers",
        ),
        (
            json!({"clientId": "x", "grants": ["client_credentials"], "serviceAccountId": "ffffffffffffffffffffffff"}),
            "serviceAccountId",
        ),
    ] {
        let answer = server.post(clients, &admin, body.clone()).await;
        assert_eq!((answer.status, answer.json()["field"].as_str()), (422, Some(field)), "{body}: {}", answer.text);
    }
    let duplicate =
        server.post(clients, &admin, json!({"clientId": "reports-app", "grants": ["client_credentials"]})).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    let user = create_user(&server, &admin, "riley").await;
    let (_, user_key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.get(clients, &user_key).await.status, 403);
    let deleted = server.call("DELETE", &format!("{clients}/reports-app"), Via::Bearer(&admin), None).await;
    assert_eq!(deleted.status, 204);
    let (status, _) = form(
        &server,
        &token_path("default"),
        Some(("reports-app", &new_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
}
on_each_store!(registered_clients_issue_tokens_with_their_mappers);
