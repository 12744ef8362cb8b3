"""Tools a user runs by hand (``python -m dupcore selftest|demo|bench``), apart from the runtime modules."""
