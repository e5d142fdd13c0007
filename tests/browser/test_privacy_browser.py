"""An admin answers a person's privacy requests from the person's page: the export downloads, the erasure asks
for the person's number first, and afterwards the person is gone from the pages. Reviewers see neither."""

from __future__ import annotations

import json

from tests.browser.conftest import sign_in
from tests.support.review_helpers import post_mention


async def test_an_admin_exports_then_erases_a_person_from_their_page(page, live_server, client, factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person_id = (await post_mention(client, kit, handle="@leaving", text="@acme please forget my parcel story"))[
        "person_id"]
    await sign_in(page, live_server, kit.admin_email, kit.password)
    await page.goto(f"{live_server}/people/{person_id}")

    link = page.locator("text=Export everything we hold about this person")
    answer = await page.request.get(live_server + await link.get_attribute("href"))
    assert answer.status == 200 and "attachment" in answer.headers["content-disposition"]
    exported = json.loads(await answer.text())
    assert exported["person_id"] == person_id
    assert [i["text"] for i in exported["tables"]["interactions"]] == ["@acme please forget my parcel story"]

    await page.fill("#erase-confirm", str(person_id + 1))
    await page.click("button.danger:has-text('Erase')")
    assert "this person's number" in await page.content(), "a wrong number erases nothing and says why"
    await page.goto(f"{live_server}/people/{person_id}")
    await page.fill("#erase-confirm", str(person_id))
    await page.click("button.danger:has-text('Erase')")
    await page.wait_for_url(f"{live_server}/?notice=erased")
    assert "The person was erased" in await page.content()
    gone = await page.goto(f"{live_server}/people/{person_id}")
    assert gone is not None and gone.status == 404


async def test_a_reviewer_sees_no_privacy_controls_and_cannot_use_them(page, live_server, client, factory) -> None:  # type: ignore[no-untyped-def]
    kit = await factory.brand()
    person_id = (await post_mention(client, kit, handle="@staying"))["person_id"]
    await sign_in(page, live_server, kit.reviewer_email, kit.password)
    await page.goto(f"{live_server}/people/{person_id}")
    assert await page.locator("#erase-confirm").count() == 0
    assert await page.locator("text=Export everything").count() == 0
    refused = await page.goto(f"{live_server}/people/{person_id}/export")
    assert refused is not None and refused.status == 403
    still = await page.goto(f"{live_server}/people/{person_id}")
    assert still is not None and still.status == 200
