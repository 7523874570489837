"""Inbound: what Mailchimp says back, read by syncd (the reconciliation pull). May import
the sync and the webhooks; only cli, service and demo import it (docs/architecture.md)."""
