//! Service accounts: automation principals (users of kind `service`) with named,
//! expiring, individually revocable `kws_` tokens. Managed by administrators only, and
//! never by a service account. The native routes live here; `compat::v4` answers the
//! platform clients' `/v4/serviceAccounts…` routes with the same functions.

use crate::api::{
    audit_event, commit, decode_cursor, new_public_id, next_cursor, owned_active_credential, page_limit, require_admin,
};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::{CredentialKind, PublicId, Secret, validate};
use proto::{
    CreateServiceAccount, CreateServiceToken, CreatedServiceToken, ExpiringQuery, Page, PageQuery, ServiceAccount,
    ServiceToken,
};
use store::{CredentialQuery, CredentialRow, NewCredential, NewUser, UserPatch, UserRow};
use time::{Duration, OffsetDateTime};

/// The `users.kind` of a service account.
pub const SERVICE_KIND: &str = "service";

/// Service accounts are managed by administrators (the admin role or an admin key),
/// and never by a service account, whatever its roles.
pub fn require_account_manager(caller: &Caller) -> ApiResult<()> {
    if caller.principal.as_ref().is_some_and(|principal| principal.kind == SERVICE_KIND) {
        return Err(ApiError::Forbidden(
            "Service accounts cannot manage service accounts; an administrator's key or an admin key can.".to_string(),
        ));
    }
    require_admin(caller)
}

/// Finds a service account of the caller's realm by its id (24 hex digits) or its
/// idpId (a UUID). Anything else, people included, is 404.
pub async fn load_account(state: &AppState, caller: &Caller, id: &str) -> ApiResult<UserRow> {
    load_account_in(state, caller.realm_id, id).await
}

/// The service account `id` (its id or idpId) of the realm `realm_id`.
pub async fn load_account_in(state: &AppState, realm_id: i64, id: &str) -> ApiResult<UserRow> {
    let found = if let Some(public_id) = PublicId::parse(id) {
        state.store.user_by_public_id(realm_id, public_id.as_str()).await
    } else if let Ok(idp_id) = uuid::Uuid::parse_str(id) {
        state.store.user_by_idp_id(realm_id, &idp_id.hyphenated().to_string()).await
    } else {
        Err(store::StoreError::NotFound)
    };
    match found {
        Ok(row) if row.kind == SERVICE_KIND => Ok(row),
        Ok(_) | Err(store::StoreError::NotFound) => Err(ApiError::NotFound("service account")),
        Err(other) => Err(other.into()),
    }
}

/// The idpId of a service account (every one has one).
pub fn idp_id(account: &UserRow) -> String {
    account.idp_id.clone().unwrap_or_default()
}

pub async fn create_account(state: &AppState, caller: &Caller, body: &CreateServiceAccount) -> ApiResult<UserRow> {
    require_account_manager(caller)?;
    validate::username(&body.username).map_err(|detail| ApiError::invalid("username", detail))?;
    validate::email(&body.email).map_err(|detail| ApiError::invalid("email", detail))?;
    let public_id = new_public_id();
    let idp_id = uuid::Uuid::new_v4().hyphenated().to_string();
    let mut mutation = state.store.begin().await?;
    let id = mutation
        .insert_user(&NewUser {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            kind: SERVICE_KIND,
            idp_id: Some(&idp_id),
            username: &body.username,
            email: &body.email,
            email_key: &validate::email_key(&body.email),
            first_name: "",
            last_name: "",
            avatar_url: None,
            attributes: &std::collections::BTreeMap::new(),
            now: OffsetDateTime::now_utc(),
        })
        .await?;
    let event = audit_event(
        caller,
        "service_account.create",
        format!("service_account:{public_id}"),
        format!("{} idpId={idp_id}", body.username),
    );
    commit(state, mutation, event).await?;
    Ok(state.store.user_by_id(id).await?)
}

pub async fn list_accounts(state: &AppState, caller: &Caller, after: i64, limit: i64) -> ApiResult<Vec<UserRow>> {
    require_account_manager(caller)?;
    Ok(state.store.list_users_of_kind(caller.realm_id, SERVICE_KIND, after, limit).await?)
}

/// Whether a token works right now: not invalidated, not expired, account active.
pub fn token_is_valid(token: &CredentialRow, account: &UserRow, now: OffsetDateTime) -> bool {
    token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now) && account.enabled
}

fn deactivated() -> ApiError {
    ApiError::Conflict {
        field: None,
        detail: "This service account is deactivated and gets no new tokens; activate it first.".to_string(),
    }
}

/// Issues a token for `account`. The secret is in the returned `Secret` only.
pub async fn issue_token(
    state: &AppState,
    caller: &Caller,
    account: &UserRow,
    body: &CreateServiceToken,
) -> ApiResult<(CredentialRow, Secret)> {
    crate::api::refuse_access_token_minting(caller)?;
    validate::object_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    validate::free_text(&body.description, validate::MAX_DESCRIPTION_CHARS)
        .map_err(|detail| ApiError::invalid("description", detail))?;
    if !account.enabled {
        return Err(deactivated());
    }
    let now = OffsetDateTime::now_utc();
    let requested = match (body.expires_at, body.lifetime_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("lifetimeDays", "give either expiresAt or lifetimeDays, not both"));
        }
        (None, Some(days)) if !(1..=3650).contains(&days) => {
            return Err(ApiError::invalid("lifetimeDays", "must be between 1 and 3650"));
        }
        (None, Some(days)) => Some(now + Duration::days(days)),
        (at, None) => at,
    };
    let realm = state.realm(caller.realm_id).ok_or(ApiError::NotFound("realm"))?;
    let field = if body.lifetime_days.is_some() { "lifetimeDays" } else { "expiresAt" };
    let expires_at = realm
        .service_token_policy
        .expiry_for_new_token(requested, now)
        .map_err(|error| ApiError::invalid(field, error.to_string()))?;
    let secret = Secret::generate(CredentialKind::ServiceAccountToken, &mut rand_core::UnwrapErr(rand_core::OsRng));
    let public_id = new_public_id();
    let mut mutation = state.store.begin().await?;
    // Checked again inside the transaction, which is serialised with every other
    // mutation: a deactivation that committed since the check above wins.
    match mutation.user_enabled(account.id).await? {
        Some(true) => {}
        Some(false) => return Err(deactivated()),
        None => return Err(ApiError::NotFound("service account")),
    }
    // Names are unique among valid tokens: an expired token gives its name up.
    mutation.retire_expired_named(account.id, CredentialKind::ServiceAccountToken, &body.name, now).await?;
    let id = mutation
        .insert_credential(&NewCredential {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            kind: CredentialKind::ServiceAccountToken,
            owner_id: Some(account.id),
            name: &body.name,
            description: &body.description,
            audience: None,
            secret_prefix: &secret.display_prefix(),
            digest: state.pepper.digest(secret.expose()),
            created_at: now,
            created_by: &caller.actor(),
            expires_at: Some(expires_at),
        })
        .await
        .map_err(|error| match error {
            store::StoreError::Conflict { .. } => ApiError::Conflict {
                field: Some("name".to_string()),
                detail: format!("This service account already has a valid token named {:?}.", body.name),
            },
            other => other.into(),
        })?;
    let event = audit_event(
        caller,
        "service_token.create",
        format!("service_token:{public_id}"),
        format!("service_account:{} {}", account.public_id, body.name),
    );
    commit(state, mutation, event).await?;
    Ok((state.store.credential_by_id(id).await?, secret))
}

/// Every token the account has had, oldest first, invalidated ones included.
pub async fn tokens_of(state: &AppState, account: &UserRow) -> ApiResult<Vec<CredentialRow>> {
    Ok(state
        .store
        .list_credentials(CredentialQuery {
            realm_id: account.realm_id,
            kind: CredentialKind::ServiceAccountToken,
            owner_id: Some(account.id),
            include_revoked: true,
        })
        .await?)
}

pub async fn invalidate(state: &AppState, caller: &Caller, account: &UserRow, token: &CredentialRow) -> ApiResult<()> {
    let mut mutation = state.store.begin().await?;
    mutation.revoke_credential(token.id, OffsetDateTime::now_utc()).await?;
    let event = audit_event(
        caller,
        "service_token.invalidate",
        format!("service_token:{}", token.public_id),
        format!("service_account:{} {}", account.public_id, token.name),
    );
    commit(state, mutation, event).await
}

/// Deactivating invalidates every token at once, in the same transaction; activating
/// again revives none of them.
pub async fn set_active(state: &AppState, caller: &Caller, account: &UserRow, active: bool) -> ApiResult<UserRow> {
    let now = OffsetDateTime::now_utc();
    let mut mutation = state.store.begin().await?;
    mutation.update_user(account.id, &UserPatch { enabled: Some(active), ..UserPatch::default() }, now).await?;
    let (action, detail) = if active {
        ("service_account.activate", account.username.clone())
    } else {
        let invalidated = mutation.revoke_owned(account.id, CredentialKind::ServiceAccountToken, now).await?;
        ("service_account.deactivate", format!("{} tokens invalidated: {invalidated}", account.username))
    };
    let event = audit_event(caller, action, format!("service_account:{}", account.public_id), detail);
    commit(state, mutation, event).await?;
    Ok(state.store.user_by_id(account.id).await?)
}

/// Parses `30d`, `12h` or `90m`.
fn parse_window(text: &str) -> Option<Duration> {
    let (number, unit) = [("d", Duration::DAY), ("h", Duration::HOUR), ("m", Duration::MINUTE)]
        .into_iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|number| (number, unit)))?;
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let window = unit.checked_mul(number.parse::<i32>().ok()?)?;
    (window <= Duration::days(3650)).then_some(window)
}

// ---- wire forms ----

pub fn account_dto(state: &AppState, row: UserRow) -> ServiceAccount {
    let roles = state.index.principal(row.id).map(|principal| principal.roles.names()).unwrap_or_default();
    ServiceAccount {
        idp_id: idp_id(&row),
        id: row.public_id,
        username: row.username,
        email: row.email,
        enabled: row.enabled,
        roles,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

pub fn token_dto(token: CredentialRow, account: &UserRow, now: OffsetDateTime) -> ServiceToken {
    ServiceToken {
        is_valid: token_is_valid(&token, account, now),
        id: token.public_id,
        name: token.name,
        description: token.description,
        prefix: token.secret_prefix,
        service_account_id: account.public_id.clone(),
        service_account_idp_id: idp_id(account),
        service_account_username: account.username.clone(),
        created_at: token.created_at,
        created_by: token.created_by,
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
        invalidated_at: token.revoked_at,
    }
}

// ---- native routes ----

#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "service-accounts", request_body = CreateServiceAccount,
    responses((status = 201, body = ServiceAccount), (status = 403, body = proto::Problem), (status = 409, body = proto::Problem),
        (status = 422, body = proto::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateServiceAccount>,
) -> ApiResult<(StatusCode, Json<ServiceAccount>)> {
    let row = create_account(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, Json(account_dto(&state, row))))
}

#[utoipa::path(get, path = "/api/v1/service-accounts", tag = "service-accounts", params(PageQuery),
    responses((status = 200, body = Page<ServiceAccount>), (status = 403, body = proto::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ServiceAccount>>> {
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let rows = list_accounts(&state, &caller, after, limit).await?;
    let count = rows.len();
    let last = rows.last().map(|row| row.id);
    let items = rows.into_iter().map(|row| account_dto(&state, row)).collect();
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{id}", tag = "service-accounts",
    params(("id" = String, Path, description = "The account's id or idpId")),
    responses((status = 200, body = ServiceAccount), (status = 404, body = proto::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ServiceAccount>> {
    require_account_manager(&caller)?;
    let row = load_account(&state, &caller, &id).await?;
    Ok(Json(account_dto(&state, row)))
}

async fn activation(state: AppState, caller: Caller, id: String, active: bool) -> ApiResult<Json<ServiceAccount>> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &id).await?;
    let row = set_active(&state, &caller, &account, active).await?;
    Ok(Json(account_dto(&state, row)))
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/deactivate", tag = "service-accounts",
    params(("id" = String, Path)), responses((status = 200, body = ServiceAccount), (status = 404, body = proto::Problem)))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ServiceAccount>> {
    activation(state, caller, id, false).await
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/activate", tag = "service-accounts",
    params(("id" = String, Path)), responses((status = 200, body = ServiceAccount), (status = 404, body = proto::Problem)))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ServiceAccount>> {
    activation(state, caller, id, true).await
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/tokens", tag = "service-accounts",
    params(("id" = String, Path)), request_body = CreateServiceToken,
    responses((status = 201, body = CreatedServiceToken), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem),
        (status = 422, body = proto::Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateServiceToken>,
) -> ApiResult<(StatusCode, Json<CreatedServiceToken>)> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &id).await?;
    let (row, secret) = issue_token(&state, &caller, &account, &body).await?;
    let token = token_dto(row, &account, OffsetDateTime::now_utc());
    Ok((StatusCode::CREATED, Json(CreatedServiceToken { token, secret: secret.expose().to_string() })))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{id}/tokens", tag = "service-accounts",
    params(("id" = String, Path)), responses((status = 200, body = Vec<ServiceToken>), (status = 404, body = proto::Problem)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ServiceToken>>> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &id).await?;
    let now = OffsetDateTime::now_utc();
    let tokens = tokens_of(&state, &account).await?;
    Ok(Json(tokens.into_iter().map(|token| token_dto(token, &account, now)).collect()))
}

#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}/tokens/{tokenId}", tag = "service-accounts",
    params(("id" = String, Path), ("tokenId" = String, Path)),
    responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn invalidate_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, token_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &id).await?;
    let kind = CredentialKind::ServiceAccountToken;
    let token = owned_active_credential(&state, &caller, account.id, kind, &token_id, "token").await?;
    invalidate(&state, &caller, &account, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/service-accounts/tokens", tag = "service-accounts", params(ExpiringQuery),
    responses((status = 200, body = Vec<ServiceToken>), (status = 403, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn expiring_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ExpiringQuery>,
) -> ApiResult<Json<Vec<ServiceToken>>> {
    require_account_manager(&caller)?;
    let window = parse_window(&query.expiring_within).ok_or_else(|| {
        ApiError::invalid("expiringWithin", "must be a duration such as 30d, 12h or 90m, at most 3650d")
    })?;
    let now = OffsetDateTime::now_utc();
    let rows = state
        .store
        .credentials_expiring(caller.realm_id, CredentialKind::ServiceAccountToken, now, now + window)
        .await?;
    let mut accounts: std::collections::HashMap<i64, UserRow> = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(owner_id) = row.owner_id else { continue };
        let account = match accounts.entry(owner_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(state.store.user_by_id(owner_id).await?),
        };
        items.push(token_dto(row, account, now));
    }
    Ok(Json(items))
}

#[cfg(test)]
mod tests {
    use super::parse_window;
    use time::Duration;

    #[test]
    fn windows_take_days_hours_and_minutes() {
        assert_eq!(parse_window("30d"), Some(Duration::days(30)));
        assert_eq!(parse_window("12h"), Some(Duration::hours(12)));
        assert_eq!(parse_window("90m"), Some(Duration::minutes(90)));
        for bad in ["", "d", "30", "30w", "-1d", "+1d", "3651d", "1.5d", "99999999999999999999d", "3é"] {
            assert_eq!(parse_window(bad), None, "{bad}");
        }
    }
}
