"""Accounts, populations, person codes, passwords, temporary passwords."""
