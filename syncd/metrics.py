"""Prometheus metrics, defined once; every module increments these, `/metrics` serves them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS = Counter("syncd_runs_total", "Sync and reconcile runs by outcome", ["kind", "outcome"])
MEMBERS = Counter("syncd_members_total",
                  "Contacts handled by the push, by outcome (pushed, parked, failed, skipped) "
                  "and reason", ["outcome", "reason"])
WEBHOOK_EVENTS = Counter("syncd_webhook_events_total", "Webhook deliveries by kind and outcome",
                         ["kind", "outcome"])
PURGE_LATENCY = Histogram(
    "syncd_purge_latency_seconds",
    "Time from receiving an unsubscribe webhook to the committed purge",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
LAST_SUCCESS = Gauge("syncd_last_success_timestamp_seconds",
                     "Unix time of the last successful run", ["kind"])
ESP_RETRIES = Counter("syncd_esp_retries_total", "ESP calls retried, by reason", ["reason"])
ESP_THROTTLED = Counter("syncd_esp_throttled_total",
                        "ESP answers that said slow down (429, bodyless 403)")
INBOX_PARKED = Gauge("syncd_inbox_parked_events", "Webhook events parked after failed retries")
JOB_RUNS = Counter("syncd_scheduler_jobs_total",
                   "Scheduled job executions by job and outcome (succeeded, failed, busy: "
                   "another runner held the lock, skipped: shutting down)", ["job", "outcome"])
JOBS_RUNNING = Gauge("syncd_scheduler_jobs_running", "Scheduled jobs running now", ["job"])
TARGET_RUNS = Counter("syncd_target_sync_runs_total",
                      "Sync runs by sync target and outcome", ["target", "outcome"])
TARGET_LAST_SUCCESS = Gauge("syncd_target_last_success_timestamp_seconds",
                            "Unix time of the last successful sync run of each target",
                            ["target"])
WEBHOOK_UNROUTED = Counter("syncd_webhook_unrouted_events_total",
                           "Webhook events for an audience no sync target syncs: stored, "
                           "answered 200, never applied", ["kind"])
HELD_UNSUBSCRIBES = Gauge("syncd_sync_unsubscribes_held",
                          "Unsubscribes the safety limit held back in the last sync run "
                          "(released by `syncd sync --force`)", ["audience"])
WITHDRAWAL_LATENCY = Histogram(
    "syncd_withdrawal_to_esp_seconds",
    "Time from a withdrawal or suppression in the CRM to the unsubscribe confirmed by "
    "Mailchimp",
    buckets=(1, 10, 60, 300, 900, 1800, 3600, 7200, 21600, 86400, 604800))
HTTP_CONNECTIONS_OPEN = Gauge("syncd_http_connections_open", "Open HTTP client connections")
HTTP_CONNECTIONS_SHED = Counter(
    "syncd_http_connections_shed_total",
    "HTTP connections closed by the overload guard, by reason (evicted: the oldest waiting "
    "for a request head, to admit a new one; refused: 503, every connection busy; "
    "header_timeout: no complete request head in time)", ["reason"])
SIGNUPS = Counter("syncd_signups_total",
                  "Sign-ups and preference changes by channel (web_form, api, "
                  "preference_page) and outcome (recorded, nothing_ticked, refused, "
                  "bot_trap, limited, withdrawn)", ["channel", "outcome"])
CONFIRMATIONS = Counter("syncd_confirmations_total",
                        "Confirmation POSTs by outcome (confirmed, used, expired, unknown)",
                        ["outcome"])
OUTBOX_ATTEMPTS = Counter("syncd_outbox_attempts_total",
                          "Mail send attempts by kind and outcome (sent, retry, failed)",
                          ["kind", "outcome"])
OUTBOX_QUEUED = Gauge("syncd_outbox_queued_mails", "Mails in the outbox not yet sent")
