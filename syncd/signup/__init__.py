"""Consent at the source: the sign-up form, syncd's own double opt-in (tokens, outbox,
mailer) and the preference page. HTTP lives in syncd/service; this package holds the
use cases."""
