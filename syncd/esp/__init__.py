"""Email service providers: the protocol syncd needs (protocol) and the Mailchimp adapter."""
