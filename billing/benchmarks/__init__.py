"""Billing benchmarks, run by ``python manage.py benchmark NAME``."""
