//! The token service's wire format: OIDC discovery, JWKS, the OAuth 2.0 token,
//! introspection and revocation endpoints (snake_case, as those RFCs define them), the
//! access-token claims, and the native signing-key API (camelCase).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A claim's text: a string that keeps up to 24 bytes inline (ids, names, most emails).
pub use compact_str::CompactString as Text;

/// `GET /auth/realms/{realm}`, as Keycloak answers it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RealmDocument {
    pub realm: String,
    /// The current signing key's SubjectPublicKeyInfo, base64 DER.
    pub public_key: String,
    #[serde(rename = "token-service")]
    pub token_service: String,
    #[serde(rename = "account-service")]
    pub account_service: String,
    #[serde(rename = "tokens-not-before")]
    pub tokens_not_before: i64,
}

/// OpenID Connect discovery metadata (OpenID Connect Discovery 1.0, RFC 8414).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub claims_supported: Vec<String>,
}

/// One public key in a JWK Set (RFC 7517, 7518, 8037).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The token endpoint's form (RFC 6749 §4.4, RFC 8693 §2.1). Parameters it does not
/// know are ignored, as RFC 6749 §3.2 requires.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Set for token exchange (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// An OAuth 2.0 error (RFC 6749 §5.2).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}

/// `aud`: one audience or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(Text),
    Many(Vec<String>),
}

/// A string or an array of strings (utoipa's derive cannot say that `Text` is a string).
impl utoipa::PartialSchema for Audience {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        let one = ObjectBuilder::new().schema_type(Type::String);
        let many = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String));
        OneOfBuilder::new().description(Some("`aud`: one audience or several.")).item(one).item(many).into()
    }
}

impl ToSchema for Audience {}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|each| each == audience),
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(one) => vec![one.to_string()],
            Audience::Many(many) => many.clone(),
        }
    }
}

/// The claims of a keyward access token (RFC 9068 plus OIDC profile claims).
// Text claims are `Text`: up to 24 bytes inline, so a verified token (kept in the
// verifier's cache) is one allocation and a couple of strings instead of ten; freeing a
// forgotten token's strings, each out of the processor's caches by then, was a
// measurable part of verifying a token not seen before.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessTokenClaims {
    #[schema(value_type = String)]
    pub iss: Text,
    #[schema(value_type = String)]
    pub sub: Text,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[schema(value_type = String)]
    pub jti: Text,
    /// The client the token was issued to; RFC 9068 (§2.2) requires it. The same as `azp`.
    /// Defaults to empty only so tokens issued before it existed still parse.
    #[serde(default)]
    #[schema(value_type = String)]
    pub client_id: Text,
    /// The client (or credential) the token was issued to.
    #[serde(default)]
    #[schema(value_type = String)]
    pub azp: Text,
    /// The session or run the token is bound to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub sid: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub scope: Option<Text>,
    /// The keyward credential the token was minted from (an opaque reference): the token
    /// stops working when that credential is revoked, expires or is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cid: Option<Text>,
    /// On API tokens only: the id of the token's record in `/api/v1/api-tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub api_token_id: Option<Text>,
    /// On API tokens only: the record's generation when this JWT was made; an unlock
    /// makes a new generation and ends the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_gen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Text>,
    #[serde(default)]
    #[schema(value_type = String)]
    pub preferred_username: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Text>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Claims added by the realm's and the client's claim mappers.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `POST …/token/introspect` (RFC 7662).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenForm {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
}

/// The introspection answer (RFC 7662 §2.2); only `active` when the token is not.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// `GET|POST …/protocol/openid-connect/userinfo`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UserInfo {
    pub sub: String,
    pub preferred_username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// A realm's signing key, as the native API lists it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// From when it signs.
    #[serde(with = "time::serde::rfc3339")]
    pub activates_at: OffsetDateTime,
    /// When it leaves JWKS; absent while it is the newest key.
    #[serde(with = "time::serde::rfc3339::option")]
    pub removes_at: Option<OffsetDateTime>,
    /// Whether it signs new tokens now.
    pub signing: bool,
}

/// `POST /api/v1/realms/{realm}/keys/rotate`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKeys {
    /// The new key's algorithm (default: the realm's).
    #[serde(default)]
    pub alg: Option<String>,
    /// How long the new key is published before it signs (default 600).
    #[serde(default)]
    pub prepublish_seconds: Option<i64>,
    /// How long the old keys keep verifying after the new key starts signing; at least
    /// the realm's access-token lifetime plus a minute (default: one hour, or twice the
    /// access-token lifetime when that is longer).
    #[serde(default)]
    pub grace_seconds: Option<i64>,
}

/// A claim mapper: a static value, a user attribute, or the user's groups as a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClaimMapper {
    Static { claim: String, value: String },
    Attribute { claim: String, attribute: String },
    Groups { claim: String },
}

/// `POST /api/v1/realms/{name}/clients`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateClient {
    /// 1–64 characters of `a-z A-Z 0-9 . _ -`, unique in the realm.
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    /// `client_credentials` and/or `urn:ietf:params:oauth:grant-type:token-exchange`.
    pub grants: Vec<String>,
    /// Audiences the client's tokens may have; the first is the default (`keyward` when empty).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The service account (id or idpId) that client_credentials tokens are issued for.
    #[serde(default)]
    pub service_account_id: Option<String>,
    #[serde(default)]
    pub access_token_lifetime_seconds: Option<i64>,
    #[serde(default)]
    pub claim_mappers: Vec<ClaimMapper>,
}

/// `PATCH /api/v1/realms/{name}/clients/{clientId}`: the fields given replace the current ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateClient {
    pub name: Option<String>,
    pub grants: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// An empty string unbinds the service account.
    pub service_account_id: Option<String>,
    pub access_token_lifetime_seconds: Option<i64>,
    pub claim_mappers: Option<Vec<ClaimMapper>>,
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// The start of the secret, to tell secrets apart.
    pub secret_prefix: String,
    pub grants: Vec<String>,
    pub audiences: Vec<String>,
    pub service_account_id: Option<String>,
    pub access_token_lifetime_seconds: Option<i64>,
    pub claim_mappers: Vec<ClaimMapper>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A client with its secret: only in the answer that creates it or a new secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: Client,
    pub client_secret: String,
}
