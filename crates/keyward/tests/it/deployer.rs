//! The API deployer and its gateway: infrastructures, services, deployments, group
//! privileges, per-deployment auth, and `/public/{infrastructure}/{service}/…`.

use crate::harness::{Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::{Value, json};

/// An upstream that answers every request with what it received.
pub(crate) async fn echo_upstream() -> String {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(|request: Request| async move {
        // Asked for, the answer also carries headers that would apply to the whole origin.
        let origin_wide = request.headers().contains_key("x-echo-origin-wide");
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.to_string(), Value::from(value.to_str().unwrap_or("<binary>"))))
            .collect();
        let method = request.method().to_string();
        let path = request.uri().to_string();
        let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
        let answer = axum::Json(
            json!({"method": method, "path": path, "headers": headers, "body": String::from_utf8_lossy(&body)}),
        );
        let mut response = answer.into_response();
        if origin_wide {
            for (name, value) in [
                ("set-cookie", "kw_session=stolen; Path=/"),
                ("clear-site-data", "\"cookies\""),
                ("nel", "{\"report_to\":\"g\",\"max_age\":31536000}"),
                ("report-to", "{\"group\":\"g\",\"endpoints\":[{\"url\":\"https://evil.example/r\"}]}"),
                ("strict-transport-security", "max-age=31536000"),
                ("refresh", "0;url=https://evil.example/"),
                ("accept-ch", "Sec-CH-UA-Model"),
                ("x-kept", "yes"),
            ] {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
        }
        response
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A group with these members and (optionally) a role; returns its id.
pub(crate) async fn group(server: &Server, admin: &str, name: &str, members: &[&str], role: Option<&str>) -> String {
    let created = server.post("/api/v1/groups", admin, json!({"name": name})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    for member in members {
        let added =
            server.call("PUT", &format!("/api/v1/groups/{id}/members/{member}"), Via::Bearer(admin), None).await;
        assert!(added.status < 300, "{}", added.text);
    }
    if let Some(role) = role {
        let granted = server.call("PUT", &format!("/api/v1/groups/{id}/roles/{role}"), Via::Bearer(admin), None).await;
        assert!(granted.status < 300, "{}", granted.text);
    }
    id
}

/// Deploys `version` of `service` on `infrastructure` as `key`; the created deployment.
async fn create_deployment(
    server: &Server,
    key: &str,
    service: &str,
    infrastructure: &str,
    version: &str,
) -> crate::harness::Answer {
    let body = json!({"serviceId": service, "infrastructureId": infrastructure, "versionId": version});
    let created = server.post("/api/v1/deployments", key, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created
}

async fn put(server: &Server, path: &str, key: &str, body: Value) -> crate::harness::Answer {
    server.call("PUT", path, Via::Bearer(key), Some(body)).await
}

/// POSTs `{"key": "value"}` to a gateway URL with `Authorization: Bearer KEY`, as the
/// seeds' curl does.
async fn call_gateway(server: &Server, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut request = server.http.post(format!("{}{path}", server.url)).body(r#"{"key": "value"}"#);
    if let Some(bearer) = bearer {
        request = request.header("Authorization", format!("Bearer {bearer}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Sends a raw request (the path exactly as written) and returns the status line.
fn raw_status(url: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = [0u8; 256];
    let read = stream.read(&mut buffer).unwrap();
    String::from_utf8_lossy(&buffer[..read]).lines().next().unwrap_or_default().to_string()
}

fn id(answer: &crate::harness::Answer) -> String {
    answer.json()["id"].as_str().unwrap_or_else(|| panic!("no id: {}", answer.text)).to_string()
}

async fn a_service_goes_to_dev_by_its_scientist_and_to_prod_by_devops_with_its_own_keys(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let upstream = echo_upstream().await;

    // People: a data scientist, a devops engineer, and someone with no privileges.
    let dana = create_user(&server, &admin, "dana").await;
    let (_, dana_key) = create_key(&server, &admin, &dana, json!({"name": "laptop"})).await;
    let omar = create_user(&server, &admin, "omar").await;
    let (_, omar_key) = create_key(&server, &admin, &omar, json!({"name": "laptop"})).await;
    let nina = create_user(&server, &admin, "nina").await;
    let (_, nina_key) = create_key(&server, &admin, &nina, json!({"name": "laptop"})).await;
    let scientists = group(&server, &admin, "data-scientists", &[&dana], Some("create-api-service")).await;
    let devops = group(&server, &admin, "devops", &[&omar], None).await;

    // Only admins create infrastructures.
    let refused = server.post("/api/v1/infrastructures", &dana_key, json!({"name": "dev"})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let dev =
        id(&server.post("/api/v1/infrastructures", &admin, json!({"name": "dev", "description": "sandbox"})).await);
    let prod = id(&server.post("/api/v1/infrastructures", &admin, json!({"name": "prod"})).await);
    let bad = server.post("/api/v1/infrastructures", &admin, json!({"name": "Prod/EU"})).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("a-z"), "{}", bad.text);
    for (infrastructure, group_id, privilege) in
        [(&dev, &scientists, "deploy"), (&prod, &scientists, "view"), (&prod, &devops, "deploy")]
    {
        let path = format!("/api/v1/infrastructures/{infrastructure}/permissions/{group_id}");
        let granted = put(&server, &path, &admin, json!({"privilege": privilege})).await;
        assert_eq!(granted.status, 200, "{}", granted.text);
    }

    // The scientist creates the service (and owns it) and uploads a version.
    let no_role = server.post("/api/v1/api-services", &nina_key, json!({"name": "churn"})).await;
    assert_eq!(no_role.status, 403, "{}", no_role.text);
    let service = server.post("/api/v1/api-services", &dana_key, json!({"name": "churn"})).await;
    assert_eq!(service.status, 201, "{}", service.text);
    assert_eq!(service.json()["myPrivilege"], "owner");
    assert_eq!(service.json()["auth"], json!({"type": "apiKeys"}));
    let service = id(&service);
    let version = server
        .post(
            &format!("/api/v1/api-services/{service}/versions"),
            &dana_key,
            json!({"upstream": format!("{upstream}/model")}),
        )
        .await;
    assert_eq!(version.status, 201, "{}", version.text);
    assert_eq!(version.json()["number"], 1);
    let version = id(&version);
    for metadata in ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]/"] {
        let refused = server
            .post(&format!("/api/v1/api-services/{service}/versions"), &dana_key, json!({"upstream": metadata}))
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(refused.text.contains("link-local"), "{}", refused.text);
    }
    let not_http = server
        .post(&format!("/api/v1/api-services/{service}/versions"), &dana_key, json!({"upstream": "file:///etc"}))
        .await;
    assert_eq!(not_http.status, 422, "{}", not_http.text);
    // Credentials in an upstream URL would be stored, shown and audited: refused, and the
    // refusal does not repeat them.
    let with_secret = server
        .post(
            &format!("/api/v1/api-services/{service}/versions"),
            &dana_key,
            json!({"upstream": format!("http://model:s3cret@{}", upstream.trim_start_matches("http://"))}),
        )
        .await;
    assert_eq!(with_secret.status, 422, "{}", with_secret.text);
    assert!(with_secret.text.contains("user name or password") && !with_secret.text.contains("s3cret"));
    let service_key =
        server.post(&format!("/api/v1/api-services/{service}/keys"), &dana_key, json!({"name": "dev"})).await;
    assert_eq!(service_key.status, 201, "{}", service_key.text);
    let service_key = service_key.json()["secret"].as_str().unwrap().to_string();
    assert!(service_key.starts_with("kwd_"));

    // Dev: yes. Prod: the scientist may only view it.
    let body =
        |infrastructure: &str| json!({"serviceId": service, "infrastructureId": infrastructure, "versionId": version});
    let on_dev = server.post("/api/v1/deployments", &dana_key, body(&dev)).await;
    assert_eq!(on_dev.status, 201, "{}", on_dev.text);
    assert!(on_dev.json()["url"].as_str().unwrap().ends_with("/public/dev/churn"), "{}", on_dev.text);
    let on_dev = id(&on_dev);
    let on_prod = server.post("/api/v1/deployments", &dana_key, body(&prod)).await;
    assert_eq!(on_prod.status, 403, "{}", on_prod.text);
    // Devops cannot see the service until its owner grants them Deploy on it.
    let unseen = server.post("/api/v1/deployments", &omar_key, body(&prod)).await;
    assert_eq!(unseen.status, 404, "{}", unseen.text);
    let path = format!("/api/v1/api-services/{service}/permissions/{devops}");
    assert_eq!(put(&server, &path, &dana_key, json!({"privilege": "deploy"})).await.status, 200);
    let owner_is_not_grantable = put(&server, &path, &dana_key, json!({"privilege": "owner"})).await;
    assert_eq!(owner_is_not_grantable.status, 422, "{}", owner_is_not_grantable.text);
    let mut prod_body = body(&prod);
    prod_body["auth"] = json!({"type": "apiKeys"});
    let on_prod = server.post("/api/v1/deployments", &omar_key, prod_body).await;
    assert_eq!(on_prod.status, 201, "{}", on_prod.text);
    let on_prod = id(&on_prod);
    let twice = server.post("/api/v1/deployments", &omar_key, body(&prod)).await;
    assert_eq!(twice.status, 409, "{}", twice.text);
    let prod_key =
        server.post(&format!("/api/v1/deployments/{on_prod}/keys"), &omar_key, json!({"name": "prod"})).await;
    assert_eq!(prod_key.status, 201, "{}", prod_key.text);
    let prod_key = prod_key.json()["secret"].as_str().unwrap().to_string();

    // A client calls both, each with its own key.
    let (status, echoed) = call_gateway(&server, "/public/dev/churn/predict?x=1", Some(&service_key)).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(echoed["path"], "/model/predict?x=1");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["body"], r#"{"key": "value"}"#);
    assert!(echoed["headers"].get("authorization").is_none(), "the caller's key reached the upstream: {echoed}");
    assert_eq!(echoed["headers"]["x-keyward-kind"], "deployment-key");
    let (status, _) = call_gateway(&server, "/public/prod/churn/predict", Some(&prod_key)).await;
    assert_eq!(status, 200);
    let x_api_key = server
        .http
        .post(format!("{}/public/prod/churn", server.url))
        .header("X-Api-Key", &prod_key)
        .send()
        .await
        .unwrap();
    assert_eq!(x_api_key.status(), 200);
    // Keys stay on their deployment; nothing else opens it.
    for (path, key) in [
        ("/public/prod/churn/predict", service_key.as_str()),
        ("/public/dev/churn/predict", prod_key.as_str()),
        ("/public/dev/churn/predict", dana_key.as_str()),
        ("/public/dev/churn/predict", admin.as_str()),
    ] {
        let (status, body) = call_gateway(&server, path, Some(key)).await;
        assert_eq!(status, 401, "{path} with {}: {body}", &key[..4]);
    }
    let (status, _) = call_gateway(&server, "/public/dev/churn/predict", None).await;
    assert_eq!(status, 401);
    // A deployment key is not a key to keyward's API.
    assert_eq!(server.get("/api/v1/users/me", &service_key).await.status, 401);
    assert_eq!(server.get("/v4/users/self", &prod_key).await.status, 401);

    // Lists show only what the caller may read; other ids are 404.
    assert_eq!(server.get("/api/v1/deployments", &nina_key).await.json(), json!([]));
    assert_eq!(server.get("/api/v1/api-services", &nina_key).await.json(), json!([]));
    assert_eq!(server.get(&format!("/api/v1/deployments/{on_dev}"), &nina_key).await.status, 404);
    assert_eq!(server.get(&format!("/api/v1/api-services/{service}/keys"), &nina_key).await.status, 404);
    let dana_sees = server.get("/api/v1/deployments", &dana_key).await.json();
    assert_eq!(dana_sees.as_array().unwrap().len(), 2, "Read on the service, View on both: {dana_sees}");
    let keys = server.get(&format!("/api/v1/deployments/{on_prod}/keys"), &dana_key).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    assert!(!keys.text.contains(&prod_key), "lists never carry secrets");
    let key_id = keys.json()[0]["id"].as_str().unwrap().to_string();
    let revealed =
        server.post(&format!("/api/v1/deployments/{on_prod}/keys/{key_id}/reveal"), &dana_key, json!({})).await;
    assert_eq!(revealed.status, 200, "{}", revealed.text);
    assert_eq!(revealed.json()["secret"], prod_key.as_str());
    // Sample code shows the first key (a reveal, so audited).
    let sample = server.get(&format!("/api/v1/deployments/{on_prod}/sample"), &dana_key).await;
    assert_eq!(sample.status, 200, "{}", sample.text);
    let curl = sample.json()["curl"].as_str().unwrap().to_string();
    assert!(curl.starts_with(&format!("curl -X POST --header 'Authorization: Bearer {prod_key}' ")), "{curl}");
    assert!(curl.ends_with(r#"/public/prod/churn --data '{"key": "value"}'"#), "{curl}");
    let forbidden = server
        .call("DELETE", &format!("/api/v1/deployments/{on_prod}/keys/{key_id}"), Via::Bearer(&dana_key), None)
        .await;
    assert_eq!(forbidden.status, 403, "Read may see keys, not remove them: {}", forbidden.text);

    // Disable: 404 at the gateway; enable again: back.
    let disabled = server.post(&format!("/api/v1/deployments/{on_dev}/disable"), &dana_key, json!({})).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.json()["enabled"], false);
    let (status, body) = call_gateway(&server, "/public/dev/churn/predict", Some(&service_key)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "urn:keyward:problem:not-found", "{body}");
    server.post(&format!("/api/v1/deployments/{on_dev}/enable"), &dana_key, json!({})).await;
    assert_eq!(call_gateway(&server, "/public/dev/churn/predict", Some(&service_key)).await.0, 200);
    assert_eq!(call_gateway(&server, "/public/staging/churn/predict", Some(&service_key)).await.0, 404);

    // Prod's admins restrict where its deployments may forward. A list that would strand
    // the running deployment is refused; then a version outside the list cannot go there.
    let prod_infra = format!("/api/v1/infrastructures/{prod}");
    let narrow = json!({"allowedUpstreams": ["models.internal"]});
    let stranded = server.call("PATCH", &prod_infra, Via::Bearer(&admin), Some(narrow)).await;
    assert_eq!(stranded.status, 409, "{}", stranded.text);
    let bad_entry = json!({"allowedUpstreams": ["http://models.internal/"]});
    let bad_entry = server.call("PATCH", &prod_infra, Via::Bearer(&admin), Some(bad_entry)).await;
    assert_eq!(bad_entry.status, 422, "{}", bad_entry.text);
    let loopback = json!({"allowedUpstreams": ["127.0.0.0/8", "*.models.internal"]});
    let restricted = server.call("PATCH", &prod_infra, Via::Bearer(&admin), Some(loopback)).await;
    assert_eq!(restricted.status, 200, "{}", restricted.text);
    assert_eq!(restricted.json()["allowedUpstreams"], json!(["127.0.0.0/8", "*.models.internal"]));
    let elsewhere = server
        .post(
            &format!("/api/v1/api-services/{service}/versions"),
            &dana_key,
            json!({"upstream": "http://localhost:1/x"}),
        )
        .await;
    let elsewhere = id(&elsewhere);
    let moved = server
        .call(
            "PATCH",
            &format!("/api/v1/deployments/{on_prod}"),
            Via::Bearer(&omar_key),
            Some(json!({"versionId": elsewhere})),
        )
        .await;
    assert_eq!(moved.status, 422, "{}", moved.text);
    assert_eq!(moved.json()["field"], "versionId");
    assert_eq!(call_gateway(&server, "/public/prod/churn/predict", Some(&prod_key)).await.0, 200);

    // A removed key is refused on the next call.
    let removed = server
        .call("DELETE", &format!("/api/v1/deployments/{on_prod}/keys/{key_id}"), Via::Bearer(&omar_key), None)
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(call_gateway(&server, "/public/prod/churn/predict", Some(&prod_key)).await.0, 401);

    // A version in use cannot go; the service cannot go while deployed.
    let in_use = server
        .call("DELETE", &format!("/api/v1/api-services/{service}/versions/{version}"), Via::Bearer(&dana_key), None)
        .await;
    assert_eq!(in_use.status, 409, "{}", in_use.text);
    let deployed =
        server.call("DELETE", &format!("/api/v1/api-services/{service}"), Via::Bearer(&dana_key), None).await;
    assert_eq!(deployed.status, 409, "{}", deployed.text);

    // An explicitly public service needs nothing; an upstream that is down is a 502.
    let public =
        server.post("/api/v1/api-services", &dana_key, json!({"name": "status", "auth": {"type": "none"}})).await;
    let public = id(&public);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for (upstream, infrastructure) in [(upstream.clone(), &dev)] {
        let version = id(&server
            .post(&format!("/api/v1/api-services/{public}/versions"), &dana_key, json!({"upstream": upstream}))
            .await);
        let created = create_deployment(&server, &dana_key, &public, infrastructure, &version).await;
        let (status, echoed) = call_gateway(&server, "/public/dev/status/", Some(&dana_key)).await;
        assert_eq!(status, 200, "{echoed}");
        assert!(echoed["headers"].get("authorization").is_none(), "stripped even when public: {echoed}");
        // Served from keyward's origin: no cookie of the browser's (the portal session
        // above all) reaches a published service.
        let echoed: Value = server
            .http
            .get(format!("{}/public/dev/status/", server.url))
            .header("Cookie", "kw_session=0123abcd; theme=dark")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(echoed["headers"].get("cookie").is_none(), "{echoed}");
        let down = id(&server
            .post(
                &format!("/api/v1/api-services/{public}/versions"),
                &dana_key,
                json!({"upstream": format!("http://{closed}")}),
            )
            .await);
        let moved = server
            .call(
                "PATCH",
                &format!("/api/v1/deployments/{}", id(&created)),
                Via::Bearer(&dana_key),
                Some(json!({"versionId": down})),
            )
            .await;
        assert_eq!(moved.json()["versionNumber"], 2, "{}", moved.text);
        let (status, body) = call_gateway(&server, "/public/dev/status/", None).await;
        assert_eq!(status, 502, "{body}");
    }

    // A service's settings reach every deployment that uses them: once prod does, changing
    // them (or the service's keys) needs Deploy on prod, and revealing a service key needs
    // View there.
    let prod_path = format!("/api/v1/deployments/{on_prod}");
    let inherit = json!({"auth": {"type": "service"}});
    let inherit = server.call("PATCH", &prod_path, Via::Bearer(&omar_key), Some(inherit)).await;
    assert_eq!(inherit.status, 200, "{}", inherit.text);
    assert_eq!(call_gateway(&server, "/public/prod/churn/predict", Some(&service_key)).await.0, 200);
    let more_keys =
        server.post(&format!("/api/v1/api-services/{service}/keys"), &dana_key, json!({"name": "more"})).await;
    assert_eq!(more_keys.status, 403, "{}", more_keys.text);
    let public = Some(json!({"auth": {"type": "none"}}));
    let opened = server.call("PATCH", &format!("/api/v1/api-services/{service}"), Via::Bearer(&dana_key), public).await;
    assert_eq!(opened.status, 403, "{}", opened.text);
    assert_eq!(call_gateway(&server, "/public/prod/churn/predict", None).await.0, 401);
    let service_keys = server.get(&format!("/api/v1/api-services/{service}/keys"), &dana_key).await.json();
    let service_key_id = service_keys[0]["id"].as_str().unwrap().to_string();
    let reveal_path = format!("/api/v1/api-services/{service}/keys/{service_key_id}/reveal");
    assert_eq!(server.post(&reveal_path, &dana_key, json!({})).await.status, 200, "dana may view prod");
    let readers = group(&server, &admin, "readers", &[&nina], None).await;
    let path = format!("/api/v1/api-services/{service}/permissions/{readers}");
    assert_eq!(put(&server, &path, &dana_key, json!({"privilege": "read"})).await.status, 200);
    assert_eq!(server.get(&format!("/api/v1/api-services/{service}/keys"), &nina_key).await.status, 200);
    let hidden = server.post(&reveal_path, &nina_key, json!({})).await;
    assert_eq!(hidden.status, 403, "nina cannot view prod, where the key works: {}", hidden.text);
    let own = json!({"auth": {"type": "apiKeys"}});
    let own = server.call("PATCH", &prod_path, Via::Bearer(&omar_key), Some(own)).await;
    assert_eq!(own.status, 200, "{}", own.text);
    // A five-minute access token never walks away with a permanent key.
    let (_, exchanged) = server.exchange("default", &dana_key, &[]).await;
    let access_token = exchanged["access_token"].as_str().unwrap_or_else(|| panic!("{exchanged}"));
    let by_token = server.call("POST", &reveal_path, Via::Bearer(access_token), Some(json!({}))).await;
    assert_eq!(by_token.status, 403, "{}", by_token.text);

    // Nothing climbs out of the upstream's base path; forwarding headers are keyward's.
    for path in ["/public/dev/churn/../x", "/public/dev/churn/%2e%2e/x", "/public/dev/churn/a%2fb"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service_key}\r\nConnection: close\r\n\r\n"
        );
        let status = raw_status(&server.url, &request);
        assert!(status.contains(" 400 "), "{path}: {status}");
    }
    let spoofed = server
        .http
        .post(format!("{}/public/dev/churn/predict", server.url))
        .header("Authorization", format!("Bearer {service_key}"))
        .header("X-Forwarded-For", "10.9.9.9")
        .header("Connection", "x-forwarded-for")
        .header("X-Keyward-User-Id", "someone-else")
        .header("X_Keyward_User_Id", "someone-else")
        .header("X.Keyward.Roles", "admin")
        .header("Proxy", "http://evil.example:3128")
        .header("X-Keyward-Admin", "true")
        .header("X_Forwarded_Host", "internal.example")
        .header("X-Original-URL", "/admin")
        .header("Metadata-Flavor", "Google")
        .header("X-Echo-Origin-Wide", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.headers()["content-security-policy"], "sandbox");
    for origin_wide in
        ["set-cookie", "clear-site-data", "nel", "report-to", "strict-transport-security", "refresh", "accept-ch"]
    {
        assert!(spoofed.headers().get(origin_wide).is_none(), "{origin_wide} reached the browser");
    }
    assert_eq!(spoofed.headers()["x-kept"], "yes");
    let echoed: Value = spoofed.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-forwarded-for"], "127.0.0.1", "{echoed}");
    for spoofed in [
        "x-keyward-user-id",
        "x_keyward_user_id",
        "x.keyward.roles",
        "proxy",
        "x-keyward-admin",
        "x_forwarded_host",
        "x-original-url",
        "metadata-flavor",
    ] {
        assert!(echoed["headers"].get(spoofed).is_none(), "{spoofed} reached the upstream: {echoed}");
    }

    // Every step is audited, reveals included.
    let audit = server.get("/api/v1/audit?limit=200", &admin).await.text;
    for action in [
        "infrastructure.create",
        "infrastructure.grant",
        "api_service.create",
        "api_service.version.create",
        "api_service.grant",
        "deployment.create",
        "deployment_key.create",
        "deployment_key.reveal",
        "deployment.disable",
        "deployment.enable",
        "deployment_key.delete",
    ] {
        assert!(audit.contains(action), "{action} missing from the audit log");
    }
    assert!(!audit.contains(&prod_key) && !audit.contains(&service_key), "secrets never reach the audit log");
}
on_each_store!(a_service_goes_to_dev_by_its_scientist_and_to_prod_by_devops_with_its_own_keys);

async fn a_jwt_deployment_takes_only_tokens_of_its_realm_audience_and_claim(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let upstream = echo_upstream().await;
    let infrastructure = id(&server.post("/api/v1/infrastructures", &admin, json!({"name": "prod"})).await);
    let jwt =
        json!({"type": "jwt", "realm": "default", "audience": "fraud", "requiredClaims": {"organization": "acme"}});
    let service = server.post("/api/v1/api-services", &admin, json!({"name": "fraud", "auth": jwt})).await;
    assert_eq!(service.status, 201, "{}", service.text);
    let service = id(&service);
    let version = id(&server
        .post(&format!("/api/v1/api-services/{service}/versions"), &admin, json!({"upstream": upstream}))
        .await);
    let deployment = create_deployment(&server, &admin, &service, &infrastructure, &version).await;
    assert_eq!(deployment.json()["effectiveAuth"]["type"], "jwt");

    // Bad settings are refused with what to fix.
    for (auth, field) in [
        (json!({"type": "jwt", "realm": "nowhere", "audience": "x"}), "auth.realm"),
        (json!({"type": "jwt", "realm": "default", "audience": ""}), "auth.audience"),
        (json!({"type": "jwt", "realm": "default", "audience": "x", "algorithms": ["HS256"]}), "auth.algorithms"),
        (json!({"type": "jwt", "issuer": "https://idp", "audience": "x"}), "auth"),
        (json!({"type": "jwt", "issuer": "https://idp", "jwksUrl": "ftp://idp/jwks", "audience": "x"}), "auth.jwksUrl"),
        (
            json!({"type": "jwt", "issuer": "https://idp", "jwksUrl": "https://me:s3cret@idp/jwks", "audience": "x"}),
            "auth.jwksUrl",
        ),
        (
            json!({"type": "jwt", "issuer": "https://idp", "jwksUrl": "https://idp/jwks", "audience": "x",
            "algorithms": ["none"]}),
            "auth.algorithms",
        ),
        (json!({"type": "service"}), "auth.type"),
    ] {
        let answer = server.post("/api/v1/api-services", &admin, json!({"name": "other", "auth": auth})).await;
        assert_eq!(answer.status, 422, "{auth}: {}", answer.text);
        assert_eq!(answer.json()["field"], field, "{}", answer.text);
    }

    // Two service accounts: one of acme, one not.
    let mappers = put(
        &server,
        "/api/v1/realms/default/claim-mappers",
        &admin,
        json!([{"type": "attribute", "claim": "organization", "attribute": "organization"}]),
    )
    .await;
    assert_eq!(mappers.status, 200, "{}", mappers.text);
    let token_for = |organization: &'static str, username: &'static str| {
        let server = &server;
        let admin = admin.clone();
        async move {
            let account = server
                .post(
                    "/v4/serviceAccounts",
                    &admin,
                    json!({"username": username, "email": format!("{username}@example.com")}),
                )
                .await
                .json();
            let account_id = account["id"].as_str().unwrap().to_string();
            let patched = server
                .call(
                    "PATCH",
                    &format!("/api/v1/users/{account_id}"),
                    Via::Bearer(&admin),
                    Some(json!({"attributes": {"organization": organization}})),
                )
                .await;
            assert_eq!(patched.status, 200, "{}", patched.text);
            let idp = account["idpId"].as_str().unwrap();
            let secret = server
                .post(&format!("/v4/serviceAccounts/{idp}/tokens"), &admin, json!({"name": "ci"}))
                .await
                .json()["token"]
                .as_str()
                .unwrap()
                .to_string();
            let mint = |audience: &str| {
                let request = server
                    .http
                    .post(format!("{}/auth/realms/default/protocol/openid-connect/token", server.url))
                    .basic_auth(username, Some(&secret))
                    .form(&[("grant_type", "client_credentials"), ("audience", audience)]);
                async move {
                    let answer: Value = request.send().await.unwrap().json().await.unwrap();
                    answer["access_token"].as_str().unwrap_or_else(|| panic!("{answer}")).to_string()
                }
            };
            (mint("fraud").await, mint("keyward").await, secret.clone())
        }
    };
    let (acme_token, acme_api_token, acme_secret) = token_for("acme", "scorer").await;
    let (other_token, _, _) = token_for("globex", "outsider").await;

    let (status, echoed) = call_gateway(&server, "/public/prod/fraud/score", Some(&acme_token)).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(echoed["headers"]["x-keyward-username"], "scorer");
    assert!(echoed["headers"].get("authorization").is_none(), "{echoed}");
    // Without the claim, for another audience, or not a JWT at all: refused.
    for (token, why) in
        [(&other_token, "another organization"), (&acme_api_token, "another audience"), (&acme_secret, "an opaque key")]
    {
        let (status, body) = call_gateway(&server, "/public/prod/fraud/score", Some(token)).await;
        assert_eq!(status, 401, "{why}: {body}");
    }
    // A tampered token (the claim forged in) fails its signature.
    let mut parts: Vec<String> = other_token.split('.').map(str::to_string).collect();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["organization"] = json!("acme");
    parts[1] = engine.encode(claims.to_string());
    let (status, _) = call_gateway(&server, "/public/prod/fraud/score", Some(&parts.join("."))).await;
    assert_eq!(status, 401);

    // Another realm is another issuer, and another tenant: its tokens are refused, and a
    // deployment may not name it (the answer is the same as for a realm that does not
    // exist, so it tells nothing).
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "globex"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let deployment_path = format!("/api/v1/deployments/{}", deployment.json()["id"].as_str().unwrap());
    let mut refusals = Vec::new();
    for realm in ["globex", "nowhere"] {
        let auth = json!({"auth": {"type": "jwt", "realm": realm, "audience": "fraud"}});
        let refused = server.call("PATCH", &deployment_path, Via::Bearer(&admin), Some(auth)).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        refusals.push(refused.json()["detail"].clone());
    }
    assert_eq!(refusals[0], refusals[1]);
    let (ok, globex_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "globex", "--name", "globex-admin"]);
    assert!(ok, "{stderr}");
    let globex_admin = globex_admin.trim().to_string();
    let account = server
        .post("/v4/serviceAccounts", &globex_admin, json!({"username": "scorer", "email": "scorer@globex.example"}))
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let account_path = format!("/api/v1/users/{}", account.json()["id"].as_str().unwrap());
    let attributes = Some(json!({"attributes": {"organization": "acme"}}));
    let patched = server.call("PATCH", &account_path, Via::Bearer(&globex_admin), attributes).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let idp = account.json()["idpId"].as_str().unwrap().to_string();
    let token = server.post(&format!("/v4/serviceAccounts/{idp}/tokens"), &globex_admin, json!({"name": "ci"})).await;
    let secret = token.json()["token"].as_str().unwrap().to_string();
    let minted: Value = server
        .http
        .post(format!("{}/auth/realms/globex/protocol/openid-connect/token", server.url))
        .basic_auth("scorer", Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("audience", "fraud")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let globex_token = minted["access_token"].as_str().unwrap_or_else(|| panic!("{minted}"));
    let (status, body) = call_gateway(&server, "/public/prod/fraud/score", Some(globex_token)).await;
    assert_eq!(status, 401, "another realm's token, though audience and claim match: {body}");
    assert_eq!(call_gateway(&server, "/public/prod/fraud/score", Some(&acme_token)).await.0, 200);
}
on_each_store!(a_jwt_deployment_takes_only_tokens_of_its_realm_audience_and_claim);

/// A JWKS endpoint for an "outside" issuer: it serves `keys` until told to hang, and then
/// accepts connections and never answers.
async fn jwks_server(keys: Value) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hanging = hang.clone();
    let app = axum::Router::new().fallback(move || {
        let keys = keys.clone();
        let hanging = hanging.clone();
        async move {
            if hanging.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            axum::Json(keys)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hang)
}

/// An outside OIDC issuer (here another keyward's realm, reached only through its JWKS
/// URL): tokens verify with the fetched keys; issuer, audience and claim are checked; a
/// hanging JWKS endpoint neither hangs the gateway nor breaks keys already cached.
async fn a_deployment_trusts_an_outside_issuer_through_its_jwks_url(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let upstream = echo_upstream().await;
    let certs = server.call("GET", "/auth/realms/default/protocol/openid-connect/certs", Via::None, None).await.json();
    let (jwks_url, hang) = jwks_server(certs).await;

    // The outside issuer's token: keyward's, for audience "partner-api".
    let account =
        server.post("/v4/serviceAccounts", &admin, json!({"username": "partner", "email": "p@example.com"})).await;
    let idp = account.json()["idpId"].as_str().unwrap().to_string();
    let secret = server.post(&format!("/v4/serviceAccounts/{idp}/tokens"), &admin, json!({"name": "ci"})).await.json()
        ["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mint = |audience: &'static str| {
        let request = server
            .http
            .post(format!("{}/auth/realms/default/protocol/openid-connect/token", server.url))
            .basic_auth("partner", Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("audience", audience)]);
        async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
        }
    };
    let token = mint("partner-api").await;
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    let issuer = claims["iss"].as_str().unwrap().to_string();

    let infrastructure = id(&server.post("/api/v1/infrastructures", &admin, json!({"name": "edge"})).await);
    let deploy = |name: &'static str, auth: Value| {
        let server = &server;
        let admin = admin.clone();
        let upstream = upstream.clone();
        let infrastructure = infrastructure.clone();
        async move {
            let service = server.post("/api/v1/api-services", &admin, json!({"name": name, "auth": auth})).await;
            assert_eq!(service.status, 201, "{}", service.text);
            let service = id(&service);
            let version = id(&server
                .post(&format!("/api/v1/api-services/{service}/versions"), &admin, json!({"upstream": upstream}))
                .await);
            create_deployment(server, &admin, &service, &infrastructure, &version).await;
        }
    };
    deploy(
        "partners",
        json!({"type": "jwt", "issuer": issuer, "jwksUrl": jwks_url, "audience": "partner-api",
        "requiredClaims": {"preferred_username": "partner"}}),
    )
    .await;
    deploy(
        "strict",
        json!({"type": "jwt", "issuer": issuer, "jwksUrl": jwks_url, "audience": "partner-api",
        "requiredClaims": {"organization": "acme"}}),
    )
    .await;
    deploy(
        "elsewhere",
        json!({"type": "jwt", "issuer": "https://login.example.com/", "jwksUrl": jwks_url,
        "audience": "partner-api"}),
    )
    .await;

    let (status, echoed) = call_gateway(&server, "/public/edge/partners/quote", Some(&token)).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(echoed["headers"]["x-keyward-kind"], "external");
    assert_eq!(echoed["headers"]["x-keyward-username"], "partner");
    assert!(echoed["headers"].get("authorization").is_none(), "{echoed}");
    for (path, token, why) in [
        ("/public/edge/strict/quote", token.clone(), "a required claim it lacks"),
        ("/public/edge/elsewhere/quote", token.clone(), "another issuer"),
        ("/public/edge/partners/quote", mint("other-api").await, "another audience"),
        ("/public/edge/partners/quote", secret.clone(), "not a JWT"),
    ] {
        let (status, body) = call_gateway(&server, path, Some(&token)).await;
        assert_eq!(status, 401, "{why}: {body}");
    }

    // The issuer hangs: cached keys keep working, at once.
    hang.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (status, _) = call_gateway(&server, "/public/edge/partners/quote", Some(&mint("partner-api").await)).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    // A deployment whose issuer hangs before any key was fetched answers 503 within the
    // fetch timeout (3 s) rather than hanging the caller.
    let (silent_url, silent) = jwks_server(json!({"keys": []})).await;
    silent.store(true, std::sync::atomic::Ordering::SeqCst);
    deploy("silent", json!({"type": "jwt", "issuer": issuer, "jwksUrl": silent_url, "audience": "partner-api"})).await;
    let started = std::time::Instant::now();
    let (status, body) = call_gateway(&server, "/public/edge/silent/quote", Some(&token)).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    // An issuer being down is not its callers' failure: they are not throttled for it.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let request = server
            .http
            .post(format!("{}/public/edge/silent/quote", server.url))
            .header("Authorization", format!("Bearer {token}"));
        calls.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap(), 503);
    }
    assert_eq!(call_gateway(&server, "/public/edge/partners/quote", Some(&token)).await.0, 200);
}
on_each_store!(a_deployment_trusts_an_outside_issuer_through_its_jwks_url);

/// Deployments made while an infrastructure's admins narrow its allowed upstreams: each
/// lands before the narrowing (which is then refused, 409) or is refused itself (422),
/// so none forwards outside the list the infrastructure ends with. A deployment moved to
/// a version that is being deleted either moves (and the delete is refused) or is told
/// the version is gone; never a 500.
async fn a_deployment_racing_a_narrowed_list_or_a_deleted_version_never_lands_outside_it(backend: Backend) {
    const ROUNDS: usize = 6;
    const CREATES: usize = 12;
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let upstream = echo_upstream().await;
    let mut versions = Vec::new();
    for n in 0..CREATES {
        let service = id(&server.post("/api/v1/api-services", &admin, json!({"name": format!("model-{n}")})).await);
        let path = format!("/api/v1/api-services/{service}/versions");
        let version = id(&server.post(&path, &admin, json!({"upstream": format!("{upstream}/v1")})).await);
        let spare = id(&server.post(&path, &admin, json!({"upstream": format!("{upstream}/v2")})).await);
        versions.push((service, version, spare));
    }
    let mut stranded_refused = 0;
    for round in 0..ROUNDS {
        let infrastructure =
            id(&server.post("/api/v1/infrastructures", &admin, json!({"name": format!("race-{round}")})).await);
        let path = format!("/api/v1/infrastructures/{infrastructure}");
        let narrow =
            server.call("PATCH", &path, Via::Bearer(&admin), Some(json!({"allowedUpstreams": ["models.internal"]})));
        let creates = versions.iter().map(|(service, version, _)| {
            server.post(
                "/api/v1/deployments",
                &admin,
                json!({"serviceId": service, "infrastructureId": infrastructure, "versionId": version}),
            )
        });
        let (narrowed, created) = tokio::join!(narrow, futures_util::future::join_all(creates));
        for answer in &created {
            assert!(matches!(answer.status, 201 | 422), "{}: {}", answer.status, answer.text);
        }
        let landed = created.iter().filter(|answer| answer.status == 201).count();
        let now = server.get(&path, &admin).await.json()["allowedUpstreams"].clone();
        let on_it = server.get(&format!("/api/v1/deployments?infrastructureId={infrastructure}"), &admin).await;
        let on_it = on_it.json().as_array().unwrap().len();
        assert_eq!(on_it, landed, "every 201 is a deployment, and nothing else is");
        match narrowed.status {
            200 => assert_eq!(
                (now, on_it),
                (json!(["models.internal"]), 0),
                "narrowed, so nothing may forward to 127.0.0.1 there ({landed} created)"
            ),
            409 => {
                assert!(on_it > 0, "refused only because a deployment was there: {}", narrowed.text);
                stranded_refused += 1;
            }
            other => panic!("{other}: {}", narrowed.text),
        }
    }
    eprintln!("{stranded_refused} of {ROUNDS} narrowings found deployments first");

    // Moving a deployment to a version while that version is deleted.
    let infrastructure = id(&server.post("/api/v1/infrastructures", &admin, json!({"name": "moves"})).await);
    for (service, version, spare) in &versions {
        let created = create_deployment(&server, &admin, service, &infrastructure, version).await;
        let deployment = id(&created);
        let path = format!("/api/v1/deployments/{deployment}");
        let moving = server.call("PATCH", &path, Via::Bearer(&admin), Some(json!({"versionId": spare})));
        let version_path = format!("/api/v1/api-services/{service}/versions/{spare}");
        let deleting = server.call("DELETE", &version_path, Via::Bearer(&admin), None);
        let (moved, deleted) = tokio::join!(moving, deleting);
        let now = server.get(&path, &admin).await.json()["versionId"].clone();
        match (moved.status, deleted.status) {
            (200, 409) => assert_eq!(now, json!(spare)),
            (404, 204) => {
                assert_eq!(now, json!(version), "{}", moved.text);
                assert!(moved.text.contains("version"), "{}", moved.text);
            }
            other => panic!("{other:?}: {} / {}", moved.text, deleted.text),
        }
    }
}

on_each_store!(a_deployment_racing_a_narrowed_list_or_a_deleted_version_never_lands_outside_it);

/// A group's admins who keep re-granting their group Admin on an infrastructure while a
/// realm admin takes it away: once the revocation is answered, no grant already on its
/// way puts it back (each grant is checked again inside its change).
async fn a_revoked_infrastructure_admin_cannot_grant_it_back_from_requests_in_flight(backend: Backend) {
    const ROUNDS: usize = 6;
    const GRANTS: usize = 12;
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let omar = create_user(&server, &admin, "omar").await;
    let (_, omar_key) = create_key(&server, &admin, &omar, json!({"name": "laptop"})).await;
    let devops = group(&server, &admin, "devops", &[&omar], None).await;
    for round in 0..ROUNDS {
        let infrastructure =
            id(&server.post("/api/v1/infrastructures", &admin, json!({"name": format!("prod-{round}")})).await);
        let path = format!("/api/v1/infrastructures/{infrastructure}/permissions/{devops}");
        assert_eq!(put(&server, &path, &admin, json!({"privilege": "admin"})).await.status, 200);
        let grants = (0..GRANTS).map(|_| put(&server, &path, &omar_key, json!({"privilege": "admin"})));
        let revoke = server.call("DELETE", &path, Via::Bearer(&admin), None);
        let (revoked, granted) = tokio::join!(revoke, futures_util::future::join_all(grants));
        assert_eq!(revoked.status, 204, "{}", revoked.text);
        for answer in &granted {
            // 404 once omar sees the infrastructure no more; 403 when the check inside the change refuses.
            assert!(matches!(answer.status, 200 | 403 | 404), "{}: {}", answer.status, answer.text);
        }
        let now = server.get(&format!("/api/v1/infrastructures/{infrastructure}/permissions"), &admin).await;
        assert_eq!(now.json(), json!([]), "round {round}: the revocation stands");
    }
}

on_each_store!(a_revoked_infrastructure_admin_cannot_grant_it_back_from_requests_in_flight);

/// A deployer whose Deploy privilege on an infrastructure is taken away while its requests
/// are in flight: once the revocation has committed, none of them mints a deployment key
/// or switches the deployment (each reads the caller's grants again inside its change).
async fn a_revoked_deployer_mints_no_key_and_changes_no_deployment_from_requests_in_flight(backend: Backend) {
    const ROUNDS: usize = 5;
    const REQUESTS: usize = 12;
    let env = Env::new(backend);
    let server = env.serve(&["--auth-failures-per-minute", "10000"]);
    let admin = server.bootstrap_key();
    let upstream = echo_upstream().await;
    let omar = create_user(&server, &admin, "omar").await;
    let (_, omar_key) = create_key(&server, &admin, &omar, json!({"name": "laptop"})).await;
    let devops = group(&server, &admin, "devops", &[&omar], None).await;
    let service = id(&server.post("/api/v1/api-services", &admin, json!({"name": "churn"})).await);
    let grant = format!("/api/v1/api-services/{service}/permissions/{devops}");
    assert_eq!(put(&server, &grant, &admin, json!({"privilege": "deploy"})).await.status, 200);
    let version = id(&server
        .post(&format!("/api/v1/api-services/{service}/versions"), &admin, json!({"upstream": upstream}))
        .await);
    for round in 0..ROUNDS {
        let infrastructure =
            id(&server.post("/api/v1/infrastructures", &admin, json!({"name": format!("prod-{round}")})).await);
        let deployment = create_deployment(&server, &admin, &service, &infrastructure, &version).await;
        let deployment = id(&deployment);
        let path = format!("/api/v1/infrastructures/{infrastructure}/permissions/{devops}");
        assert_eq!(put(&server, &path, &admin, json!({"privilege": "deploy"})).await.status, 200);
        let requests = (0..REQUESTS).map(|request| {
            let (server, omar_key, deployment) = (&server, &omar_key, &deployment);
            async move {
                let action = match request % 3 {
                    0 => "keys",
                    1 => "disable",
                    _ => "enable",
                };
                let body = if action == "keys" { json!({"name": format!("k{round}-{request}")}) } else { json!({}) };
                let answer = server.post(&format!("/api/v1/deployments/{deployment}/{action}"), omar_key, body).await;
                // 404 once omar sees the infrastructure no more; 403 when the check inside the change refuses.
                assert!(matches!(answer.status, 200 | 201 | 403 | 404), "{}: {}", answer.status, answer.text);
            }
        });
        let revoke = server.call("DELETE", &path, Via::Bearer(&admin), None);
        let (revoked, _) = tokio::join!(revoke, futures_util::future::join_all(requests));
        assert_eq!(revoked.status, 204, "{}", revoked.text);
        let audit = server.get("/api/v1/audit?format=jsonl&limit=1000", &admin).await.text;
        let events: Vec<Value> = audit.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        let revoked_at = events
            .iter()
            .find(|event| {
                event["action"] == "infrastructure.revoke"
                    && event["target"] == format!("infrastructure:{infrastructure}")
            })
            .map(|event| event["seq"].as_i64().unwrap())
            .expect("the revocation is audited");
        let target = format!("deployment:{deployment}");
        let late: Vec<&Value> = events
            .iter()
            .filter(|event| event["target"] == target.as_str() && event["seq"].as_i64().unwrap() > revoked_at)
            .collect();
        assert!(late.is_empty(), "round {round}: committed after the revocation: {late:?}");
    }
}
on_each_store!(a_revoked_deployer_mints_no_key_and_changes_no_deployment_from_requests_in_flight);
