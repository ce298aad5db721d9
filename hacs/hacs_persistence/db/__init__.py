"""The database connection layer: settings, the embedded server, roles, engines, units of work."""
