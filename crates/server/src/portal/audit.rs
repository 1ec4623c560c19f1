//! Admin > Audit log (`/admin/audit`) and its downloads (`/admin/audit.csv`,
//! `/admin/audit.jsonl`), for admins.
//!
//! The page and the downloads call the API's own functions (`api::audit`) with the
//! session as the caller, so the admin check, the realm scoping and the validation of
//! the query are the API's. This module only turns the filter form into the API's query:
//! its dates are UTC days, and the "until" day is included.
//!
//! The filter form and the downloads are GETs: they change nothing, so they carry no
//! CSRF token, but each still needs the session and the admin role.

use super::session::Session;
use super::{Admins, Chrome, Form, Gate, day_of, midnight_utc, page};
use crate::api::audit as api;
use crate::extract::ApiQuery;
use crate::state::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use proto::{AuditEvent, AuditQuery};

const PAGE_SIZE: u32 = 100;

/// The results an event can have, as the form's choices.
const RESULTS: [&str; 3] = ["ok", "denied", "failed"];

/// The filter form's fields as entered, which the page's links carry on.
struct Filters {
    action: String,
    actor: String,
    result: String,
    since: String,
    until: String,
    /// `newest` (the page's default) or `oldest`.
    order: String,
    cursor: Option<String>,
}

impl Filters {
    /// The query string's fields; the first value of a name wins, a missing one is empty.
    fn from_query(query: Option<&str>) -> Filters {
        let form = Form::parse(query.unwrap_or("").as_bytes());
        let text = |name: &str| form.get(name).trim().to_string();
        let cursor = text("cursor");
        Filters {
            action: text("action"),
            actor: text("actor"),
            result: text("result"),
            since: text("since"),
            until: text("until"),
            order: match text("order").as_str() {
                "" => "newest".to_string(),
                order => order.to_string(),
            },
            cursor: (!cursor.is_empty()).then_some(cursor),
        }
    }

    /// The API's query for these filters (no format, no page size), or what to fix.
    fn query(&self) -> Result<AuditQuery, String> {
        if !self.result.is_empty() && !RESULTS.contains(&self.result.as_str()) {
            return Err("Result: choose any, ok, denied or failed.".to_string());
        }
        if !["newest", "oldest"].contains(&self.order.as_str()) {
            return Err("Order: choose newest first or oldest first.".to_string());
        }
        let since = day_of(&self.since, "Since")?;
        let until = day_of(&self.until, "Until")?;
        if since.zip(until).is_some_and(|(since, until)| until < since) {
            return Err("Until: choose a day on or after the Since day.".to_string());
        }
        // "Until" includes its day: the API's `until` is exclusive, so it is 00:00 UTC of
        // the day after.
        let until = match until {
            Some(day) => Some(day.next_day().ok_or_else(|| "Until: choose an earlier day.".to_string())?),
            None => None,
        };
        let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_string());
        Ok(AuditQuery {
            format: None,
            action: non_empty(&self.action),
            actor: non_empty(&self.actor),
            result: non_empty(&self.result),
            since: since.map(midnight_utc),
            until: until.map(midnight_utc),
            order: Some(self.order.clone()),
            limit: None,
            cursor: self.cursor.clone(),
        })
    }
}

/// One event as the table shows it.
struct EventLine {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    client_ip: String,
    result: String,
    detail: String,
}

impl EventLine {
    fn of(event: AuditEvent) -> EventLine {
        let at = event.at.to_offset(time::UtcOffset::UTC);
        EventLine {
            seq: event.seq,
            at: format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            ),
            actor: event.actor,
            action: event.action,
            target: event.target,
            client_ip: event.client_ip,
            result: event.result,
            detail: event.detail,
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    title: &'static str,
    chrome: Option<Chrome>,
    filters: Filters,
    results: [&'static str; 3],
    page_size: u32,
    /// What to fix in the filters; then no events are shown.
    message: Option<String>,
    events: Vec<EventLine>,
    next: Option<String>,
}

fn audit_page(
    session: &Session,
    status: StatusCode,
    filters: Filters,
    listed: Result<(Vec<AuditEvent>, Option<String>), String>,
) -> Response {
    let (events, next, message) = match listed {
        Ok((events, next)) => (events.into_iter().map(EventLine::of).collect(), next, None),
        Err(text) => (Vec::new(), None, Some(text)),
    };
    page(
        status,
        &AuditPage {
            title: "Audit log",
            chrome: Chrome::of(session),
            filters,
            results: RESULTS,
            page_size: PAGE_SIZE,
            message,
            events,
            next,
        },
    )
}

pub(super) async fn show(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    let filters = Filters::from_query(query.as_deref());
    let listed = match filters.query() {
        Ok(query) => api::audit_page(&state, &caller, AuditQuery { limit: Some(PAGE_SIZE), ..query })
            .await
            .map_err(|error| error.status_and_message()),
        Err(text) => Err((StatusCode::UNPROCESSABLE_ENTITY, text)),
    };
    match listed {
        Ok(listed) => audit_page(&session, StatusCode::OK, filters, Ok((listed.items, listed.next_cursor))),
        Err((status, text)) => audit_page(&session, status, filters, Err(text)),
    }
}

pub(super) async fn download_csv(state: State<AppState>, gate: Gate<Admins>, query: RawQuery) -> Response {
    download(state, gate, query, "csv").await
}

pub(super) async fn download_jsonl(state: State<AppState>, gate: Gate<Admins>, query: RawQuery) -> Response {
    download(state, gate, query, "jsonl").await
}

/// Every event the filters select, from the first (no cursor), as the API's download
/// answers it, with its `Content-Disposition: attachment`.
async fn download(
    State(state): State<AppState>,
    Gate { session, caller, .. }: Gate<Admins>,
    RawQuery(query): RawQuery,
    format: &str,
) -> Response {
    let filters = Filters::from_query(query.as_deref());
    let downloaded = match filters.query() {
        Ok(query) => {
            let query = AuditQuery { format: Some(format.to_string()), cursor: None, ..query };
            api::list_audit(State(state), caller, ApiQuery(query)).await.map_err(|error| error.status_and_message())
        }
        Err(text) => Err((StatusCode::UNPROCESSABLE_ENTITY, text)),
    };
    match downloaded {
        Ok(response) => response,
        Err((status, text)) => audit_page(&session, status, filters, Err(text)),
    }
}
