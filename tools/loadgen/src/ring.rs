//! Who is whose contact, for seeded users and for virtual users alike: ring neighbours. With K
//! contacts per user (rounded down to even), user i's contacts are i±1 ..= i±K/2 (mod n): every
//! user gets the same number, the relation is symmetric (as contacts are: one message makes both
//! sides contacts), and anyone's contacts follow from indices alone, without a table.

/// Neighbours on each side for `per_user` contacts among `n` users: K/2, capped so that the two
/// sides never overlap (then every pair is distinct).
pub fn half(n: usize, per_user: usize) -> usize {
    (per_user / 2).min(n.saturating_sub(1) / 2)
}

/// The contacts of user `i`: the next `half` users, then the previous `half`.
pub fn neighbours(i: usize, n: usize, half: usize) -> impl Iterator<Item = usize> {
    let after = (1..=half).map(move |d| (i + d) % n);
    let before = (1..=half).map(move |d| (i + n - d) % n);
    after.chain(before)
}

/// Every contact pair once, as (earlier, later) along the ring: user i starts a conversation
/// with each of the next `half` users.
pub fn pairs(n: usize, half: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |i| (1..=half).map(move |d| (i, (i + d) % n)))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    #[test]
    fn half_is_capped_so_that_both_sides_never_meet() {
        assert_eq!(half(100, 50), 25);
        assert_eq!(half(100, 51), 25);
        assert_eq!(half(10, 50), 4);
        assert_eq!(half(11, 50), 5);
        assert_eq!(half(1, 4), 0);
        assert_eq!(half(0, 4), 0);
    }

    #[test]
    fn pairs_are_distinct_symmetric_and_give_everyone_the_same_count() {
        for (n, k) in [(10, 4), (11, 50), (100, 50), (7, 6), (3, 2)] {
            let h = half(n, k);
            let all: Vec<(usize, usize)> = pairs(n, h).collect();
            let unordered: BTreeSet<(usize, usize)> =
                all.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
            assert_eq!(unordered.len(), all.len(), "n={n} k={k}: a pair twice");
            assert!(all.iter().all(|(a, b)| a != b));
            let mut degree: HashMap<usize, usize> = HashMap::new();
            for (a, b) in &all {
                *degree.entry(*a).or_default() += 1;
                *degree.entry(*b).or_default() += 1;
            }
            for i in 0..n {
                let mine: BTreeSet<usize> = neighbours(i, n, h).collect();
                assert_eq!(mine.len(), 2 * h, "n={n} k={k} i={i}");
                assert_eq!(degree.get(&i).copied().unwrap_or(0), 2 * h);
                for j in &mine {
                    assert!(unordered.contains(&(i.min(*j), i.max(*j))));
                }
            }
        }
    }
}
