//! Panics on every call.
hostile_kit::hostile_scorer!("hostile-panic", "Panics on every call.", |candidates| {
    panic!("scorer exploded on purpose while scoring {} candidates", candidates.len())
});
