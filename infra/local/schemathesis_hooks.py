"""Schemathesis hooks for the test command's fuzz step (SCHEMATHESIS_HOOKS=schemathesis_hooks, with
FUZZ_ENV_FILE naming the local stack's env.json).

The OpenAPI document states everything a JSON schema can about a valid request. What it cannot:
- a pagination cursor and an `If-Match` version come from the API (generated ones are forgeries or stale:
  400 and 412 by design);
- deadlines and learners' dates may not be before today (400);
- a new assignment's target and assignee must exist (400 `unknown_target` / `unknown_assignee`);
- a recertification window is shorter than its period (`windowDays` < 28 × `everyMonths`), and the
  audit log's `from` is not after its `to`;
- an assignment whose learners each have their own date (created with `dueInDays`) has no `deadline` to
  patch (400 on `deadline`): the hooks remember which assignments the fuzzer created so;
- a webhook endpoint's URL must name a public host (a pattern cannot refuse `https://0`, `x.local` or a
  private address), an org has at most 20 endpoints, and `recover` reaches 14 days back: a positive
  create or change of an endpoint names `https://hooks.private.test/fuzz` (the local stack's resolver
  maps it to a private address, so its deliveries fail before any connection and no lookup leaves the
  machine), the hooks delete the oldest endpoint the fuzzer made once it has made 15, and `since` is an
  hour ago.
So that positive test cases are valid requests and the `positive_data_acceptance` check keeps its
default expectations, just before a positive case is sent it loses a generated cursor and `If-Match`, a
past or too-distant date moves into the allowed range, a new assignment names a target of the catalog
and an assignee of the fuzzed org (of the type generated), a too-long window is shortened, `from` and `to`
are put in order, and a patch of a relative assignment leaves out `deadline`.
Negative cases are sent as generated. One kind of them is not counted as a failure when the API takes it:
a request whose only fault is an extra header (`filter_failure`): HTTP recipients ignore header fields
they do not recognise (RFC 9110, section 5.1: proxies, SDKs and tracing add their own), so it is a valid
request. Extra query parameters and body properties stay refused and checked.
"""
import datetime
import json
import os

import schemathesis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _existing():
    """A target of each type in the catalog, and the fuzzed org's ids, by type."""
    with open(os.path.join(ROOT, "shared/domain/data/catalog.json"), encoding="utf-8") as f:
        catalog = json.load(f)
    category = catalog["practice"][0]
    module = category["modules"][0]
    course = catalog["learn"][0]
    with open(os.environ["FUZZ_ENV_FILE"], encoding="utf-8") as f:
        org = json.load(f)["orgs"][0]
    learner = next(u for u in org["users"] if u["role"] == "learner")
    return {
        "category": category["slug"],
        "module": module["slug"],
        "topic": module["topics"][0]["slug"],
        "course": course["slug"],
        "scenario": course["scenarios"][0]["slug"],
        "custom-course": org["customCourses"][0]["courseId"],
    }, {"user": learner["userId"], "team": org["teams"][0]["teamId"], "org": org["orgId"]}


TARGETS, ASSIGNEES = _existing()
# Assignments the fuzzer created with `dueInDays`.
RELATIVE = set()


def _instant(value):
    """An audit-log bound (an RFC 3339 date-time, or a date: its start) as a UTC datetime."""
    if not isinstance(value, str):
        return None
    try:
        if "T" not in value:
            return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc)
        # Python 3.11 takes at most 6 fractional digits.
        head, _, tail = value.partition(".")
        if tail:
            digits = "".join(c for c in tail if c.isdigit())
            value = f"{head}.{digits[:6]}{tail[len(digits):]}"
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    except ValueError:
        return None


def _is(case, method, path):
    return case.operation.method.upper() == method and case.operation.path == path


def _remember_relative(value):
    """Every assignment in a response (a create, a detail, a list) whose learners have their own dates."""
    if isinstance(value, list):
        for item in value:
            _remember_relative(item)
    elif isinstance(value, dict) and value.get("dueInDays") is not None and isinstance(value.get("id"), str):
        RELATIVE.add(value["id"])


# Endpoints the fuzzer made, oldest first.
ENDPOINTS = []
FUZZ_URL = "https://hooks.private.test/fuzz"


def _env():
    with open(os.environ["FUZZ_ENV_FILE"], encoding="utf-8") as f:
        return json.load(f)


def _admin_token():
    return next(u for u in _env()["orgs"][0]["users"] if u["role"] == "org_admin")["token"]


@schemathesis.hook
def after_call(context, case, response):
    if 200 <= response.status_code < 300 and "/assignments" in case.operation.path:
        try:
            _remember_relative(response.json())
        except ValueError:
            pass
    if response.status_code == 201 and _is(case, "POST", "/webhook-endpoints"):
        try:
            ENDPOINTS.append(_env()["apiBaseUrl"].rstrip("/") + "/webhook-endpoints/" + response.json()["id"])
        except (ValueError, KeyError, TypeError):
            pass


def _make_room_for_an_endpoint():
    """Deletes the oldest endpoints the fuzzer made while it has 15 or more (the org may have 20)."""
    import urllib.request
    while len(ENDPOINTS) >= 15:
        url = ENDPOINTS.pop(0)
        request = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {_admin_token()}"})
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass

DATED_FIELDS = ("deadline", "dueOn")
# The service accepts dates from today (UTC) to five years ahead.
MOST_DAYS_AHEAD = 5 * 365


def _is_positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(context, case, **kwargs):
    if _is(case, "POST", "/webhook-endpoints"):
        _make_room_for_an_endpoint()
    if not _is_positive(case):
        return
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
        start, end = _instant(case.query.get("from")), _instant(case.query.get("to"))
        if start and end and start > end:
            case.query["from"], case.query["to"] = case.query["to"], case.query["from"]
    if case.headers:
        for name in [name for name in list(case.headers.keys()) if name.lower() == "if-match"]:
            del case.headers[name]
    if isinstance(case.body, dict) and _is(case, "PATCH", "/assignments/{id}"):
        if (case.path_parameters or {}).get("id") in RELATIVE and "deadline" in case.body:
            del case.body["deadline"]
            case.body.setdefault("note", None)
    if isinstance(case.body, dict) and case.operation.path.startswith("/webhook-endpoints"):
        if "url" in case.body:
            case.body["url"] = FUZZ_URL
        if "since" in case.body:
            hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
            case.body["since"] = hour_ago.isoformat().replace("+00:00", "Z")
    if isinstance(case.body, dict) and _is(case, "POST", "/assignments"):
        if case.body.get("targetType") in TARGETS:
            case.body["targetId"] = TARGETS[case.body["targetType"]]
        if case.body.get("assigneeType") in ASSIGNEES:
            case.body["assigneeId"] = ASSIGNEES[case.body["assigneeType"]]
    recurrence = case.body.get("recurrence") if isinstance(case.body, dict) else None
    if isinstance(recurrence, dict) and isinstance(recurrence.get("everyMonths"), (int, float)):
        longest = int(recurrence["everyMonths"]) * 28 - 1
        if isinstance(recurrence.get("windowDays"), (int, float)) and recurrence["windowDays"] > longest:
            recurrence["windowDays"] = longest
    if isinstance(case.body, dict):
        today = datetime.datetime.now(datetime.timezone.utc).date()
        for field in DATED_FIELDS:
            value = case.body.get(field)
            if not isinstance(value, str):
                continue
            try:
                day = datetime.date.fromisoformat(value)
            except ValueError:
                continue
            if not today < day < today + datetime.timedelta(days=MOST_DAYS_AHEAD - 1):
                case.body[field] = (today + datetime.timedelta(days=30)).isoformat()


# The header name schemathesis adds to make a request's headers "unexpected" (its coverage phase).
UNKNOWN_HEADER = "x-schemathesis-unknown-property"


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if getattr(failure, "code", None) != "ST201":
        return True
    extra_header = UNKNOWN_HEADER in {name.lower() for name in (case.headers or {})}
    meta = getattr(case, "meta", None)
    negative = [
        location.name for location, info in (getattr(meta, "components", None) or {}).items() if info.mode.is_negative
    ]
    return not (extra_header and negative == ["HEADER"])
