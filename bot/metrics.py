"""Operators' metrics (`GET /metrics`, Prometheus text format): what the bot is doing and how its calls fare.

Two kinds, both named `playbooks_*` (as the Playbooks plugin's server/metrics/metrics.go where they overlap:
runs_active_total, runs_finished_total, reminders_outstanding_total, retros_outstanding_total):
- **From the database, at scrape time** (`DatabaseCollector` over `storage.metrics.snapshot`): runs in
  progress, started and finished, reminders and retrospectives outstanding, active participants and
  followers. Every bot process sharing the database answers the same numbers, so a scrape of any replica
  (or of all of them) tells the truth; no process keeps a count that a restart would lose.
- **Per process** (`ProcessMetrics`): Mattermost API call latency and failures by gateway method and
  status, outgoing webhook deliveries that failed, requests Mattermost sent the bot by kind. Counters
  restart at zero with the process, as Prometheus expects (`rate()` handles resets).

Each bot has its own `CollectorRegistry` (never prometheus_client's global one), so two bots in one
process (tests) count separately.
"""
from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage.metrics import Snapshot

# The classic text format (names are plain ASCII, escaped to underscores), which every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Mattermost answers in milliseconds to a few seconds; the gateway's timeout is 30 s by default.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ProcessMetrics:
    """This process's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.mattermost_seconds = Histogram(
            "playbooks_mattermost_request_duration_seconds",
            "Time of each Mattermost API call (one HTTP attempt), by gateway method and HTTP status "
            "(200: any success; 0: no answer).", ["method", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.mattermost_errors = Counter(
            "playbooks_mattermost_errors",
            "Mattermost API calls that failed (each attempt), by gateway method and HTTP status (0: no answer).",
            ["method", "status"], registry=self.registry)
        self.webhook_failures = Counter(
            "playbooks_webhook_delivery_failures",
            "Outgoing webhook deliveries that failed after all their retries, by event.",
            ["event"], registry=self.registry)
        self.requests = Counter(
            "playbooks_requests",
            "Requests Mattermost sent the bot and that were dispatched, by kind (command, click, dialog).",
            ["kind"], registry=self.registry)

    def mattermost_call(self, method: str, status: int, seconds: float) -> None:
        self.mattermost_seconds.labels(method, str(status)).observe(seconds)
        if status == 0 or status >= 400:
            self.mattermost_errors.labels(method, str(status)).inc()

    def webhook_failed(self, event: str) -> None:
        self.webhook_failures.labels(event).inc()

    def request(self, kind: str) -> None:
        self.requests.labels(kind).inc()


class DatabaseCollector(Collector):
    """The gauges (and row-derived counters) of one database snapshot; None when the database did not
    answer, which `playbooks_database_up 0` says instead of numbers that would be wrong."""

    def __init__(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily("playbooks_database_up", "1 when the database answered this scrape, else 0.",
                                value=1 if s is not None else 0)
        if s is None:
            return
        yield GaugeMetricFamily("playbooks_runs_active_total", "Runs in progress.", value=s.runs_active)
        yield CounterMetricFamily("playbooks_runs_created", "Runs started (in progress or finished), from the rows.",
                                  value=s.runs_created)
        yield GaugeMetricFamily("playbooks_runs_finished_total", "Runs finished (a restored run leaves the count "
                                "until it is finished again).", value=s.runs_finished)
        yield GaugeMetricFamily("playbooks_reminders_outstanding_total",
                                "Status-update reminders armed on runs in progress.", value=s.reminders_outstanding)
        yield GaugeMetricFamily("playbooks_reminders_due_total",
                                "Status-update reminders due now and not yet posted.", value=s.reminders_due)
        yield GaugeMetricFamily("playbooks_status_updates_overdue_total",
                                "Runs in progress whose status update is overdue (last update, or the start, "
                                "plus the reminder interval is past).", value=s.updates_overdue)
        yield GaugeMetricFamily("playbooks_retros_outstanding_total",
                                "Finished runs whose retrospective is neither published nor cancelled.",
                                value=s.retros_outstanding)
        yield GaugeMetricFamily("playbooks_active_participants_total",
                                "Distinct people taking part in runs in progress.", value=s.active_participants)
        yield GaugeMetricFamily("playbooks_active_followers_total",
                                "Distinct people following runs in progress.", value=s.active_followers)


class _Scrape(Collector):
    """One scrape's view: the process registry and the database's snapshot (what generate_latest reads)."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(process: ProcessMetrics, snapshot: Snapshot | None) -> bytes:
    """The Prometheus text format of both kinds."""
    scrape = _Scrape(DatabaseCollector(snapshot), process.registry)
    return generate_latest(scrape)
