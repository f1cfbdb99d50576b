"""Background jobs run by the RQ worker, each inside a Castor app context."""
