//! Deployer: infrastructures, API services, deployments and their keys.

use super::*;

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

    // JWT settings through the form: a keyward realm's tokens with a required claim; a
    // malformed claim or an outside issuer the API refuses keep the form.
    let jwt = |source: &'static str, claims: &'static str, jwks_url: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("source", source.to_string()),
            ("realm", "default".to_string()),
            ("issuer", "https://login.example.com/".to_string()),
            ("jwks_url", jwks_url.to_string()),
            ("audience", "fraud".to_string()),
            ("claims", claims.to_string()),
            ("algorithms", String::new()),
        ]
    };
    let jwt_path = format!("{fraud_path}/auth/jwt");
    for (fields, says) in [
        (jwt("realm", "organization acme", ""), "Required claims: write each as name=value"),
        (jwt("issuer", "", "ftp://login.example.com/keys"), "auth.jwksUrl"),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let refused = post(&server, &jwt_path, &dana, &fields).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(refused.text.contains(says) && refused.text.contains("value=\"fraud\""), "{says}: {}", refused.text);
    }
    let fields = jwt("realm", "organization=acme\n", "");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let saved = post(&server, &jwt_path, &dana, &fields).await;
    assert_eq!((saved.status, saved.location()), (303, fraud_path.as_str()), "{}", saved.text);
    let service_id = fraud_path.trim_start_matches("/deployer/services/");
    let auth = server.get(&format!("/api/v1/api-services/{service_id}"), &world.admin).await.json()["auth"].clone();
    assert_eq!(auth["type"], "jwt", "{auth}");
    assert_eq!((auth["realm"].as_str(), auth["audience"].as_str()), (Some("default"), Some("fraud")), "{auth}");
    assert_eq!(auth["requiredClaims"], json!({"organization": "acme"}), "{auth}");
    let page = get(&server, &fraud_path, &dana).await;
    assert!(page.text.contains("organization=acme</textarea>"), "the form shows the settings: {}", page.text);
    assert_eq!(call_with_key(&server, "/public/dev/fraud/score", &key).await, 401, "a key is no JWT");
    let page = get(&server, &deployment_path, &dana).await;
    assert!(page.text.contains("Authorization: Bearer $ACCESS_TOKEN"), "{}", page.text);

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
