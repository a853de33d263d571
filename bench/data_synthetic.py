"""Python reference for bench/data_synthetic.cpp: the same generative model (independent aspects,
attributes mixing aspect words, users picking the best of `candidates` popularity-drawn items)
written in plain Python, timed against pylamia.generate_synthetic in the same run.

    PYTHONPATH=build/pypkg python3 bench/data_synthetic.py [num_items ...]
"""
import random
import sys
import time

import pylamia


def python_generate(o):
    rng = random.Random(o.seed)
    syllables = [a + b for a in "bdfgklmnprstvz" for b in "aeiou"]
    used = set()

    def word():
        while True:
            w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3)))
            if w not in used:
                used.add(w)
                return w

    names = o.aspect_names
    vocab = [[[word() for _ in range(o.words_per_value)] for _ in range(k)] for k in o.aspect_sizes]
    value_names = [[word().capitalize() for _ in range(k)] for k in o.aspect_sizes]
    filler = [word() for _ in range(o.filler_words)]
    attrs = [(a.style, [names.index(x) for x in a.aspects]) for a in o.attributes]

    items, aspects = [], []
    for i in range(o.num_items):
        v = [rng.randrange(k) for k in o.aspect_sizes]
        aspects.append(v)
        values = []
        for style, idx in attrs:
            if style == "phrase":
                values.append(" ".join(rng.choice(vocab[a][v[a]]).capitalize() for a in idx))
            elif style == "tags":
                values.append(", ".join(rng.choice(vocab[a][v[a]]) for a in idx))
            elif style == "path":
                values.append(" > ".join(value_names[a][v[a]] for a in idx))
            else:
                sentences = []
                for _ in range(o.sentences):
                    ws = [rng.choice(vocab[a][v[a]]) for a in idx]
                    ws += [rng.choice(filler) for _ in range(o.filler_per_sentence)]
                    rng.shuffle(ws)
                    sentences.append(" ".join(ws).capitalize() + ".")
                values.append(" ".join(sentences))
        items.append((f"i{i}", values))
    t_items = time.perf_counter()

    n, s = o.num_items, o.popularity_skew
    a = 1.0 - s

    def popular():
        return min(n - 1, int((rng.random() * ((n + 1.0) ** a - 1.0) + 1.0) ** (1.0 / a)) - 1)

    users = []
    for u in range(o.num_users):
        prefs = [set(rng.sample(range(k), min(o.preferred_values, k))) for k in o.aspect_sizes]

        def matches(item):
            return sum(x in p for x, p in zip(aspects[item], prefs))

        t = o.start_timestamp + rng.randrange(max(1, o.timestamp_span))
        events = []
        for step in range(rng.randint(o.min_sequence_length, o.max_sequence_length)):
            if rng.random() < o.noise:
                best_item = popular()
                best = matches(best_item)
            else:
                best_item, best = -1, -1
                for _ in range(o.candidates):
                    c = popular()
                    m = matches(c)
                    if m > best:
                        best_item, best = c, m
            rating = min(5, max(1, 1 + round(4 * best / len(prefs))))
            if step:
                t += rng.randint(0, o.max_gap)
            events.append((best_item, t, rating))
        users.append((f"u{u}", events))
    return items, users, t_items


def main():
    sizes = [int(x) for x in sys.argv[1:]] or [10000, 100000]
    print("synthetic generation: pure Python reference vs pylamia (C++), same sizes, same run")
    print(f"{'items':>9} {'users':>8} | {'py items/s':>11} {'py users/s':>11} | {'C++ s':>7} {'py s':>7} {'py/C++':>7}")
    for n in sizes:
        o = pylamia.SyntheticOptions(num_items=n, num_users=max(1, n // 10))
        t0 = time.perf_counter()
        pylamia.generate_synthetic(o)
        cpp = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, _, t_items = python_generate(o)
        py = time.perf_counter() - t0
        py_items, py_users = t_items - t0, time.perf_counter() - t_items
        print(f"{n:>9} {o.num_users:>8} | {n / py_items:>11.0f} {o.num_users / py_users:>11.0f} | "
              f"{cpp:>7.2f} {py:>7.2f} {py / cpp:>7.1f}")


if __name__ == "__main__":
    main()
