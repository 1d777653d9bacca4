//! [`CustomerRequest`]: who a chat JWT is for, with the Generate JWT Token API's field rules.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Field, Rule, ValidationError};

/// Longest `customerId`, in characters.
pub const CUSTOMER_ID_MAX: usize = 256;
/// Longest `customerName`, in characters.
pub const CUSTOMER_NAME_MAX: usize = 70;
/// Most keys in `customerIdentifiers`.
pub const IDENTIFIER_KEYS_MAX: usize = 10;
/// Longest identifier key, in characters.
pub const IDENTIFIER_KEY_MAX: usize = 50;
/// Most values per identifier.
pub const IDENTIFIER_VALUES_MAX: usize = 5;
/// Longest identifier value, in characters.
pub const IDENTIFIER_VALUE_MAX: usize = 256;
/// Shortest JWT lifetime the API accepts, in minutes.
pub const LIFETIME_MIN_MINUTES: u64 = 15;
/// Longest JWT lifetime the API accepts, in minutes.
pub const LIFETIME_MAX_MINUTES: u64 = 60;

/// Identifier name for e-mail addresses, as configured in AXP Customer Journey by default.
pub const EMAIL_ADDRESSES: &str = "emailAddresses";
/// Identifier name for phone numbers, as configured in AXP Customer Journey by default.
pub const PHONE_NUMBERS: &str = "phoneNumbers";

/// The end user a chat JWT is requested for.
///
/// Build one with [`CustomerRequest::verified`] for a customer your backend has authenticated, or
/// [`CustomerRequest::guest`] for an anonymous visitor. The rules of the Generate JWT Token API
/// are checked by [`CustomerRequest::validate`], which the client calls before any network call.
///
/// ```
/// use std::time::Duration;
/// use token_client::CustomerRequest;
///
/// let alice = CustomerRequest::verified("customer-42")
///     .name("Alice Example")
///     .email("alice@example.com")
///     .phone("+15550100")
///     .lifetime(Duration::from_secs(30 * 60));
/// assert!(alice.validate().is_ok());
///
/// // Guests get a random id and never carry identifiers.
/// let guest = CustomerRequest::guest().email("ignored@example.com");
/// assert!(!guest.is_verified());
/// assert!(guest.customer_identifiers().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRequest {
    customer_id: String,
    customer_name: Option<String>,
    verified: bool,
    identifiers: BTreeMap<String, Vec<String>>,
    lifetime: Option<Duration>,
}

impl CustomerRequest {
    /// A customer whose identity your backend has verified (`verifiedCustomer: true`).
    pub fn verified(customer_id: impl Into<String>) -> Self {
        Self {
            customer_id: customer_id.into(),
            customer_name: None,
            verified: true,
            identifiers: BTreeMap::new(),
            lifetime: None,
        }
    }

    /// An anonymous visitor with a fresh random id (`guest-` and 32 hex digits),
    /// `verifiedCustomer: false` and no identifiers.
    pub fn guest() -> Self {
        let id = format!("guest-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        Self::unverified(id)
    }

    /// An unverified customer with a caller-chosen id (`verifiedCustomer: false`); as for
    /// [`CustomerRequest::guest`], identifiers are dropped.
    pub fn unverified(customer_id: impl Into<String>) -> Self {
        Self {
            verified: false,
            ..Self::verified(customer_id)
        }
    }

    /// Sets the display name (`customerName`, at most 70 characters).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.customer_name = Some(name.into());
        self
    }

    /// Adds one value to the identifier `key` (for example [`EMAIL_ADDRESSES`]).
    /// Ignored for guests and unverified customers.
    pub fn identifier(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if self.verified {
            self.identifiers
                .entry(key.into())
                .or_default()
                .push(value.into());
        }
        self
    }

    /// Sets all values of the identifier `key`, replacing earlier ones.
    /// Ignored for guests and unverified customers.
    pub fn identifier_values<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if self.verified {
            self.identifiers
                .insert(key.into(), values.into_iter().map(Into::into).collect());
        }
        self
    }

    /// Adds an e-mail address (identifier `emailAddresses`).
    pub fn email(self, address: impl Into<String>) -> Self {
        self.identifier(EMAIL_ADDRESSES, address)
    }

    /// Adds a phone number (identifier `phoneNumbers`).
    pub fn phone(self, number: impl Into<String>) -> Self {
        self.identifier(PHONE_NUMBERS, number)
    }

    /// Requests a JWT lifetime (15 to 60 whole minutes) instead of the configured default.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// The `customerId`.
    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }

    /// The `customerName`, if set.
    pub fn customer_name(&self) -> Option<&str> {
        self.customer_name.as_deref()
    }

    /// `verifiedCustomer`.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The `customerIdentifiers` (empty for guests).
    pub fn customer_identifiers(&self) -> &BTreeMap<String, Vec<String>> {
        &self.identifiers
    }

    /// The requested lifetime, if any.
    pub fn requested_lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// Checks every field rule of the Generate JWT Token API.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_len(Field::CustomerId, &self.customer_id, 1, CUSTOMER_ID_MAX)?;
        if let Some(name) = &self.customer_name {
            check_len(Field::CustomerName, name, 0, CUSTOMER_NAME_MAX)?;
        }
        if !self.identifiers.is_empty() {
            check_count(
                Field::CustomerIdentifiers,
                self.identifiers.len(),
                1,
                IDENTIFIER_KEYS_MAX,
            )?;
        }
        for (key, values) in &self.identifiers {
            check_len(
                Field::IdentifierKey(key.clone()),
                key,
                1,
                IDENTIFIER_KEY_MAX,
            )?;
            check_count(
                Field::IdentifierValues(key.clone()),
                values.len(),
                0,
                IDENTIFIER_VALUES_MAX,
            )?;
            for (index, value) in values.iter().enumerate() {
                check_len(
                    Field::IdentifierValue(key.clone(), index),
                    value,
                    1,
                    IDENTIFIER_VALUE_MAX,
                )?;
            }
        }
        if let Some(lifetime) = self.lifetime {
            validate_lifetime(lifetime)?;
        }
        Ok(())
    }
}

/// Checks a JWT lifetime: whole minutes, 15 to 60. Returns the minutes.
pub(crate) fn validate_lifetime(lifetime: Duration) -> Result<u64, ValidationError> {
    let secs = lifetime.as_secs();
    if lifetime.subsec_nanos() != 0 || secs % 60 != 0 {
        return Err(ValidationError {
            field: Field::Lifetime,
            rule: Rule::WholeMinutes { actual_secs: secs },
        });
    }
    let minutes = secs / 60;
    if !(LIFETIME_MIN_MINUTES..=LIFETIME_MAX_MINUTES).contains(&minutes) {
        return Err(ValidationError {
            field: Field::Lifetime,
            rule: Rule::LifetimeRange {
                min_minutes: LIFETIME_MIN_MINUTES,
                max_minutes: LIFETIME_MAX_MINUTES,
                actual_secs: secs,
            },
        });
    }
    Ok(minutes)
}

fn check_len(field: Field, text: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let actual = text.chars().count();
    if (min..=max).contains(&actual) {
        Ok(())
    } else {
        Err(ValidationError {
            field,
            rule: Rule::Length { min, max, actual },
        })
    }
}

fn check_count(field: Field, actual: usize, min: usize, max: usize) -> Result<(), ValidationError> {
    if (min..=max).contains(&actual) {
        Ok(())
    } else {
        Err(ValidationError {
            field,
            rule: Rule::Count { min, max, actual },
        })
    }
}

/// The JSON body of the Generate JWT Token API.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenRequestBody<'a> {
    pub(crate) customer_id: &'a str,
    pub(crate) integration_id: &'a str,
    pub(crate) verified_customer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) customer_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) customer_identifiers: Option<&'a BTreeMap<String, Vec<String>>>,
    pub(crate) ttl: u64,
}

impl<'a> TokenRequestBody<'a> {
    pub(crate) fn new(request: &'a CustomerRequest, integration_id: &'a str, ttl: u64) -> Self {
        Self {
            customer_id: &request.customer_id,
            integration_id,
            verified_customer: request.verified,
            customer_name: request.customer_name.as_deref(),
            customer_identifiers: (request.verified && !request.identifiers.is_empty())
                .then_some(&request.identifiers),
            ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(r: &CustomerRequest) -> (Field, Rule) {
        let e = r.validate().expect_err("should be invalid");
        (e.field, e.rule)
    }

    #[test]
    fn customer_id_bounds() {
        assert!(
            CustomerRequest::verified("x".repeat(256))
                .validate()
                .is_ok()
        );
        assert_eq!(
            rule_of(&CustomerRequest::verified("")),
            (
                Field::CustomerId,
                Rule::Length {
                    min: 1,
                    max: 256,
                    actual: 0
                }
            )
        );
        assert_eq!(
            rule_of(&CustomerRequest::verified("é".repeat(257))).0,
            Field::CustomerId
        );
    }

    #[test]
    fn name_identifiers_lifetime() {
        let ok = CustomerRequest::verified("c").name("n".repeat(70));
        assert!(ok.validate().is_ok());
        assert_eq!(
            rule_of(&ok.clone().name("n".repeat(71))).0,
            Field::CustomerName
        );
        let mut many = CustomerRequest::verified("c");
        for i in 0..11 {
            many = many.identifier(format!("k{i}"), "v");
        }
        assert_eq!(
            rule_of(&many),
            (
                Field::CustomerIdentifiers,
                Rule::Count {
                    min: 1,
                    max: 10,
                    actual: 11
                }
            )
        );
        let long_key = CustomerRequest::verified("c").identifier("k".repeat(51), "v");
        assert!(matches!(rule_of(&long_key).0, Field::IdentifierKey(_)));
        let six = CustomerRequest::verified("c").identifier_values("emailAddresses", ["a"; 6]);
        assert_eq!(
            rule_of(&six).0,
            Field::IdentifierValues("emailAddresses".into())
        );
        let empty_value = CustomerRequest::verified("c").email("a").email("");
        assert_eq!(
            rule_of(&empty_value).0,
            Field::IdentifierValue("emailAddresses".into(), 1)
        );
        let m = |n: u64| CustomerRequest::verified("c").lifetime(Duration::from_secs(n * 60));
        assert!(m(15).validate().is_ok() && m(60).validate().is_ok());
        assert_eq!(rule_of(&m(14)).0, Field::Lifetime);
        assert_eq!(rule_of(&m(61)).0, Field::Lifetime);
        let odd = CustomerRequest::verified("c").lifetime(Duration::from_secs(15 * 60 + 1));
        assert!(matches!(rule_of(&odd).1, Rule::WholeMinutes { .. }));
    }

    #[test]
    fn guests_drop_identifiers_and_get_random_ids() {
        let a = CustomerRequest::guest().email("x@example.com");
        let b = CustomerRequest::guest();
        assert_ne!(a.customer_id(), b.customer_id());
        assert!(a.customer_identifiers().is_empty());
        let body = serde_json::to_value(TokenRequestBody::new(&a, "int", 15)).unwrap_or_default();
        assert_eq!(body["verifiedCustomer"], false);
        assert!(body.get("customerIdentifiers").is_none());
    }
}
