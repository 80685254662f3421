//! Rolling-element bearing fault frequencies from geometry, and a small catalogue.

use super::DiagnosticsError;

/// Geometry of a rolling-element bearing. Diameters in any one unit (mm in the catalogue).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BearingGeometry {
    pub balls: u32,
    pub ball_diameter: f64,
    pub pitch_diameter: f64,
    pub contact_angle_deg: f64,
}

/// Fault frequencies as multiples of shaft speed (orders), outer race stationary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultOrders {
    /// Ball pass frequency, outer race.
    pub bpfo: f64,
    /// Ball pass frequency, inner race.
    pub bpfi: f64,
    /// Ball (rolling element) spin frequency.
    pub bsf: f64,
    /// Fundamental train (cage) frequency.
    pub ftf: f64,
}

impl FaultOrders {
    /// The same frequencies in Hz at a shaft speed in Hz.
    pub fn at(&self, shaft_hz: f64) -> FaultOrders {
        FaultOrders {
            bpfo: self.bpfo * shaft_hz,
            bpfi: self.bpfi * shaft_hz,
            bsf: self.bsf * shaft_hz,
            ftf: self.ftf * shaft_hz,
        }
    }
}

/// Classical kinematic formulas (no slip): with r = d/D cos(alpha),
/// FTF = (1 - r)/2, BPFO = n (1 - r)/2, BPFI = n (1 + r)/2, BSF = D/(2d) (1 - r^2).
pub fn fault_orders(g: &BearingGeometry) -> Result<FaultOrders, DiagnosticsError> {
    let bad = |m: &str| Err(DiagnosticsError::Geometry(m.to_string()));
    if g.balls < 3 {
        return bad("balls must be at least 3");
    }
    if !(g.ball_diameter.is_finite() && g.ball_diameter > 0.0) {
        return bad("ball_diameter must be a positive number");
    }
    if !(g.pitch_diameter.is_finite() && g.pitch_diameter > g.ball_diameter) {
        return bad("pitch_diameter must be larger than ball_diameter");
    }
    if !(g.contact_angle_deg.is_finite() && (0.0..90.0).contains(&g.contact_angle_deg)) {
        return bad("contact_angle_deg must be in [0, 90)");
    }
    let r = g.ball_diameter / g.pitch_diameter * g.contact_angle_deg.to_radians().cos();
    let n = f64::from(g.balls);
    Ok(FaultOrders {
        bpfo: n / 2.0 * (1.0 - r),
        bpfi: n / 2.0 * (1.0 + r),
        bsf: g.pitch_diameter / (2.0 * g.ball_diameter) * (1.0 - r * r),
        ftf: 0.5 * (1.0 - r),
    })
}

/// One catalogue bearing with the geometry behind it and where that geometry comes from.
#[derive(Debug, Clone, Copy)]
pub struct CatalogueEntry {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub geometry: BearingGeometry,
    pub source: &'static str,
}

const INCH: f64 = 25.4;

static CATALOGUE: [CatalogueEntry; 3] = [
    CatalogueEntry {
        name: "SKF 6205-2RS JEM",
        aliases: &["6205", "6205-2RS", "SKF 6205", "CWRU DE"],
        geometry: BearingGeometry {
            balls: 9,
            ball_diameter: 0.3126 * INCH,
            pitch_diameter: 1.537 * INCH,
            contact_angle_deg: 0.0,
        },
        // Case Western Reserve University Bearing Data Center, "Apparatus & Procedures":
        // drive-end bearing 6205-2RS JEM SKF, 9 balls, 0.3126 in ball, 1.537 in pitch.
        source: "CWRU Bearing Data Center, drive-end bearing (9 balls, 0.3126 in, 1.537 in)",
    },
    CatalogueEntry {
        name: "SKF 6203-2RS JEM",
        aliases: &["6203", "6203-2RS", "SKF 6203", "CWRU FE"],
        geometry: BearingGeometry {
            balls: 8,
            ball_diameter: 0.2656 * INCH,
            pitch_diameter: 1.122 * INCH,
            contact_angle_deg: 0.0,
        },
        // Same source: fan-end bearing 6203-2RS JEM SKF, 8 balls, 0.2656 in, 1.122 in.
        source: "CWRU Bearing Data Center, fan-end bearing (8 balls, 0.2656 in, 1.122 in)",
    },
    CatalogueEntry {
        name: "Rexnord ZA-2115",
        aliases: &["ZA-2115", "ZA2115", "IMS"],
        geometry: BearingGeometry {
            balls: 16,
            ball_diameter: 0.331 * INCH,
            pitch_diameter: 2.815 * INCH,
            contact_angle_deg: 15.17,
        },
        // NASA IMS bearing data set (Qiu et al., J. Sound Vib. 289 (2006)): double-row
        // Rexnord ZA-2115, 16 rollers per row, 0.331 in roller, 2.815 in pitch, 15.17 deg.
        source: "NASA IMS bearing data set, Rexnord ZA-2115 (16 rollers/row, 0.331 in, 2.815 in, 15.17 deg)",
    },
];

/// All catalogue entries.
pub fn catalogue() -> &'static [CatalogueEntry] {
    &CATALOGUE
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Look a bearing up by name or alias, ignoring case, spaces and punctuation.
pub fn bearing_by_name(name: &str) -> Result<&'static CatalogueEntry, DiagnosticsError> {
    let key = normalize(name);
    CATALOGUE
        .iter()
        .find(|e| normalize(e.name) == key || e.aliases.iter().any(|a| normalize(a) == key))
        .ok_or_else(|| {
            let known: Vec<&str> = CATALOGUE.iter().map(|e| e.name).collect();
            DiagnosticsError::UnknownBearing(name.to_string(), known.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwru_drive_end_matches_published_orders() {
        let e = bearing_by_name("6205").unwrap();
        let o = fault_orders(&e.geometry).unwrap();
        assert!((o.bpfi - 5.4152).abs() < 1e-3, "{o:?}");
        assert!((o.bpfo - 3.5848).abs() < 1e-3);
        assert!((o.ftf - 0.39828).abs() < 1e-4);
        assert!((o.bsf - 2.357).abs() < 1e-3);
    }

    #[test]
    fn cwru_fan_end_matches_published_orders() {
        // CWRU publishes BPFI 4.9469, BPFO 3.0530, FTF 0.3817, BSF 1.9940 for the 6203.
        let o = fault_orders(&bearing_by_name("skf 6203-2rs jem").unwrap().geometry).unwrap();
        assert!((o.bpfi - 4.9469).abs() < 1e-3, "{o:?}");
        assert!((o.bpfo - 3.0530).abs() < 1e-3);
        assert!((o.ftf - 0.3817).abs() < 1e-3);
        assert!((o.bsf - 1.9940).abs() < 1e-3);
    }

    #[test]
    fn bpfo_plus_bpfi_is_ball_count() {
        let g = BearingGeometry {
            balls: 12,
            ball_diameter: 7.0,
            pitch_diameter: 40.0,
            contact_angle_deg: 25.0,
        };
        let o = fault_orders(&g).unwrap();
        assert!((o.bpfo + o.bpfi - 12.0).abs() < 1e-12);
        assert!((o.bpfo - 12.0 * o.ftf).abs() < 1e-12);
    }

    #[test]
    fn bad_geometry_and_unknown_names_are_errors() {
        let mut g = bearing_by_name("6205").unwrap().geometry;
        g.pitch_diameter = g.ball_diameter / 2.0;
        assert!(fault_orders(&g).is_err());
        assert!(matches!(
            bearing_by_name("nope"),
            Err(DiagnosticsError::UnknownBearing(..))
        ));
    }
}
