//! The web portal over plain HTTP: login, sessions, CSRF, security headers and the
//! API-key page. Cookies are handled by hand so each test sees exactly what is set.

use crate::harness::{Backend, Env, Server, create_user};
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
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
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
    let pat = create_user(&server, &admin, "pat").await;
    let set = server
        .call(
            "PUT",
            &format!("/api/v1/users/{pat}/password"),
            crate::harness::Via::Bearer(&admin),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);

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
    let pat = create_user(&server, &admin, "pat").await;
    let set = server
        .call(
            "PUT",
            &format!("/api/v1/users/{pat}/password"),
            crate::harness::Via::Bearer(&admin),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);

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
    let pat = create_user(&first, &admin, "pat").await;
    let password = json!({"password": PASSWORD});
    let path = format!("/api/v1/users/{pat}/password");
    let set = first.call("PUT", &path, crate::harness::Via::Bearer(&admin), Some(password)).await;
    assert_eq!(set.status, 204, "{}", set.text);
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
