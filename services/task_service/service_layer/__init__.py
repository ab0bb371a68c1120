"""service_layer of the task service."""
