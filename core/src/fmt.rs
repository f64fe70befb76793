//! Private logging shim: `defmt` with the `defmt` feature, `log` with the `log`
//! feature, nothing otherwise. The features add up: with both (`--all-features`),
//! `defmt` is used and `log` is left alone.
//!
//! With neither, every macro only takes references to its arguments, so no argument
//! is reported unused and nothing is evaluated twice. Format strings use the common
//! subset of both syntaxes: `{}` with `Display`/`Format` arguments.
#![allow(unused_macros)]

#[cfg(feature = "defmt")]
macro_rules! trace_ { ($($t:tt)*) => { ::defmt::trace!($($t)*) }; }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! trace_ { ($($t:tt)*) => { ::log::trace!($($t)*) }; }
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! trace_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! debug_ { ($($t:tt)*) => { ::defmt::debug!($($t)*) }; }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! debug_ { ($($t:tt)*) => { ::log::debug!($($t)*) }; }
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! debug_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! info_ { ($($t:tt)*) => { ::defmt::info!($($t)*) }; }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! info_ { ($($t:tt)*) => { ::log::info!($($t)*) }; }
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! info_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! warn_ { ($($t:tt)*) => { ::defmt::warn!($($t)*) }; }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! warn_ { ($($t:tt)*) => { ::log::warn!($($t)*) }; }
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! warn_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[cfg(feature = "defmt")]
macro_rules! error_ { ($($t:tt)*) => { ::defmt::error!($($t)*) }; }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! error_ { ($($t:tt)*) => { ::log::error!($($t)*) }; }
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! error_ { ($s:literal $(, $x:expr)* $(,)?) => {{ $( let _ = &$x; )* }}; }

#[allow(unused_imports)]
pub(crate) use {debug_, error_, info_, trace_, warn_};
