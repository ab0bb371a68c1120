"""Task service: task commands, the event store, CSV import, the relay and the daily transfer."""
