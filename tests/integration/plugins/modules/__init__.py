"""Integration tests of plugins/modules/<module>.py: test_<module>.py (and test_<module>_<aspect>.py beside it)."""
