"""Small datasets of past conversations for ``assistant eval``: the support-tweet CSV layout and NDJSON, made
here (no download), with real-looking support exchanges. Each customer writes, the brand answers; some
customers come back later, so later cases have history. Order numbers are per customer, so a draft that
carries another customer's number is a leak the eval must see."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

BRAND = "AcmeCares"
START = dt.datetime(2017, 10, 31, 9, 0, tzinfo=dt.timezone.utc)

EXCHANGES = [
    ("@AcmeCares my order {order} still hasn't shipped, it's been a week",
     "@{h} Sorry for the wait! Order {order} leaves our warehouse today; tracking follows by email."),
    ("@AcmeCares the app logs me out every time I open it",
     "@{h} That's annoying, sorry. Please update to the latest version; it fixes the logout loop."),
    ("@AcmeCares can I change the delivery address on {order}?",
     "@{h} Yes: reply with the new address in a DM and we'll update {order} before it ships."),
    ("@AcmeCares thanks for the quick refund, you guys rock",
     "@{h} Happy we could help! Enjoy the rest of your week."),
    ("@AcmeCares my package {order} arrived damaged",
     "@{h} Oh no, sorry! Send us a photo by DM and we'll ship a replacement for {order} right away."),
]
FOLLOW_UP = ("@AcmeCares still waiting on {order}, any news?",
             "@{h} Checked just now: {order} is with the courier and arrives tomorrow.")


def conversations(count: int) -> list[dict]:
    """``count`` brand replies' worth of messages, oldest first: every third customer comes back later."""
    messages: list[dict] = []
    tweet = 1000
    customer = 0
    replies = 0
    while replies < count:
        customer += 1
        handle = f"cust{customer:03d}"
        order = f"#{40000 + customer * 7}"
        at = START + dt.timedelta(hours=customer)
        inbound, reply = EXCHANGES[customer % len(EXCHANGES)]
        exchanges = [(inbound, reply)] + ([FOLLOW_UP] if customer % 3 == 0 else [])
        for n, (said, answered) in enumerate(exchanges):
            if replies >= count:
                break
            mention_at = at + dt.timedelta(days=2 * n)
            tweet += 1
            mention_id = tweet
            messages.append({"id": mention_id, "author": handle, "inbound": True, "at": mention_at,
                             "text": said.format(order=order, h=handle), "parent": None})
            tweet += 1
            messages.append({"id": tweet, "author": BRAND, "inbound": False, "at": mention_at + dt.timedelta(minutes=9),
                             "text": answered.format(order=order, h=handle), "parent": mention_id,
                             "customer": handle})
            replies += 1
    return messages


def write_csv(path: Path, count: int) -> Path:
    """The support-tweet dump layout ``assistant import`` reads."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id",
                     "in_response_to_tweet_id"])
    for m in conversations(count):
        writer.writerow([m["id"], m["author"], "True" if m["inbound"] else "False",
                         m["at"].strftime("%a %b %d %H:%M:%S +0000 %Y"), m["text"], "", m["parent"] or ""])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def write_ndjson(path: Path, count: int) -> Path:
    """The NDJSON history layout ``assistant import`` reads."""
    lines = []
    for m in conversations(count):
        line = {"direction": "inbound" if m["inbound"] else "outbound", "platform": "x",
                "external_id": str(m["id"]), "text": m["text"], "created_at": m["at"].isoformat()}
        if m["inbound"]:
            line["author"] = {"handle": m["author"], "display_name": m["author"].title()}
        else:
            line["in_reply_to"] = str(m["parent"])
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
