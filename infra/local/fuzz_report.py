#!/usr/bin/env python3
"""The fuzz step's teeth: reads the HAR file schemathesis wrote (--report har) and prints how its
responses were distributed by status; fails unless at least --min-handled of them came from a handler
rather than being refused by the auth or rate layer (401, 403, 429).

Usage: fuzz_report.py HAR_FILE [--min-handled 0.9]
"""
import argparse
import collections
import json
import sys

REFUSED = {401: "unauthorized", 403: "forbidden / insufficient scope", 429: "too many requests"}


def _error_code(entry):
    """The problem's `error` member (`rate_limited`, `too_many_running_exports`, …), if any."""
    try:
        return json.loads(entry["response"]["content"].get("text") or "{}").get("error", "-")
    except (ValueError, AttributeError):
        return "-"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("har")
    parser.add_argument("--min-handled", type=float, default=0.9)
    args = parser.parse_args()
    with open(args.har, encoding="utf-8") as f:
        entries = json.load(f)["log"]["entries"]
    statuses = collections.Counter(e["response"]["status"] for e in entries)
    by_operation = collections.Counter(
        (e["request"]["method"], e["request"]["url"].split("?")[0].split("/api/public/v1", 1)[-1]) for e in entries
    )
    total = sum(statuses.values())
    if total == 0:
        sys.exit("schemathesis sent no request")
    print(f"schemathesis: {total} responses over {len(by_operation)} method+path pairs")
    for status, count in sorted(statuses.items()):
        note = f"  (refused: {REFUSED[status]})" if status in REFUSED else ""
        print(f"  {status}: {count:6d}  {count / total:6.1%}{note}")
    codes = collections.Counter(
        (e["response"]["status"], _error_code(e)) for e in entries if e["response"]["status"] in REFUSED
    )
    for (status, code), count in sorted(codes.items()):
        print(f"  {status} {code}: {count}")
    refused = sum(count for status, count in statuses.items() if status in REFUSED)
    handled = (total - refused) / total
    print(f"reached a handler: {handled:.1%} (at least {args.min_handled:.0%} required)", flush=True)
    if codes.get((429, "rate_limited")):
        print("rate_limited: the fuzzer must run as the gateway's --unlimited-org", file=sys.stderr)
    if handled < args.min_handled:
        sys.exit(f"only {handled:.1%} of the fuzz step's requests reached a handler")


if __name__ == "__main__":
    main()
