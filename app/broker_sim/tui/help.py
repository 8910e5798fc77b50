"""The help screen (``?``): every key, the words "routing key" and "binding", the legend."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from broker_sim.domain.scenario import Scenario

CONCEPTS = """\
## Routing key and binding

A **producer** never writes into a queue. It publishes to an **exchange**, giving each message a
**routing key** (the label on the arrow out of the producer). A **binding** connects an exchange to
a queue with a *binding key*, a pattern or a header rule (the label on each arrow into a queue).
The exchange compares the message's routing key (or headers) with every binding and copies the
message into each queue that matches:

* **direct** — binding key equals routing key (the default exchange binds every queue by its name);
* **fanout** — every bound queue, keys ignored;
* **topic** — dot-separated words, `*` is exactly one word, `#` zero or more;
* **headers** — header values, `x-match=all` (every one) or `any` (one is enough).

A message that matches no binding comes back to its producer (*returned*, because it is sent
*mandatory*). A consumer **acks** a message when its work is done; until then it is *unacked*.
If the consumer dies first, the broker delivers it again, flagged **redelivered**.

## The picture

`●` a message (one token per message; above ~25 msg/s one token stands for several, the counters
stay exact) · `○` a hop whose routing was **inferred** from a delivery because the broker's trace is
off (dashed arrows) · `◆` redelivered · red `●`/`↩` returned · `✓` acked · `✖` rejected or lost.
Tokens waiting under a queue's arrow are messages the queue holds; under a consumer's arrow, the
messages it holds unacked. Every move is something the broker or the client reported.
"""


class HelpScreen(ModalScreen[None]):
    """A modal page of help; any of ``escape``, ``?`` or ``q`` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "close help"),
    ]

    def __init__(self, keys: list[Binding], scenario: Scenario | None) -> None:
        super().__init__()
        self._keys = keys
        self._scenario = scenario

    def compose(self) -> ComposeResult:
        """The keys table, the concepts, this tab's story."""
        rows = ["# broker-sim help", "", "| key | what it does |", "|---|---|"]
        for binding in self._keys:
            key = binding.key_display or binding.key
            rows.append(f"| `{key}` | {binding.tooltip or binding.description} |")
        text = "\n".join(rows) + "\n\n" + CONCEPTS
        if self._scenario is not None:
            story = " ".join(self._scenario.help.split())
            text += f"\n## This tab: {self._scenario.title}\n\n{self._scenario.description}\n\n{story}\n"
        text += "\n*Close with `escape` or `?`.*\n"
        with VerticalScroll(id="help-body"):
            yield Markdown(text)

    async def action_dismiss(self, result: None = None) -> None:
        """Close the help."""
        self.dismiss(result)
