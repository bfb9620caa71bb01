//! The enums of the v1 public API, with their wire spellings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A v1 enum: parsed from its wire spelling, which error messages list.
pub trait Wire: FromStr {
    /// The accepted spellings, comma-separated.
    fn expected() -> String;
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($wire),+].join(", ")
            }
        }

        impl Wire for $name {
            fn expected() -> String {
                $name::expected()
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Which part of the platform the content comes from.
    ContentArea { Practice => "practice", Learn => "learn", Custom => "custom" }
);

wire_enum!(
    /// The level of the content hierarchy an assignment points at.
    TargetType {
        Category => "category",
        Module => "module",
        Topic => "topic",
        Course => "course",
        Scenario => "scenario",
        CustomCourse => "custom-course",
    }
);

wire_enum!(
    /// Who an assignment is for.
    AssigneeType { User => "user", Team => "team", Org => "org" }
);

wire_enum!(
    /// A principal's role.
    Role { OrgAdmin => "org_admin", Learner => "learner", ApiKey => "api_key" }
);

impl TargetType {
    /// Whether `self` may be assigned within `area`. `custom-course` is accepted with every area
    /// because v1 clients send it with `practice` or `learn`; the area is stored as sent.
    pub fn belongs_to(self, area: ContentArea) -> bool {
        match self {
            TargetType::Category | TargetType::Module | TargetType::Topic => area == ContentArea::Practice,
            TargetType::Course | TargetType::Scenario => area == ContentArea::Learn,
            TargetType::CustomCourse => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spellings_round_trip() {
        for t in TargetType::ALL {
            assert_eq!(t.as_str().parse::<TargetType>(), Ok(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert_eq!("custom-course".parse::<TargetType>(), Ok(TargetType::CustomCourse));
        assert!("Topic".parse::<TargetType>().is_err());
    }

    #[test]
    fn targets_belong_to_their_area() {
        assert!(TargetType::Topic.belongs_to(ContentArea::Practice));
        assert!(!TargetType::Topic.belongs_to(ContentArea::Learn));
        assert!(TargetType::Scenario.belongs_to(ContentArea::Learn));
        assert!(!TargetType::Course.belongs_to(ContentArea::Custom));
        for area in ContentArea::ALL {
            assert!(TargetType::CustomCourse.belongs_to(*area));
        }
    }
}
