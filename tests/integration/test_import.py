"""History import: the NDJSON endpoint, the command line, and the tweet-dump CSV layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from assistant.db import Database
from assistant.db.jobs import Job
from assistant.db.people import Interaction, Person
from assistant.db.turns import Turn
from assistant.people.importer import Record, import_records, parse_tweet_csv

NDJSON = {"Content-Type": "application/x-ndjson"}


def line(external_id: str, direction: str = "inbound", *, handle: str = "@ana", text: str = "hello",
         at: str = "2019-05-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"direction": direction, "platform": "x", "external_id": external_id, "text": text,
                            "created_at": at}
    if direction == "inbound":
        body["author"] = {"handle": handle, "display_name": handle.lstrip("@").title()}
    body.update(extra)
    return body


def ndjson(*items: dict[str, Any] | str) -> bytes:
    return "\n".join(i if isinstance(i, str) else json.dumps(i) for i in items).encode() + b"\n"


async def count(db: Database, model: Any) -> int:
    return await db.run_read(lambda conn: int(conn.execute(select(func.count()).select_from(model)).scalar() or 0))


async def stored(db: Database, model: Any) -> list[Any]:
    """Every row of ``model``'s table, as plain rows."""
    return await db.run_read(lambda conn: list(conn.execute(select(model.__table__)).all()))


async def test_import_links_replies_to_their_person_and_creates_no_turns(client, factory, db) -> None:
    brand = await factory.brand()
    body = ndjson(
        line("1", handle="@Ana", text="my order never came", conversation_id="1"),
        line("2", "outbound", text="Sorry Ana, DM us", in_reply_to="1", at="2019-05-01T10:05:00Z"),
        line("3", handle="ana", text="thanks!", in_reply_to="2", at="2019-05-01T10:07:00Z"),
        line("4", "outbound", text="welcome to the club", recipient={"handle": "@Bo"}, at="2019-05-02T09:00:00Z"),
    )
    response = await client.post("/api/v1/history/import", content=body, headers=brand.ingest | NDJSON)
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 4, "duplicates": 0, "invalid": []}

    rows = {i.external_id: i for i in await stored(db, Interaction)}
    people = {p.id: p for p in await stored(db, Person)}
    assert rows["2"].person_id == rows["1"].person_id == rows["3"].person_id
    assert rows["2"].direction == "outbound" and rows["2"].in_reply_to == "1"
    assert rows["3"].conversation_key == "1" and rows["2"].conversation_key == "1"
    assert rows["4"].person_id != rows["1"].person_id
    ana = people[rows["1"].person_id]
    assert (ana.mention_count, ana.reply_count) == (2, 1)
    assert ana.first_seen_at.isoformat() == "2019-05-01T10:00:00+00:00"
    assert ana.last_seen_at.isoformat() == "2019-05-01T10:07:00+00:00"
    assert all(r.turn_id is None for r in rows.values())
    assert await count(db, Turn) == 0 and await count(db, Job) == 0

    history = await client.get(f"/api/v1/people/{ana.id}/history", headers=brand.read)
    assert [i["external_id"] for i in history.json()["items"]] == ["3", "2", "1"]
    assert [i["kind"] for i in history.json()["items"]] == ["mention", "reply", "mention"]


async def test_import_again_counts_duplicates_and_stores_nothing_twice(client, factory, db) -> None:
    brand = await factory.brand()
    body = ndjson(line("1"), line("2", "outbound", in_reply_to="1"), line("1"))
    first = await client.post("/api/v1/history/import", content=body, headers=brand.ingest | NDJSON)
    assert first.json() == {"imported": 2, "duplicates": 1, "invalid": []}
    again = await client.post("/api/v1/history/import", content=body, headers=brand.ingest | NDJSON)
    assert again.json() == {"imported": 0, "duplicates": 3, "invalid": []}
    assert await count(db, Interaction) == 2
    [person] = await stored(db, Person)
    assert (person.mention_count, person.reply_count) == (1, 1)


async def test_invalid_lines_are_reported_by_number_and_never_sink_the_file(client, factory, db) -> None:
    brand = await factory.brand()
    body = ndjson(
        line("1"),                                               # 1 ok
        "{not json",                                             # 2 malformed
        line("3", text=""),                                      # 3 empty text
        line("4", created_at="yesterday"),                       # 4 bad date
        line("5", "outbound"),                                   # 5 outbound with no person
        line("6", colour="red"),                                 # 6 unknown field
        "",                                                      # 7 blank: skipped
        line("8", handle="<script>"),                            # 8 markup in a handle
        line("9", direction="sideways"),                         # 9 unknown direction
        line("10", "outbound", in_reply_to="nowhere"),           # 10 parent nowhere
        line("11", text="a\u0000b"),                             # 11 NUL
        line("12", "outbound", in_reply_to="1"),                 # 12 ok
    )
    response = await client.post("/api/v1/history/import", content=body, headers=brand.ingest | NDJSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["imported"] == 2 and result["duplicates"] == 0
    by_line = {i["line"]: i["errors"][0]["field"] for i in result["invalid"]}
    assert by_line == {2: "line", 3: "text", 4: "created_at", 5: "recipient", 6: "colour", 8: "author.handle",
                       9: "direction", 10: "in_reply_to", 11: "text"}
    assert await count(db, Interaction) == 2


async def test_reply_before_its_parent_in_the_file_is_linked(client, factory, db) -> None:
    brand = await factory.brand()
    body = ndjson(line("2", "outbound", in_reply_to="1"), line("1", handle="@zoe"))
    response = await client.post("/api/v1/history/import", content=body, headers=brand.ingest | NDJSON)
    assert response.json() == {"imported": 2, "duplicates": 0, "invalid": []}
    persons = {i.person_id for i in await stored(db, Interaction)}
    assert len(persons) == 1


async def test_reply_to_a_live_mention_in_the_database_joins_that_person(client, factory, db) -> None:
    from tests.support.factories import mention

    brand = await factory.brand()
    accepted = await client.post("/api/v1/mentions", json=mention("m1", handle="@kim"), headers=brand.ingest)
    assert accepted.status_code == 202
    response = await client.post("/api/v1/history/import", content=ndjson(line("r1", "outbound", in_reply_to="m1")),
                                 headers=brand.ingest | NDJSON)
    assert response.json()["imported"] == 1
    [reply] = [i for i in await stored(db, Interaction) if i.external_id == "r1"]
    assert reply.person_id == accepted.json()["person_id"]


@pytest.mark.parametrize("headers, status", [({}, 401), ("read", 403), ("outbox", 403)])
async def test_import_needs_the_ingest_scope(client, factory, db, headers, status) -> None:
    brand = await factory.brand()
    auth = getattr(brand, headers) if isinstance(headers, str) else headers
    response = await client.post("/api/v1/history/import", content=ndjson(line("1")), headers=auth | NDJSON)
    assert response.status_code == status
    assert await count(db, Interaction) == 0


async def test_import_body_over_one_mebibyte_is_413_and_stores_nothing(client, factory, db) -> None:
    brand = await factory.brand()
    many = ndjson(*(line(str(n), text="x" * 500) for n in range(2500)))
    assert len(many) > 1024 * 1024
    response = await client.post("/api/v1/history/import", content=many, headers=brand.ingest | NDJSON)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await count(db, Interaction) == 0


async def test_import_of_another_media_type_is_400(client, factory, db) -> None:
    brand = await factory.brand()
    response = await client.post("/api/v1/history/import", content=b"<xml/>",
                                 headers=brand.ingest | {"Content-Type": "application/xml"})
    assert response.status_code == 400
    assert await count(db, Interaction) == 0


async def test_invalid_utf8_line_is_reported_alone(client, factory, db) -> None:
    brand = await factory.brand()
    body = ndjson(line("1")) + b'{"direction": "inbound", "text": "\xff\xfe"}\n' + ndjson(line("3", handle="@b"))
    response = await client.post("/api/v1/history/import", content=body, headers=brand.ingest | NDJSON)
    assert response.status_code == 200
    assert response.json()["imported"] == 2
    assert [i["line"] for i in response.json()["invalid"]] == [2]


CSV = '''tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id
1,sprintcare,False,Tue Oct 31 22:10:47 +0000 2017,"@115712 I understand &amp; I'd like to help.
Please DM us.",2,3
3,115712,True,Tue Oct 31 22:08:27 +0000 2017,@sprintcare is the worst &lt;3,1,
2,115712,True,Tue Oct 31 22:11:45 +0000 2017,@sprintcare and how do you propose we do that,,1
4,115713,True,not a date,@sprintcare hello,,
5,sprintcare,False,Tue Oct 31 22:12:45 +0000 2017,@115712 Thanks!,,2
6,sprintcare,False,Tue Oct 31 22:13:45 +0000 2017,Big news everyone,,
'''


def test_tweet_dump_csv_via_the_command(tmp_path: Path, settings, cli) -> None:
    import asyncio

    path = tmp_path / "twcs.csv"
    path.write_text(CSV)
    assert cli("brands", "create", "sprint", "--name", "Sprint").exit_code == 0
    result = cli("import", str(path), "--brand", "sprint")
    again = cli("import", str(path), "--brand", "sprint")
    unknown = cli("import", str(path), "--brand", "nobody")
    assert result.exit_code == 0, result.output
    assert "imported 4, duplicates 0, invalid 2" in result.output
    assert f"{path}:6:" in result.output and "created_at" in result.output  # the row after a two-line row
    assert f"{path}:8:" in result.output and "customer" in result.output
    assert "rows/s" in result.output
    assert "imported 0, duplicates 4, invalid 2" in again.output
    assert unknown.exit_code == 1 and "no brand" in unknown.output

    async def interactions_and_turns() -> tuple[dict[str, Any], int]:
        db = Database(settings.database_url)
        try:
            return {i.external_id: i for i in await stored(db, Interaction)}, await count(db, Turn)
        finally:
            await db.dispose()

    rows, turns = asyncio.run(interactions_and_turns())
    assert len(rows) == 4 and turns == 0
    assert rows["1"].text == "@115712 I understand & I'd like to help.\nPlease DM us."
    assert rows["3"].text == "@sprintcare is the worst <3"
    assert rows["1"].direction == "outbound" and rows["1"].in_reply_to == "3"
    assert {r.conversation_key for r in rows.values()} == {"3"}
    assert len({r.person_id for r in rows.values()}) == 1
    assert rows["3"].occurred_at.isoformat() == "2017-10-31T22:08:27+00:00"


def test_csv_parser_computes_thread_roots_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    path.write_text(CSV)
    records = [r for r in parse_tweet_csv(path) if isinstance(r, Record)]
    assert {r.external_id: r.conversation for r in records} == {"1": "3", "3": "3", "2": "3", "5": "3"}
    assert {r.external_id: r.handle for r in records if r.direction == "outbound"} == {"1": "115712", "5": "115712"}


async def test_chunks_commit_independently_and_link_across_chunks(factory, db) -> None:
    import datetime as dt

    brand = await factory.brand()
    at = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    records = []
    for n in range(50):
        records.append(Record(line=2 * n + 1, direction="inbound", platform="x", external_id=f"in{n}", text="hi",
                              at=at, handle=f"p{n % 7}"))
        records.append(Record(line=2 * n + 2, direction="outbound", platform="x", external_id=f"out{n}", text="yo",
                              at=at + dt.timedelta(minutes=1), handle=None, in_reply_to=f"in{n}"))
    records.insert(0, records.pop())  # the last reply comes first: its parent arrives in a later chunk
    report = await import_records(db, brand.id, records, chunk_rows=7)
    assert (report.imported, report.duplicates, report.invalid) == (100, 0, [])
    people = await stored(db, Person)
    assert len(people) == 7
    assert sum(p.mention_count for p in people) == 50 and sum(p.reply_count for p in people) == 50
