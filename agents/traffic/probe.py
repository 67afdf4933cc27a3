"""New-connection probe: every N ms an unmodified real client (curl) opens a fresh connection to a URL.

This measures what users of unmodified applications see after a failure (thesis 6.3.1): does a *new*
connection from this source address to this destination work, and how long does connecting take.
Probes start on schedule even while earlier ones still wait for their ``--connect-timeout``, so the
sampling rate does not drop during an outage.  ``serve`` is the matching tiny HTTP server.

    python -m agents.traffic.probe serve --bind ::1 --port 8080 --log srv.jsonl
    python -m agents.traffic.probe curl --url http://[::1]:8080/ --src ::1 --interval-ms 200 --log p.jsonl
"""

from __future__ import annotations

import argparse
import http.server
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from .common import EventLog, StopCondition, agent_parser, common_options, family_of, os_error_fields, run_agent


@dataclass
class RunningProbe:
    """One curl in flight."""

    n: int
    started: float
    proc: subprocess.Popen[str]


def curl_argv(args: argparse.Namespace) -> list[str]:
    """The curl command line: no globbing (IPv6 brackets), no body, a JSON summary on stdout."""
    argv = ["curl", "--silent", "--show-error", "--globoff", "--output", "/dev/null",
            "--connect-timeout", f"{args.connect_timeout_ms / 1000:g}", "--max-time", f"{args.max_time_ms / 1000:g}",
            "--write-out", "%{json}"]
    if args.src:
        argv += ["--interface", args.src]
    return argv + [args.url]


def probe_result(probe: RunningProbe, stdout: str, stderr: str) -> dict[str, object]:
    """Fields of a finished probe from curl's ``--write-out %{json}`` (curl >= 7.75) and exit code."""
    try:
        info = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    except (json.JSONDecodeError, IndexError):
        info = {}
    code = probe.proc.returncode
    http_code = int(info.get("http_code") or 0)
    ok = code == 0 and 200 <= http_code < 400
    connect_s = float(info.get("time_connect") or 0.0)
    return {
        "n": probe.n, "started": round(probe.started, 6), "ok": ok, "exit": code, "http_code": http_code,
        "connect_ms": round(connect_s * 1000, 3) if connect_s > 0 else None,
        "total_ms": round(float(info.get("time_total") or 0.0) * 1000, 3),
        "local": info.get("local_ip") or None, "remote": info.get("remote_ip") or None,
        "error": None if ok else (info.get("errormsg") or stderr.strip() or f"curl exit {code}"),
    }


def run_client(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Start a curl every ``--interval-ms``; log each one when it finishes; abort the rest at stop."""
    period = args.interval_ms / 1000.0
    running: list[RunningProbe] = []
    started = ok = 0
    next_start = time.monotonic()
    while not stop:
        if time.monotonic() >= next_start:
            started += 1
            proc = subprocess.Popen(curl_argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            running.append(RunningProbe(started, time.time(), proc))
            next_start += period
        for probe in [p for p in running if p.proc.poll() is not None]:
            running.remove(probe)
            out, err = probe.proc.communicate()
            result = probe_result(probe, out, err)
            ok += bool(result["ok"])
            log.write("probe", **result)
        time.sleep(max(0.0, min(0.005, next_start - time.monotonic(), stop.remaining())))
    for probe in running:
        probe.proc.terminate()
        probe.proc.communicate()
        log.write("probe_aborted", n=probe.n, started=round(probe.started, 6))
    return {"probes": started - len(running), "ok": ok, "aborted": len(running)}


def handler_class(log: EventLog) -> type[http.server.BaseHTTPRequestHandler]:
    """A handler answering every GET with 200 "ok" and logging the request (who connected from where)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            log.write("request", peer=self.client_address[0], local=self.connection.getsockname()[0],
                      path=self.path)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base)
            """Silence the default stderr access log; requests are in the event log."""

    return Handler


def run_server(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Serve until stopped; the listen event carries the bound port (``--port 0`` picks one)."""

    class Server(http.server.ThreadingHTTPServer):
        address_family = family_of(args.bind)
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:  # noqa: ANN001 (socketserver's signature)
            """A client gone mid-request (a curl past its --max-time, a path cut by a fault) is an event of
            the flow, logged as such, not a server error with a traceback on stderr."""
            exc = sys.exc_info()[1]
            if isinstance(exc, ConnectionError):
                log.write("request_aborted", peer=client_address[0], **os_error_fields(exc))
            else:
                super().handle_error(request, client_address)

    server = Server((args.bind, args.port), handler_class(log))
    log.write("listen", addr=args.bind, port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    while not stop:
        time.sleep(min(0.05, stop.remaining()))
    server.shutdown()
    server.server_close()
    return {}


def parser() -> argparse.ArgumentParser:
    p, roles = agent_parser("probe", __doc__)
    client = roles.add_parser("curl", parents=[common_options()], help="run a fresh curl every --interval-ms")
    client.add_argument("--url", required=True, help="target URL, e.g. http://[2001:db8::1]:8080/")
    client.add_argument("--src", default=None, help="source address (curl --interface)")
    client.add_argument("--interval-ms", type=float, default=200.0, help="ms between probe starts (default 200)")
    client.add_argument("--connect-timeout-ms", type=float, default=1000.0, help="curl --connect-timeout, in ms")
    client.add_argument("--max-time-ms", type=float, default=2000.0, help="curl --max-time, in ms")
    serve = roles.add_parser("serve", parents=[common_options()], help="tiny HTTP server answering 200 ok")
    serve.add_argument("--bind", required=True, help="local address (literal)")
    serve.add_argument("--port", type=int, required=True, help="TCP port (0 = any; the listen event says which)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_agent("probe", parser(), {"curl": run_client, "serve": run_server}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
