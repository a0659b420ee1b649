"""Option ranges and plain validation messages (module_utils/_common/spec.py)."""
from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.trdrhub.incident.plugins.module_utils._common import spec as _spec
from ansible_collections.trdrhub.incident.plugins.modules import pg_activity_info


@pytest.mark.parametrize('bounds, value, ok', [
    ({'minimum': 1, 'maximum': 65535}, 1, True),
    ({'minimum': 1, 'maximum': 65535}, 65535, True),
    ({'minimum': 1, 'maximum': 65535}, 70000, False),
    ({'minimum': 1, 'maximum': 65535}, 0, False),
    ({'above': 0}, 0.001, True),
    ({'above': 0}, 0, False),
    ({'minimum': 0}, -1, False),
    ({'maximum': 5}, 6, False),
])
def test_range(bounds, value, ok):
    spec = {'n': _spec.bounded({'type': 'int'}, **bounds)}
    message = _spec.out_of_range(spec, {'n': value})
    assert (message is None) == ok
    if not ok:
        assert message.startswith('n must be ') and message.endswith(f'got {value}')


def test_range_text():
    assert _spec.range_text({'minimum': 1, 'maximum': 65535}) == 'between 1 and 65535'
    assert _spec.range_text({'above': 0}) == 'greater than 0'
    assert _spec.range_text({'minimum': 0}) == 'at least 0'
    assert _spec.range_text({'maximum': 255}) == 'at most 255'


def test_annotations_are_not_passed_to_ansible():
    spec = {'port': _spec.bounded({'type': 'int'}, 1, 65535),
            'conn': _spec.with_secret_keys({'type': 'dict', 'options': {'t': _spec.bounded({'type': 'int'}, minimum=0)}},
                                           'password')}
    plain = _spec.ansible_spec(spec)
    assert plain == {'port': {'type': 'int'}, 'conn': {'type': 'dict', 'options': {'t': {'type': 'int'}}}}
    assert _spec.BOUNDS in spec['port']     # the caller's spec is left as it was


def test_suboption_ranges_are_named_with_their_path():
    spec = {'wait_for': {'type': 'dict', 'options': {'below': _spec.bounded({'type': 'int'}, minimum=1)}},
            'endpoints': {'type': 'list', 'elements': 'dict',
                          'options': {'timeout': _spec.bounded({'type': 'float'}, above=0)}}}
    assert _spec.out_of_range(spec, {'wait_for': {'below': 0}}) == 'wait_for.below must be at least 1, got 0'
    assert _spec.out_of_range(spec, {'endpoints': [{'timeout': 1.0}, {'timeout': -0.5}]}) == \
        'endpoints[1].timeout must be greater than 0, got -0.5'


@pytest.mark.parametrize('ansible, plain', [
    ("argument 'port' is of type str and we were unable to convert to int: \"'x'\" cannot be converted to an int",
     'port must be an integer, got a string'),
    ("argument 't' is of type str and we were unable to convert to float: <class 'str'> cannot be converted to a float",
     't must be a number, got a string'),
    ("argument 'z' is of type _AnsibleTaggedStr found in 'ds -> q'. and we were unable to convert to float: x",
     'ds.q.z must be a number, got a string'),
    ("Elements value for option 'li' is of type str and we were unable to convert to int: x",
     'each item of li must be an integer, got a string'),
    ("Value '5' in the sub parameter field 'ld' must be a list, not 'int'", 'each item of ld must be a mapping, got an integer'),
    ("value of 'ds' must be of type dict or list of dicts", 'ds must be a mapping'),
    ("value of mode must be one of: a, b, got: {'x': 1}", 'value of mode must be one of: a, b, got a mapping'),
    ('value of days must be one or more of: mon, tue. Got no match for: xyz',
     'value of days must be one or more of: mon, tue, got xyz'),
    ('value of mode must be one of: a, b, got: c', 'value of mode must be one of: a, b, got: c'),
    ('missing required arguments: host', 'missing required arguments: host'),
    ('dictionary requested, could not parse JSON or key=value', None),
])
def test_plain_message(ansible, plain):
    assert _spec.plain_message(ansible) == plain


def test_the_first_message_naming_an_option_wins():
    messages = ['dictionary requested, could not parse JSON or key=value',
                "argument 'ds' is of type str and we were unable to convert to dict: dictionary requested"]
    assert _spec.validation_message(messages, 'fallback') == 'ds must be a mapping, got a string'


def _build(module_main, args, monkeypatch):
    """The IncidentModule a module's main() builds, stopped right after validation."""
    built = {}

    class Stop(Exception):
        pass

    original = _spec.IncidentModule.__init__

    def init(self, *a, **kw):
        original(self, *a, **kw)
        built['module'] = self
        raise Stop

    monkeypatch.setattr(_spec.IncidentModule, '__init__', init)
    with patch_module_args(args), pytest.raises(Stop):
        module_main()
    return built['module']


def test_connect_params_password_is_masked(monkeypatch):
    module = _build(pg_activity_info.main, {'connect_params': {'password': 'Pa55-word-in-params', 'sslmode': 'require'}},
                    monkeypatch)
    assert 'Pa55-word-in-params' in module.no_log_values
    masked = basic.remove_values({'invocation': {'module_args': module.params}}, module.no_log_values)
    assert 'Pa55-word-in-params' not in json.dumps(masked)
    assert masked['invocation']['module_args']['connect_params']['sslmode'] == 'require'


def test_connect_params_password_is_masked_when_validation_fails(monkeypatch):
    seen = {}

    def fail_json(self, msg, **kwargs):
        seen.update(msg=msg, no_log_values=set(self.no_log_values))
        raise SystemExit(1)

    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    with patch_module_args({'connect_params': {'password': 'Pa55-word-in-params'}, 'login_port': 'x'}), \
            pytest.raises(SystemExit):
        pg_activity_info.main()
    assert seen['msg'] == 'login_port must be an integer, got a string'
    assert 'Pa55-word-in-params' in seen['no_log_values']


class _AnsibleTaggedStr(str):
    """Stands in for the string type Ansible gives a templated value."""


@pytest.mark.parametrize('value, words', [
    ('x', 'a string'), (_AnsibleTaggedStr('x'), 'a string'), ({}, 'a mapping'), ([], 'a list'), (3, 'an integer'),
    (1.5, 'a number'), (True, 'a boolean'), (None, 'null'),
])
def test_kind_of_is_plain_words(value, words):
    assert _spec.kind_of(value) == words


# -- action plugins validate the same way ------------------------------------------------------

ACTION_SPEC = {
    'incident_id': {'type': 'str', 'required': True},
    'timeout': _spec.bounded({'type': 'float'}, above=0),
    'connect_params': _spec.with_secret_keys({'type': 'dict', 'default': {}}, 'password'),
    'wait': {'type': 'dict', 'options': {'below': _spec.bounded({'type': 'int'}, minimum=1)}},
}


@pytest.mark.parametrize('args, message', [
    ({}, 'missing required arguments: incident_id'),
    ({'incident_id': 'INC-1', 'timeout': 'soon'}, 'timeout must be a number, got a string'),
    ({'incident_id': 'INC-1', 'timeout': -1}, 'timeout must be greater than 0, got -1'),
    ({'incident_id': {'id': 1}}, 'incident_id must be a string, got a mapping'),
    ({'incident_id': 'INC-1', 'wait': 5}, 'wait must be a mapping, got an integer'),
    ({'incident_id': 'INC-1', 'wait': {'below': 0}}, 'wait.below must be at least 1, got 0'),
    ({'incident_id': 'INC-1', 'timeout': 2}, None),
])
def test_validate_task_args(args, message):
    params, problem = _spec.validate_task_args(ACTION_SPEC, args)
    assert problem == message
    if message is None:
        assert params['timeout'] == 2.0 and params['connect_params'] == {}


def test_controller_actions_mask_a_password_in_connect_params():
    from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import Call  # pylint: disable=import-outside-toplevel
    params, _problem = _spec.validate_task_args(ACTION_SPEC, {'incident_id': 'INC-1', 'connect_params': {
        'password': 'Pa55-word-in-params', 'sslmode': 'require'}})
    call = Call(params=params, spec=ACTION_SPEC, check_mode=False, diff=False, base_dir=None, context={}, env={},
                variables={}, secrets=[])
    shown = call.masked_params()
    assert 'Pa55-word-in-params' not in json.dumps(shown)
    assert shown['connect_params']['sslmode'] == 'require' and shown['incident_id'] == 'INC-1'
