//! Many short sequences of ids (routes, their links) in one flat list.
//!
//! A data center's probes make a million routes of a few ids each: as one `Vec` each they
//! cost an allocation and a 24-byte header apiece, more than their ids.

/// Sequences of ids, numbered in the order they were pushed.
#[derive(Debug, Clone, Default)]
pub struct Seqs {
    ids: Vec<u32>,
    /// Where each sequence ends in `ids` (it starts where the one before ends); 32 bits,
    /// as ids are.
    ends: Vec<u32>,
}

impl Seqs {
    pub fn with_capacity(seqs: usize, ids: usize) -> Self {
        Seqs {
            ids: Vec::with_capacity(ids),
            ends: Vec::with_capacity(seqs),
        }
    }

    /// `groups` sequences, sequence g holding the values paired with key g, in the order
    /// `pairs` gives them (it is called twice: to count, then to place).
    pub fn grouped<I>(groups: usize, pairs: impl Fn() -> I) -> Self
    where
        I: Iterator<Item = (u32, u32)>,
    {
        // Where each group starts, then where its next value goes.
        let mut next = vec![0u32; groups + 1];
        for (g, _) in pairs() {
            next[g as usize + 1] += 1;
        }
        for g in 0..groups {
            next[g + 1] += next[g];
        }
        let mut ids = vec![0u32; next[groups] as usize];
        for (g, v) in pairs() {
            let at = &mut next[g as usize];
            ids[*at as usize] = v;
            *at += 1;
        }
        // Each group's next place is now where it ends.
        next.truncate(groups);
        Seqs { ids, ends: next }
    }

    pub fn push(&mut self, seq: &[u32]) {
        self.ids.extend_from_slice(seq);
        let end = u32::try_from(self.ids.len()).expect("fewer than 2^32 ids in all");
        self.ends.push(end);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.ids[start..self.ends[i] as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Every sequence, to change ids in place (not lengths).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut [u32]> + '_ {
        let mut rest: &mut [u32] = &mut self.ids;
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let (seq, tail) = std::mem::take(&mut rest).split_at_mut(end as usize - start);
            rest = tail;
            start = end as usize;
            seq
        })
    }

    /// The ids of all sequences, one after the other.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// [`Seqs::ids`], to change in place.
    pub fn ids_mut(&mut self) -> &mut [u32] {
        &mut self.ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_come_back_as_pushed() {
        let mut s = Seqs::default();
        assert!(s.is_empty());
        s.push(&[3, 1]);
        s.push(&[]);
        s.push(&[7]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(0), [3, 1]);
        assert!(s.get(1).is_empty());
        assert_eq!(s.iter().collect::<Vec<_>>(), [&[3, 1][..], &[], &[7]]);
        for seq in s.iter_mut() {
            seq.reverse();
        }
        s.ids_mut()[2] += 1;
        assert_eq!(s.iter().collect::<Vec<_>>(), [&[1, 3][..], &[], &[8]]);
    }

    #[test]
    fn grouped_keeps_each_keys_values_in_order() {
        let pairs = [(2, 10), (0, 11), (2, 12), (2, 13), (0, 14)];
        let s = Seqs::grouped(4, || pairs.iter().copied());
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [&[11, 14][..], &[], &[10, 12, 13], &[]]
        );
        assert!(Seqs::grouped(0, std::iter::empty).is_empty());
    }
}
