"""The ledger's append under the name signup/intake.py still calls (`chain.append_many`);
the chain, its hashing and its statements live in syncd.store.ledger. This module goes
once that call is `syncd.store.ledger.append(session, events)`."""

from __future__ import annotations

from syncd.store.ledger import append as append_many

__all__ = ["append_many"]
