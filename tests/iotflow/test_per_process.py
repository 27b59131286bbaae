"""One object per process: made once, made again in a forked child and when its key changes."""

import multiprocessing
import os
import threading

from iotflow.per_process import PerProcess


class Made:
    def __init__(self, key: str = ""):
        self.pid = os.getpid()
        self.key = key


def test_one_object_for_every_thread_of_a_process():
    made = []
    holder = PerProcess(lambda: made.append(Made()) or made[-1])
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(holder.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert all(obj is made[0] for obj in seen)
    assert holder.peek() is made[0]


def test_nothing_is_made_by_peeking():
    holder = PerProcess(Made)
    assert holder.peek() is None
    assert holder.fresh().peek() is None


def _child(holder: PerProcess, parent_object_pid: int, out) -> None:
    inherited = holder.peek()
    made = holder.get()
    out.send((inherited, made.pid, parent_object_pid, os.getpid()))


def test_a_forked_child_makes_its_own():
    holder = PerProcess(Made)
    parent_object = holder.get()
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_child, args=(holder, parent_object.pid, sender))
    child.start()
    inherited, made_in, parent_pid, child_pid = receiver.recv()
    child.join(10)
    assert inherited is None  # the parent's object is not the child's
    assert made_in == child_pid != parent_pid == os.getpid()
    assert holder.get() is parent_object


def test_a_new_key_makes_a_new_object_and_lets_the_old_one_go():
    current = {"url": "redis://one"}
    let_go = []
    holder = PerProcess(lambda: Made(current["url"]), key=lambda: current["url"], replaced=let_go.append)
    first = holder.get()
    assert holder.get() is first
    current["url"] = "redis://two"
    second = holder.get()
    assert (first.key, second.key) == ("redis://one", "redis://two")
    assert let_go == [first]
