"""What the provider sends back, turned into normalized events (no I/O here)."""
