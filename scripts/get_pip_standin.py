"""Offline stand-in for the get-pip.py that ansible-test downloads when it bootstraps pip.

ansible-test runs this file with pip-install arguments. Instead of unpacking a pip
wheel fetched from the internet, install pip from the interpreter's bundled copy
(ensurepip) and then run the requested install with it.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
# --no-setuptools / --no-wheel are get-pip.py's own options, not pip's.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
