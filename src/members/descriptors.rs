//! Every member's descriptor (address in wire form, name, metadata) in one shared byte
//! buffer, each found by its offset.
//!
//! One buffer rather than a box per member: a box costs its 16-byte pointer in the
//! member's row on top of the bytes, where an offset packs into 39 bits beside the
//! live-peer slot, and the buffer's slack is one growth step for all members together.
//! A record is `[addr_len][addr_wire][name_len][metadata_len][name][metadata]`, the
//! address's length a byte (it is 6 or 18), the others LEB128 varints (one byte each for
//! names and metadata under 128 bytes): the address, read on every datagram a member
//! sends, comes without parsing the rest. A replaced or forgotten record is garbage until the table compacts the
//! buffer (`Members::compact_descriptors`), which it does once garbage is most of it.

/// The buffer grows by at least this many bytes, and otherwise by a sixteenth of its
/// length: geometric, so appends stay amortized O(1), with little spare capacity.
const GROW_MIN: usize = 256;

/// Compaction runs once garbage is over half the buffer and at least this many bytes.
const COMPACT_MIN: usize = 4096;

/// The three fields of one record, borrowed from the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub addr_wire: &'a [u8],
    pub name: &'a [u8],
    pub metadata: &'a [u8],
}

/// One record, read lazily: a view of the buffer from the record's start, whose fields
/// are parsed when asked for (a member's view is built on every lookup, and most
/// lookups want its state or address, not its name).
#[derive(Clone, Copy, Default)]
pub(crate) struct Record<'a> {
    tail: &'a [u8],
}

impl<'a> Record<'a> {
    /// The address in wire form.
    #[inline]
    pub fn addr_wire(&self) -> &'a [u8] {
        let Some(&a) = self.tail.first() else {
            return &[];
        };
        self.tail.get(1..1 + usize::from(a)).unwrap_or_default()
    }

    /// The name and the metadata.
    fn rest(&self) -> (&'a [u8], &'a [u8]) {
        let mut i = 1 + self.addr_wire().len();
        let (Some(n), Some(m)) = (get_varint(self.tail, &mut i), get_varint(self.tail, &mut i))
        else {
            return (&[], &[]);
        };
        let field = |from: usize, len: usize| self.tail.get(from..from + len).unwrap_or_default();
        (field(i, n), field(i + n, m))
    }

    pub fn name(&self) -> &'a [u8] {
        self.rest().0
    }

    pub fn metadata(&self) -> &'a [u8] {
        self.rest().1
    }
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("addr_wire", &self.addr_wire())
            .field("name", &String::from_utf8_lossy(self.name()))
            .field("metadata", &self.metadata())
            .finish()
    }
}

#[derive(Debug, Default)]
pub(super) struct Descriptors {
    bytes: Vec<u8>,
    /// Bytes of records no member refers to any more.
    garbage: usize,
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: usize) -> usize {
    (usize::BITS as usize - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint written by `put_varint`; `None` past the end (never for a record
/// this buffer wrote).
fn get_varint(b: &[u8], at: &mut usize) -> Option<usize> {
    // One byte, the common case, first.
    let first = *b.get(*at)?;
    if first < 0x80 {
        *at += 1;
        return Some(usize::from(first));
    }
    let mut v = 0usize;
    for shift in (0..usize::BITS).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

impl Descriptors {
    /// Appends a record; its offset.
    pub fn push(&mut self, f: Fields<'_>) -> u64 {
        let (a, n, m) = (f.addr_wire.len(), f.name.len(), f.metadata.len());
        // Addresses in wire form are 6 or 18 bytes; a longer one is stored as none.
        let (addr_wire, a) = if a <= usize::from(u8::MAX) {
            (f.addr_wire, a)
        } else {
            (&[][..], 0)
        };
        let len = 1 + a + varint_len(n) + varint_len(m) + n + m;
        let spare = self.bytes.capacity() - self.bytes.len();
        if spare < len {
            let grow = (self.bytes.len() / 16).max(GROW_MIN).max(len);
            self.bytes.reserve_exact(grow);
        }
        let at = self.bytes.len() as u64;
        self.bytes.push(a as u8);
        self.bytes.extend_from_slice(addr_wire);
        put_varint(&mut self.bytes, n);
        put_varint(&mut self.bytes, m);
        self.bytes.extend_from_slice(f.name);
        self.bytes.extend_from_slice(f.metadata);
        at
    }

    /// The record at `at` and its length in bytes. Empty fields if `at` is not a
    /// record's offset (never: offsets come from `push`).
    fn record(&self, at: u64) -> (Fields<'_>, usize) {
        let b = &self.bytes[..];
        let Ok(start) = usize::try_from(at) else {
            return (Fields::default(), 0);
        };
        let addr_wire = self.addr_wire_from(start);
        let mut i = start + 1 + addr_wire.len();
        let (Some(n), Some(m)) = (get_varint(b, &mut i), get_varint(b, &mut i)) else {
            return (Fields::default(), 0);
        };
        let field = |from: usize, len: usize| b.get(from..from + len).unwrap_or_default();
        let fields = Fields {
            addr_wire,
            name: field(i, n),
            metadata: field(i + n, m),
        };
        (fields, i + n + m - start)
    }

    /// The address field of the record at `start`.
    #[inline]
    fn addr_wire_from(&self, start: usize) -> &[u8] {
        let b = &self.bytes[..];
        let Some(&a) = b.get(start) else {
            return &[];
        };
        b.get(start + 1..start + 1 + usize::from(a))
            .unwrap_or_default()
    }

    /// The address field of the record at `at`, without parsing the rest.
    #[inline]
    pub fn addr_wire(&self, at: u64) -> &[u8] {
        usize::try_from(at).map_or(&[], |start| self.addr_wire_from(start))
    }

    /// The fields of the record at `at`.
    pub fn get(&self, at: u64) -> Fields<'_> {
        self.record(at).0
    }

    /// The record at `at`, parsed as its fields are asked for.
    #[inline]
    pub fn view(&self, at: u64) -> Record<'_> {
        let tail = usize::try_from(at)
            .ok()
            .and_then(|start| self.bytes.get(start..))
            .unwrap_or_default();
        Record { tail }
    }

    /// Marks the record at `at` as garbage.
    pub fn release(&mut self, at: u64) {
        self.garbage += self.record(at).1;
    }

    /// Whether enough is garbage to compact.
    pub fn wants_compaction(&self) -> bool {
        self.garbage >= COMPACT_MIN && self.garbage * 2 > self.bytes.len()
    }

    /// Copies the records at `offsets`, in order, into a fresh buffer sized to them,
    /// rewriting each offset.
    pub fn compact<'o>(&mut self, offsets: impl Iterator<Item = &'o mut u64>) {
        let live = self.bytes.len() - self.garbage;
        let mut fresh = Vec::with_capacity(live);
        for at in offsets {
            let (fields, len) = self.record(*at);
            let start = *at as usize;
            debug_assert!(len > 0 || fields == Fields::default());
            *at = fresh.len() as u64;
            fresh.extend_from_slice(&self.bytes[start..start + len]);
        }
        self.bytes = fresh;
        self.garbage = 0;
    }

    /// Bytes held, garbage included (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_apart_and_compaction_keeps_them() {
        let mut d = Descriptors::default();
        let long_name = vec![b'n'; 200];
        let a = d.push(Fields {
            addr_wire: &[1, 2, 3, 4, 0, 80],
            name: b"node-7",
            metadata: b"zone=a",
        });
        let b = d.push(Fields {
            addr_wire: &[],
            name: &long_name,
            metadata: &[],
        });
        assert_eq!(d.get(a).name, b"node-7");
        let v = d.view(a);
        assert_eq!(
            (v.addr_wire(), v.name(), v.metadata()),
            (&[1, 2, 3, 4, 0, 80][..], &b"node-7"[..], &b"zone=a"[..])
        );
        assert_eq!(d.view(b).name(), &long_name[..]);
        assert_eq!(d.get(a).addr_wire, &[1, 2, 3, 4, 0, 80]);
        assert_eq!(d.get(a).metadata, b"zone=a");
        assert_eq!(d.get(b).name, &long_name[..]);
        assert!(d.get(b).addr_wire.is_empty() && d.get(b).metadata.is_empty());
        d.release(a);
        let mut offsets = [b];
        d.compact(offsets.iter_mut());
        assert_eq!(offsets[0], 0);
        assert_eq!(d.get(0).name, &long_name[..]);
        // Lengths: 0 (a byte), 200 (a two-byte varint), 0.
        assert_eq!(d.len(), 4 + long_name.len());
        // An offset that is no record reads as empty fields, never a panic.
        assert_eq!(d.get(10_000), Fields::default());
    }
}
