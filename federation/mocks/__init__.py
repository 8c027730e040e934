"""Runnable mock brokers for the demo and the tests."""
