"""The ``receptionist`` command: one module per command group, sharing ``support``."""
