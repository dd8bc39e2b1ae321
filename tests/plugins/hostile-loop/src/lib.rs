//! Spins forever once asked to score.
hostile_kit::hostile_scorer!("hostile-loop", "Spins forever once asked to score.", |candidates| {
    let mut spins = 0u64;
    loop {
        // black_box keeps the optimiser from proving the loop has no effect.
        spins = std::hint::black_box(spins.wrapping_add(candidates.len() as u64 + 1));
    }
});
