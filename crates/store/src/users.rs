//! Users (people and, later, service accounts), their roles, and the principal view the
//! in-memory index keeps.

use crate::{ChangeEntity, Mutation, Store, StoreError, StoreResult, flag, from_ms, to_ms};
use keyward_core::{Role, RoleSet};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

pub struct NewUser<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub kind: &'a str,
    /// The identity-provider id (a UUID) of a service account; `None` for people.
    pub idp_id: Option<&'a str>,
    pub username: &'a str,
    pub email: &'a str,
    pub email_key: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub avatar_url: Option<&'a str>,
    /// Free-form attributes, already checked with `validate::attributes`; empty for none.
    pub attributes: &'a BTreeMap<String, String>,
    pub now: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub kind: String,
    pub idp_id: Option<String>,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub avatar_url: Option<String>,
    pub enabled: bool,
    /// Free-form attributes (name to value) for the token service's claim mappers.
    pub attributes: BTreeMap<String, String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Fields to change; `None` leaves a field as it is. `avatar_url: Some(None)` clears it.
/// `attributes: Some(set)` replaces every attribute with `set` (empty clears them).
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub email: Option<(String, String)>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// What the index keeps about a principal: enough to decide and to name the caller.
#[derive(Clone, Debug)]
pub struct PrincipalRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub kind: String,
    pub username: String,
    pub email: String,
    pub enabled: bool,
    pub roles: RoleSet,
    /// Names of the groups the principal is a member of, sorted.
    pub groups: Vec<String>,
    /// The same groups' ids, in the same order as `groups`.
    pub group_ids: Vec<i64>,
}

const USER_COLUMNS: &str = "id, public_id, realm_id, kind, idp_id, username, email, first_name, last_name, avatar_url, \
     enabled, attributes, created_at, updated_at";

fn user_from_row(row: &AnyRow) -> StoreResult<UserRow> {
    let id: i64 = row.try_get("id")?;
    let attributes = attributes_from_column(id, &row.try_get::<String, _>("attributes")?)?;
    Ok(UserRow {
        id,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        kind: row.try_get("kind")?,
        idp_id: row.try_get("idp_id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        avatar_url: row.try_get("avatar_url")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        attributes,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// Reads `users.attributes`. Only the store writes it, so anything but a JSON object of
/// strings means the row was changed by hand: an error naming the row, not an empty set.
fn attributes_from_column(user_id: i64, text: &str) -> StoreResult<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|error| {
        StoreError::Database(format!(
            "users.attributes of user row {user_id} is not a JSON object of string values: {error}"
        ))
    })
}

/// The storage form of a set of attributes: a JSON object, `{}` when empty.
fn attributes_to_json(attributes: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(attributes)
        .map_err(|error| StoreError::Database(format!("could not encode user attributes: {error}")))
}

/// Roles of every user in `user_filter` (a SQL condition on `u`), direct and through groups.
const ROLES_SQL: &str = "SELECT u.id AS user_id, r.role AS role FROM users u JOIN user_roles r ON r.user_id = u.id WHERE {filter} \
     UNION SELECT u.id AS user_id, r.role AS role FROM users u JOIN group_members m ON m.user_id = u.id \
     JOIN group_roles r ON r.group_id = m.group_id WHERE {filter}";

/// Principals matching `filter` (a SQL condition on `u`), read on `connection`: the pool's,
/// or a mutation's own (a mutation never waits for a second connection of the pool).
async fn principals_where(
    connection: &mut AnyConnection,
    filter: &str,
    id: Option<i64>,
) -> StoreResult<Vec<PrincipalRow>> {
    let users_sql = format!(
        "SELECT u.id AS id, u.public_id AS public_id, u.realm_id AS realm_id, u.kind AS kind, \
         u.username AS username, u.email AS email, u.enabled AS enabled FROM users u WHERE {filter}"
    );
    let roles_sql = ROLES_SQL.replace("{filter}", filter);
    let groups_sql = format!(
        "SELECT m.user_id AS user_id, g.id AS group_id, g.name AS name FROM users u JOIN group_members m ON m.user_id = u.id \
         JOIN groups g ON g.id = m.group_id WHERE {filter} ORDER BY g.name"
    );
    let mut users = sqlx::query(&users_sql);
    let mut roles = sqlx::query(&roles_sql);
    let mut groups = sqlx::query(&groups_sql);
    if let Some(id) = id {
        users = users.bind(id);
        roles = roles.bind(id);
        groups = groups.bind(id);
    }
    let user_rows = users.fetch_all(&mut *connection).await?;
    let role_rows = roles.fetch_all(&mut *connection).await?;
    let group_rows = groups.fetch_all(&mut *connection).await?;
    let mut groups_by_user: HashMap<i64, (Vec<String>, Vec<i64>)> = HashMap::new();
    for row in &group_rows {
        let (names, ids) = groups_by_user.entry(row.try_get("user_id")?).or_default();
        names.push(row.try_get("name")?);
        ids.push(row.try_get("group_id")?);
    }
    let mut roles_by_user: HashMap<i64, RoleSet> = HashMap::new();
    for row in &role_rows {
        let role: String = row.try_get("role")?;
        if let Some(role) = Role::parse(&role) {
            roles_by_user.entry(row.try_get("user_id")?).or_default().insert(role);
        }
    }
    user_rows
        .iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let (groups, group_ids) = groups_by_user.remove(&id).unwrap_or_default();
            Ok(PrincipalRow {
                id,
                public_id: row.try_get("public_id")?,
                realm_id: row.try_get("realm_id")?,
                kind: row.try_get("kind")?,
                username: row.try_get("username")?,
                email: row.try_get("email")?,
                enabled: row.try_get::<i64, _>("enabled")? != 0,
                roles: roles_by_user.get(&id).copied().unwrap_or_default(),
                groups,
                group_ids,
            })
        })
        .collect()
}

impl Store {
    pub async fn user_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<UserRow> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 AND public_id = $2");
        let row = sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?;
        user_from_row(&row)
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<UserRow> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?;
        user_from_row(&row)
    }

    /// The user or service account called `username` in this realm, if any.
    pub async fn user_by_username(&self, realm_id: i64, username: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 AND username = $2");
        let row = sqlx::query(&sql).bind(realm_id).bind(username).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The service account with this identity-provider id, in this realm.
    pub async fn user_by_idp_id(&self, realm_id: i64, idp_id: &str) -> StoreResult<UserRow> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 AND idp_id = $2");
        let row = sqlx::query(&sql).bind(realm_id).bind(idp_id).fetch_one(&self.pool).await?;
        user_from_row(&row)
    }

    /// One page of a realm's users in creation order, after the user with id `after`.
    pub async fn list_users(&self, realm_id: i64, after: i64, limit: i64) -> StoreResult<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 AND id > $2 ORDER BY id LIMIT $3");
        let rows = sqlx::query(&sql).bind(realm_id).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// One page of a realm's users of one kind (`user` or `service`), as `list_users`.
    pub async fn list_users_of_kind(
        &self,
        realm_id: i64,
        kind: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE realm_id = $1 AND kind = $2 AND id > $3 ORDER BY id LIMIT $4"
        );
        let rows = sqlx::query(&sql).bind(realm_id).bind(kind).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Roles granted to the user directly (not through groups).
    pub async fn direct_roles(&self, user_id: i64) -> StoreResult<RoleSet> {
        let rows =
            sqlx::query("SELECT role FROM user_roles WHERE user_id = $1").bind(user_id).fetch_all(&self.pool).await?;
        roles_from(rows.iter().map(|row| row.try_get::<String, _>("role")))
    }

    /// Every principal with its effective roles, for building the index.
    pub async fn load_principals(&self) -> StoreResult<Vec<PrincipalRow>> {
        principals_where(&mut *self.pool.acquire().await?, "1 = 1", None).await
    }

    /// One principal with its effective roles, or `None` when the user is gone.
    pub async fn load_principal(&self, id: i64) -> StoreResult<Option<PrincipalRow>> {
        Ok(principals_where(&mut *self.pool.acquire().await?, "u.id = $1", Some(id)).await?.into_iter().next())
    }

    /// Ids of the user's active credentials, to announce when the user goes away.
    pub(crate) async fn owned_credential_ids(
        connection: &mut sqlx::AnyConnection,
        user_id: i64,
    ) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM credentials WHERE owner_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .fetch_all(connection)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("id")?)).collect()
    }
}

fn roles_from(names: impl Iterator<Item = Result<String, sqlx::Error>>) -> StoreResult<RoleSet> {
    let mut roles = RoleSet::EMPTY;
    for name in names {
        if let Some(role) = Role::parse(&name?) {
            roles.insert(role);
        }
    }
    Ok(roles)
}

impl Mutation {
    /// [`Store::load_principal`], read inside the transaction.
    pub async fn load_principal(&mut self, id: i64) -> StoreResult<Option<PrincipalRow>> {
        Ok(principals_where(self.connection(), "u.id = $1", Some(id)).await?.into_iter().next())
    }

    /// [`Store::user_by_id`], read inside the transaction.
    pub async fn user_by_id(&mut self, id: i64) -> StoreResult<UserRow> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_one(self.connection()).await?;
        user_from_row(&row)
    }

    /// Whether the user exists and is enabled, read inside this transaction: a check
    /// made before `begin` could be stale by the time the mutation writes.
    pub async fn user_enabled(&mut self, id: i64) -> StoreResult<Option<bool>> {
        let row =
            sqlx::query("SELECT enabled FROM users WHERE id = $1").bind(id).fetch_optional(self.connection()).await?;
        row.map(|row| Ok(row.try_get::<i64, _>("enabled")? != 0)).transpose()
    }

    /// The user's attributes as this transaction sees them, to say what a change changed.
    pub async fn user_attributes(&mut self, id: i64) -> StoreResult<BTreeMap<String, String>> {
        let row =
            sqlx::query("SELECT attributes FROM users WHERE id = $1").bind(id).fetch_one(self.connection()).await?;
        attributes_from_column(id, &row.try_get::<String, _>("attributes")?)
    }

    pub async fn insert_user(&mut self, new: &NewUser<'_>) -> StoreResult<i64> {
        let attributes = attributes_to_json(new.attributes)?;
        let row = sqlx::query(
            "INSERT INTO users (public_id, realm_id, kind, username, email, email_key, first_name, last_name, \
             avatar_url, enabled, created_at, updated_at, idp_id, attributes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, $12) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.kind)
        .bind(new.username)
        .bind(new.email)
        .bind(new.email_key)
        .bind(new.first_name)
        .bind(new.last_name)
        .bind(new.avatar_url)
        .bind(to_ms(new.now))
        .bind(new.idp_id)
        .bind(attributes)
        .fetch_one(self.connection())
        .await?;
        let id: i64 = row.try_get("id")?;
        self.changed(ChangeEntity::Principal, id).await?;
        Ok(id)
    }

    pub async fn update_user(&mut self, id: i64, patch: &UserPatch, now: OffsetDateTime) -> StoreResult<()> {
        let (email, email_key) = match &patch.email {
            Some((email, key)) => (Some(email.as_str()), Some(key.as_str())),
            None => (None, None),
        };
        let (set_avatar, avatar) = match &patch.avatar_url {
            Some(value) => (1i64, value.as_deref()),
            None => (0i64, None),
        };
        let attributes = patch.attributes.as_ref().map(attributes_to_json).transpose()?;
        let affected = sqlx::query(
            "UPDATE users SET email = COALESCE($1, email), email_key = COALESCE($2, email_key), \
             first_name = COALESCE($3, first_name), last_name = COALESCE($4, last_name), \
             avatar_url = CASE WHEN $5 = 1 THEN $6 ELSE avatar_url END, \
             enabled = COALESCE($7, enabled), attributes = COALESCE($10, attributes), updated_at = $8 \
             WHERE id = $9",
        )
        .bind(email)
        .bind(email_key)
        .bind(patch.first_name.as_deref())
        .bind(patch.last_name.as_deref())
        .bind(set_avatar)
        .bind(avatar)
        .bind(patch.enabled.map(flag))
        .bind(to_ms(now))
        .bind(id)
        .bind(attributes)
        .execute(self.connection())
        .await?
        .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        self.changed(ChangeEntity::Principal, id).await
    }

    /// Deletes a user and, through the foreign keys, their credentials, memberships and
    /// role grants. Every one of their credentials is announced so all indexes drop it.
    pub async fn delete_user(&mut self, id: i64) -> StoreResult<()> {
        let credential_ids = Store::owned_credential_ids(self.connection(), id).await?;
        let affected =
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(self.connection()).await?.rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        for credential_id in credential_ids {
            self.changed(ChangeEntity::Credential, credential_id).await?;
        }
        self.changed(ChangeEntity::Principal, id).await
    }

    /// Grants a role to a user. Returns false when the user already had it.
    pub async fn grant_user_role(&mut self, user_id: i64, role: Role) -> StoreResult<bool> {
        let added = sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(user_id)
            .bind(role.as_str())
            .execute(self.connection())
            .await?
            .rows_affected()
            > 0;
        self.changed(ChangeEntity::Principal, user_id).await?;
        Ok(added)
    }

    /// Takes a role from a user. Returns false when the user did not have it.
    pub async fn revoke_user_role(&mut self, user_id: i64, role: Role) -> StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role = $2")
            .bind(user_id)
            .bind(role.as_str())
            .execute(self.connection())
            .await?
            .rows_affected()
            > 0;
        self.changed(ChangeEntity::Principal, user_id).await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_back_as_written() {
        let empty = BTreeMap::new();
        assert_eq!(attributes_to_json(&empty).unwrap(), "{}");
        assert_eq!(attributes_from_column(1, "{}").unwrap(), empty);
        let set: BTreeMap<String, String> =
            [("organization", "Acme \"R&D\""), ("team", "Zoë")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        assert_eq!(attributes_from_column(1, &attributes_to_json(&set).unwrap()).unwrap(), set);
    }

    #[test]
    fn malformed_attributes_are_a_database_error_naming_the_row() {
        for text in ["", "null", "[]", "{\"a\": 1}", "{\"a\": null}", "{\"a\": {}}", "{bad"] {
            match attributes_from_column(42, text) {
                Err(StoreError::Database(message)) => {
                    assert!(message.contains("users.attributes of user row 42"), "{text:?}: {message}")
                }
                other => panic!("{text:?} should be a database error, got {other:?}"),
            }
        }
    }
}
