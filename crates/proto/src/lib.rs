//! The wire format: every type keyward serializes over HTTP, and nothing else.
//!
//! Native API types use camelCase fields and RFC 3339 UTC times. Request types reject
//! unknown fields. Compatibility types (`v4`) reproduce the seeds' bodies field for
//! field. This crate depends only on serde, time and utoipa (for the OpenAPI schema);
//! it must not depend on any other keyward crate.

pub mod deployer;
pub mod oidc;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// RFC 9457 problem details, the body of every error.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem, e.g. `https://keyward.dev/problems/not-found`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// What went wrong and, where possible, what to fix.
    pub detail: String,
    /// The field the problem is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id, to find this request in the server's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `GET|POST /api/v1/auth/check`: who the caller is (also sent as `X-Keyward-*` headers).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthCheckAnswer {
    /// The user's or service account's id; absent for admin keys.
    pub subject: Option<String>,
    pub username: Option<String>,
    pub realm: String,
    pub credential_kind: String,
    pub roles: Vec<String>,
}

/// One page of a list. Pass `nextCursor` as `cursor` to get the next page.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    /// 3 to 64 characters of a-z, 0-9, '.', '_' and '-'; unique in the realm.
    pub username: String,
    /// Unique in the realm (compared case-insensitively).
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    pub avatar_url: Option<String>,
    /// The person's password for portal and CLI login: 12 to 256 characters, not the
    /// username. Leave it out to create the user without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Password)]
    pub password: Option<String>,
    /// Free-form attributes for token claim mappers, e.g. `{"organization": "acme"}`: at
    /// most 50; names of 1 to 64 characters of a-z, A-Z, 0-9, '_', '-' and '.' starting
    /// with a letter, and not a reserved claim (iss, sub, aud, exp, iat, nbf, jti, azp,
    /// client_id, sid, cid, scope, typ); values of at most 1024 characters.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CreateUser")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("avatar_url", &self.avatar_url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An administrator sets a person's password (service accounts have none).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPassword {
    /// 12 to 256 characters, not the username.
    #[schema(format = Password)]
    pub password: String,
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SetPassword").field("password", &"<redacted>").finish()
    }
}

/// A person changes their own password.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeMyPassword {
    /// The password now in use; required when the account has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Password)]
    pub current_password: Option<String>,
    /// 12 to 256 characters, not the username.
    #[schema(format = Password)]
    pub new_password: String,
}

impl std::fmt::Debug for ChangeMyPassword {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ChangeMyPassword")
            .field("current_password", &self.current_password.as_ref().map(|_| "<redacted>"))
            .field("new_password", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// An empty string clears the avatar.
    pub avatar_url: Option<String>,
    pub enabled: Option<bool>,
    /// Replaces every attribute with this set (`{}` clears them); leave it out to keep
    /// them. The rules are those of `CreateUser.attributes`.
    pub attributes: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub kind: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    pub avatar_url: Option<String>,
    pub enabled: bool,
    /// Roles granted to the user directly.
    pub roles: Vec<String>,
    /// Roles the user holds directly or through groups.
    pub effective_roles: Vec<String>,
    pub groups: Vec<GroupRef>,
    /// Free-form attributes (name to value); `{}` when there are none.
    pub attributes: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: String,
    pub roles: Vec<String>,
    pub members: Vec<GroupMember>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    pub id: String,
    pub username: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1 to 100 characters, no slashes; unique among your active keys.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// When the key stops working; at most the realm's maximum lifetime (default 90 days).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Binds the key to one audience, e.g. `model-monitor` for the `X-DMM-API-KEY` header.
    pub audience: Option<String>,
}

/// A credential as listed: never the secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub audience: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Updated about once a minute, not on every request.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApiTokenQuery {
    /// How many items to return, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this user's tokens.
    pub user_id: Option<String>,
}

/// An API token's record as listed and shown: never the JWT.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: String,
    /// The user the token acts as, with that user's roles at the time of each request.
    pub user_id: String,
    pub username: String,
    pub name: String,
    pub description: String,
    /// Addresses and CIDR ranges the token may be used from; empty means anywhere.
    pub filter: Vec<String>,
    pub enabled: bool,
    /// `active`, `disabled` or `expired`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Goes up by one each time the token is unlocked (or given to another user); only
    /// the JWT of the current generation works.
    pub generation: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<String>,
    /// Updated about once a minute, not on every request.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// An API token's record with its JWT: the answer to create and unlock, the only times
/// the JWT is shown.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedApiToken {
    #[serde(flatten)]
    pub record: ApiToken,
    /// The JWT, to send as `Authorization: Bearer`. Store it now: it cannot be shown again.
    pub token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiToken {
    /// The id of the user (or service account) the token acts as, in your realm.
    pub user_id: String,
    /// 1 to 100 characters, no slashes; unique among that user's API tokens.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// When the token stops working: in the future, at most 366 days away (default 90 days).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// IP addresses and CIDR ranges (IPv4 and IPv6) the token may be used from, at most
    /// 100; empty or absent means anywhere.
    #[serde(default)]
    pub filter: Vec<String>,
    /// Whether the token works; default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// Fields to change; absent fields keep their value. Changing `userId` ends the current
/// JWT and answers with a new one.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateApiToken {
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub filter: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// The answer to an edit: the record, and a new JWT when the edit ended the old one.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedApiToken {
    #[serde(flatten)]
    pub record: ApiToken,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /api/v1/workloads`: a run that needs to call platform APIs as its user.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkload {
    /// The user (or service account) the run acts as, in your realm.
    pub user_id: String,
    /// `workspace`, `job`, `app`, `scheduledJob`, `launcher` or `modelApi`.
    pub kind: String,
    /// The platform's id of the run: 1 to 128 visible ASCII characters; one running
    /// workload per run id.
    pub run_id: String,
    /// The project the run belongs to; the user must collaborate on it.
    pub project_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub kind: String,
    pub run_id: String,
    pub project_id: Option<String>,
    /// `running` or `ended`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

/// A new workload and its run credential, shown this once.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWorkload {
    #[serde(flatten)]
    pub workload: Workload,
    /// The `kwr_` credential bound to this run, for `keyward proxy --credential-file`;
    /// `null` for model APIs.
    pub credential: Option<String>,
    /// Why there is no credential, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkloadQuery {
    /// How many items to return, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this user's workloads.
    pub user_id: Option<String>,
}

/// The answer to creating a key: the only time the secret is shown.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret. Store it now: it cannot be shown again.
    pub secret: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CreatedApiKey").field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserKeyPolicy {
    /// Whether people may hold personal API keys. When false, only service accounts
    /// hold long-lived credentials.
    pub user_api_keys_allowed: bool,
    /// The longest lifetime of a personal API key, in days (1 to 3650).
    pub user_api_key_max_lifetime_days: i64,
    /// The longest lifetime of a service-account token, in days (1 to 3650; default
    /// 365). Left out of a `PUT`, it stays as it is.
    #[serde(default)]
    pub service_token_max_lifetime_days: Option<i64>,
}

/// A realm (tenant) as the realms API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Realm {
    pub name: String,
    pub display_name: String,
    /// False once disabled: every credential of the realm is refused.
    pub enabled: bool,
    /// `ES256`, `RS256` or `EdDSA`: the algorithm of the realm's new signing keys.
    pub signing_alg: String,
    /// The default access-token lifetime, in seconds.
    pub access_token_lifetime_seconds: i64,
    pub user_api_keys_allowed: bool,
    pub user_api_key_max_lifetime_days: i64,
    pub service_token_max_lifetime_days: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRealm {
    /// 1 to 64 characters of a-z, 0-9, '-' and '_', not starting with '-' or '_'; unique.
    pub name: String,
    /// At most 100 characters; empty by default.
    #[serde(default)]
    pub display_name: String,
    /// `ES256` (default), `RS256` or `EdDSA`.
    pub signing_alg: Option<String>,
    /// 60 to 86400 (default 300).
    pub access_token_lifetime_seconds: Option<i64>,
}

/// Changes to a realm; a field left out stays as it is. The name cannot change.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRealm {
    pub display_name: Option<String>,
    /// `ES256`, `RS256` or `EdDSA`; applies to signing keys made from now on.
    pub signing_alg: Option<String>,
    /// 60 to 86400.
    pub access_token_lifetime_seconds: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProject {
    /// 1 to 100 characters, no slashes; unique in the realm.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The user (or service account) who becomes the project's first owner. Required with
    /// an admin key, which belongs to no user; only admins may pass it. Without it, the
    /// caller becomes the owner.
    pub owner_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The caller's role on the project: `owner`, `contributor` or `viewer`; null for an
    /// administrator who does not collaborate on it.
    pub my_role: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A user or service account working on a project.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Collaborator {
    pub user_id: String,
    pub username: String,
    /// `user` for a person, `service` for a service account.
    pub kind: String,
    /// `owner`, `contributor` or `viewer`.
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCollaborator {
    /// `owner` (may delete the project and manage collaborators), `contributor` (may
    /// write) or `viewer` (may read).
    pub role: String,
}

/// A protected upstream asks whether the caller may act on a project.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthzCheck {
    pub project_id: String,
    /// `read` (viewers and up), `write` (contributors and up) or `admin` (owners).
    pub action: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthzDecision {
    pub allowed: bool,
    /// The caller's role on the project; null for an administrator who does not
    /// collaborate on it (administrators are allowed every action).
    pub role: Option<String>,
    pub project_id: String,
}

/// `GET /v4/users/self`, exactly as platform clients expect it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V4UserSelf {
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    pub user_name: String,
    pub email: String,
    pub avatar_url: Option<String>,
    pub id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub realm: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_ip: String,
    pub result: String,
    pub detail: String,
    /// Hex SHA-256 chaining this event to the previous one.
    pub hash: String,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `json` (default, one page), `jsonl` or `csv` (downloads, up to 100,000 events).
    pub format: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub result: Option<String>,
    /// RFC 3339 time; only events at or after it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// RFC 3339 time; only events before it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// `oldest` (default: the log's sequence order) or `newest` first; `nextCursor`
    /// pages on in the same order.
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
}

/// `POST /v4/serviceAccounts` and `POST /api/v1/service-accounts`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateServiceAccount {
    /// 3 to 64 characters of a-z, 0-9, '.', '_' and '-'; unique in the realm.
    pub username: String,
    /// Unique in the realm, compared case-insensitively; plus addressing allowed.
    pub email: String,
}

/// A service account as `POST /v4/serviceAccounts` answers it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V4ServiceAccountCreated {
    pub email: String,
    /// 24 hex digits.
    pub id: String,
    /// A UUID; the id in `/v4/serviceAccounts/{idpId}/…` paths.
    pub idp_id: String,
    pub user_name: String,
}

/// A service account as `GET /v4/serviceAccounts` lists it: both spellings of the
/// user name, so clients written either way work.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct V4ServiceAccount {
    pub email: String,
    pub id: String,
    #[serde(rename = "idpId")]
    pub idp_id: String,
    pub username: String,
    #[serde(rename = "userName")]
    pub user_name: String,
}

/// `POST /v4/serviceAccounts/{idpId}/tokens` and `POST /api/v1/service-accounts/{id}/tokens`.
/// Give at most one of `expiresAt` and `lifetimeDays`; with neither, the token lasts
/// 120 days.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateServiceToken {
    /// 1 to 100 characters, no slashes; unique among the account's valid tokens.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub lifetime_days: Option<i64>,
}

/// A service-account token as the v4 routes show it; `token` only in the answer that
/// creates it.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V4ServiceToken {
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub is_valid: bool,
    pub name: String,
    pub service_account_idp_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for V4ServiceToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("V4ServiceToken")
            .field("name", &self.name)
            .field("service_account_idp_id", &self.service_account_idp_id)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// A service account in the native API.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    pub id: String,
    pub idp_id: String,
    pub username: String,
    pub email: String,
    /// False once deactivated: every token was invalidated and no new one is issued.
    pub enabled: bool,
    pub roles: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A service-account token in the native API (never the secret).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceToken {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub service_account_id: String,
    pub service_account_idp_id: String,
    pub service_account_username: String,
    /// Not invalidated, not expired, and the account is active.
    pub is_valid: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who made it, as the audit log names them.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub invalidated_at: Option<OffsetDateTime>,
}

/// A new token and its secret, shown in this answer only.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedServiceToken {
    #[serde(flatten)]
    pub token: ServiceToken,
    pub secret: String,
}

impl std::fmt::Debug for CreatedServiceToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CreatedServiceToken").field("token", &self.token).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// A duration such as `30d`, `12h` or `90m` (at most 3650 days).
    pub expiring_within: String,
}
