//! Compiled components cached on disk by content hash, so a plugin is compiled once per engine
//! configuration and later loads take a fraction of a millisecond.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and stored, when the cache is writable).
    Compiled,
    /// Loaded precompiled from the cache.
    Cached,
}

impl ComponentCache {
    /// A cache in `dir`, or no cache at all.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Hex SHA-256 of a component's bytes: its identity in logs and the cache.
    pub fn content_hash(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn entry(&self, engine: &Engine, hash: &str) -> Option<PathBuf> {
        // A precompiled artifact only loads into an engine of the same version and settings, so
        // the engine's compatibility hash is part of the key.
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = h.finish();
        self.dir.as_ref().map(|d| d.join(format!("{hash}-{engine_key:016x}.cwasm")))
    }

    /// Returns the compiled component for `bytes`, from the cache when possible.
    pub fn load(&self, engine: &Engine, bytes: &[u8], hash: &str) -> wasmtime::Result<(Component, Origin)> {
        let entry = self.entry(engine, hash);
        if let Some(path) = entry.as_deref().filter(|p| p.is_file()) {
            match deserialize(engine, path) {
                Ok(component) => return Ok((component, Origin::Cached)),
                Err(e) => {
                    tracing::warn!(cache = %path.display(), "discarding unusable cached component: {e:#}")
                }
            }
        }
        let Some(path) = entry.as_deref() else {
            return Ok((Component::new(engine, bytes)?, Origin::Compiled));
        };
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = store(path, &compiled) {
            tracing::warn!(cache = %path.display(), "cannot cache compiled component: {e}");
        }
        Ok((deserialize_fresh(engine, &compiled)?, Origin::Compiled))
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `store` below from `Engine::precompile_component` output,
    // in a directory only this host writes to, and wasmtime refuses artifacts from an engine of
    // another version or configuration. `deserialize_file` memory-maps it read-only.
    unsafe { Component::deserialize_file(engine, path) }
}

#[allow(unsafe_code)]
fn deserialize_fresh(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` was produced a moment ago by `precompile_component` of this engine.
    unsafe { Component::deserialize(engine, compiled) }
}

fn store(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Write-then-rename: a reader never sees a half-written artifact.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, compiled)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
