//! Settings enums whose names (in experiment files, JSON, flags, the probe form and help) are
//! written once, beside their variants: [`named_enum!`] derives serde, clap's `ValueEnum`,
//! `ALL`, `NAMES`, `as_str` and `from_name` from one list.

/// Defines `pub enum Name { Variant = "word", ... }` with its names in one place.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant ),+
        }

        impl $name {
            /// Every value, in the order shown to users.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every value's name, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            /// The name as written in files and flags.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            /// The value of a name, if it is one.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum Colour {
            #[default]
            Red = "red",
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn one_list_gives_serde_names_parsing_and_all_values() {
        assert_eq!(Colour::NAMES, ["red", "dark-blue"]);
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        assert_eq!(Colour::from_name("dark-blue"), Some(Colour::DarkBlue));
        assert_eq!(Colour::from_name("blue"), None);
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark-blue\""
        );
        let back: Colour = serde_yaml::from_str("red").unwrap();
        assert_eq!(back, Colour::Red);
        use clap::ValueEnum;
        assert_eq!(Colour::from_str("dark-blue", false), Ok(Colour::DarkBlue));
        assert_eq!(Colour::default().to_string(), "red");
    }
}
