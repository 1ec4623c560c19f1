use crate::harness::{Backend, Env, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::json;
use std::collections::BTreeSet;

async fn disabling_a_user_refuses_their_keys_on_the_next_request(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "dee").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.get("/v4/users/self", &key).await.status, 200);
    let answer = server.post(&format!("/api/v1/users/{user}/disable"), &admin, json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["enabled"], false);
    assert_eq!(server.get("/v4/users/self", &key).await.status, 401);
    let answer = server
        .call("PATCH", &format!("/api/v1/users/{user}"), Via::Bearer(&admin), Some(json!({"enabled": true})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(server.get("/v4/users/self", &key).await.status, 200);
    let answer = server.call("DELETE", &format!("/api/v1/users/{user}"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 204);
    assert_eq!(server.get("/v4/users/self", &key).await.status, 401);
    assert_eq!(server.get(&format!("/api/v1/users/{user}"), &admin).await.status, 404);
}
on_each_store!(disabling_a_user_refuses_their_keys_on_the_next_request);

async fn roles_come_from_direct_grants_and_groups_and_apply_at_once(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "gus").await;
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.get("/api/v1/users", &key).await.status, 403);

    let answer = server.call("PUT", &format!("/api/v1/users/{user}/roles/admin"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(server.get("/api/v1/users", &key).await.status, 200);
    let answer = server.call("DELETE", &format!("/api/v1/users/{user}/roles/admin"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.json()["roles"], json!([]));
    assert_eq!(server.get("/api/v1/users", &key).await.status, 403);

    let group = server.post("/api/v1/groups", &admin, json!({"name": "platform-admins"})).await;
    assert_eq!(group.status, 201, "{}", group.text);
    let group = group.json()["id"].as_str().unwrap().to_string();
    server.call("PUT", &format!("/api/v1/groups/{group}/roles/admin"), Via::Bearer(&admin), None).await;
    let answer = server.call("PUT", &format!("/api/v1/groups/{group}/members/{user}"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.json()["members"][0]["username"], "gus");
    assert_eq!(server.get("/api/v1/users", &key).await.status, 200, "admin through the group");
    let me = server.get("/api/v1/users/me", &key).await.json();
    assert_eq!(me["effectiveRoles"], json!(["admin"]));
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["groups"][0]["name"], "platform-admins");
    // A non-admin cannot grant itself anything.
    server.call("DELETE", &format!("/api/v1/groups/{group}/members/{user}"), Via::Bearer(&admin), None).await;
    let answer = server.call("PUT", &format!("/api/v1/users/{user}/roles/admin"), Via::Bearer(&key), None).await;
    assert_eq!(answer.status, 403);
    let answer = server.call("PUT", &format!("/api/v1/users/{user}/roles/root"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
}
on_each_store!(roles_come_from_direct_grants_and_groups_and_apply_at_once);

/// Nobody takes the admin role from themselves, directly or through the group it comes
/// from; another admin may.
async fn an_admin_cannot_drop_their_own_admin_role_through_a_group(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let ada = create_user(&server, &admin, "ada").await;
    let group = server.post("/api/v1/groups", &admin, json!({"name": "admins"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [format!("/api/v1/groups/{group}/roles/admin"), format!("/api/v1/groups/{group}/members/{ada}")] {
        assert!(server.call("PUT", &path, Via::Bearer(&admin), None).await.status < 300, "{path}");
    }
    let (_, key) = create_key(&server, &admin, &ada, json!({"name": "k"})).await;
    for (method, path) in [
        ("DELETE", format!("/api/v1/groups/{group}/members/{ada}")),
        ("DELETE", format!("/api/v1/groups/{group}/roles/admin")),
        ("DELETE", format!("/api/v1/groups/{group}")),
    ] {
        let refused = server.call(method, &path, Via::Bearer(&key), None).await;
        assert_eq!(refused.status, 409, "{path}: {}", refused.text);
        assert!(refused.text.contains("take the admin role from you"), "{}", refused.text);
    }
    assert_eq!(server.get("/api/v1/users", &key).await.status, 200, "ada is still an admin");
    // With the role of her own as well, the group may go; and another admin may always act.
    let own = server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(own.status < 300, "{}", own.text);
    let removed =
        server.call("DELETE", &format!("/api/v1/groups/{group}/members/{ada}"), Via::Bearer(&key), None).await;
    assert!(removed.status < 300, "{}", removed.text);
    let deleted = server.call("DELETE", &format!("/api/v1/groups/{group}"), Via::Bearer(&admin), None).await;
    assert!(deleted.status < 300, "{}", deleted.text);
}
on_each_store!(an_admin_cannot_drop_their_own_admin_role_through_a_group);

async fn user_lists_page_with_cursors_without_gaps_or_repeats(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let mut created = BTreeSet::new();
    for index in 0..5 {
        created.insert(create_user(&server, &admin, &format!("user{index}")).await);
    }
    let mut seen = BTreeSet::new();
    let mut path = "/api/v1/users?limit=2".to_string();
    for _ in 0..5 {
        let page = server.get(&path, &admin).await.json();
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["id"].as_str().unwrap().to_string()), "no repeats");
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_eq!(server.get("/api/v1/users?limit=0", &admin).await.status, 422);
    assert_eq!(server.get("/api/v1/users?cursor=nope", &admin).await.status, 422);
}
on_each_store!(user_lists_page_with_cursors_without_gaps_or_repeats);

async fn ids_from_another_realm_answer_404(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "rae").await;
    let (key_id, _) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    let (ok, other_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "other", "--name", "other-admin"]);
    assert!(ok, "{stderr}");
    let other_admin = other_admin.trim().to_string();
    server.wait_for_status("/api/v1/users", &other_admin, 200, std::time::Duration::from_secs(1)).await;
    assert_eq!(server.get("/api/v1/users", &other_admin).await.json()["items"], json!([]));
    for (method, path) in [
        ("GET", format!("/api/v1/users/{user}")),
        ("PATCH", format!("/api/v1/users/{user}")),
        ("DELETE", format!("/api/v1/users/{user}")),
        ("POST", format!("/api/v1/users/{user}/disable")),
        ("GET", format!("/api/v1/users/{user}/api-keys")),
        ("DELETE", format!("/api/v1/users/{user}/api-keys/{key_id}")),
        ("PUT", format!("/api/v1/users/{user}/roles/admin")),
    ] {
        let body = (method == "PATCH").then(|| json!({"firstName": "x"}));
        let answer = server.call(method, &path, Via::Bearer(&other_admin), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
    }
    // A username is unique per realm, not across realms.
    let answer =
        server.post("/api/v1/users", &other_admin, json!({"username": "rae", "email": "rae@example.com"})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}
on_each_store!(ids_from_another_realm_answer_404);

async fn attributes_are_set_replaced_cleared_and_checked(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let patch = |user: &str, body: serde_json::Value| {
        let path = format!("/api/v1/users/{user}");
        let admin = admin.clone();
        let server = &server;
        async move { server.call("PATCH", &path, Via::Bearer(&admin), Some(body)).await }
    };

    // Without attributes a user shows an empty object; with them, the object given.
    let plain = create_user(&server, &admin, "ivy").await;
    assert_eq!(server.get(&format!("/api/v1/users/{plain}"), &admin).await.json()["attributes"], json!({}));
    let answer = server
        .post(
            "/api/v1/users",
            &admin,
            json!({"username": "ora", "email": "ora@example.com", "attributes": {"organization": "acme", "team": "data"}}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.json()["attributes"], json!({"organization": "acme", "team": "data"}));
    let user = answer.json()["id"].as_str().unwrap().to_string();

    // A PATCH without attributes keeps them; with them, the object sent replaces the set.
    let answer = patch(&user, json!({"firstName": "Ora"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["attributes"], json!({"organization": "acme", "team": "data"}));
    let answer = patch(&user, json!({"attributes": {"organization": "Acme R&D", "cost-center": "42"}})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let replaced = json!({"organization": "Acme R&D", "cost-center": "42"});
    assert_eq!(answer.json()["attributes"], replaced);
    assert_eq!(server.get(&format!("/api/v1/users/{user}"), &admin).await.json()["attributes"], replaced);
    let listed = server.get("/api/v1/users", &admin).await.json();
    let listed = listed["items"].as_array().unwrap().iter().find(|item| item["id"] == user.as_str()).unwrap().clone();
    assert_eq!(listed["attributes"], replaced);
    let (_, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    assert_eq!(server.get("/api/v1/users/me", &key).await.json()["attributes"], replaced);

    // The audit log names the attributes that changed, never their values.
    let events = server.get("/api/v1/audit?format=jsonl&action=user.update", &admin).await;
    assert_eq!(events.status, 200, "{}", events.text);
    let details: Vec<String> = events
        .text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(details, ["ora", "ora; attributes: cost-center, organization, team"], "{}", events.text);
    let created = server.get("/api/v1/audit?format=jsonl&action=user.create", &admin).await.text;
    assert!(created.contains("\"detail\":\"ora; attributes: organization, team\""), "{created}");
    for value in ["acme", "Acme R&D", "data"] {
        assert!(!events.text.contains(value) && !created.contains(value), "{value} in the audit log");
    }

    // `{}` clears them.
    let answer = patch(&user, json!({"attributes": {}})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["attributes"], json!({}));
    assert_eq!(server.get(&format!("/api/v1/users/{user}"), &admin).await.json()["attributes"], json!({}));

    // Refusals name the attribute, and change nothing.
    patch(&user, json!({"attributes": {"organization": "acme"}})).await;
    let fifty_one: serde_json::Map<String, serde_json::Value> =
        (0..51).map(|index| (format!("a{index}"), json!("v"))).collect();
    let long_name = "a".repeat(65);
    let long_name_field = format!("attributes.{long_name}");
    let long_named = serde_json::Value::Object([(long_name, json!("x"))].into_iter().collect());
    for (attributes, field, mentions) in [
        (json!({"sub": "someone-else"}), "attributes.sub", "reserved"),
        (json!({"Client_ID": "x"}), "attributes.Client_ID", "reserved"),
        (json!({"SCOPE": "admin"}), "attributes.SCOPE", "reserved"),
        (json!({"9lives": "x"}), "attributes.9lives", "\"9lives\""),
        (json!({"org unit": "x"}), "attributes.org unit", "\"org unit\""),
        (long_named, long_name_field.as_str(), "64"),
        (json!({"note": "line\nbreak"}), "attributes.note", "control"),
        (json!({"note": "v".repeat(1025)}), "attributes.note", "1024"),
        (json!({"count": 5}), "attributes.count", "string"),
        (json!(fifty_one), "attributes", "at most 50"),
    ] {
        let answer = patch(&user, json!({"attributes": attributes.clone()})).await;
        assert_eq!(answer.status, 422, "{attributes}: {}", answer.text);
        assert_eq!(answer.json()["field"], field, "{}", answer.text);
        assert!(answer.json()["detail"].as_str().unwrap().contains(mentions), "{mentions}: {}", answer.text);
        let answer = server
            .post(
                "/api/v1/users",
                &admin,
                json!({"username": "new", "email": "new@example.com", "attributes": attributes}),
            )
            .await;
        assert_eq!(answer.status, 422, "{}", answer.text);
        assert_eq!(answer.json()["field"], field, "{}", answer.text);
    }
    assert_eq!(
        server.get(&format!("/api/v1/users/{user}"), &admin).await.json()["attributes"],
        json!({"organization": "acme"})
    );
    let usernames: Vec<serde_json::Value> = server.get("/api/v1/users", &admin).await.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["username"].clone())
        .collect();
    assert_eq!(usernames, [json!("ivy"), json!("ora")], "no user was created");

    // Another realm's user is not found, attributes or not.
    let (ok, other_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "other", "--name", "other-admin"]);
    assert!(ok, "{stderr}");
    let other_admin = other_admin.trim().to_string();
    server.wait_for_status("/api/v1/users", &other_admin, 200, std::time::Duration::from_secs(1)).await;
    let answer = server
        .call("PATCH", &format!("/api/v1/users/{user}"), Via::Bearer(&other_admin), Some(json!({"attributes": {}})))
        .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(
        server.get(&format!("/api/v1/users/{user}"), &admin).await.json()["attributes"],
        json!({"organization": "acme"})
    );
}
on_each_store!(attributes_are_set_replaced_cleared_and_checked);
