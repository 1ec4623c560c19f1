//! Logging in and out, sessions and realms, and a person's own API keys and Model
//! Monitor tokens.

use super::*;

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

async fn a_session_belongs_to_its_realm_and_a_cookie_from_another_realm_is_no_session_here(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let pat = person(&server, &admin, "pat").await;
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    // The same username in both realms: different people.
    let ann = person(&server, &acme_admin, "pat").await;
    let granted = server.call("PUT", &format!("/api/v1/users/{ann}/roles/admin"), Via::Bearer(&acme_admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);

    let unknown = send(&server, "GET", "/login?realm=nowhere", &[], None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.text.contains("no enabled realm by the name") && !unknown.text.contains("nowhere"));

    let login = log_in_to(&server, "acme", "pat").await;
    assert_eq!((login.status, login.location()), (303, "/account"), "{}", login.text);
    let acme_session = login.cookie_value("kw_session");
    let account = get(&server, "/account", &acme_session).await;
    assert!(account.text.contains(&ann) && !account.text.contains(&pat), "acme's pat: {}", account.text);
    assert!(account.text.contains("realm acme"), "{}", account.text);
    // Realm default's objects are not there for an acme session, admin or not.
    assert_eq!(get(&server, &format!("/admin/users/{pat}"), &acme_session).await.status, 404);
    assert!(!get(&server, "/admin/users", &acme_session).await.text.contains(&pat));
    // On realm default's login page the acme cookie is no session: the form is shown.
    let default_login = get(&server, "/login", &acme_session).await;
    assert_eq!(default_login.status, 200, "{}", default_login.text);
    assert!(default_login.text.contains("name=\"password\""), "{}", default_login.text);
    let acme_login = get(&server, "/login?realm=acme", &acme_session).await;
    assert_eq!((acme_login.status, acme_login.location()), (303, "/account"));
    // Logging in to realm default ends the acme session on the server.
    let form = send(&server, "GET", "/login", &[("kw_session", &acme_session)], None).await;
    let token = form.cookie_value("kw_login_csrf");
    let fields = [("login_csrf", token.as_str()), ("username", "pat"), ("password", PASSWORD)];
    let cookies = [("kw_login_csrf", token.as_str()), ("kw_session", acme_session.as_str())];
    let default = send(&server, "POST", "/login", &cookies, Some(&fields)).await;
    assert_eq!(default.status, 303, "{}", default.text);
    let default_session = default.cookie_value("kw_session");
    assert!(get(&server, "/account", &default_session).await.text.contains(&pat));
    assert_eq!(get(&server, "/account", &acme_session).await.status, 303, "the acme session was ended");

    // Logout from an acme session goes back to acme's login page; a disabled realm
    // ends its sessions.
    let acme_session = log_in_to(&server, "acme", "pat").await.cookie_value("kw_session");
    let csrf = get(&server, "/account", &acme_session).await.field("csrf");
    let out = post(&server, "/logout", &acme_session, &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/login?realm=acme"));
    let acme_session = log_in_to(&server, "acme", "pat").await.cookie_value("kw_session");
    let disabled = server.post("/api/v1/realms/acme/disable", &admin, json!({})).await;
    assert!(disabled.status < 300, "{}", disabled.text);
    assert_eq!(get(&server, "/account", &acme_session).await.status, 303, "a disabled realm's session is over");
    assert_eq!(send(&server, "GET", "/login?realm=acme", &[], None).await.status, 404);
}
on_each_store!(a_session_belongs_to_its_realm_and_a_cookie_from_another_realm_is_no_session_here);
