//! Query strings as typed structs: each route declares its parameters as a `#[derive(Deserialize)]`
//! struct whose fields name their parser (`deserialize_with`) from here, so every parameter has one
//! definition, one type and one error message.
//!
//! Names the struct does not have and repeated names are refused first, all of them in one problem;
//! then the first value that does not parse is named with its field's message.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use domain::Wire;
use domain::validation::{FieldError, unknown_field_errors};
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use crate::http::{DEFAULT_LIMIT, MAX_LIMIT, MAX_UNPAGED};
use crate::problem::ApiError;

/// Parses this request's query string into `T`. Values are parsed in the order `T` declares its
/// fields, so the first one named in an error is the first bad one in that order.
pub fn parse<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let names = field_names::<T>();
    from_values(&checked(req, names)?, names)
}

/// A paged listing's query: its page (`limit`, `cursor`: [`PageParams`]) and its filters `F`, parsed
/// in that order.
pub fn parse_paged<F: DeserializeOwned>(req: &Request) -> Result<(PageParams, F), ApiError> {
    let (page, filters) = (field_names::<PageParams>(), field_names::<F>());
    let allowed: Vec<&str> = page.iter().chain(filters).copied().collect();
    let values = checked(req, &allowed)?;
    Ok((from_values(&values, page)?, from_values(&values, filters)?))
}

/// `T` from the values of its fields `names`, in that order.
fn from_values<T: DeserializeOwned>(values: &BTreeMap<String, String>, names: &[&str]) -> Result<T, ApiError> {
    let ordered = names.iter().filter_map(|name| values.get(*name).map(|value| (*name, value.as_str())));
    let map = de::value::MapDeserializer::<_, de::value::Error>::new(ordered);
    serde_path_to_error::deserialize(map).map_err(|err| {
        let field = err.path().to_string();
        ApiError::field(&field, err.into_inner().to_string())
    })
}

/// A route that takes no query parameters: any is refused by name.
pub fn none(req: &Request) -> Result<(), ApiError> {
    checked(req, &[]).map(drop)
}

/// The query's values by name, once names outside `allowed` and repeated names have been refused (all
/// of them in one problem).
fn checked(req: &Request, allowed: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let params = req.query_string_parameters();
    let unknown: Vec<&str> = params.iter().map(|(name, _)| name).filter(|name| !allowed.contains(name)).collect();
    let mut errors = unknown_field_errors(&unknown, "query parameter", allowed);
    let mut values = BTreeMap::new();
    for (name, _) in params.iter().filter(|(name, _)| allowed.contains(name)) {
        match params.all(name) {
            Some(all) if all.len() > 1 => {
                errors.push(FieldError { field: name.to_owned(), message: "given more than once".into() })
            }
            Some(all) => {
                values.insert(name.to_owned(), all[0].to_owned());
            }
            None => {}
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(ApiError::Validation(errors)) }
}

/// The parameter names of `T` as serde sees them (renames applied): its `deserialize_struct` is
/// asked for them by a deserializer that only records what it is given.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Names(&'static [&'static str]);
    impl<'de> Deserializer<'de> for &mut Names {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("a query is a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("names read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = Names(&[]);
    let _ = T::deserialize(&mut names);
    names.0
}

fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

/// Any text (a cursor: the codec judges it).
pub fn some<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    raw(d).map(Some)
}

/// `true` or `false`.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match raw(d)?.as_str() {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Err(de::Error::custom("must be true or false")),
    }
}

/// A team's id (a UUID, in any of the spellings v1 accepts).
pub fn team_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<domain::TeamId>, D::Error> {
    let value = raw(d)?;
    let canonical = domain::canonical_uuid(&value).unwrap_or(value);
    domain::TeamId::parse(&canonical).map(Some).map_err(|_| de::Error::custom("must be a team id (UUID)"))
}

/// `limit`: 1 to [`MAX_LIMIT`].
pub fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match raw(d)?.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(de::Error::custom(format!("must be an integer from 1 to {MAX_LIMIT}"))),
    }
}

/// A page's size: the client's `limit`, or [`DEFAULT_LIMIT`].
pub fn page_size(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT)
}

/// A v1 list's size: the client's `limit`, or [`MAX_UNPAGED`] (v1 returns "everything").
pub fn v1_page_size(limit: Option<usize>) -> usize {
    limit.unwrap_or(MAX_UNPAGED)
}

/// One of a v1 enum's spellings.
pub fn one_of<'de, D: Deserializer<'de>, T: Wire>(d: D) -> Result<Option<T>, D::Error> {
    let value = raw(d)?;
    value.parse::<T>().map(Some).map_err(|_| de::Error::custom(format!("must be one of: {}", T::expected())))
}

/// An id as the client spells it, 1 to `MAX` bytes (ids are ASCII; the bound is on what is stored).
pub fn id_text<'de, D: Deserializer<'de>, const MAX: usize>(d: D) -> Result<Option<String>, D::Error> {
    let value = raw(d)?;
    if value.is_empty() || value.len() > MAX {
        return Err(de::Error::custom(format!("must be 1 to {MAX} characters")));
    }
    Ok(Some(value))
}

/// Text of 1 to `MAX` characters.
pub fn text<'de, D: Deserializer<'de>, const MAX: usize>(d: D) -> Result<Option<String>, D::Error> {
    let value = raw(d)?;
    if value.is_empty() || value.chars().count() > MAX {
        return Err(de::Error::custom(format!("must be 1 to {MAX} characters")));
    }
    Ok(Some(value))
}

/// An RFC 3339 instant, or a date meaning its first millisecond.
pub fn from_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    instant(&raw(d)?, false).map(Some).map_err(de::Error::custom)
}

/// An RFC 3339 instant, or a date meaning its last millisecond.
pub fn to_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    instant(&raw(d)?, true).map(Some).map_err(de::Error::custom)
}

fn instant(raw: &str, end_of_day: bool) -> Result<DateTime<Utc>, &'static str> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "must be an RFC 3339 date-time or a date (YYYY-MM-DD)")?;
    let time = if end_of_day { NaiveTime::from_hms_milli_opt(23, 59, 59, 999) } else { Some(NaiveTime::MIN) };
    Ok(date.and_time(time.unwrap_or(NaiveTime::MIN)).and_utc())
}

/// A learner's status (`?status=` of the detail), in its API spelling.
pub fn user_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<domain::UserStatus>, D::Error> {
    let raw = String::deserialize(d)?;
    serde_json::from_value(serde_json::Value::String(raw)).map(Some).map_err(|_| {
        de::Error::custom("must be one of: not_started, in_progress, completed, overdue, removed, exempt, expired")
    })
}

/// Only a cursor.
#[derive(Debug, Deserialize)]
pub struct CursorOnly {
    #[serde(default, deserialize_with = "some")]
    pub cursor: Option<String>,
}

/// A page: `limit` and `cursor`.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    #[serde(default, deserialize_with = "limit")]
    pub limit: Option<usize>,
    #[serde(default, deserialize_with = "some")]
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use domain::AssigneeType;
    use lambda_http::RequestExt;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        #[serde(default, deserialize_with = "limit")]
        limit: Option<usize>,
        #[serde(default, deserialize_with = "flag")]
        is_active: Option<bool>,
        #[serde(default, deserialize_with = "one_of")]
        assignee_type: Option<AssigneeType>,
    }

    fn request(pairs: &[(&str, &str)]) -> Request {
        let params: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Request::default().with_query_string_parameters(params)
    }

    fn fields(err: ApiError) -> Vec<(String, String)> {
        match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn parameters_parse_into_their_types_and_absent_ones_are_none() {
        let q: Sample = parse(&request(&[("isActive", "true"), ("assigneeType", "team")])).unwrap();
        assert_eq!((q.limit, q.is_active, q.assignee_type), (None, Some(true), Some(AssigneeType::Team)));
        assert_eq!(field_names::<Sample>(), ["limit", "isActive", "assigneeType"], "renames applied");
    }

    #[test]
    fn a_bad_value_is_named_with_its_fields_message() {
        let err = parse::<Sample>(&request(&[("isActive", "yes")])).unwrap_err();
        assert_eq!(fields(err), [("isActive".to_owned(), "must be true or false".to_owned())]);
        let err = parse::<Sample>(&request(&[("limit", "0")])).unwrap_err();
        assert_eq!(fields(err), [("limit".to_owned(), format!("must be an integer from 1 to {MAX_LIMIT}"))]);
        let err = parse::<Sample>(&request(&[("assigneeType", "robot")])).unwrap_err();
        assert_eq!(fields(err), [("assigneeType".to_owned(), "must be one of: user, team, org".to_owned())]);
    }

    #[test]
    fn with_several_bad_values_the_first_declared_is_named() {
        let err =
            parse::<Sample>(&request(&[("assigneeType", "robot"), ("limit", "0"), ("isActive", "x")])).unwrap_err();
        assert_eq!(fields(err)[0].0, "limit");
    }

    #[test]
    fn unknown_parameters_are_refused_by_name() {
        let err = parse::<Sample>(&request(&[("colour", "red")])).unwrap_err();
        let fields = fields(err);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].0, "colour");
    }
}
