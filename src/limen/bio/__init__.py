"""Biometric modalities: face (detect → quality → align → embed → compare), fingerprint later."""
