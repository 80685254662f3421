"""Proof that a call releases the GIL: does Python in another thread run during it?

``python_ran_during(call)`` runs ``call`` in a worker thread while the calling thread spins
a Python loop, and returns how many loop turns happened between the worker entering and
leaving ``call``. The switch interval is raised to 10 s meanwhile, so the interpreter never
preempts a thread that holds the GIL: a call that keeps the GIL throughout gets exactly 0,
one that releases it gets the turns the spinning thread made in the meantime. No timing is
asserted, only whether the other thread could run at all.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


def python_ran_during(call: Callable[[], object], attempts: int = 5) -> int:
    """Loop turns of the calling thread while ``call`` ran; retried up to ``attempts`` times
    while 0, because on a busy machine the OS may not schedule the spinning thread during a
    short call (a call that keeps the GIL gives 0 every time)."""
    for _ in range(attempts - 1):
        turns = _turns_during(call)
        if turns > 0:
            return turns
    return _turns_during(call)


def _turns_during(call: Callable[[], object]) -> int:
    turns = 0
    seen: list[int] = []
    done = threading.Event()

    def worker() -> None:
        seen.append(turns)
        call()
        seen.append(turns)
        done.set()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while not done.is_set():
            turns += 1
            time.sleep(0)  # hands the GIL back, so the worker can finish once its call returns
        thread.join()
    finally:
        sys.setswitchinterval(previous)
    return seen[1] - seen[0]
