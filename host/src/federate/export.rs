//! Serving a federated model through the ONNX path: its weights written into a copy of the
//! shipped `demand-mlp.onnx`, whose graph is the network's. Each weight initializer
//! (`w0`, `b0`, … `b2`) stores its floats as `raw_data`; the new floats have the same count,
//! so they replace the old bytes in place and no length in the protobuf changes.

use std::ops::Range;

use super::model::{Mlp, SIZES};

/// Why weights cannot be written into a model file.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    /// The file is not the protobuf an ONNX model is.
    #[error("not an ONNX model: {0}")]
    Malformed(String),
    /// An initializer the network needs is missing or of another size.
    #[error(
        "initializer `{name}`: {reason}; the template must be plugins/onnx-mlp/model/demand-mlp.onnx or a model of the same graph"
    )]
    Initializer {
        /// Its name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, ExportError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or_else(|| ExportError::Malformed("truncated varint".into()))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ExportError::Malformed("varint too long".into()))
}

/// The length-delimited fields of a message as (field number, byte range of the payload).
fn fields(bytes: &[u8], within: Range<usize>) -> Result<Vec<(u64, Range<usize>)>, ExportError> {
    let mut out = Vec::new();
    let mut at = within.start;
    while at < within.end {
        let key = varint(bytes, &mut at)?;
        match key & 7 {
            0 => {
                varint(bytes, &mut at)?;
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = varint(bytes, &mut at)? as usize;
                let end = at.checked_add(len).filter(|e| *e <= within.end);
                let end =
                    end.ok_or_else(|| ExportError::Malformed("a field runs past its message".into()))?;
                out.push((key >> 3, at..end));
                at = end;
            }
            w => return Err(ExportError::Malformed(format!("wire type {w}"))),
        }
    }
    Ok(out)
}

/// Writes `bytes` to `path` so that a reader — the daemon's hot reload — only ever sees the
/// old file or the whole new one: into a temporary file beside it, then renamed over it.
pub fn replace_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// `template` (an ONNX model of the network's graph) with `mlp`'s weights.
pub fn with_weights(template: &[u8], mlp: &Mlp) -> Result<Vec<u8>, ExportError> {
    const GRAPH: u64 = 7;
    const INITIALIZER: u64 = 5;
    const NAME: u64 = 8;
    const RAW_DATA: u64 = 9;
    let graph = fields(template, 0..template.len())?
        .into_iter()
        .find(|(f, _)| *f == GRAPH)
        .ok_or_else(|| ExportError::Malformed("no graph".into()))?
        .1;
    let mut places = std::collections::BTreeMap::new();
    for (_, init) in fields(template, graph)?.into_iter().filter(|(f, _)| *f == INITIALIZER) {
        let parts = fields(template, init)?;
        let name = parts.iter().find(|(f, _)| *f == NAME).map(|(_, r)| &template[r.clone()]);
        let raw = parts.iter().find(|(f, _)| *f == RAW_DATA).map(|(_, r)| r.clone());
        if let (Some(name), Some(raw)) = (name, raw) {
            places.insert(String::from_utf8_lossy(name).into_owned(), raw);
        }
    }
    let mut out = template.to_vec();
    let mut at = 0;
    for (layer, w) in SIZES.windows(2).enumerate() {
        for (name, count) in [(format!("w{layer}"), w[0] * w[1]), (format!("b{layer}"), w[1])] {
            let range = places.get(&name).ok_or_else(|| ExportError::Initializer {
                name: name.clone(),
                reason: "not in the template (or not stored as raw_data)".into(),
            })?;
            if range.len() != count * 4 {
                return Err(ExportError::Initializer {
                    name,
                    reason: format!("holds {} floats, the network {count}", range.len() / 4),
                });
            }
            out[range.clone()].copy_from_slice(&super::wire::to_bytes(&mlp.params[at..at + count]));
            at += count;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::sim::Rng;
    use crate::federate::model::Samples;

    fn template() -> Vec<u8> {
        let path = crate::manifest_dir().join("../plugins/onnx-mlp/model/demand-mlp.onnx");
        std::fs::read(path).expect("the shipped model")
    }

    #[test]
    fn onnx_runtime_computes_what_the_rust_network_does() {
        let mlp = Mlp::new(17);
        let bytes = with_weights(&template(), &mlp).expect("exports");
        assert_eq!(bytes.len(), template().len());
        match crate::ml::runtime::find() {
            Ok(_) => {}
            Err(e) if std::env::var_os("CI").is_some() => panic!("{e}"),
            Err(e) => return eprintln!("note: skipping the ONNX half of this test: {e}"),
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("federated.onnx");
        std::fs::write(&path, &bytes).expect("write");
        let model = crate::ml::Model::open("federated", &path).expect("ONNX Runtime loads it");
        let values: Vec<f64> =
            (0..3 * 288).map(|i| 50.0 + 30.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin()).collect();
        let s = Samples::draw(0, 300, &values, 0, values.len(), 8, &mut Rng::new(1));
        let input =
            crate::ml::Tensor { shape: vec![s.len() as u32, onnx_mlp::FEATURES as u32], data: s.x.clone() };
        let out = model.infer("federated", vec![input]).expect("runs");
        for (onnx, rust) in out[0].data.chunks(3).zip(mlp.predict(&s.x)) {
            for (a, b) in onnx.iter().zip(rust) {
                assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{onnx:?} vs {rust:?}");
            }
        }
    }

    #[test]
    fn a_template_of_another_graph_is_refused_by_name() {
        let err = with_weights(b"\x08\x07", &Mlp::new(1)).unwrap_err();
        assert_eq!(err, ExportError::Malformed("no graph".into()));
    }
}
