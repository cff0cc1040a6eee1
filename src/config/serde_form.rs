//! `Config` through serde (feature `serde`): the same text form as [`Config::set`], so
//! one table of field names and parsers serves the command line, scenario files, TOML,
//! JSON, YAML and environment loaders, and [`Config::validate`] stays the only place
//! that checks ranges.
//!
//! A config deserializes from a map of field names to values: strings (durations as
//! `"500ms"`, `"1.5s"`, `"2m"` or humantime's `"1m 30s"`), numbers and booleans, plus
//! an optional `preset` key (`"lan"`, `"wan"`, `"local"`) that the other fields then
//! adjust, whatever its position in the map. An unknown field, a value of the wrong
//! kind, or a config that [`Config::validate`] refuses is an error naming the field.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::Config;
use crate::duration::fmt_dur;

/// A field's value as serializers write it.
#[derive(Clone, Debug, PartialEq)]
enum FieldValue {
    Bool(bool),
    UInt(u64),
    Float(f64),
    Text(String),
}

impl FieldValue {
    /// The text [`Config::set`] reads.
    fn into_text(self) -> String {
        match self {
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::UInt(n) => n.to_string(),
            // `{:?}` keeps a decimal point and round-trips every finite f64.
            FieldValue::Float(x) => format!("{x:?}"),
            FieldValue::Text(s) => s,
        }
    }
}

impl Config {
    /// The current value of `field` (one of [`Config::FIELDS`]) as serializers write it,
    /// or `None` for the keyring (a secret: never serialized) or an unknown name.
    fn field_value(&self, field: &str) -> Option<FieldValue> {
        use FieldValue::{Bool, Float, Text, UInt};
        let d = |d: std::time::Duration| Some(Text(fmt_dur(d)));
        let n = |n: usize| Some(UInt(n as u64));
        let n32 = |n: u32| Some(UInt(u64::from(n)));
        match field {
            "cluster_label" => Some(Text(self.cluster_label.clone())),
            "keyring" => None,
            "accept_plaintext" => Some(Bool(self.accept_plaintext)),
            "send_plaintext" => Some(Bool(self.send_plaintext)),
            "strategy" => Some(Text(self.strategy.to_string())),
            "probe_interval" => d(self.probe_interval),
            "probe_timeout" => d(self.probe_timeout),
            "indirect_checks" => n(self.indirect_checks),
            "monitors" => n(self.monitors),
            "phi_suspect" => Some(Float(self.phi_suspect)),
            "phi_convict" => Some(Float(self.phi_convict)),
            "acceptable_pause" => d(self.acceptable_pause),
            "phi_window" => n(self.phi_window),
            "min_std_dev" => d(self.min_std_dev),
            "refusal_window" => d(self.refusal_window),
            "suspicion_mult" => n32(self.suspicion_mult),
            "suspicion_max_mult" => n32(self.suspicion_max_mult),
            "max_local_health" => n32(self.max_local_health),
            "gossip_interval" => d(self.gossip_interval),
            "gossip_fanout" => n(self.gossip_fanout),
            "retransmit_mult" => n32(self.retransmit_mult),
            "gossip_to_the_dead" => d(self.gossip_to_the_dead),
            "reconnect_interval" => d(self.reconnect_interval),
            "reconnect_timeout" => d(self.reconnect_timeout),
            "push_pull_interval" => d(self.push_pull_interval),
            "join_retry_interval" => d(self.join_retry_interval),
            "dead_retention" => d(self.dead_retention),
            "max_packet_size" => n(self.max_packet_size),
            "max_metadata_size" => n(self.max_metadata_size),
            "max_members" => n(self.max_members),
            "max_pending_broadcasts" => n(self.max_pending_broadcasts),
            "max_messages_per_packet" => n(self.max_messages_per_packet),
            "max_relays_per_source" => n(self.max_relays_per_source),
            "max_syncs_per_source" => n(self.max_syncs_per_source),
            "stall_threshold" => d(self.stall_threshold),
            "stall_guard" => d(self.stall_guard),
            _ => None,
        }
    }

    /// A [`DeserializeSeed`] that reads fields on top of `self` instead of
    /// [`Config::default`]: for layering, e.g. a file's `[config]` table over a preset
    /// chosen on the command line. A `preset` key in the input still replaces the base.
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn overlay(self) -> ConfigOverlay {
        ConfigOverlay { base: self }
    }
}

/// Every field but the keyring, in [`Config::FIELDS`] order. The keyring is a secret:
/// load it from a secret store at start (the `keyring` field deserializes) rather than
/// letting a config dump or a log line carry it.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields: Vec<(&str, FieldValue)> = Config::FIELDS
            .iter()
            .filter_map(|f| self.field_value(f).map(|v| (*f, v)))
            .collect();
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (k, v) in fields {
            match v {
                FieldValue::Bool(b) => map.serialize_entry(k, &b)?,
                FieldValue::UInt(n) => map.serialize_entry(k, &n)?,
                FieldValue::Float(x) => map.serialize_entry(k, &x)?,
                FieldValue::Text(s) => map.serialize_entry(k, &s)?,
            }
        }
        map.end()
    }
}

/// Fields over [`Config::default`] (the `lan` preset), or over the `preset` the input
/// names; validated. See [`Config::overlay`] to start from another base.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Config, D::Error> {
        Config::default().overlay().deserialize(deserializer)
    }
}

/// Deserializes a [`Config`] on top of a base config; from [`Config::overlay`].
#[derive(Clone, Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub struct ConfigOverlay {
    base: Config,
}

impl<'de> DeserializeSeed<'de> for ConfigOverlay {
    type Value = Config;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Config, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ConfigOverlay {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of rumor config fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        // Read every entry first: a `preset` replaces the base whatever its position,
        // and the fields then apply in input order. The map is bounded by the input the
        // caller already holds; a repeated key is refused rather than silently won by
        // the last one.
        let mut preset: Option<String> = None;
        let mut fields: Vec<(String, String)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "preset" {
                if preset.is_some() {
                    return Err(de::Error::custom("duplicate field `preset`"));
                }
                preset = Some(map.next_value::<String>()?);
                continue;
            }
            if !Config::FIELDS.contains(&key.as_str()) {
                return Err(de::Error::custom(format!(
                    "unknown field `{key}`; expected `preset` or one of: {}",
                    Config::FIELDS.join(", ")
                )));
            }
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            let value = map
                .next_value::<FieldValue>()
                .map_err(|e| de::Error::custom(format!("{key}: {e}")))?;
            fields.push((key, value.into_text()));
        }
        let mut cfg = match preset {
            Some(p) => Config::preset(&p).ok_or_else(|| {
                de::Error::custom(format!("preset = {p:?}: expected lan, wan or local"))
            })?,
            None => self.base,
        };
        for (k, v) in &fields {
            cfg.set(k, v).map_err(de::Error::custom)?;
        }
        cfg.validate().map_err(de::Error::custom)?;
        Ok(cfg)
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FieldValue, D::Error> {
        deserializer.deserialize_any(FieldValueVisitor)
    }
}

struct FieldValueVisitor;

impl Visitor<'_> for FieldValueVisitor {
    type Value = FieldValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number or a boolean")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldValue, E> {
        Ok(FieldValue::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldValue, E> {
        Ok(FieldValue::UInt(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldValue, E> {
        // A negative number reaches `Config::set` as text and is refused there with
        // the field's own expectation.
        Ok(FieldValue::Text(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FieldValue, E> {
        Ok(FieldValue::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
        Ok(FieldValue::Text(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::keyring::Key;
    use std::time::Duration;

    /// Every field but the keyring has a serialized form that `set` reads back to the
    /// same value: the three field tables (FIELDS, `set`, `field_value`) agree.
    #[test]
    fn every_field_round_trips_through_its_text() {
        let mut cfg = Config::wan();
        cfg.keyring
            .add(Key::from_hex(&"0a".repeat(32)).unwrap())
            .unwrap();
        cfg.phi_convict = 9.25;
        cfg.strategy = Strategy::Lifeguard;
        for f in Config::FIELDS {
            let Some(v) = cfg.field_value(f) else {
                assert_eq!(*f, "keyring", "{f} has no serialized form");
                continue;
            };
            let mut back = Config::local();
            back.set(f, &v.clone().into_text()).unwrap();
            assert_eq!(back.field_value(f), Some(v), "{f}");
        }
    }

    #[test]
    fn json_round_trip_keeps_everything_but_the_keyring() {
        let mut cfg = Config::wan();
        cfg.acceptable_pause = Duration::from_millis(1_400);
        cfg.phi_convict = 12.5;
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(json.contains("\"acceptable_pause\":\"1400ms\""), "{json}");
        assert!(!json.contains("keyring"), "{json}");
        let back: Config = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn preset_then_fields_in_any_order() {
        let c: Config =
            serde_json::from_str(r#"{"acceptable_pause": "4s", "preset": "wan"}"#).unwrap();
        let mut want = Config::wan();
        want.acceptable_pause = Duration::from_secs(4);
        assert_eq!(c, want);
        // Without a preset, fields go over the overlay's base.
        let c = Config::local()
            .overlay()
            .deserialize(&mut serde_json::Deserializer::from_str(
                r#"{"phi_convict": 9}"#,
            ))
            .unwrap();
        assert_eq!(c.probe_timeout, Config::local().probe_timeout);
        assert_eq!(c.phi_convict, 9.0);
    }

    #[test]
    fn errors_name_the_field() {
        let err = |s: &str| serde_json::from_str::<Config>(s).unwrap_err().to_string();
        assert!(err(r#"{"acceptable_pawse": "1s"}"#).contains("unknown field `acceptable_pawse`"));
        assert!(err(r#"{"probe_interval": "soon"}"#).contains("probe_interval"));
        assert!(err(r#"{"monitors": -1}"#).contains("monitors"));
        assert!(err(r#"{"monitors": [1]}"#).contains("monitors"));
        assert!(
            err(r#"{"monitors": 99}"#).contains("monitors"),
            "validate's range"
        );
        assert!(err(r#"{"preset": "mars"}"#).contains("preset"));
        assert!(err(r#"{"monitors": 3, "monitors": 4}"#).contains("duplicate field `monitors`"));
        // A secret is never echoed.
        let e = err(r#"{"keyring": "not-hex-secret"}"#);
        assert!(
            e.contains("keyring") && !e.contains("not-hex-secret"),
            "{e}"
        );
    }

    #[test]
    fn humantime_durations() {
        let c: Config = serde_json::from_str(r#"{"dead_retention": "1h 30m"}"#).unwrap();
        assert_eq!(c.dead_retention, Duration::from_secs(5_400));
    }
}
