"""Core records shared by every package: enrolled people and their consent."""
