//! The audit hash chain. Each event's hash is HMAC-SHA256, under a key derived from the
//! master key, over the previous event's hash and the event's canonical bytes. Changing
//! or deleting a stored row breaks the chain at that row and `keyward audit verify` says
//! where; without the master key, nobody with only database access can recompute the
//! hashes after an edit.

use aws_lc_rs::hmac;

/// The key of the audit chain's HMAC.
#[derive(Clone)]
pub struct AuditKey(hmac::Key);

impl AuditKey {
    pub fn new(key: hmac::Key) -> AuditKey {
        AuditKey(key)
    }
}

/// The hash that precedes the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The fields of an audit event that the chain protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFields<'a> {
    pub seq: i64,
    pub at_unix_ms: i64,
    pub realm: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub client_ip: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

impl AuditFields<'_> {
    /// Length-prefixed fields, so no two different events share a byte string.
    fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_unix_ms.to_be_bytes());
        for field in [self.realm, self.actor, self.action, self.target, self.client_ip, self.result, self.detail] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// This event's hash, given the previous event's hash.
    pub fn chain_hash(&self, key: &AuditKey, previous: &[u8; 32]) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&key.0);
        context.update(previous);
        context.update(&self.canonical_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }
}

/// Where a stored chain stops being what was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("event {seq} was changed: its hash does not match its contents")]
    Changed { seq: i64 },
    #[error("events between {after} and {next} are missing")]
    Missing { after: i64, next: i64 },
    #[error("the newest events after {last} were deleted (the chain head says {head})")]
    TailDeleted { last: i64, head: i64 },
    #[error("the chain head does not match event {seq}: the head or the newest events were altered")]
    HeadMismatch { seq: i64 },
}

/// Verifies events in sequence order. `stored` is each event with the previous hash
/// and hash it was stored with; `head` is the sequence and hash the chain head records.
pub fn verify_chain<'a>(
    key: &AuditKey,
    stored: impl IntoIterator<Item = (AuditFields<'a>, [u8; 32], [u8; 32])>,
    head: (i64, [u8; 32]),
) -> Result<i64, ChainBreak> {
    let (head_seq, head_hash) = head;
    let mut expected_previous = GENESIS_HASH;
    let mut last_seq = 0;
    for (fields, previous, hash) in stored {
        if fields.seq != last_seq + 1 || previous != expected_previous {
            return Err(ChainBreak::Missing { after: last_seq, next: fields.seq });
        }
        if fields.chain_hash(key, &previous) != hash {
            return Err(ChainBreak::Changed { seq: fields.seq });
        }
        expected_previous = hash;
        last_seq = fields.seq;
    }
    if last_seq != head_seq {
        return Err(ChainBreak::TailDeleted { last: last_seq, head: head_seq });
    }
    if expected_previous != head_hash {
        return Err(ChainBreak::HeadMismatch { seq: last_seq });
    }
    Ok(last_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, actor: &str) -> AuditFields<'_> {
        AuditFields {
            seq,
            at_unix_ms: 1_000 * seq,
            realm: "default",
            actor,
            action: "user.create",
            target: "user:abc",
            client_ip: "127.0.0.1",
            result: "ok",
            detail: "",
        }
    }

    fn key() -> AuditKey {
        AuditKey::new(hmac::Key::new(hmac::HMAC_SHA256, b"test audit key"))
    }

    type Stored = Vec<(AuditFields<'static>, [u8; 32], [u8; 32])>;

    fn chain(actors: &[&'static str]) -> Stored {
        let mut previous = GENESIS_HASH;
        let mut out = Vec::new();
        for (index, actor) in actors.iter().enumerate() {
            let fields = event(index as i64 + 1, actor);
            let hash = fields.chain_hash(&key(), &previous);
            out.push((fields, previous, hash));
            previous = hash;
        }
        out
    }

    fn head(rows: &Stored) -> (i64, [u8; 32]) {
        rows.last().map_or((0, GENESIS_HASH), |(fields, _, hash)| (fields.seq, *hash))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(&["a", "b", "c"]);
        let head = head(&rows);
        assert_eq!(verify_chain(&key(), rows, head), Ok(3));
        assert_eq!(verify_chain(&key(), Vec::new(), (0, GENESIS_HASH)), Ok(0));
    }

    #[test]
    fn a_changed_row_is_found() {
        let mut rows = chain(&["a", "b", "c"]);
        let head = head(&rows);
        rows[1].0.actor = "mallory";
        assert_eq!(verify_chain(&key(), rows, head), Err(ChainBreak::Changed { seq: 2 }));
    }

    #[test]
    fn a_deleted_row_is_found() {
        let mut rows = chain(&["a", "b", "c"]);
        let full_head = head(&rows);
        rows.remove(1);
        assert_eq!(verify_chain(&key(), rows, full_head), Err(ChainBreak::Missing { after: 1, next: 3 }));
        let mut rows = chain(&["a", "b", "c"]);
        rows.pop();
        assert_eq!(verify_chain(&key(), rows, full_head), Err(ChainBreak::TailDeleted { last: 2, head: 3 }));
    }

    #[test]
    fn a_chain_rehashed_without_the_key_is_found() {
        let mut rows = chain(&["a", "b", "c"]);
        let other = AuditKey::new(hmac::Key::new(hmac::HMAC_SHA256, b"guessed key"));
        rows[2].0.actor = "mallory";
        rows[2].2 = rows[2].0.chain_hash(&other, &rows[2].1);
        let forged_head = head(&rows);
        assert_eq!(verify_chain(&key(), rows, forged_head), Err(ChainBreak::Changed { seq: 3 }));
    }

    #[test]
    fn a_head_that_disagrees_with_the_last_event_is_found() {
        let rows = chain(&["a", "b"]);
        assert_eq!(verify_chain(&key(), rows, (2, [9; 32])), Err(ChainBreak::HeadMismatch { seq: 2 }));
    }

    #[test]
    fn fields_cannot_be_shifted_between_columns() {
        let mut left = event(1, "ab");
        left.action = "c";
        let mut right = event(1, "a");
        right.action = "bc";
        assert_ne!(left.chain_hash(&key(), &GENESIS_HASH), right.chain_hash(&key(), &GENESIS_HASH));
    }
}
