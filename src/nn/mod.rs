//! The layers, one concept per file: each a config (`XConfig::new(..).with_*(..)`) that builds a
//! burn module with `init(&device)` and checks itself first, naming the field at fault.

/// `with_*` setters of a config's optional fields, as burn-nn's configs have them:
/// `with_x(value: T)` sets field `x` to `value` (or to `Some(value)` for a `=> Some` field)
/// and returns the config.
macro_rules! setters {
    ($ty:ty { $($(#[$doc:meta])* $setter:ident($field:ident: $t:ty) $(=> $wrap:ident)?;)+ }) => {
        impl $ty {
            $(
                $(#[$doc])*
                pub fn $setter(mut self, $field: $t) -> Self {
                    self.$field = $($wrap)?($field);
                    self
                }
            )+
        }
    };
}

pub mod conv;
pub mod dense;
pub mod neuron;
pub mod pool;
