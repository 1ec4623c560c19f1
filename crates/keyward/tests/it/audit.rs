use crate::harness::{Backend, Env, Via, create_key, create_user};
use crate::on_each_store;
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

async fn tamper(env: &Env, statements: &[&str]) {
    match &env.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", env.data_dir().join("keyward.db").display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_update").execute(&mut connection).await.unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_delete").execute(&mut connection).await.unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut connection).await.unwrap();
            }
        }
        Backend::Postgres { url } => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("DROP TRIGGER IF EXISTS audit_events_no_update_or_delete ON audit_events")
                .execute(&mut connection)
                .await
                .unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut connection).await.unwrap();
            }
        }
    }
}

async fn every_mutation_and_refusal_is_audited_and_downloadable(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let user = create_user(&server, &admin, "amy").await;
    let (key_id, key) = create_key(&server, &admin, &user, json!({"name": "k"})).await;
    server.call("DELETE", &format!("/api/v1/users/me/api-keys/{key_id}"), Via::Bearer(&key), None).await;
    assert_eq!(server.get("/v4/users/self", &key).await.status, 401);

    // The refusal reaches the audit log off the request path; give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let events = loop {
        let events = server.get("/api/v1/audit?format=jsonl", &admin).await;
        assert_eq!(events.status, 200);
        assert_eq!(events.headers.get("content-type").unwrap(), "application/jsonl");
        if events.text.contains("auth.authenticate") || std::time::Instant::now() > deadline {
            break events.text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let actions: Vec<String> = events
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["action"].as_str().unwrap().to_string())
        .collect();
    for expected in ["admin_key.create", "user.create", "api_key.create", "api_key.revoke", "auth.authenticate"] {
        assert!(actions.iter().any(|action| action == expected), "{expected} in {actions:?}");
    }
    let refusal = events.lines().find(|line| line.contains("auth.authenticate")).unwrap();
    assert!(refusal.contains("\"result\":\"denied\"") && refusal.contains("\"detail\":\"unknown\""), "{refusal}");
    assert!(!events.contains(&key) && !events.contains(&admin), "no secret in the audit log");

    let csv = server.get("/api/v1/audit?format=csv&action=user.create", &admin).await;
    assert_eq!(csv.headers.get("content-type").unwrap(), "text/csv; charset=utf-8");
    let rows: Vec<&str> = csv.text.lines().collect();
    assert_eq!(rows[0], "seq,at,realm,actor,action,target,client_ip,result,detail,hash");
    assert_eq!(rows.len(), 2, "{}", csv.text);
    assert!(rows[1].contains("\"user.create\"") && rows[1].contains("\"127.0.0.1\""), "{}", rows[1]);
    assert_eq!(server.get("/api/v1/audit?format=xml", &admin).await.status, 422);

    // Newest first, page by page, meets oldest first the other way round.
    let seqs = |page: &serde_json::Value| -> Vec<i64> {
        page["items"].as_array().unwrap().iter().map(|event| event["seq"].as_i64().unwrap()).collect()
    };
    let oldest = server.get("/api/v1/audit?limit=200", &admin).await.json();
    let mut newest = Vec::new();
    let mut path = "/api/v1/audit?order=newest&limit=2".to_string();
    loop {
        let page = server.get(&path, &admin).await.json();
        newest.extend(seqs(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/audit?order=newest&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut expected = seqs(&oldest);
    expected.reverse();
    let newest: Vec<i64> = newest.into_iter().filter(|seq| expected.contains(seq)).collect();
    assert_eq!(newest, expected, "newest first is the log backwards");
    assert_eq!(server.get("/api/v1/audit?order=random", &admin).await.status, 422);
    assert_eq!(server.get("/api/v1/audit", &key).await.status, 401);

    let (ok, stdout, _) = env.cli(&["audit", "verify"]);
    assert!(ok && stdout.starts_with("audit chain intact"), "{stdout}");
}
on_each_store!(every_mutation_and_refusal_is_audited_and_downloadable);

async fn audit_verify_finds_a_changed_or_deleted_row(backend: Backend) {
    let env = Env::new(backend);
    {
        let server = env.serve(&[]);
        let admin = server.bootstrap_key();
        for name in ["one", "two", "three"] {
            create_user(&server, &admin, name).await;
        }
    }
    let (ok, stdout, _) = env.cli(&["audit", "verify"]);
    assert!(ok, "{stdout}");
    tamper(&env, &["UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 2"]).await;
    let (ok, stdout, _) = env.cli(&["audit", "verify"]);
    assert!(!ok && stdout.contains("event 2 was changed"), "{stdout}");

    let env = Env::new(match &env.backend {
        Backend::Sqlite => Backend::Sqlite,
        Backend::Postgres { .. } => Backend::postgres().await.unwrap(),
    });
    {
        let server = env.serve(&[]);
        let admin = server.bootstrap_key();
        for name in ["one", "two", "three"] {
            create_user(&server, &admin, name).await;
        }
    }
    tamper(&env, &["DELETE FROM audit_events WHERE seq = 3"]).await;
    let (ok, stdout, _) = env.cli(&["audit", "verify"]);
    assert!(!ok && stdout.contains("missing"), "{stdout}");

    // Deleting the newest events leaves no gap to see; the chain head stored with
    // every append still names them.
    tamper(&env, &["DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)"]).await;
    let (ok, stdout, _) = env.cli(&["audit", "verify"]);
    assert!(!ok && stdout.contains("newest events"), "{stdout}");
}
on_each_store!(audit_verify_finds_a_changed_or_deleted_row);

async fn the_audit_log_refuses_updates_from_the_database_itself(backend: Backend) {
    let env = Env::new(backend.clone());
    drop(env.serve(&[]));
    let result = match &backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", env.data_dir().join("keyward.db").display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("UPDATE audit_events SET actor = 'x'").execute(&mut connection).await.map(|_| ())
        }
        Backend::Postgres { url } => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("DELETE FROM audit_events").execute(&mut connection).await.map(|_| ())
        }
    };
    let error = result.expect_err("append-only");
    assert!(error.to_string().contains("append-only"), "{error}");
}
on_each_store!(the_audit_log_refuses_updates_from_the_database_itself);
