"""Run a command at low CPU priority, below everything else on the machine, and wait for it.

    python tools/lowprio.py [--nice N] [--group-nice G] -- command [args...]

`nice` alone does not do this on Linux. With the scheduler's autogroups
(``/proc/sys/kernel/sched_autogroup_enabled`` = 1, the default on desktop and many server
kernels), CPU time is shared first between sessions, equally, and a process's nice value only
ranks it among the processes of its own session. A Jupyter kernel starts its own session, so a
chapter's kernel competes on equal terms with every other session however nice its parent was.
`make test` ran the Colab-like kernels at ``nice 10`` beside the book build's kernels and measured
the build's chapters taking 2.2x as long (822 s against 364 s, summed over the chapters).

So the command runs in a session of its own (``setsid``), whose autogroup gets the nice value
``--group-nice`` (default 19, through ``/proc/self/autogroup``, allowed for one's own session),
and the command itself gets ``--nice`` (default 10) for machines without autogroups. Where the
autogroup cannot be set (no autogroups, or not permitted), the command runs with its nice value
alone and a line on stderr says so. SIGINT and SIGTERM are passed on to the command's session, so
Ctrl-C still stops it. Exits with the command's status.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys


def set_group_nice(value: int) -> bool:
    """Set the autogroup nice of the calling process's session; False where that is not possible."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(value))
        return True
    except OSError:
        return False


def _child_setup(group_nice: int, nice: int) -> None:
    os.setsid()
    if not set_group_nice(group_nice):
        os.write(2, b"lowprio: could not set the session's autogroup nice; the command runs with its nice value alone\n")
    os.nice(nice)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nice", type=int, default=10, help="the command's own nice value (0-19)")
    p.add_argument("--group-nice", type=int, default=19, help="its session's autogroup nice (-20 to 19)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given: lowprio.py [--nice N] [--group-nice G] -- command [args...]")
    if not 0 <= args.nice <= 19:
        p.error(f"--nice must be from 0 to 19; got {args.nice}")
    if not -20 <= args.group_nice <= 19:
        p.error(f"--group-nice must be from -20 to 19; got {args.group_nice}")
    proc = subprocess.Popen(command, preexec_fn=lambda: _child_setup(args.group_nice, args.nice))

    def forward(signum, _frame):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
