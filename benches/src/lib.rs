//! What keyward's benchmarks share: reproducible synthetic credentials, a throwaway SQLite
//! store, a counting allocator, and a way to read criterion's own estimates back so that
//! every benchmark prints its ratio to a baseline measured in the same run (STYLE.md,
//! rule 10).
//!
//! Nothing in keyward depends on this crate. It depends on `server`, `store` and
//! `keyward_core` only to build the states the benchmarks measure.

use keyward_core::{CredentialKind, SecretDigest};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use store::{IndexedCredential, Store, StoreResult};
use time::OffsetDateTime;

/// The index size every goal in the issue is stated for.
pub const CREDENTIALS: usize = 1_000_000;

/// How many credentials a smoke run (`cargo test --benches`, no `--bench` flag) uses, so
/// that checking the benchmarks still work does not cost a release-sized workload.
pub const SMOKE_CREDENTIALS: usize = 10_000;

/// Whether cargo started this binary as a benchmark (`cargo bench` passes `--bench`);
/// otherwise it is a smoke run and should stay small.
pub fn is_bench_run() -> bool {
    std::env::args().any(|argument| argument == "--bench")
}

/// How many credentials this run indexes: the full million under `cargo bench`. A smoke
/// run says so first, since its figures are not the ones the goals are about.
pub fn credential_count() -> usize {
    if is_bench_run() {
        return CREDENTIALS;
    }
    println!("smoke run with {SMOKE_CREDENTIALS} credentials; `cargo bench` measures {CREDENTIALS}");
    SMOKE_CREDENTIALS
}

/// xorshift64*: a fast, seeded generator for filler such as digests of credentials
/// nobody will present. Not a CSPRNG; real secrets in the benchmarks come from the OS.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // Zero is the one state xorshift never leaves.
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 32 uniformly random bytes, shaped like an HMAC-SHA256 output.
    pub fn digest(&mut self) -> SecretDigest {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        SecretDigest(bytes)
    }
}

/// Expiry of the synthetic credentials: 2040-01-01 plus a second per id, so every
/// credential has its own expiry and none expires while a benchmark runs.
const SYNTHETIC_EXPIRY_BASE: i64 = 2_208_988_800;

/// A user API key as the index receives it, with its own owner id and expiry.
pub fn synthetic_credential(id: i64, realm_id: i64, digest: SecretDigest) -> IndexedCredential {
    IndexedCredential {
        id,
        realm_id,
        kind: CredentialKind::UserApiKey,
        owner_id: Some(id),
        audience: None,
        digest,
        expires_at: Some(SYNTHETIC_EXPIRY_BASE + id),
        role_ceiling: None,
        group_ceiling: None,
    }
}

/// The URL of the SQLite database the benchmarks keep in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/k.db?mode=rwc", dir.display())
}

/// Creates an empty, migrated store in `dir` with the default realm, which
/// `AppState::load` needs. Returns the store and the realm's id.
pub async fn create_store(dir: &Path) -> StoreResult<(Store, i64)> {
    let store = Store::connect(&sqlite_url(dir)).await?;
    store.migrate().await?;
    let (realm, _) = store.ensure_realm("default", OffsetDateTime::now_utc()).await?;
    Ok((store, realm.id))
}

/// A global allocator that forwards to `System` and counts the bytes requested and not
/// yet freed, and their peak. It counts what Rust asks for, not the allocator's own
/// bookkeeping, which for the few large blocks an index uses is a rounding error.
pub struct CountingAllocator {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingAllocator {
    pub const fn new() -> CountingAllocator {
        CountingAllocator { live: AtomicUsize::new(0), peak: AtomicUsize::new(0) }
    }

    /// Bytes allocated and not yet freed.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The most bytes live at once since the last `reset_peak`.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn reset_peak(&self) {
        self.peak.store(self.live(), Ordering::Relaxed);
    }

    fn grew(&self, bytes: usize) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(live, Ordering::Relaxed);
    }

    fn shrank(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Default for CountingAllocator {
    fn default() -> Self {
        CountingAllocator::new()
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            self.grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            self.grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator, hence from `System`, with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; on failure the old block is untouched and still counted.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            self.shrank(layout.size());
            self.grew(new_size);
        }
        moved
    }
}

/// Criterion's estimate of one benchmark's time per iteration, in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Estimate {
    pub median_ns: f64,
    /// The 95 % confidence interval of the median.
    pub median_low_ns: f64,
    pub median_high_ns: f64,
    /// Median absolute deviation of the samples: the spread.
    pub median_abs_dev_ns: f64,
}

/// Where criterion 0.5 writes its results, found the way it finds it: `CRITERION_HOME`,
/// then `CARGO_TARGET_DIR/criterion`, then the target directory `cargo metadata` names.
pub fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let output = Command::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]).output().ok()?;
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        metadata["target_directory"].as_str().map(PathBuf::from)
    });
    from_metadata.unwrap_or_else(|| PathBuf::from("target")).join("criterion")
}

/// Reads criterion's estimate for `group/function`, but only one written at or after
/// `since`: a stale figure from an earlier run must never pass for this run's. `None`
/// when the benchmark did not run to completion in this run (filtered out, `--test`).
pub fn read_estimate(group: &str, function: &str, since: SystemTime) -> Option<Estimate> {
    let path = criterion_home().join(group).join(function).join("new").join("estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let median = &estimates["median"];
    Some(Estimate {
        median_ns: median["point_estimate"].as_f64()?,
        median_low_ns: median["confidence_interval"]["lower_bound"].as_f64()?,
        median_high_ns: median["confidence_interval"]["upper_bound"].as_f64()?,
        median_abs_dev_ns: estimates["median_abs_dev"]["point_estimate"].as_f64()?,
    })
}

/// Formats nanoseconds with a unit that keeps three or four significant digits.
pub fn format_nanos(nanos: f64) -> String {
    if nanos < 1e3 {
        format!("{nanos:.1} ns")
    } else if nanos < 1e6 {
        format!("{:.3} µs", nanos / 1e3)
    } else if nanos < 1e9 {
        format!("{:.2} ms", nanos / 1e6)
    } else {
        format!("{:.3} s", nanos / 1e9)
    }
}

pub fn format_duration(duration: Duration) -> String {
    format_nanos(duration.as_secs_f64() * 1e9)
}

/// Prints each benchmark of `group` next to `baseline` from the same run, as a ratio of
/// medians, so the figures can be compared across machines of different speed.
pub fn print_ratios(group: &str, baseline: &str, functions: &[&str], since: SystemTime) {
    println!();
    let Some(base) = read_estimate(group, baseline, since) else {
        println!("{group}: baseline {baseline} was not measured in this run; no ratios.");
        return;
    };
    println!("{group}: medians from this run, as a ratio to the baseline {baseline}");
    let width = functions.iter().chain([&baseline]).map(|name| name.len()).max().unwrap_or(0);
    for function in [baseline].iter().chain(functions) {
        match read_estimate(group, function, since) {
            Some(estimate) => println!(
                "  {function:<width$}  median {:>10}  (95% CI {} – {}, MAD {})  = {:.3} × {baseline}",
                format_nanos(estimate.median_ns),
                format_nanos(estimate.median_low_ns),
                format_nanos(estimate.median_high_ns),
                format_nanos(estimate.median_abs_dev_ns),
                estimate.median_ns / base.median_ns,
            ),
            None => println!("  {function:<width$}  not measured in this run"),
        }
    }
}

/// The median of `values`, which must not be empty.
pub fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let middle = sorted.len() / 2;
    match sorted.len() % 2 {
        0 => (sorted[middle - 1] + sorted[middle]) / 2,
        _ => sorted[middle],
    }
}

/// What [`paired_ratio`] measured: per-call times and their ratio, pair by pair.
#[derive(Clone, Debug)]
pub struct PairedRatio {
    pub pairs: usize,
    pub batch: usize,
    /// The median over pairs of (measured time ÷ baseline time), and its interquartile range.
    pub median_ratio: f64,
    pub ratio_p25: f64,
    pub ratio_p75: f64,
    /// Median time per call of each side, in nanoseconds.
    pub baseline_ns: f64,
    pub measured_ns: f64,
}

impl PairedRatio {
    /// One line: the ratio with its spread, and both sides' medians.
    pub fn describe(&self, measured: &str, baseline: &str) -> String {
        format!(
            "{measured} / {baseline}: median {:.3} × (IQR {:.3} – {:.3}; {} pairs of {} calls); per call {} vs {}",
            self.median_ratio,
            self.ratio_p25,
            self.ratio_p75,
            self.pairs,
            self.batch,
            format_nanos(self.measured_ns),
            format_nanos(self.baseline_ns),
        )
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

/// Times `batch` calls of `baseline`, then `batch` calls of `measured` (the other way round
/// every other pair, so a drift in machine load does not favour either), `pairs` times
/// after two pairs of warm-up, and returns the median of the per-pair ratios. On a shared,
/// noisy machine the two halves of a pair run milliseconds apart and see the same load,
/// so this ratio moves far less than the ratio of two medians taken seconds apart.
pub fn paired_ratio(batch: usize, pairs: usize, mut baseline: impl FnMut(), mut measured: impl FnMut()) -> PairedRatio {
    assert!(batch > 0 && pairs > 0);
    fn time(batch: usize, routine: &mut dyn FnMut()) -> f64 {
        let started = std::time::Instant::now();
        for _ in 0..batch {
            routine();
        }
        started.elapsed().as_nanos() as f64 / batch as f64
    }
    let (mut ratios, mut baselines, mut measureds) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs + 2 {
        let (base, meas) = if pair % 2 == 0 {
            let base = time(batch, &mut baseline);
            (base, time(batch, &mut measured))
        } else {
            let meas = time(batch, &mut measured);
            (time(batch, &mut baseline), meas)
        };
        if pair >= 2 {
            ratios.push(meas / base);
            baselines.push(base);
            measureds.push(meas);
        }
    }
    for values in [&mut ratios, &mut baselines, &mut measureds] {
        values.sort_by(f64::total_cmp);
    }
    PairedRatio {
        pairs,
        batch,
        median_ratio: quantile(&ratios, 0.5),
        ratio_p25: quantile(&ratios, 0.25),
        ratio_p75: quantile(&ratios, 0.75),
        baseline_ns: quantile(&baselines, 0.5),
        measured_ns: quantile(&measureds, 0.5),
    }
}
