//! ISO 20816-3 evaluation zones from broadband velocity RMS (10-1000 Hz, mm/s).

use super::{param, DiagnosticsError};

/// ISO 20816-3 machine group: 1 = large machines (300 kW-50 MW), 2 = medium (15-300 kW).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineGroup {
    Group1,
    Group2,
}

/// Support flexibility as ISO 20816-3 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foundation {
    Rigid,
    Flexible,
}

/// Evaluation zone: A new machine, B unrestricted long-term operation, C restricted,
/// D damage likely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Zone {
    A,
    B,
    C,
    D,
}

impl Zone {
    pub fn letter(self) -> char {
        match self {
            Zone::A => 'A',
            Zone::B => 'B',
            Zone::C => 'C',
            Zone::D => 'D',
        }
    }
    pub fn index(self) -> u8 {
        self as u8
    }
}

/// Zone boundaries A/B, B/C, C/D in mm/s RMS.
pub fn zone_boundaries(group: MachineGroup, foundation: Foundation) -> [f64; 3] {
    match (group, foundation) {
        (MachineGroup::Group1, Foundation::Rigid) => [2.3, 4.5, 7.1],
        (MachineGroup::Group1, Foundation::Flexible) => [3.5, 7.1, 11.0],
        (MachineGroup::Group2, Foundation::Rigid) => [1.4, 2.8, 4.5],
        (MachineGroup::Group2, Foundation::Flexible) => [2.3, 4.5, 7.1],
    }
}

/// The zone of a velocity RMS in mm/s. A value on a boundary belongs to the worse zone.
pub fn iso20816_zone(
    velocity_rms_mm_s: f64,
    group: MachineGroup,
    foundation: Foundation,
) -> Result<Zone, DiagnosticsError> {
    if !(velocity_rms_mm_s.is_finite() && velocity_rms_mm_s >= 0.0) {
        return Err(param(
            "velocity_rms_mm_s",
            format!("must be a finite non-negative number, got {velocity_rms_mm_s}"),
        ));
    }
    let b = zone_boundaries(group, foundation);
    Ok(if velocity_rms_mm_s < b[0] {
        Zone::A
    } else if velocity_rms_mm_s < b[1] {
        Zone::B
    } else if velocity_rms_mm_s < b[2] {
        Zone::C
    } else {
        Zone::D
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_follow_the_standard() {
        use Foundation::*;
        use MachineGroup::*;
        assert_eq!(iso20816_zone(2.29, Group1, Rigid).unwrap(), Zone::A);
        assert_eq!(iso20816_zone(2.3, Group1, Rigid).unwrap(), Zone::B);
        assert_eq!(iso20816_zone(7.0, Group1, Flexible).unwrap(), Zone::B);
        assert_eq!(iso20816_zone(3.0, Group2, Rigid).unwrap(), Zone::C);
        assert_eq!(iso20816_zone(7.1, Group2, Flexible).unwrap(), Zone::D);
        assert!(iso20816_zone(f64::NAN, Group2, Flexible).is_err());
        assert!(iso20816_zone(-1.0, Group2, Flexible).is_err());
    }
}
