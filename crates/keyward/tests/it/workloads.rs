//! Workloads: run-bound `kwr_` credentials, the access tokens exchanged from them (with
//! the workload as `sid`), and ending a run.

use crate::harness::{Answer, Backend, Env, Server, Via, create_key, create_user, grant_role};
use crate::on_each_store;
use base64::Engine;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn exchange(server: &Server, credential: &str) -> (u16, Value) {
    server.exchange("default", credential, &[]).await
}

fn claims(token: &str) -> Value {
    let segment = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

async fn whoami(server: &Server, credential: &str) -> Answer {
    server.call("GET", "/v4/users/self", Via::Bearer(credential), None).await
}

async fn until(server: &Server, credential: &str, status: u16) {
    let started = Instant::now();
    while whoami(server, credential).await.status != status {
        assert!(started.elapsed() < Duration::from_secs(1), "{} did not answer {status} within 1 s", server.url);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A user with the workload-launcher role and an API key; returns the key.
async fn launcher(server: &Server, admin: &str) -> String {
    let lena = create_user(server, admin, "lena").await;
    grant_role(server, admin, &lena, "workload-launcher").await;
    create_key(server, admin, &lena, json!({"name": "launcher"})).await.1
}

async fn a_run_calls_as_its_user_until_it_ends_on_every_node(backend: Backend) {
    let env = Env::new(backend);
    let public = ["--public-url", "http://keyward.test"];
    let first = env.serve(&public);
    let admin = first.bootstrap_key();
    let second = env.serve(&public);
    let launcher = launcher(&first, &admin).await;
    let pat = create_user(&first, &admin, "pat").await;
    let (_, pat_key) = create_key(&first, &admin, &pat, json!({"name": "k"})).await;
    let project = first.post("/api/v1/projects", &pat_key, json!({"name": "churn"})).await;
    assert_eq!(project.status, 201, "{}", project.text);
    let project = project.json()["id"].as_str().unwrap().to_string();

    let created = first
        .post(
            "/api/v1/workloads",
            &launcher,
            json!({"userId": pat, "kind": "job", "runId": "run-1", "projectId": project}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let workload = created.json();
    let id = workload["id"].as_str().unwrap().to_string();
    assert_eq!(
        (workload["status"].as_str(), workload["projectId"].as_str()),
        (Some("running"), Some(project.as_str()))
    );
    let credential = workload["credential"].as_str().unwrap().to_string();
    assert!(credential.starts_with("kwr_"), "{credential}");
    assert_eq!(whoami(&first, &credential).await.json()["userName"], "pat");

    // The proxy's exchange: a short-lived access token bound to the run.
    let (status, body) = exchange(&first, &credential).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&access)["sid"], id.as_str());
    assert_eq!(claims(&access)["sub"], pat.as_str());
    until(&second, &access, 200).await;
    until(&second, &credential, 200).await;

    let listed = first.get("/api/v1/workloads", &launcher).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&credential), "lists never show the credential");
    assert_eq!(listed.json()["items"][0]["runId"], "run-1");
    let of_pat = first.get(&format!("/api/v1/workloads?userId={pat}"), &launcher).await.json();
    assert_eq!(of_pat["items"].as_array().unwrap().len(), 1, "{of_pat}");
    assert_eq!(of_pat["items"][0]["userId"], pat.as_str());

    // Ending the run ends its credential and every token made from it, on every node.
    let ended =
        first.call("DELETE", &format!("/api/v1/workloads/{id}"), Via::Header("X-Api-Key", &launcher), None).await;
    assert_eq!(ended.status, 204, "{}", ended.text);
    assert_eq!(whoami(&first, &access).await.status, 401);
    assert_eq!(whoami(&first, &credential).await.status, 401);
    until(&second, &access, 401).await;
    until(&second, &credential, 401).await;
    let (status, body) = exchange(&first, &credential).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let shown = first.get(&format!("/api/v1/workloads/{id}"), &launcher).await;
    assert_eq!(shown.json()["status"], "ended", "{}", shown.text);
    assert_eq!(first.get("/api/v1/workloads", &launcher).await.json()["items"], json!([]));
    // The run id is free again.
    let again =
        first.post("/api/v1/workloads", &launcher, json!({"userId": pat, "kind": "job", "runId": "run-1"})).await;
    assert_eq!(again.status, 201, "{}", again.text);
}
on_each_store!(a_run_calls_as_its_user_until_it_ends_on_every_node);

async fn launchers_register_runs_and_bad_requests_say_what_to_fix(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let launcher = launcher(&server, &admin).await;
    let pat = create_user(&server, &admin, "pat").await;
    let (_, pat_key) = create_key(&server, &admin, &pat, json!({"name": "k"})).await;

    let answer = server.post("/api/v1/workloads", &pat_key, json!({"userId": pat, "kind": "job", "runId": "r"})).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(answer.text.contains("workload-launcher"), "{}", answer.text);

    let model =
        server.post("/api/v1/workloads", &launcher, json!({"userId": pat, "kind": "modelApi", "runId": "m-1"})).await;
    assert_eq!(model.status, 201, "{}", model.text);
    assert_eq!(model.json()["credential"], Value::Null);
    assert!(model.json()["note"].as_str().unwrap().contains("no credential"), "{}", model.text);

    let cases = [
        (json!({"userId": pat, "kind": "cronjob", "runId": "r"}), 422, "kind"),
        (json!({"userId": pat, "kind": "job", "runId": ""}), 422, "runId"),
        (json!({"userId": pat, "kind": "job", "runId": "has space"}), 422, "runId"),
        (json!({"userId": pat, "kind": "job", "runId": "x".repeat(129)}), 422, "runId"),
        (json!({"userId": "0123456789abcdef01234567", "kind": "job", "runId": "r"}), 404, ""),
        (json!({"userId": pat, "kind": "job", "runId": "r", "projectId": "0123456789abcdef01234567"}), 404, ""),
        (json!({"userId": pat, "kind": "modelApi", "runId": "m-1"}), 409, "runId"),
        (json!({"userId": pat, "kind": "job", "runId": "r", "extra": 1}), 422, ""),
    ];
    for (body, status, field) in cases {
        let answer = server.post("/api/v1/workloads", &launcher, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        if !field.is_empty() {
            assert_eq!(answer.json()["field"], field, "{body}: {}", answer.text);
        }
    }
    // A project the user does not collaborate on.
    let (_, admin_user_key) = {
        let other = create_user(&server, &admin, "owen").await;
        create_key(&server, &admin, &other, json!({"name": "k"})).await
    };
    let project = server.post("/api/v1/projects", &admin_user_key, json!({"name": "secret"})).await;
    let project = project.json()["id"].as_str().unwrap().to_string();
    let answer = server
        .post("/api/v1/workloads", &launcher, json!({"userId": pat, "kind": "job", "runId": "r", "projectId": project}))
        .await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json()["field"], "projectId");
    // Unknown and malformed workload ids are 404.
    for id in ["0123456789abcdef01234567", "nope"] {
        let answer = server.call("DELETE", &format!("/api/v1/workloads/{id}"), Via::Bearer(&launcher), None).await;
        assert_eq!(answer.status, 404, "{}", answer.text);
    }
    // Every create and end is audited.
    let audit = server.get("/api/v1/audit?action=workload.create", &admin).await;
    assert_eq!(audit.json()["items"].as_array().unwrap().len(), 1, "{}", audit.text);
}
on_each_store!(launchers_register_runs_and_bad_requests_say_what_to_fix);

async fn a_run_credential_mints_nothing_and_a_launcher_starts_no_run_above_its_own_roles(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let launcher = launcher(&server, &admin).await;
    let pat = create_user(&server, &admin, "pat").await;
    let ada = create_user(&server, &admin, "ada").await;
    grant_role(&server, &admin, &ada, "admin").await;

    // A run of an admin would act as one: not the launcher's to start.
    let body = json!({"userId": ada, "kind": "job", "runId": "ada-1"});
    let refused = server.post("/api/v1/workloads", &launcher, body.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("ada holds roles this launcher does not (admin)"), "{}", refused.text);
    assert_eq!(server.post("/api/v1/workloads", &admin, body).await.status, 201, "an admin may");

    // A run's credential makes no credential that would outlive the run.
    let run =
        server.post("/api/v1/workloads", &launcher, json!({"userId": pat, "kind": "job", "runId": "pat-1"})).await;
    assert_eq!(run.status, 201, "{}", run.text);
    let credential = run.json()["credential"].as_str().unwrap().to_string();
    assert_eq!(whoami(&server, &credential).await.status, 200);
    let key = server.post("/api/v1/users/me/api-keys", &credential, json!({"name": "forever"})).await;
    assert_eq!(key.status, 403, "{}", key.text);
    assert!(key.text.contains("would outlive the run"), "{}", key.text);
    let keys = server.get(&format!("/api/v1/users/{pat}/api-keys"), &admin).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    assert!(!keys.text.contains("forever"), "no key was made: {}", keys.text);
    let own_run = launcher_run_credential(&server, &admin).await;
    let nested =
        server.post("/api/v1/workloads", &own_run, json!({"userId": pat, "kind": "job", "runId": "pat-2"})).await;
    assert_eq!(nested.status, 403, "{}", nested.text);
}
on_each_store!(a_run_credential_mints_nothing_and_a_launcher_starts_no_run_above_its_own_roles);

/// Starts a job for `user` with the launcher's key `by`; returns the run's credential.
async fn start_run(server: &Server, by: &str, user: &str, run_id: &str) -> String {
    let run = server.post("/api/v1/workloads", by, json!({"userId": user, "kind": "job", "runId": run_id})).await;
    assert_eq!(run.status, 201, "{}", run.text);
    run.json()["credential"].as_str().unwrap().to_string()
}

/// The roles `credential` acts with, as the auth check reports them.
async fn roles_of(server: &Server, credential: &str) -> String {
    let answer = server.get("/api/v1/auth/check", credential).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.headers.get("x-keyward-roles").map(|value| value.to_str().unwrap().to_string()).unwrap_or_default()
}

/// A launcher keeps a copy of each run's credential, so a run it starts must not gain
/// what its user is granted later: the run (and the access tokens exchanged from it)
/// keeps the roles its user held when it started. A run an admin starts, and the user's
/// own key, act with the user's roles as they are now.
async fn a_launchers_run_keeps_the_roles_it_started_with(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let launcher = launcher(&server, &admin).await;
    let launcher_id = whoami(&server, &launcher).await.json()["id"].as_str().unwrap().to_string();
    let pat = create_user(&server, &admin, "pat").await;
    grant_role(&server, &admin, &pat, "workload-launcher").await;
    let (_, pat_key) = create_key(&server, &admin, &pat, json!({"name": "laptop"})).await;
    let by_launcher = start_run(&server, &launcher, &pat, "pat-1").await;
    let by_admin = start_run(&server, &admin, &pat, "pat-2").await;
    let (status, exchanged) = exchange(&server, &by_launcher).await;
    assert_eq!(status, 200, "{exchanged}");
    let exchanged = exchanged["access_token"].as_str().unwrap().to_string();
    for credential in [&by_launcher, &exchanged, &by_admin, &pat_key] {
        assert_eq!(roles_of(&server, credential).await, "workload-launcher");
    }

    // pat is made an admin while the runs go on.
    grant_role(&server, &admin, &pat, "admin").await;
    for credential in [&by_admin, &pat_key] {
        assert_eq!(roles_of(&server, credential).await, "admin,workload-launcher");
    }
    let promote = format!("/api/v1/users/{launcher_id}/roles/admin");
    for credential in [&by_launcher, &exchanged] {
        assert_eq!(roles_of(&server, credential).await, "workload-launcher", "the launcher's copy gains nothing");
        let me = server.call("GET", "/api/v1/users/me", Via::Bearer(credential), None).await;
        assert_eq!(me.json()["effectiveRoles"], json!(["workload-launcher"]), "{}", me.text);
        assert_eq!(whoami(&server, credential).await.status, 200, "and the run goes on");
        let refused = server.call("PUT", &promote, Via::Bearer(credential), None).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
    }
    // A token exchanged after the grant is held to the same roles.
    let (status, later) = exchange(&server, &by_launcher).await;
    assert_eq!(status, 200, "{later}");
    assert_eq!(roles_of(&server, later["access_token"].as_str().unwrap()).await, "workload-launcher");
    assert_eq!(roles_of(&server, &launcher).await, "workload-launcher", "the launcher was not promoted");

    // The ceiling is the credential's, read back at start (and by every node).
    let mut server = server;
    assert!(server.terminate().success());
    let server = env.serve(&[]);
    assert_eq!(roles_of(&server, &by_launcher).await, "workload-launcher");
    assert_eq!(roles_of(&server, &by_admin).await, "admin,workload-launcher");

    // A role taken away is gone from the run at once: the ceiling only ever narrows.
    let revoked =
        server.call("DELETE", &format!("/api/v1/users/{pat}/roles/workload-launcher"), Via::Bearer(&admin), None).await;
    assert!(revoked.status < 300, "{}", revoked.text);
    assert_eq!(roles_of(&server, &by_launcher).await, "");
    assert_eq!(roles_of(&server, &by_admin).await, "admin");
}
on_each_store!(a_launchers_run_keeps_the_roles_it_started_with);

/// The groups `credential` acts through, as the auth check reports them.
async fn groups_of(server: &Server, credential: &str) -> String {
    let answer = server.get("/api/v1/auth/check", credential).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.headers.get("x-keyward-groups").map(|value| value.to_str().unwrap().to_string()).unwrap_or_default()
}

/// Whether `credential` sees the infrastructure (View, through a group).
async fn sees(server: &Server, credential: &str, infrastructure: &str) -> bool {
    let answer =
        server.call("GET", &format!("/api/v1/infrastructures/{infrastructure}"), Via::Bearer(credential), None).await;
    assert!(matches!(answer.status, 200 | 404), "{}", answer.text);
    answer.status == 200
}

/// As with roles, a launcher's copy of a run's credential must not gain the groups its
/// user joins later: groups carry privileges on infrastructures and API services, and
/// name the user in identity headers and tokens. The run keeps acting through the groups
/// it started with; a run an admin starts, and the user's own key, through the user's
/// groups as they are now.
async fn a_launchers_run_keeps_the_groups_it_started_with(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let launcher = launcher(&server, &admin).await;
    let pat = create_user(&server, &admin, "pat").await;
    let (_, pat_key) = create_key(&server, &admin, &pat, json!({"name": "laptop"})).await;
    let analysts = crate::deployer::group(&server, &admin, "analysts", &[&pat], None).await;
    let ops = crate::deployer::group(&server, &admin, "ops", &[], None).await;
    let mut infrastructures = Vec::new();
    for (name, group) in [("dev", &analysts), ("prod", &ops)] {
        let created = server.post("/api/v1/infrastructures", &admin, json!({"name": name})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let infrastructure = created.json()["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/infrastructures/{infrastructure}/permissions/{group}");
        let granted = server.call("PUT", &path, Via::Bearer(&admin), Some(json!({"privilege": "view"}))).await;
        assert_eq!(granted.status, 200, "{}", granted.text);
        infrastructures.push(infrastructure);
    }
    let (dev, prod) = (&infrastructures[0], &infrastructures[1]);
    let by_launcher = start_run(&server, &launcher, &pat, "pat-1").await;
    let by_admin = start_run(&server, &admin, &pat, "pat-2").await;
    let (status, exchanged) = exchange(&server, &by_launcher).await;
    assert_eq!(status, 200, "{exchanged}");
    let exchanged = exchanged["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&exchanged)["groups"], json!(["analysts"]));
    for credential in [&by_launcher, &exchanged, &by_admin, &pat_key] {
        assert_eq!(groups_of(&server, credential).await, "analysts");
        assert!(sees(&server, credential, dev).await && !sees(&server, credential, prod).await);
    }

    // pat joins ops while the runs go on.
    let joined = server.call("PUT", &format!("/api/v1/groups/{ops}/members/{pat}"), Via::Bearer(&admin), None).await;
    assert!(joined.status < 300, "{}", joined.text);
    for credential in [&by_admin, &pat_key] {
        assert_eq!(groups_of(&server, credential).await, "analysts,ops");
        assert!(sees(&server, credential, prod).await);
    }
    let (status, later) = exchange(&server, &by_launcher).await;
    assert_eq!(status, 200, "{later}");
    let later = later["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&later)["groups"], json!(["analysts"]), "a token exchanged later names no new group");
    for credential in [&by_launcher, &exchanged, &later] {
        assert_eq!(groups_of(&server, credential).await, "analysts", "the launcher's copy gains nothing");
        assert!(!sees(&server, credential, prod).await, "nor the group's privileges");
        assert!(sees(&server, credential, dev).await, "and the run goes on");
    }
    // Nor does it see them when it looks at itself.
    for (credential, expected) in [(&by_launcher, vec!["analysts"]), (&pat_key, vec!["analysts", "ops"])] {
        let me = server.call("GET", "/api/v1/users/me", Via::Bearer(credential), None).await;
        assert_eq!(me.status, 200, "{}", me.text);
        let groups: Vec<String> = me.json()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| group["name"].as_str().unwrap().into())
            .collect();
        assert_eq!(groups, expected);
    }
    let userinfo =
        server.call("GET", "/auth/realms/default/protocol/openid-connect/userinfo", Via::Bearer(&later), None).await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
    assert_eq!(userinfo.json()["groups"], json!(["analysts"]));

    // The ceiling is the credential's, read back at start (and by every node).
    let mut server = server;
    assert!(server.terminate().success());
    let server = env.serve(&[]);
    assert_eq!(groups_of(&server, &by_launcher).await, "analysts");
    assert!(!sees(&server, &by_launcher, prod).await);
    assert_eq!(groups_of(&server, &by_admin).await, "analysts,ops");

    // A group left is gone from the run at once: the ceiling only ever narrows.
    let left =
        server.call("DELETE", &format!("/api/v1/groups/{analysts}/members/{pat}"), Via::Bearer(&admin), None).await;
    assert!(left.status < 300, "{}", left.text);
    assert_eq!(groups_of(&server, &by_launcher).await, "");
    assert!(!sees(&server, &by_launcher, dev).await);
    assert_eq!(groups_of(&server, &by_admin).await, "ops");
}
on_each_store!(a_launchers_run_keeps_the_groups_it_started_with);

/// The credential of a run of a launcher ("leo"), which holds the workload-launcher role.
async fn launcher_run_credential(server: &Server, admin: &str) -> String {
    let leo = create_user(server, admin, "leo").await;
    grant_role(server, admin, &leo, "workload-launcher").await;
    let run =
        server.post("/api/v1/workloads", admin, json!({"userId": leo, "kind": "launcher", "runId": "leo-1"})).await;
    assert_eq!(run.status, 201, "{}", run.text);
    run.json()["credential"].as_str().unwrap().to_string()
}

/// The checks a launch and an API token's mint read inside their mutation use the
/// mutation's own connection: more of them at once than the database pool holds all
/// succeed (each used to wait for a second pool connection that the others, queued behind
/// its write lock, were holding, and failed after ten seconds).
async fn many_launches_and_token_mints_at_once_all_succeed(backend: Backend) {
    const AT_ONCE: usize = 12;
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let launcher = launcher(&server, &admin).await;
    let pat = create_user(&server, &admin, "pat").await;
    let launches = (0..AT_ONCE).map(|run| {
        let (server, launcher, pat) = (&server, &launcher, &pat);
        async move {
            let body = json!({"userId": pat, "kind": "job", "runId": format!("pat-{run}")});
            server.post("/api/v1/workloads", launcher, body).await
        }
    });
    let mints = (0..AT_ONCE).map(|token| {
        let (server, admin, pat) = (&server, &admin, &pat);
        async move {
            let body = json!({"userId": pat, "name": format!("script-{token}")});
            server.post("/api/v1/api-tokens", admin, body).await
        }
    });
    let (launched, minted) =
        tokio::join!(futures_util::future::join_all(launches), futures_util::future::join_all(mints));
    for answer in launched.iter().chain(&minted) {
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
}
on_each_store!(many_launches_and_token_mints_at_once_all_succeed);
