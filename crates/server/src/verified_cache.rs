//! Verified tokens by their string, bounded: the cache in front of keyward's own verifier
//! (`oidc::tokens`) and of remote issuers' (`remote_jwks`). When it is full, the oldest
//! entry makes room for the new one.
//!
//! Emptying it all at once made every client's next request pay a signature check at the
//! same moment, and freeing 16,384 entries in one go left the allocator off its fast path
//! for the allocations after: the uncached path cost 1 to 2 µs more.
//!
//! Each entry keeps the hash of its token, and the eviction queue holds the same hash, so
//! forgetting the oldest entry finds it by hash and pointer without reading its token
//! again: that entry was last touched thousands of verifications ago, its ~600 bytes are
//! out of the processor's caches, and rehashing them cost a noticeable part of verifying a
//! token not seen before.
//!
//! Keyed with foldhash, not SipHash: a token is ~600 bytes and hashed on every request.
//! Only verified tokens are inserted: a key is a token its issuer signed, whose bytes
//! (signature included) no one picks freely, and the seed is random per process, so
//! flooding one bucket is not a practical attack. Anyone can make a trusted issuer sign
//! many tokens, but that only cycles the cache, which has a fixed size.

use hashbrown::HashTable;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

/// How many verified tokens a cache remembers by default; past that, the oldest is
/// forgotten first.
pub const CAPACITY: usize = 16_384;

pub struct VerifiedCache<V> {
    capacity: usize,
    entries: RwLock<Entries<V>>,
}

struct Entries<V> {
    hasher: foldhash::fast::RandomState,
    by_token: HashTable<Entry<V>>,
    /// The same entries' hashes and keys, oldest first.
    order: VecDeque<(u64, Arc<str>)>,
}

struct Entry<V> {
    hash: u64,
    token: Arc<str>,
    value: Arc<V>,
}

impl<V> Default for VerifiedCache<V> {
    fn default() -> Self {
        VerifiedCache::new(CAPACITY)
    }
}

impl<V> VerifiedCache<V> {
    pub fn new(capacity: usize) -> VerifiedCache<V> {
        VerifiedCache {
            capacity,
            entries: RwLock::new(Entries {
                hasher: foldhash::fast::RandomState::default(),
                by_token: HashTable::new(),
                order: VecDeque::new(),
            }),
        }
    }

    pub fn get(&self, token: &str) -> Option<Arc<V>> {
        let entries = self.entries.read().ok()?;
        let hash = entries.hasher.hash_one(token);
        entries.by_token.find(hash, |entry| *entry.token == *token).map(|entry| entry.value.clone())
    }

    pub fn insert(&self, token: &str, value: Arc<V>) {
        let Ok(mut guard) = self.entries.write() else { return };
        let entries = &mut *guard;
        let hash = entries.hasher.hash_one(token);
        // Two requests may verify the same new token at once; the second insert only
        // replaces the value, and the key keeps its first place in the order.
        if let Some(entry) = entries.by_token.find_mut(hash, |entry| *entry.token == *token) {
            entry.value = value;
            return;
        }
        while entries.by_token.len() >= self.capacity {
            let Some((oldest_hash, oldest)) = entries.order.pop_front() else { break };
            if let Ok(entry) = entries.by_token.find_entry(oldest_hash, |entry| Arc::ptr_eq(&entry.token, &oldest)) {
                entry.remove();
            }
        }
        let token: Arc<str> = Arc::from(token);
        entries.order.push_back((hash, token.clone()));
        entries.by_token.insert_unique(hash, Entry { hash, token, value }, |entry| entry.hash);
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|entries| entries.by_token.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys the eviction queue holds; always [`VerifiedCache::len`].
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.entries.read().map(|entries| entries.order.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_forgets_its_oldest_token_first() {
        let capacity = 1_000;
        let cache = VerifiedCache::new(capacity);
        for n in 0..capacity + 2 {
            cache.insert(&format!("token-{n}"), Arc::new(n));
        }
        assert!(cache.get("token-0").is_none() && cache.get("token-1").is_none());
        assert_eq!(cache.get("token-2").as_deref(), Some(&2));
        assert_eq!(cache.get(&format!("token-{}", capacity + 1)).as_deref(), Some(&(capacity + 1)));
        assert_eq!((cache.len(), cache.queued()), (capacity, capacity));
        // Inserting a token it holds replaces the value and keeps the token's place.
        cache.insert("token-2", Arc::new(7));
        assert_eq!(cache.get("token-2").as_deref(), Some(&7));
        assert_eq!((cache.len(), cache.queued()), (capacity, capacity));
        cache.insert("token-new", Arc::new(8));
        assert!(cache.get("token-2").is_none(), "token-2 was still the oldest");
        assert_eq!(cache.get("token-3").as_deref(), Some(&3));
        assert_eq!((cache.len(), cache.queued()), (capacity, capacity));
    }

    #[test]
    fn a_token_is_found_only_by_its_exact_string() {
        let cache = VerifiedCache::new(8);
        cache.insert("eyJ.a.b", Arc::new(1));
        assert_eq!(cache.get("eyJ.a.b").as_deref(), Some(&1));
        for other in ["eyJ.a.B", "eyJ.a.b ", "eyJ.a.", ""] {
            assert!(cache.get(other).is_none(), "{other:?}");
        }
    }
}
