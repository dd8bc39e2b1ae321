//! ONNX inference run by the host. Inside the sandbox calls go through the host's `ml` import,
//! which reaches only the models the operator granted this plugin. In a native build the host
//! process installs its inference engine with [`install_native`].

use std::sync::OnceLock;

/// A dense row-major f32 tensor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<u32>,
    /// Elements, row-major.
    pub data: Vec<f32>,
}

/// Why inference failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MlError {
    /// No model of that name is granted.
    #[error("model not found: {0}")]
    NotFound(String),
    /// Inputs do not match the model.
    #[error("invalid model input: {0}")]
    InvalidInput(String),
    /// The runtime is missing or the model failed.
    #[error("inference failed: {0}")]
    Failed(String),
}

/// Signature of a native inference engine.
pub type NativeEngine = dyn Fn(&str, &[Tensor]) -> Result<Vec<Tensor>, MlError> + Send + Sync;

static NATIVE: OnceLock<Box<NativeEngine>> = OnceLock::new();

/// Installs the inference engine native builds use; the first installation wins.
pub fn install_native(engine: Box<NativeEngine>) -> bool {
    NATIVE.set(engine).is_ok()
}

/// Runs the named model on positional inputs.
pub fn infer(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, MlError> {
    imp::infer(model, inputs)
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::{MlError, Tensor};
    use crate::__private::forecaster::foresight::policy::ml as host;

    pub fn infer(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, MlError> {
        let inputs: Vec<host::Tensor> =
            inputs.iter().map(|t| host::Tensor { shape: t.shape.clone(), data: t.data.clone() }).collect();
        match host::infer(model, &inputs) {
            Ok(outputs) => Ok(outputs.into_iter().map(|t| Tensor { shape: t.shape, data: t.data }).collect()),
            Err(host::MlError::NotFound(m)) => Err(MlError::NotFound(m)),
            Err(host::MlError::InvalidInput(m)) => Err(MlError::InvalidInput(m)),
            Err(host::MlError::Failed(m)) => Err(MlError::Failed(m)),
        }
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::{MlError, NATIVE, Tensor};

    pub fn infer(model: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>, MlError> {
        match NATIVE.get() {
            Some(engine) => engine(model, inputs),
            None => Err(MlError::Failed("no inference engine is installed in this process".into())),
        }
    }
}
