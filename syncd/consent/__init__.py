"""The consent rules: the pure policy (who may get which purpose, and why), the ledger's
rules and the lifecycle deadlines (docs/consent-rules.md); their SQL lives in syncd.store."""
