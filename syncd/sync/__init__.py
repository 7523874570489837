"""The outbound sync: the CRM's contacts planned against the consent policy and pushed to
Mailchimp, with the audience pull and audit that prepare and check it."""
