"""A small scheduling tool: take approved replies from the outbox, "post" them, confirm each one.

The platform is a stand-in: a post is a line appended to a file (``posted.ndjson`` by default) with a post id
invented here. Swap ``post_to_platform`` for a real platform client and the loop stays the same:

    claim (a lease and a claim token, so no other tool posts the same reply) -> post -> confirm with the
    platform's post id and the token

While it works on a batch, a background thread renews the lease of every reply not yet settled, every third
of the lease. Before posting a reply it checks that the claim is still its own with at least a third of the
lease left; otherwise it leaves the reply alone (the next claim gets it). A 409 from ``renew``, ``posted``
or ``failed`` means the claim is no longer ours: it stops working on that reply, and never retries with the
same token. The one gap no server can close: a post that starts in time but takes longer than what is left of
the lease while renewals fail. Choose ``--lease-seconds`` at least three times your slowest post.

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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def post_to_platform(reply: dict[str, Any], posted_file: Path, delay: float = 0.0) -> str:
    """The stand-in platform: record the post and return its new id (after ``delay`` seconds, to try leases)."""
    time.sleep(delay)
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


class Claim:
    """One claimed reply, its token, and until when (on this machine's monotonic clock) we may act on it.

    The deadline is counted from when the claim or renewal was *sent*, so it never runs later than the
    server's lease, whatever the two clocks say."""

    def __init__(self, reply: dict[str, Any], lease_seconds: int, sent_at: float) -> None:
        self.reply, self.id, self.token = reply, reply["id"], reply["claim_token"]
        self.deadline = sent_at + lease_seconds
        self.lost = False
        """The server said 409: the claim is someone else's (or ended); never act on it again."""
        self.settled = False
        self.lock = threading.Lock()

    def time_left(self) -> float:
        with self.lock:
            return -1.0 if self.lost else self.deadline - time.monotonic()

    def renew(self, client: httpx.Client, lease_seconds: int) -> None:
        sent_at = time.monotonic()
        try:
            answer = client.post(f"/api/v1/replies/{self.id}/renew",
                                 json={"claim_token": self.token, "lease_seconds": lease_seconds})
        except httpx.HTTPError:
            return  # the lease runs down; the poster sees it before it posts
        with self.lock:
            if answer.status_code == 200:
                self.deadline = sent_at + lease_seconds
            elif answer.status_code == 409:
                self.lost = True


class Renewer:
    """Renews the leases of a batch's unsettled claims every third of the lease, on its own connection."""

    def __init__(self, client: httpx.Client, claims: list[Claim], lease_seconds: int) -> None:
        self.client, self.claims, self.lease_seconds = client, claims, lease_seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="renew-leases", daemon=True)

    def run(self) -> None:
        while not self.stopped.wait(self.lease_seconds / 3):
            for claim in self.claims:
                if not claim.settled and not claim.lost:
                    claim.renew(self.client, self.lease_seconds)

    def __enter__(self) -> Renewer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join()


def run_once(client: httpx.Client, renew_client: httpx.Client, *, limit: int, lease_seconds: int,
             platform: str | None, posted_file: Path, platform_delay: float = 0.0) -> int:
    """Claim one batch and post and confirm it under live claims; answers how many replies were claimed."""
    body: dict[str, Any] = {"limit": limit, "lease_seconds": lease_seconds}
    if platform:
        body["platform"] = platform
    sent_at = time.monotonic()
    claimed = call(client, "/api/v1/replies/claim", body)
    claimed.raise_for_status()
    claims = [Claim(reply, lease_seconds, sent_at) for reply in claimed.json()["items"]]
    with Renewer(renew_client, claims, lease_seconds):
        for claim in claims:
            post_under(client, claim, lease_seconds, posted_file, platform_delay)
            claim.settled = True
    return len(claims)


def post_under(client: httpx.Client, claim: Claim, lease_seconds: int, posted_file: Path,
               platform_delay: float) -> None:
    """Post one reply only while its claim is ours with a third of the lease left, then confirm it."""
    reply = claim.reply
    if claim.time_left() < lease_seconds / 3:
        print(f"reply {claim.id}: our claim ended or is about to; not posting it (the next claim gets it)",
              file=sys.stderr)
        return
    try:
        post_id = post_to_platform(reply, posted_file, platform_delay)
    except OSError as exc:  # the platform failed: let the reply go back to the outbox for another try
        answer = call(client, f"/api/v1/replies/{claim.id}/failed",
                      {"error": str(exc), "retry": True, "claim_token": claim.token})
        outcome = "it goes back to the outbox" if answer.status_code == 200 else \
            f"the report was refused ({answer.status_code}: our claim is no longer ours)"
        print(f"reply {claim.id}: posting failed ({exc}); {outcome}", file=sys.stderr)
        return
    confirmed = call(client, f"/api/v1/replies/{claim.id}/posted", {
        "external_id": post_id, "posted_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "claim_token": claim.token})
    if confirmed.status_code == 409:  # the claim is no longer ours: say so, and leave the reply alone
        print(f"reply {claim.id}: {confirmed.json()['detail']}", file=sys.stderr)
        return
    confirmed.raise_for_status()
    print(f"posted reply {claim.id} to @{reply['author_handle']} on {reply['platform']} as {post_id}")


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
    parser.add_argument("--platform-delay", type=float, default=0.0,
                        help="seconds the stand-in platform takes per post (to try leases and renewal)")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give --key or set REPLY_ASSISTANT_KEY")
    headers = {"Authorization": f"Bearer {args.key}"}
    # Renewals get their own connection and a timeout shorter than a third of the lease, so a slow renewal
    # never holds up the next one.
    renew_timeout = max(1.0, args.lease_seconds / 4)
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as client, \
            httpx.Client(base_url=args.base_url, headers=headers, timeout=renew_timeout) as renew_client:
        try:
            while True:
                if run_once(client, renew_client, limit=args.limit, lease_seconds=args.lease_seconds,
                            platform=args.platform, posted_file=args.posted_file,
                            platform_delay=args.platform_delay) == 0:
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
