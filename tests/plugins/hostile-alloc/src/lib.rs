//! Allocates memory until something stops it.
hostile_kit::hostile_scorer!("hostile-alloc", "Allocates memory until something stops it.", |candidates| {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really committed.
        hoard.push(vec![candidates.len() as u8 | 1; 1 << 20]);
        std::hint::black_box(&hoard);
    }
});
