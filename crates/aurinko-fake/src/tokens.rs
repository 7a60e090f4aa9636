//! Opaque, stateless delta and page tokens.
//!
//! Real Aurinko tokens are opaque strings; clients must store and replay them verbatim. The fake
//! packs everything it needs to answer a request into the token itself (collection, stream, epoch,
//! window, body type, base and high-water sequence, cursor), so the same token always yields the same page
//! while the data is unchanged, and nothing has to be remembered server-side. A keyed checksum
//! makes edited or made-up tokens fail with `token.notValid` instead of being half-accepted.
//!
//! Wire form: base64url without padding of a big-endian record followed by an 8-byte checksum.

/// Which of the two change streams of a sync a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// `/sync/updated`: created or changed records.
    Updated,
    /// `/sync/deleted`: tombstones of removed records.
    Deleted,
}

/// The `bodyType` of an email provisioning: how `/email/sync/updated` serves `body`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum BodyType {
    /// No `body`; `omitted` lists `"body"`. Also the value for calendars and contacts.
    #[default]
    Omitted,
    Html,
    Text,
}

/// Position in one collection's change log, shared by delta and page tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyncPosition {
    pub stream: Stream,
    /// Internal account number; a token is only valid for the account that received it.
    pub account: u32,
    /// Internal store number (one per calendar, one mailbox and one address book per account);
    /// a token is only valid for its collection.
    pub store: u32,
    /// Account epoch at issue time; `expire_tokens` bumps the epoch so older tokens answer 410.
    pub epoch: u32,
    /// Provisioning window (exclusive bounds), milliseconds since the Unix epoch: the calendar
    /// window, or for email the `daysWithin` cutoff of the initial pass (`i64::MIN..i64::MAX`
    /// when unbounded).
    pub time_min_ms: i64,
    pub time_max_ms: i64,
    /// Email only: the provisioning's `bodyType`, kept for every page and delta of it.
    pub body: BodyType,
    /// Changes with a sequence number above `base` are reported. The `syncUpdatedToken` of a
    /// provisioning has base 0: its first pass is a full load of the window.
    pub base: u64,
}

/// A decoded token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// Starts a drain; the high-water mark is fixed by the first request that uses it.
    Delta(SyncPosition),
    /// Continues a drain: records with `after < seq <= high`.
    Page { position: SyncPosition, high: u64, after: u64 },
    /// Continues `GET /calendars` at `offset`.
    Calendars { account: u32, offset: u32 },
    /// Continues `GET /tasklists` at `offset`.
    TaskLists { account: u32, offset: u32 },
}

const VERSION: u8 = 2;
const KIND_DELTA: u8 = 1;
const KIND_PAGE: u8 = 2;
const KIND_CALENDARS: u8 = 3;
const KIND_TASK_LISTS: u8 = 4;
const MAC_LEN: usize = 8;

/// Encodes and checks tokens with a per-fake key (derived from the seed, so runs are repeatable).
#[derive(Clone, Debug)]
pub(crate) struct TokenCodec {
    key: u64,
}

impl TokenCodec {
    pub fn new(seed: u64) -> Self {
        Self { key: fnv1a(0x6175_7269_6e6b_6f21 ^ seed, &seed.to_be_bytes()) }
    }

    pub fn encode(&self, token: &Token) -> String {
        let mut out = vec![VERSION];
        match token {
            Token::Delta(position) => {
                out.push(KIND_DELTA);
                put_position(&mut out, position);
            }
            Token::Page { position, high, after } => {
                out.push(KIND_PAGE);
                put_position(&mut out, position);
                out.extend_from_slice(&high.to_be_bytes());
                out.extend_from_slice(&after.to_be_bytes());
            }
            Token::Calendars { account, offset } | Token::TaskLists { account, offset } => {
                out.push(if matches!(token, Token::Calendars { .. }) { KIND_CALENDARS } else { KIND_TASK_LISTS });
                out.extend_from_slice(&account.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
            }
        }
        let mac = fnv1a(self.key, &out);
        out.extend_from_slice(&mac.to_be_bytes());
        base64url_encode(&out)
    }

    /// `None` for anything that is not a token this fake issued, unchanged.
    pub fn decode(&self, text: &str) -> Option<Token> {
        let raw = base64url_decode(text)?;
        if raw.len() < 2 + MAC_LEN {
            return None;
        }
        let (body, mac) = raw.split_at(raw.len() - MAC_LEN);
        if fnv1a(self.key, body).to_be_bytes() != mac {
            return None;
        }
        let mut reader = Reader(body);
        if reader.u8()? != VERSION {
            return None;
        }
        let token = match reader.u8()? {
            KIND_DELTA => Token::Delta(read_position(&mut reader)?),
            KIND_PAGE => {
                Token::Page { position: read_position(&mut reader)?, high: reader.u64()?, after: reader.u64()? }
            }
            KIND_CALENDARS => Token::Calendars { account: reader.u32()?, offset: reader.u32()? },
            KIND_TASK_LISTS => Token::TaskLists { account: reader.u32()?, offset: reader.u32()? },
            _ => return None,
        };
        reader.0.is_empty().then_some(token)
    }
}

fn put_position(out: &mut Vec<u8>, p: &SyncPosition) {
    out.push(match p.stream {
        Stream::Updated => 1,
        Stream::Deleted => 2,
    });
    out.extend_from_slice(&p.account.to_be_bytes());
    out.extend_from_slice(&p.store.to_be_bytes());
    out.extend_from_slice(&p.epoch.to_be_bytes());
    out.extend_from_slice(&p.time_min_ms.to_be_bytes());
    out.extend_from_slice(&p.time_max_ms.to_be_bytes());
    out.push(match p.body {
        BodyType::Omitted => 0,
        BodyType::Html => 1,
        BodyType::Text => 2,
    });
    out.extend_from_slice(&p.base.to_be_bytes());
}

fn read_position(r: &mut Reader<'_>) -> Option<SyncPosition> {
    let stream = match r.u8()? {
        1 => Stream::Updated,
        2 => Stream::Deleted,
        _ => return None,
    };
    let account = r.u32()?;
    let store = r.u32()?;
    let epoch = r.u32()?;
    let time_min_ms = r.u64()? as i64;
    let time_max_ms = r.u64()? as i64;
    let body = match r.u8()? {
        0 => BodyType::Omitted,
        1 => BodyType::Html,
        2 => BodyType::Text,
        _ => return None,
    };
    Some(SyncPosition { stream, account, store, epoch, time_min_ms, time_max_ms, body, base: r.u64()? })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
}

/// FNV-1a, seeded; stable across runs and Rust versions (unlike `DefaultHasher`).
pub(crate) fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final avalanche so that nearby inputs give unrelated checksums.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Strict decoder: unpadded base64url only, no stray bits.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        let unused_bits = 24 - 8 * produced as u32;
        if n & ((1 << unused_bits) - 1) != 0 {
            return None;
        }
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> SyncPosition {
        SyncPosition {
            stream: Stream::Deleted,
            account: 3,
            store: 7,
            epoch: 2,
            time_min_ms: i64::MIN,
            time_max_ms: 1_900_000_000_000,
            body: BodyType::Text,
            base: 42,
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let codec = TokenCodec::new(9);
        let tokens = [
            Token::Delta(position()),
            Token::Page { position: position(), high: 99, after: 50 },
            Token::Calendars { account: 1, offset: 100 },
        ];
        for token in tokens {
            let text = codec.encode(&token);
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(codec.decode(&text), Some(token));
            let mut edited = text.clone().into_bytes();
            edited[5] = if edited[5] == b'A' { b'B' } else { b'A' };
            assert_eq!(codec.decode(&String::from_utf8(edited).unwrap()), None);
            assert_eq!(codec.decode(&text[..text.len() - 1]), None);
            assert_eq!(TokenCodec::new(10).decode(&text), None);
        }
        for junk in ["", "x", "not a token", "%%%", "AAAA", "a8b7c6d5e4f3g2h1"] {
            assert_eq!(codec.decode(junk), None);
        }
    }

    #[test]
    fn base64_lengths() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(base64url_decode(&base64url_encode(&bytes)), Some(bytes));
        }
    }
}
