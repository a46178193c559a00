"""The sender role: send requests from Kafka to the provider, one result per request."""
