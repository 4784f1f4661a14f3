"""Small datasets generated in tests (nothing large is checked in)."""
