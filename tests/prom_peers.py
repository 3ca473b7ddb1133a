"""Prometheus and vmagent as real processes: scrape a loopback exporter, remote-write it.

Both come from Debian packages (``prometheus``; ``vmagent`` is in ``victoria-metrics``).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from kemi_stats.stack.servers import ServerCommand, free_port
from tests.servers import RunningServer


class Exporter:
    """A prometheus_client exporter on 127.0.0.1 with a counter, a gauge and a histogram.

    With ``authorization`` (``Bearer <token>``, ``Basic <base64>``), it answers 401 to a
    request without that ``Authorization`` header.
    """

    def __init__(self, authorization: str = "") -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("app_requests", "Requests served", ["path"], registry=self.registry)
        self.temperature = Gauge("app_temperature_celsius", "A gauge", registry=self.registry)
        self.latency = Histogram("app_latency_seconds", "A histogram", buckets=(0.1, 1.0),
                                 registry=self.registry)  # fmt: skip
        self.port = free_port()
        if authorization:
            self.server = _authorized_server(self.port, self.registry, authorization)
            self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
            self.thread.start()
        else:
            self.server, self.thread = start_http_server(self.port, "127.0.0.1", self.registry)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving and close the socket, as a process that exits would."""
        self.server.shutdown()
        self.server.server_close()


def _authorized_server(
    port: int, registry: CollectorRegistry, authorization: str
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != authorization:
                self.send_error(401)
                return
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def scrape_config(target: str, job: str) -> dict[str, object]:
    return {"job_name": job, "scrape_interval": "1s", "static_configs": [{"targets": [target]}]}


@contextmanager
def prometheus(tmp: Path, target: str, job: str, url: str, token: str) -> Iterator[RunningServer]:
    """Prometheus scraping ``target`` every second and remote-writing to ``url``."""
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [scrape_config(target, job)],
        "remote_write": [
            {
                "url": url,
                "authorization": {"credentials": token},
                "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms"},
                "metadata_config": {"send": True, "send_interval": "1s"},
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    exe = shutil.which("prometheus") or "/usr/bin/prometheus"
    command = ServerCommand(
        "prometheus",
        [exe, f"--config.file={path}", f"--storage.tsdb.path={tmp / 'prom-data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        f"127.0.0.1:{port}",
        f"http://127.0.0.1:{port}/-/ready",
    )  # fmt: skip
    with _running(command, tmp / "prometheus.log") as server:
        yield server


@contextmanager
def vmagent(tmp: Path, target: str, job: str, url: str, token: str) -> Iterator[RunningServer]:
    """vmagent scraping ``target`` every second and remote-writing to ``url``."""
    path = tmp / "vmagent-scrape.yml"
    path.write_text(yaml.safe_dump({"scrape_configs": [scrape_config(target, job)]}))
    port = free_port()
    exe = shutil.which("vmagent") or "/usr/bin/vmagent"
    command = ServerCommand(
        "vmagent",
        [exe, f"-promscrape.config={path}", f"-remoteWrite.url={url}",
         f"-remoteWrite.bearerToken={token}", f"-remoteWrite.tmpDataPath={tmp / 'vmagent-data'}",
         "-remoteWrite.flushInterval=1s", f"-httpListenAddr=127.0.0.1:{port}"],
        f"127.0.0.1:{port}",
        f"http://127.0.0.1:{port}/health",
    )  # fmt: skip
    with _running(command, tmp / "vmagent.log") as server:
        yield server


@contextmanager
def _running(command: ServerCommand, log: Path) -> Iterator[RunningServer]:
    """``command`` started and healthy, stopped by pid afterwards."""
    server = RunningServer(command, log).start()
    try:
        yield server
    finally:
        server.stop()
