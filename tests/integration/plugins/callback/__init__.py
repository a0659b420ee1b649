"""Integration tests of plugins/callback/<callback>.py: test_<callback>.py (and test_<callback>_<aspect>.py beside it)."""
