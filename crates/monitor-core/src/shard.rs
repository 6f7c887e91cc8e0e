//! The stable shard hash: which of `n` shards owns a model.
//!
//! Every record of a model goes to one shard, so that the model's windows and
//! detectors are owned by one task and need no lock. The hash is XXH3-64
//! (seed 0) of the model name's UTF-8 bytes, taken modulo the shard count.
//! XXH3 is specified and frozen, so the shard that owns a model is the same
//! across builds, platforms and Rust releases (the standard library's default hasher makes
//! no such promise). A log-based source that partitions records by model
//! (Kafka, Redis Streams) uses the same function, so that a partition's
//! models line up with a process's shards.

/// The XXH3-64 hash of `model`, the stable key behind [`shard_of`].
///
/// ```
/// assert_eq!(monitor_core::shard::model_hash("fraud"), 0x6e16_ef28_0111_82a5);
/// ```
pub fn model_hash(model: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(model.as_bytes())
}

/// The shard, in `0..shards`, that owns `model`. `shards` of 0 is taken as 1.
///
/// ```
/// use monitor_core::shard::shard_of;
/// assert_eq!(shard_of("fraud", 1), 0);
/// assert!(shard_of("fraud", 8) < 8);
/// ```
pub fn shard_of(model: &str, shards: usize) -> usize {
    let n = shards.max(1) as u64;
    // The remainder is below `shards`, so it fits a usize.
    usize::try_from(model_hash(model) % n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed values, computed independently with the reference XXH3 (the
    /// `xxhash` Python binding of the C library, `xxh3_64_intdigest`). A
    /// change here moves models between shards, which a restart from a
    /// checkpoint or a partitioned log cannot tolerate.
    #[test]
    fn hashes_are_fixed() {
        let cases: [(&str, u64); 5] = [
            ("", 0x2d06_8005_38d3_94c2),
            ("fraud", 0x6e16_ef28_0111_82a5),
            ("search", 0x9cf5_6637_9bbe_00da),
            ("recsys", 0xb95f_65be_d28e_8d4a),
            ("ünïcode", 0xb3ac_039f_d7d7_9687),
        ];
        for (model, want) in cases {
            assert_eq!(model_hash(model), want, "xxh3_64({model:?})");
        }
    }

    #[test]
    fn shards_are_fixed() {
        let got: Vec<usize> =
            ["fraud", "search", "recsys", "a", "b", "c", "ünïcode"].iter().map(|m| shard_of(m, 8)).collect();
        assert_eq!(got, vec![5, 2, 2, 7, 7, 3, 7]);
    }
}
