//! ONNX models: each file is loaded once per process and its session shared by every plugin
//! instance granted it; every call's inputs are checked against the model's declared inputs
//! before ONNX Runtime sees them, so a plugin's mistake comes back as an error naming the input
//! rather than whatever the runtime makes of it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use ort::session::{Session, SessionInputValue};
use ort::value::{Outlet, TensorElementType, ValueType};

use super::{MlError, Tensor, runtime};

/// A declared input or output of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name in the graph.
    pub name: String,
    /// Size of each dimension; `None` where the model leaves it free (a batch dimension).
    pub dims: Vec<Option<u64>>,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
        write!(f, "{}[{}]", self.name, dims.join("×"))
    }
}

/// A loaded model.
pub struct Model {
    path: PathBuf,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    // `ort` runs a session through `&mut`: ONNX Runtime does not promise that concurrent runs
    // of one session are safe. The models served here answer in microseconds, so callers
    // queue on one session rather than each loading its own.
    session: Mutex<Session>,
}

/// Size and modification time: a model file replaced in place is loaded again.
type Stamp = (u64, Option<SystemTime>);

impl Model {
    /// The model in `path`, loaded on first use and shared after; `name` names it in errors.
    pub fn open(name: &str, path: &Path) -> Result<Arc<Model>, MlError> {
        static LOADED: Mutex<Vec<(PathBuf, Stamp, Arc<Model>)>> = Mutex::new(Vec::new());
        let failed = |reason: String| MlError::Load { model: name.into(), path: path.into(), reason };
        let meta = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
        let stamp = (meta.len(), meta.modified().ok());
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        // Loading under the lock: two plugins asking for the same new model load it once.
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, seen, model)) = loaded.iter().find(|(p, _, _)| *p == key)
            && *seen == stamp
        {
            return Ok(model.clone());
        }
        let model = Arc::new(Self::load(name, path)?);
        loaded.retain(|(p, _, _)| *p != key);
        loaded.push((key, stamp, model.clone()));
        tracing::info!(model = name, file = %path.display(), inputs = %list(&model.inputs), outputs = %list(&model.outputs), "model loaded");
        Ok(model)
    }

    fn load(name: &str, path: &Path) -> Result<Self, MlError> {
        let failed = |reason: String| MlError::Load { model: name.into(), path: path.into(), reason };
        let environment = runtime::environment()?;
        // One thread per run: plugin calls already run on every worker, and a session's own
        // pool would compete with them for cores (and spin between calls) to speed up models
        // that take microseconds.
        let mut builder = Session::builder(environment)
            .map_err(|e| failed(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| failed(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| failed(e.to_string()))?;
        let session = builder.commit_from_file(path).map_err(|e| failed(e.to_string()))?;
        let ports = |outlets: &[Outlet], what: &str| -> Result<Vec<Port>, MlError> {
            outlets.iter().map(|o| port(o, what).map_err(&failed)).collect()
        };
        let inputs = ports(session.inputs(), "input")?;
        let outputs = ports(session.outputs(), "output")?;
        Ok(Self { path: path.to_owned(), inputs, outputs, session: Mutex::new(session) })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its declared inputs, in the order `infer` takes them.
    pub fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    /// Its declared outputs, in the order `infer` returns them.
    pub fn outputs(&self) -> &[Port] {
        &self.outputs
    }

    /// Runs the model on positional inputs; `name` names it in errors.
    pub fn infer(&self, name: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, MlError> {
        check_inputs(&self.inputs, &inputs).map_err(|reason| MlError::InvalidInput {
            model: name.into(),
            path: self.path.clone(),
            reason,
        })?;
        let failed = |reason: String| MlError::Run { model: name.into(), path: self.path.clone(), reason };
        let values = inputs
            .into_iter()
            .map(|t| {
                let shape: Vec<i64> = t.shape.iter().map(|&d| i64::from(d)).collect();
                ort::value::Tensor::from_array((shape, t.data)).map(SessionInputValue::from)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failed(e.to_string()))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(values.as_slice()).map_err(|e| failed(e.to_string()))?;
        self.outputs
            .iter()
            .map(|port| {
                let value = outputs
                    .get(&port.name)
                    .ok_or_else(|| failed(format!("output `{}` is missing", port.name)))?;
                let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| failed(e.to_string()))?;
                let shape = shape
                    .iter()
                    .map(|&d| u32::try_from(d))
                    .collect::<Result<Vec<u32>, _>>()
                    .map_err(|_| failed(format!("output `{}` has shape {shape:?}", port.name)))?;
                Ok(Tensor { shape, data: data.to_vec() })
            })
            .collect()
    }
}

/// A declared input or output as a [`Port`], if it is an f32 tensor (all the `ml` interface
/// carries).
fn port(outlet: &Outlet, what: &str) -> Result<Port, String> {
    match outlet.dtype() {
        ValueType::Tensor { ty: TensorElementType::Float32, shape, .. } => Ok(Port {
            name: outlet.name().to_owned(),
            dims: shape.iter().map(|&d| u64::try_from(d).ok()).collect(),
        }),
        other => Err(format!(
            "its {what} `{}` is {other}; plugins pass and receive f32 tensors only, so export the model \
             with float32 inputs and outputs",
            outlet.name()
        )),
    }
}

fn list(ports: &[Port]) -> String {
    ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Checks inputs against the declared ones: count, each shape against its data, rank, and
/// every fixed dimension. The error names the input and what it should be.
pub fn check_inputs(declared: &[Port], inputs: &[Tensor]) -> Result<(), String> {
    if inputs.len() != declared.len() {
        return Err(format!(
            "takes {} input(s) ({}), but {} were given",
            declared.len(),
            list(declared),
            inputs.len()
        ));
    }
    for (port, tensor) in declared.iter().zip(inputs) {
        let elements = tensor.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(u64::from(d)));
        if elements != Some(tensor.data.len() as u64) {
            return Err(format!(
                "input `{}` has shape {:?}, which does not hold its {} values",
                port.name,
                tensor.shape,
                tensor.data.len()
            ));
        }
        let wrong = tensor.shape.len() != port.dims.len()
            || port
                .dims
                .iter()
                .zip(&tensor.shape)
                .any(|(want, &got)| want.is_some_and(|w| w != u64::from(got)));
        if wrong {
            return Err(format!(
                "input `{}` must be {port} (? is free), but has shape {:?}",
                port.name, tensor.shape
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
