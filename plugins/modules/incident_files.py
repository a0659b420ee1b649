# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_files
short_description: Write the files of an incident's directory (bundles, reviews, audit heads) in one step
version_added: 1.1.0
description:
  - Creates the directory O(path) (and its parents) and writes every file of O(files) into it - what an
    C(ansible.builtin.file) task and one C(ansible.builtin.copy) task per file would do, in one step.
  - Each file whose content or mode differs is written to a temporary file in the same directory and renamed
    into place, so that a reader never sees half a file. Files whose content and mode already match are left
    alone, so a re-run changes nothing.
  - Runs on the Ansible controller (an action plugin), where the incidents home and its ledger live, whatever host
    the task targets.
  - The roles use it for the diagnostics bundle (C(bundle.json), C(summary.md)), the post-incident review
    (C(pir.md), C(pir.html), C(timeline.svg)) and the audit chain's heads file.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  path:
    description:
      - The directory to write into, an absolute path. It is created with O(dir_mode), parents included, when missing.
    type: path
    required: true
  files:
    description:
      - File name -> content (text, written as UTF-8).
      - Names are plain file names, without a directory part.
    type: dict
    required: true
  mode:
    description: The mode of every file written, in octal.
    type: str
    default: '0640'
  dir_mode:
    description: The mode of a directory this task creates, in octal. An existing directory keeps its mode.
    type: str
    default: '0750'
extends_documentation_fragment:
  - trdrhub.incident.attributes.controller
attributes:
  check_mode:
    details:
      - Writes nothing and creates no directory; reports which files would be written, with their SHA-256.
  diff_mode:
    support: full
    details:
      - Shows the content before and after of every file whose content changes.
  action:
    details:
      - Runs on the controller.
notes:
  - The content of a file is the evidence itself; use C(no_log) on the task when it may hold anything sensitive.
seealso:
  - module: trdrhub.incident.ledger_record
"""

EXAMPLES = r"""
- name: Write a diagnostics bundle
  trdrhub.incident.incident_files:
    path: "{{ incident_dir }}/diagnostics/20250115T142501Z"
    files:
      bundle.json: "{{ bundle | to_nice_json(indent=2) }}\n"
      summary.md: "{{ summary }}"
  no_log: true
  register: written

- name: Show the digests
  ansible.builtin.debug:
    msg: "{{ written.files | map(attribute='sha256') | list }}"
"""

RETURN = r"""
directory:
  description: The directory written into.
  returned: always
  type: str
  sample: /home/sre/.local/state/trdrhub-incident/incidents/INC-2025-0042/pir
directory_created:
  description: Whether this task created the directory (in check mode, whether it would).
  returned: always
  type: bool
  sample: false
files:
  description: Every file of O(files), by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The file name.
      type: str
      sample: pir.md
    path:
      description: The file's path.
      type: str
      sample: /home/sre/.local/state/trdrhub-incident/incidents/INC-2025-0042/pir/pir.md
    size:
      description: Bytes of content.
      type: int
      sample: 5120
    sha256:
      description: SHA-256 of the content, hex.
      type: str
      sample: 3f5a0c8e4b1d9f27a6c0e5d4b3a29187f6e5d4c3b2a1908f7e6d5c4b3a291807
    changed:
      description: Whether the file was written (in check mode, whether it would be).
      type: bool
      sample: true
    created:
      description: Whether the file did not exist before.
      type: bool
      sample: true
"""

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Call, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.files import FILES_ARGS, write_files


def argument_spec() -> dict:
    return dict(FILES_ARGS)


def main() -> None:
    # Normally the action plugin of the same name does this on the controller; this path
    # runs when the module is executed directly on a host (for example by ansible-test).
    run_module(argument_spec(), lambda mod: Call(write_files, mod.params, mod.check_mode, mod._diff))


if __name__ == '__main__':
    main()
