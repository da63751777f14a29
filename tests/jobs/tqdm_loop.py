"""Feature extraction over records with a tqdm progress bar (bar on stderr; jobs: stderr-nondeterministic)."""
import hashlib
import random
import time

from tqdm import tqdm


def extract(record):
    text = record["text"]
    return {
        "len": len(text),
        "vowels": sum(text.count(v) for v in "aeiou"),
        "digest": hashlib.sha1(text.encode()).hexdigest()[:8],
    }


def main():
    rnd = random.Random(5)
    records = [{"id": i, "text": "".join(rnd.choice("abcdefghij klmnop") for _ in range(rnd.randint(20, 200)))}
               for i in range(300)]
    total_len = total_vowels = 0
    digests = []
    for rec in tqdm(records, desc="extract", unit="rec"):
        feat = extract(rec)
        total_len += feat["len"]
        total_vowels += feat["vowels"]
        digests.append(feat["digest"])
        if rec["id"] % 25 == 0:
            tqdm.write(f"record {rec['id']}: len={feat['len']} digest={feat['digest']}")
        time.sleep(0.012)
    print(f"result: records={len(records)} chars={total_len} vowels={total_vowels} last={digests[-1]}")


if __name__ == "__main__":
    main()
