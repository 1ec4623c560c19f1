//! The audit log: one page as JSON, or a download as CSV or JSON Lines. Admin only.

use crate::api::{decode_cursor, next_cursor, require_admin};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use proto::{AuditEvent, AuditQuery, Page};
use store::{AuditEventRow, AuditFilter};

const DOWNLOAD_LIMIT: i64 = 100_000;

fn event_dto(row: AuditEventRow) -> AuditEvent {
    AuditEvent {
        seq: row.seq,
        at: row.at,
        realm: row.realm,
        actor: row.actor,
        action: row.action,
        target: row.target,
        client_ip: row.client_ip,
        result: row.result,
        detail: row.detail,
        hash: hex::encode(row.hash),
    }
}

/// Quotes a CSV field, and defuses values a spreadsheet would run as a formula.
fn csv_field(value: &str) -> String {
    let defused =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

fn download(body: String, content_type: &'static str, extension: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"keyward-audit.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// How `list_audit` answers.
#[derive(Clone, Copy)]
enum Format {
    Json,
    Csv,
    Jsonl,
}

/// The events `query` selects in the caller's realm, with the format and the page size
/// it asked for. The admin check and the query's validation live here, for the API and
/// the portal's audit page alike.
async fn select(state: &AppState, caller: &Caller, query: AuditQuery) -> ApiResult<(Format, i64, Vec<AuditEventRow>)> {
    require_admin(caller)?;
    let format = match query.format.as_deref().unwrap_or("json") {
        "json" => Format::Json,
        "csv" => Format::Csv,
        "jsonl" => Format::Jsonl,
        _ => return Err(ApiError::invalid("format", "must be json, jsonl or csv")),
    };
    let limit = match (format, query.limit) {
        (Format::Json, limit) => crate::api::page_limit(limit)?,
        (Format::Csv | Format::Jsonl, Some(limit)) => i64::from(limit).clamp(1, DOWNLOAD_LIMIT),
        (Format::Csv | Format::Jsonl, None) => DOWNLOAD_LIMIT,
    };
    let newest_first = match query.order.as_deref().unwrap_or("oldest") {
        "oldest" => false,
        "newest" => true,
        _ => return Err(ApiError::invalid("order", "must be oldest or newest")),
    };
    let filter = AuditFilter {
        realm: caller.realm_name.clone(),
        after_seq: decode_cursor(query.cursor.as_deref())?,
        newest_first,
        action: query.action,
        actor: query.actor,
        result: query.result,
        since: query.since,
        until: query.until,
        limit,
    };
    Ok((format, limit, state.store.list_audit(&filter).await?))
}

fn page_of(rows: Vec<AuditEventRow>, limit: i64) -> Page<AuditEvent> {
    let count = rows.len();
    let last = rows.last().map(|row| row.seq);
    let items: Vec<AuditEvent> = rows.into_iter().map(event_dto).collect();
    Page { items, next_cursor: next_cursor(count, limit, last) }
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>, description = "JSON page; with format=csv or format=jsonl, a download")))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let (format, limit, rows) = select(&state, &caller, query).await?;
    match format {
        Format::Csv => {
            let mut body = String::from("seq,at,realm,actor,action,target,client_ip,result,detail,hash\n");
            for event in rows.into_iter().map(event_dto) {
                let at = event.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                let fields = [
                    event.seq.to_string(),
                    at,
                    event.realm,
                    event.actor,
                    event.action,
                    event.target,
                    event.client_ip,
                    event.result,
                    event.detail,
                    event.hash,
                ];
                body.push_str(&fields.iter().map(|field| csv_field(field)).collect::<Vec<_>>().join(","));
                body.push('\n');
            }
            Ok(download(body, "text/csv; charset=utf-8", "csv"))
        }
        Format::Jsonl => {
            let mut body = String::new();
            for event in rows.into_iter().map(event_dto) {
                body.push_str(&serde_json::to_string(&event).map_err(|error| ApiError::Internal(error.to_string()))?);
                body.push('\n');
            }
            Ok(download(body, "application/jsonl", "jsonl"))
        }
        Format::Json => Ok(Json(page_of(rows, limit)).into_response()),
    }
}

/// One page of events as `list_audit` answers it without `format` (any `format` in
/// `query` is ignored), for the portal's audit page, which renders it.
pub(crate) async fn audit_page(state: &AppState, caller: &Caller, query: AuditQuery) -> ApiResult<Page<AuditEvent>> {
    let (_, limit, rows) = select(state, caller, AuditQuery { format: None, ..query }).await?;
    Ok(page_of(rows, limit))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
