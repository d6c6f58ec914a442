"""Command line: ``python -m local_aws serve`` runs the stack; ``python -m local_aws deploy`` deploys a template."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from local_aws.deploy import DeployError, deploy_template
from local_aws.platform_lines import TEXT_GENERATIONS
from local_aws.stack import LocalAwsStack


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m local_aws", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level on stderr (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run moto behind one endpoint, with Lambda Invoke running real code")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    serve.add_argument("--port", type=int, default=4566, help="port to listen on; 0 picks a free one")
    serve.add_argument("--ingestion-delay", type=float, default=1.0, help="seconds before a log line is readable")
    serve.add_argument("--max-concurrency", type=int, default=10, help="invocations that may run at once")
    serve.add_argument("--region", default="us-east-1", help="region for unsigned requests")
    serve.add_argument("--deploy", metavar="TEMPLATE", help="deploy this SAM template once the stack is up")
    serve.add_argument("--function-timeout", type=int, help="with --deploy: override every function's Timeout")
    serve.add_argument(
        "--async-retry-delays",
        default="60,120",
        help="seconds before each retry of a failed asynchronous invocation, comma-separated (default 60,120)",
    )
    serve.add_argument(
        "--text-generation",
        choices=TEXT_GENERATIONS,
        default="2026",
        help="Lambda's text log lines of today (REPORT ... Status:) or of before 2026 ('Task timed out' lines)",
    )
    serve.add_argument(
        "--managed-instances-runtime-done",
        action="store_true",
        help="Managed Instances functions write platform.runtimeDone too (by default only start and report)",
    )

    serve.add_argument(
        "--durable-visibility-delay",
        type=float,
        default=0.0,
        help="seconds GetDurableExecution does not find an execution an Event invoke has just started (default 0)",
    )

    deploy = commands.add_parser("deploy", help="deploy the functions of a SAM template into a running stack")
    deploy.add_argument("--endpoint", required=True, help="the stack's URL, e.g. http://127.0.0.1:4566")
    deploy.add_argument("--template", default="template.yml", help="SAM template (default template.yml)")
    deploy.add_argument("--timeout", type=int, help="override every function's Timeout (seconds)")
    deploy.add_argument("--region", default="us-east-1")
    deploy.add_argument("--stack-name", default="local", help="value of AWS::StackName")
    deploy.add_argument(
        "--parameter", action="append", default=[], metavar="KEY=VALUE", help="template parameter value (repeatable)"
    )

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        delays = tuple(float(part) for part in args.async_retry_delays.split(",") if part.strip())
        stack = LocalAwsStack(
            args.host,
            args.port,
            ingestion_delay=args.ingestion_delay,
            max_concurrency=args.max_concurrency,
            region=args.region,
            async_retry_delays=delays,
            text_generation=args.text_generation,
            durable_visibility_delay=args.durable_visibility_delay,
            managed_instances_runtime_done=args.managed_instances_runtime_done,
        )
        return _serve(stack, args.deploy, args.function_timeout, args.region)
    return _deploy(args)


def _serve(stack: LocalAwsStack, template: str | None, function_timeout: int | None, region: str) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    try:
        # The first line of stdout is the contract with scripts that start the stack on port 0.
        print(f"local_aws listening on {stack.endpoint_url}", flush=True)
        if template:
            try:
                deployed = deploy_template(stack.endpoint_url, template, region=region, timeout=function_timeout)
            except DeployError as err:
                print(f"deploy failed: {err}", file=sys.stderr)
                return 1
            names = ", ".join(function.function_name for function in deployed)
            logging.getLogger(__name__).info("Deployed %s from %s", names, template)
        while not stop.wait(1.0):
            pass
    finally:
        logging.getLogger(__name__).info("Stopping local_aws")
        stack.stop()
    return 0


def _deploy(args: argparse.Namespace) -> int:
    parameters = {}
    for item in args.parameter:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--parameter {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        parameters[key] = value
    try:
        deployed = deploy_template(
            args.endpoint,
            args.template,
            region=args.region,
            timeout=args.timeout,
            stack_name=args.stack_name,
            parameters=parameters,
        )
    except DeployError as err:
        print(f"deploy failed: {err}", file=sys.stderr)
        return 1
    print(json.dumps([dataclasses.asdict(function) for function in deployed], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
