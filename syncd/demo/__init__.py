"""`syncd demo`: syncd's whole job on the embedded default, with nothing to set up.

A fresh SQLite file, the Mailchimp emulator (two audiences: the newsletter target's and
the offers target's) and the real HTTP service, all on 127.0.0.1,
configured through the same Settings as production (syncd/demo/demo.toml). The sample CRM
(sample.jsonl) holds one example of each consent rule (cast.py); every step checks its
expectations against the real state, the emulator's audience and the database (checks.py).
"""
