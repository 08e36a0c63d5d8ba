//! Union-find over dense ids: routers from addresses, ECMP groups from routers.

/// Disjoint sets of the ids 0..n; the root of a set is its smallest id, so the result does
/// not depend on the order of the unions.
pub struct Sets(Vec<u32>);

impl Sets {
    /// Every id in a set of its own.
    pub fn new(n: usize) -> Self {
        Sets((0..n as u32).collect())
    }

    pub fn find(&mut self, mut a: u32) -> u32 {
        while self.0[a as usize] != a {
            let up = self.0[self.0[a as usize] as usize];
            self.0[a as usize] = up;
            a = up;
        }
        a
    }

    pub fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            let (lo, hi) = (a.min(b), a.max(b));
            self.0[hi as usize] = lo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_named_by_its_smallest_id() {
        let mut s = Sets::new(5);
        s.union(4, 2);
        s.union(2, 3);
        assert_eq!((s.find(4), s.find(3), s.find(2)), (2, 2, 2));
        assert_eq!((s.find(0), s.find(1)), (0, 1));
    }
}
