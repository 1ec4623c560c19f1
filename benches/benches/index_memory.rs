//! Bytes of heap per indexed credential at 1,000,000 credentials, counted by a global
//! allocator that wraps `System`. Counts what the index asks the allocator for, and the
//! peak while it is built (growing a table briefly holds the old and the new one).
//!
//! The baseline, measured in the same run, is the least any index must keep: the
//! 32-byte digests alone in an exactly sized `Vec`.
//!
//! Run with `cargo bench -p keyward-benches --bench index_memory`.

use keyward_benches::{CountingAllocator, XorShift, credential_count, synthetic_credential};
use keyward_core::SecretDigest;
use server::index::Index;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

/// The goal from the issue.
const GOAL_BYTES_PER_CREDENTIAL: f64 = 100.0;
const REALM_ID: i64 = 1;

/// Heap held by what `build` returns, and the most held at once while building it.
struct Footprint {
    live: usize,
    peak: usize,
}

fn measure<T>(build: impl FnOnce() -> T) -> (T, Footprint) {
    let before = ALLOCATOR.live();
    ALLOCATOR.reset_peak();
    let built = build();
    let footprint = Footprint { live: ALLOCATOR.live() - before, peak: ALLOCATOR.peak() - before };
    (built, footprint)
}

/// Fills `index` with `count` credentials, each with its own random digest, owner and
/// expiry. The same seed gives every scenario the same digests.
fn fill(index: Index, count: usize) -> Index {
    let mut rng = XorShift::new(0x6d65_6d6f_7279);
    for id in 1..=count as i64 {
        index.upsert_credential(&synthetic_credential(id, REALM_ID, rng.digest()));
    }
    index
}

/// The smallest count just past the last point, at or below `count`, where the hash map
/// doubles its buckets: hashbrown fills at most 7/8 of them. Right after a doubling the
/// map is least full, so this is the costliest count per credential below `count`.
fn just_past_last_doubling(count: usize) -> usize {
    let mut buckets = 8;
    while buckets * 2 / 8 * 7 < count {
        buckets *= 2;
    }
    buckets / 8 * 7 + 1
}

fn report(label: &str, footprint: &Footprint, count: usize, baseline_per_credential: f64) {
    let per_credential = footprint.live as f64 / count as f64;
    let verdict = if per_credential <= GOAL_BYTES_PER_CREDENTIAL { "meets" } else { "misses" };
    println!(
        "  {label:<38} live {:>7.2} MB = {per_credential:>6.2} B/credential ({:.2} × baseline; {verdict} the \
         {GOAL_BYTES_PER_CREDENTIAL} B goal); peak while building {:>6.2} B/credential",
        footprint.live as f64 / 1e6,
        per_credential / baseline_per_credential,
        footprint.peak as f64 / count as f64,
    );
}

fn main() {
    let count = credential_count();
    println!("heap per indexed credential, {count} credentials");

    let (digests, baseline) = measure(|| {
        let mut rng = XorShift::new(0x6d65_6d6f_7279);
        let mut digests: Vec<SecretDigest> = Vec::with_capacity(count);
        digests.extend((0..count).map(|_| rng.digest()));
        digests
    });
    let baseline_per_credential = baseline.live as f64 / count as f64;
    report("baseline: Vec<SecretDigest>, exact size", &baseline, count, baseline_per_credential);

    let (reserved, footprint) = measure(|| fill(Index::with_capacity(count), count));
    assert_eq!(reserved.credential_count(), count);
    assert!(reserved.find(&digests[count / 2]).is_some());
    report("Index::with_capacity(n) + n upserts", &footprint, count, baseline_per_credential);
    drop(reserved);

    // What `AppState::load` builds today: it starts from `Index::default()`.
    let (grown, footprint) = measure(|| fill(Index::default(), count));
    assert_eq!(grown.credential_count(), count);
    assert!(grown.find(&digests[count / 2]).is_some());
    report("Index::default() + n upserts", &footprint, count, baseline_per_credential);
    drop(grown);

    let worst = just_past_last_doubling(count);
    println!("just past the hash map's last doubling below {count}: {worst} credentials");
    let (reserved, footprint) = measure(|| fill(Index::with_capacity(worst), worst));
    assert_eq!(reserved.credential_count(), worst);
    report("Index::with_capacity(n) + n upserts", &footprint, worst, baseline_per_credential);
    drop(reserved);
    let (grown, footprint) = measure(|| fill(Index::default(), worst));
    assert_eq!(grown.credential_count(), worst);
    report("Index::default() + n upserts", &footprint, worst, baseline_per_credential);
}
