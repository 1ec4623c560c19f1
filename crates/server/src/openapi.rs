//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "keyward", description = "API authentication for data and ML platforms."),
    paths(
        crate::api::users::create_user,
        crate::api::users::list_users,
        crate::api::users::get_user,
        crate::api::users::update_user,
        crate::api::users::disable_user,
        crate::api::users::enable_user,
        crate::api::users::delete_user,
        crate::api::users::grant_role,
        crate::api::users::revoke_role,
        crate::api::users::me,
        crate::api::passwords::set_password,
        crate::api::passwords::change_my_password,
        crate::api::groups::create_group,
        crate::api::groups::list_groups,
        crate::api::groups::get_group,
        crate::api::groups::delete_group,
        crate::api::groups::add_member,
        crate::api::groups::remove_member,
        crate::api::groups::grant_group_role,
        crate::api::groups::revoke_group_role,
        crate::api::api_keys::create_my_key,
        crate::api::api_keys::list_my_keys,
        crate::api::api_keys::revoke_my_key,
        crate::api::api_keys::list_user_keys,
        crate::api::api_keys::create_user_key,
        crate::api::api_keys::revoke_user_key,
        crate::api::api_tokens::create,
        crate::api::api_tokens::list,
        crate::api::api_tokens::get_one,
        crate::api::api_tokens::update,
        crate::api::api_tokens::unlock,
        crate::api::api_tokens::expire,
        crate::api::api_tokens::delete,
        crate::api::workloads::create,
        crate::api::workloads::list,
        crate::api::workloads::get_one,
        crate::api::workloads::end,
        crate::api::projects::create_project,
        crate::api::projects::list_projects,
        crate::api::projects::get_project,
        crate::api::projects::delete_project,
        crate::api::projects::list_collaborators,
        crate::api::projects::set_collaborator,
        crate::api::projects::remove_collaborator,
        crate::api::authz::check,
        crate::api::auth_check::check,
        crate::api::signing_keys::list_keys,
        crate::api::signing_keys::rotate_keys,
        crate::api::clients::create_client,
        crate::api::clients::list_clients,
        crate::api::clients::get_client,
        crate::api::clients::update_client,
        crate::api::clients::delete_client,
        crate::api::clients::renew_secret,
        crate::api::clients::get_realm_mappers,
        crate::api::clients::put_realm_mappers,
        crate::api::realm::get_policy,
        crate::api::realm::put_policy,
        crate::api::realms::create_realm,
        crate::api::realms::list_realms,
        crate::api::realms::get_realm,
        crate::api::realms::update_realm,
        crate::api::realms::disable_realm,
        crate::api::realms::enable_realm,
        crate::api::audit::list_audit,
        crate::api::service_accounts::create,
        crate::api::service_accounts::list,
        crate::api::service_accounts::get_one,
        crate::api::service_accounts::deactivate,
        crate::api::service_accounts::activate,
        crate::api::service_accounts::create_token,
        crate::api::service_accounts::list_tokens,
        crate::api::service_accounts::invalidate_token,
        crate::api::service_accounts::expiring_tokens,
        crate::compat::v4_create_service_account,
        crate::compat::v4_list_service_accounts,
        crate::compat::v4_create_token,
        crate::compat::v4_list_tokens,
        crate::compat::v4_invalidate_token,
        crate::compat::v4_deactivate,
        crate::compat::v4_activate,
        crate::compat::users_self,
        crate::compat::api_user_me,
        crate::ops::healthz,
        crate::ops::readyz,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("apiKey" = []))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
    }
}
