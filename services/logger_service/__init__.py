"""Logger service: projections of the event stream (TaskLogger, audit) and their read API."""
