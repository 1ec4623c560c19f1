//! People's password hashes (argon2id PHC strings in `users.password_hash`).
//!
//! The hash is read only here and only for a password check: it is not a column of
//! `UserRow` or `PrincipalRow`, so it never reaches the index, a list or a response.
//! Setting one records no change for the change feed, because no index keeps it.

use crate::{Mutation, Store, StoreError, StoreResult, to_ms};
use sqlx::Row;
use time::OffsetDateTime;

/// What a password login needs to know about a username.
#[derive(Clone)]
pub struct PasswordLoginRow {
    pub user_id: i64,
    pub public_id: String,
    /// `user` or `service`.
    pub kind: String,
    pub enabled: bool,
    /// `None` when the user has no password.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for PasswordLoginRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PasswordLoginRow")
            .field("user_id", &self.user_id)
            .field("public_id", &self.public_id)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .field("has_password", &self.password_hash.is_some())
            .finish()
    }
}

impl Store {
    /// The user called `username` in the realm, with what a login check needs.
    pub async fn password_login_row(&self, realm_id: i64, username: &str) -> StoreResult<Option<PasswordLoginRow>> {
        let row = sqlx::query(
            "SELECT id, public_id, kind, enabled, password_hash FROM users WHERE realm_id = $1 AND username = $2",
        )
        .bind(realm_id)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(PasswordLoginRow {
                user_id: row.try_get("id")?,
                public_id: row.try_get("public_id")?,
                kind: row.try_get("kind")?,
                enabled: row.try_get::<i64, _>("enabled")? != 0,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// The user's password hash, `None` when they have none.
    pub async fn password_hash(&self, user_id: i64) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT password_hash FROM users WHERE id = $1").bind(user_id).fetch_one(&self.pool).await?;
        Ok(row.try_get("password_hash")?)
    }
}

impl Mutation {
    /// Sets the user's password hash, whatever it was.
    pub async fn set_password_hash(&mut self, user_id: i64, hash: &str, now: OffsetDateTime) -> StoreResult<()> {
        let affected =
            sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(to_ms(now))
                .bind(user_id)
                .execute(self.connection())
                .await?
                .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Replaces the user's password hash only if it is still `expected` (`None`: no
    /// password). The old one is checked outside any transaction, because argon2 is
    /// slow; this makes sure nobody changed it meanwhile. Returns false when someone did.
    pub async fn replace_password_hash(
        &mut self,
        user_id: i64,
        expected: Option<&str>,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let affected = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 \
             WHERE id = $3 AND COALESCE(password_hash, '') = $4",
        )
        .bind(hash)
        .bind(to_ms(now))
        .bind(user_id)
        .bind(expected.unwrap_or(""))
        .execute(self.connection())
        .await?
        .rows_affected();
        Ok(affected > 0)
    }
}
