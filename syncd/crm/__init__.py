"""The CRM side: contacts, lists and consent evidence as syncd holds them (import, views,
proof, export, erasure, suppression)."""
