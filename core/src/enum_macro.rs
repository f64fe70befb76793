//! `dispatcher_enum!`: delegate `Dispatcher` over the variants of a user enum.

/// Implements [`Dispatcher`](crate::Dispatcher) for a user enum of dispatchers by
/// delegating every callback to the variant's value, so one map can hold listeners,
/// clients and servers of different types. Also implements `From<Variant>` for the
/// enum (variant types must therefore differ).
///
/// Each variant type implements `Dispatcher<Socket, TheEnum>` with the enum's `Error`
/// type: its context then adds and reaches channels of the enum type.
///
/// ```
/// use asyncore_core::{Ctx, Dispatcher, Error, Socket, dispatcher_enum, mock::MockSocket};
///
/// struct Listener;
/// struct Conn;
///
/// /// Every kind of channel of this program.
/// enum Any {
///     Listener(Listener),
///     Conn(Conn),
/// }
///
/// impl Dispatcher<MockSocket, Any> for Listener {
///     type Error = Error;
///     fn handle_accepted(&mut self, ctx: &mut Ctx<'_, MockSocket, Any>, s: MockSocket) -> Result<(), Error> {
///         if let Err(refused) = ctx.add(s, Any::Conn(Conn)) {
///             let (mut s, _) = refused.into_inner();
///             let _ = s.close();
///         }
///         Ok(())
///     }
/// }
///
/// impl Dispatcher<MockSocket, Any> for Conn {
///     type Error = Error;
/// }
///
/// dispatcher_enum! {
///     impl Dispatcher<MockSocket> for Any {
///         type Error = Error;
///         Listener(Listener),
///         Conn(Conn),
///     }
/// }
///
/// let any: Any = Conn.into();
/// assert!(any.readable() && !any.writable());
/// ```
#[macro_export]
macro_rules! dispatcher_enum {
    (
        impl $(<$($lt:lifetime),+ $(,)?>)? Dispatcher<$sock:ty> for $name:ty {
            type Error = $err:ty;
            $( $variant:ident($inner:ty) ),+ $(,)?
        }
    ) => {
        $crate::dispatcher_enum!(@from [$(<$($lt),+>)?] $name, $($variant($inner)),+);
        $crate::dispatcher_enum!(@impl [$(<$($lt),+>)?] $sock, $name, $err, $($variant),+);
    };
    (@from [$($gen:tt)*] $name:ty, $variant:ident($inner:ty) $(, $rv:ident($ri:ty))*) => {
        impl $($gen)* ::core::convert::From<$inner> for $name {
            fn from(d: $inner) -> Self {
                Self::$variant(d)
            }
        }
        $crate::dispatcher_enum!(@from [$($gen)*] $name $(, $rv($ri))*);
    };
    (@from [$($gen:tt)*] $name:ty) => {};
    (@impl [$($gen:tt)*] $sock:ty, $name:ty, $err:ty, $($variant:ident),+) => {
        impl $($gen)* $crate::Dispatcher<$sock> for $name {
            type Error = $err;

            fn readable(&self) -> bool {
                match self { $( Self::$variant(d) => d.readable(), )+ }
            }
            fn writable(&self) -> bool {
                match self { $( Self::$variant(d) => d.writable(), )+ }
            }
            fn interest_mode(&self) -> $crate::InterestMode {
                match self { $( Self::$variant(d) => d.interest_mode(), )+ }
            }
            fn handle_connect(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_connect(ctx), )+ }
            }
            fn handle_connect_failed(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>, e: $crate::SocketError) {
                match self { $( Self::$variant(d) => d.handle_connect_failed(ctx, e), )+ }
            }
            fn handle_accept(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_accept(ctx), )+ }
            }
            fn handle_accepted(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>, s: $sock) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_accepted(ctx, s), )+ }
            }
            fn handle_read(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_read(ctx), )+ }
            }
            fn handle_write(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_write(ctx), )+ }
            }
            fn handle_expt(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_expt(ctx), )+ }
            }
            fn handle_eof(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<$crate::AfterEof, $err> {
                match self { $( Self::$variant(d) => d.handle_eof(ctx), )+ }
            }
            fn handle_event(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>, e: $crate::SourceEvent) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_event(ctx, e), )+ }
            }
            fn handle_timeout(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_timeout(ctx), )+ }
            }
            fn handle_close(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>) -> ::core::result::Result<(), $err> {
                match self { $( Self::$variant(d) => d.handle_close(ctx), )+ }
            }
            fn handle_error(&mut self, ctx: &mut $crate::Ctx<'_, $sock, Self>, e: $err) {
                match self { $( Self::$variant(d) => d.handle_error(ctx, e), )+ }
            }
            fn log_info(&mut self, token: $crate::Token, level: $crate::LogLevel, message: &'static str) {
                match self { $( Self::$variant(d) => d.log_info(token, level, message), )+ }
            }
        }
    };
}
