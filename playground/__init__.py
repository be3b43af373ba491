"""Threading Playground: run real threading experiments and watch every thread.

This package is imported by the worker processes too, on whatever interpreter a
user configures, so this file (and everything the worker imports) uses only the
standard library. The web application lives in ``playground.application``.
"""
