//! The web portal over plain HTTP: login, sessions, CSRF, security headers and the
//! API-key page. Cookies are handled by hand so each test sees exactly what is set.

use crate::harness::{Backend, Env, Server, Via, create_user};
use crate::on_each_store;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// A client that does not follow redirects, so tests see the 303s and their cookies.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Page {
    /// The `Set-Cookie` header that sets `name`, whole.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value `name` is set to.
    fn cookie_value(&self, name: &str) -> String {
        let header = self.set_cookie(name).unwrap_or_else(|| panic!("no {name} cookie: {:?}", self.headers));
        header.split(';').next().unwrap()[name.len() + 1..].to_string()
    }

    fn location(&self) -> &str {
        self.headers.get("location").and_then(|value| value.to_str().ok()).unwrap_or("")
    }

    /// The value of the first `name="…" value="…"` input.
    fn field(&self, name: &str) -> String {
        attribute_after(&self.text, &format!("name=\"{name}\" value=\""))
    }
}

fn attribute_after(text: &str, marker: &str) -> String {
    let start = text.find(marker).unwrap_or_else(|| panic!("no {marker} in {text}")) + marker.len();
    text[start..].split('"').next().unwrap().to_string()
}

fn encode(fields: &[(&str, &str)]) -> String {
    let escape = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (byte as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(name, value)| format!("{}={}", escape(name), escape(value))).collect::<Vec<_>>().join("&")
}

async fn send(
    server: &Server,
    method: &str,
    path: &str,
    cookies: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Page {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client().request(method, format!("{}{path}", server.url));
    if !cookies.is_empty() {
        let header = cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ");
        request = request.header("cookie", header);
    }
    if let Some(form) = form {
        request = request.header("content-type", "application/x-www-form-urlencoded").body(encode(form));
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

async fn get(server: &Server, path: &str, session: &str) -> Page {
    send(server, "GET", path, &[("kw_session", session)], None).await
}

async fn post(server: &Server, path: &str, session: &str, form: &[(&str, &str)]) -> Page {
    send(server, "POST", path, &[("kw_session", session)], Some(form)).await
}

fn assert_security_headers(page: &Page) {
    let header = |name: &str| page.headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
}

/// A login attempt with a fresh login form; answers the page after the POST.
async fn log_in(server: &Server, username: &str, password: &str) -> Page {
    let form = send(server, "GET", "/login", &[], None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert_security_headers(&form);
    let token = form.cookie_value("kw_login_csrf");
    assert_eq!(form.field("login_csrf"), token);
    let fields = [("login_csrf", token.as_str()), ("username", username), ("password", password)];
    send(server, "POST", "/login", &[("kw_login_csrf", &token)], Some(&fields)).await
}

/// Creates a person with the test password; answers their id.
async fn person(server: &Server, admin: &str, username: &str) -> String {
    let id = create_user(server, admin, username).await;
    let path = format!("/api/v1/users/{id}/password");
    let set = server.call("PUT", &path, Via::Bearer(admin), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(set.status, 204, "{}", set.text);
    id
}

/// Logs in and answers the session id.
async fn session_of(server: &Server, username: &str) -> String {
    let page = log_in(server, username, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert_eq!(page.location(), "/account");
    page.cookie_value("kw_session")
}

async fn a_person_logs_in_makes_a_key_uses_it_revokes_it_and_logs_out(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = person(&server, &admin, "pat").await;

    // The cookie is HttpOnly and SameSite=Lax, and every login makes a new session id.
    let page = log_in(&server, "pat", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.text);
    let cookie = page.set_cookie("kw_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP public URL: {cookie}");
    let first = page.cookie_value("kw_session");
    assert_eq!(first.len(), 64, "256 bits in hex");
    let session = session_of(&server, "pat").await;
    assert_ne!(first, session, "a new session id at every login");

    let profile = get(&server, "/account", &session).await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    assert!(profile.text.contains(&pat) && profile.text.contains("pat@"), "{}", profile.text);
    assert_security_headers(&profile);
    let about = get(&server, "/account/about", &session).await;
    assert!(about.text.contains("href=\"/api/docs\""), "{}", about.text);
    let anonymous = send(&server, "GET", "/account", &[], None).await;
    assert_eq!((anonymous.status, anonymous.location()), (303, "/login"));
    let forged = get(&server, "/account", &"ab".repeat(32)).await;
    assert_eq!((forged.status, forged.location()), (303, "/login"), "an unknown session id is no session");

    // A POST without the session's CSRF token, with a wrong one or with another
    // session's is refused and creates nothing.
    let keys = get(&server, "/account/api-keys", &session).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let csrf = keys.field("csrf");
    let other_csrf = get(&server, "/account/api-keys", &first).await.field("csrf");
    assert_ne!(csrf, other_csrf);
    let wanted = [("name", "laptop"), ("expires_in_days", "30"), ("description", "my laptop")];
    for token in [None, Some("00".repeat(32)), Some("not hex".to_string()), Some(other_csrf.clone())] {
        let mut fields = wanted.to_vec();
        if let Some(token) = &token {
            fields.push(("csrf", token.as_str()));
        }
        let refused = post(&server, "/account/api-keys", &session, &fields).await;
        assert_eq!(refused.status, 403, "{token:?}: {}", refused.text);
        assert!(refused.text.contains("CSRF") && refused.text.contains("nothing was changed"), "{}", refused.text);
        assert_security_headers(&refused);
    }
    let listed = server.get(&format!("/api/v1/users/{pat}/api-keys"), &admin).await;
    assert_eq!(listed.json().as_array().unwrap().len(), 0, "{}", listed.text);

    // Bad input is a 4xx with the form shown again.
    let mut fields = wanted.to_vec();
    fields[1] = ("expires_in_days", "0");
    fields.push(("csrf", &csrf));
    let bad = post(&server, "/account/api-keys", &session, &fields).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("whole number of days"), "{}", bad.text);

    // The key made through the form works, and its secret is shown on that page only.
    let mut fields = wanted.to_vec();
    fields.push(("csrf", &csrf));
    let created = post(&server, "/account/api-keys", &session, &fields).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_security_headers(&created);
    let secret = attribute_after(&created.text, "id=\"new-secret\" value=\"");
    assert!(secret.starts_with("kwu_"), "{secret}");
    assert!(created.text.contains("data-copy-from=\"new-secret\""), "{}", created.text);
    let me = server.get("/v4/users/self", &secret).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let keys = get(&server, "/account/api-keys", &session).await;
    assert!(keys.text.contains("laptop") && keys.text.contains("my laptop"), "{}", keys.text);
    assert!(!keys.text.contains(&secret), "the secret is never listed");
    assert!(keys.text.contains(&secret[..8]), "the prefix is");
    let duplicate = post(&server, "/account/api-keys", &session, &fields).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);

    // Revoking needs the token too; then the key stops working.
    let key_id = attribute_after(&keys.text, "action=\"/account/api-keys/").split('/').next().unwrap().to_string();
    let revoke_path = format!("/account/api-keys/{key_id}/revoke");
    let refused = post(&server, &revoke_path, &session, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(server.get("/v4/users/self", &secret).await.status, 200);
    let revoked = post(&server, &revoke_path, &session, &[("csrf", &csrf)]).await;
    assert_eq!((revoked.status, revoked.location()), (303, "/account/api-keys"), "{}", revoked.text);
    assert_eq!(server.get("/v4/users/self", &secret).await.status, 401);
    let again = post(&server, &revoke_path, &session, &[("csrf", &csrf)]).await;
    assert_eq!(again.status, 404, "{}", again.text);

    // Logout needs the token, ends the session on the server and clears the cookie;
    // the other session goes on.
    assert_eq!(post(&server, "/logout", &session, &[]).await.status, 403);
    let out = post(&server, "/logout", &session, &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/login"));
    assert!(out.set_cookie("kw_session").unwrap().contains("Max-Age=0"));
    let after = get(&server, "/account", &session).await;
    assert_eq!((after.status, after.location()), (303, "/login"), "the old cookie no longer works");
    assert_eq!(get(&server, "/account", &first).await.status, 200);

    // Disabling the user ends their sessions, and enabling them again revives none.
    let disabled = server.post(&format!("/api/v1/users/{pat}/disable"), &admin, json!({})).await;
    assert!(disabled.status < 300, "{}", disabled.text);
    assert_eq!(get(&server, "/account", &first).await.status, 303);
    let enabled = server.post(&format!("/api/v1/users/{pat}/enable"), &admin, json!({})).await;
    assert!(enabled.status < 300, "{}", enabled.text);
    assert_eq!(get(&server, "/account", &first).await.status, 303);

    // The assets: right types, a long cache, and the security headers.
    for (path, content_type) in
        [("/portal/static/portal.js", "text/javascript"), ("/portal/static/portal.css", "text/css")]
    {
        let asset = send(&server, "GET", path, &[], None).await;
        assert_eq!(asset.status, 200);
        let header = |name: &str| asset.headers.get(name).unwrap().to_str().unwrap().to_string();
        assert!(header("content-type").starts_with(content_type), "{}", header("content-type"));
        assert!(header("cache-control").contains("max-age=31536000"), "{}", header("cache-control"));
        assert_security_headers(&asset);
    }
}
on_each_store!(a_person_logs_in_makes_a_key_uses_it_revokes_it_and_logs_out);

async fn refused_logins_say_why_and_set_no_session(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    person(&server, &admin, "pat").await;

    // Unknown user and wrong password: one status, one message.
    let wrong = log_in(&server, "pat", "wrong horse battery").await;
    let unknown = log_in(&server, "nobody", PASSWORD).await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, 401, "{}", page.text);
        assert!(page.text.contains("invalid username or password"), "{}", page.text);
        assert!(page.set_cookie("kw_session").is_none());
        assert_security_headers(page);
    }
    assert_eq!(
        wrong.text.replace(&wrong.field("login_csrf"), ""),
        unknown.text.replace(&unknown.field("login_csrf"), "")
    );

    // A service account is refused with its reason.
    let account = server
        .post("/api/v1/service-accounts", &admin, json!({"username": "robot", "email": "robot@example.com"}))
        .await;
    assert_eq!(account.status, 201, "{}", account.text);
    let robot = log_in(&server, "robot", PASSWORD).await;
    assert_eq!(robot.status, 403, "{}", robot.text);
    assert!(robot.text.contains("service accounts cannot log in"), "{}", robot.text);
    assert!(robot.set_cookie("kw_session").is_none());

    // The login form needs its double-submit token: missing, or not the cookie's.
    let form = send(&server, "GET", "/login", &[], None).await;
    let token = form.cookie_value("kw_login_csrf");
    let other = send(&server, "GET", "/login", &[], None).await.cookie_value("kw_login_csrf");
    for (cookie, field) in
        [(None, Some(token.as_str())), (Some(token.as_str()), None), (Some(token.as_str()), Some(other.as_str()))]
    {
        let mut fields = vec![("username", "pat"), ("password", PASSWORD)];
        if let Some(field) = field {
            fields.push(("login_csrf", field));
        }
        let cookies: Vec<(&str, &str)> = cookie.map(|value| ("kw_login_csrf", value)).into_iter().collect();
        let refused = send(&server, "POST", "/login", &cookies, Some(&fields)).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert!(refused.set_cookie("kw_session").is_none());
    }
}
on_each_store!(refused_logins_say_why_and_set_no_session);

/// A logout on one node ends the session on every node within a second: it is a
/// change-feed entry, not something other nodes find out when their cache next expires.
async fn a_logout_on_one_node_ends_the_session_on_another_within_a_second(backend: Backend) {
    let env = Env::new(backend);
    let first = env.serve(&[]);
    let admin = first.bootstrap_key();
    let second = env.serve(&[]);
    person(&first, &admin, "pat").await;
    let session = session_of(&first, "pat").await;
    // The second node learns of the new user through the feed, then honours (and caches)
    // the session.
    let started = std::time::Instant::now();
    while get(&second, "/account", &session).await.status != 200 {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the second node never took the session");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let account = get(&first, "/account", &session).await;
    let csrf = account.field("csrf");
    let out = post(&first, "/logout", &session, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.text);
    let started = std::time::Instant::now();
    loop {
        let page = get(&second, "/account", &session).await;
        if page.status == 303 {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "the second node still honours the session");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let audit = first.get("/api/v1/audit?limit=50", &admin).await.text;
    assert!(audit.contains("portal.logout"), "{audit}");
}
on_each_store!(a_logout_on_one_node_ends_the_session_on_another_within_a_second);

/// The API token an `Unlock Token` click asks for: the portal script's request, JSON.
async fn unlock_as_script(server: &Server, id: &str, session: &str, csrf: &str) -> (u16, serde_json::Value) {
    let response = client()
        .post(format!("{}/manage/api-tokens/{id}/unlock", server.url))
        .header("cookie", format!("kw_session={session}"))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf", csrf)]))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The ids of the tokens a list page shows, in order.
fn token_ids(page: &Page) -> Vec<String> {
    page.text.split("<details id=\"token-").skip(1).map(|rest| rest.split('"').next().unwrap().to_string()).collect()
}

async fn a_token_manager_adds_unlocks_edits_expires_and_deletes_api_tokens(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = person(&server, &admin, "pat").await;
    let tess = person(&server, &admin, "tess").await;
    person(&server, &admin, "root").await;
    let root_id = server.get("/api/v1/users?limit=10", &admin).await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == "root")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (user, role) in [(&tess, "token-manager"), (&root_id, "admin")] {
        let granted =
            server.call("PUT", &format!("/api/v1/users/{user}/roles/{role}"), Via::Bearer(&admin), None).await;
        assert!(granted.status < 300, "{}", granted.text);
    }

    // Without the role, no page and no link.
    let pat_session = session_of(&server, "pat").await;
    let refused = get(&server, "/manage/api-tokens", &pat_session).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("token-manager"), "{}", refused.text);
    assert!(!get(&server, "/account", &pat_session).await.text.contains("/manage/api-tokens"));

    let session = session_of(&server, "tess").await;
    let profile = get(&server, "/account", &session).await;
    assert!(profile.text.contains("href=\"/manage/api-tokens\""), "{}", profile.text);
    let list = get(&server, "/manage/api-tokens", &session).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_security_headers(&list);
    let csrf = list.field("csrf");

    // Add: bad input is a 4xx with the form kept; a good one shows the JWT once.
    let add = |username: &'static str, expires_on: String, filter: &'static str| {
        vec![
            ("username", username.to_string()),
            ("name", "nightly-etl".to_string()),
            ("expires_on", expires_on),
            ("filter", filter.to_string()),
            ("description", "the nightly load".to_string()),
            ("enabled", "on".to_string()),
        ]
    };
    let in_30_days = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).date().to_string();
    let cases = [
        (add("nobody", in_30_days.clone(), ""), 422, "no user called"),
        (add("pat", "2020-01-01".to_string(), ""), 422, "expiresAt"),
        (add("pat", "next week".to_string(), ""), 422, "YYYY-MM-DD"),
        (add("pat", in_30_days.clone(), "10.0.0.0/33"), 400, "filter[0]"),
        (add("root", in_30_days.clone(), ""), 403, "admin"),
    ];
    for (fields, status, says) in cases {
        let mut fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
        fields.push(("csrf", &csrf));
        let page = post(&server, "/manage/api-tokens", &session, &fields).await;
        assert_eq!(page.status, status, "{fields:?}: {}", page.text);
        assert!(page.text.contains(says), "{says}: {}", page.text);
        assert!(page.text.contains("value=\"nightly-etl\""), "the form keeps what was entered");
    }
    assert!(token_ids(&get(&server, "/manage/api-tokens", &session).await).is_empty(), "nothing half-made");
    let fields = add("pat", in_30_days.clone(), "127.0.0.1\n10.0.0.0/8");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let refused = post(&server, "/manage/api-tokens", &session, &fields).await;
    assert_eq!(refused.status, 403, "no CSRF token: {}", refused.text);
    let mut with_csrf = fields.clone();
    with_csrf.push(("csrf", &csrf));
    let created = post(&server, "/manage/api-tokens", &session, &with_csrf).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let first_jwt = attribute_after(&created.text, "id=\"new-secret\" value=\"");
    assert_eq!(first_jwt.split('.').count(), 3, "{first_jwt}");
    let me = server.call("GET", "/v4/users/self", Via::Bearer(&first_jwt), None).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["id"], pat.as_str(), "the token acts as pat: {}", me.text);

    // The list shows the record, never a JWT.
    let list = get(&server, "/manage/api-tokens", &session).await;
    let ids = token_ids(&list);
    assert_eq!(ids.len(), 1, "{}", list.text);
    let id = ids[0].clone();
    assert!(list.text.contains("nightly-etl") && list.text.contains("127.0.0.1, 10.0.0.0/8"), "{}", list.text);
    assert!(!list.text.contains(&first_jwt) && !list.text.contains("eyJ"), "no JWT in the list");

    // Unlock (as the script does): a new JWT; the one before stops working. Without the
    // CSRF token nothing happens.
    let (status, refused) = unlock_as_script(&server, &id, &session, "00").await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["error"].is_string() && refused.get("token").is_none(), "{refused}");
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&first_jwt), None).await.status, 200);
    let (status, unlocked) = unlock_as_script(&server, &id, &session, &csrf).await;
    assert_eq!(status, 200, "{unlocked}");
    let second_jwt = unlocked["token"].as_str().unwrap().to_string();
    assert_eq!(unlocked["generation"], 2);
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&first_jwt), None).await.status, 401);
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&second_jwt), None).await.status, 200);
    // Without the script, the same form answers a page with the JWT behind Copy.
    let page = post(&server, &format!("/manage/api-tokens/{id}/unlock"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let third_jwt = attribute_after(&page.text, "id=\"new-secret\" value=\"");
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&second_jwt), None).await.status, 401);
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&third_jwt), None).await.status, 200);

    // Edit: the form shows the record; a rename and a disable keep the JWT's identity
    // but the disabled token stops working.
    let edit_path = format!("/manage/api-tokens/{id}/edit");
    let form = get(&server, &edit_path, &session).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains(&format!("value=\"{in_30_days}\"")), "{}", form.text);
    let edited = post(
        &server,
        &edit_path,
        &session,
        &[
            ("csrf", &csrf),
            ("username", "pat"),
            ("name", "nightly-load"),
            ("expires_on", &in_30_days),
            ("filter", ""),
            ("description", "renamed"),
        ],
    )
    .await;
    assert_eq!(
        (edited.status, edited.location()),
        (303, format!("/manage/api-tokens?open={id}").as_str()),
        "{}",
        edited.text
    );
    let record = server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.json();
    assert_eq!((record["name"].as_str(), record["enabled"].as_bool()), (Some("nightly-load"), Some(false)), "{record}");
    assert_eq!(record["filter"].as_array().unwrap().len(), 0, "{record}");
    assert_eq!(server.call("GET", "/v4/users/self", Via::Bearer(&third_jwt), None).await.status, 401);
    let reopened = get(&server, &format!("/manage/api-tokens?open={id}"), &session).await;
    assert!(reopened.text.contains(&format!("<details id=\"token-{id}\" data-token-entry open>")), "{}", reopened.text);

    // Another realm's token is not there at all.
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let acme_user = create_user(&server, &acme_admin, "ann").await;
    let acme_token = server.post("/api/v1/api-tokens", &acme_admin, json!({"userId": acme_user, "name": "acme"})).await;
    assert_eq!(acme_token.status, 201, "{}", acme_token.text);
    let acme_id = acme_token.json()["id"].as_str().unwrap().to_string();
    for path in [format!("/manage/api-tokens/{acme_id}/edit"), format!("/manage/api-tokens/{acme_id}/delete")] {
        assert_eq!(get(&server, &path, &session).await.status, 404, "{path}");
    }
    for action in ["unlock", "expire", "delete"] {
        let path = format!("/manage/api-tokens/{acme_id}/{action}");
        assert_eq!(post(&server, &path, &session, &[("csrf", &csrf)]).await.status, 404, "{path}");
    }
    assert_eq!(server.get(&format!("/api/v1/api-tokens/{acme_id}"), &acme_admin).await.json()["generation"], 1);

    // Delete asks first and recommends expiring; Expire ends the token and keeps it.
    let confirm = get(&server, &format!("/manage/api-tokens/{id}/delete"), &session).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains("Consider <strong>Expire</strong> instead"), "{}", confirm.text);
    let expired = post(&server, &format!("/manage/api-tokens/{id}/expire"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(expired.status, 303, "{}", expired.text);
    let record = server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.json();
    assert_eq!(record["status"], "expired", "{record}");
    let deleted = post(&server, &format!("/manage/api-tokens/{id}/delete"), &session, &[("csrf", &csrf)]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/manage/api-tokens"), "{}", deleted.text);
    assert!(token_ids(&get(&server, "/manage/api-tokens", &session).await).is_empty());
    assert_eq!(server.get(&format!("/api/v1/api-tokens/{id}"), &admin).await.status, 404);
    let audit = server.get("/api/v1/audit?limit=100", &admin).await.text;
    for action in ["api_token.create", "api_token.unlock", "api_token.update", "api_token.expire", "api_token.delete"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(audit.contains(&format!("user:{tess} (tess)")), "the portal's changes name the person");
}
on_each_store!(a_token_manager_adds_unlocks_edits_expires_and_deletes_api_tokens);

async fn a_model_monitor_token_is_made_copied_and_revoked_on_its_own_page(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    person(&server, &admin, "mona").await;
    let session = session_of(&server, "mona").await;
    let page = get(&server, "/account/model-monitor", &session).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<code>X-DMM-API-KEY</code>"), "{}", page.text);
    assert!(page.text.contains("value=\"model-monitor\""), "a default name: {}", page.text);
    let csrf = page.field("csrf");
    let fields = [("csrf", csrf.as_str()), ("name", "dmm"), ("expires_in_days", "30"), ("description", "")];
    let created = post(&server, "/account/model-monitor", &session, &fields).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.text.contains("X-DMM-API-KEY header"), "{}", created.text);
    let secret = attribute_after(&created.text, "id=\"new-secret\" value=\"");
    let dmm = server.call("GET", "/v4/users/self", Via::Header("X-DMM-API-KEY", &secret), None).await;
    assert_eq!(dmm.status, 200, "{}", dmm.text);
    assert_eq!(
        server.call("GET", "/v4/users/self", Via::Bearer(&secret), None).await.status,
        401,
        "only Model Monitor"
    );

    // A personal key is on the API keys page only; the token on both, marked.
    let personal = [("csrf", csrf.as_str()), ("name", "laptop"), ("expires_in_days", "30"), ("description", "")];
    assert_eq!(post(&server, "/account/api-keys", &session, &personal).await.status, 201);
    let monitor = get(&server, "/account/model-monitor", &session).await;
    assert!(monitor.text.contains(">dmm") && !monitor.text.contains("laptop"), "{}", monitor.text);
    assert!(!monitor.text.contains(&secret));
    let keys = get(&server, "/account/api-keys", &session).await;
    assert!(keys.text.contains("laptop") && keys.text.contains("<td>model-monitor</td>"), "{}", keys.text);

    // Revoking from this page comes back to it; the token stops working.
    let key_id = attribute_after(&monitor.text, "action=\"/account/api-keys/").split('/').next().unwrap().to_string();
    let revoke = [("csrf", csrf.as_str()), ("back", "/account/model-monitor")];
    let revoked = post(&server, &format!("/account/api-keys/{key_id}/revoke"), &session, &revoke).await;
    assert_eq!((revoked.status, revoked.location()), (303, "/account/model-monitor"), "{}", revoked.text);
    let dmm = server.call("GET", "/v4/users/self", Via::Header("X-DMM-API-KEY", &secret), None).await;
    assert_eq!(dmm.status, 401);
    assert!(get(&server, "/account/model-monitor", &session).await.text.contains("no active Model Monitor token"));
}
on_each_store!(a_model_monitor_token_is_made_copied_and_revoked_on_its_own_page);

async fn an_admin_manages_service_accounts_and_sees_tokens_that_expire_soon(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    person(&server, &admin, "pat").await;
    let ada = person(&server, &admin, "ada").await;
    let granted = server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);

    let pat_session = session_of(&server, "pat").await;
    let refused = get(&server, "/admin/service-accounts", &pat_session).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("admin role"), "{}", refused.text);
    assert!(!refused.text.contains("href=\"/admin/service-accounts\""), "no link for a non-admin");

    let session = session_of(&server, "ada").await;
    let list = get(&server, "/admin/service-accounts", &session).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_security_headers(&list);
    let csrf = list.field("csrf");
    let refused =
        post(&server, "/admin/service-accounts", &session, &[("username", "etl"), ("email", "etl@example.com")]).await;
    assert_eq!(refused.status, 403, "no CSRF token: {}", refused.text);
    let bad = post(
        &server,
        "/admin/service-accounts",
        &session,
        &[("csrf", &csrf), ("username", "Bad Name"), ("email", "etl@example.com")],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("username") && bad.text.contains("value=\"Bad Name\""), "{}", bad.text);
    let created = post(
        &server,
        "/admin/service-accounts",
        &session,
        &[("csrf", &csrf), ("username", "etl"), ("email", "etl+bot@example.com")],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let account_path = created.location().to_string();
    let account_id = account_path.rsplit('/').next().unwrap().to_string();
    assert_eq!(server.get(&format!("/api/v1/service-accounts/{account_id}"), &admin).await.json()["username"], "etl");

    // Tokens: one that expires within 30 days is highlighted, here and on the list.
    let issue = |name: &'static str, days: &'static str| {
        let (csrf, path) = (csrf.clone(), format!("{account_path}/tokens"));
        let server = &server;
        let session = session.clone();
        async move {
            let fields = [("csrf", csrf.as_str()), ("name", name), ("lifetime_days", days), ("description", "")];
            post(server, &path, &session, &fields).await
        }
    };
    let soon = issue("soon", "10").await;
    assert_eq!(soon.status, 201, "{}", soon.text);
    let soon_secret = attribute_after(&soon.text, "id=\"new-secret\" value=\"");
    assert!(soon_secret.starts_with("kws_"), "{soon_secret}");
    let later = issue("later", "100").await;
    let later_secret = attribute_after(&later.text, "id=\"new-secret\" value=\"");
    assert_eq!(issue("later", "100").await.status, 409, "a name is unique among valid tokens");
    let bad_days = issue("forever", "99999").await;
    assert_eq!(bad_days.status, 422, "{}", bad_days.text);
    for secret in [&soon_secret, &later_secret] {
        assert_eq!(server.get("/v4/users/self", secret).await.status, 200);
    }
    let account = get(&server, &account_path, &session).await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert!(!account.text.contains(&soon_secret[8..]) && !account.text.contains(&later_secret[8..]), "no secrets");
    let rows: Vec<&str> = account.text.split("<tr").skip(2).collect();
    let soon_row = rows.iter().find(|row| row.contains(">soon")).unwrap();
    let later_row = rows.iter().find(|row| row.contains(">later")).unwrap();
    assert!(soon_row.starts_with(" class=\"soon\"") && soon_row.contains("expires in 10 days"), "{soon_row}");
    assert!(!later_row.contains("soon") && !later_row.contains("expires in"), "{later_row}");
    let list = get(&server, "/admin/service-accounts", &session).await;
    let expiring = list.text.split("Tokens expiring within 30 days").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(expiring.contains("soon") && !expiring.contains("later"), "{expiring}");

    // Invalidate one; deactivate the account (every token stops); activate revives none.
    let soon_id =
        attribute_after(soon_row, &format!("action=\"{account_path}/tokens/")).split('/').next().unwrap().to_string();
    let path = format!("{account_path}/tokens/{soon_id}/invalidate");
    assert_eq!(post(&server, &path, &session, &[]).await.status, 403);
    let invalidated = post(&server, &path, &session, &[("csrf", &csrf)]).await;
    assert_eq!((invalidated.status, invalidated.location()), (303, account_path.as_str()), "{}", invalidated.text);
    assert_eq!(server.get("/v4/users/self", &soon_secret).await.status, 401);
    assert_eq!(server.get("/v4/users/self", &later_secret).await.status, 200);
    let deactivated = post(&server, &format!("{account_path}/deactivate"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(deactivated.status, 303, "{}", deactivated.text);
    assert_eq!(server.get("/v4/users/self", &later_secret).await.status, 401);
    let account = get(&server, &account_path, &session).await;
    assert!(account.text.contains("deactivated") && account.text.contains("activate it first"), "{}", account.text);
    let activated = post(&server, &format!("{account_path}/activate"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(activated.status, 303, "{}", activated.text);
    assert_eq!(server.get("/v4/users/self", &later_secret).await.status, 401, "activation revives no token");

    // A person, or another realm's account, is not a service account here.
    assert_eq!(get(&server, &format!("/admin/service-accounts/{ada}"), &session).await.status, 404);
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let acme = server
        .post("/api/v1/service-accounts", &acme_admin, json!({"username": "etl", "email": "etl@acme.example"}))
        .await;
    assert_eq!(acme.status, 201, "{}", acme.text);
    let acme_id = acme.json()["id"].as_str().unwrap().to_string();
    assert_eq!(get(&server, &format!("/admin/service-accounts/{acme_id}"), &session).await.status, 404);
    let path = format!("/admin/service-accounts/{acme_id}/deactivate");
    assert_eq!(post(&server, &path, &session, &[("csrf", &csrf)]).await.status, 404);
    let acme_account = server.get(&format!("/api/v1/service-accounts/{acme_id}"), &acme_admin).await.json();
    assert_eq!(acme_account["enabled"], true);
}
on_each_store!(an_admin_manages_service_accounts_and_sees_tokens_that_expire_soon);

async fn an_admin_manages_people_groups_and_roles(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let ada = person(&server, &admin, "ada").await;
    let granted = server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);
    person(&server, &admin, "pat").await;
    let pat_session = session_of(&server, "pat").await;
    for path in ["/admin/users", "/admin/groups"] {
        assert_eq!(get(&server, path, &pat_session).await.status, 403, "{path}");
    }

    let session = session_of(&server, "ada").await;
    let users = get(&server, "/admin/users", &session).await;
    assert_eq!(users.status, 200, "{}", users.text);
    assert!(users.text.contains("href=\"/admin/groups\""), "the admin nav");
    let csrf = users.field("csrf");

    // Add a person with a password: bad input keeps the form and never echoes the password.
    let new_user = |username: &'static str, password: &'static str| {
        vec![
            ("username", username),
            ("email", "lee@example.com"),
            ("first_name", "Lee"),
            ("last_name", "Ng"),
            ("password", password),
        ]
    };
    let mut fields = new_user("lee", "short");
    fields.push(("csrf", &csrf));
    let bad = post(&server, "/admin/users", &session, &fields).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("value=\"lee@example.com\"") && !bad.text.contains("short\""), "{}", bad.text);
    let mut fields = new_user("lee", PASSWORD);
    assert_eq!(post(&server, "/admin/users", &session, &fields).await.status, 403, "no CSRF token");
    fields.push(("csrf", &csrf));
    let created = post(&server, "/admin/users", &session, &fields).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let lee_path = created.location().split('?').next().unwrap().to_string();
    let lee = lee_path.rsplit('/').next().unwrap().to_string();
    assert!(!get(&server, created.location(), &session).await.text.contains(PASSWORD));
    let lee_session = session_of(&server, "lee").await;

    // A role, granted with one button, reaches the person's session at once.
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 403);
    let grant = post(&server, &format!("{lee_path}/roles/token-manager/grant"), &session, &[("csrf", &csrf)]).await;
    assert_eq!((grant.status, grant.location()), (303, lee_path.as_str()), "{}", grant.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 200);
    let unknown = post(&server, &format!("{lee_path}/roles/root/grant"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    let revoke = post(&server, &format!("{lee_path}/roles/token-manager/revoke"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(revoke.status, 303, "{}", revoke.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 403);
    // Nobody takes the admin role from themselves; the page offers no such button.
    let own = get(&server, &format!("/admin/users/{ada}"), &session).await;
    assert!(!own.text.contains("/roles/admin/revoke") && !own.text.contains("/disable"), "{}", own.text);
    let refused = post(&server, &format!("/admin/users/{ada}/roles/admin/revoke"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 409, "{}", refused.text);

    // Groups: a member gains the group's roles, and loses them when removed.
    let groups = get(&server, "/admin/groups", &session).await;
    assert_eq!(groups.status, 200, "{}", groups.text);
    let group =
        post(&server, "/admin/groups", &session, &[("csrf", &csrf), ("name", "data-eng"), ("description", "")]).await;
    assert_eq!(group.status, 303, "{}", group.text);
    let group_path = group.location().to_string();
    let grant = post(&server, &format!("{group_path}/roles/token-manager/grant"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(grant.status, 303, "{}", grant.text);
    let nobody =
        post(&server, &format!("{group_path}/members"), &session, &[("csrf", &csrf), ("username", "nobody")]).await;
    assert_eq!(nobody.status, 422, "{}", nobody.text);
    assert!(nobody.text.contains("no user or service account called"), "{}", nobody.text);
    let added =
        post(&server, &format!("{group_path}/members"), &session, &[("csrf", &csrf), ("username", "lee")]).await;
    assert_eq!(added.status, 303, "{}", added.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 200, "the group's role");
    let lee_page = get(&server, &lee_path, &session).await;
    assert!(lee_page.text.contains("through a group") && lee_page.text.contains("data-eng"), "{}", lee_page.text);
    let removed = post(&server, &format!("{group_path}/members/{lee}/remove"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(removed.status, 303, "{}", removed.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 403);

    // Password, disable (ends the session), enable, delete.
    let set = post(&server, &format!("{lee_path}/password"), &session, &[("csrf", &csrf), ("password", "x")]).await;
    assert_eq!(set.status, 422, "{}", set.text);
    let new_password = "a brand new passphrase";
    let set =
        post(&server, &format!("{lee_path}/password"), &session, &[("csrf", &csrf), ("password", new_password)]).await;
    assert_eq!(set.status, 303, "{}", set.text);
    assert!(get(&server, set.location(), &session).await.text.contains("The password was set."));
    assert_eq!(log_in(&server, "lee", new_password).await.status, 303);
    let disabled = post(&server, &format!("{lee_path}/disable"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(disabled.status, 303, "{}", disabled.text);
    assert_eq!(get(&server, "/account", &lee_session).await.status, 303, "disabled: the session is over");
    assert_eq!(post(&server, &format!("{lee_path}/enable"), &session, &[("csrf", &csrf)]).await.status, 303);
    let deleted = post(&server, &format!("{lee_path}/delete"), &session, &[("csrf", &csrf)]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/admin/users"), "{}", deleted.text);
    assert_eq!(get(&server, &lee_path, &session).await.status, 404);
    let deleted = post(&server, &format!("{group_path}/delete"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.text);
    assert_eq!(get(&server, &group_path, &session).await.status, 404);

    // Another realm's people are not there.
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let ann = create_user(&server, &acme_admin, "ann").await;
    assert_eq!(get(&server, &format!("/admin/users/{ann}"), &session).await.status, 404);
    let path = format!("/admin/users/{ann}/roles/admin/grant");
    assert_eq!(post(&server, &path, &session, &[("csrf", &csrf)]).await.status, 404);
    assert!(!get(&server, "/admin/users", &session).await.text.contains(">ann<"));
}
on_each_store!(an_admin_manages_people_groups_and_roles);

// ---- Deployer ----

/// A realm with the deployer's objects, made with the bootstrap admin key: the service
/// `churn` (API keys, one key) deployed on `dev`, and `prod`, which only admins see.
/// `dana` holds Deploy on both churn and dev, `vic` Read on churn and View on dev,
/// `nina` nothing.
struct DeployerWorld {
    admin: String,
    upstream: String,
    dana: String,
    vic: String,
    readers: String,
    dev: String,
    prod: String,
    service: String,
    deployment: String,
    key_id: String,
    key: String,
}

async fn deployer_world(server: &Server) -> DeployerWorld {
    let admin = server.bootstrap_key();
    let upstream = crate::deployer::echo_upstream().await;
    let dana = person(server, &admin, "dana").await;
    let vic = person(server, &admin, "vic").await;
    person(server, &admin, "nina").await;
    let deployers = crate::deployer::group(server, &admin, "deployers", &[&dana], None).await;
    let readers = crate::deployer::group(server, &admin, "readers", &[&vic], None).await;
    let id = |answer: crate::harness::Answer| {
        assert!(answer.status < 300, "{}", answer.text);
        answer.json()["id"].as_str().unwrap().to_string()
    };
    let dev =
        id(server.post("/api/v1/infrastructures", &admin, json!({"name": "dev", "description": "sandbox"})).await);
    let prod = id(server.post("/api/v1/infrastructures", &admin, json!({"name": "prod"})).await);
    let service = id(server.post("/api/v1/api-services", &admin, json!({"name": "churn"})).await);
    let grants = [
        (format!("/api/v1/infrastructures/{dev}/permissions/{deployers}"), "deploy"),
        (format!("/api/v1/infrastructures/{dev}/permissions/{readers}"), "view"),
        (format!("/api/v1/api-services/{service}/permissions/{deployers}"), "deploy"),
        (format!("/api/v1/api-services/{service}/permissions/{readers}"), "read"),
    ];
    for (path, privilege) in grants {
        let granted = server.call("PUT", &path, Via::Bearer(&admin), Some(json!({"privilege": privilege}))).await;
        assert_eq!(granted.status, 200, "{}", granted.text);
    }
    let path = format!("/api/v1/api-services/{service}/versions");
    let version = id(server.post(&path, &admin, json!({"upstream": format!("{upstream}/model")})).await);
    let body = json!({"serviceId": service, "infrastructureId": dev, "versionId": version});
    let deployment = id(server.post("/api/v1/deployments", &admin, body).await);
    let created = server.post(&format!("/api/v1/api-services/{service}/keys"), &admin, json!({"name": "dev"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key_id = created.json()["id"].as_str().unwrap().to_string();
    let key = created.json()["secret"].as_str().unwrap().to_string();
    DeployerWorld { admin, upstream, dana, vic, readers, dev, prod, service, deployment, key_id, key }
}

async fn the_deployer_page_shows_each_person_what_the_api_lets_them_see(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let world = deployer_world(&server).await;

    // The reader sees the service, the infrastructure they view and the deployment, with
    // its gateway URL, each linking to its page; never prod, never a key.
    let vic = session_of(&server, "vic").await;
    let page = get(&server, "/deployer", &vic).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_security_headers(&page);
    assert!(page.text.contains("<nav aria-label=\"Deployer\">"), "{}", page.text);
    for wanted in [
        format!("href=\"/deployer/services/{}\"", world.service),
        format!("href=\"/deployer/infrastructures/{}\"", world.dev),
        format!("href=\"/deployer/deployments/{}\"", world.deployment),
        "/public/dev/churn/</code>".to_string(),
        "enabled".to_string(),
    ] {
        assert!(page.text.contains(&wanted), "{wanted}: {}", page.text);
    }
    assert!(!page.text.contains(&world.prod) && !page.text.contains(">prod<"), "{}", page.text);
    assert!(!page.text.contains(&world.key), "a key in the list");
    let dev = get(&server, &format!("/deployer/infrastructures/{}", world.dev), &vic).await;
    assert_eq!(dev.status, 200, "{}", dev.text);
    assert!(dev.text.contains("sandbox") && dev.text.contains("/public/dev/churn/"), "{}", dev.text);
    assert_eq!(get(&server, &format!("/deployer/infrastructures/{}", world.prod), &vic).await.status, 404);

    // Someone without privileges sees none of it, and the pages are not there for them.
    let nina = session_of(&server, "nina").await;
    let page = get(&server, "/deployer", &nina).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for unseen in [&world.service, &world.dev, &world.deployment, &world.prod] {
        assert!(!page.text.contains(unseen.as_str()), "{unseen}: {}", page.text);
    }
    assert!(!page.text.contains("churn"), "{}", page.text);
    let refused = get(&server, &format!("/deployer/infrastructures/{}", world.dev), &nina).await;
    assert_eq!(refused.status, 404, "{}", refused.text);
    assert!(refused.text.contains("No infrastructure with that id"), "{}", refused.text);

    // No session: the login page.
    let anonymous = send(&server, "GET", "/deployer", &[], None).await;
    assert_eq!((anonymous.status, anonymous.location()), (303, "/login"));
}
on_each_store!(the_deployer_page_shows_each_person_what_the_api_lets_them_see);

/// A gateway call with a key, as a client makes it.
async fn call_with_key(server: &Server, path: &str, key: &str) -> u16 {
    let request = server.http.post(format!("{}{path}", server.url)).header("Authorization", format!("Bearer {key}"));
    request.body(r#"{"key": "value"}"#).send().await.unwrap().status().as_u16()
}

async fn a_deployer_switches_a_deployment_and_a_reader_reveals_its_key_on_the_record(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let world = deployer_world(&server).await;
    let deployment_path = format!("/deployer/deployments/{}", world.deployment);
    let service_key_path = format!("/deployer/services/{}/keys/{}/reveal", world.service, world.key_id);

    // A reader sees the deployment, its auth and its key's reveal button, but neither the
    // key nor the switch, which the API refuses them.
    let vic = session_of(&server, "vic").await;
    let page = get(&server, &deployment_path, &vic).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_security_headers(&page);
    let csrf = page.field("csrf");
    for wanted in ["API keys (kwd_", "/public/dev/churn/</code>", &service_key_path, "Get a sample call"] {
        assert!(page.text.contains(wanted), "{wanted}: {}", page.text);
    }
    assert!(!page.text.contains("/disable\"") && !page.text.contains("/enable\""), "{}", page.text);
    assert!(!page.text.contains(&world.key), "the key is in the deployment page");
    let refused = post(&server, &format!("{deployment_path}/disable"), &vic, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("deploy privilege on both"), "{}", refused.text);
    assert_eq!(call_with_key(&server, "/public/dev/churn/predict", &world.key).await, 200);

    // The reveal: the key behind the Copy button, on the audit record; without the CSRF
    // token, nothing.
    let no_csrf = post(&server, &service_key_path, &vic, &[]).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text);
    assert!(!no_csrf.text.contains(&world.key));
    let revealed = post(&server, &service_key_path, &vic, &[("csrf", &csrf)]).await;
    assert_eq!(revealed.status, 200, "{}", revealed.text);
    assert_security_headers(&revealed);
    assert_eq!(attribute_after(&revealed.text, "id=\"new-secret\" value=\""), world.key);
    assert!(revealed.text.contains("data-copy-from=\"new-secret\""), "{}", revealed.text);
    let sample = post(&server, &format!("{deployment_path}/sample"), &vic, &[("csrf", &csrf)]).await;
    assert_eq!(sample.status, 200, "{}", sample.text);
    let curl = attribute_after(&sample.text, "id=\"new-secret\" value=\"");
    assert!(curl.contains(&world.key) && curl.contains("/public/dev/churn"), "{curl}");
    assert!(sample.text.contains("Bearer $KEY"), "{}", sample.text);
    let audit = server.get("/api/v1/audit?limit=100", &world.admin).await.text;
    let reveals = audit.matches("deployment_key.reveal").count();
    assert_eq!(reveals, 2, "the reveal and the sample, each once: {audit}");
    assert!(audit.contains(&format!("user:{} (vic)", world.vic)), "{audit}");

    // Someone without privileges: the deployment is not there, nor its key.
    let nina = session_of(&server, "nina").await;
    let nina_csrf = get(&server, "/deployer", &nina).await.field("csrf");
    assert_eq!(get(&server, &deployment_path, &nina).await.status, 404);
    for path in [service_key_path.clone(), format!("{deployment_path}/enable"), format!("{deployment_path}/sample")] {
        let refused = post(&server, &path, &nina, &[("csrf", &nina_csrf)]).await;
        assert_eq!(refused.status, 404, "{path}: {}", refused.text);
        assert!(!refused.text.contains(&world.key));
    }

    // A deployer disables it (the gateway answers 404) and enables it again.
    let dana = session_of(&server, "dana").await;
    let page = get(&server, &deployment_path, &dana).await;
    let csrf = page.field("csrf");
    assert!(page.text.contains(&format!("action=\"{deployment_path}/disable\" data-confirm=\"Disable churn on dev?")));
    let no_csrf = post(&server, &format!("{deployment_path}/disable"), &dana, &[]).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text);
    assert_eq!(call_with_key(&server, "/public/dev/churn/predict", &world.key).await, 200, "still enabled");
    let disabled = post(&server, &format!("{deployment_path}/disable"), &dana, &[("csrf", &csrf)]).await;
    assert_eq!((disabled.status, disabled.location()), (303, deployment_path.as_str()), "{}", disabled.text);
    assert_eq!(call_with_key(&server, "/public/dev/churn/predict", &world.key).await, 404);
    let page = get(&server, &deployment_path, &dana).await;
    assert!(page.text.contains("disabled") && page.text.contains(&format!("{deployment_path}/enable")));
    let enabled = post(&server, &format!("{deployment_path}/enable"), &dana, &[("csrf", &csrf)]).await;
    assert_eq!(enabled.status, 303, "{}", enabled.text);
    assert_eq!(call_with_key(&server, "/public/dev/churn/predict", &world.key).await, 200);
    let audit = server.get("/api/v1/audit?limit=100", &world.admin).await.text;
    assert!(audit.contains("deployment.disable") && audit.contains("deployment.enable"), "{audit}");

    // Another realm's deployment and key are not there, even for an administrator.
    let ada = person(&server, &world.admin, "ada").await;
    let granted =
        server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&world.admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);
    let realm = server.post("/api/v1/realms", &world.admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let id = |answer: crate::harness::Answer| answer.json()["id"].as_str().unwrap().to_string();
    let acme_dev = id(server.post("/api/v1/infrastructures", &acme_admin, json!({"name": "dev"})).await);
    let acme_service = id(server.post("/api/v1/api-services", &acme_admin, json!({"name": "churn"})).await);
    let path = format!("/api/v1/api-services/{acme_service}/versions");
    let acme_version = id(server.post(&path, &acme_admin, json!({"upstream": "http://10.0.0.1/"})).await);
    let body = json!({"serviceId": acme_service, "infrastructureId": acme_dev, "versionId": acme_version});
    let acme_deployment = id(server.post("/api/v1/deployments", &acme_admin, body).await);
    let path = format!("/api/v1/api-services/{acme_service}/keys");
    let acme_key = id(server.post(&path, &acme_admin, json!({"name": "k"})).await);
    let ada = session_of(&server, "ada").await;
    let ada_csrf = get(&server, "/deployer", &ada).await.field("csrf");
    assert_eq!(get(&server, &format!("/deployer/deployments/{acme_deployment}"), &ada).await.status, 404);
    assert_eq!(get(&server, &format!("/deployer/infrastructures/{acme_dev}"), &ada).await.status, 404);
    let path = format!("/deployer/services/{acme_service}/keys/{acme_key}/reveal");
    assert_eq!(post(&server, &path, &ada, &[("csrf", &ada_csrf)]).await.status, 404);
    let path = format!("/deployer/deployments/{acme_deployment}/disable");
    assert_eq!(post(&server, &path, &ada, &[("csrf", &ada_csrf)]).await.status, 404);
    assert!(!get(&server, "/deployer", &ada).await.text.contains(&acme_deployment));
}
on_each_store!(a_deployer_switches_a_deployment_and_a_reader_reveals_its_key_on_the_record);

async fn a_creator_makes_a_service_uploads_a_version_deploys_it_and_calls_it_with_a_new_key(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let world = deployer_world(&server).await;
    let service_path = format!("/deployer/services/{}", world.service);

    // A reader sees the service, its versions, keys and deployments, never a key; the
    // forms are there, and the API refuses what Read does not allow, keeping the form.
    let vic = session_of(&server, "vic").await;
    let page = get(&server, &service_path, &vic).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_security_headers(&page);
    let csrf = page.field("csrf");
    for wanted in [
        format!("{}/model</code>", world.upstream),
        format!("{service_path}/keys/{}/reveal", world.key_id),
        format!("href=\"/deployer/deployments/{}\"", world.deployment),
        "<label for=\"version-upstream\">".to_string(),
    ] {
        assert!(page.text.contains(&wanted), "{wanted}: {}", page.text);
    }
    assert!(!page.text.contains(&world.key), "a key in the service page");
    let upstream = format!("{}/v2", world.upstream);
    let fields = [("csrf", csrf.as_str()), ("upstream", upstream.as_str()), ("description", "")];
    let refused = post(&server, &format!("{service_path}/versions"), &vic, &fields).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("write privilege") && refused.text.contains(&upstream), "{}", refused.text);
    let overview = get(&server, "/deployer", &vic).await;
    assert!(!overview.text.contains("action=\"/deployer/services\""), "the create form for someone without the role");
    let fields = [("csrf", csrf.as_str()), ("name", "fraud"), ("description", ""), ("auth", "apiKeys")];
    let refused = post(&server, "/deployer/services", &vic, &fields).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("create-api-service"), "{}", refused.text);

    // Someone without privileges: the service is not there.
    let nina = session_of(&server, "nina").await;
    assert_eq!(get(&server, &service_path, &nina).await.status, 404);
    let nina_csrf = get(&server, "/deployer", &nina).await.field("csrf");
    let fields = [("csrf", nina_csrf.as_str()), ("name", "k")];
    assert_eq!(post(&server, &format!("{service_path}/keys"), &nina, &fields).await.status, 404);

    // A holder of create-api-service makes a service (bad input first, kept in the form).
    crate::deployer::group(&server, &world.admin, "creators", &[&world.dana], Some("create-api-service")).await;
    let dana = session_of(&server, "dana").await;
    let overview = get(&server, "/deployer", &dana).await;
    let csrf = overview.field("csrf");
    assert!(overview.text.contains("<label for=\"service-name\">"), "{}", overview.text);
    let bad = [("csrf", csrf.as_str()), ("name", "Fraud/EU"), ("description", "scores"), ("auth", "apiKeys")];
    let refused = post(&server, "/deployer/services", &dana, &bad).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("name: ") && refused.text.contains("value=\"Fraud/EU\""), "{}", refused.text);
    let no_csrf = post(&server, "/deployer/services", &dana, &bad[1..]).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text);
    let good = [("csrf", csrf.as_str()), ("name", "fraud"), ("description", "scores"), ("auth", "apiKeys")];
    let created = post(&server, "/deployer/services", &dana, &good).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let fraud_path = created.location().to_string();
    assert!(fraud_path.starts_with("/deployer/services/"), "{fraud_path}");

    // A version: a bad upstream is a 422 that keeps what was typed.
    let fields = [("csrf", csrf.as_str()), ("upstream", "file:///etc"), ("description", "first")];
    let refused = post(&server, &format!("{fraud_path}/versions"), &dana, &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("upstream: must be an http:// URL"), "{}", refused.text);
    assert!(refused.text.contains("value=\"file:///etc\"") && refused.text.contains(">first</textarea>"));
    let upstream = format!("{}/fraud", world.upstream);
    let fields = [("csrf", csrf.as_str()), ("upstream", upstream.as_str()), ("description", "first")];
    let uploaded = post(&server, &format!("{fraud_path}/versions"), &dana, &fields).await;
    assert_eq!((uploaded.status, uploaded.location()), (303, fraud_path.as_str()), "{}", uploaded.text);
    let page = get(&server, &fraud_path, &dana).await;
    let version = attribute_after(&page.text, "<option value=\"");
    assert!(page.text.contains(&format!("{upstream}</code>")), "{}", page.text);

    // Deploy it: an infrastructure they cannot view is refused by name; dev works.
    let deploy = |infrastructure| {
        [
            ("csrf", csrf.as_str()),
            ("version", version.as_str()),
            ("infrastructure", infrastructure),
            ("auth", "service"),
        ]
    };
    let fields = deploy("prod");
    let refused = post(&server, &format!("{fraud_path}/deployments"), &dana, &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("no infrastructure called prod that you can view"), "{}", refused.text);
    let fields = deploy("dev");
    let deployed = post(&server, &format!("{fraud_path}/deployments"), &dana, &fields).await;
    assert_eq!(deployed.status, 303, "{}", deployed.text);
    let deployment_path = deployed.location().to_string();
    assert!(deployment_path.starts_with("/deployer/deployments/"), "{deployment_path}");
    let twice = post(&server, &format!("{fraud_path}/deployments"), &dana, &fields).await;
    assert_eq!(twice.status, 409, "{}", twice.text);
    assert!(twice.text.contains("already deployed on dev"), "{}", twice.text);

    // A key made on the page opens it; the pages never show it again unasked.
    let fields = [("csrf", csrf.as_str()), ("name", "scoring")];
    let made = post(&server, &format!("{fraud_path}/keys"), &dana, &fields).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let key = attribute_after(&made.text, "id=\"new-secret\" value=\"");
    assert!(key.starts_with("kwd_"), "{key}");
    assert_eq!(call_with_key(&server, "/public/dev/fraud/score", &key).await, 200);
    for path in [fraud_path.as_str(), deployment_path.as_str(), "/deployer"] {
        let page = get(&server, path, &dana).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert!(!page.text.contains(&key), "{path} shows the key");
    }

    // Public now: the deployment page shows its sample as text, which reveals nothing.
    let fields = [("csrf", csrf.as_str()), ("auth", "none")];
    let changed = post(&server, &format!("{fraud_path}/auth"), &dana, &fields).await;
    assert_eq!(changed.status, 303, "{}", changed.text);
    let status = server.http.post(format!("{}/public/dev/fraud/score", server.url)).send().await.unwrap().status();
    assert_eq!(status, 200);
    let page = get(&server, &deployment_path, &dana).await;
    assert!(page.text.contains("none: public") && page.text.contains("curl -X POST http"), "{}", page.text);
    let audit = server.get("/api/v1/audit?limit=100", &world.admin).await.text;
    assert_eq!(audit.matches("deployment_key.reveal").count(), 0, "{audit}");
    for action in ["api_service.create", "api_service.version.create", "deployment.create", "deployment_key.create"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }

    // The service's key is deleted on its page; a deployment with keys of its own gets
    // them on its page (a refused name keeps the form), and deletes them there.
    // (The deployment is public now: the service's settings say none.)
    let fields = [("csrf", csrf.as_str()), ("auth", "apiKeys")];
    assert_eq!(post(&server, &format!("{fraud_path}/auth"), &dana, &fields).await.status, 303);
    assert_eq!(call_with_key(&server, "/public/dev/fraud/score", &key).await, 200);
    let page = get(&server, &fraud_path, &dana).await;
    assert!(page.text.contains("data-confirm=\"Delete the key scoring?"), "{}", page.text);
    let key_id = attribute_after(&page.text, &format!("action=\"{fraud_path}/keys/"));
    let key_id = key_id.split('/').next().unwrap();
    let deleted = post(&server, &format!("{fraud_path}/keys/{key_id}/delete"), &dana, &[("csrf", &csrf)]).await;
    assert_eq!((deleted.status, deleted.location()), (303, fraud_path.as_str()), "{}", deleted.text);
    assert_eq!(call_with_key(&server, "/public/dev/fraud/score", &key).await, 401);
    let deployment_id = deployment_path.trim_start_matches("/deployer/deployments/");
    let own_keys = server
        .call(
            "PATCH",
            &format!("/api/v1/deployments/{deployment_id}"),
            Via::Bearer(&world.admin),
            Some(json!({"auth": {"type": "apiKeys"}})),
        )
        .await;
    assert_eq!(own_keys.status, 200, "{}", own_keys.text);
    let page = get(&server, &deployment_path, &dana).await;
    assert!(page.text.contains("has keys of its own") && page.text.contains("There are no keys yet."), "{}", page.text);
    let refused = post(&server, &format!("{deployment_path}/keys"), &dana, &[("csrf", &csrf), ("name", "")]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("name: ") && refused.text.contains("id=\"key-name\""), "{}", refused.text);
    let made = post(&server, &format!("{deployment_path}/keys"), &dana, &[("csrf", &csrf), ("name", "own")]).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let own = attribute_after(&made.text, "id=\"new-secret\" value=\"");
    assert_eq!(call_with_key(&server, "/public/dev/fraud/score", &own).await, 200);
    let page = get(&server, &deployment_path, &dana).await;
    assert!(!page.text.contains(&own), "the deployment page shows its key");
    let own_id = attribute_after(&page.text, &format!("action=\"{deployment_path}/keys/"));
    let own_id = own_id.split('/').next().unwrap();
    let deleted = post(&server, &format!("{deployment_path}/keys/{own_id}/delete"), &dana, &[("csrf", &csrf)]).await;
    assert_eq!((deleted.status, deleted.location()), (303, deployment_path.as_str()), "{}", deleted.text);
    assert_eq!(call_with_key(&server, "/public/dev/fraud/score", &own).await, 401);
}
on_each_store!(a_creator_makes_a_service_uploads_a_version_deploys_it_and_calls_it_with_a_new_key);

async fn admins_make_infrastructures_and_owners_grant_groups_privileges_on_their_pages(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let world = deployer_world(&server).await;
    let ada = person(&server, &world.admin, "ada").await;
    let granted =
        server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&world.admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);

    // Only administrators get (and may use) the infrastructure form.
    let vic = session_of(&server, "vic").await;
    let overview = get(&server, "/deployer", &vic).await;
    let vic_csrf = overview.field("csrf");
    assert!(!overview.text.contains("action=\"/deployer/infrastructures\""), "{}", overview.text);
    let fields = [("csrf", vic_csrf.as_str()), ("name", "staging"), ("description", ""), ("allowed_upstreams", "")];
    let refused = post(&server, "/deployer/infrastructures", &vic, &fields).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let ada = session_of(&server, "ada").await;
    let overview = get(&server, "/deployer", &ada).await;
    let csrf = overview.field("csrf");
    assert!(overview.text.contains("<label for=\"infrastructure-upstreams\">"), "{}", overview.text);
    let bad =
        [("csrf", csrf.as_str()), ("name", "staging"), ("description", "pre-prod"), ("allowed_upstreams", "http://x/")];
    let refused = post(&server, "/deployer/infrastructures", &ada, &bad).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("allowedUpstreams: ") && refused.text.contains(">http://x/</textarea>"));
    let good = [
        ("csrf", csrf.as_str()),
        ("name", "staging"),
        ("description", "pre-prod"),
        ("allowed_upstreams", "*.models.internal\r\n\r\n10.0.0.0/8\r\n"),
    ];
    let created = post(&server, "/deployer/infrastructures", &ada, &good).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let staging = created.location().to_string();
    let page = get(&server, &staging, &ada).await;
    assert!(page.text.contains("<code>*.models.internal</code>, <code>10.0.0.0/8</code>"), "{}", page.text);
    assert_eq!(get(&server, &staging, &vic).await.status, 404);

    // The admin grants the readers View on it with the group list; they see it, until
    // the grant is removed.
    assert!(page.text.contains(&format!("<option value=\"{}\">readers</option>", world.readers)), "{}", page.text);
    let grant = [("csrf", csrf.as_str()), ("group", world.readers.as_str()), ("privilege", "view")];
    let no_csrf = post(&server, &format!("{staging}/permissions"), &ada, &grant[1..]).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text);
    let bad = [("csrf", csrf.as_str()), ("group", world.readers.as_str()), ("privilege", "read")];
    let refused = post(&server, &format!("{staging}/permissions"), &ada, &bad).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("privilege: must be one of view, deploy, admin"), "{}", refused.text);
    let done = post(&server, &format!("{staging}/permissions"), &ada, &grant).await;
    assert_eq!((done.status, done.location()), (303, staging.as_str()), "{}", done.text);
    assert_eq!(get(&server, &staging, &vic).await.status, 200);
    assert!(get(&server, "/deployer", &vic).await.text.contains(">staging</a>"));
    let remove = format!("{staging}/permissions/{}/remove", world.readers);
    let page = get(&server, &staging, &ada).await;
    assert!(page.text.contains(&format!("action=\"{remove}\" data-confirm=\"Take view away from readers?")));
    assert_eq!(post(&server, &remove, &vic, &[("csrf", &vic_csrf)]).await.status, 403, "View is not Admin");
    assert_eq!(post(&server, &remove, &ada, &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(get(&server, &staging, &vic).await.status, 404);

    // On a service: its deployers may not grant (the API says so, keeping the form, and
    // they type a group's id, not being able to list groups); an admin may.
    let service_path = format!("/deployer/services/{}", world.service);
    let dana = session_of(&server, "dana").await;
    let page = get(&server, &service_path, &dana).await;
    let dana_csrf = page.field("csrf");
    assert!(page.text.contains("<label for=\"grant-group\">Group id"), "{}", page.text);
    assert!(page.text.contains(">readers<") && page.text.contains(">deployers<"), "{}", page.text);
    let grant = [("csrf", dana_csrf.as_str()), ("group", world.readers.as_str()), ("privilege", "write")];
    let refused = post(&server, &format!("{service_path}/permissions"), &dana, &grant).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("admin privilege on the API service") && refused.text.contains(&world.readers));
    let nina = session_of(&server, "nina").await;
    let nina_csrf = get(&server, "/deployer", &nina).await.field("csrf");
    let grant = [("csrf", nina_csrf.as_str()), ("group", world.readers.as_str()), ("privilege", "admin")];
    assert_eq!(post(&server, &format!("{service_path}/permissions"), &nina, &grant).await.status, 404);
    let remove = format!("{service_path}/permissions/{}/remove", world.readers);
    let grant = [("csrf", csrf.as_str()), ("group", world.readers.as_str()), ("privilege", "write")];
    assert_eq!(post(&server, &format!("{service_path}/permissions"), &ada, &grant).await.status, 303);
    assert!(get(&server, &service_path, &vic).await.text.contains("<dd>write</dd>"));
    assert_eq!(post(&server, &remove, &ada, &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(get(&server, &service_path, &vic).await.status, 404);
    let audit = server.get("/api/v1/audit?limit=100", &world.admin).await.text;
    for action in ["infrastructure.create", "infrastructure.grant", "infrastructure.revoke", "api_service.grant"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }

    // Another realm's service is not there, even for an administrator.
    let realm = server.post("/api/v1/realms", &world.admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let acme_service = server.post("/api/v1/api-services", &acme_admin, json!({"name": "churn"})).await;
    let acme_service = acme_service.json()["id"].as_str().unwrap().to_string();
    assert_eq!(get(&server, &format!("/deployer/services/{acme_service}"), &ada).await.status, 404);
    let path = format!("/deployer/services/{acme_service}/permissions");
    assert_eq!(post(&server, &path, &ada, &grant).await.status, 404);
}
on_each_store!(admins_make_infrastructures_and_owners_grant_groups_privileges_on_their_pages);
