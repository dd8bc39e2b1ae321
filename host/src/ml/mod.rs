//! ONNX model inference for plugins: the engine behind the `ml` host interface.
//!
//! A plugin asks for a model by name; the operator grants names per plugin role, each bound to
//! an `.onnx` file (`[plugins.forecaster] models = { demand-mlp = "…/demand-mlp.onnx" }`), and
//! a plugin reaches no other model and no file. ONNX Runtime itself is not linked into the
//! binary: it is loaded when the first model is, from `ORT_DYLIB_PATH` or from the
//! `onnxruntime==1.31.1` wheel in a Python installation ([`runtime`]). Each model file is loaded
//! once per process and its session shared ([`models`]); every call's inputs are checked
//! against the model's declared inputs before it runs.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use foresight::ml::{Grants, Tensor};
//!
//! let mut grants = Grants::new(BTreeMap::from([("demand-mlp".into(), "demand-mlp.onnx".into())]));
//! let features = Tensor { shape: vec![1, 78], data: vec![0.0; 78] };
//! let outputs = grants.infer("onnx-mlp", "demand-mlp", vec![features])?;
//! # Ok::<(), foresight::ml::MlError>(())
//! ```

mod grants;
pub mod models;
pub mod runtime;

use std::path::PathBuf;

pub use foresight_sdk::ml::Tensor;
pub use grants::Grants;
pub use models::{Model, Port};
pub use runtime::ORT_VERSION;

/// Why a model could not be run. The text names the model, its file and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MlError {
    /// Neither `ORT_DYLIB_PATH` nor a Python installation holds ONNX Runtime.
    #[error(
        "ONNX Runtime {ORT_VERSION} was not found; install it with `pip install onnxruntime=={ORT_VERSION}` \
         (the host then finds onnxruntime/capi/libonnxruntime.so.{ORT_VERSION} in Python's site-packages) \
         or set ORT_DYLIB_PATH to that library file (searched: {})",
        runtime::list(searched)
    )]
    RuntimeMissing {
        /// The site-packages folders that were searched.
        searched: Vec<PathBuf>,
    },
    /// `ORT_DYLIB_PATH` names no file.
    #[error(
        "ORT_DYLIB_PATH is {path}, which is not a file; point it at libonnxruntime.so.{ORT_VERSION} from \
         the onnxruntime=={ORT_VERSION} wheel, or unset it and `pip install onnxruntime=={ORT_VERSION}`"
    )]
    DylibPathMissing {
        /// The value of `ORT_DYLIB_PATH`.
        path: PathBuf,
    },
    /// The library was found but would not start (wrong version, not ONNX Runtime, broken).
    #[error(
        "cannot start ONNX Runtime from {path}: {reason}; use the library of the onnxruntime=={ORT_VERSION} \
         wheel (set ORT_DYLIB_PATH to it, or `pip install onnxruntime=={ORT_VERSION}`)"
    )]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// What ONNX Runtime said.
        reason: String,
    },
    /// The plugin asked for a model that is not granted to it.
    #[error(
        "no model named `{model}` is granted to plugin {plugin} (granted: {granted}); the operator grants \
         models in the plugin's role, e.g. `models = {{ {model} = \"path/to/{model}.onnx\" }}`"
    )]
    NotGranted {
        /// The name the plugin asked for.
        model: String,
        /// The plugin.
        plugin: String,
        /// The names it may use, comma-separated, or `none`.
        granted: String,
    },
    /// The model file could not be read or is not a model this host can run.
    #[error("model `{model}` ({path}) cannot be loaded: {reason}")]
    Load {
        /// The granted name.
        model: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The inputs do not match the model's declared inputs.
    #[error("model `{model}` ({path}): {reason}")]
    InvalidInput {
        /// The granted name.
        model: String,
        /// The file.
        path: PathBuf,
        /// What does not match, naming the input.
        reason: String,
    },
    /// ONNX Runtime failed while running valid inputs.
    #[error("model `{model}` ({path}) failed while running: {reason}")]
    Run {
        /// The granted name.
        model: String,
        /// The file.
        path: PathBuf,
        /// What ONNX Runtime said.
        reason: String,
    },
}

impl MlError {
    /// A short, stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::RuntimeMissing { .. } | Self::DylibPathMissing { .. } | Self::RuntimeLoad { .. } => {
                "runtime"
            }
            Self::NotGranted { .. } => "not_granted",
            Self::Load { .. } => "load",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Run { .. } => "run",
        }
    }
}
