# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This plugin_utils file is private to this collection; its API may change without notice.

"""The commands the collection prints as next steps, complete enough to paste into another shell.

A printed command must work verbatim from any directory of the same user environment, so it
carries what the current directory or the current shell supplied to this run:

- ``ANSIBLE_CONFIG=<absolute path>`` when the configuration in use was found in the current
  directory (a checkout's ``ansible.cfg``, which also makes ``trdrhub.incident.*`` resolvable);
- ``TRDRHUB_LEDGER_DIR=<incidents home>`` unless the home is the default one;
- absolute paths for the inventories, playbooks and ``@files`` of a re-run;
- the ``ansible-playbook``/``ansible`` found on PATH, else the one this run was started with.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import typing as t

from ansible import constants as C
from ansible import context
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (
    ENV_VAR,
    HOME_VARIABLES,
    incidents_home,
)

COLLECTION = 'trdrhub.incident'


def home_of(variables: t.Mapping[str, t.Any] | None, templar: t.Any = None,
            env: t.Mapping[str, str] | None = None) -> tuple[str, str]:
    """The incidents home of a host: ``(absolute path, source)`` (module_utils/_common/incidents_home.py)."""
    wanted: dict[str, t.Any] = {}
    for name in HOME_VARIABLES:
        value = (variables or {}).get(name)
        if templar is not None and isinstance(value, str) and '{' in value:
            value = templar.template(value)
        wanted[name] = value
    return incidents_home(os.environ if env is None else env, wanted)


def environment(home: str, source: str, env: t.Mapping[str, str] | None = None) -> list[str]:
    """``NAME=value`` assignments another shell needs to see what this run sees."""
    env = os.environ if env is None else env
    out = []
    config, given = C.CONFIG_FILE, env.get('ANSIBLE_CONFIG') or ''
    if config and not os.path.isabs(given):
        # ./ansible.cfg (or a relative ANSIBLE_CONFIG) is not found from another directory.
        if given or os.path.dirname(os.path.abspath(config)) == os.getcwd():
            out.append(f'ANSIBLE_CONFIG={shlex.quote(os.path.abspath(config))}')
    if source != 'default':
        out.append(f'{ENV_VAR}={shlex.quote(home)}')
    return out


def executable(name: str) -> str:
    """``name`` when PATH finds the one this run uses (or any, if unknown), else its absolute path."""
    sibling = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0] or name)), name)
    if not os.access(sibling, os.X_OK):
        return name
    found = shutil.which(name)
    return name if found and os.path.realpath(found) == os.path.realpath(sibling) else sibling


def extra_var_args(extra_vars: t.Mapping[str, t.Any] | None) -> list[str]:
    out = []
    for key, value in (extra_vars or {}).items():
        if isinstance(value, (dict, list)):
            out += ['-e', shlex.quote(json.dumps({key: value}, sort_keys=True))]
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            out += ['-e', shlex.quote(f'{key}={text}')]
    return out


def _absolute_if_file(value: str) -> str:
    return os.path.abspath(value) if os.path.exists(value) else value


def rerun_args(replaced: t.Iterable[str] = ()) -> list[str]:
    """The playbooks and options of this run, with every path made absolute; ``key=value`` extra vars of a ``replaced`` key left out."""
    args, replaced = context.CLIARGS, set(replaced)
    out: list[str] = []
    for source in args.get('inventory') or ():
        out += ['-i', shlex.quote(_absolute_if_file(str(source)))]
    out += [shlex.quote(_absolute_if_file(str(p))) for p in args.get('args') or ()]
    for raw in args.get('extra_vars') or ():
        text = str(raw)
        if text.startswith('@'):
            text = '@' + os.path.abspath(text[1:])
        elif ' ' not in text and text.split('=', 1)[0] in replaced:
            continue   # given again below with its new value
        out += ['-e', shlex.quote(text)]
    if args.get('subset'):
        out += ['--limit', shlex.quote(str(args['subset']))]
    for option, key in (('--tags', 'tags'), ('--skip-tags', 'skip_tags')):
        values = [v for v in args.get(key) or () if v != 'all']
        if values:
            out += [option, shlex.quote(','.join(values))]
    out += [flag for flag, key in (('--check', 'check'), ('--diff', 'diff')) if args.get(key)]
    return out


def command(*, variables: t.Mapping[str, t.Any] | None = None, templar: t.Any = None, playbook: str | None = None,
            module: str | None = None, module_args: str | None = None, extra_vars: t.Mapping[str, t.Any] | None = None,
            inventory: bool = False, env: t.Mapping[str, str] | None = None) -> str:
    """One runnable command line.

    ``playbook``: a playbook of this collection (``approve``); ``module``: an ad-hoc run of a
    module on localhost with ``module_args`` (key=value text, used as given); neither: this run
    again (same playbooks, inventories and options) with ``extra_vars`` added. ``inventory``: a
    collection playbook gets this run's inventories too.
    """
    home, source = home_of(variables, templar, env)
    words = environment(home, source, env)
    if module:
        words += [executable('ansible'), 'localhost', '-m', module, '-a', f'"{module_args or ""}"']
        return ' '.join(words)
    words.append(executable('ansible-playbook'))
    if playbook:
        if inventory:
            for source in context.CLIARGS.get('inventory') or ():
                words += ['-i', shlex.quote(_absolute_if_file(str(source)))]
        words.append(playbook if '.' in playbook else f'{COLLECTION}.{playbook}')
    else:
        words += rerun_args(extra_vars or {})
    words += extra_var_args(extra_vars)
    return ' '.join(words)
