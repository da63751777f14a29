"""Monte Carlo: random-walk first-passage times and a pi estimate, with a seeded Random."""
import math
import random
import statistics


def first_passage(rnd, barrier, max_steps=10_000):
    pos = 0
    for step in range(1, max_steps + 1):
        pos += 1 if rnd.random() < 0.5 else -1
        if abs(pos) >= barrier:
            return step
    return max_steps


def estimate_pi(rnd, n):
    inside = 0
    for _ in range(n):
        x, y = rnd.random(), rnd.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return 4.0 * inside / n


def main():
    rnd = random.Random(31337)
    times = []
    pis = []
    for rnd_no in range(40):
        batch = [first_passage(rnd, 24) for _ in range(1000)]
        times.extend(batch)
        pis.append(estimate_pi(rnd, 20000))
        print(f"round {rnd_no:02d}: mean_fpt={statistics.fmean(batch):.2f} "
              f"running={statistics.fmean(times):.3f} pi~{statistics.fmean(pis):.5f}", flush=True)
    sd = statistics.pstdev(times)
    print(f"result: walks={len(times)} mean={statistics.fmean(times):.4f} sd={sd:.4f} "
          f"pi={statistics.fmean(pis):.6f} err={abs(statistics.fmean(pis) - math.pi):.6f}")


if __name__ == "__main__":
    main()
