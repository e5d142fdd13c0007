"""A small scheduling tool: take approved replies from the outbox, "post" them, confirm each one.

The platform is a stand-in: a post is a line appended to a file (``posted.ndjson`` by default) with a post id
invented here. Swap ``post_to_platform`` for a real platform client and the loop stays the same:

    claim (a lease, so no other tool posts the same reply) -> post -> confirm with the platform's post id

Run it against ``assistant demo`` (approve a reply or two in the queue first)::

    python examples/scheduler_client.py --base-url http://127.0.0.1:8000 --key $KEY --once

The key needs the ``outbox`` scope; it may also come from ``REPLY_ASSISTANT_KEY``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def post_to_platform(reply: dict[str, Any], posted_file: Path) -> str:
    """The stand-in platform: record the post and return its new id."""
    post_id = f"sim-{uuid.uuid4().hex[:12]}"
    with posted_file.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"post_id": post_id, "platform": reply["platform"], "in_reply_to": reply["in_reply_to"],
                              "to": reply["author_handle"], "text": reply["text"]}, ensure_ascii=False) + "\n")
    return post_id


def call(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST, waiting out 429 and 503 as the service asks (Retry-After)."""
    while True:
        answer = client.post(path, json=body)
        if answer.status_code not in (429, 503):
            return answer
        time.sleep(float(answer.headers.get("Retry-After", "1")))


def run_once(client: httpx.Client, *, limit: int, lease_seconds: int, platform: str | None,
             posted_file: Path) -> int:
    """Claim one batch and post and confirm it; answers how many replies were claimed."""
    body: dict[str, Any] = {"limit": limit, "lease_seconds": lease_seconds}
    if platform:
        body["platform"] = platform
    claimed = call(client, "/api/v1/replies/claim", body)
    claimed.raise_for_status()
    replies = claimed.json()["items"]
    for reply in replies:
        try:
            post_id = post_to_platform(reply, posted_file)
        except OSError as exc:  # the platform failed: let the reply go back to the outbox for another try
            call(client, f"/api/v1/replies/{reply['id']}/failed", {"error": str(exc), "retry": True})
            print(f"reply {reply['id']}: posting failed ({exc}); it goes back to the outbox", file=sys.stderr)
            continue
        confirmed = call(client, f"/api/v1/replies/{reply['id']}/posted", {
            "external_id": post_id, "posted_at": dt.datetime.now(dt.timezone.utc).isoformat()})
        if confirmed.status_code == 409:  # someone confirmed it first (our lease had ended): say so
            print(f"reply {reply['id']}: {confirmed.json()['detail']}", file=sys.stderr)
            continue
        confirmed.raise_for_status()
        print(f"posted reply {reply['id']} to @{reply['author_handle']} on {reply['platform']} as {post_id}")
    return len(replies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Claim approved replies, post them to a stand-in, confirm them.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default=os.environ.get("REPLY_ASSISTANT_KEY"),
                        help="an API key with the outbox scope (default: $REPLY_ASSISTANT_KEY)")
    parser.add_argument("--once", action="store_true", help="claim until the outbox is empty, then stop")
    parser.add_argument("--limit", type=int, default=20, help="replies per claim, 1 to 100")
    parser.add_argument("--lease-seconds", type=int, default=120, help="time to post a claimed batch, 5 to 3600")
    parser.add_argument("--platform", default=None, help="only replies for this platform")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between looks at an empty outbox")
    parser.add_argument("--posted-file", type=Path, default=Path("posted.ndjson"))
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give --key or set REPLY_ASSISTANT_KEY")
    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as client:
        try:
            while True:
                if run_once(client, limit=args.limit, lease_seconds=args.lease_seconds, platform=args.platform,
                            posted_file=args.posted_file) == 0:
                    if args.once:
                        return 0
                    time.sleep(args.interval)
        except httpx.HTTPStatusError as exc:
            print(f"{exc.response.status_code}: {exc.response.text}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
