//! The data dir: the master key file and, by default, the SQLite database. Opening it
//! also migrates the store and makes sure the configured realm exists.

use anyhow::Context;
use keyward_core::MasterKey;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use store::{RealmRow, Store};
use time::OffsetDateTime;

const MASTER_KEY_FILE: &str = "master.key";

/// Reads the master key, creating the data dir (0700) and the key file (0600) if this
/// is the first start.
pub fn master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    if !data_dir.exists() {
        fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))?;
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if !path.exists() {
        let key = MasterKey::generate(&mut rand_core::UnwrapErr(rand_core::OsRng));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(key.to_file_text().as_bytes())?;
        file.sync_all()?;
    }
    let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
    anyhow::ensure!(mode & 0o077 == 0, "{} is readable by others (mode {mode:o}); run chmod 600 on it", path.display());
    let text =
        zeroize::Zeroizing::new(fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
    MasterKey::from_file_text(&text).with_context(|| format!("{} does not hold a master key", path.display()))
}

/// An opened, migrated store with the realm in place.
pub struct Opened {
    pub store: Store,
    pub master_key: MasterKey,
    pub realm: RealmRow,
}

pub async fn open(config: &crate::config::Config) -> anyhow::Result<Opened> {
    let master_key = master_key(&config.data_dir)?;
    let url = config.database_url();
    let store =
        Store::connect(&url).await.context("connecting to the database")?.with_audit_key(master_key.audit_key());
    store.migrate().await.context("migrating the database")?;
    let check = master_key.check_value();
    let stored = store.setting_or_insert("master_key_check", &check).await?;
    anyhow::ensure!(
        stored == check,
        "the master key in {} is not the one this database was created with; \
         copy master.key from the data dir of the first node",
        config.data_dir.display()
    );
    let (realm, _) = store.ensure_realm(&config.realm, OffsetDateTime::now_utc()).await?;
    Ok(Opened { store, master_key, realm })
}
