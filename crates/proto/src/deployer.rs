//! The API deployer's wire format: infrastructures, API services, versions,
//! deployments, group grants and deployment keys (camelCase, RFC 3339 times).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInfrastructure {
    /// Part of gateway URLs (`/public/{infrastructure}/{service}/…`): 1–63 characters of
    /// `a-z 0-9 -`; unique in the realm.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where deployments on it may forward: host names (`models.internal`), a domain's
    /// subdomains (`*.models.internal`) and address ranges (`10.0.0.0/8`). Empty (the
    /// default): anywhere but link-local addresses.
    #[serde(default)]
    pub allowed_upstreams: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateInfrastructure {
    pub description: Option<String>,
    pub allowed_upstreams: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Infrastructure {
    pub id: String,
    pub name: String,
    pub description: String,
    pub allowed_upstreams: Vec<String>,
    /// The caller's privilege: `view`, `deploy` or `admin`.
    pub my_privilege: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// A group's privilege on an infrastructure or an API service.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub group_id: String,
    pub group_name: String,
    pub privilege: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetGrant {
    /// Infrastructures: `view`, `deploy` or `admin`. API services: `read`, `write`,
    /// `deploy` or `admin`. Each includes the ones before it.
    pub privilege: String,
}

/// How the gateway authenticates callers of a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum GatewayAuth {
    /// `Authorization: Bearer KEY` or `X-Api-Key: KEY` with one of the `kwd_` keys.
    ApiKeys,
    /// A JWT access token, checked as a resource server does.
    Jwt(JwtAuth),
    /// No authentication: explicitly public.
    None,
    /// Deployments only: use the service's settings.
    Service,
}

/// JWT/OAuth2 resource-server settings. Name a keyward realm (`realm`), or an outside
/// issuer with its JWKS URL (`issuer` and `jwksUrl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuth {
    /// A keyward realm whose access tokens are accepted (its issuer and keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// The `iss` an outside issuer's tokens carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where the outside issuer publishes its keys (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The `aud` tokens must carry.
    pub audience: String,
    /// Claims tokens must carry with these values (an array claim must contain the value),
    /// e.g. `{"organization": "acme"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub required_claims: BTreeMap<String, serde_json::Value>,
    /// Accepted JWS algorithms; default: ES256, RS256, EdDSA. Never `none` or HMAC.
    #[serde(default)]
    pub algorithms: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiService {
    /// Part of gateway URLs: 1–63 characters of `a-z 0-9 -`; unique in the realm.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The design-time auth settings; default `{"type": "apiKeys"}`.
    pub auth: Option<GatewayAuth>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateApiService {
    pub description: Option<String>,
    pub auth: Option<GatewayAuth>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiService {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The creator, who holds Owner.
    pub owner_id: Option<String>,
    pub auth: GatewayAuth,
    /// The caller's privilege: `read`, `write`, `deploy`, `admin` or `owner`.
    pub my_privilege: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVersion {
    /// Where the gateway forwards calls: an `http://` URL, optionally with a base path.
    pub upstream: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiServiceVersion {
    pub id: String,
    /// 1, 2, 3, … per service.
    pub number: i64,
    pub upstream: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDeployment {
    pub service_id: String,
    pub infrastructure_id: String,
    pub version_id: String,
    /// Default true.
    pub enabled: Option<bool>,
    /// Default `{"type": "service"}`: the service's settings.
    pub auth: Option<GatewayAuth>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDeployment {
    pub version_id: Option<String>,
    /// `{"type": "service"}` goes back to the service's settings.
    pub auth: Option<GatewayAuth>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub service_id: String,
    pub service_name: String,
    pub infrastructure_id: String,
    pub infrastructure_name: String,
    pub version_id: String,
    pub version_number: i64,
    pub enabled: bool,
    /// The deployment's own settings, or `{"type": "service"}`.
    pub auth: GatewayAuth,
    /// What the gateway applies: the deployment's settings or the service's.
    pub effective_auth: GatewayAuth,
    /// Where callers reach it: `{public URL}/public/{infrastructure}/{service}`.
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeploymentQuery {
    /// Only this service's deployments.
    pub service_id: Option<String>,
    /// Only deployments on this infrastructure.
    pub infrastructure_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDeploymentKey {
    /// 1 to 100 characters; unique among the service's (or deployment's) keys.
    pub name: String,
}

/// A deployment key as listed: never the secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A deployment key with its secret: at creation, and when a Read holder reveals it
/// (each reveal is audited).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealedDeploymentKey {
    #[serde(flatten)]
    pub key: DeploymentKey,
    pub secret: String,
}

impl std::fmt::Debug for RevealedDeploymentKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RevealedDeploymentKey").field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}

/// How to call a deployment, as sample code shows it: with the first of its keys (a
/// reveal, audited), an access-token placeholder for JWT, or nothing when it is public.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSample {
    pub curl: String,
    /// The key the sample shows, when it shows one.
    pub key_id: Option<String>,
}

impl std::fmt::Debug for DeploymentSample {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("DeploymentSample").field("curl", &"<redacted>").field("key_id", &self.key_id).finish()
    }
}
