"""A job that reports progress with logging (basicConfig on stdout, a named logger, a
lock held around a shared counter) across the move."""
import logging
import os
import sys
import threading
import time

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("job")
guard = threading.Lock()
reentrant = threading.RLock()
count = 0
print(f"started pid={os.getpid()}", flush=True)
for round_ in range(40):
    time.sleep(0.01)
    with guard:
        count += round_
    with reentrant:
        with reentrant:
            log.info("round %d count %d pid=%d", round_, count, os.getpid())
    if round_ % 10 == 0:
        logging.debug("hidden %d", round_)
        logging.warning("checkpoint %d pid=%d", round_, os.getpid())
print(guard.locked(), reentrant.acquire(blocking=False), flush=True)
print(f"done pid={os.getpid()}", flush=True)
