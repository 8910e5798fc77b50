"""The command line: ``broker-sim`` (the TUI), ``broker-sim run FILE`` (headless)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from broker_sim.domain.urls import BrokerUrlError, parse_url
from broker_sim.settings import Settings, load_settings


def _add_broker_options(parser: argparse.ArgumentParser, default: object) -> None:
    from broker_sim.broker.resolve import BROKER_KINDS

    # Given to the main parser and to each subcommand, so options work before or after it;
    # a subcommand's copies default to SUPPRESS so they never overwrite the main ones.
    parser.add_argument(
        "--url",
        default=default,
        help="broker URL, amqp://user:pass@host:port/vhost (default: $BROKER_SIM_URL, "
        "then .env, then amqp://guest:guest@localhost:5672/)",
    )
    parser.add_argument(
        "--vhost",
        metavar="NAME",
        default=default,
        help="the vhost to run in when the URL names none (default: $BROKER_SIM_VHOST, then .env, "
        "then the one you chose before for this broker, then /)",
    )
    parser.add_argument(
        "--broker",
        choices=BROKER_KINDS,
        default=default if default is not None else "auto",
        help="auto: the URL, else the embedded broker when nothing answers at the default URL; "
        "embedded: broker-sim's own; local: a private RabbitMQ node from this machine's rabbitmq-server; "
        "docker: a throwaway RabbitMQ container",
    )
    parser.add_argument(
        "--data-dir",
        dest="app_data_dir",  # not data_dir: `broker-sim broker --data-dir` is the broker's own option
        type=Path,
        metavar="DIR",
        default=default,
        help="where broker-sim keeps its log, the embedded broker's store and private nodes "
        "(default: $BROKER_SIM_DATA_DIR, then the user's data folder); "
        "two broker-sims running at once need one each",
    )
    parser.add_argument(
        "--management-url",
        metavar="URL",
        default=default,
        help="the broker's management API, for the inspector's broker figures, e.g. "
        "https://host:15671/ (default: $BROKER_SIM_MANAGEMENT_URL, then port 15672 on the broker's "
        "host when it is this machine); its password, if any, is never shown",
    )
    trace = parser.add_mutually_exclusive_group()
    trace.add_argument(
        "--trace",
        dest="trace",
        action="store_true",
        default=default,
        help="turn on the broker's firehose tracing for the vhost (shows routing as the broker decided it)",
    )
    trace.add_argument(
        "--no-trace",
        dest="trace",
        action="store_false",
        default=default,
        help="never touch tracing; routing is then inferred from deliveries",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="broker-sim",
        description="See how RabbitMQ moves messages: live AMQP patterns, animated in the terminal.",
    )
    _add_broker_options(parser, None)
    parser.add_argument(
        "--scenarios",
        type=Path,
        metavar="DIR",
        help="a folder of your own scenario files, added as tabs",
    )
    parser.add_argument(
        "--api-port",
        type=int,
        metavar="N",
        help="let the work queue's main server take image uploads: POST /jobs on 127.0.0.1:N",
    )
    parser.add_argument(
        "--no-animation",
        action="store_true",
        help="counters only, no moving tokens (slow terminals)",
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser(
        "run",
        help="run one scenario headless and print a report",
        epilog="exit codes: 0 every expectation held, 1 one failed, 2 a bad file or option, "
        "3 no broker (none answered, it refused the login or the scenario, or it did not start)",
    )
    _add_broker_options(run, argparse.SUPPRESS)
    run.add_argument("file", type=Path, help="scenario file (TOML)")
    run.add_argument("--duration", type=float, help="seconds to run (default: the scenario's, else 10)")
    run.add_argument("--speed", type=float, default=1.0, help="replay speed, 0.25 to 10 (default 1)")
    run.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    from broker_sim.embedded.main import add_arguments as add_broker_arguments  # argparse only: light

    add_broker_arguments(sub.add_parser("broker", help="run the embedded AMQP broker on its own"))
    export = sub.add_parser("export", help="write a scenario's topology as RabbitMQ definitions JSON")
    export.add_argument("file", type=Path, help="scenario file (TOML)")
    export.add_argument("--vhost", default="/", help="vhost to put in the definitions (default /)")
    export.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    return parser


def _export(args: argparse.Namespace) -> int:
    import json

    from broker_sim.domain.definitions import to_definitions
    from broker_sim.domain.scenario_file import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        print(f"broker-sim: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(to_definitions(scenario, args.vhost), indent=2) + "\n"
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            print(f"broker-sim: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(
            f"broker-sim: wrote {args.output} (import it in the management UI or with "
            "rabbitmqctl import_definitions)",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def build_settings(args: argparse.Namespace) -> Settings:
    """Settings from parsed arguments (flag > environment > .env > default)."""
    settings = load_settings(
        args.url,
        trace=args.trace,
        animation=not args.no_animation,
        scenarios_dir=args.scenarios,
        api_port=getattr(args, "api_port", None),
        broker=args.broker,
        data_dir=args.app_data_dir,
        vhost=args.vhost,
        management_url=args.management_url,
    )
    parse_url(settings.url)  # refuse a malformed URL before anything starts
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``broker-sim`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "broker":
        from broker_sim.embedded.main import run as run_broker

        if args.data_dir is None and args.app_data_dir is not None:  # `broker-sim --data-dir D broker`
            args.data_dir = args.app_data_dir / "embedded"  # where the app keeps its embedded broker
        return run_broker(args)
    try:
        settings = build_settings(args)
    except BrokerUrlError as exc:
        print(f"broker-sim: {exc}", file=sys.stderr)
        return 2
    from broker_sim.logs import configure_logging

    configure_logging(settings.data_dir)
    if args.command == "export":
        return _export(args)
    if args.command == "run":
        from broker_sim.headless import run_headless

        if args.json is not None and not args.json.resolve().parent.is_dir():
            print(f"broker-sim: --json {args.json}: no such folder", file=sys.stderr)
            return 2
        try:
            return asyncio.run(
                run_headless(
                    args.file, settings, duration=args.duration, speed=args.speed, json_path=args.json
                )
            )
        except KeyboardInterrupt:
            print("\nbroker-sim: interrupted", file=sys.stderr)
            return 130
    from broker_sim.tui.app import make_app

    try:
        app = make_app(settings)
    except ValueError as exc:  # a bad --scenarios folder or file: one line, no traceback
        print(f"broker-sim: {exc}", file=sys.stderr)
        return 2
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
