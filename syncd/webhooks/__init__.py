"""Mailchimp's webhooks: the parsed form, the durable inbox and the effects each event
has on consent, lists and suppression (the HTTP endpoint is in syncd.service)."""
