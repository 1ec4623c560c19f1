//! The one end-to-end test binary: every test starts the real `keyward` executable on an
//! ephemeral port and runs on SQLite and, when `KEYWARD_TEST_DATABASE_URL` is set, on a
//! fresh PostgreSQL database.

mod harness;

mod admin_keys;
mod api_keys;
mod api_tokens;
mod audit;
mod auth_check;
mod deployer;
mod inputs;
mod ops;
mod passwords;
mod portal;
mod projects;
mod proxy;
mod realms;
mod service_accounts;
mod tokens;
mod users;
mod workloads;
