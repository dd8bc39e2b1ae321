//! # onnx-mlp — a forecaster backed by an ONNX model the host runs
//!
//! Describes every forecast of a request by the same [`FEATURES`] numbers the model was trained
//! on — each series' last 48 hours as hourly means and its last hour at 5 minutes, divided by
//! their mean; the same hour 1, 2 and 7 days before the target; the target's time of day and
//! day of week; the lead — sends them to the granted model in **one** `ml::infer` call per
//! request, and turns its answers back into the series' units:
//!
//! ```text
//! y'ᵢ   = yᵢ / m(tᵢ)                          past events divided out (m: event multiplier)
//! x(h)  = features(y', h)                     one row per series × horizon, one batch
//! q̂(h)  = model(x(h))                         quantiles at `levels`, divided by the scale s
//! q_τ(h) = m(t_last + h) · s · interp_τ(q̂(h))  other levels on the normal scale, uncrossed
//! ```
//!
//! * **Model.** `model` names a model the operator grants the forecaster role
//!   (`[plugins.forecaster] models = { demand-mlp = "…/demand-mlp.onnx" }`); the plugin reaches
//!   no file itself. The shipped `model/demand-mlp.onnx` is an MLP trained on public workload
//!   traces by `train/train.py`, for leads of 1 step to 48 h (longer leads are described as
//!   48 h). Configuring the plugin runs the model once, so a missing grant or runtime fails at
//!   start rather than at the first forecast.
//! * **Quantiles.** The model answers `levels` (p10, p50, p90); a request's other levels are
//!   interpolated between them on the normal scale and extrapolated beyond along the outer
//!   segment (a two-piece normal), then uncrossed.
//! * **Events, gaps, limits.** As in `seasonal-naive`: history under a known event is divided
//!   by its multiplier (under a multiplier of 0 it is a gap), forecasts are multiplied by the
//!   multiplier at their target time; a non-negative history gives non-negative quantiles; a
//!   series with no observation is refused naming it.
//!
//! ```
//! use foresight_sdk::ml::{self, MlError, Tensor};
//! use foresight_sdk::{Config, ForecastRequest, Forecaster, Series};
//! use onnx_mlp::{FEATURES, OnnxMlp};
//!
//! // Natively, the host's engine is whatever the process installs: here every forecast is
//! // the recent level (feature 59: the last observation / scale) with a ±10 % band.
//! ml::install_native(Box::new(|_model: &str, inputs: &[Tensor]| -> Result<Vec<Tensor>, MlError> {
//!     let data = inputs[0].data.chunks(FEATURES).flat_map(|x| [0.9 * x[59], x[59], 1.1 * x[59]]).collect();
//!     Ok(vec![Tensor { shape: vec![inputs[0].shape[0], 3], data }])
//! }));
//! let mut forecaster = OnnxMlp::new(&Config::parse("", &OnnxMlp::describe_keys()).unwrap()).unwrap();
//! let request = ForecastRequest {
//!     series: vec![Series { start: 0, step: 300, values: vec![40.0; 288], ..Default::default() }],
//!     horizons: vec![300, 3600],
//!     quantiles: vec![0.1, 0.5, 0.9],
//! };
//! let answer = forecaster.forecast(&request).unwrap();
//! assert_eq!(answer[0].len(), 6);
//! assert!((answer[0][1] - 40.0).abs() < 1e-4);
//! ```

mod features;
mod quantiles;

use foresight_sdk::ml::{self, MlError, Tensor};
use foresight_sdk::{Config, ConfigKey, Descriptor, ForecastRequest, Forecaster, PluginError, PluginKind};

pub use features::{FEATURES, History, MAX_LEAD_S, TWO_DAYS, YESTERDAY, YESTERDAY_SEEN};
pub use foresight_sdk::stats::normal_quantile;

/// The ONNX-backed forecaster.
#[derive(Debug, Clone)]
pub struct OnnxMlp {
    model: String,
    levels: Vec<f64>,
}

impl OnnxMlp {
    /// The configuration keys, for building a [`Config`] natively.
    pub fn describe_keys() -> Vec<ConfigKey> {
        Self::describe().config_keys
    }

    /// Runs the model on `rows` forecasts' features; its answer is `rows × levels`.
    fn infer(&self, rows: usize, features: Vec<f32>) -> Result<Vec<f32>, PluginError> {
        let input = Tensor { shape: vec![rows as u32, FEATURES as u32], data: features };
        let mut outputs = ml::infer(&self.model, &[input]).map_err(|e| self.model_error(e))?;
        let want = vec![rows as u32, self.levels.len() as u32];
        match outputs.as_slice() {
            [out] if out.shape == want && out.data.len() == rows * self.levels.len() => {
                Ok(outputs.swap_remove(0).data)
            }
            _ => Err(PluginError::InvalidConfig(format!(
                "model `{}` answered shapes {:?}; `levels` lists {} levels, so one output of shape {want:?} was \
                 expected",
                self.model,
                outputs.iter().map(|t| &t.shape).collect::<Vec<_>>(),
                self.levels.len()
            ))),
        }
    }

    fn model_error(&self, e: MlError) -> PluginError {
        let model = &self.model;
        match e {
            MlError::NotFound(m) => PluginError::InvalidConfig(format!("`model` = \"{model}\": {m}")),
            MlError::InvalidInput(m) => PluginError::InvalidConfig(format!(
                "model `{model}` does not take this plugin's {FEATURES} features per forecast ({m}); grant a \
                 model trained by plugins/onnx-mlp/train/train.py"
            )),
            MlError::Failed(m) => PluginError::Failed(m),
        }
    }
}

impl Forecaster for OnnxMlp {
    fn describe() -> Descriptor {
        Descriptor::new(
            "onnx-mlp",
            env!("CARGO_PKG_VERSION"),
            PluginKind::Forecaster,
            "Quantile forecasts from a small ONNX model (an MLP on recent hours, daily and weekly lags and the calendar) that the host runs; leads of 1 step to 48 h.",
        )
        .key(ConfigKey::new(
            "model",
            "Name of the ONNX model to run, as granted in the role's `models` table (which binds it to a file).",
            Some("\"demand-mlp\""),
        ))
        .key(ConfigKey::new(
            "levels",
            "Quantile levels of the model's outputs, in output order; other requested levels are interpolated between them on the normal scale.",
            Some("[0.1, 0.5, 0.9]"),
        ))
    }

    fn new(config: &Config) -> Result<Self, PluginError> {
        let model: String = config.get("model")?;
        let levels: Vec<f64> = config.get("levels")?;
        if model.trim().is_empty() {
            return Err(PluginError::InvalidConfig("`model` must name a granted model".into()));
        }
        if levels.is_empty()
            || levels.iter().any(|q| !(*q > 0.0 && *q < 1.0))
            || levels.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(PluginError::InvalidConfig(format!(
                "`levels` must list the model's quantile levels in (0, 1), strictly ascending: {levels:?}"
            )));
        }
        let plugin = Self { model, levels };
        // One forecast of nothing in particular: a missing grant, runtime or mismatched model
        // is reported when the plugin starts, not at its first forecast.
        plugin.infer(1, vec![0.0; FEATURES])?;
        Ok(plugin)
    }

    fn forecast(&mut self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, PluginError> {
        request.validate()?;
        if request.series.is_empty() {
            return Ok(Vec::new());
        }
        let horizons = request.horizons.len();
        let rows = request.series.len() * horizons;
        let mut features = Vec::with_capacity(rows * FEATURES);
        let mut scales = Vec::with_capacity(request.series.len());
        for (i, series) in request.series.iter().enumerate() {
            let (base, _) = series.base_demand(i)?;
            // `base_demand` has refused a series with nothing observed, so this cannot fail.
            let history = History::new(series.start, series.step, &base)
                .ok_or_else(|| PluginError::Failed(format!("series {i}: no observation left")))?;
            for &horizon in &request.horizons {
                history.features(series.steps_ahead(horizon), &mut features);
            }
            let non_negative = base.iter().filter(|v| !v.is_nan()).all(|v| *v >= 0.0);
            scales.push((history.scale(), non_negative));
        }

        let answers = self.infer(rows, features)?;
        let width = self.levels.len();
        let mut out = Vec::with_capacity(request.series.len());
        for (i, (series, &(scale, non_negative))) in request.series.iter().zip(&scales).enumerate() {
            let mut values = Vec::with_capacity(request.answer_len());
            for (j, &horizon) in request.horizons.iter().enumerate() {
                let row = (i * horizons + j) * width;
                let mut known: Vec<f64> = answers[row..row + width].iter().map(|&v| f64::from(v)).collect();
                let first = values.len();
                quantiles::at_levels(&self.levels, &mut known, &request.quantiles, &mut values);
                let multiplier = series.event_multiplier(series.last_time() + i64::from(horizon));
                for v in &mut values[first..] {
                    *v *= multiplier * scale;
                    if non_negative {
                        *v = v.max(0.0);
                    }
                }
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(PluginError::Failed(format!(
                    "series {i}: the forecast is not finite; values or event multipliers are out of range, or \
                     model `{}` answered NaN",
                    self.model
                )));
            }
            foresight_sdk::forecaster::uncross(&mut values, request.quantiles.len());
            out.push(values);
        }
        Ok(out)
    }
}

foresight_sdk::export_forecaster!(OnnxMlp);

#[cfg(test)]
mod tests;
