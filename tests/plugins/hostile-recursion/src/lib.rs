//! Recurses until the stack runs out.
hostile_kit::hostile_scorer!("hostile-recursion", "Recurses until the stack runs out.", |candidates| {
    Ok(Scores {
        values: vec![depth(candidates.len() as u64) as f64; candidates.len()],
        contributions: vec![],
    })
});

/// Recursion that never ends for real inputs; the frame-local buffer keeps it from being
/// turned into a loop.
fn depth(n: u64) -> u64 {
    let frame = [n; 32];
    std::hint::black_box(&frame);
    if n == u64::MAX { 0 } else { depth(std::hint::black_box(n + 1)) + frame[(n % 32) as usize] }
}
