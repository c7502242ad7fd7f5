"""Fork check: ``python tests/helpers/fork_check.py LOGDIR``.

The parent opens a log, appends, keeps a read transaction open (a live LMDB reader slot) and
forks. The child tries the inherited Log (which must raise ForkedProcessError), opens the log
itself, appends and closes it, and then ends through *normal* interpreter finalization
(atexit, garbage collection of the inherited objects, module teardown). Only then does the
parent check that its reader slot survived the child and that its Log still reads and
writes. The parent prints one JSON line with what it saw.
"""

from __future__ import annotations

import gc
import json
import os
import sys

import eventlog


def child(log: eventlog.Log, logdir: str) -> None:
    try:
        log.read("t", 0)
    except eventlog.ForkedProcessError:
        pass
    else:
        sys.exit(11)
    try:
        log.append("t", b"from child via parent's handle")
    except eventlog.ForkedProcessError:
        pass
    else:
        sys.exit(12)
    log.close()  # harmless in the child
    with eventlog.open(logdir) as own:  # the child's own environment on the same files
        if [r.value for r in own.read("t", 0)] != [b"before fork"]:
            sys.exit(13)
        own.append("t", b"from child")
    del log
    gc.collect()
    sys.exit(0)  # normal finalization: atexit handlers, module teardown


def main() -> None:
    logdir = sys.argv[1]
    log = eventlog.open(logdir)
    log.create_topic("t")
    log.append("t", b"before fork")
    env = log._storage.env
    held = env.begin()  # a live reader slot that the child must not disturb
    held.get(b"x")
    pid = os.fork()
    if pid == 0:
        child(log, logdir)
        return
    _, status = os.waitpid(pid, 0)
    readers = env.readers()
    slot_kept = any(line.split()[:1] == [str(os.getpid())] for line in readers.splitlines())
    held.abort()
    log.append("t", b"after fork")
    values = [r.value.decode() for r in log.read("t", 0)]
    log.close()
    with eventlog.open(logdir) as again:
        reopened = [r.value.decode() for r in again.read("t", 0)]
    result = {"child_exit": os.waitstatus_to_exitcode(status), "slot_kept": slot_kept,
              "readers": readers, "values": values, "reopened": reopened}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
