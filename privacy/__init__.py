"""Crypto-shredding of personal data: sealed fields, data keys, erasure (docs/privacy.md)."""
