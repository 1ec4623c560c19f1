//! The web portal over plain HTTP, one file per section; this one holds what they share.
//! Cookies are handled by hand so each test sees exactly what is set.

mod account;
mod admin;
mod api_tokens;
mod deployer;

use crate::harness::{Backend, Env, Server, Via, create_user};
use crate::on_each_store;
use serde_json::json;

pub(super) const PASSWORD: &str = "correct horse battery";

/// A client that does not follow redirects, so tests see the 303s and their cookies.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub(super) struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    /// The `Set-Cookie` header that sets `name`, whole.
    pub(super) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value `name` is set to.
    pub(super) fn cookie_value(&self, name: &str) -> String {
        let header = self.set_cookie(name).unwrap_or_else(|| panic!("no {name} cookie: {:?}", self.headers));
        header.split(';').next().unwrap()[name.len() + 1..].to_string()
    }

    pub(super) fn location(&self) -> &str {
        self.headers.get("location").and_then(|value| value.to_str().ok()).unwrap_or("")
    }

    /// The value of the first `name="…" value="…"` input.
    pub(super) fn field(&self, name: &str) -> String {
        attribute_after(&self.text, &format!("name=\"{name}\" value=\""))
    }
}

pub(super) fn attribute_after(text: &str, marker: &str) -> String {
    let start = text.find(marker).unwrap_or_else(|| panic!("no {marker} in {text}")) + marker.len();
    text[start..].split('"').next().unwrap().to_string()
}

pub(super) fn encode(fields: &[(&str, &str)]) -> String {
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

pub(super) async fn send(
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

pub(super) async fn get(server: &Server, path: &str, session: &str) -> Page {
    send(server, "GET", path, &[("kw_session", session)], None).await
}

pub(super) async fn post(server: &Server, path: &str, session: &str, form: &[(&str, &str)]) -> Page {
    send(server, "POST", path, &[("kw_session", session)], Some(form)).await
}

pub(super) fn assert_security_headers(page: &Page) {
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
pub(super) async fn log_in(server: &Server, username: &str, password: &str) -> Page {
    let form = send(server, "GET", "/login", &[], None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert_security_headers(&form);
    let token = form.cookie_value("kw_login_csrf");
    assert_eq!(form.field("login_csrf"), token);
    let fields = [("login_csrf", token.as_str()), ("username", username), ("password", password)];
    send(server, "POST", "/login", &[("kw_login_csrf", &token)], Some(&fields)).await
}

/// A login to the realm `realm` through its login page; answers the page after the POST.
pub(super) async fn log_in_to(server: &Server, realm: &str, username: &str) -> Page {
    let form = send(server, "GET", &format!("/login?realm={realm}"), &[], None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains(&format!("name=\"realm\" value=\"{realm}\"")), "{}", form.text);
    let token = form.cookie_value("kw_login_csrf");
    let fields = [("login_csrf", token.as_str()), ("realm", realm), ("username", username), ("password", PASSWORD)];
    send(server, "POST", "/login", &[("kw_login_csrf", &token)], Some(&fields)).await
}

/// Creates a person with the test password; answers their id.
pub(super) async fn person(server: &Server, admin: &str, username: &str) -> String {
    let id = create_user(server, admin, username).await;
    let path = format!("/api/v1/users/{id}/password");
    let set = server.call("PUT", &path, Via::Bearer(admin), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(set.status, 204, "{}", set.text);
    id
}

/// Logs in and answers the session id.
pub(super) async fn session_of(server: &Server, username: &str) -> String {
    let page = log_in(server, username, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert_eq!(page.location(), "/account");
    page.cookie_value("kw_session")
}
