"""All of syncd's HTTP serving: the app, the webhook endpoint, the sign-up pages and API,
the status page, the operator's API, and the process that runs them with the scheduler."""
