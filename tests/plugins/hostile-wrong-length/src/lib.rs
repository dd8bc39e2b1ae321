//! Returns one score too many.
hostile_kit::hostile_scorer!("hostile-wrong-length", "Returns one score too many.", |candidates| {
    Ok(Scores { values: vec![1.0; candidates.len() + 1], contributions: vec![] })
});
