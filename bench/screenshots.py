"""Screenshots of the reviewer's pages at desk and phone sizes, for the README: ``python -m bench.screenshots
BASE_URL EMAIL PASSWORD [OUT_DIR [NAME=PATH ...]]`` against a running demo (``make demo``); each NAME=PATH adds
a page (a person's, whose id the demo chose: ``person=/people/31``). Uses Debian's chromium."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
SIZES = {"desk": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = {"queue": "/", "fairness": "/fairness", "audit": "/audit", "left-behind": "/left-behind", "merges": "/merges"}


async def shoot(base: str, email: str, password: str, out: Path, pages: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for size_name, size in SIZES.items():
            context = await browser.new_context(viewport=size, device_scale_factor=1,
                                                is_mobile=size_name == "phone", has_touch=size_name == "phone")
            page = await context.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#email", email)
            await page.fill("#password", password)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/")
            for name, path in pages.items():
                await page.goto(f"{base}{path}")
                await page.screenshot(path=str(out / f"{name}-{size_name}.png"))
            await context.close()
        await browser.close()


if __name__ == "__main__":
    extra = dict(arg.split("=", 1) for arg in sys.argv[5:])
    asyncio.run(shoot(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4] if len(sys.argv) > 4 else "docs"),
                      PAGES | extra))
