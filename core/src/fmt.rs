//! Private logging shim: `defmt` when the `defmt` feature is on, nothing otherwise.
//!
//! Every macro takes references to its arguments when logging is off, so no argument is
//! reported unused and nothing is evaluated twice.
#![allow(unused_macros)]

#[cfg(feature = "defmt")]
macro_rules! trace_ { ($($t:tt)*) => { ::defmt::trace!($($t)*) }; }
#[cfg(not(feature = "defmt"))]
macro_rules! trace_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! debug_ { ($($t:tt)*) => { ::defmt::debug!($($t)*) }; }
#[cfg(not(feature = "defmt"))]
macro_rules! debug_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! info_ { ($($t:tt)*) => { ::defmt::info!($($t)*) }; }
#[cfg(not(feature = "defmt"))]
macro_rules! info_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! warn_ { ($($t:tt)*) => { ::defmt::warn!($($t)*) }; }
#[cfg(not(feature = "defmt"))]
macro_rules! warn_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! error_ { ($($t:tt)*) => { ::defmt::error!($($t)*) }; }
#[cfg(not(feature = "defmt"))]
macro_rules! error_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[allow(unused_imports)]
pub(crate) use {debug_, error_, info_, trace_, warn_};
