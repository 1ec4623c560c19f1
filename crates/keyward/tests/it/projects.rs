use crate::harness::{Answer, Backend, Env, Server, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A user of the default realm and a general-purpose key of theirs.
struct Person {
    id: String,
    key: String,
}

async fn person(server: &Server, admin: &str, username: &str) -> Person {
    let id = create_user(server, admin, username).await;
    let (_, key) = create_key(server, admin, &id, json!({"name": "k"})).await;
    Person { id, key }
}

/// Creates a project as `key` and returns its id.
async fn create_project(server: &Server, key: &str, body: Value) -> String {
    let answer = server.post("/api/v1/projects", key, body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["id"].as_str().expect("id").to_string()
}

async fn set_role(server: &Server, key: &str, project: &str, user: &str, role: &str) -> Answer {
    let path = format!("/api/v1/projects/{project}/collaborators/{user}");
    server.call("PUT", &path, Via::Bearer(key), Some(json!({"role": role}))).await
}

async fn remove(server: &Server, key: &str, project: &str, user: &str) -> Answer {
    let path = format!("/api/v1/projects/{project}/collaborators/{user}");
    server.call("DELETE", &path, Via::Bearer(key), None).await
}

async fn check(server: &Server, key: &str, project: &str, action: &str) -> Answer {
    server.post("/api/v1/authz/check", key, json!({"projectId": project, "action": action})).await
}

/// `(allowed, role)` of a check that must answer 200.
async fn decision(server: &Server, key: &str, project: &str, action: &str) -> (bool, Value) {
    let answer = check(server, key, project, action).await;
    assert_eq!(answer.status, 200, "{action}: {}", answer.text);
    let json = answer.json();
    assert_eq!(json["projectId"], project, "{}", answer.text);
    (json["allowed"].as_bool().expect("allowed"), json["role"].clone())
}

fn names(page: &Value) -> Vec<String> {
    page["items"].as_array().expect("items").iter().map(|item| item["name"].as_str().unwrap().to_string()).collect()
}

async fn projects_are_created_listed_read_and_deleted_by_their_owner(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;

    let answer = server.post("/api/v1/projects", &alice.key, json!({"name": "churn model", "description": "Q3"})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let created = answer.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.len() == 24 && id.bytes().all(|byte| byte.is_ascii_hexdigit()), "{id}");
    assert_eq!(
        (&created["name"], &created["description"], &created["myRole"]),
        (&json!("churn model"), &json!("Q3"), &json!("owner"))
    );
    let created_at = created["createdAt"].as_str().unwrap();
    time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339).expect("RFC 3339");

    let got = server.get(&format!("/api/v1/projects/{id}"), &alice.key).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json(), created);
    let collaborators = server.get(&format!("/api/v1/projects/{id}/collaborators"), &alice.key).await;
    assert_eq!(collaborators.status, 200, "{}", collaborators.text);
    let collaborators = collaborators.json();
    assert_eq!(collaborators.as_array().unwrap().len(), 1, "{collaborators}");
    assert_eq!(collaborators[0]["userId"], alice.id.as_str());
    assert_eq!(collaborators[0]["username"], "alice");
    assert_eq!(collaborators[0]["kind"], "user");
    assert_eq!(collaborators[0]["role"], "owner");

    // Cursor pagination over the caller's projects, without gaps or repeats.
    let mut created_ids = BTreeSet::from([id.clone()]);
    for name in ["b", "c", "d", "e"] {
        created_ids.insert(create_project(&server, &alice.key, json!({"name": name})).await);
    }
    let mut seen = BTreeSet::new();
    let mut path = "/api/v1/projects?limit=2".to_string();
    for _ in 0..5 {
        let page = server.get(&path, &alice.key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["myRole"], "owner");
            assert!(seen.insert(item["id"].as_str().unwrap().to_string()), "no repeats: {page}");
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/projects?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created_ids);

    let deleted = server.call("DELETE", &format!("/api/v1/projects/{id}"), Via::Bearer(&alice.key), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(server.get(&format!("/api/v1/projects/{id}"), &alice.key).await.status, 404);
    assert_eq!(server.get(&format!("/api/v1/projects/{id}/collaborators"), &alice.key).await.status, 404);
    let listed = server.get("/api/v1/projects", &alice.key).await.json();
    assert_eq!(names(&listed), ["b", "c", "d", "e"]);
    // The name is free again.
    create_project(&server, &alice.key, json!({"name": "churn model"})).await;

    let openapi = server.call("GET", "/api/v1/openapi.json", Via::None, None).await.json();
    for path in [
        "/api/v1/projects",
        "/api/v1/projects/{id}",
        "/api/v1/projects/{id}/collaborators",
        "/api/v1/projects/{id}/collaborators/{userId}",
        "/api/v1/authz/check",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} documented");
    }
}
on_each_store!(projects_are_created_listed_read_and_deleted_by_their_owner);

/// Object-level checks: every route that takes a project id answers a non-collaborator
/// exactly as it answers an id that names nothing, and changes nothing.
async fn a_project_is_404_for_everyone_who_does_not_collaborate_on_it(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;
    let bob = person(&server, &admin, "bob").await;
    let alpha = create_project(&server, &alice.key, json!({"name": "alpha"})).await;
    let beta = create_project(&server, &bob.key, json!({"name": "beta"})).await;

    let unknown = server.get("/api/v1/projects/0123456789abcdef01234567", &bob.key).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.headers.get("content-type").unwrap(), "application/problem+json");
    let not_found = unknown.json();
    assert_eq!(server.get("/api/v1/projects/not-an-id", &bob.key).await.json(), not_found, "malformed id");

    let project = format!("/api/v1/projects/{alpha}");
    for (method, path, body) in [
        ("GET", project.clone(), None),
        ("DELETE", project.clone(), None),
        ("GET", format!("{project}/collaborators"), None),
        ("PUT", format!("{project}/collaborators/{}", bob.id), Some(json!({"role": "owner"}))),
        ("PUT", format!("{project}/collaborators/{}", alice.id), Some(json!({"role": "viewer"}))),
        ("DELETE", format!("{project}/collaborators/{}", alice.id), None),
        ("POST", "/api/v1/authz/check".to_string(), Some(json!({"projectId": alpha, "action": "read"}))),
    ] {
        let answer = server.call(method, &path, Via::Bearer(&bob.key), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
        assert_eq!(answer.json(), not_found, "{method} {path}: the same body as for an unknown id");
    }
    assert_eq!(names(&server.get("/api/v1/projects", &bob.key).await.json()), ["beta"]);
    assert_eq!(names(&server.get("/api/v1/projects", &alice.key).await.json()), ["alpha"]);
    // Nothing bob tried changed alpha.
    let collaborators = server.get(&format!("{project}/collaborators"), &alice.key).await.json();
    assert_eq!(collaborators.as_array().unwrap().len(), 1, "{collaborators}");
    assert_eq!((&collaborators[0]["userId"], &collaborators[0]["role"]), (&json!(alice.id), &json!("owner")));
    assert_eq!(server.get(&project, &alice.key).await.status, 200);
    assert_eq!(check(&server, &alice.key, &beta, "read").await.status, 404);

    // Another realm's administrator cannot see this realm's projects at all.
    let (ok, other_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "other", "--name", "other-admin"]);
    assert!(ok, "{stderr}");
    let other_admin = other_admin.trim().to_string();
    server.wait_for_status("/api/v1/projects", &other_admin, 200, std::time::Duration::from_secs(1)).await;
    assert_eq!(server.get("/api/v1/projects", &other_admin).await.json()["items"], json!([]));
    for path in [project.clone(), format!("{project}/collaborators")] {
        let answer = server.get(&path, &other_admin).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
    }
    assert_eq!(check(&server, &other_admin, &alpha, "read").await.status, 404);
    let answer = server.call("DELETE", &project, Via::Bearer(&other_admin), None).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    // Nor name this realm's users as owners or collaborators.
    let answer = server.post("/api/v1/projects", &other_admin, json!({"name": "x", "ownerId": alice.id})).await;
    assert_eq!((answer.status, answer.json()["field"].clone()), (422, json!("ownerId")), "{}", answer.text);
    let theirs = create_project(
        &server,
        &other_admin,
        json!({"name": "alpha", "ownerId": other_user(&server, &other_admin).await}),
    )
    .await;
    let answer = set_role(&server, &other_admin, &theirs, &alice.id, "viewer").await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert!(answer.text.contains("user"), "{}", answer.text);
    assert_eq!(server.get(&project, &alice.key).await.status, 200, "alpha still there");
}
on_each_store!(a_project_is_404_for_everyone_who_does_not_collaborate_on_it);

async fn other_user(server: &Server, other_admin: &str) -> String {
    let answer =
        server.post("/api/v1/users", other_admin, json!({"username": "olga", "email": "olga@example.com"})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["id"].as_str().unwrap().to_string()
}

async fn realm_admins_see_and_manage_every_project_without_collaborating(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;
    let bob = person(&server, &admin, "bob").await;
    let dan = person(&server, &admin, "dan").await;
    let answer = server.call("PUT", &format!("/api/v1/users/{}/roles/admin", dan.id), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let alpha = create_project(&server, &alice.key, json!({"name": "alpha"})).await;
    let beta = create_project(&server, &bob.key, json!({"name": "beta"})).await;

    for key in [&admin, &dan.key] {
        let page = server.get("/api/v1/projects", key).await.json();
        assert_eq!(names(&page), ["alpha", "beta"]);
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["myRole"], Value::Null, "an admin who does not collaborate has no role: {item}");
        }
        assert_eq!(server.get(&format!("/api/v1/projects/{alpha}"), key).await.status, 200);
        assert_eq!(server.get(&format!("/api/v1/projects/{alpha}/collaborators"), key).await.status, 200);
        for action in ["read", "write", "admin"] {
            assert_eq!(decision(&server, key, &alpha, action).await, (true, Value::Null), "{action}");
        }
    }

    // An admin key belongs to no user, so it must name the owner.
    let answer = server.post("/api/v1/projects", &admin, json!({"name": "gamma"})).await;
    assert_eq!((answer.status, answer.json()["field"].clone()), (422, json!("ownerId")), "{}", answer.text);
    for owner in ["nope", "0123456789abcdef01234567"] {
        let answer = server.post("/api/v1/projects", &admin, json!({"name": "gamma", "ownerId": owner})).await;
        assert_eq!((answer.status, answer.json()["field"].clone()), (422, json!("ownerId")), "{}", answer.text);
    }
    let answer = server.post("/api/v1/projects", &admin, json!({"name": "gamma", "ownerId": alice.id})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.json()["myRole"], Value::Null);
    let gamma = answer.json()["id"].as_str().unwrap().to_string();
    assert_eq!(decision(&server, &alice.key, &gamma, "admin").await, (true, json!("owner")));
    // An admin user may name someone else too; a non-admin may not.
    let answer = server.post("/api/v1/projects", &dan.key, json!({"name": "delta", "ownerId": bob.id})).await;
    assert_eq!((answer.status, answer.json()["myRole"].clone()), (201, Value::Null), "{}", answer.text);
    let answer = server.post("/api/v1/projects", &alice.key, json!({"name": "epsilon", "ownerId": bob.id})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(answer.json()["detail"].as_str().unwrap().contains("ownerId"), "{}", answer.text);
    assert_eq!(names(&server.get("/api/v1/projects", &bob.key).await.json()), ["beta", "delta"]);

    // Admins manage collaborators and delete projects they do not collaborate on.
    let answer = set_role(&server, &dan.key, &beta, &alice.id, "viewer").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(decision(&server, &alice.key, &beta, "read").await, (true, json!("viewer")));
    let answer = server.call("DELETE", &format!("/api/v1/projects/{beta}"), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(server.get(&format!("/api/v1/projects/{beta}"), &bob.key).await.status, 404);

    // Taking the admin role away takes the view with it, at once.
    server.call("DELETE", &format!("/api/v1/users/{}/roles/admin", dan.id), Via::Bearer(&admin), None).await;
    assert_eq!(server.get("/api/v1/projects", &dan.key).await.json()["items"], json!([]));
    assert_eq!(server.get(&format!("/api/v1/projects/{alpha}"), &dan.key).await.status, 404);
}
on_each_store!(realm_admins_see_and_manage_every_project_without_collaborating);

async fn collaborator_roles_decide_what_each_may_do(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;
    let bob = person(&server, &admin, "bob").await;
    let carol = person(&server, &admin, "carol").await;
    let erin = person(&server, &admin, "erin").await;
    let alpha = create_project(&server, &alice.key, json!({"name": "alpha"})).await;

    let answer = set_role(&server, &alice.key, &alpha, &bob.id, "viewer").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let added = answer.json();
    assert_eq!(
        (&added["userId"], &added["username"], &added["role"]),
        (&json!(bob.id), &json!("bob"), &json!("viewer"))
    );
    assert_eq!(set_role(&server, &alice.key, &alpha, &carol.id, "contributor").await.status, 200);

    let expected = [
        (&alice, "owner", [true, true, true]),
        (&carol, "contributor", [true, true, false]),
        (&bob, "viewer", [true, false, false]),
    ];
    for (who, role, allowed) in expected {
        for (action, allowed) in ["read", "write", "admin"].into_iter().zip(allowed) {
            assert_eq!(decision(&server, &who.key, &alpha, action).await, (allowed, json!(role)), "{role} {action}");
        }
        let got = server.get(&format!("/api/v1/projects/{alpha}"), &who.key).await;
        assert_eq!((got.status, got.json()["myRole"].clone()), (200, json!(role)), "{}", got.text);
        let listed = server.get(&format!("/api/v1/projects/{alpha}/collaborators"), &who.key).await.json();
        let roles: Vec<&str> = listed.as_array().unwrap().iter().map(|item| item["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["owner", "contributor", "viewer"], "owners first");
    }

    // Viewers and contributors cannot delete the project or change who works on it.
    for who in [&bob, &carol] {
        let answer = server.call("DELETE", &format!("/api/v1/projects/{alpha}"), Via::Bearer(&who.key), None).await;
        assert_eq!(answer.status, 403, "{}", answer.text);
        assert!(answer.json()["detail"].as_str().unwrap().contains("owner role"), "{}", answer.text);
        assert_eq!(set_role(&server, &who.key, &alpha, &erin.id, "viewer").await.status, 403);
        assert_eq!(set_role(&server, &who.key, &alpha, &who.id, "owner").await.status, 403, "no self-promotion");
        assert_eq!(remove(&server, &who.key, &alpha, &alice.id).await.status, 403);
    }
    assert_eq!(server.get(&format!("/api/v1/projects/{alpha}"), &erin.key).await.status, 404);

    // A role change applies on the next request.
    let answer = set_role(&server, &alice.key, &alpha, &bob.id, "contributor").await;
    assert_eq!(answer.json()["role"], "contributor", "{}", answer.text);
    assert_eq!(decision(&server, &bob.key, &alpha, "write").await, (true, json!("contributor")));
    let answer = remove(&server, &alice.key, &alpha, &carol.id).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(check(&server, &carol.key, &alpha, "read").await.status, 404);
    assert_eq!(server.get("/api/v1/projects", &carol.key).await.json()["items"], json!([]));

    // Unknown users and users who do not collaborate answer 404.
    let answer = set_role(&server, &alice.key, &alpha, "0123456789abcdef01234567", "viewer").await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert!(answer.json()["detail"].as_str().unwrap().contains("user"), "{}", answer.text);
    assert_eq!(remove(&server, &alice.key, &alpha, "nope").await.status, 404);
    assert_eq!(remove(&server, &alice.key, &alpha, &erin.id).await.status, 404);
    let listed = server.get(&format!("/api/v1/projects/{alpha}/collaborators"), &alice.key).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}
on_each_store!(collaborator_roles_decide_what_each_may_do);

async fn a_project_always_keeps_an_owner(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;
    let bob = person(&server, &admin, "bob").await;
    let carol = person(&server, &admin, "carol").await;
    let alpha = create_project(&server, &alice.key, json!({"name": "alpha"})).await;

    for key in [&alice.key, &admin] {
        for role in ["contributor", "viewer"] {
            let answer = set_role(&server, key, &alpha, &alice.id, role).await;
            assert_eq!(answer.status, 409, "{}", answer.text);
            assert!(answer.json()["detail"].as_str().unwrap().contains("last owner"), "{}", answer.text);
        }
        assert_eq!(remove(&server, key, &alpha, &alice.id).await.status, 409);
    }
    assert_eq!(set_role(&server, &alice.key, &alpha, &alice.id, "owner").await.status, 200, "owner stays owner");
    assert_eq!(decision(&server, &alice.key, &alpha, "admin").await, (true, json!("owner")));

    // With a second owner, either may step down; then the other is the last one.
    assert_eq!(set_role(&server, &alice.key, &alpha, &bob.id, "owner").await.status, 200);
    let answer = set_role(&server, &alice.key, &alpha, &alice.id, "viewer").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(decision(&server, &alice.key, &alpha, "admin").await, (false, json!("viewer")));
    assert_eq!(remove(&server, &bob.key, &alpha, &bob.id).await.status, 409);
    assert_eq!(set_role(&server, &bob.key, &alpha, &bob.id, "contributor").await.status, 409);

    // Deleting the owner's user takes their collaborations with them; an admin then
    // names a new owner.
    let answer = server.call("DELETE", &format!("/api/v1/users/{}", bob.id), Via::Bearer(&admin), None).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    let listed = server.get(&format!("/api/v1/projects/{alpha}/collaborators"), &admin).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["userId"], alice.id.as_str());
    assert_eq!(set_role(&server, &admin, &alpha, &carol.id, "owner").await.status, 200);
    assert_eq!(decision(&server, &carol.key, &alpha, "admin").await, (true, json!("owner")));
}
on_each_store!(a_project_always_keeps_an_owner);

/// Every bad input answers a 4xx problem that names what to fix, and writes nothing.
async fn bad_project_inputs_get_clear_problems_and_write_nothing(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;
    let bob = person(&server, &admin, "bob").await;
    let alpha = create_project(&server, &alice.key, json!({"name": "alpha"})).await;

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "a/b"}), "name"),
        (json!({"name": " padded"}), "name"),
        (json!({"name": "ok", "description": "d".repeat(1001)}), "description"),
        (json!({"name": 5}), "name"),
    ] {
        let answer = server.post("/api/v1/projects", &alice.key, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert_eq!(answer.headers.get("content-type").unwrap(), "application/problem+json");
        assert_eq!(answer.json()["field"], field, "{body}: {}", answer.text);
    }
    for (body, mentions) in
        [(json!({"name": "ok", "visibility": "public"}), "visibility"), (json!({"description": "no name"}), "name")]
    {
        let answer = server.post("/api/v1/projects", &alice.key, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert!(answer.text.contains(mentions), "{body} should mention {mentions}: {}", answer.text);
    }
    let answer = server
        .http
        .post(format!("{}/api/v1/projects", server.url))
        .header("X-Api-Key", &alice.key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);

    let duplicate = server.post("/api/v1/projects", &bob.key, json!({"name": "alpha"})).await;
    assert_eq!(duplicate.status, 409, "names are unique in the realm, whoever owns them: {}", duplicate.text);
    assert_eq!(duplicate.json()["field"], "name");

    let collaborator = format!("/api/v1/projects/{alpha}/collaborators/{}", bob.id);
    for (body, mentions) in [
        (json!({"role": "boss"}), "role"),
        (json!({"role": "Owner"}), "role"),
        (json!({}), "role"),
        (json!({"role": "viewer", "expires": "never"}), "expires"),
    ] {
        let answer = server.call("PUT", &collaborator, Via::Bearer(&alice.key), Some(body.clone())).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert!(answer.text.contains(mentions), "{body} should mention {mentions}: {}", answer.text);
    }
    let answer = set_role(&server, &alice.key, &alpha, &bob.id, "boss").await;
    assert_eq!(answer.json()["field"], "role");

    for (body, mentions) in [
        (json!({"projectId": alpha, "action": "delete"}), "action"),
        (json!({"projectId": alpha}), "action"),
        (json!({"action": "read"}), "projectId"),
        (json!({"projectId": alpha, "action": "read", "userId": bob.id}), "userId"),
    ] {
        let answer = server.post("/api/v1/authz/check", &alice.key, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert!(answer.text.contains(mentions), "{body} should mention {mentions}: {}", answer.text);
    }
    assert_eq!(check(&server, &alice.key, &alpha, "delete").await.json()["field"], "action");

    // Nothing was written by any of it.
    assert_eq!(names(&server.get("/api/v1/projects", &admin).await.json()), ["alpha"]);
    let listed = server.get(&format!("/api/v1/projects/{alpha}/collaborators"), &alice.key).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(server.get("/api/v1/projects?limit=0", &alice.key).await.status, 422);
    assert_eq!(server.get("/api/v1/projects?cursor=nope", &alice.key).await.status, 422);

    // Credentials: none is 401; a key bound to an audience only identifies its user.
    assert_eq!(server.call("GET", "/api/v1/projects", Via::None, None).await.status, 401);
    let (_, monitor) =
        create_key(&server, &admin, &alice.id, json!({"name": "dmm", "audience": "model-monitor"})).await;
    let answer = server.call("GET", "/api/v1/projects", Via::Header("X-DMM-API-KEY", &monitor), None).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    let answer = server
        .call(
            "POST",
            "/api/v1/authz/check",
            Via::Header("X-DMM-API-KEY", &monitor),
            Some(json!({"projectId": alpha, "action": "read"})),
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
}
on_each_store!(bad_project_inputs_get_clear_problems_and_write_nothing);

async fn every_project_mutation_is_audited_and_refusals_write_nothing(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let alice = person(&server, &admin, "alice").await;
    let bob = person(&server, &admin, "bob").await;
    let alpha = create_project(&server, &alice.key, json!({"name": "alpha"})).await;
    assert_eq!(set_role(&server, &alice.key, &alpha, &bob.id, "viewer").await.status, 200);
    assert_eq!(set_role(&server, &alice.key, &alpha, &bob.id, "owner").await.status, 200);
    assert_eq!(remove(&server, &alice.key, &alpha, &bob.id).await.status, 204);
    // Refused attempts: a duplicate, a non-collaborator, the last owner, a bad role.
    assert_eq!(server.post("/api/v1/projects", &bob.key, json!({"name": "alpha"})).await.status, 409);
    assert_eq!(remove(&server, &bob.key, &alpha, &alice.id).await.status, 404);
    assert_eq!(remove(&server, &alice.key, &alpha, &alice.id).await.status, 409);
    assert_eq!(set_role(&server, &alice.key, &alpha, &bob.id, "boss").await.status, 422);
    // A check is a read: not audited.
    assert_eq!(check(&server, &alice.key, &alpha, "write").await.status, 200);
    let deleted = server.call("DELETE", &format!("/api/v1/projects/{alpha}"), Via::Bearer(&alice.key), None).await;
    assert_eq!(deleted.status, 204);

    let events = server.get("/api/v1/audit?format=jsonl", &admin).await;
    assert_eq!(events.status, 200, "{}", events.text);
    let project_events: Vec<Value> = events
        .text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["action"].as_str().unwrap().starts_with("project."))
        .collect();
    let summary: Vec<(String, String)> = project_events
        .iter()
        .map(|event| (event["action"].as_str().unwrap().to_string(), event["detail"].as_str().unwrap().to_string()))
        .collect();
    let expected = [
        ("project.create", format!("alpha owner=user:{}", alice.id)),
        ("project.collaborator.add", format!("user:{} role=viewer", bob.id)),
        ("project.collaborator.update", format!("user:{} role=owner (was viewer)", bob.id)),
        ("project.collaborator.remove", format!("user:{} role=owner", bob.id)),
        ("project.delete", "alpha".to_string()),
    ];
    let expected: Vec<(String, String)> =
        expected.into_iter().map(|(action, detail)| (action.to_string(), detail)).collect();
    assert_eq!(summary, expected);
    for event in &project_events {
        assert_eq!(event["target"], format!("project:{alpha}"), "{event}");
        assert_eq!(event["actor"], format!("user:{} (alice)", alice.id), "{event}");
        assert_eq!(event["result"], "ok", "{event}");
    }
    assert!(!events.text.contains(&alice.key) && !events.text.contains(&admin), "no secret in the audit log");
    let (ok, stdout, _) = env.cli(&["audit", "verify"]);
    assert!(ok && stdout.starts_with("audit chain intact"), "{stdout}");
}
on_each_store!(every_project_mutation_is_audited_and_refusals_write_nothing);

/// A service account collaborates like a person: it acts on project A with its token
/// and gets 404 for project B through every route that takes a project id.
async fn a_service_account_sees_only_the_projects_it_collaborates_on(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let owner = person(&server, &admin, "olga").await;
    let created =
        server.post("/v4/serviceAccounts", &admin, json!({"username": "ci-bot", "email": "ci-bot@example.com"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let account = created.json();
    let (account_id, idp_id) = (account["id"].as_str().unwrap(), account["idpId"].as_str().unwrap());
    let token = server.post(&format!("/v4/serviceAccounts/{idp_id}/tokens"), &admin, json!({"name": "ci"})).await;
    let token = token.json()["token"].as_str().unwrap().to_string();
    let alpha = create_project(&server, &owner.key, json!({"name": "alpha"})).await;
    let beta = create_project(&server, &owner.key, json!({"name": "beta"})).await;
    assert_eq!(set_role(&server, &owner.key, &alpha, account_id, "contributor").await.status, 200);

    assert_eq!(names(&server.get("/api/v1/projects", &token).await.json()), ["alpha"]);
    assert_eq!(server.get(&format!("/api/v1/projects/{alpha}"), &token).await.status, 200);
    assert_eq!(decision(&server, &token, &alpha, "write").await, (true, json!("contributor")));
    assert!(!decision(&server, &token, &alpha, "admin").await.0);

    let not_found = server.get(&format!("/api/v1/projects/{beta}"), &token).await;
    assert_eq!(not_found.status, 404, "{}", not_found.text);
    let not_found = not_found.json();
    let project = format!("/api/v1/projects/{beta}");
    for (method, path, body) in [
        ("GET", project.clone(), None),
        ("DELETE", project.clone(), None),
        ("GET", format!("{project}/collaborators"), None),
        ("PUT", format!("{project}/collaborators/{account_id}"), Some(json!({"role": "owner"}))),
        ("DELETE", format!("{project}/collaborators/{}", owner.id), None),
        ("POST", "/api/v1/authz/check".to_string(), Some(json!({"projectId": beta, "action": "read"}))),
    ] {
        let answer = server.call(method, &path, Via::Bearer(&token), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
        assert_eq!(answer.json(), not_found, "{method} {path}");
    }
    // Deactivating the account ends its access with its tokens.
    server.post(&format!("/v4/serviceAccounts/{idp_id}/deactivate"), &admin, json!({})).await;
    assert_eq!(check(&server, &token, &alpha, "read").await.status, 401);
}
on_each_store!(a_service_account_sees_only_the_projects_it_collaborates_on);
