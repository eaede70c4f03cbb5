//! Files written so that a crash or Ctrl-C mid-write never leaves a partial one, and the
//! header of the safetensors files the trainer writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path.tmp`, syncs it, then renames it over `path` (atomic on one
/// file system).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| Error::Io { path, source }
    };
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The bytes of the safetensors file at `path` and the value of `key` in its metadata.
///
/// Errors: [`Error::Io`]; [`Error::Checkpoint`] naming the file for one that is not
/// safetensors or has no `key` (`what` names what the file should have been).
pub(crate) fn read_safetensors(path: &Path, key: &str, what: &str) -> Result<(Vec<u8>, String)> {
    let file = path.display().to_string();
    let fail = |reason: String| Error::Checkpoint {
        file: file.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| fail(format!("not a safetensors file ({e})")))?;
    let value = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(key))
        .cloned()
        .ok_or_else(|| fail(format!("no {key:?} entry: not {what}")))?;
    Ok((bytes, value))
}
