"""AMQP errors with RabbitMQ's reply codes and texts (``CODE_NAME - detail``)."""

from __future__ import annotations

CONNECTION_FORCED = 320
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541

NAMES = {
    CONNECTION_FORCED: "CONNECTION_FORCED",
    ACCESS_REFUSED: "ACCESS_REFUSED",
    NOT_FOUND: "NOT_FOUND",
    RESOURCE_LOCKED: "RESOURCE_LOCKED",
    PRECONDITION_FAILED: "PRECONDITION_FAILED",
    FRAME_ERROR: "FRAME_ERROR",
    SYNTAX_ERROR: "SYNTAX_ERROR",
    COMMAND_INVALID: "COMMAND_INVALID",
    CHANNEL_ERROR: "CHANNEL_ERROR",
    UNEXPECTED_FRAME: "UNEXPECTED_FRAME",
    RESOURCE_ERROR: "RESOURCE_ERROR",
    NOT_ALLOWED: "NOT_ALLOWED",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    INTERNAL_ERROR: "INTERNAL_ERROR",
}

# The "hard" errors close the whole connection; the others (403-406) close only the channel.
CONNECTION_CODES = frozenset(
    {
        CONNECTION_FORCED,
        FRAME_ERROR,
        SYNTAX_ERROR,
        COMMAND_INVALID,
        CHANNEL_ERROR,
        UNEXPECTED_FRAME,
        RESOURCE_ERROR,
        NOT_ALLOWED,
        NOT_IMPLEMENTED,
        INTERNAL_ERROR,
    }
)


class AMQPError(Exception):
    """A protocol error: the channel (403-406) or the connection (5xx) is closed with it."""

    def __init__(self, code: int, detail: str, method: tuple[int, int] = (0, 0)) -> None:
        self.code = code
        self.text = f"{NAMES[code]} - {detail}"
        self.method = method
        super().__init__(self.text)

    @property
    def closes_connection(self) -> bool:
        """Whether this error closes the whole connection rather than one channel."""
        return self.code in CONNECTION_CODES


def not_found(kind: str, name: str, vhost: str) -> AMQPError:
    """404 as RabbitMQ words it: ``no queue 'q' in vhost '/'``."""
    return AMQPError(NOT_FOUND, f"no {kind} '{name}' in vhost '{vhost}'")


def inequivalent(arg: str, kind: str, name: str, vhost: str, received: object, current: object) -> AMQPError:
    """406 for a redeclare whose properties differ from the existing entity's."""
    return AMQPError(
        PRECONDITION_FAILED,
        f"inequivalent arg '{arg}' for {kind} '{name}' in vhost '{vhost}': "
        f"received {_show(received)} but current is {_show(current)}",
    )


def _show(value: object) -> str:
    # RabbitMQ prints booleans and strings quoted ('true', 'direct'), numbers and "none" bare.
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, str):
        return f"'{value}'"
    return f"the value '{value}' of type 'long'" if isinstance(value, int) else repr(value)
