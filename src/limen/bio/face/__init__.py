"""bio/face."""
