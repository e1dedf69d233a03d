# -*- coding: utf-8 -*-
# Bundled with fastdeploy (github.com/fastdeploy/otelcol-fastdeploy): the
# deployer writes this file to a temporary directory and selects it with
# ANSIBLE_CALLBACK_PLUGINS and ANSIBLE_STDOUT_CALLBACK=fastdeploy_json_cb.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = '''
    name: fastdeploy_json_cb
    type: stdout
    short_description: one JSON line per task result, in fastdeploy's json_cb format
    description:
      - Prints one JSON object per host result of a task, per item of a loop
        and per handler run, in the json_cb format the otelcol-fastdeploy
        receiver reads on POST /v1/ansible.
      - Fields are those of fastdeploy's json_cb callback (position, start,
        end, name, state, error_message, misc) plus host, play, handler,
        item_index, item and ignore_errors. Times are RFC 3339 with the
        local zone's offset; start is when the host started the task.
      - The Go definition of a line is internal/jsoncb, which the deployer
        and the receiver read it with; a real run of this plugin checks
        that every field it writes has a place there.
      - Only result lines go to stdout; the recap and one RUNNING [host] task
        line per task start (for a live status line) go to stderr.
    requirements:
      - ansible-core 2.12 or later (v2_runner_on_start).
'''

import datetime
import json
import sys

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase


def _now():
    # Zone-aware local time: the receiver needs no tz hint to place it.
    return datetime.datetime.now(datetime.timezone.utc).astimezone()


def _error_message(res):
    parts = []
    msg = res.get('msg')
    if msg:
        parts.append(msg if isinstance(msg, str) else json.dumps(msg, cls=AnsibleJSONEncoder, sort_keys=True))
    stderr = res.get('stderr')
    if isinstance(stderr, str) and stderr.strip():
        parts.append(stderr.strip())
    if not parts and res.get('censored'):
        parts.append(res['censored'])
    return ': '.join(parts)


def _strip_internal(res):
    # Ansible's bookkeeping (_ansible_no_log, _ansible_item_label, ...) is
    # not part of what the task did.
    for k in [k for k in res if isinstance(k, str) and k.startswith('_ansible_')]:
        del res[k]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'fastdeploy_json_cb'

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display)
        self._out = sys.stdout
        self._play = ''
        self._position = -1
        # Per task uuid: its latest position (a handler can run twice) and
        # whether it is a handler.
        self._task_position = {}
        self._handlers = set()
        # Per (task uuid, host): when the host started the task, when its
        # last loop item ended, and how many items it has reported.
        self._host_start = {}
        self._item_end = {}
        self._item_count = {}

    # Plays and tasks: positions and start times; nothing is printed.

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()

    def _task_started(self, task, handler):
        self._position += 1
        self._task_position[task._uuid] = self._position
        if handler:
            self._handlers.add(task._uuid)
        started = _now()
        # Hosts without their own v2_runner_on_start start with the task.
        self._host_start[(task._uuid, None)] = started

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_started(task, False)

    def v2_playbook_on_cleanup_task_start(self, task):
        self._task_started(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_started(task, True)

    def v2_runner_on_start(self, host, task):
        key = (task._uuid, host.get_name())
        self._host_start[key] = _now()
        self._item_end.pop(key, None)
        self._item_count.pop(key, None)
        # For the deployer's live status line: which task runs where.
        sys.stderr.write('RUNNING [%s] %s\n' % (host.get_name(), task.get_name().strip()))
        sys.stderr.flush()

    # Results: one line each.

    def _line(self, result, state, ignore_errors=False, item=False):
        task = result._task
        host = result._host.get_name()
        key = (task._uuid, host)
        end = _now()
        start = self._host_start.get(key) or self._host_start.get((task._uuid, None)) or end
        if task._uuid not in self._task_position:
            # A task Ansible ran without announcing it (e.g. with a
            # strategy that skips the task start callback).
            self._task_started(task, False)
        res = dict(result._result)
        line = {
            'position': self._task_position[task._uuid],
            'name': task.get_name().strip(),
            'state': state,
            'host': host,
            'play': self._play,
        }
        if task._uuid in self._handlers:
            line['handler'] = True
        if item:
            # Items of one host run one after another: each starts when the
            # previous one ended.
            index = self._item_count.get(key, 0)
            self._item_count[key] = index + 1
            start = self._item_end.get(key) or start
            self._item_end[key] = end
            line['item_index'] = index
            label = res.get('_ansible_item_label', res.get(res.get('ansible_loop_var', 'item')))
            if label is not None:
                line['item'] = label
        if state in ('failure', 'unreachable'):
            line['error_message'] = _error_message(res)
        if state == 'failure' and (ignore_errors or (item and result._task_fields.get('ignore_errors'))):
            # Ansible carries on past this failure: not a failure of the run.
            line['ignore_errors'] = True
        _strip_internal(res)
        # As Ansible's own json callback: the module that ran, which the
        # receiver reports as ansible.task.module.
        res.setdefault('action', task.action)
        for sub in res.get('results') or []:
            if isinstance(sub, dict):
                _strip_internal(sub)
        line['start'] = start.isoformat()
        line['end'] = end.isoformat()
        line['misc'] = res
        self._out.write(json.dumps(line, cls=AnsibleJSONEncoder, separators=(',', ':')) + '\n')
        self._out.flush()

    def v2_runner_on_ok(self, result):
        self._line(result, 'success')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._line(result, 'failure', ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._line(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._line(result, 'unreachable')

    def v2_runner_item_on_ok(self, result):
        self._line(result, 'success', item=True)

    def v2_runner_item_on_failed(self, result):
        self._line(result, 'failure', item=True)

    def v2_runner_item_on_skipped(self, result):
        self._line(result, 'skipped', item=True)

    # The recap is for people: stderr, where it cannot break the JSON lines.

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            sys.stderr.write('RECAP %s ok=%d changed=%d failed=%d skipped=%d unreachable=%d ignored=%d rescued=%d\n' % (
                host, s['ok'], s['changed'], s['failures'], s['skipped'], s['unreachable'], s['ignored'], s['rescued']))
        sys.stderr.flush()
