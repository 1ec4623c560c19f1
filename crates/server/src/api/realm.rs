//! The caller's realm policy for personal API keys. Admin only.

use crate::api::{audit_event, commit, require_admin};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use keyward_core::policy;
use proto::UserKeyPolicy;
use store::ChangeEntity;
use time::Duration;

fn policy_dto(policy: policy::UserKeyPolicy, tokens: policy::ServiceTokenPolicy) -> UserKeyPolicy {
    UserKeyPolicy {
        user_api_keys_allowed: policy.allowed,
        user_api_key_max_lifetime_days: policy.max_lifetime.whole_days(),
        service_token_max_lifetime_days: Some(tokens.max_lifetime.whole_days()),
    }
}

#[utoipa::path(get, path = "/api/v1/realm/policy", tag = "realm", responses((status = 200, body = UserKeyPolicy)))]
pub async fn get_policy(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<UserKeyPolicy>> {
    require_admin(&caller)?;
    let realm = state.realm(caller.realm_id).ok_or(ApiError::NotFound("realm"))?;
    Ok(Json(policy_dto(realm.user_key_policy, realm.service_token_policy)))
}

#[utoipa::path(put, path = "/api/v1/realm/policy", tag = "realm", request_body = UserKeyPolicy,
    responses((status = 200, body = UserKeyPolicy), (status = 422, body = proto::Problem)))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<UserKeyPolicy>,
) -> ApiResult<Json<UserKeyPolicy>> {
    require_admin(&caller)?;
    if !(1..=3650).contains(&body.user_api_key_max_lifetime_days) {
        return Err(ApiError::invalid("userApiKeyMaxLifetimeDays", "must be between 1 and 3650"));
    }
    if body.service_token_max_lifetime_days.is_some_and(|days| !(1..=3650).contains(&days)) {
        return Err(ApiError::invalid("serviceTokenMaxLifetimeDays", "must be between 1 and 3650"));
    }
    let realm = state.realm(caller.realm_id).ok_or(ApiError::NotFound("realm"))?;
    let policy = policy::UserKeyPolicy {
        allowed: body.user_api_keys_allowed,
        max_lifetime: Duration::days(body.user_api_key_max_lifetime_days),
    };
    let tokens = match body.service_token_max_lifetime_days {
        Some(days) => policy::ServiceTokenPolicy { max_lifetime: Duration::days(days) },
        None => realm.service_token_policy,
    };
    let mut mutation = state.store.begin().await?;
    mutation.set_user_key_policy(caller.realm_id, policy).await?;
    if body.service_token_max_lifetime_days.is_some() {
        mutation.set_service_token_policy(caller.realm_id, tokens).await?;
    }
    mutation.changed(ChangeEntity::Realm, caller.realm_id).await?;
    let detail = format!(
        "userApiKeysAllowed={} userApiKeyMaxLifetimeDays={} serviceTokenMaxLifetimeDays={}",
        body.user_api_keys_allowed,
        body.user_api_key_max_lifetime_days,
        tokens.max_lifetime.whole_days()
    );
    let event = audit_event(&caller, "realm.policy.update", format!("realm:{}", caller.realm_name), detail);
    commit(&state, mutation, event).await?;
    Ok(Json(policy_dto(policy, tokens)))
}
