//! Store-wide settings.

use crate::{Store, StoreResult};
use sqlx::Row;

impl Store {
    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(|row| row.try_get("value")).transpose()?)
    }

    /// Sets `name` unless it is already set; returns the value now stored.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(self.setting(name).await?.unwrap_or_else(|| value.to_string()))
    }
}
