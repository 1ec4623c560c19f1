//! How long verifying a presented opaque key takes against an index of 1,000,000
//! credentials, next to the HMAC-SHA256 that every verification pays anyway: the
//! baseline, measured in the same run, that the other figures are read against.
//!
//! The index lives in a real `AppState`, loaded from an empty SQLite store and then
//! filled directly with a million real secrets' digests. Keys are presented in an order
//! unrelated to the order they were indexed in, so each lookup lands on cold buckets and
//! slots as it would under real traffic; `index_find_same_key` repeats one key to show
//! the cache-hot best case next to it.
//!
//! Run with `cargo bench -p keyward-benches --bench verify`.

use axum::http::{HeaderMap, HeaderValue, header};
use criterion::{BatchSize, Criterion, black_box};
use keyward_benches::{XorShift, create_store, credential_count, print_ratios, synthetic_credential};
use keyward_core::secret::check_format;
use keyward_core::{CredentialKind, MasterKey, Pepper, RoleSet, Secret, SecretDigest};
use rand_core::{OsRng, UnwrapErr};
use server::index::PrincipalInfo;
use server::{AppState, ServerConfig};
use std::net::IpAddr;
use std::time::{Instant, SystemTime};
use store::IndexedCredential;

const GROUP: &str = "verify_1m";
const BASELINE: &str = "hmac_sha256";
const MEASURED: [&str; 7] = [
    "check_format",
    "index_find",
    "index_find_dependent",
    "index_find_same_key",
    "index_find_absent",
    "check_format_digest_find",
    "authenticate",
];

/// Every opaque secret is `kwu_` + 33 base62 characters + a 6-character checksum.
const SECRET_LEN: usize = 43;
/// Keys are presented in the order `step * STRIDE mod n`, a permutation of all keys when
/// STRIDE and n share no factor, that jumps across the whole index on every step.
const STRIDE: usize = 618_033;
/// The one principal that owns every benchmark key, so `authenticate` finds an owner.
const OWNER_ID: i64 = 1;
const CLIENT_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

/// An `AppState` with `count` credentials and the keys to present, in presenting order.
struct Fixture {
    state: AppState,
    pepper: Pepper,
    /// Presented keys back to back, `SECRET_LEN` bytes each, so reading one is a
    /// sequential pass like reading a request that has just arrived.
    texts: String,
    /// The digests of `texts`, in the same order.
    digests: Vec<SecretDigest>,
    /// Well-formed digests that are not in the index.
    absent: Vec<SecretDigest>,
    _dir: tempfile::TempDir,
    /// Declared last so the state's pool is dropped while the runtime still exists.
    _runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn build(count: usize) -> Fixture {
        assert_eq!(greatest_common_divisor(STRIDE, count), 1, "the presenting order must visit every key");
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let master_key = MasterKey::from_bytes([7; 32]);
        let pepper = master_key.pepper();
        let (state, realm_id) = runtime.block_on(async {
            let (store, realm_id) = create_store(dir.path()).await.expect("empty store");
            let state = AppState::load(store, &master_key, ServerConfig::default()).await.expect("app state");
            // The change feed keeps the index current, as in a server. Without it,
            // `authenticate` refuses every key as "unavailable" ten seconds after the load
            // (`max_index_staleness`), and the benchmark would time that refusal.
            tokio::spawn(server::feed::follow(state.clone()));
            (state, realm_id)
        });
        state.index.upsert_principal(PrincipalInfo {
            id: OWNER_ID,
            public_id: "usr_bench".to_string(),
            realm_id,
            kind: "user".to_string(),
            username: "bench".to_string(),
            email: "bench@example.com".to_string(),
            enabled: true,
            roles: RoleSet::EMPTY,
            groups: Vec::new(),
            group_ids: Vec::new(),
            identity: Default::default(),
        });

        let mut rng = UnwrapErr(OsRng);
        let mut texts_by_id = String::with_capacity(count * SECRET_LEN);
        let mut digests_by_id = Vec::with_capacity(count);
        for id in 1..=count as i64 {
            let secret = Secret::generate(CredentialKind::UserApiKey, &mut rng);
            assert_eq!(secret.expose().len(), SECRET_LEN);
            let digest = pepper.digest(secret.expose());
            let credential =
                IndexedCredential { owner_id: Some(OWNER_ID), ..synthetic_credential(id, realm_id, digest) };
            state.index.upsert_credential(&credential);
            texts_by_id.push_str(secret.expose());
            digests_by_id.push(digest);
        }

        let mut texts = String::with_capacity(count * SECRET_LEN);
        let mut digests = Vec::with_capacity(count);
        for step in 0..count {
            let id_index = step * STRIDE % count;
            texts.push_str(&texts_by_id[id_index * SECRET_LEN..][..SECRET_LEN]);
            digests.push(digests_by_id[id_index]);
        }
        let mut filler = XorShift::new(0x6b65_7977_6172_6400);
        let absent = (0..count).map(|_| filler.digest()).collect();
        Fixture { state, pepper, texts, digests, absent, _dir: dir, _runtime: runtime }
    }

    fn text(&self, step: usize) -> &str {
        &self.texts[step * SECRET_LEN..][..SECRET_LEN]
    }

    /// Refuses to benchmark a fixture in which some path would measure a refusal.
    fn check(&self) {
        let count = self.digests.len();
        assert_eq!(self.state.index.credential_count(), count);
        assert!(self.digests.iter().all(|digest| self.state.index.find(digest).is_some()));
        assert!(self.absent.iter().all(|digest| self.state.index.find(digest).is_none()));
        for step in (0..count).step_by(count / 100) {
            let checked = check_format(self.text(step)).expect("well-formed key");
            assert!(self.state.index.find(&self.pepper.digest(checked.as_str())).is_some());
            let caller = self.state.authenticate(&bearer(self.text(step)), CLIENT_IP);
            assert!(caller.is_ok(), "authenticate refused a benchmark key: {:?}", caller.err());
        }
        self.state.last_used.lock().expect("last-used map").clear();
    }
}

fn greatest_common_divisor(mut left: usize, mut right: usize) -> usize {
    while right != 0 {
        (left, right) = (right, left % right);
    }
    left
}

fn bearer(text: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {text}")).expect("header value"));
    headers
}

/// Walks the presenting order, wrapping around.
struct Cursor {
    step: usize,
    count: usize,
}

impl Cursor {
    fn new(count: usize) -> Cursor {
        Cursor { step: 0, count }
    }

    fn next(&mut self) -> usize {
        let step = self.step;
        self.step = if step + 1 == self.count { 0 } else { step + 1 };
        step
    }
}

fn bench_verify(criterion: &mut Criterion, fixture: &Fixture) {
    let count = fixture.digests.len();
    let index = &fixture.state.index;
    let mut group = criterion.benchmark_group(GROUP);
    // Criterion calls each routine once per sample; the cursor lives outside it so that
    // a sample goes on where the last one stopped instead of revisiting warm keys.
    let mut cursor = Cursor::new(count);

    group.bench_function(BASELINE, |bencher| {
        bencher.iter(|| fixture.pepper.digest(black_box(fixture.text(cursor.next()))))
    });
    group.bench_function("check_format", |bencher| {
        bencher.iter(|| check_format(black_box(fixture.text(cursor.next()))).is_ok())
    });
    group.bench_function("index_find", |bencher| {
        bencher.iter(|| index.find(black_box(&fixture.digests[cursor.next()])))
    });
    // Here the next key depends on the last answer (through an AND with an opaque zero),
    // so lookups cannot overlap the way independent ones in a loop do, as they cannot
    // in `authenticate`, where the HMAC comes first: a lookup's latency, not throughput.
    group.bench_function("index_find_dependent", |bencher| {
        let mut previous_id = 0i64;
        bencher.iter(|| {
            let step = cursor.next() + (previous_id as usize & black_box(0));
            let found = index.find(&fixture.digests[step]);
            previous_id = found.as_ref().map_or(0, |found| found.id);
            found
        })
    });
    group.bench_function("index_find_same_key", |bencher| {
        let digest = fixture.digests[count / 2];
        bencher.iter(|| index.find(black_box(&digest)))
    });
    group.bench_function("index_find_absent", |bencher| {
        bencher.iter(|| index.find(black_box(&fixture.absent[cursor.next()])))
    });
    // What `authenticate` does with a presented key before any policy: checksum, HMAC,
    // lookup.
    group.bench_function("check_format_digest_find", |bencher| {
        bencher.iter(|| {
            let checked = check_format(black_box(fixture.text(cursor.next()))).ok()?;
            index.find(&fixture.pepper.digest(checked.as_str()))
        })
    });
    // The whole of `AppState::authenticate`, as a handler calls it. The header map is
    // built outside the timed part; the server gets it from hyper.
    let mut refused = 0usize;
    group.bench_function("authenticate", |bencher| {
        bencher.iter_batched_ref(
            || bearer(fixture.text(cursor.next())),
            |headers| {
                let caller = fixture.state.authenticate(headers, CLIENT_IP);
                refused += usize::from(caller.is_err());
                caller
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert_eq!(refused, 0, "authenticate refused benchmark keys while timed: the figure would be a refusal's");
}

fn main() {
    let run_started = SystemTime::now();
    // The server installs its Prometheus recorder before serving; counting costs time.
    let _ = server::metrics::handle();
    let count = credential_count();
    let building = Instant::now();
    let fixture = Fixture::build(count);
    fixture.check();
    println!("indexed {count} credentials in {:.2?}", building.elapsed());

    let mut criterion = Criterion::default().configure_from_args();
    bench_verify(&mut criterion, &fixture);
    criterion.final_summary();
    print_ratios(GROUP, BASELINE, &MEASURED, run_started);
}
