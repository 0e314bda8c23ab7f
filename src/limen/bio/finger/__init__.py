"""Fingerprint recognition: extraction, matching, ISO/IEC 19794-2 records, protected templates, sensors."""
