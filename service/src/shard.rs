//! Which replica runs which camera: rendezvous (highest random weight) hashing.
//!
//! Every replica scores every (camera, replica) pair with a fixed 64-bit hash and runs the
//! cameras it scores highest on. No coordination and no shared state: each replica computes the
//! same answer from the camera ids and the replica count alone. Going from n to n + 1 replicas
//! moves only the cameras the new replica wins, about 1/(n + 1) of them, and each of those moves
//! to the new replica; every other camera stays where it was (a modulo hash would move most).
//!
//! The hash is XXH3-64 (a published, versioned algorithm), so the assignment is the same on
//! every machine and build, unlike `std`'s `DefaultHasher`.

use std::fmt;

/// This process's place among the replicas: `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// All cameras in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` (e.g. `0/3`).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not I/N (e.g. 0/3)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("'{i}' in '{text}' is not a replica index"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' in '{text}' is not a replica count"))?;
        Shard::new(index, count)
    }

    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "replica {index} of {count}: the index must be below the count (0-based)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The replica index from a StatefulSet pod's host name (`recognizer-2` -> 2).
    pub fn from_hostname(hostname: &str, count: u32) -> Result<Shard, String> {
        let ordinal = hostname
            .rsplit('-')
            .next()
            .and_then(|o| o.parse::<u32>().ok())
            .ok_or_else(|| {
                format!(
                    "host name '{hostname}' does not end in -ORDINAL as a StatefulSet pod's does; use --shard I/N"
                )
            })?;
        Shard::new(ordinal, count)
    }

    pub fn owns(&self, camera_id: &str) -> bool {
        replica_for(camera_id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The weight of `replica` for `camera_id`.
fn weight(camera_id: &str, replica: u32) -> u64 {
    let mut key = Vec::with_capacity(camera_id.len() + 5);
    key.extend_from_slice(camera_id.as_bytes());
    // A separator that no id contains, so ("a1", 0) and ("a", 10) cannot collide.
    key.push(0);
    key.extend_from_slice(&replica.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&key)
}

/// The replica (0..count) that runs `camera_id`. Pure: the same for every caller.
pub fn replica_for(camera_id: &str, count: u32) -> u32 {
    assert!(count > 0, "at least one replica");
    (0..count)
        .max_by_key(|&r| (weight(camera_id, r), std::cmp::Reverse(r)))
        .unwrap()
}

/// Cameras per replica for `ids` over `count` replicas.
pub fn balance<'a>(ids: impl IntoIterator<Item = &'a str>, count: u32) -> Vec<usize> {
    let mut per = vec![0; count as usize];
    for id in ids {
        per[replica_for(id, count) as usize] += 1;
    }
    per
}

/// Going from `count` to `count + 1` replicas: how many cameras move, and how many of those go
/// anywhere but to the new replica (always 0 for rendezvous hashing).
pub fn moves<'a>(ids: impl IntoIterator<Item = &'a str>, count: u32) -> (usize, usize) {
    let mut moved = 0;
    let mut elsewhere = 0;
    for id in ids {
        let before = replica_for(id, count);
        let after = replica_for(id, count + 1);
        if before != after {
            moved += 1;
            if after != count {
                elsewhere += 1;
            }
        }
    }
    (moved, elsewhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("cam-{i:04}")).collect()
    }

    #[test]
    fn parse_and_hostname() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert_eq!(
            Shard::from_hostname("recognizer-12", 20).unwrap(),
            Shard {
                index: 12,
                count: 20
            }
        );
        assert!(Shard::from_hostname("recognizer", 3).is_err());
        assert!(Shard::from_hostname("recognizer-5", 3).is_err());
    }

    #[test]
    fn every_camera_has_exactly_one_replica() {
        let ids = ids(300);
        for n in [1, 2, 3, 8] {
            for id in &ids {
                let owners = (0..n)
                    .filter(|&i| Shard { index: i, count: n }.owns(id))
                    .count();
                assert_eq!(owners, 1, "{id} over {n}");
            }
        }
    }

    #[test]
    fn stable_across_builds() {
        // Fixed values: a change of hash or rule would reassign every deployed camera.
        let got: Vec<u32> = ["cam0", "cam1", "lobby", "door-3"]
            .iter()
            .map(|id| replica_for(id, 3))
            .collect();
        assert_eq!(got, STABLE_3);
    }
    const STABLE_3: [u32; 4] = [1, 1, 0, 1];

    #[test]
    fn balanced_within_binomial_spread() {
        let ids = ids(1000);
        for n in [3u32, 8, 20] {
            let per = balance(ids.iter().map(String::as_str), n);
            let mean = 1000.0 / n as f64;
            // 4 standard deviations of a binomial(1000, 1/n) count.
            let sd = (1000.0 * (1.0 / n as f64) * (1.0 - 1.0 / n as f64)).sqrt();
            for (r, &c) in per.iter().enumerate() {
                assert!(
                    (c as f64 - mean).abs() <= 4.0 * sd,
                    "replica {r} of {n}: {c} cameras (mean {mean:.1})"
                );
            }
        }
    }

    #[test]
    fn adding_a_replica_moves_only_to_it() {
        let ids = ids(1000);
        for n in [3u32, 8, 20] {
            let (moved, elsewhere) = moves(ids.iter().map(String::as_str), n);
            assert_eq!(elsewhere, 0);
            let expected = 1000.0 / (n + 1) as f64;
            assert!(
                (moved as f64 - expected).abs() < 0.35 * expected,
                "{n} -> {}: {moved} moved, expected about {expected:.0}",
                n + 1
            );
        }
    }
}
