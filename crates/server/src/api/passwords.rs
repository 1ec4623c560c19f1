//! People's passwords: an administrator sets one, a person changes their own, and a new
//! user may be created with one. Service accounts have none. The check at login is
//! `crate::login::password_login`; the hash never leaves the store except to be checked.

use crate::api::service_accounts::SERVICE_KIND;
use crate::api::users::{caller_user, load_user};
use crate::api::{audit_event, commit, require_admin};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::login;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::password;
use proto::{ChangeMyPassword, SetPassword};
use store::{Mutation, NewAuditEvent, UserRow};
use time::OffsetDateTime;

/// Why a service account is refused on every password route.
pub const SERVICE_ACCOUNT_HAS_NO_PASSWORD: &str = "Service accounts have no password: they authenticate with \
     their kws_ tokens, and cannot log in to the portal or the CLI.";

fn refuse_service_account(row: &UserRow) -> ApiResult<()> {
    if row.kind == SERVICE_KIND {
        return Err(ApiError::Forbidden(SERVICE_ACCOUNT_HAS_NO_PASSWORD.to_string()));
    }
    Ok(())
}

/// Checks a new password against the rule (a 422 naming `field`) and hashes it.
pub async fn checked_hash(new_password: &str, username: &str, field: &str) -> ApiResult<String> {
    password::check_rule(new_password, username).map_err(|detail| ApiError::invalid(field, detail))?;
    login::hash_password(new_password).await.map_err(ApiError::Internal)
}

/// Sets a new user's first password inside the mutation that creates them, and returns
/// the audit event for it.
pub async fn set_on_create(
    mutation: &mut Mutation,
    caller: &Caller,
    user_id: i64,
    public_id: &str,
    hash: &str,
    now: OffsetDateTime,
) -> ApiResult<NewAuditEvent> {
    mutation.set_password_hash(user_id, hash, now).await?;
    Ok(audit_event(caller, "user.password.set", format!("user:{public_id}"), "set at creation".to_string()))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = String, Path)),
    request_body = SetPassword,
    responses((status = 204, description = "The password is set"),
        (status = 403, body = proto::Problem, description = "Not an administrator, or the user is a service account"),
        (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    require_admin(&caller)?;
    // A password is a credential that works from anywhere, for as long as it is not changed.
    crate::api::refuse_access_token_minting(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    refuse_service_account(&row)?;
    let hash = checked_hash(&body.password, &row.username, "password").await?;
    let mut mutation = state.store.begin().await?;
    mutation.set_password_hash(row.id, &hash, OffsetDateTime::now_utc()).await?;
    let event = audit_event(&caller, "user.password.set", format!("user:{}", row.public_id), row.username.clone());
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/users/me/password", tag = "users", request_body = ChangeMyPassword,
    responses((status = 204, description = "The password is changed"),
        (status = 403, body = proto::Problem,
            description = "Wrong current password, an admin key, or a service account"),
        (status = 409, body = proto::Problem, description = "The password changed meanwhile"),
        (status = 422, body = proto::Problem)))]
pub async fn change_my_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangeMyPassword>,
) -> ApiResult<StatusCode> {
    let row = caller_user(&state, &caller).await?;
    refuse_service_account(&row)?;
    password::check_rule(&body.new_password, &row.username)
        .map_err(|detail| ApiError::invalid("newPassword", detail))?;
    let current = state.store.password_hash(row.id).await?;
    // A first password comes from an administrator: otherwise anyone holding one of the
    // user's API keys could turn it into a portal login.
    let Some(stored) = &current else {
        return Err(ApiError::Forbidden(
            "You have no password yet; an administrator sets the first one (PUT /api/v1/users/{id}/password), \
             so that an API key alone can never become a login."
                .to_string(),
        ));
    };
    check_current(&state, &caller, &row, body.current_password.as_deref(), stored).await?;
    let hash = checked_hash(&body.new_password, &row.username, "newPassword").await?;
    let mut mutation = state.store.begin().await?;
    if !mutation.replace_password_hash(row.id, current.as_deref(), &hash, OffsetDateTime::now_utc()).await? {
        return Err(ApiError::Conflict {
            field: Some("currentPassword".to_string()),
            detail: "Your password was changed meanwhile; try again with the one now in use.".to_string(),
        });
    }
    let event = audit_event(&caller, "user.password.change", format!("user:{}", row.public_id), row.username.clone());
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A wrong current password is a failed authentication: it counts against the address
/// in the throttle and is audited, like a refused credential.
async fn check_current(
    state: &AppState,
    caller: &Caller,
    row: &UserRow,
    given: Option<&str>,
    stored: &str,
) -> ApiResult<()> {
    let given = given.ok_or_else(|| {
        ApiError::invalid("currentPassword", "is required: your account has a password; send the one in use")
    })?;
    // Counted as running until its failure (if any) is recorded, as logins are: guesses
    // sent at once cannot all be checked before the first one fails.
    let _admission = state
        .throttle
        .admit(caller.client_ip, OffsetDateTime::now_utc().unix_timestamp())
        .map_err(|retry_after_secs| ApiError::Throttled { retry_after_secs })?;
    let verified = login::verify_password(given, Some(stored.to_string()))
        .await
        .ok_or_else(|| ApiError::Internal("the password check did not run".to_string()))?;
    if verified {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    state.throttle.record_failure(caller.client_ip, now.unix_timestamp());
    crate::metrics::authentication("password", "refused");
    let mut event = audit_event(caller, "user.password.change", format!("user:{}", row.public_id), String::new());
    event.result = "denied".to_string();
    event.detail = "wrong current password".to_string();
    state.queue_audit(event);
    Err(ApiError::Forbidden(
        "currentPassword is not your current password; send the one in use (repeated failures are throttled)."
            .to_string(),
    ))
}
