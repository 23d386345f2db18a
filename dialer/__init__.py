"""The application: clock, campaigns, contacts, compliance, the call state machine,
the engine loop, persistence, events, the HTTP API and the CLI."""
