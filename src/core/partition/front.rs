//! Pareto fronts of partial plans: for one `(layers done, last class)`, the partial plans
//! no other (recent) one beats on both cost and nodes used per class. Stored contiguously (cost,
//! counts side by side) because the searches spend most of their time scanning them.

use super::solve::Key;

fn le(a: Key, b: Key) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 <= b.1)
}

/// Entries compared per check: the newest ones. Dominance only prunes, so comparing fewer
/// keeps the searches exact; with many distinct nodes fronts grow into the thousands and a
/// full scan would cost more than the states it saves.
const SCAN: usize = 2048;

/// One front; `k` counts per entry.
#[derive(Default)]
pub(super) struct Front {
    ids: Vec<u32>,
    costs: Vec<Key>,
    used: Vec<u16>,
}

impl Front {
    /// Whether an entry costs no more than `g` and used no more nodes of any class.
    pub(super) fn dominates(&self, g: Key, used: &[u16]) -> bool {
        let k = used.len();
        let from = self.ids.len().saturating_sub(SCAN);
        self.costs[from..]
            .iter()
            .zip(self.used[from * k..].chunks_exact(k))
            .any(|(&c, u)| le(c, g) && u.iter().zip(used).all(|(x, y)| x <= y))
    }

    /// Adds partial plan `id`, dropping the (newest) entries it dominates; their ids go to
    /// `dropped`.
    pub(super) fn insert(&mut self, id: u32, g: Key, used: &[u16], dropped: &mut Vec<u32>) {
        let k = used.len();
        let from = self.ids.len().saturating_sub(SCAN);
        let mut w = from;
        for r in from..self.ids.len() {
            let u = &self.used[r * k..r * k + k];
            if le(g, self.costs[r]) && used.iter().zip(u).all(|(x, y)| x <= y) {
                dropped.push(self.ids[r]);
                continue;
            }
            if w != r {
                self.ids[w] = self.ids[r];
                self.costs[w] = self.costs[r];
                self.used.copy_within(r * k..r * k + k, w * k);
            }
            w += 1;
        }
        self.ids.truncate(w);
        self.costs.truncate(w);
        self.used.truncate(w * k);
        self.ids.push(id);
        self.costs.push(g);
        self.used.extend_from_slice(used);
    }
}
