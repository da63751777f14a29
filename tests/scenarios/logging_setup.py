"""A logging setup (basicConfig to stdout) and locks across a teleport."""
import logging
import sys
import threading

from pyteleport import tp_dummy

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="[%(levelname)s] %(message)s")
log = logging.getLogger("work")
lock = threading.RLock()


def work():
    with lock:
        log.info("before")
        tp_dummy()
        log.info("after, still holding: %s", lock._is_owned())
    logging.getLogger().warning("root still configured")
    return lock._is_owned()


print(work())
