//! Input validation on its own, then the shipped model through ONNX Runtime.

use super::*;

fn features(dims: &[Option<u64>]) -> Vec<Port> {
    vec![Port { name: "features".into(), dims: dims.to_vec() }]
}

fn tensor(shape: &[u32]) -> Tensor {
    Tensor { shape: shape.to_vec(), data: vec![0.5; shape.iter().product::<u32>() as usize] }
}

#[test]
fn inputs_are_checked_for_count_shape_and_length() {
    let declared = features(&[None, Some(78)]);
    check_inputs(&declared, &[tensor(&[4, 78])]).unwrap();
    check_inputs(&declared, &[tensor(&[1, 78])]).unwrap();

    let err = check_inputs(&declared, &[]).unwrap_err();
    assert!(err.contains("takes 1 input(s) (features[?×78]), but 0 were given"), "{err}");
    let err = check_inputs(&declared, &[tensor(&[1, 78]), tensor(&[1, 78])]).unwrap_err();
    assert!(err.contains("but 2 were given"), "{err}");

    let err = check_inputs(&declared, &[tensor(&[1, 77])]).unwrap_err();
    assert!(err.contains("input `features` must be features[?×78]") && err.contains("[1, 77]"), "{err}");
    let err = check_inputs(&declared, &[tensor(&[78])]).unwrap_err();
    assert!(err.contains("[78]"), "rank: {err}");

    let short = Tensor { shape: vec![2, 78], data: vec![0.0; 78] };
    let err = check_inputs(&declared, &[short]).unwrap_err();
    assert!(err.contains("shape [2, 78], which does not hold its 78 values"), "{err}");
    // A shape whose product overflows is refused, not wrapped around.
    let huge = Tensor { shape: vec![u32::MAX, u32::MAX, u32::MAX], data: vec![] };
    assert!(check_inputs(&features(&[None, None, None]), &[huge]).is_err());
}

/// Whether ONNX Runtime can be found. In CI it must be (`.ci/run` provides it); elsewhere the
/// tests that need it say why they did not run.
fn runtime_available() -> bool {
    match runtime::find() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
        Err(e) => {
            eprintln!("note: skipping a test that needs ONNX Runtime: {e}");
            false
        }
    }
}

fn shipped_model() -> PathBuf {
    crate::manifest_dir().join("../plugins/onnx-mlp/model/demand-mlp.onnx")
}

#[test]
fn the_shipped_model_runs_and_answers_ordered_quantiles() {
    if !runtime_available() {
        return;
    }
    let model = Model::open("demand-mlp", &shipped_model()).unwrap();
    assert_eq!(model.inputs(), features(&[None, Some(78)]));
    assert_eq!(model.outputs()[0].to_string(), "quantiles[?×3]");
    // Three forecasts of a flat history: each row p10 ≤ p50 ≤ p90, near the level.
    let mut x = tensor(&[3, 78]);
    x.data.iter_mut().for_each(|v| *v = 1.0);
    let out = model.infer("demand-mlp", vec![x]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].shape, vec![3, 3]);
    for row in out[0].data.chunks(3) {
        assert!(row[0] <= row[1] && row[1] <= row[2], "{row:?}");
        assert!((0.5..2.0).contains(&row[1]), "{row:?}");
    }
    assert!(Arc::ptr_eq(&model, &Model::open("other-name", &shipped_model()).unwrap()), "loaded once");
}

#[test]
fn wrong_inputs_are_refused_before_the_model_runs_naming_model_and_file() {
    if !runtime_available() {
        return;
    }
    let model = Model::open("demand-mlp", &shipped_model()).unwrap();
    for inputs in
        [vec![], vec![tensor(&[1, 78]), tensor(&[1, 78])], vec![tensor(&[1, 77])], vec![tensor(&[78])]]
    {
        let err = model.infer("demand-mlp", inputs).unwrap_err();
        assert!(matches!(err, MlError::InvalidInput { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("model `demand-mlp`") && text.contains("demand-mlp.onnx"), "{text}");
    }
}

#[test]
fn a_file_that_is_not_a_model_is_a_load_error() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.onnx");
    std::fs::write(&path, "not a model").unwrap();
    let err = Model::open("notes", &path).err().expect("refused");
    assert!(matches!(err, MlError::Load { .. }), "{err:?}");
    assert!(err.to_string().contains("model `notes`") && err.to_string().contains("notes.onnx"), "{err}");
}

#[test]
fn one_session_serves_many_threads() {
    if !runtime_available() {
        return;
    }
    let model = Model::open("demand-mlp", &shipped_model()).unwrap();
    let alone = model.infer("demand-mlp", vec![tensor(&[8, 78])]).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(model.infer("demand-mlp", vec![tensor(&[8, 78])]).unwrap(), alone);
                }
            });
        }
    });
}
