"""Integration tests of playbooks/<playbook>.yml: test_<playbook>.py (and test_<playbook>_<aspect>.py beside it).

These folders are packages so that two test files may share a basename (plugins/modules/test_rotate_secrets.py
and playbooks/test_rotate_secrets.py): pytest imports them as plugins.modules.test_* and playbooks.test_*.
"""
