//! Shards: one process's share of a run, written as mergeable partial state, and the exact
//! merge of all shards into the results of the unsharded run.

use crate::plan::UnitResult;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the shard file format (2: the content carries its SHA-256).
pub const SHARD_FORMAT: u32 = 2;
/// Name of the shard file inside a shard's output directory.
pub const SHARD_FILE: &str = crate::outdir::SHARD_FILE;

/// What `shard.json` holds: the shard's content and the SHA-256 of its exact bytes, so that
/// `merge` refuses a shard damaged or edited after it was written.
#[derive(Deserialize)]
struct Envelope<'a> {
    /// Shard file format.
    obasim_shard: u32,
    /// SHA-256 (hex) of the bytes of `shard`.
    sha256: String,
    /// The [`ShardFile`], as written.
    #[serde(borrow)]
    shard: &'a serde_json::value::RawValue,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Everything a shard writes: what was run (to check that shards belong together) and the
/// partial results of its units.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFile {
    /// Shard file format.
    pub format: u32,
    /// obasim version that wrote it.
    pub obasim_version: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// SHA-256 of the scenario text.
    pub scenario_sha256: String,
    /// SHA-256 of the data files the scenario read (see `model::build::data_digest`).
    #[serde(default)]
    pub data_sha256: String,
    /// The scenario text (the merge rebuilds the model from it).
    pub scenario_text: String,
    /// Directory its data files are read from (none: the embedded example).
    pub base_dir: Option<String>,
    /// `--seed` override.
    pub seed: Option<u64>,
    /// `--patients` override.
    pub patients: Option<u64>,
    /// PSA draws.
    pub draws: u32,
    /// One-way runs included.
    pub tornado: bool,
    /// This shard (0-based).
    pub shard: u32,
    /// Number of shards.
    pub shards: u32,
    /// Number of units of the whole run (a check of the partition).
    pub units_total: u64,
    /// Patients per block.
    pub block_size: u64,
    /// The results of this shard's units.
    pub parts: Vec<UnitResult>,
}

/// Parses `i/N` (0 <= i < N).
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a shard: write i/N, e.g. 0/8 (i counts from 0)"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: shard index `{i}` is not a whole number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: shard count `{n}` is not a whole number"))?;
    if n == 0 || i >= n {
        return Err(format!(
            "`{s}`: need 0 <= i < N (shards count from 0: 0/{n} to {}/{n})",
            n.max(1) - 1
        ));
    }
    Ok((i, n))
}

/// Reads the shard file of each directory and checks that they are the complete set of one
/// run: same scenario, version, seed, sizes and partition, each shard exactly once.
pub fn read_shards(dirs: &[PathBuf]) -> Result<Vec<ShardFile>, String> {
    let mut shards: Vec<ShardFile> = Vec::new();
    for d in dirs {
        let path = if d.is_dir() {
            d.join(SHARD_FILE)
        } else {
            d.clone()
        };
        shards.push(read_shard(&path)?);
    }
    let Some(first) = shards.first() else {
        return Err("no shard directories given".into());
    };
    let key = |s: &ShardFile| {
        (
            s.format,
            s.obasim_version.clone(),
            s.scenario_sha256.clone(),
            s.data_sha256.clone(),
            s.seed,
            s.patients,
            s.draws,
            s.tornado,
            s.shards,
            s.units_total,
            s.block_size,
        )
    };
    let k0 = key(first);
    for (s, d) in shards.iter().zip(dirs) {
        if key(s) != k0 {
            let what = if s.scenario_sha256 != first.scenario_sha256 {
                "another scenario (its SHA-256 differs)".to_string()
            } else if s.data_sha256 != first.data_sha256 {
                "other data files (the life table's SHA-256 differs)".to_string()
            } else if s.obasim_version != first.obasim_version {
                format!(
                    "another obasim version ({} vs {})",
                    s.obasim_version, first.obasim_version
                )
            } else if s.seed != first.seed {
                "another seed".to_string()
            } else if s.shards != first.shards || s.units_total != first.units_total {
                format!(
                    "another partition ({} shards vs {})",
                    s.shards, first.shards
                )
            } else {
                "other settings (patients, draws or one-way runs)".to_string()
            };
            return Err(format!(
                "{} is from {what} than {}: shards of different runs cannot be merged",
                d.display(),
                dirs[0].display()
            ));
        }
    }
    let n = first.shards;
    let mut seen = vec![0u32; n as usize];
    for (s, d) in shards.iter().zip(dirs) {
        match seen.get_mut(s.shard as usize) {
            Some(count) => *count += 1,
            None => {
                return Err(format!(
                    "{} says it is shard {} of {}: a shard number must be below the number of shards (the shard file is damaged)",
                    d.display(),
                    s.shard,
                    s.shards
                ))
            }
        }
    }
    let dup: Vec<String> = (0..n)
        .filter(|&i| seen[i as usize] > 1)
        .map(|i| i.to_string())
        .collect();
    if !dup.is_empty() {
        return Err(format!("shard(s) {} given more than once", dup.join(", ")));
    }
    let missing: Vec<String> = (0..n)
        .filter(|&i| seen[i as usize] == 0)
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} of {n} shards missing: {} (rerun them with `obasim run FILE --shard i/{n}`)",
            missing.len(),
            missing.join(", ")
        ));
    }
    shards.sort_by_key(|s| s.shard);
    Ok(shards)
}

/// Largest shard file read (bytes).
pub const MAX_SHARD_BYTES: u64 = 64 << 30;

/// Reads one shard file and checks its integrity: its checksum, and the SHA-256 of the
/// scenario text it stores against the one it records.
pub fn read_shard(path: &Path) -> Result<ShardFile, String> {
    let shown = path.display();
    let text = crate::scenario::read_regular_file(path, MAX_SHARD_BYTES)
        .map_err(|e| format!("{shown}: cannot read a shard ({e})"))?;
    let envelope: Envelope = serde_json::from_str(&text).map_err(|e| {
        if text.contains("\"scenario_text\"") && !text.contains("\"obasim_shard\"") {
            format!("{shown}: written by an earlier obasim (shard format 1, without a checksum): rerun the shards with this obasim")
        } else {
            format!("{shown}: not an obasim shard file ({e})")
        }
    })?;
    if envelope.obasim_shard != SHARD_FORMAT {
        return Err(format!(
            "{shown}: shard format {} (this obasim reads format {SHARD_FORMAT}): rerun the shards with this obasim",
            envelope.obasim_shard
        ));
    }
    let body = envelope.shard.get();
    if sha256_hex(body.as_bytes()) != envelope.sha256 {
        return Err(format!(
            "{shown}: the shard is damaged or was edited after it was written (its content does not match its SHA-256 checksum): rerun this shard"
        ));
    }
    let s: ShardFile = serde_json::from_str(body)
        .map_err(|e| format!("{shown}: not an obasim shard file ({e})"))?;
    if sha256_hex(s.scenario_text.as_bytes()) != s.scenario_sha256 {
        return Err(format!(
            "{shown}: the scenario text stored in the shard does not match its recorded SHA-256 (the shard was edited): rerun this shard"
        ));
    }
    if s.format != SHARD_FORMAT || s.block_size != crate::engine::BLOCK_SIZE {
        return Err(format!(
            "{shown}: shard format {} with blocks of {} patients; this obasim writes format {SHARD_FORMAT} with blocks of {}: rerun the shards with this obasim",
            s.format,
            s.block_size,
            crate::engine::BLOCK_SIZE
        ));
    }
    Ok(s)
}

/// Writes a shard file into `dir`: the content and its SHA-256.
pub fn write_shard(dir: &Path, shard: &ShardFile) -> std::io::Result<()> {
    let body = serde_json::to_string(shard).map_err(std::io::Error::other)?;
    let text = format!(
        "{{\"obasim_shard\":{SHARD_FORMAT},\"sha256\":\"{}\",\"shard\":{body}}}",
        sha256_hex(body.as_bytes())
    );
    std::fs::write(dir.join(SHARD_FILE), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("0/4"), Ok((0, 4)));
        assert_eq!(parse_shard(" 3 / 4 "), Ok((3, 4)));
        assert!(parse_shard("4/4").unwrap_err().contains("0 <= i < N"));
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/2").is_err());
    }
}
