"""tools/lowprio.py (a command below everything else on the machine) and the Colab-like kernel's
start-up command, which lowers its own session the same way (tests_book/colab_like.py)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOWPRIO = ROOT / "tools" / "lowprio.py"


def _autogroups() -> bool:
    try:
        return open("/proc/sys/kernel/sched_autogroup_enabled").read().strip() == "1"
    except OSError:
        return False


def test_the_command_runs_in_its_own_low_session_and_its_status_comes_back():
    probe = "cat /proc/self/autogroup 2>/dev/null || echo none; nice; ps -o sid= -p $$; exit 3"
    done = subprocess.run([sys.executable, str(LOWPRIO), "--", "sh", "-c", probe],
                          capture_output=True, text=True)
    assert done.returncode == 3  # the command's status
    group, nice, sid = done.stdout.split("\n")[:3]
    assert int(nice) == os.nice(0) + 10 or int(nice) == 19  # its own nice value (capped at 19)
    assert int(sid) != os.getsid(0)  # a session of its own
    if _autogroups() and "could not set" not in done.stderr:
        assert group.endswith("nice 19"), group  # below every session at the default 0
    else:
        assert "could not set the session's autogroup nice" in done.stderr or group == "none"


@pytest.mark.parametrize(("args", "message"), [
    ([], "no command given"),
    (["--nice", "30", "--", "true"], "--nice must be from 0 to 19; got 30"),
    (["--group-nice", "-21", "--", "true"], "--group-nice must be from -20 to 19; got -21"),
])
def test_bad_arguments_are_refused_by_name(args, message):
    done = subprocess.run([sys.executable, str(LOWPRIO), *args], capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def _colab_like():
    spec = importlib.util.spec_from_file_location("colab_like", ROOT / "tests_book" / "colab_like.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_colab_like_kernel_lowers_its_own_session_and_can_be_put_back(tmp_path):
    colab_like = _colab_like()
    plain = ["/x/venv/bin/python", "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = tmp_path / "kernel.json"
    spec.write_text(json.dumps({"argv": plain, "display_name": "Colab-like", "language": "python"}))
    colab_like.set_kernel_priority(spec, 19)
    argv = json.loads(spec.read_text())["argv"]
    assert argv[:2] == ["/bin/sh", "-c"] and argv[3] == "19" and argv[4:] == plain
    colab_like.set_kernel_priority(spec, 19)  # twice: still one wrapper
    assert json.loads(spec.read_text())["argv"] == argv
    colab_like.set_kernel_priority(spec, None)
    assert json.loads(spec.read_text())["argv"] == plain
    # the wrapper, run for real: it sets its session's autogroup, then becomes the command with its
    # arguments intact ("$0" is the nice value, "$@" the command)
    probe = subprocess.run(["setsid", "-w", argv[0], argv[1], argv[2], "19", "sh", "-c",
                            'cat /proc/self/autogroup 2>/dev/null || echo none; echo "$1 $2"', "-", "a b", "c"],
                           capture_output=True, text=True, check=True)
    group, words = probe.stdout.strip().split("\n")
    assert words == "a b c"
    if _autogroups():
        assert group.endswith("nice 19"), group
