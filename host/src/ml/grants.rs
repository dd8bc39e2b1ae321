//! The models one plugin instance may run: the names the operator granted its role, each bound
//! to a file, resolved to a shared [`Model`] the first time the plugin asks for it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::{MlError, Model, Tensor};

/// Granted models of one plugin instance.
#[derive(Default)]
pub struct Grants {
    granted: BTreeMap<String, PathBuf>,
    // Resolved once per instance, so a call costs no registry lookup or file check.
    open: HashMap<String, Arc<Model>>,
}

impl Grants {
    /// Grants exactly these models, by name.
    pub fn new(granted: BTreeMap<String, PathBuf>) -> Self {
        Self { granted, open: HashMap::new() }
    }

    /// The granted names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.granted.keys().map(String::as_str)
    }

    /// The granted model `name`, loading it on first use; `plugin` names the asker in errors.
    pub fn model(&mut self, plugin: &str, name: &str) -> Result<Arc<Model>, MlError> {
        if let Some(model) = self.open.get(name) {
            return Ok(model.clone());
        }
        let Some(path) = self.granted.get(name) else {
            let granted = self.names().collect::<Vec<_>>().join(", ");
            return Err(MlError::NotGranted {
                model: name.into(),
                plugin: plugin.into(),
                granted: if granted.is_empty() { "none".into() } else { granted },
            });
        };
        let model = Model::open(name, path)?;
        self.open.insert(name.to_owned(), model.clone());
        Ok(model)
    }

    /// Runs the granted model `name` on positional inputs.
    pub fn infer(&mut self, plugin: &str, name: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, MlError> {
        self.model(plugin, name)?.infer(name, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ungranted_model_is_not_found_naming_the_plugin_and_the_grants() {
        let mut none = Grants::default();
        let err = none.infer("onnx-mlp@0.1.0", "demand-mlp", vec![]).unwrap_err();
        assert_eq!(err.metric_label(), "not_granted");
        let text = err.to_string();
        assert!(text.contains("`demand-mlp`") && text.contains("plugin onnx-mlp@0.1.0"), "{text}");
        assert!(text.contains("granted: none") && text.contains("models = { demand-mlp = "), "{text}");

        // A granted file is never reached by another name, however the name is spelt.
        let mut one = Grants::new(BTreeMap::from([("a".into(), "/models/a.onnx".into())]));
        for name in ["b", "A", "../a", "/models/a.onnx"] {
            let err = one.infer("p", name, vec![]).unwrap_err();
            assert!(matches!(&err, MlError::NotGranted { granted, .. } if granted == "a"), "{err:?}");
        }
    }

    #[test]
    fn a_granted_but_missing_file_names_the_model_and_the_file() {
        let mut grants = Grants::new(BTreeMap::from([("m".into(), "/nowhere/m.onnx".into())]));
        let err = grants.infer("p", "m", vec![]).unwrap_err();
        assert!(matches!(err, MlError::Load { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("model `m`") && text.contains("/nowhere/m.onnx"), "{text}");
    }
}
