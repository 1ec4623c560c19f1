//! Groups: membership and the roles granted to a group's members.

use crate::{ChangeEntity, Mutation, Store, StoreError, StoreResult, UserRow, from_ms, to_ms};
use keyward_core::{Role, RoleSet};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct GroupRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
}

const GROUP_COLUMNS: &str = "id, public_id, realm_id, name, description, created_at";

fn group_from_row(row: &AnyRow) -> StoreResult<GroupRow> {
    Ok(GroupRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn group_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<GroupRow> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE realm_id = $1 AND public_id = $2");
        let row = sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?;
        group_from_row(&row)
    }

    pub async fn list_groups(&self, realm_id: i64, after: i64, limit: i64) -> StoreResult<Vec<GroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE realm_id = $1 AND id > $2 ORDER BY id LIMIT $3");
        let rows = sqlx::query(&sql).bind(realm_id).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(group_from_row).collect()
    }

    pub async fn groups_of_user(&self, user_id: i64) -> StoreResult<Vec<GroupRow>> {
        let sql = format!(
            "SELECT {} FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.id",
            GROUP_COLUMNS.split(", ").map(|column| format!("g.{column} AS {column}")).collect::<Vec<_>>().join(", ")
        );
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?;
        rows.iter().map(group_from_row).collect()
    }

    pub async fn group_member_ids(&self, group_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query("SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get("user_id")?)).collect()
    }

    pub async fn group_members(&self, group_id: i64) -> StoreResult<Vec<UserRow>> {
        let mut members = Vec::new();
        for user_id in self.group_member_ids(group_id).await? {
            members.push(self.user_by_id(user_id).await?);
        }
        Ok(members)
    }

    pub async fn group_roles(&self, group_id: i64) -> StoreResult<RoleSet> {
        let rows = sqlx::query("SELECT role FROM group_roles WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        let mut roles = RoleSet::EMPTY;
        for row in rows {
            if let Some(role) = Role::parse(&row.try_get::<String, _>("role")?) {
                roles.insert(role);
            }
        }
        Ok(roles)
    }
}

impl Mutation {
    pub async fn insert_group(
        &mut self,
        public_id: &str,
        realm_id: i64,
        name: &str,
        description: &str,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO groups (public_id, realm_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(public_id)
        .bind(realm_id)
        .bind(name)
        .bind(description)
        .bind(to_ms(now))
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Deletes a group; its members' roles are recomputed everywhere.
    pub async fn delete_group(&mut self, group_id: i64) -> StoreResult<()> {
        let members = self.member_ids(group_id).await?;
        let affected = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(group_id)
            .execute(self.connection())
            .await?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        for user_id in members {
            self.changed(ChangeEntity::Principal, user_id).await?;
        }
        Ok(())
    }

    /// Adds a member. Returns false when the user was already a member.
    pub async fn add_group_member(&mut self, group_id: i64, user_id: i64) -> StoreResult<bool> {
        let added = sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group_id)
            .bind(user_id)
            .execute(self.connection())
            .await?
            .rows_affected()
            > 0;
        self.changed(ChangeEntity::Principal, user_id).await?;
        Ok(added)
    }

    pub async fn remove_group_member(&mut self, group_id: i64, user_id: i64) -> StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(self.connection())
            .await?
            .rows_affected()
            > 0;
        self.changed(ChangeEntity::Principal, user_id).await?;
        Ok(removed)
    }

    pub async fn grant_group_role(&mut self, group_id: i64, role: Role) -> StoreResult<bool> {
        let added = sqlx::query("INSERT INTO group_roles (group_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group_id)
            .bind(role.as_str())
            .execute(self.connection())
            .await?
            .rows_affected()
            > 0;
        self.announce_members(group_id).await?;
        Ok(added)
    }

    pub async fn revoke_group_role(&mut self, group_id: i64, role: Role) -> StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM group_roles WHERE group_id = $1 AND role = $2")
            .bind(group_id)
            .bind(role.as_str())
            .execute(self.connection())
            .await?
            .rows_affected()
            > 0;
        self.announce_members(group_id).await?;
        Ok(removed)
    }

    async fn member_ids(&mut self, group_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(self.connection())
            .await?;
        rows.iter().map(|row| Ok(row.try_get("user_id")?)).collect()
    }

    async fn announce_members(&mut self, group_id: i64) -> StoreResult<()> {
        for user_id in self.member_ids(group_id).await? {
            self.changed(ChangeEntity::Principal, user_id).await?;
        }
        Ok(())
    }
}
