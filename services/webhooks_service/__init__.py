"""Webhooks service: subscriptions, and signed, ordered, retried deliveries of the event stream."""
