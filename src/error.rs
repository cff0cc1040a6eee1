//! Errors returned to the caller. Peer misbehaviour is never one of them: bad packets
//! are dropped and counted in [`NodeStats`](crate::NodeStats).

use thiserror::Error;

/// A configuration field is out of range or inconsistent with another field.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid {field} = {value}: must be {expected}")]
pub struct ConfigError {
    field: &'static str,
    value: String,
    expected: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, value: String, expected: String) -> ConfigError {
        ConfigError {
            field,
            value,
            expected,
        }
    }

    /// For [`Config::set`](crate::Config::set), whose field name is the caller's string.
    pub(crate) fn new_owned(field: &str, value: &str, expected: &str) -> ConfigError {
        let field = crate::Config::FIELDS
            .iter()
            .copied()
            .find(|f| *f == field)
            .unwrap_or("field");
        ConfigError {
            field,
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    /// The offending field's name, as in [`Config::FIELDS`](crate::Config::FIELDS).
    pub fn field(&self) -> &'static str {
        self.field
    }
}

/// A command ([`Node::set_metadata`](crate::Node::set_metadata),
/// [`Node::broadcast`](crate::Node::broadcast), …) was refused. The node's state did not
/// change.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Metadata larger than `Config::max_metadata_size`.
    #[error("metadata is {len} bytes, more than max_metadata_size ({max})")]
    MetadataTooLarge {
        /// Bytes given.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A broadcast payload that cannot fit one packet beside the envelope.
    #[error("broadcast payload is {len} bytes, more than fits one packet ({max})")]
    BroadcastTooLarge {
        /// Bytes given.
        len: usize,
        /// The most a payload may have with this config.
        max: usize,
    },
    /// The node has left (or is leaving) the cluster and takes no more commands that
    /// change what it gossips.
    #[error("the node has left the cluster")]
    Left,
    /// A keyring change that its rules forbid (an absent key, the primary removed, a
    /// full keyring).
    #[error("keyring: {0}")]
    Keyring(String),
}
