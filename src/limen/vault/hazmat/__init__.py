"""Hazardous primitives of the vault: AEAD, key derivation, template transforms.

Nothing outside `limen.vault` imports this package.  Each function does one
thing and makes no policy choice; `limen.vault.recipe` composes them.
"""
