"""incident_files: one call creates the incident's directory and writes its files, atomically and idempotently."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.files import FilesError, write_files


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_the_directory_and_its_parents_and_writes_every_file(tmp_path):
    target = tmp_path / 'incidents' / 'INC-1' / 'pir'
    result = write_files({'path': str(target), 'files': {'pir.md': '# Review\n', 'timeline.svg': '<svg/>'}})
    assert result['changed'] is True and result['directory_created'] is True
    assert result['directory'] == str(target)
    assert (target / 'pir.md').read_text() == '# Review\n'
    assert (target / 'timeline.svg').read_text() == '<svg/>'
    assert mode_of(target) == 0o750 and mode_of(tmp_path / 'incidents') == 0o750
    assert mode_of(target / 'pir.md') == 0o640
    by_name = {item['name']: item for item in result['files']}
    assert by_name['pir.md']['sha256'] == hashlib.sha256(b'# Review\n').hexdigest()
    assert by_name['pir.md']['size'] == 9 and by_name['pir.md']['created'] is True
    assert not [name for name in os.listdir(target) if name.startswith('.')]   # no temporary file left behind


def test_a_rerun_with_the_same_content_changes_nothing(tmp_path):
    params = {'path': str(tmp_path / 'd'), 'files': {'a.json': '{}\n'}}
    write_files(params)
    before = os.stat(tmp_path / 'd' / 'a.json').st_mtime_ns
    again = write_files(params)
    assert again['changed'] is False and again['files'][0]['changed'] is False
    assert os.stat(tmp_path / 'd' / 'a.json').st_mtime_ns == before


def test_only_the_file_that_differs_is_rewritten_and_a_wrong_mode_is_corrected(tmp_path):
    write_files({'path': str(tmp_path), 'files': {'a': 'one', 'b': 'two'}})
    os.chmod(tmp_path / 'b', 0o644)
    result = write_files({'path': str(tmp_path), 'files': {'a': 'ONE', 'b': 'two'}})
    changed = {item['name']: item['changed'] for item in result['files']}
    assert changed == {'a': True, 'b': True}
    assert (tmp_path / 'a').read_text() == 'ONE' and mode_of(tmp_path / 'b') == 0o640
    assert write_files({'path': str(tmp_path), 'files': {'a': 'ONE', 'b': 'two'}})['changed'] is False


def test_check_mode_writes_nothing_and_says_what_would_change(tmp_path):
    target = tmp_path / 'new'
    result = write_files({'path': str(target), 'files': {'bundle.json': '{}'}}, check_mode=True)
    assert result['changed'] is True and result['directory_created'] is True
    assert result['files'][0]['changed'] is True
    assert not target.exists()


def test_diff_shows_before_and_after_of_changed_files_only(tmp_path):
    write_files({'path': str(tmp_path), 'files': {'a': 'old\n', 'b': 'same\n'}})
    result = write_files({'path': str(tmp_path), 'files': {'a': 'new\n', 'b': 'same\n'}}, want_diff=True)
    assert result['diff'] == [{'before_header': str(tmp_path / 'a'), 'after_header': str(tmp_path / 'a'),
                               'before': 'old\n', 'after': 'new\n'}]


@pytest.mark.parametrize('params, words', [
    ({'path': 'relative/dir', 'files': {'a': 'x'}}, 'path must be an absolute directory path'),
    ({'path': '/tmp', 'files': {}}, 'files must name at least one file'),
    ({'path': '/tmp', 'files': {'../escape': 'x'}}, 'plain file names'),
    ({'path': '/tmp', 'files': {'sub/a': 'x'}}, 'plain file names'),
    ({'path': '/tmp', 'files': {'a': {'nested': 1}}}, "files.a must be the file's content as a string"),
    ({'path': '/tmp', 'files': {'a': 'x'}, 'mode': 'rw-r-----'}, 'mode must be an octal file mode'),
    ({'path': '/tmp', 'files': {'a': 'x'}, 'dir_mode': '99'}, 'dir_mode must be an octal file mode'),
])
def test_bad_options_are_one_sentence_naming_the_option(tmp_path, params, words):
    with pytest.raises(FilesError) as caught:
        write_files(params)
    assert words in str(caught.value)
    assert str(caught.value).endswith('.') and '\n' not in str(caught.value)


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / 'plain').write_text('x')
    with pytest.raises(FilesError, match='exists and is not a directory'):
        write_files({'path': str(tmp_path / 'plain'), 'files': {'a': 'x'}})
