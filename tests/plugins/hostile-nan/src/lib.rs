//! Returns NaN scores.
hostile_kit::hostile_scorer!("hostile-nan", "Returns NaN scores.", |candidates| {
    Ok(Scores { values: vec![f64::NAN; candidates.len()], contributions: vec![] })
});
