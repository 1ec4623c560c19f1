//! The in-memory credential index: every active credential's digest and what
//! `authenticate()` needs to decide, so the request path never waits on the database.
//!
//! Memory matters at a million credentials. The hash map holds the first 16 bytes of
//! each digest mapped to a slot number (20 bytes a bucket); the slots hold the other 16
//! bytes and the credential's facts (48 bytes). A lookup compares the whole 32-byte
//! digest in constant time. Keys of the map are HMAC outputs under a secret pepper, so
//! nobody can choose them: hashing them again would be wasted work, and the map uses
//! their first 8 bytes as the hash.

use keyward_core::{CredentialKind, RoleSet, SecretDigest};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, RwLock};
use store::{IndexedCredential, PrincipalRow};

#[derive(Clone, Copy, PartialEq, Eq)]
struct DigestHead([u8; 16]);

impl Hash for DigestHead {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_ne_bytes(first));
    }
}

/// Passes through the u64 that `DigestHead` writes.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[derive(Clone, Copy)]
struct Slot {
    digest_tail: [u8; 16],
    id: i64,
    /// 0 when the credential has no owner (admin keys).
    owner_id: i64,
    /// Unix seconds; `i64::MAX` when it never expires.
    expires_at: i64,
    realm_id: u32,
    kind: u8,
    /// Index into `audiences`, 0 for none.
    audience: u16,
    /// The role ceiling's bits, `NO_CEILING` for none (it fits the slot's padding).
    role_ceiling: u8,
}

const NO_CEILING: u8 = u8::MAX;

// A million slots: the ceiling must not make them larger.
const _: () = assert!(std::mem::size_of::<Slot>() == 48);

fn ceiling_from_slot(bits: u8) -> Option<RoleSet> {
    // A stored ceiling naming no role set never reaches a slot (the store refuses it);
    // were one to, it would hold no role rather than every role.
    if bits == NO_CEILING { None } else { Some(RoleSet::from_bits(bits).unwrap_or(RoleSet::EMPTY)) }
}

/// The most a credential acts with, whatever its principal holds now: a run's credential
/// started by a launcher that is not an admin, and the access tokens exchanged from it,
/// hold at most the roles, and act through at most the groups (ids), its user had when the
/// run started. `None` in either: the principal's, as they are now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ceiling {
    pub roles: Option<RoleSet>,
    pub groups: Option<Arc<[i64]>>,
}

impl Ceiling {
    /// Whether anything is bounded (and so a principal's own answers do not apply as
    /// they are).
    pub fn is_bounded(&self) -> bool {
        self.roles.is_some() || self.groups.is_some()
    }

    /// Whether the credential acts through group `id` (when its principal is a member).
    pub fn admits_group(&self, id: i64) -> bool {
        self.groups.as_ref().is_none_or(|ids| ids.contains(&id))
    }
}

/// A credential as the index knows it, copied out of the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundCredential {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub realm_id: i64,
    pub kind: CredentialKind,
    /// The audience the credential is bound to, read under the same lock as the rest:
    /// audience numbers are reused once no credential holds them.
    pub audience: Option<Arc<str>>,
    /// The most it acts with; unbounded: its owner's roles and groups.
    pub ceiling: Ceiling,
}

#[derive(Default)]
struct Credentials {
    by_head: HashMap<DigestHead, u32, BuildHasherDefault<PassThroughHasher>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    audiences: Audiences,
    /// Group ceilings by slot: only runs' credentials have one, and only a slot with a
    /// role ceiling is looked up here, so other credentials pay nothing for it.
    group_ceilings: HashMap<u32, Arc<[i64]>>,
}

/// The audiences credentials are bound to, numbered so a slot holds two bytes. There is
/// one per alias-header audience and one per API service or deployment with keys, so
/// numbers are counted and reused once no credential holds them.
#[derive(Default)]
struct Audiences {
    /// Label by number; number 0 is "no audience" and is never counted.
    labels: Vec<Option<Arc<str>>>,
    numbers: HashMap<Arc<str>, u16>,
    /// How many slots hold each number.
    holders: Vec<u32>,
    free: Vec<u16>,
}

/// The number given when every other is taken: it has no label, so such a key matches
/// no header audience and is refused (fails closed).
const AUDIENCE_OVERFLOW: u16 = u16::MAX;

impl Audiences {
    fn acquire(&mut self, audience: Option<&str>) -> u16 {
        let Some(audience) = audience else { return 0 };
        if self.labels.is_empty() {
            self.labels.push(None);
            self.holders.push(0);
        }
        let number = match self.numbers.get(audience) {
            Some(number) => *number,
            None => {
                let label: Arc<str> = Arc::from(audience);
                let number = match self.free.pop() {
                    Some(number) => {
                        self.labels[usize::from(number)] = Some(label.clone());
                        number
                    }
                    None if self.labels.len() < usize::from(AUDIENCE_OVERFLOW) => {
                        self.labels.push(Some(label.clone()));
                        self.holders.push(0);
                        (self.labels.len() - 1) as u16
                    }
                    None => return AUDIENCE_OVERFLOW,
                };
                self.numbers.insert(label, number);
                number
            }
        };
        self.holders[usize::from(number)] += 1;
        number
    }

    fn release(&mut self, number: u16) {
        if number == 0 || number == AUDIENCE_OVERFLOW {
            return;
        }
        let index = usize::from(number);
        let Some(holders) = self.holders.get_mut(index) else { return };
        if *holders == 0 {
            return;
        }
        *holders -= 1;
        if *holders == 0 {
            if let Some(label) = self.labels[index].take() {
                self.numbers.remove(&label);
            }
            self.free.push(number);
        }
    }

    fn label(&self, number: u16) -> Option<Arc<str>> {
        if number == AUDIENCE_OVERFLOW {
            // Not "no audience": a label no header or gateway path is bound to.
            return Some(Arc::from("\0audience-overflow"));
        }
        self.labels.get(usize::from(number)).cloned().flatten()
    }
}

/// The principal facts `authenticate()` and authorization need.
#[derive(Clone, Debug)]
pub struct PrincipalInfo {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub kind: String,
    pub username: String,
    pub email: String,
    pub enabled: bool,
    pub roles: RoleSet,
    /// Group names, sorted: for the auth check's identity headers.
    pub groups: Vec<String>,
    /// The same groups' ids, in the same order.
    pub group_ids: Vec<i64>,
    /// This principal's identity headers and auth check answer, one per credential kind
    /// (`api::auth_check::identity_headers`), made on first use and kept: a principal
    /// that changes is replaced, not mutated.
    pub identity: crate::api::auth_check::IdentityCache,
}

impl From<PrincipalRow> for PrincipalInfo {
    fn from(row: PrincipalRow) -> Self {
        PrincipalInfo {
            id: row.id,
            public_id: row.public_id,
            realm_id: row.realm_id,
            kind: row.kind,
            username: row.username,
            email: row.email,
            enabled: row.enabled,
            roles: row.roles,
            groups: row.groups,
            group_ids: row.group_ids,
            identity: Default::default(),
        }
    }
}

#[derive(Default)]
pub struct Index {
    credentials: RwLock<Credentials>,
    principals: RwLock<Principals>,
}

/// Principals by internal id, and the public id an access token's `sub` names them by.
#[derive(Default)]
struct Principals {
    by_id: HashMap<i64, Arc<PrincipalInfo>>,
    by_public_id: HashMap<String, i64>,
}

fn split(digest: &SecretDigest) -> (DigestHead, [u8; 16]) {
    let mut head = [0u8; 16];
    let mut tail = [0u8; 16];
    head.copy_from_slice(&digest.0[..16]);
    tail.copy_from_slice(&digest.0[16..]);
    (DigestHead(head), tail)
}

fn constant_time_eq(left: &[u8; 16], right: &[u8; 16]) -> bool {
    let mut difference = 0u8;
    for (a, b) in left.iter().zip(right) {
        difference |= a ^ b;
    }
    std::hint::black_box(difference) == 0
}

impl Credentials {
    fn upsert(&mut self, credential: &IndexedCredential) {
        let (head, digest_tail) = split(&credential.digest);
        let slot = Slot {
            digest_tail,
            id: credential.id,
            owner_id: credential.owner_id.unwrap_or(0),
            expires_at: credential.expires_at.unwrap_or(i64::MAX),
            realm_id: credential.realm_id as u32,
            kind: credential.kind.as_u8(),
            audience: self.audiences.acquire(credential.audience.as_deref()),
            // A group ceiling is found through the role ceiling's byte; the store never
            // writes one without the other, and were it to, the credential holds no role.
            role_ceiling: match (credential.role_ceiling, &credential.group_ceiling) {
                (Some(roles), _) => roles.bits(),
                (None, Some(_)) => RoleSet::EMPTY.bits(),
                (None, None) => NO_CEILING,
            },
        };
        let position = match self.by_head.get(&head) {
            Some(position) => {
                let previous = std::mem::replace(&mut self.slots[*position as usize], slot);
                self.audiences.release(previous.audience);
                *position
            }
            None => {
                let position = match self.free.pop() {
                    Some(position) => {
                        self.slots[position as usize] = slot;
                        position
                    }
                    None => {
                        self.slots.push(slot);
                        (self.slots.len() - 1) as u32
                    }
                };
                self.by_head.insert(head, position);
                position
            }
        };
        match &credential.group_ceiling {
            Some(groups) => self.group_ceilings.insert(position, Arc::from(groups.as_slice())),
            None => self.group_ceilings.remove(&position),
        };
    }

    fn ceiling(&self, position: u32) -> Ceiling {
        let Some(slot) = self.slots.get(position as usize) else { return Ceiling::default() };
        if slot.role_ceiling == NO_CEILING {
            return Ceiling::default();
        }
        Ceiling { roles: ceiling_from_slot(slot.role_ceiling), groups: self.group_ceilings.get(&position).cloned() }
    }

    fn remove(&mut self, digest: &SecretDigest) {
        let (head, _) = split(digest);
        if let Some(position) = self.by_head.remove(&head) {
            let slot = &mut self.slots[position as usize];
            slot.id = 0;
            let audience = std::mem::take(&mut slot.audience);
            self.audiences.release(audience);
            self.group_ceilings.remove(&position);
            self.free.push(position);
        }
    }
}

impl Index {
    /// Builds an index with room for `credentials` entries.
    pub fn with_capacity(credentials: usize) -> Index {
        let index = Index::default();
        if let Ok(mut inner) = index.credentials.write() {
            inner.by_head.reserve(credentials);
            inner.slots.reserve_exact(credentials);
        }
        index
    }

    /// Finds the credential whose digest is `digest`.
    pub fn find(&self, digest: &SecretDigest) -> Option<FoundCredential> {
        let (head, tail) = split(digest);
        let inner = self.credentials.read().ok()?;
        let position = *inner.by_head.get(&head)?;
        let slot = *inner.slots.get(position as usize)?;
        if !constant_time_eq(&slot.digest_tail, &tail) {
            return None;
        }
        Some(FoundCredential {
            id: slot.id,
            owner_id: (slot.owner_id != 0).then_some(slot.owner_id),
            expires_at: (slot.expires_at != i64::MAX).then_some(slot.expires_at),
            realm_id: i64::from(slot.realm_id),
            kind: CredentialKind::from_u8(slot.kind)?,
            audience: inner.audiences.label(slot.audience),
            ceiling: inner.ceiling(position),
        })
    }

    /// Whether a credential with this digest head is still in the index, owned by
    /// `owner_id` and unexpired at `now` (then `Some` of its kind and ceiling): what an
    /// access token minted from it checks, so revoking the credential also stops the tokens
    /// made from it, and they act within the same roles and groups.
    pub fn holds_head(&self, head: &[u8; 16], owner_id: i64, now: i64) -> Option<(CredentialKind, Ceiling)> {
        let inner = self.credentials.read().ok()?;
        let position = *inner.by_head.get(&DigestHead(*head))?;
        let slot = inner.slots.get(position as usize)?;
        let kind = CredentialKind::from_u8(slot.kind)?;
        (slot.owner_id == owner_id && slot.expires_at > now).then(|| (kind, inner.ceiling(position)))
    }

    pub fn upsert_credential(&self, credential: &IndexedCredential) {
        if let Ok(mut inner) = self.credentials.write() {
            inner.upsert(credential);
        }
    }

    /// Adds many credentials under one write lock.
    pub fn upsert_credentials(&self, credentials: &[IndexedCredential]) {
        if let Ok(mut inner) = self.credentials.write() {
            for credential in credentials {
                inner.upsert(credential);
            }
        }
    }

    /// How many credentials of `kind` in each realm expire in `[from, until)` (unix
    /// seconds). A scan of every slot, for metrics: about a millisecond per 50,000
    /// credentials, under the read lock, which does not stop lookups.
    pub fn count_expiring(&self, kind: CredentialKind, from: i64, until: i64) -> HashMap<i64, u64> {
        let mut counts = HashMap::new();
        let Ok(inner) = self.credentials.read() else { return counts };
        let kind = kind.as_u8();
        for slot in inner.slots.iter().filter(|slot| slot.id != 0 && slot.kind == kind) {
            if (from..until).contains(&slot.expires_at) {
                *counts.entry(i64::from(slot.realm_id)).or_insert(0) += 1;
            }
        }
        counts
    }

    pub fn remove_credential(&self, digest: &SecretDigest) {
        if let Ok(mut inner) = self.credentials.write() {
            inner.remove(digest);
        }
    }

    /// Drops every credential owned by `owner_id` (the owner was deleted). A full scan,
    /// which is fine for an operation this rare.
    pub fn remove_credentials_of(&self, owner_id: i64) {
        if let Ok(mut inner) = self.credentials.write() {
            let Credentials { by_head, slots, free, audiences, group_ceilings } = &mut *inner;
            by_head.retain(|_, position| {
                let slot = &mut slots[*position as usize];
                if slot.owner_id == owner_id {
                    slot.id = 0;
                    audiences.release(std::mem::take(&mut slot.audience));
                    group_ceilings.remove(position);
                    free.push(*position);
                    false
                } else {
                    true
                }
            });
        }
    }

    pub fn credential_count(&self) -> usize {
        self.credentials.read().map(|inner| inner.by_head.len()).unwrap_or(0)
    }

    pub fn principal(&self, id: i64) -> Option<Arc<PrincipalInfo>> {
        self.principals.read().ok()?.by_id.get(&id).cloned()
    }

    /// The principal with this public id (an access token's `sub`).
    pub fn principal_by_public_id(&self, public_id: &str) -> Option<Arc<PrincipalInfo>> {
        let principals = self.principals.read().ok()?;
        principals.by_public_id.get(public_id).and_then(|id| principals.by_id.get(id)).cloned()
    }

    pub fn upsert_principal(&self, principal: PrincipalInfo) {
        if let Ok(mut principals) = self.principals.write() {
            principals.by_public_id.insert(principal.public_id.clone(), principal.id);
            principals.by_id.insert(principal.id, Arc::new(principal));
        }
    }

    pub fn remove_principal(&self, id: i64) {
        if let Ok(mut principals) = self.principals.write()
            && let Some(removed) = principals.by_id.remove(&id)
        {
            principals.by_public_id.remove(&removed.public_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(id: i64, seed: u8, owner: Option<i64>, audience: Option<&str>) -> IndexedCredential {
        let mut digest = [seed; 32];
        digest[31] = seed.wrapping_mul(7);
        IndexedCredential {
            id,
            realm_id: 1,
            kind: CredentialKind::UserApiKey,
            owner_id: owner,
            audience: audience.map(str::to_string),
            digest: SecretDigest(digest),
            expires_at: Some(1_900_000_000),
            role_ceiling: None,
            group_ceiling: None,
        }
    }

    #[test]
    fn a_credentials_ceiling_is_found_by_digest_and_by_head() {
        let index = Index::default();
        let plain = credential(10, 1, Some(5), None);
        let roles: RoleSet = [keyward_core::Role::WorkloadLauncher].into_iter().collect();
        let bounded = IndexedCredential {
            role_ceiling: Some(roles),
            group_ceiling: Some(vec![3, 14]),
            ..credential(11, 2, Some(5), None)
        };
        let empty = IndexedCredential {
            role_ceiling: Some(RoleSet::EMPTY),
            group_ceiling: Some(Vec::new()),
            ..credential(12, 3, Some(5), None)
        };
        // Runs started between the role and the group ceilings' migrations.
        let roles_only = IndexedCredential { role_ceiling: Some(roles), ..credential(13, 4, Some(5), None) };
        // Never written by the store; if it were, no role rather than every role.
        let groups_only = IndexedCredential { group_ceiling: Some(vec![3]), ..credential(14, 5, Some(5), None) };
        index.upsert_credentials(&[
            plain.clone(),
            bounded.clone(),
            empty.clone(),
            roles_only.clone(),
            groups_only.clone(),
        ]);
        let head = |credential: &IndexedCredential| -> [u8; 16] { credential.digest.0[..16].try_into().unwrap() };
        let ceiling = |roles, groups: Option<&[i64]>| Ceiling { roles, groups: groups.map(Arc::from) };
        for (credential, expected) in [
            (&plain, Ceiling::default()),
            (&bounded, ceiling(Some(roles), Some(&[3, 14]))),
            (&empty, ceiling(Some(RoleSet::EMPTY), Some(&[]))),
            (&roles_only, ceiling(Some(roles), None)),
            (&groups_only, ceiling(Some(RoleSet::EMPTY), Some(&[3]))),
        ] {
            assert_eq!(index.find(&credential.digest).map(|found| found.ceiling), Some(expected.clone()));
            assert_eq!(index.holds_head(&head(credential), 5, 0), Some((CredentialKind::UserApiKey, expected)));
        }
        assert!(!Ceiling::default().is_bounded() && Ceiling::default().admits_group(99));
        let found = index.find(&bounded.digest).unwrap().ceiling;
        assert!(found.admits_group(14) && !found.admits_group(15));
        assert_eq!(index.holds_head(&head(&bounded), 6, 0), None, "another owner's");
        assert_eq!(index.holds_head(&head(&bounded), 5, 2_000_000_000), None, "expired");

        // A slot given back keeps no ceiling for the credential that takes it next, and a
        // credential written again without a ceiling loses it.
        index.remove_credential(&bounded.digest);
        let next = credential(15, 6, Some(5), None);
        index.upsert_credential(&next);
        assert_eq!(index.find(&next.digest).map(|found| found.ceiling), Some(Ceiling::default()));
        index.upsert_credential(&plain);
        index.upsert_credential(&IndexedCredential { digest: empty.digest, ..plain.clone() });
        assert_eq!(index.find(&empty.digest).map(|found| found.ceiling), Some(Ceiling::default()));
        index.remove_credentials_of(5);
        index.upsert_credential(&IndexedCredential { owner_id: Some(7), ..next.clone() });
        assert_eq!(index.find(&next.digest).map(|found| found.ceiling), Some(Ceiling::default()));
        assert!(index.credentials.read().unwrap().group_ceilings.is_empty());
    }

    #[test]
    fn found_credentials_carry_their_facts_and_removed_ones_are_gone() {
        let index = Index::default();
        let first = credential(10, 1, Some(5), Some("model-monitor"));
        let second = credential(11, 2, None, None);
        index.upsert_credential(&first);
        index.upsert_credential(&second);
        let found = index.find(&first.digest).map(|found| (found.id, found.owner_id, found.expires_at));
        assert_eq!(found, Some((10, Some(5), Some(1_900_000_000))));
        let audience = index.find(&first.digest).and_then(|found| found.audience);
        assert_eq!(audience.as_deref(), Some("model-monitor"));
        assert_eq!(index.find(&second.digest).map(|found| found.owner_id), Some(None));
        index.remove_credential(&first.digest);
        assert_eq!(index.find(&first.digest), None);
        assert_eq!(index.credential_count(), 1);
    }

    /// Every API service and deployment with keys has its own audience: numbers must come
    /// back when the last key bound to one goes, or churn would exhaust them.
    #[test]
    fn audience_numbers_are_reused_once_no_credential_holds_them() {
        let index = Index::default();
        for round in 0..70_000u32 {
            let mut key = credential(i64::from(round) + 1, (round % 200) as u8, None, None);
            key.digest.0[1..5].copy_from_slice(&round.to_le_bytes());
            key.audience = Some(format!("api-service:{round}"));
            index.upsert_credential(&key);
            let found = index.find(&key.digest).and_then(|found| found.audience);
            assert_eq!(found.as_deref(), Some(format!("api-service:{round}").as_str()), "round {round}");
            index.remove_credential(&key.digest);
        }
        // Two keys share one audience; it stays while either holds it.
        let mut first = credential(1, 1, None, Some("deployment:a"));
        let mut second = credential(2, 2, None, Some("deployment:a"));
        first.digest.0[9] = 1;
        second.digest.0[9] = 2;
        index.upsert_credential(&first);
        index.upsert_credential(&second);
        index.remove_credential(&first.digest);
        let kept = index.find(&second.digest).and_then(|found| found.audience);
        assert_eq!(kept.as_deref(), Some("deployment:a"));
        // Re-binding a key (an upsert of the same digest) releases its old audience.
        second.audience = Some("deployment:b".to_string());
        index.upsert_credential(&second);
        let moved = index.find(&second.digest).and_then(|found| found.audience);
        assert_eq!(moved.as_deref(), Some("deployment:b"));
        let inner = index.credentials.read().unwrap();
        assert!(!inner.audiences.numbers.contains_key("deployment:a"), "released when its last holder left");
        assert!(inner.audiences.labels.len() < 10, "numbers were reused: {}", inner.audiences.labels.len());
    }

    #[test]
    fn a_digest_that_shares_the_head_but_not_the_tail_is_not_found() {
        let index = Index::default();
        let stored = credential(1, 3, None, None);
        index.upsert_credential(&stored);
        let mut forged = stored.digest;
        forged.0[20] ^= 1;
        assert_eq!(index.find(&forged), None);
    }

    #[test]
    fn freed_slots_are_reused_and_owner_removal_drops_only_that_owner() {
        let index = Index::default();
        for seed in 1..=4u8 {
            index.upsert_credential(&credential(i64::from(seed), seed, Some(i64::from(seed % 2)), None));
        }
        index.remove_credentials_of(1);
        assert_eq!(index.credential_count(), 2);
        index.upsert_credential(&credential(9, 9, Some(3), None));
        assert_eq!(index.credential_count(), 3);
        let slots = index.credentials.read().map(|inner| inner.slots.len()).unwrap_or(0);
        assert_eq!(slots, 4, "a freed slot was reused");
        assert!(index.find(&credential(0, 2, None, None).digest).is_some());
        assert!(index.find(&credential(0, 1, None, None).digest).is_none());
    }
}
