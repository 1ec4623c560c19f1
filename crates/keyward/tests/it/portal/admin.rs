//! Admin: service accounts, users, groups and roles, and the audit log.

use super::*;

async fn an_admin_manages_service_accounts_and_sees_tokens_that_expire_soon(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    person(&server, &admin, "pat").await;
    let ada = person(&server, &admin, "ada").await;
    let granted = server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);

    let pat_session = session_of(&server, "pat").await;
    let refused = get(&server, "/admin/service-accounts", &pat_session).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("admin role"), "{}", refused.text);
    assert!(!refused.text.contains("href=\"/admin/service-accounts\""), "no link for a non-admin");

    let session = session_of(&server, "ada").await;
    let list = get(&server, "/admin/service-accounts", &session).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_security_headers(&list);
    let csrf = list.field("csrf");
    let refused =
        post(&server, "/admin/service-accounts", &session, &[("username", "etl"), ("email", "etl@example.com")]).await;
    assert_eq!(refused.status, 403, "no CSRF token: {}", refused.text);
    let bad = post(
        &server,
        "/admin/service-accounts",
        &session,
        &[("csrf", &csrf), ("username", "Bad Name"), ("email", "etl@example.com")],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("username") && bad.text.contains("value=\"Bad Name\""), "{}", bad.text);
    let created = post(
        &server,
        "/admin/service-accounts",
        &session,
        &[("csrf", &csrf), ("username", "etl"), ("email", "etl+bot@example.com")],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let account_path = created.location().to_string();
    let account_id = account_path.rsplit('/').next().unwrap().to_string();
    assert_eq!(server.get(&format!("/api/v1/service-accounts/{account_id}"), &admin).await.json()["username"], "etl");

    // Tokens: one that expires within 30 days is highlighted, here and on the list.
    let issue = |name: &'static str, days: &'static str| {
        let (csrf, path) = (csrf.clone(), format!("{account_path}/tokens"));
        let server = &server;
        let session = session.clone();
        async move {
            let fields = [("csrf", csrf.as_str()), ("name", name), ("lifetime_days", days), ("description", "")];
            post(server, &path, &session, &fields).await
        }
    };
    let soon = issue("soon", "10").await;
    assert_eq!(soon.status, 201, "{}", soon.text);
    let soon_secret = attribute_after(&soon.text, "id=\"new-secret\" value=\"");
    assert!(soon_secret.starts_with("kws_"), "{soon_secret}");
    let later = issue("later", "100").await;
    let later_secret = attribute_after(&later.text, "id=\"new-secret\" value=\"");
    assert_eq!(issue("later", "100").await.status, 409, "a name is unique among valid tokens");
    let bad_days = issue("forever", "99999").await;
    assert_eq!(bad_days.status, 422, "{}", bad_days.text);
    for secret in [&soon_secret, &later_secret] {
        assert_eq!(server.get("/v4/users/self", secret).await.status, 200);
    }
    let account = get(&server, &account_path, &session).await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert!(!account.text.contains(&soon_secret[8..]) && !account.text.contains(&later_secret[8..]), "no secrets");
    let rows: Vec<&str> = account.text.split("<tr").skip(2).collect();
    let soon_row = rows.iter().find(|row| row.contains(">soon")).unwrap();
    let later_row = rows.iter().find(|row| row.contains(">later")).unwrap();
    assert!(soon_row.starts_with(" class=\"soon\"") && soon_row.contains("expires in 10 days"), "{soon_row}");
    assert!(!later_row.contains("soon") && !later_row.contains("expires in"), "{later_row}");
    let list = get(&server, "/admin/service-accounts", &session).await;
    let expiring = list.text.split("Tokens expiring within 30 days").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(expiring.contains("soon") && !expiring.contains("later"), "{expiring}");

    // Invalidate one; deactivate the account (every token stops); activate revives none.
    let soon_id =
        attribute_after(soon_row, &format!("action=\"{account_path}/tokens/")).split('/').next().unwrap().to_string();
    let path = format!("{account_path}/tokens/{soon_id}/invalidate");
    assert_eq!(post(&server, &path, &session, &[]).await.status, 403);
    let invalidated = post(&server, &path, &session, &[("csrf", &csrf)]).await;
    assert_eq!((invalidated.status, invalidated.location()), (303, account_path.as_str()), "{}", invalidated.text);
    assert_eq!(server.get("/v4/users/self", &soon_secret).await.status, 401);
    assert_eq!(server.get("/v4/users/self", &later_secret).await.status, 200);
    let deactivated = post(&server, &format!("{account_path}/deactivate"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(deactivated.status, 303, "{}", deactivated.text);
    assert_eq!(server.get("/v4/users/self", &later_secret).await.status, 401);
    let account = get(&server, &account_path, &session).await;
    assert!(account.text.contains("deactivated") && account.text.contains("activate it first"), "{}", account.text);
    let activated = post(&server, &format!("{account_path}/activate"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(activated.status, 303, "{}", activated.text);
    assert_eq!(server.get("/v4/users/self", &later_secret).await.status, 401, "activation revives no token");

    // A person, or another realm's account, is not a service account here.
    assert_eq!(get(&server, &format!("/admin/service-accounts/{ada}"), &session).await.status, 404);
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let acme = server
        .post("/api/v1/service-accounts", &acme_admin, json!({"username": "etl", "email": "etl@acme.example"}))
        .await;
    assert_eq!(acme.status, 201, "{}", acme.text);
    let acme_id = acme.json()["id"].as_str().unwrap().to_string();
    assert_eq!(get(&server, &format!("/admin/service-accounts/{acme_id}"), &session).await.status, 404);
    let path = format!("/admin/service-accounts/{acme_id}/deactivate");
    assert_eq!(post(&server, &path, &session, &[("csrf", &csrf)]).await.status, 404);
    let acme_account = server.get(&format!("/api/v1/service-accounts/{acme_id}"), &acme_admin).await.json();
    assert_eq!(acme_account["enabled"], true);
}
on_each_store!(an_admin_manages_service_accounts_and_sees_tokens_that_expire_soon);

async fn an_admin_manages_people_groups_and_roles(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    let ada = person(&server, &admin, "ada").await;
    let granted = server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);
    person(&server, &admin, "pat").await;
    let pat_session = session_of(&server, "pat").await;
    for path in ["/admin/users", "/admin/groups"] {
        assert_eq!(get(&server, path, &pat_session).await.status, 403, "{path}");
    }

    let session = session_of(&server, "ada").await;
    let users = get(&server, "/admin/users", &session).await;
    assert_eq!(users.status, 200, "{}", users.text);
    assert!(users.text.contains("href=\"/admin/groups\""), "the admin nav");
    let csrf = users.field("csrf");

    // Add a person with a password: bad input keeps the form and never echoes the password.
    let new_user = |username: &'static str, password: &'static str| {
        vec![
            ("username", username),
            ("email", "lee@example.com"),
            ("first_name", "Lee"),
            ("last_name", "Ng"),
            ("password", password),
        ]
    };
    let mut fields = new_user("lee", "short");
    fields.push(("csrf", &csrf));
    let bad = post(&server, "/admin/users", &session, &fields).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("value=\"lee@example.com\"") && !bad.text.contains("short\""), "{}", bad.text);
    let mut fields = new_user("lee", PASSWORD);
    assert_eq!(post(&server, "/admin/users", &session, &fields).await.status, 403, "no CSRF token");
    fields.push(("csrf", &csrf));
    let created = post(&server, "/admin/users", &session, &fields).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let lee_path = created.location().split('?').next().unwrap().to_string();
    let lee = lee_path.rsplit('/').next().unwrap().to_string();
    assert!(!get(&server, created.location(), &session).await.text.contains(PASSWORD));
    let lee_session = session_of(&server, "lee").await;

    // A role, granted with one button, reaches the person's session at once.
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 403);
    let grant = post(&server, &format!("{lee_path}/roles/token-manager/grant"), &session, &[("csrf", &csrf)]).await;
    assert_eq!((grant.status, grant.location()), (303, lee_path.as_str()), "{}", grant.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 200);
    let unknown = post(&server, &format!("{lee_path}/roles/root/grant"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    let revoke = post(&server, &format!("{lee_path}/roles/token-manager/revoke"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(revoke.status, 303, "{}", revoke.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 403);
    // Nobody takes the admin role from themselves; the page offers no such button.
    let own = get(&server, &format!("/admin/users/{ada}"), &session).await;
    assert!(!own.text.contains("/roles/admin/revoke") && !own.text.contains("/disable"), "{}", own.text);
    let refused = post(&server, &format!("/admin/users/{ada}/roles/admin/revoke"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 409, "{}", refused.text);

    // Groups: a member gains the group's roles, and loses them when removed.
    let groups = get(&server, "/admin/groups", &session).await;
    assert_eq!(groups.status, 200, "{}", groups.text);
    let group =
        post(&server, "/admin/groups", &session, &[("csrf", &csrf), ("name", "data-eng"), ("description", "")]).await;
    assert_eq!(group.status, 303, "{}", group.text);
    let group_path = group.location().to_string();
    let grant = post(&server, &format!("{group_path}/roles/token-manager/grant"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(grant.status, 303, "{}", grant.text);
    let nobody =
        post(&server, &format!("{group_path}/members"), &session, &[("csrf", &csrf), ("username", "nobody")]).await;
    assert_eq!(nobody.status, 422, "{}", nobody.text);
    assert!(nobody.text.contains("no user or service account called"), "{}", nobody.text);
    let added =
        post(&server, &format!("{group_path}/members"), &session, &[("csrf", &csrf), ("username", "lee")]).await;
    assert_eq!(added.status, 303, "{}", added.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 200, "the group's role");
    let lee_page = get(&server, &lee_path, &session).await;
    assert!(lee_page.text.contains("through a group") && lee_page.text.contains("data-eng"), "{}", lee_page.text);
    let removed = post(&server, &format!("{group_path}/members/{lee}/remove"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(removed.status, 303, "{}", removed.text);
    assert_eq!(get(&server, "/manage/api-tokens", &lee_session).await.status, 403);

    // Password, disable (ends the session), enable, delete.
    let set = post(&server, &format!("{lee_path}/password"), &session, &[("csrf", &csrf), ("password", "x")]).await;
    assert_eq!(set.status, 422, "{}", set.text);
    let new_password = "a brand new passphrase";
    let set =
        post(&server, &format!("{lee_path}/password"), &session, &[("csrf", &csrf), ("password", new_password)]).await;
    assert_eq!(set.status, 303, "{}", set.text);
    assert!(get(&server, set.location(), &session).await.text.contains("The password was set."));
    assert_eq!(log_in(&server, "lee", new_password).await.status, 303);
    let disabled = post(&server, &format!("{lee_path}/disable"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(disabled.status, 303, "{}", disabled.text);
    assert_eq!(get(&server, "/account", &lee_session).await.status, 303, "disabled: the session is over");
    assert_eq!(post(&server, &format!("{lee_path}/enable"), &session, &[("csrf", &csrf)]).await.status, 303);
    let deleted = post(&server, &format!("{lee_path}/delete"), &session, &[("csrf", &csrf)]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/admin/users"), "{}", deleted.text);
    assert_eq!(get(&server, &lee_path, &session).await.status, 404);
    let deleted = post(&server, &format!("{group_path}/delete"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.text);
    assert_eq!(get(&server, &group_path, &session).await.status, 404);

    // Another realm's people are not there.
    let realm = server.post("/api/v1/realms", &admin, json!({"name": "acme"})).await;
    assert_eq!(realm.status, 201, "{}", realm.text);
    let (ok, acme_admin, stderr) = env.cli(&["admin-key", "create", "--realm", "acme", "--name", "acme-admin"]);
    assert!(ok, "{stderr}");
    let acme_admin = acme_admin.trim().to_string();
    server.wait_for_status("/api/v1/realms", &acme_admin, 200, std::time::Duration::from_secs(2)).await;
    let ann = create_user(&server, &acme_admin, "ann").await;
    assert_eq!(get(&server, &format!("/admin/users/{ann}"), &session).await.status, 404);
    let path = format!("/admin/users/{ann}/roles/admin/grant");
    assert_eq!(post(&server, &path, &session, &[("csrf", &csrf)]).await.status, 404);
    assert!(!get(&server, "/admin/users", &session).await.text.contains(">ann<"));
}
on_each_store!(an_admin_manages_people_groups_and_roles);

/// The audit page's rows: the text of each `<tr>` of the table's body, cells joined by `|`.
fn audit_rows(page: &Page) -> Vec<String> {
    let Some(start) = page.text.find("<tbody>") else { return Vec::new() };
    let body = &page.text[start..page.text.find("</tbody>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| cell.split('>').nth(1).unwrap().split("</td").next().unwrap())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// The audit page with `query`, once a cell reading `cell` is on it: some events (the
/// logins') are written off the request path.
async fn audit_page_with(server: &Server, session: &str, query: &str, cell: &str) -> Page {
    let started = std::time::Instant::now();
    loop {
        let page = get(server, &format!("/admin/audit?{query}"), session).await;
        if page.text.contains(&format!(">{cell}</td>")) {
            return page;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "no {cell}: {}", page.text);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn an_admin_reads_filters_and_downloads_the_audit_log_and_no_one_else_can(backend: Backend) {
    let env = Env::new(backend);
    let server = env.serve(&[]);
    let admin = server.bootstrap_key();
    person(&server, &admin, "pat").await;
    let ada = person(&server, &admin, "ada").await;
    let granted = server.call("PUT", &format!("/api/v1/users/{ada}/roles/admin"), Via::Bearer(&admin), None).await;
    assert!(granted.status < 300, "{}", granted.text);
    let pages = ["/admin/audit", "/admin/audit.csv", "/admin/audit.jsonl"];

    // Without a session, the login page; without the admin role, a 403 page and no link.
    for path in pages {
        let anonymous = send(&server, "GET", path, &[], None).await;
        assert_eq!((anonymous.status, anonymous.location()), (303, "/login"), "{path}");
    }
    let pat_session = session_of(&server, "pat").await;
    for path in pages {
        let refused = get(&server, &format!("{path}?action=auth.login"), &pat_session).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text);
        assert!(refused.text.contains("the admin role"), "{}", refused.text);
        assert!(!refused.text.contains(">auth.login</td>"), "{}", refused.text);
        assert_security_headers(&refused);
    }
    assert!(!get(&server, "/account", &pat_session).await.text.contains("/admin/audit"));

    let session = session_of(&server, "ada").await;
    let profile = get(&server, "/account", &session).await;
    assert!(profile.text.contains("<nav aria-label=\"Admin\">"), "{}", profile.text);
    assert!(profile.text.contains("href=\"/admin/audit\""), "{}", profile.text);

    // Everything, newest first by default, oldest first on request; then narrowed by action.
    let seqs_of = |page: &Page| -> Vec<i64> {
        audit_rows(page).iter().map(|row| row.split('|').next().unwrap().parse().unwrap()).collect()
    };
    let all = audit_page_with(&server, &session, "", "auth.login").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_security_headers(&all);
    assert!(all.text.contains("Newest first"), "{}", all.text);
    let rows = audit_rows(&all);
    assert!(rows.iter().any(|row| row.contains("|user.create|")), "{rows:?}");
    let seqs = seqs_of(&all);
    assert!(seqs.windows(2).all(|pair| pair[0] > pair[1]), "{seqs:?}");
    let oldest = audit_page_with(&server, &session, "order=oldest", "auth.login").await;
    assert!(oldest.text.contains("Oldest first"), "{}", oldest.text);
    let oldest_seqs = seqs_of(&oldest);
    assert!(oldest_seqs.windows(2).all(|pair| pair[0] < pair[1]), "{oldest_seqs:?}");
    assert_eq!(oldest_seqs.first(), seqs.last(), "the same events, the other way round");
    let bad_order = get(&server, "/admin/audit?order=sideways", &session).await;
    assert_eq!(bad_order.status, 422, "{}", bad_order.text);
    assert!(bad_order.text.contains("Order: choose"), "{}", bad_order.text);
    let query = "action=auth.login&actor=&result=ok&since=&until=";
    let logins = audit_page_with(&server, &session, query, &format!("user:{ada} (ada)")).await;
    let rows = audit_rows(&logins);
    assert!(!rows.is_empty() && rows.iter().all(|row| row.contains("|auth.login|")), "{rows:?}");
    assert!(logins.text.contains("<option value=\"ok\" selected>"), "the form keeps the filter");
    assert!(logins.text.contains("href=\"/admin/audit.csv?action=auth.login&amp;actor=&amp;result=ok&amp;"));

    // The dates are UTC days, "until" included. The users were made on the day of the
    // first row's time (in the table, "YYYY-MM-DD hh:mm:ss").
    let created = audit_rows(&get(&server, "/admin/audit?action=user.create", &session).await);
    assert_eq!(created.len(), 2, "pat and ada: {created:?}");
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(&created[0].split('|').nth(1).unwrap()[..10], &format).unwrap();
    let (before, after) = (day.previous_day().unwrap(), day.next_day().unwrap());
    let on_day = |since: time::Date, until: time::Date| format!("action=user.create&since={since}&until={until}");
    assert_eq!(audit_rows(&get(&server, &format!("/admin/audit?{}", on_day(day, day)), &session).await), created);
    assert_eq!(audit_rows(&get(&server, &format!("/admin/audit?{}", on_day(before, after)), &session).await), created);
    assert!(audit_rows(&get(&server, &format!("/admin/audit?{}", on_day(after, after)), &session).await).is_empty());
    let before_day = format!("/admin/audit?{}", on_day(before, before));
    assert!(audit_rows(&get(&server, &before_day, &session).await).is_empty());

    // Bad filters: a 4xx page with the form kept and what to fix; never a 500.
    let cases = [
        ("since=2024-13-45", 422, "Since: enter a date as YYYY-MM-DD"),
        ("until=yesterday", 422, "Until: enter a date as YYYY-MM-DD"),
        ("since=2024-05-02&until=2024-05-01", 422, "Until: choose a day on or after"),
        ("result=maybe", 422, "Result: choose any, ok, denied or failed"),
        ("cursor=zzz", 422, "cursor: is not a cursor"),
    ];
    for (query, status, says) in cases {
        // Downloads start from the first event: they take no cursor.
        let paths = if query.starts_with("cursor") { &pages[..1] } else { &pages[..] };
        for path in paths {
            let bad = get(&server, &format!("{path}?action=auth.login&{query}"), &session).await;
            assert_eq!(bad.status, status, "{path}?{query}: {}", bad.text);
            assert!(bad.text.contains(says), "{says}: {}", bad.text);
            assert!(bad.text.contains("value=\"auth.login\""), "the form keeps what was entered");
            assert!(audit_rows(&bad).is_empty());
        }
    }

    // A filter value is escaped in the page and encoded in its links.
    let script = get(&server, "/admin/audit?actor=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22", &session).await;
    assert_eq!(script.status, 200, "{}", script.text);
    assert!(!script.text.contains("<script>alert"), "{}", script.text);
    assert!(script.text.contains("value=\"&#60;script&#62;alert(1)&#60;/script&#62;&#34;\""), "{}", script.text);
    assert!(script.text.contains("actor=%3Cscript%3Ealert%281%29%3C/script%3E%22&amp;"), "{}", script.text);

    // The downloads: the API's own, with the same filters.
    let csv = get(&server, "/admin/audit.csv?action=auth.login&actor=&result=&since=&until=", &session).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    let header = |page: &Page, name: &str| page.headers.get(name).unwrap().to_str().unwrap().to_string();
    assert!(header(&csv, "content-type").starts_with("text/csv"), "{:?}", csv.headers);
    assert_eq!(header(&csv, "content-disposition"), "attachment; filename=\"keyward-audit.csv\"");
    let mut lines = csv.text.lines();
    assert_eq!(lines.next(), Some("seq,at,realm,actor,action,target,client_ip,result,detail,hash"));
    let lines: Vec<&str> = lines.collect();
    assert!(!lines.is_empty() && lines.iter().all(|line| line.contains(",\"auth.login\",")), "{}", csv.text);
    assert_security_headers(&csv);
    let jsonl = get(&server, "/admin/audit.jsonl?action=auth.login&result=ok", &session).await;
    assert_eq!(jsonl.status, 200, "{}", jsonl.text);
    assert_eq!(header(&jsonl, "content-type"), "application/jsonl");
    assert_eq!(header(&jsonl, "content-disposition"), "attachment; filename=\"keyward-audit.jsonl\"");
    let events: Vec<serde_json::Value> = jsonl.text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(!events.is_empty(), "{}", jsonl.text);
    assert!(events.iter().all(|event| event["action"] == "auth.login" && event["result"] == "ok"), "{events:?}");

    // 100 per page; "Next page" keeps the filters and goes on where the page ended.
    for number in 0..100 {
        create_user(&server, &admin, &format!("user{number:03}")).await;
    }
    let first = get(&server, "/admin/audit?action=user.create&actor=&result=ok&since=&until=", &session).await;
    assert_eq!(audit_rows(&first).len(), 100);
    let next = attribute_after(&first.text, "<a href=\"/admin/audit?action=user.create&amp;").replace("&amp;", "&");
    assert!(next.starts_with("actor=&result=ok&since=&until=&order=newest&cursor="), "{next}");
    let second = get(&server, &format!("/admin/audit?action=user.create&{next}"), &session).await;
    let rest = audit_rows(&second);
    assert_eq!(rest.len(), 2, "102 users in all: {rest:?}");
    assert!(rest.iter().all(|row| row.contains("|user.create|")), "{rest:?}");
    // Newest first, the last page holds the first users made: pat and ada.
    assert!(seqs_of(&second).iter().all(|seq| seqs_of(&first).iter().all(|earlier| seq < earlier)));
    assert!(!second.text.contains(">Next page<"), "{}", second.text);
    assert!(second.text.contains(">First page<"), "{}", second.text);
}
on_each_store!(an_admin_reads_filters_and_downloads_the_audit_log_and_no_one_else_can);
