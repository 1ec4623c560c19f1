//! Management > API tokens.

use super::*;

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
