//! The settings every event transport that opens its own connections has, defined once.

/// Gives an event transport struct with the fields `tls: Option<Arc<TlsClientConfig>>`,
/// `allow_plain_http: bool` and `connection: Option<_>` its constructors (`new`,
/// `with_tls_config`, `allow_plain_http`), `Default` and a `Debug` that shows no more than
/// whether it is connected. `$plain` names the plain scheme, such as `"http://"`.
#[macro_export]
macro_rules! own_connection_transport {
    ($ty:ident, $plain:literal) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("connected", &self.connection.is_some())
                    .field("allow_plain_http", &self.allow_plain_http)
                    .finish_non_exhaustive()
            }
        }

        impl ::std::default::Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $ty {
            /// With the default TLS setup: rustls with the webpki roots, one configuration
            /// shared by the whole process.
            pub fn new() -> Self {
                Self {
                    tls: None,
                    allow_plain_http: false,
                    connection: None,
                }
            }

            /// With this TLS configuration (extra roots, such as those of
            /// `tls_config_with_roots` for the emulator's self-signed certificate). Give it no
            /// ALPN protocols.
            pub fn with_tls_config(config: ::std::sync::Arc<$crate::TlsClientConfig>) -> Self {
                Self {
                    tls: Some(config),
                    ..Self::new()
                }
            }

            #[doc = concat!("Allows `", $plain, "` to a host that is not loopback (never in production).")]
            #[must_use]
            pub fn allow_plain_http(mut self, allow: bool) -> Self {
                self.allow_plain_http = allow;
                self
            }
        }
    };
}
