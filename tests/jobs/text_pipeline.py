"""Word statistics over a generated corpus with a chain of generators."""
import itertools
import random
import re
import time
from collections import Counter

WORDS = ("the quick brown fox jumps over lazy dog data pipeline stream token parse "
         "python generator counter batch window signal process memory object frame").split()
TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")


def documents(seed, n):
    rnd = random.Random(seed)
    for i in range(n):
        length = rnd.randint(40, 120)
        words = [rnd.choice(WORDS) for _ in range(length)]
        if rnd.random() < 0.3:
            words.insert(rnd.randrange(length), "it's")
        yield i, " ".join(words).capitalize() + "."


def tokens(docs):
    for doc_id, text in docs:
        yield doc_id, TOKEN.findall(text.lower())


def bigrams(tokenized):
    for doc_id, toks in tokenized:
        a, b = itertools.tee(toks)
        next(b, None)
        yield doc_id, toks, list(zip(a, b))


def batched(iterable, n):
    it = iter(iterable)
    while True:
        chunk = list(itertools.islice(it, n))
        if not chunk:
            return
        yield chunk


def main():
    words, pairs = Counter(), Counter()
    n_docs = 0
    for chunk_no, chunk in enumerate(batched(bigrams(tokens(documents(42, 6000))), 200)):
        for doc_id, toks, bg in chunk:
            words.update(toks)
            pairs.update(bg)
            n_docs += 1
        top = ", ".join(f"{w}={c}" for w, c in words.most_common(3))
        print(f"chunk {chunk_no:02d}: docs={n_docs} vocab={len(words)} top: {top}", flush=True)
        time.sleep(0.1)
    print("top bigrams:", ", ".join(f"{a}_{b}={c}" for (a, b), c in pairs.most_common(5)))
    print(f"result: docs={n_docs} tokens={sum(words.values())} distinct_bigrams={len(pairs)}")


if __name__ == "__main__":
    main()
