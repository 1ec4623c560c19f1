//! The one password check. The portal's login page and the token endpoint's `password`
//! grant call [`password_login`]; nothing else verifies a password for a login.
//!
//! Argon2id costs about 19 MiB and tens of milliseconds of a core per check, so checks
//! run on the blocking pool, at most one per core at a time: a flood of guesses queues
//! instead of taking every core and gigabytes of memory.

use crate::api::service_accounts::SERVICE_KIND;
use crate::index::PrincipalInfo;
use crate::state::AppState;
use keyward_core::password;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use store::NewAuditEvent;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Why a password login was refused. [`LoginRefusal::message`] is what the person sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Unknown username, wrong password, or an account without a password: one answer
    /// (and about the same time) for all three, so it tells nobody which.
    InvalidCredentials,
    /// The username is a service account's. Service accounts never log in with a
    /// password; this is decided before any password is checked. Answer 403.
    ServiceAccount,
    /// The password was right, but the account or its realm is disabled.
    Disabled,
    /// Too many failed authentications from this address; nothing was checked.
    Throttled { retry_after_secs: u64 },
    /// The check could not run (the database did not answer); nothing is known about
    /// the credentials. Answer 503, or OAuth's `temporarily_unavailable`.
    Unavailable,
}

impl LoginRefusal {
    /// The message for the person logging in.
    pub fn message(&self) -> String {
        match self {
            LoginRefusal::InvalidCredentials => "invalid username or password".to_string(),
            LoginRefusal::ServiceAccount => "service accounts cannot log in with a password, to the portal or the \
                                             CLI; call the API with one of the account's kws_ tokens"
                .to_string(),
            LoginRefusal::Disabled => "this account is disabled; ask an administrator to enable it".to_string(),
            LoginRefusal::Throttled { retry_after_secs } => {
                format!("too many failed logins from your address; retry in {retry_after_secs} s")
            }
            LoginRefusal::Unavailable => "keyward cannot check passwords right now; retry shortly".to_string(),
        }
    }
}

/// Checks `username` and `password` in the realm and answers who logged in.
///
/// Failures count against the client address in the same throttle as refused API
/// credentials, and every outcome, success or refusal, is queued to the audit log as
/// `auth.login` (never with the password; the attempted name only when it is a user's).
pub async fn password_login(
    state: &AppState,
    realm_id: i64,
    username: &str,
    password: &str,
    client_ip: IpAddr,
) -> Result<Arc<PrincipalInfo>, LoginRefusal> {
    let now = OffsetDateTime::now_utc();
    let attempt = Attempt { state, realm_id, client_ip, now };
    // Counted as running until this function returns, after its failure (if any) is
    // recorded: attempts sent at once cannot all pass before the first one fails.
    let _admission = match state.throttle.admit(client_ip, now.unix_timestamp()) {
        Ok(admission) => admission,
        Err(retry_after_secs) => {
            return Err(attempt.refused(LoginRefusal::Throttled { retry_after_secs }, None, "throttled"));
        }
    };
    // Usernames are lower case; people type them as they like (Keycloak does the same).
    let row = match state.store.password_login_row(realm_id, &username.to_lowercase()).await {
        Ok(row) => row,
        Err(error) => {
            tracing::error!(%error, "password login could not read the user");
            return Err(LoginRefusal::Unavailable);
        }
    };
    let public_id = row.as_ref().map(|row| row.public_id.as_str());
    if row.as_ref().is_some_and(|row| row.kind == SERVICE_KIND) {
        return Err(attempt.refused(LoginRefusal::ServiceAccount, public_id, "service account"));
    }
    let stored = row.as_ref().and_then(|row| row.password_hash.clone());
    let reason = match (&row, &stored) {
        (None, _) => "unknown username",
        (Some(_), None) => "no password set",
        (Some(_), Some(_)) => "wrong password",
    };
    let verified = verify_password(password, stored).await.ok_or(LoginRefusal::Unavailable)?;
    let row = match &row {
        Some(row) if verified => row,
        _ => return Err(attempt.refused(LoginRefusal::InvalidCredentials, public_id, reason)),
    };
    if !row.enabled {
        return Err(attempt.refused(LoginRefusal::Disabled, public_id, "account disabled"));
    }
    if !state.realm(realm_id).is_some_and(|realm| realm.enabled) {
        return Err(attempt.refused(LoginRefusal::Disabled, public_id, "realm disabled"));
    }
    let principal = principal(state, row.user_id).await.ok_or(LoginRefusal::Unavailable)?;
    attempt.succeeded(&principal);
    Ok(principal)
}

/// The principal as the index knows it; one created on another node a moment ago may
/// not have reached this node's index yet, so the store answers then.
async fn principal(state: &AppState, user_id: i64) -> Option<Arc<PrincipalInfo>> {
    if let Some(principal) = state.index.principal(user_id) {
        return Some(principal);
    }
    match state.store.load_principal(user_id).await {
        Ok(principal) => principal.map(|row| Arc::new(PrincipalInfo::from(row))),
        Err(error) => {
            tracing::error!(%error, "password login could not load the principal");
            None
        }
    }
}

/// One login attempt, for its audit event, log line, metric and throttle count.
struct Attempt<'a> {
    state: &'a AppState,
    realm_id: i64,
    client_ip: IpAddr,
    now: OffsetDateTime,
}

impl Attempt<'_> {
    fn realm_name(&self) -> String {
        self.state
            .realm(self.realm_id)
            .map_or_else(|| self.state.config.default_realm.clone(), |realm| realm.name.clone())
    }

    /// Counts and audits a refusal, and hands it back.
    /// `public_id` is the user's when the username named one; the attempted name itself
    /// is never recorded (people type passwords into the username field).
    fn refused(&self, refusal: LoginRefusal, public_id: Option<&str>, reason: &str) -> LoginRefusal {
        let target = public_id.map_or_else(|| "user".to_string(), |public_id| format!("user:{public_id}"));
        if let LoginRefusal::Throttled { .. } = refusal {
            crate::metrics::authentication("password", "throttled");
        } else {
            crate::metrics::authentication("password", "refused");
            self.state.throttle.record_failure(self.client_ip, self.now.unix_timestamp());
        }
        tracing::info!(reason, client_ip = %self.client_ip, target, "password login refused");
        self.state.queue_audit(NewAuditEvent {
            realm: self.realm_name(),
            at: self.now,
            actor: "anonymous".to_string(),
            action: "auth.login".to_string(),
            target,
            client_ip: self.client_ip.to_string(),
            result: "denied".to_string(),
            detail: reason.to_string(),
        });
        refusal
    }

    fn succeeded(&self, principal: &PrincipalInfo) {
        crate::metrics::authentication("password", "ok");
        let actor = format!("user:{} ({})", principal.public_id, principal.username);
        self.state.queue_audit(NewAuditEvent {
            realm: self.realm_name(),
            at: self.now,
            actor,
            action: "auth.login".to_string(),
            target: format!("user:{}", principal.public_id),
            client_ip: self.client_ip.to_string(),
            result: "ok".to_string(),
            detail: "password".to_string(),
        });
    }
}

/// One argon2 computation per core at a time.
static ARGON2_SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(2))
});

/// Runs `work` on the blocking pool once a slot is free; `None` if it could not run.
async fn on_argon2_slot<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _slot = ARGON2_SLOTS.acquire().await.ok()?;
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(%error, "an argon2 task failed");
            None
        }
    }
}

/// Whether `password` matches `stored`, checked off the async workers (see
/// [`password::verify`]: no stored hash costs the same and answers false). `None` when
/// the check could not run.
pub async fn verify_password(password: &str, stored: Option<String>) -> Option<bool> {
    let password = Zeroizing::new(password.to_string());
    on_argon2_slot(move || password::verify(&password, stored.as_deref())).await
}

/// Hashes a new password off the async workers. The caller has checked the rule.
pub async fn hash_password(password: &str) -> Result<String, String> {
    let password = Zeroizing::new(password.to_string());
    let hashed = on_argon2_slot(move || password::hash(&password, &mut rand_core::UnwrapErr(rand_core::OsRng))).await;
    match hashed {
        Some(Ok(hash)) => Ok(hash),
        Some(Err(error)) => Err(error.to_string()),
        None => Err("the hashing task did not finish".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use keyward_core::MasterKey;
    use std::time::Duration;
    use store::{AuditFilter, NewUser, Store};

    const PASSWORD: &str = "correct horse battery";

    struct Fixture {
        _dir: tempfile::TempDir,
        state: AppState,
        realm_id: i64,
    }

    /// A realm with a person who has a password (`pat`), one who has none (`nopass`), a
    /// disabled person with a password (`gone`), and a service account (`robot`) that
    /// was given a password hash behind the API's back.
    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("keyward.db").display());
        let master = MasterKey::from_bytes([7; 32]);
        let store = Store::connect(&url).await.unwrap().with_audit_key(master.audit_key());
        store.migrate().await.unwrap();
        let now = OffsetDateTime::now_utc();
        let (realm, _) = store.ensure_realm("default", now).await.unwrap();
        let hash = password::hash(PASSWORD, &mut rand_core::UnwrapErr(rand_core::OsRng)).unwrap();
        let mut mutation = store.begin().await.unwrap();
        for (index, (username, kind, with_password, enabled)) in [
            ("pat", "user", true, true),
            ("nopass", "user", false, true),
            ("gone", "user", true, false),
            ("robot", SERVICE_KIND, true, true),
        ]
        .into_iter()
        .enumerate()
        {
            let public_id = format!("{index:024x}");
            let email = format!("{username}@example.com");
            let id = mutation
                .insert_user(&NewUser {
                    public_id: &public_id,
                    realm_id: realm.id,
                    kind,
                    idp_id: None,
                    username,
                    email: &email,
                    email_key: &email,
                    first_name: "",
                    last_name: "",
                    avatar_url: None,
                    attributes: &std::collections::BTreeMap::new(),
                    now,
                })
                .await
                .unwrap();
            if with_password {
                mutation.set_password_hash(id, &hash, now).await.unwrap();
            }
            if !enabled {
                let patch = store::UserPatch { enabled: Some(false), ..Default::default() };
                mutation.update_user(id, &patch, now).await.unwrap();
            }
        }
        mutation.commit().await.unwrap();
        let config = ServerConfig { auth_failures_per_minute: 1000, ..ServerConfig::default() };
        let state = AppState::load(store, &master, config).await.unwrap();
        state.spawn_background();
        Fixture { _dir: dir, state, realm_id: realm.id }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    /// The `auth.login` events written so far, as (result, target, detail).
    async fn login_events(state: &AppState, at_least: usize) -> Vec<(String, String, String)> {
        let filter = AuditFilter {
            realm: "default".to_string(),
            after_seq: 0,
            newest_first: false,
            action: Some("auth.login".to_string()),
            actor: None,
            result: None,
            since: None,
            until: None,
            limit: 1000,
        };
        for _ in 0..100 {
            let events = state.store.list_audit(&filter).await.unwrap();
            if events.len() >= at_least {
                return events.into_iter().map(|event| (event.result, event.target, event.detail)).collect();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {at_least} auth.login events were written");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_right_password_logs_a_person_in_and_is_audited() {
        let fixture = fixture().await;
        let principal = password_login(&fixture.state, fixture.realm_id, "Pat", PASSWORD, ip(1)).await.unwrap();
        assert_eq!(principal.username, "pat", "usernames are matched in any case");
        assert_eq!(principal.public_id, format!("{:024x}", 0));
        let events = login_events(&fixture.state, 1).await;
        assert_eq!(events, [("ok".to_string(), format!("user:{:024x}", 0), "password".to_string())]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_user_wrong_password_and_no_password_get_one_answer() {
        let fixture = fixture().await;
        let (state, realm_id) = (&fixture.state, fixture.realm_id);
        for (username, given) in [("nobody", PASSWORD), ("pat", "wrong horse battery"), ("nopass", PASSWORD)] {
            let refused = password_login(state, realm_id, username, given, ip(2)).await;
            assert_eq!(refused.err(), Some(LoginRefusal::InvalidCredentials), "{username}");
        }
        // A username from another realm names nobody here.
        let refused = password_login(state, realm_id + 1, "pat", PASSWORD, ip(2)).await;
        assert_eq!(refused.err(), Some(LoginRefusal::InvalidCredentials));
        let events = login_events(state, 4).await;
        let details: Vec<&str> = events.iter().map(|(_, _, detail)| detail.as_str()).collect();
        // The unknown realm's refusal is audited under the default realm.
        assert_eq!(details, ["unknown username", "wrong password", "no password set", "unknown username"]);
        assert!(events.iter().all(|(result, _, _)| result == "denied"));
        // The attempted name is not recorded when it names nobody.
        assert_eq!(events[0].1, "user");
        assert!(events.iter().all(|event| !format!("{event:?}").contains("horse")), "never the password");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_service_account_is_refused_before_any_password_check() {
        let fixture = fixture().await;
        // Even with the hash it was given behind the API's back and the right password.
        let refused = password_login(&fixture.state, fixture.realm_id, "robot", PASSWORD, ip(3)).await;
        assert_eq!(refused.err(), Some(LoginRefusal::ServiceAccount));
        let message = LoginRefusal::ServiceAccount.message();
        assert!(message.contains("service accounts cannot log in") && message.contains("kws_"), "{message}");
        let events = login_events(&fixture.state, 1).await;
        assert_eq!(events[0], ("denied".to_string(), format!("user:{:024x}", 3), "service account".to_string()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disabled_account_is_named_only_to_whoever_knows_its_password() {
        let fixture = fixture().await;
        let (state, realm_id) = (&fixture.state, fixture.realm_id);
        let wrong = password_login(state, realm_id, "gone", "wrong horse battery", ip(4)).await;
        assert_eq!(wrong.err(), Some(LoginRefusal::InvalidCredentials));
        let right = password_login(state, realm_id, "gone", PASSWORD, ip(4)).await;
        assert_eq!(right.err(), Some(LoginRefusal::Disabled));
        // A disabled realm refuses its people too.
        let mut realm = state.store.realm_by_id(realm_id).await.unwrap();
        realm.enabled = false;
        state.set_realm(realm);
        let refused = password_login(state, realm_id, "pat", PASSWORD, ip(4)).await;
        assert_eq!(refused.err(), Some(LoginRefusal::Disabled));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_count_in_the_throttle_that_guards_api_credentials() {
        let fixture = fixture().await;
        let (state, realm_id) = (&fixture.state, fixture.realm_id);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for _ in 0..999 {
            state.throttle.record_failure(ip(5), now);
        }
        let last = password_login(state, realm_id, "pat", "wrong horse battery", ip(5)).await;
        assert_eq!(last.err(), Some(LoginRefusal::InvalidCredentials));
        // Past the limit even the right password is not checked.
        match password_login(state, realm_id, "pat", PASSWORD, ip(5)).await {
            Err(LoginRefusal::Throttled { retry_after_secs }) => assert!((1..=60).contains(&retry_after_secs)),
            other => panic!("expected throttling, got {other:?}"),
        }
        assert!(state.throttle.retry_after(ip(6), now).is_none(), "other addresses are not affected");
        assert!(password_login(state, realm_id, "pat", PASSWORD, ip(6)).await.is_ok());
        let events = login_events(state, 3).await;
        assert_eq!(events[1].2, "throttled");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guesses_sent_at_once_get_no_more_checks_than_the_limit_leaves() {
        let fixture = fixture().await;
        let (state, realm_id) = (&fixture.state, fixture.realm_id);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for _ in 0..990 {
            state.throttle.record_failure(ip(7), now);
        }
        // 50 guesses at once: before any has failed, only the 10 the limit leaves are checked.
        let mut guesses = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let state = state.clone();
            guesses.spawn(async move { password_login(&state, realm_id, "pat", "wrong horse battery", ip(7)).await });
        }
        let answers: Vec<_> = guesses.join_all().await;
        let checked = answers.iter().filter(|answer| answer.as_ref().err() == Some(&LoginRefusal::InvalidCredentials));
        assert_eq!(checked.count(), 10);
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer, Err(LoginRefusal::InvalidCredentials | LoginRefusal::Throttled { .. })))
        );
        match password_login(state, realm_id, "pat", PASSWORD, ip(7)).await {
            Err(LoginRefusal::Throttled { retry_after_secs }) => assert!(retry_after_secs > 1),
            other => panic!("the limit is used up: {other:?}"),
        }
    }

    #[test]
    fn every_refusal_says_what_happened() {
        assert_eq!(LoginRefusal::InvalidCredentials.message(), "invalid username or password");
        assert!(LoginRefusal::Disabled.message().contains("disabled"));
        assert!(LoginRefusal::Throttled { retry_after_secs: 7 }.message().contains("retry in 7 s"));
        assert!(LoginRefusal::Unavailable.message().contains("retry"));
    }
}
