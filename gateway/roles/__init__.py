"""Every role of the gateway, wired: one module per ``smsc-gateway <role>``."""
