//! How long a server takes to load 1,000,000 credentials from SQLite at start:
//! `AppState::load` end to end, timed over several runs.
//!
//! The baseline, measured in the same runs, is reading the same rows one row at a time
//! through sqlx's own SQLite driver and dropping them: the plain way to get the data out
//! of the database (and how `AppState::load` read it before it asked SQLite to pack
//! each id range into one value). Building the index from
//! rows already in memory is timed too, to show where the rest goes.
//!
//! Whole-system timing, so a plain binary rather than criterion: one load takes seconds,
//! and criterion's minimum of ten samples would add minutes without better figures.
//! Every run reads a database file that is in the OS page cache (it was just written);
//! a cold start from disk is slower.
//!
//! Run with `cargo bench -p keyward-benches --bench startup_load`.

use futures_util::TryStreamExt;
use keyward_benches::{
    XorShift, create_store, credential_count, format_duration, is_bench_run, median, sqlite_url, synthetic_credential,
};
use keyward_core::MasterKey;
use server::index::Index;
use server::{AppState, ServerConfig};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::str::FromStr;
use std::time::{Duration, Instant};
use store::{IndexedCredential, Store};

/// The goal from the issue.
const GOAL: Duration = Duration::from_secs(3);

/// 2026-01-01 in unix milliseconds, as the store keeps times.
const CREATED_AT_MS: i64 = 1_767_225_600_000;
/// Every key expires a year after it was made, a millisecond apart from the next.
const LIFETIME_MS: i64 = 365 * 86_400_000;

/// Rows per call of the one prepared INSERT: many rows a call keep sqlx's per-statement
/// overhead from dominating the setup.
const ROWS_PER_INSERT: usize = 100;

/// Inserts `count` user API keys in one transaction with one prepared statement. Each
/// has its own public id, name (unique per owner among active keys), digest and expiry.
async fn insert_credentials(url: &str, realm_id: i64, count: usize) -> sqlx::Result<()> {
    assert_eq!(count % ROWS_PER_INSERT, 0, "the count must fill whole statements");
    // A 256 MiB page cache keeps the unique indexes' random inserts off the file; this
    // only makes the setup quicker and does not touch what is measured.
    let options = SqliteConnectOptions::from_str(url)?.pragma("cache_size", "-262144");
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    let rows = vec!["(?, ?, 'user_api_key', NULL, ?, 'kwu_AAAA', ?, ?, 'bench', ?)"; ROWS_PER_INSERT].join(", ");
    let sql = format!(
        "INSERT INTO credentials (public_id, realm_id, kind, owner_id, name, secret_prefix, secret_hash, \
         created_at, created_by, expires_at) VALUES {rows}"
    );
    let mut transaction = pool.begin().await?;
    let mut rng = XorShift::new(0x6c6f_6164);
    for first in (0..count as i64).step_by(ROWS_PER_INSERT) {
        let mut insert = sqlx::query(&sql);
        for number in first..first + ROWS_PER_INSERT as i64 {
            insert = insert
                .bind(format!("key_{number:08}"))
                .bind(realm_id)
                .bind(format!("bench key {number}"))
                .bind(rng.digest().0.to_vec())
                .bind(CREATED_AT_MS)
                .bind(CREATED_AT_MS + LIFETIME_MS + number);
        }
        insert.execute(&mut *transaction).await?;
    }
    transaction.commit().await?;
    // Closing the only connection checkpoints the write-ahead log into the database
    // file, as it would be when a server starts.
    pool.close().await;
    Ok(())
}

type IndexRow = (i64, i64, String, Option<i64>, Option<String>, Vec<u8>, Option<i64>);

/// The baseline: the index columns of every active row, one row at a time through sqlx's
/// native SQLite driver, decoded into owned values and dropped.
async fn read_rows(url: &str) -> sqlx::Result<usize> {
    let pool = SqlitePoolOptions::new().max_connections(1).connect(url).await?;
    let mut rows = sqlx::query_as::<_, IndexRow>(
        "SELECT id, realm_id, kind, owner_id, audience, secret_hash, expires_at FROM credentials \
         WHERE revoked_at IS NULL",
    )
    .fetch(&pool);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        std::hint::black_box(row);
        count += 1;
    }
    drop(rows);
    pool.close().await;
    Ok(count)
}

/// `AppState::load` on a freshly connected store, as the binary does at start. Returns
/// the time of the load alone and how many credentials it indexed.
async fn load(url: &str) -> (Duration, usize) {
    let store = Store::connect(url).await.expect("connect");
    let master_key = MasterKey::from_bytes([7; 32]);
    let started = Instant::now();
    let state = AppState::load(store.clone(), &master_key, ServerConfig::default()).await.expect("load");
    let elapsed = started.elapsed();
    let indexed = state.index.credential_count();
    drop(state);
    store.close().await;
    (elapsed, indexed)
}

fn summary(times: &[Duration]) -> String {
    let fastest = times.iter().min().copied().unwrap_or_default();
    let slowest = times.iter().max().copied().unwrap_or_default();
    format!(
        "median {} (min {}, max {}; runs: {})",
        format_duration(median(times)),
        format_duration(fastest),
        format_duration(slowest),
        times.iter().map(|time| format_duration(*time)).collect::<Vec<_>>().join(", ")
    )
}

async fn run(count: usize, runs: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = sqlite_url(dir.path());
    let (store, realm_id) = create_store(dir.path()).await.expect("empty store");
    store.close().await;

    let started = Instant::now();
    insert_credentials(&url, realm_id, count).await.expect("bulk insert");
    let size = std::fs::metadata(dir.path().join("k.db")).map(|metadata| metadata.len()).unwrap_or(0);
    println!(
        "setup: inserted {count} credentials in {} (database file {:.1} MB)",
        format_duration(started.elapsed()),
        size as f64 / 1e6
    );

    let mut rng = XorShift::new(0x6c6f_6164);
    let credentials: Vec<IndexedCredential> =
        (1..=count as i64).map(|id| synthetic_credential(id, realm_id, rng.digest())).collect();

    let mut baseline_times = Vec::with_capacity(runs);
    let mut build_times = Vec::with_capacity(runs);
    let mut load_times = Vec::with_capacity(runs);
    for number in 1..=runs {
        let started = Instant::now();
        let read = read_rows(&url).await.expect("read rows");
        let baseline = started.elapsed();
        assert_eq!(read, count);

        let started = Instant::now();
        let index = Index::default();
        credentials.iter().for_each(|credential| index.upsert_credential(credential));
        let build = started.elapsed();
        assert_eq!(index.credential_count(), count);
        drop(index);

        let (loaded, indexed) = load(&url).await;
        assert_eq!(indexed, count);
        println!(
            "run {number}: AppState::load {}  baseline sqlx read {}  index build from memory {}",
            format_duration(loaded),
            format_duration(baseline),
            format_duration(build),
        );
        baseline_times.push(baseline);
        build_times.push(build);
        load_times.push(loaded);
    }

    let load_median = median(&load_times);
    let baseline_median = median(&baseline_times);
    println!();
    println!("startup load of {count} credentials from SQLite (runs: {runs})");
    println!("  AppState::load          {}", summary(&load_times));
    println!("  baseline: sqlx read     {}", summary(&baseline_times));
    println!("  index build from memory {}", summary(&build_times));
    println!(
        "  AppState::load = {:.2} × baseline; {} the {} goal",
        load_median.as_secs_f64() / baseline_median.as_secs_f64(),
        if load_median <= GOAL { "meets" } else { "misses" },
        format_duration(GOAL)
    );
}

fn main() {
    let runs = if is_bench_run() { 5 } else { 1 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(credential_count(), runs));
}
