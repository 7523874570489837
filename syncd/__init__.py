"""syncd: keeps a local CRM's contacts in step with Mailchimp, gated on confirmed consent."""

__version__ = "0.1.0"
