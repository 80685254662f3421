//! Per-frame rule engine over columnar features: hysteresis, persistence, adaptive
//! baselines, ISO zone changes and bearing-fault scores become alerts that raise once and
//! clear once.

use super::DiagnosticsError;
use std::collections::HashMap;

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Raise when `feature` reaches `raise` (or falls to it when `above` is false);
    /// clear when it is back beyond `clear`.
    Threshold {
        feature: String,
        raise: f64,
        clear: f64,
        above: bool,
    },
    /// Learn mean and spread of `feature` over the first `learn_frames` frames and
    /// `learn_seconds`; then raise on |z| >= `z_raise`, clear on |z| < `z_clear`.
    Baseline {
        feature: String,
        learn_frames: usize,
        learn_seconds: f64,
        z_raise: f64,
        z_clear: f64,
    },
    /// `feature` holds the ISO 20816 zone as 0..=3 (A..D): raise at `raise_zone` or worse;
    /// a later move to a worse zone re-raises the same alert with the new severity.
    ZoneChange { feature: String, raise_zone: u8 },
    /// Raise when any of the fault series (`<fault>_score_db`, `<fault>_harmonics`,
    /// `<fault>_hz` columns) scores at least `raise_db` with `min_harmonics`;
    /// clear when none is above `clear_db`. With a `gate` (feature, minimum), the alert is
    /// only raised on frames where the gate feature reaches its minimum (e.g. the envelope
    /// analyzer's own `fault` verdict); clearing follows the scores alone (hysteresis).
    BearingFault {
        faults: Vec<String>,
        raise_db: f64,
        clear_db: f64,
        min_harmonics: f64,
        gate: Option<(String, f64)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub severity: String,
    pub condition: Condition,
    pub raise_frames: usize,
    pub raise_seconds: f64,
    pub clear_frames: usize,
    pub clear_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Raised,
    Cleared,
}

impl AlertState {
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Raised => "raised",
            AlertState::Cleared => "cleared",
        }
    }
}

/// Why an alert fired.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evidence {
    pub feature: String,
    /// Bearing rules: "outer_race" / "inner_race" / "ball".
    pub fault: Option<String>,
    pub frequency_hz: Option<f64>,
    pub score_db: Option<f64>,
    pub harmonics: Option<f64>,
    /// Baseline rules: the z-score, learned mean and spread.
    pub z_score: Option<f64>,
    pub baseline_mean: Option<f64>,
    pub baseline_std: Option<f64>,
    /// Zone rules: the zone letter.
    pub zone: Option<char>,
    /// Top envelope-spectrum peaks (Hz, dB) when `peak<i>_hz` / `peak<i>_db` columns exist.
    pub peaks: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub asset: String,
    pub rule: String,
    pub severity: String,
    pub state: AlertState,
    pub first_time: f64,
    pub last_time: f64,
    pub value: f64,
    pub threshold: f64,
    pub evidence: Evidence,
}

#[derive(Debug, Default, Clone)]
struct RuleState {
    active: bool,
    /// consecutive frames (and the time of the first) the pending transition held
    streak: usize,
    streak_since: f64,
    onset: f64,
    id: String,
    worst_zone: u8,
    // baseline learning (Welford)
    learn_n: usize,
    learn_start: f64,
    learn_mean: f64,
    learn_m2: f64,
    learned: bool,
    last: Option<Alert>,
}

pub struct RuleEngine {
    asset: String,
    rules: Vec<(RuleSpec, RuleState)>,
    last_time: f64,
}

/// FNV-1a 64: a stable id from asset, rule and onset time (same input, same id).
fn stable_id(asset: &str, rule: &str, onset: f64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in asset
        .bytes()
        .chain([0u8])
        .chain(rule.bytes())
        .chain([0u8])
        .chain(onset.to_bits().to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn zone_letter(z: u8) -> char {
    ['A', 'B', 'C', 'D'][usize::from(z.min(3))]
}

struct Observation {
    /// Some(true) = raise condition holds, Some(false) = clear condition holds,
    /// None = neither (between hysteresis levels, learning, or missing value)
    verdict: Option<bool>,
    /// no usable value this frame (NaN, or still learning): persistence neither grows nor resets
    missing: bool,
    value: f64,
    threshold: f64,
    evidence: Evidence,
}

impl RuleEngine {
    pub fn new(asset: &str) -> Self {
        Self {
            asset: asset.to_string(),
            rules: Vec::new(),
            last_time: f64::NEG_INFINITY,
        }
    }

    pub fn asset(&self) -> &str {
        &self.asset
    }

    pub fn add(&mut self, spec: RuleSpec) -> Result<(), DiagnosticsError> {
        let bad = |reason: &str| {
            Err(DiagnosticsError::Rule {
                rule: spec.name.clone(),
                reason: reason.to_string(),
            })
        };
        if spec.name.is_empty() {
            return bad("a rule needs a name");
        }
        if self.rules.iter().any(|(r, _)| r.name == spec.name) {
            return bad("duplicate rule name");
        }
        if spec.raise_frames == 0 || spec.clear_frames == 0 {
            return bad("raise_frames and clear_frames must be >= 1");
        }
        if !(spec.raise_seconds >= 0.0 && spec.clear_seconds >= 0.0) {
            return bad("raise_seconds and clear_seconds must be >= 0");
        }
        match &spec.condition {
            Condition::Threshold {
                raise,
                clear,
                above,
                ..
            } => {
                if !(raise.is_finite() && clear.is_finite()) {
                    return bad("raise and clear levels must be finite");
                }
                if (*above && clear > raise) || (!*above && clear < raise) {
                    return bad("the clear level must lie on the safe side of the raise level");
                }
            }
            Condition::Baseline {
                learn_frames,
                learn_seconds,
                z_raise,
                z_clear,
                ..
            } => {
                if *learn_frames < 2 && *learn_seconds <= 0.0 {
                    return bad("a baseline needs learn_frames >= 2 or learn_seconds > 0");
                }
                if !(*z_raise > 0.0 && *z_clear >= 0.0 && z_clear <= z_raise) {
                    return bad("need z_raise > 0 and 0 <= z_clear <= z_raise");
                }
            }
            Condition::ZoneChange { raise_zone, .. } => {
                if *raise_zone > 3 {
                    return bad("raise_zone must be A, B, C or D");
                }
            }
            Condition::BearingFault {
                faults,
                raise_db,
                clear_db,
                ..
            } => {
                if faults.is_empty() {
                    return bad("a bearing rule needs at least one fault series");
                }
                if clear_db > raise_db {
                    return bad("clear_db must not exceed raise_db");
                }
            }
        }
        self.rules.push((spec, RuleState::default()));
        Ok(())
    }

    pub fn rule_names(&self) -> Vec<String> {
        self.rules.iter().map(|(r, _)| r.name.clone()).collect()
    }

    /// Alerts currently raised (their latest event).
    pub fn active(&self) -> Vec<Alert> {
        self.rules
            .iter()
            .filter(|(_, s)| s.active)
            .filter_map(|(_, s)| s.last.clone())
            .collect()
    }

    /// Evaluate frames: `times` (s) and named feature columns of the same length.
    /// Returns the alert events (raised / cleared) in time order.
    pub fn evaluate(
        &mut self,
        times: &[f64],
        columns: &[(&str, &[f64])],
    ) -> Result<Vec<Alert>, DiagnosticsError> {
        let n = times.len();
        let mut cols: HashMap<&str, &[f64]> = HashMap::new();
        for (name, col) in columns {
            if col.len() != n {
                return Err(DiagnosticsError::ColumnLength {
                    feature: name.to_string(),
                    got: col.len(),
                    expected: n,
                });
            }
            cols.insert(name, col);
        }
        // every feature a rule needs must be present
        for (spec, _) in &self.rules {
            for f in required(&spec.condition) {
                if !cols.contains_key(f.as_str()) {
                    return Err(DiagnosticsError::Rule {
                        rule: spec.name.clone(),
                        reason: format!("feature {f:?} missing from the frame columns"),
                    });
                }
            }
        }
        let mut prev = self.last_time;
        for &t in times {
            if !(t.is_finite() && t > prev) {
                return Err(DiagnosticsError::Rule {
                    rule: "*".into(),
                    reason: format!("frame times must be finite and increasing ({t} after {prev})"),
                });
            }
            prev = t;
        }
        let mut events = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            for (spec, st) in self.rules.iter_mut() {
                let obs = observe(spec, st, &cols, i, t);
                if let Some(ev) = step(&self.asset, spec, st, obs, t) {
                    events.push(ev);
                }
            }
        }
        self.last_time = prev;
        Ok(events)
    }
}

fn required(c: &Condition) -> Vec<String> {
    match c {
        Condition::Threshold { feature, .. }
        | Condition::Baseline { feature, .. }
        | Condition::ZoneChange { feature, .. } => vec![feature.clone()],
        Condition::BearingFault { faults, gate, .. } => faults
            .iter()
            .flat_map(|f| [format!("{f}_score_db"), format!("{f}_harmonics")])
            .chain(gate.iter().map(|g| g.0.clone()))
            .collect(),
    }
}

fn observe(
    spec: &RuleSpec,
    st: &mut RuleState,
    cols: &HashMap<&str, &[f64]>,
    i: usize,
    t: f64,
) -> Observation {
    let get = |name: &str| cols.get(name).map(|c| c[i]).unwrap_or(f64::NAN);
    let none = |value: f64| Observation {
        verdict: None,
        missing: true,
        value,
        threshold: f64::NAN,
        evidence: Evidence::default(),
    };
    match &spec.condition {
        Condition::Threshold {
            feature,
            raise,
            clear,
            above,
        } => {
            let v = get(feature);
            if v.is_nan() {
                return none(v);
            }
            let verdict = if *above {
                if v >= *raise {
                    Some(true)
                } else if v < *clear {
                    Some(false)
                } else {
                    None
                }
            } else if v <= *raise {
                Some(true)
            } else if v > *clear {
                Some(false)
            } else {
                None
            };
            Observation {
                verdict,
                missing: false,
                value: v,
                threshold: *raise,
                evidence: Evidence {
                    feature: feature.clone(),
                    ..Evidence::default()
                },
            }
        }
        Condition::Baseline {
            feature,
            learn_frames,
            learn_seconds,
            z_raise,
            z_clear,
        } => {
            let v = get(feature);
            if v.is_nan() {
                return none(v);
            }
            if !st.learned {
                if st.learn_n == 0 {
                    st.learn_start = t;
                }
                st.learn_n += 1;
                let d = v - st.learn_mean;
                st.learn_mean += d / st.learn_n as f64;
                st.learn_m2 += d * (v - st.learn_mean);
                if st.learn_n >= (*learn_frames).max(2) && t - st.learn_start >= *learn_seconds {
                    st.learned = true;
                }
                return none(v);
            }
            let mean = st.learn_mean;
            let sd = (st.learn_m2 / (st.learn_n - 1) as f64).sqrt();
            // a perfectly flat baseline would make every change infinite: floor the spread
            let sd = sd.max(1e-9 * mean.abs().max(1e-12));
            let z = (v - mean) / sd;
            let verdict = if z.abs() >= *z_raise {
                Some(true)
            } else if z.abs() < *z_clear {
                Some(false)
            } else {
                None
            };
            Observation {
                verdict,
                missing: false,
                value: v,
                threshold: mean + z_raise * sd * z.signum(),
                evidence: Evidence {
                    feature: feature.clone(),
                    z_score: Some(z),
                    baseline_mean: Some(mean),
                    baseline_std: Some(sd),
                    ..Evidence::default()
                },
            }
        }
        Condition::ZoneChange {
            feature,
            raise_zone,
        } => {
            let v = get(feature);
            if !(v.is_finite() && (0.0..=3.0).contains(&v)) {
                return none(v);
            }
            let z = v.round() as u8;
            Observation {
                verdict: Some(z >= *raise_zone),
                missing: false,
                value: v,
                threshold: f64::from(*raise_zone),
                evidence: Evidence {
                    feature: feature.clone(),
                    zone: Some(zone_letter(z)),
                    ..Evidence::default()
                },
            }
        }
        Condition::BearingFault {
            faults,
            raise_db,
            clear_db,
            min_harmonics,
            gate,
        } => {
            let gate_open = gate.as_ref().is_none_or(|(g, min)| get(g) >= *min);
            let mut best: Option<(&String, f64, f64)> = None;
            let mut any_above_clear = false;
            let mut any_value = false;
            for f in faults {
                let s = get(&format!("{f}_score_db"));
                let h = get(&format!("{f}_harmonics"));
                if s.is_nan() || h.is_nan() {
                    continue;
                }
                any_value = true;
                if h >= *min_harmonics {
                    if s > *clear_db {
                        any_above_clear = true;
                    }
                    if best.is_none_or(|b| s > b.1) {
                        best = Some((f, s, h));
                    }
                }
            }
            if !any_value {
                return none(f64::NAN);
            }
            let peaks: Vec<(f64, f64)> = (1..=10)
                .map_while(|k| {
                    let hz = cols.get(format!("peak{k}_hz").as_str())?[i];
                    let db = cols.get(format!("peak{k}_db").as_str())?[i];
                    Some((hz, db))
                })
                .filter(|p| p.0.is_finite())
                .collect();
            let (verdict, value, evidence) = match best {
                Some((f, s, h)) => (
                    if !gate_open && !st.active {
                        Some(false)
                    } else if s >= *raise_db {
                        Some(true)
                    } else if !any_above_clear {
                        Some(false)
                    } else {
                        None
                    },
                    s,
                    Evidence {
                        feature: format!("{f}_score_db"),
                        fault: Some(f.clone()),
                        frequency_hz: Some(get(&format!("{f}_hz"))).filter(|v| v.is_finite()),
                        score_db: Some(s),
                        harmonics: Some(h),
                        peaks,
                        ..Evidence::default()
                    },
                ),
                None => (Some(false), f64::NAN, Evidence::default()),
            };
            Observation {
                verdict,
                missing: false,
                value,
                threshold: *raise_db,
                evidence,
            }
        }
    }
}

fn step(
    asset: &str,
    spec: &RuleSpec,
    st: &mut RuleState,
    obs: Observation,
    t: f64,
) -> Option<Alert> {
    let wants = !st.active; // true: looking for a raise; false: looking for a clear
    let toward = obs.verdict == Some(wants);
    if !toward {
        // zone escalation while raised: same alert, worse severity
        if st.active {
            if let (Condition::ZoneChange { .. }, Some(zone)) = (&spec.condition, obs.evidence.zone)
            {
                let z = (zone as u8) - b'A';
                if obs.verdict == Some(true) && z > st.worst_zone {
                    st.worst_zone = z;
                    let alert = make_alert(asset, spec, st, &obs, t, AlertState::Raised);
                    st.last = Some(alert.clone());
                    return Some(alert);
                }
            }
        }
        if !obs.missing {
            st.streak = 0;
        }
        // while raised, keep the alert's latest value and evidence current
        if st.active && obs.verdict == Some(true) {
            if let Some(last) = st.last.as_mut() {
                last.last_time = t;
                last.value = obs.value;
            }
        }
        return None;
    }
    if st.streak == 0 {
        st.streak_since = t;
    }
    st.streak += 1;
    let (frames, seconds) = if wants {
        (spec.raise_frames, spec.raise_seconds)
    } else {
        (spec.clear_frames, spec.clear_seconds)
    };
    if st.streak < frames || t - st.streak_since < seconds {
        return None;
    }
    st.streak = 0;
    if wants {
        st.active = true;
        st.onset = st.streak_since;
        st.id = stable_id(asset, &spec.name, st.onset);
        st.worst_zone = obs.evidence.zone.map(|z| (z as u8) - b'A').unwrap_or(0);
        let alert = make_alert(asset, spec, st, &obs, t, AlertState::Raised);
        st.last = Some(alert.clone());
        Some(alert)
    } else {
        st.active = false;
        let mut alert = make_alert(asset, spec, st, &obs, t, AlertState::Cleared);
        if let Some(last) = st.last.take() {
            // a clear reports what was raised: its evidence, severity and threshold
            alert.evidence = last.evidence;
            alert.severity = last.severity;
            alert.threshold = last.threshold;
        }
        Some(alert)
    }
}

fn make_alert(
    asset: &str,
    spec: &RuleSpec,
    st: &RuleState,
    obs: &Observation,
    t: f64,
    state: AlertState,
) -> Alert {
    let severity = match spec.condition {
        Condition::ZoneChange { .. } if st.worst_zone >= 3 => "critical".to_string(),
        _ => spec.severity.clone(),
    };
    Alert {
        id: st.id.clone(),
        asset: asset.to_string(),
        rule: spec.name.clone(),
        severity,
        state,
        first_time: st.onset,
        last_time: t,
        value: obs.value,
        threshold: obs.threshold,
        evidence: obs.evidence.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        name: &str,
        condition: Condition,
        raise_frames: usize,
        clear_frames: usize,
    ) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            severity: "warning".into(),
            condition,
            raise_frames,
            raise_seconds: 0.0,
            clear_frames,
            clear_seconds: 0.0,
        }
    }

    #[test]
    fn threshold_with_hysteresis_and_persistence_raises_once_and_clears_once() {
        let mut e = RuleEngine::new("pump-1");
        e.add(spec(
            "hi",
            Condition::Threshold {
                feature: "v".into(),
                raise: 10.0,
                clear: 8.0,
                above: true,
            },
            3,
            2,
        ))
        .unwrap();
        // noisy excursion around the raise level: 9 is between the levels (no change)
        let v = [
            1.0, 11.0, 12.0, 9.0, 11.0, 12.0, 13.0, 9.0, 11.0, 9.5, 7.0, 7.0, 7.0,
        ];
        let t: Vec<f64> = (0..v.len()).map(|i| i as f64).collect();
        let ev = e.evaluate(&t, &[("v", &v)]).unwrap();
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].state, AlertState::Raised);
        assert_eq!(ev[0].first_time, 4.0);
        assert_eq!(ev[0].last_time, 6.0);
        assert_eq!(ev[1].state, AlertState::Cleared);
        assert_eq!(ev[1].last_time, 11.0);
        assert_eq!(ev[0].id, ev[1].id);
    }

    #[test]
    fn baseline_learns_then_flags_a_shift() {
        let mut e = RuleEngine::new("a");
        e.add(spec(
            "drift",
            Condition::Baseline {
                feature: "rms".into(),
                learn_frames: 20,
                learn_seconds: 0.0,
                z_raise: 4.0,
                z_clear: 2.0,
            },
            2,
            2,
        ))
        .unwrap();
        let mut v: Vec<f64> = (0..40)
            .map(|i| 1.0 + 0.01 * ((i % 5) as f64 - 2.0))
            .collect();
        v.extend([2.0; 5]);
        let t: Vec<f64> = (0..v.len()).map(|i| i as f64).collect();
        let ev = e.evaluate(&t, &[("rms", &v)]).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].first_time, 40.0);
        assert!(ev[0].evidence.z_score.unwrap() > 4.0);
    }

    #[test]
    fn missing_feature_and_bad_times_are_errors() {
        let mut e = RuleEngine::new("a");
        e.add(spec(
            "z",
            Condition::ZoneChange {
                feature: "zone".into(),
                raise_zone: 2,
            },
            1,
            1,
        ))
        .unwrap();
        assert!(e.evaluate(&[0.0], &[("x", &[1.0])]).is_err());
        assert!(e.evaluate(&[1.0, 0.5], &[("zone", &[1.0, 1.0])]).is_err());
        assert!(e.evaluate(&[1.0], &[("zone", &[1.0, 2.0])]).is_err());
    }
}
