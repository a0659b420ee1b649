# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Files of an incident's directory (diagnostics bundles, reviews, audit heads), written in one step.

The roles used to write them with ``ansible.builtin.file`` and ``ansible.builtin.copy``: a
directory task and a copy task per file, each a module process or two on the controller.
``write_files`` does the same in one call: it creates the directory (and its parents) with
``dir_mode``, writes each file whose content or mode differs through a temporary file renamed
into place (a reader never sees half a file), and reports every file with its SHA-256. In
check mode it only reports what it would do.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError

FILES_ARGS: dict[str, t.Any] = {
    'path': {'type': 'path', 'required': True},
    'files': {'type': 'dict', 'required': True},
    'mode': {'type': 'str', 'default': '0640'},
    'dir_mode': {'type': 'str', 'default': '0750'},
}


class FilesError(TrdrhubError):
    """Bad options, or a file that cannot be written; the message is one sentence."""


def _mode(value: str, option: str) -> int:
    text = str(value).strip()
    if not text or len(text) > 4 or any(ch not in '01234567' for ch in text):
        raise FilesError(f'{option} must be an octal file mode such as 0640, got {value!r}.')
    return int(text, 8)


def _check(params: t.Mapping[str, t.Any]) -> tuple[str, dict[str, str], int, int]:
    path = params['path']
    if not os.path.isabs(path):
        raise FilesError(f'path must be an absolute directory path, got {path!r}.')
    files = params['files']
    if not files:
        raise FilesError('files must name at least one file to write.')
    for name, content in files.items():
        if not isinstance(name, str) or not name or name in ('.', '..') or '/' in name or '\0' in name:
            raise FilesError(f'files must map plain file names (no directory part) to their content, got the name {name!r}.')
        if not isinstance(content, str):
            raise FilesError(f'files.{name} must be the file\'s content as a string.')
    return path, dict(files), _mode(params.get('mode') or '0640', 'mode'), _mode(params.get('dir_mode') or '0750', 'dir_mode')


def _current(target: str) -> tuple[bytes | None, int | None]:
    try:
        with open(target, 'rb') as handle:
            return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise FilesError(f'Cannot read {target}: {exc.strerror or exc}.') from exc


def _write(target: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(target)
    handle, temporary = tempfile.mkstemp(prefix='.' + os.path.basename(target) + '.', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _make_dirs(path: str, mode: int) -> None:
    """``path`` and its missing parents, each with ``mode`` (as ``ansible.builtin.file`` would, one by one)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        os.chmod(directory, mode)


def write_files(params: t.Mapping[str, t.Any], check_mode: bool = False, want_diff: bool = False) -> dict[str, t.Any]:
    """Create ``path`` and write ``files`` into it; the result Ansible returns (changed, directory, files, diff)."""
    path, files, mode, dir_mode = _check(params)
    created = not os.path.isdir(path)
    if created and os.path.exists(path):
        raise FilesError(f'path {path} exists and is not a directory.')
    if created and not check_mode:
        try:
            _make_dirs(path, dir_mode)
        except OSError as exc:
            raise FilesError(f'Cannot create the directory {path}: {exc.strerror or exc}.') from exc
    report, diffs = [], []
    for name in sorted(files):
        target = os.path.join(path, name)
        data = files[name].encode('utf-8')
        before, before_mode = (None, None) if created else _current(target)
        changed = before != data or before_mode != mode
        if changed and not check_mode:
            try:
                _write(target, data, mode)
            except OSError as exc:
                raise FilesError(f'Cannot write {target}: {exc.strerror or exc}.') from exc
        report.append({'name': name, 'path': target, 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
                       'changed': changed, 'created': before is None})
        if want_diff and before != data:
            diffs.append({'before_header': target if before is not None else '/dev/null', 'after_header': target,
                          'before': before.decode('utf-8', 'replace') if before is not None else '',
                          'after': files[name]})
    result: dict[str, t.Any] = {'changed': created or any(item['changed'] for item in report), 'directory': path,
                                'directory_created': created, 'files': report}
    if want_diff:
        result['diff'] = diffs
    return result
