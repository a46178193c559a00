"""The event contract: versioned JSON events on Kafka, their models and JSON Schemas."""
