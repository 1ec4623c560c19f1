//! `/api/v1/realms/{realm}/keys`: a realm's signing keys, and rotation. Admin keys only:
//! those of the default realm for any realm, others for their own realm alone (any
//! other realm answers 404, as if it did not exist).

use crate::api::realms::visible_realm;
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::oidc::keys::{DEFAULT_PREPUBLISH, Rotation, check_rotation, default_grace, rotate};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::jwt::SigningAlg;
use proto::oidc::{RotateKeys, SigningKey};
use time::{Duration, OffsetDateTime};

fn key_dto(row: store::SigningKeyRow, signing_kid: Option<&str>) -> SigningKey {
    SigningKey {
        signing: signing_kid == Some(row.kid.as_str()),
        kid: row.kid,
        alg: row.alg,
        created_at: row.created_at,
        activates_at: row.activates_at,
        removes_at: row.removes_at,
    }
}

async fn key_list(state: &AppState, realm: &store::RealmRow) -> ApiResult<Vec<SigningKey>> {
    crate::oidc::keys::ensure_realm_key(state, realm.id, &realm.name)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let now = OffsetDateTime::now_utc();
    let signing = state.keys.signing_key(realm.id, now.unix_timestamp());
    let rows = state.store.realm_signing_keys(realm.id, now).await?;
    Ok(rows.into_iter().map(|row| key_dto(row, signing.as_ref().map(|key| key.kid.as_str()))).collect())
}

#[utoipa::path(get, path = "/api/v1/realms/{name}/keys", tag = "realms",
    responses((status = 200, body = [SigningKey]), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(realm): ApiPath<String>,
) -> ApiResult<Json<Vec<SigningKey>>> {
    let realm = visible_realm(&state, &caller, &realm).await?;
    Ok(Json(key_list(&state, &realm).await?))
}

/// Rotates the realm's key: the new key is in JWKS at once and signs after
/// `prepublishSeconds`; older keys leave JWKS `graceSeconds` after that.
#[utoipa::path(post, path = "/api/v1/realms/{name}/keys/rotate", tag = "realms", request_body = RotateKeys,
    responses((status = 201, body = [SigningKey]), (status = 403, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn rotate_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(realm): ApiPath<String>,
    ApiJson(body): ApiJson<RotateKeys>,
) -> ApiResult<(StatusCode, Json<Vec<SigningKey>>)> {
    let realm = visible_realm(&state, &caller, &realm).await?;
    let alg = match body.alg.as_deref() {
        Some(text) => {
            SigningAlg::parse(text).ok_or_else(|| ApiError::invalid("alg", "must be ES256, RS256 or EdDSA"))?
        }
        None => realm.token_settings.signing_alg,
    };
    let rotation = Rotation {
        alg,
        prepublish: body.prepublish_seconds.map_or(DEFAULT_PREPUBLISH, Duration::seconds),
        grace: body.grace_seconds.map_or_else(|| default_grace(&realm), Duration::seconds),
    };
    check_rotation(&realm, &rotation).map_err(|detail| {
        let field = if detail.starts_with("prepublish") { "prepublishSeconds" } else { "graceSeconds" };
        ApiError::invalid(field, detail)
    })?;
    let kid = rotate(&state.store, &state.sealer, &realm, rotation, &caller.actor())
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    crate::feed::catch_up(&state).await?;
    tracing::info!(realm = %realm.name, %kid, "signing key rotated");
    Ok((StatusCode::CREATED, Json(key_list(&state, &realm).await?)))
}
