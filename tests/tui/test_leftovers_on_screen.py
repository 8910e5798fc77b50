"""Jobs an earlier run left in the durable work queue: said in the log and the counters, marked."""

from __future__ import annotations

import uuid

from broker_sim.settings import Settings
from tests.support import earlier_run_queue
from tests.tui.harness import app_on, until_screen
from tests.tui.test_live import screen_text


async def test_an_earlier_runs_jobs_are_named_as_such(settings: Settings) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    async with (
        earlier_run_queue(settings.url, f"{prefix}work-queue.image-jobs", 2),
        app_on(settings, "work-queue", prefix=prefix) as (_app, tab, w, pilot),
    ):
        await w.until(lambda: tab.view.leftover == {"image-jobs": 2}, "the engine saying so")
        await until_screen(
            pilot,
            lambda: "from an earlier run: image-jobs 2" in screen_text(tab, "#counters"),
            "the counters naming the earlier run's jobs",
        )
        log = [line.text for line in tab.view.log]
        assert any("image-jobs already held 2 messages from an earlier run" in line for line in log)
        # their hops in the log say whose they are; this run's do not
        assert tab.view.label_of("0ldrun00.server.1") == "server#1 (earlier run)"
        assert tab.view.label_of(f"{tab.view.run_id}.main-server.1") == "main-server#1"
