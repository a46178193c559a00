"""The send pipeline: send requests from Kafka to the provider, one result per request (the
role is wired in :mod:`gateway.roles.sender`)."""
