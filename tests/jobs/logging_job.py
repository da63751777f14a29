"""A batch job that logs progress to a log file (and warnings to stderr) with the logging module (jobs: external-state: removes its files at the end)."""
import hashlib
import logging
import os
import random
import sys
import tempfile
import time

log = logging.getLogger("batchjob")


def setup_logging(path):
    logging.basicConfig(filename=path, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.getLogger().addHandler(err)


def process(rnd, job_id):
    values = [rnd.gauss(100, 15) for _ in range(200)]
    mean = sum(values) / len(values)
    if mean > 102.5:
        log.warning("job %d: mean %.3f above threshold", job_id, mean)
    return mean


def main():
    tmp = tempfile.mkdtemp(prefix="logjob-")
    log_path = os.path.join(tmp, "job.log")
    setup_logging(log_path)
    rnd = random.Random(17)
    log.info("starting, %d jobs", 150)
    means = []
    for job_id in range(150):
        means.append(process(rnd, job_id))
        log.info("job %d done: mean=%.4f", job_id, means[-1])
        if job_id % 15 == 0:
            print(f"job {job_id}: running mean {sum(means) / len(means):.4f}", flush=True)
        time.sleep(0.02)
    log.info("finished")
    logging.shutdown()
    with open(log_path, "rb") as f:
        data = f.read()
    os.remove(log_path)
    os.rmdir(tmp)
    n_lines = data.count(b"\n")
    print(f"log: {n_lines} lines sha1={hashlib.sha1(data).hexdigest()[:12]}")
    print(f"result: jobs={len(means)} mean={sum(means) / len(means):.4f}")


if __name__ == "__main__":
    main()
