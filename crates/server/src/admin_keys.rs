//! Admin keys, made and removed by the CLI (and once at bootstrap) on the store
//! directly; a running server learns of them through the change feed.

use keyward_core::secret::check_format;
use keyward_core::{CredentialKind, Pepper, PublicId, Secret};
use store::{CredentialQuery, CredentialRow, NewAuditEvent, NewCredential, RealmRow, Store, StoreError, StoreResult};
use time::OffsetDateTime;

fn event(realm: &RealmRow, actor: &str, action: &str, row_id: &str, name: &str) -> NewAuditEvent {
    NewAuditEvent {
        realm: realm.name.clone(),
        at: OffsetDateTime::now_utc(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: format!("admin_key:{row_id}"),
        client_ip: "local".to_string(),
        result: "ok".to_string(),
        detail: name.to_string(),
    }
}

/// Creates an admin key in `realm` and returns its secret, to be shown exactly once.
pub async fn create(store: &Store, pepper: &Pepper, realm: &RealmRow, name: &str, actor: &str) -> StoreResult<Secret> {
    let mut rng = rand_core::UnwrapErr(rand_core::OsRng);
    let secret = Secret::generate(CredentialKind::AdminKey, &mut rng);
    let public_id = PublicId::generate(&mut rng);
    let mut mutation = store.begin().await?;
    mutation
        .insert_credential(&NewCredential {
            public_id: public_id.as_str(),
            realm_id: realm.id,
            kind: CredentialKind::AdminKey,
            owner_id: None,
            name,
            description: "",
            audience: None,
            secret_prefix: &secret.display_prefix(),
            digest: pepper.digest(secret.expose()),
            created_at: OffsetDateTime::now_utc(),
            created_by: actor,
            expires_at: None,
        })
        .await?;
    mutation.audit(event(realm, actor, "admin_key.create", public_id.as_str(), name)).await?;
    mutation.commit().await?;
    Ok(secret)
}

pub async fn list(store: &Store, realm: &RealmRow) -> StoreResult<Vec<CredentialRow>> {
    store
        .list_credentials(CredentialQuery {
            realm_id: realm.id,
            kind: CredentialKind::AdminKey,
            owner_id: None,
            include_revoked: false,
        })
        .await
}

/// Deletes (revokes) the admin key named by its secret or its id. Returns the row.
pub async fn delete(
    store: &Store,
    pepper: &Pepper,
    realm: &RealmRow,
    key_or_id: &str,
    actor: &str,
) -> StoreResult<CredentialRow> {
    let row = if key_or_id.starts_with(CredentialKind::AdminKey.prefix()) {
        let checked = check_format(key_or_id).map_err(|_| StoreError::NotFound)?;
        store.credential_by_digest(&pepper.digest(checked.as_str())).await?
    } else {
        let id = PublicId::parse(key_or_id).ok_or(StoreError::NotFound)?;
        store.credential_by_public_id(realm.id, id.as_str()).await?
    };
    if row.kind != CredentialKind::AdminKey || row.realm_id != realm.id || row.revoked_at.is_some() {
        return Err(StoreError::NotFound);
    }
    let mut mutation = store.begin().await?;
    mutation.revoke_credential(row.id, OffsetDateTime::now_utc()).await?;
    mutation.audit(event(realm, actor, "admin_key.delete", &row.public_id, &row.name)).await?;
    mutation.commit().await?;
    Ok(row)
}
