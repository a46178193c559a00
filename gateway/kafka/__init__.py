"""The Kafka edge: aiokafka wrapped so the rest of the gateway never imports it."""
