# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rotation's run: a failed rotation carries its result as the failure's keys, and where the new password is tried."""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.run import RotationFailed, verify_params


def test_a_failed_rotation_fails_with_its_result():
    exc = RotationFailed('Rotation failed at restart and was rolled back', {'status': 'rolled_back', 'failed_step': 'restart'})
    assert isinstance(exc, TrdrhubError) and str(exc) == 'Rotation failed at restart and was rolled back'
    assert exc.result == exc.details == {'status': 'rolled_back', 'failed_step': 'restart'}
    assert RotationFailed('no result').result == {}


def test_the_new_password_is_tried_where_the_admin_connection_goes_by_default():
    params = {'login_host': 'db-primary', 'login_port': 5432, 'login_unix_socket': None, 'role': 'app'}
    assert verify_params(params) == params
    assert verify_params(params) is not params


def test_verify_login_host_and_port_replace_the_target_and_drop_the_socket():
    params = {'login_host': None, 'login_unix_socket': '/var/run/postgresql', 'login_port': 5432,
              'verify_login_host': 'pgbouncer.internal', 'verify_login_port': 6432}
    tried = verify_params(params)
    assert tried['login_host'] == 'pgbouncer.internal' and tried['login_unix_socket'] is None
    assert tried['login_port'] == 6432 and params['login_unix_socket'] == '/var/run/postgresql'
