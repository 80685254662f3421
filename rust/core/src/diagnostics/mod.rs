//! Bearing and severity diagnostics: fault frequencies from bearing geometry,
//! streaming envelope analysis with a spectral-kurtosis band choice, ISO 20816-3
//! severity zones, an anti-aliasing decimator and a per-frame rule engine that
//! turns feature columns into alerts.

pub mod bearing;
pub mod decimate;
pub mod envelope;
pub mod iso;
pub mod rules;
pub mod stats;

pub use bearing::{
    bearing_by_name, catalogue, fault_orders, BearingGeometry, CatalogueEntry, FaultOrders,
};
pub use decimate::Decimator;
pub use envelope::{
    BandChoice, Diagnosis, EnvelopeAnalyzer, EnvelopeConfig, FaultKind, FrameFeatures, SeriesScore,
};
pub use iso::{iso20816_zone, zone_boundaries, Foundation, MachineGroup, Zone};
pub use rules::{Alert, AlertState, Condition, Evidence, RuleEngine, RuleSpec};

/// Everything a diagnostic call can reject. Messages name the field at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiagnosticsError {
    #[error("invalid bearing geometry: {0}")]
    Geometry(String),
    #[error("unknown bearing {0:?}; known: {1}")]
    UnknownBearing(String, String),
    #[error("invalid parameter {name}: {reason}")]
    Parameter { name: &'static str, reason: String },
    #[error("rule {rule:?}: {reason}")]
    Rule { rule: String, reason: String },
    #[error("feature {feature:?} has {got} values, expected {expected} (one per frame time)")]
    ColumnLength {
        feature: String,
        got: usize,
        expected: usize,
    },
}

pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> DiagnosticsError {
    DiagnosticsError::Parameter {
        name,
        reason: reason.into(),
    }
}
