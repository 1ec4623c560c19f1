//! `/api/v1/realms/{name}/clients` and `/api/v1/realms/{name}/claim-mappers`: registered
//! OAuth clients and the realm's claim mappers. Admin keys, with the realms API's
//! visibility rule. A client's secret (`kwc_…`) is shown once, at creation or renewal.

use crate::api::realms::visible_realm;
use crate::api::service_accounts::load_account_in;
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::oidc::clients::{mapper_from_dto, parse_mappers};
use crate::oidc::endpoints::{GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::{CredentialKind, Secret};
use proto::oidc::{ClaimMapper, Client, ClientWithSecret, CreateClient, UpdateClient};
use store::{ClientRow, ClientSettings, NewAuditEvent, RealmRow};
use time::OffsetDateTime;

fn check_client_id(client_id: &str) -> ApiResult<()> {
    let ok = (1..=64).contains(&client_id.len())
        && client_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(ApiError::invalid("clientId", "must be 1–64 characters of a-z A-Z 0-9 . _ -")) }
}

fn check_grants(grants: &[String]) -> ApiResult<()> {
    if grants.is_empty() {
        return Err(ApiError::invalid(
            "grants",
            format!("name at least one of {GRANT_CLIENT_CREDENTIALS}, {GRANT_TOKEN_EXCHANGE}"),
        ));
    }
    match grants.iter().find(|grant| *grant != GRANT_CLIENT_CREDENTIALS && *grant != GRANT_TOKEN_EXCHANGE) {
        Some(other) => Err(ApiError::invalid(
            "grants",
            format!(
                "{other:?} is not a grant a client can have; use {GRANT_CLIENT_CREDENTIALS} or {GRANT_TOKEN_EXCHANGE}"
            ),
        )),
        None => Ok(()),
    }
}

fn check_audiences(audiences: &[String]) -> ApiResult<()> {
    let bad = audiences
        .iter()
        .find(|audience| !(1..=128).contains(&audience.len()) || !audience.bytes().all(|byte| byte.is_ascii_graphic()));
    if audiences.len() > 20 || bad.is_some() {
        return Err(ApiError::invalid("audiences", "at most 20, each 1–128 visible ASCII characters without spaces"));
    }
    Ok(())
}

fn check_lifetime(seconds: Option<i64>) -> ApiResult<()> {
    match seconds {
        Some(seconds) if !crate::api::realms::LIFETIME_SECS.contains(&seconds) => {
            Err(ApiError::invalid("accessTokenLifetimeSeconds", "must be between 10 and 86400"))
        }
        _ => Ok(()),
    }
}

fn check_mappers(field: &str, mappers: &[ClaimMapper]) -> ApiResult<String> {
    let domain: Vec<_> = mappers.iter().map(mapper_from_dto).collect();
    keyward_core::claims::check_mappers(&domain).map_err(|detail| ApiError::invalid(field, detail))?;
    serde_json::to_string(mappers).map_err(|error| ApiError::Internal(error.to_string()))
}

/// The service account a client issues for, by id or idpId, in the client's realm.
async fn service_account(state: &AppState, realm: &RealmRow, id: Option<&str>) -> ApiResult<Option<i64>> {
    match id.filter(|id| !id.is_empty()) {
        None => Ok(None),
        Some(id) => load_account_in(state, realm.id, id).await.map(|account| Some(account.id)).map_err(|_| {
            ApiError::invalid("serviceAccountId", "no service account with that id or idpId in this realm")
        }),
    }
}

fn client_dto(state: &AppState, row: ClientRow) -> Client {
    let words = |text: &str| text.split(' ').filter(|word| !word.is_empty()).map(str::to_string).collect();
    Client {
        grants: words(&row.grants),
        audiences: words(&row.audiences),
        service_account_id: row
            .service_account_id
            .and_then(|id| state.index.principal(id))
            .map(|principal| principal.public_id.clone()),
        access_token_lifetime_seconds: row.access_token_lifetime_secs,
        claim_mappers: parse_mappers(&row.claim_mappers),
        client_id: row.client_id,
        name: row.name,
        secret_prefix: row.secret_prefix,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn new_secret(state: &AppState) -> (Secret, [u8; 32], String) {
    let secret = Secret::generate(CredentialKind::ClientSecret, &mut rand_core::UnwrapErr(rand_core::OsRng));
    let digest = state.pepper.digest(secret.expose()).0;
    let prefix = secret.display_prefix();
    (secret, digest, prefix)
}

fn event(caller: &Caller, realm: &RealmRow, action: &str, client_id: &str, detail: String) -> NewAuditEvent {
    NewAuditEvent {
        realm: realm.name.clone(),
        at: OffsetDateTime::now_utc(),
        actor: caller.actor(),
        action: action.to_string(),
        target: format!("client:{}/{client_id}", realm.name),
        client_ip: caller.client_ip.to_string(),
        result: "ok".to_string(),
        detail,
    }
}

async fn find_client(state: &AppState, realm: &RealmRow, client_id: &str) -> ApiResult<ClientRow> {
    state
        .store
        .realm_clients(realm.id)
        .await?
        .into_iter()
        .find(|row| row.client_id == client_id)
        .ok_or(ApiError::NotFound("client"))
}

#[utoipa::path(post, path = "/api/v1/realms/{name}/clients", tag = "realms", request_body = CreateClient,
    responses((status = 201, body = ClientWithSecret), (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CreateClient>,
) -> ApiResult<(StatusCode, Json<ClientWithSecret>)> {
    let realm = visible_realm(&state, &caller, &name).await?;
    check_client_id(&body.client_id)?;
    check_grants(&body.grants)?;
    check_audiences(&body.audiences)?;
    check_lifetime(body.access_token_lifetime_seconds)?;
    keyward_core::validate::free_text(&body.name, 100).map_err(|detail| ApiError::invalid("name", detail))?;
    let mappers = check_mappers("claimMappers", &body.claim_mappers)?;
    let service_account_id = service_account(&state, &realm, body.service_account_id.as_deref()).await?;
    let (grants, audiences) = (body.grants.join(" "), body.audiences.join(" "));
    let settings = ClientSettings {
        name: &body.name,
        grants: &grants,
        audiences: &audiences,
        service_account_id,
        access_token_lifetime_secs: body.access_token_lifetime_seconds,
        claim_mappers: &mappers,
        enabled: true,
    };
    let (secret, digest, prefix) = new_secret(&state);
    let now = OffsetDateTime::now_utc();
    let mut mutation = state.store.begin().await?;
    mutation.insert_client(realm.id, &body.client_id, &settings, (&digest, &prefix), now).await.map_err(|error| {
        match error {
            store::StoreError::Conflict { .. } => ApiError::Conflict {
                field: Some("clientId".to_string()),
                detail: format!("A client {:?} exists in this realm", body.client_id),
            },
            other => other.into(),
        }
    })?;
    let detail = format!("grants={grants} audiences={audiences}");
    crate::api::commit(&state, mutation, event(&caller, &realm, "client.create", &body.client_id, detail)).await?;
    let row = find_client(&state, &realm, &body.client_id).await?;
    let client = client_dto(&state, row);
    Ok((StatusCode::CREATED, Json(ClientWithSecret { client, client_secret: secret.expose().to_string() })))
}

#[utoipa::path(get, path = "/api/v1/realms/{name}/clients", tag = "realms", responses((status = 200, body = [Client])))]
pub async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<Client>>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    let rows = state.store.realm_clients(realm.id).await?;
    Ok(Json(rows.into_iter().map(|row| client_dto(&state, row)).collect()))
}

#[utoipa::path(get, path = "/api/v1/realms/{name}/clients/{client_id}", tag = "realms",
    responses((status = 200, body = Client), (status = 404, body = proto::Problem)))]
pub async fn get_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Client>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    Ok(Json(client_dto(&state, find_client(&state, &realm, &client_id).await?)))
}

#[utoipa::path(patch, path = "/api/v1/realms/{name}/clients/{client_id}", tag = "realms", request_body = UpdateClient,
    responses((status = 200, body = Client), (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn update_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, client_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateClient>,
) -> ApiResult<Json<Client>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    let row = find_client(&state, &realm, &client_id).await?;
    if let Some(grants) = &body.grants {
        check_grants(grants)?;
    }
    if let Some(audiences) = &body.audiences {
        check_audiences(audiences)?;
    }
    check_lifetime(body.access_token_lifetime_seconds)?;
    let mappers = match &body.claim_mappers {
        Some(mappers) => check_mappers("claimMappers", mappers)?,
        None => row.claim_mappers.clone(),
    };
    let service_account_id = match body.service_account_id.as_deref() {
        Some(id) => service_account(&state, &realm, Some(id)).await?,
        None => row.service_account_id,
    };
    let name_text = body.name.clone().unwrap_or_else(|| row.name.clone());
    keyward_core::validate::free_text(&name_text, 100).map_err(|detail| ApiError::invalid("name", detail))?;
    let grants = body.grants.as_ref().map_or_else(|| row.grants.clone(), |grants| grants.join(" "));
    let audiences = body.audiences.as_ref().map_or_else(|| row.audiences.clone(), |audiences| audiences.join(" "));
    let settings = ClientSettings {
        name: &name_text,
        grants: &grants,
        audiences: &audiences,
        service_account_id,
        access_token_lifetime_secs: body.access_token_lifetime_seconds.or(row.access_token_lifetime_secs),
        claim_mappers: &mappers,
        enabled: body.enabled.unwrap_or(row.enabled),
    };
    let mut mutation = state.store.begin().await?;
    mutation.update_client(row.id, realm.id, &settings, OffsetDateTime::now_utc()).await?;
    let detail = format!("grants={grants} audiences={audiences} enabled={}", settings.enabled);
    crate::api::commit(&state, mutation, event(&caller, &realm, "client.update", &client_id, detail)).await?;
    Ok(Json(client_dto(&state, find_client(&state, &realm, &client_id).await?)))
}

#[utoipa::path(delete, path = "/api/v1/realms/{name}/clients/{client_id}", tag = "realms",
    responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn delete_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, client_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let realm = visible_realm(&state, &caller, &name).await?;
    let row = find_client(&state, &realm, &client_id).await?;
    let mut mutation = state.store.begin().await?;
    mutation.delete_client(row.id, realm.id).await?;
    crate::api::commit(&state, mutation, event(&caller, &realm, "client.delete", &client_id, String::new())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret; the old one stops working on every node within a second.
#[utoipa::path(post, path = "/api/v1/realms/{name}/clients/{client_id}/secret", tag = "realms",
    responses((status = 200, body = ClientWithSecret), (status = 404, body = proto::Problem)))]
pub async fn renew_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((name, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<ClientWithSecret>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    let row = find_client(&state, &realm, &client_id).await?;
    let (secret, digest, prefix) = new_secret(&state);
    let mut mutation = state.store.begin().await?;
    mutation.set_client_secret(row.id, realm.id, (&digest, &prefix), OffsetDateTime::now_utc()).await?;
    crate::api::commit(&state, mutation, event(&caller, &realm, "client.secret.renew", &client_id, prefix)).await?;
    let client = client_dto(&state, find_client(&state, &realm, &client_id).await?);
    Ok(Json(ClientWithSecret { client, client_secret: secret.expose().to_string() }))
}

#[utoipa::path(get, path = "/api/v1/realms/{name}/claim-mappers", tag = "realms", responses((status = 200, body = [ClaimMapper])))]
pub async fn get_realm_mappers(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<ClaimMapper>>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    Ok(Json(parse_mappers(&state.store.realm_claim_mappers(realm.id).await?)))
}

/// Replaces the realm's claim mappers; they apply to every access token of the realm.
#[utoipa::path(put, path = "/api/v1/realms/{name}/claim-mappers", tag = "realms", request_body = [ClaimMapper],
    responses((status = 200, body = [ClaimMapper]), (status = 422, body = proto::Problem)))]
pub async fn put_realm_mappers(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Vec<ClaimMapper>>,
) -> ApiResult<Json<Vec<ClaimMapper>>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    let json = check_mappers("claimMappers", &body)?;
    let mut mutation = state.store.begin().await?;
    mutation.set_realm_claim_mappers(realm.id, &json).await?;
    let claims: Vec<&str> = body
        .iter()
        .map(|mapper| match mapper {
            ClaimMapper::Static { claim, .. }
            | ClaimMapper::Attribute { claim, .. }
            | ClaimMapper::Groups { claim } => claim.as_str(),
        })
        .collect();
    let audit = NewAuditEvent {
        target: format!("realm:{}", realm.name),
        ..event(&caller, &realm, "realm.claim_mappers.update", "", claims.join(","))
    };
    crate::api::commit(&state, mutation, audit).await?;
    Ok(Json(body))
}
