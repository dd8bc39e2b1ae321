//! Reads the wall clock, a capability the host grants only on request.
hostile_kit::hostile_scorer!("hostile-clock", "Scores by the time of day.", |candidates| {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| PluginError::Failed(e.to_string()))?;
    Ok(Scores { values: vec![(now.as_secs() % 86_400) as f64; candidates.len()], contributions: vec![] })
});
