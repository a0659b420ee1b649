"""Integration tests that mirror plugins/: plugins/<type>/<name>.py is tested by plugins/<type>/test_<name>.py."""
