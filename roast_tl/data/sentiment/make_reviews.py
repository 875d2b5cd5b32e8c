"""Generate the shipped review-sentiment set: seeded, template-written for this project (CC0).

Run `python roast_tl/data/sentiment/make_reviews.py` to rewrite reviews.jsonl; output is identical
on every run.
"""

import json
import random
from pathlib import Path

SUBJECTS = {
    "movie": ["the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending"],
    "restaurant": [
        "the food",
        "our waiter",
        "the pasta",
        "the dessert",
        "this restaurant",
        "the service",
    ],
    "product": [
        "this blender",
        "the headphones",
        "this phone case",
        "the vacuum",
        "this charger",
        "the kettle",
    ],
    "hotel": ["the room", "the hotel staff", "the breakfast", "the bed", "this hotel", "the pool"],
    "book": [
        "this novel",
        "the story",
        "the main character",
        "the writing",
        "this cookbook",
        "the last chapter",
    ],
    "game": [
        "this game",
        "the controls",
        "the graphics",
        "the multiplayer mode",
        "the levels",
        "the puzzles",
    ],
}
POSITIVE_ADJ = [
    "wonderful",
    "excellent",
    "delightful",
    "fantastic",
    "superb",
    "brilliant",
    "lovely",
    "great",
    "outstanding",
    "charming",
    "impressive",
    "perfect",
]
NEGATIVE_ADJ = [
    "terrible",
    "awful",
    "dreadful",
    "disappointing",
    "horrible",
    "boring",
    "broken",
    "useless",
    "mediocre",
    "unpleasant",
    "frustrating",
    "poor",
]
POSITIVE_TEMPLATES = [
    "{S} was {A}.",
    "{S} was absolutely {A} and I would happily recommend it.",
    "I loved {s}; it was {A} from start to finish.",
    "Honestly, {s} was {A}, and I will come back for more.",
    "{S} was {A} and worth every penny.",
    "{S} was not bad at all; in fact it was {A}.",
    "{S} exceeded my expectations and was {A}.",
    "What a treat: {s} was {A}.",
    "{S} was far better than I expected, simply {A}.",
    "Five stars, {s} was {A}.",
]
NEGATIVE_TEMPLATES = [
    "{S} was {A}.",
    "{S} was truly {A} and I would not recommend it.",
    "I hated {s}; it was {A} from start to finish.",
    "Honestly, {s} was {A}, and I will never come back.",
    "{S} was {A} and not worth the money.",
    "{S} was not good at all; in fact it was {A}.",
    "{S} fell far short of my expectations and was {A}.",
    "What a letdown: {s} was {A}.",
    "{S} was much worse than I expected, simply {A}.",
    "One star, {s} was {A}.",
]
N_PER_LABEL = 240


def make_reviews(seed: int = 0) -> list[dict[str, object]]:
    """Return N_PER_LABEL distinct reviews per label, shuffled; `seed` fixes every choice."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for label, templates, adjectives in (
        (1, POSITIVE_TEMPLATES, POSITIVE_ADJ),
        (0, NEGATIVE_TEMPLATES, NEGATIVE_ADJ),
    ):
        count = 0
        while count < N_PER_LABEL:
            domain = rng.choice(sorted(SUBJECTS))
            subject = rng.choice(SUBJECTS[domain])
            sentence = rng.choice(templates).format(
                S=subject[0].upper() + subject[1:], s=subject, A=rng.choice(adjectives)
            )
            if sentence in seen:
                continue
            seen.add(sentence)
            rows.append({"sentence": sentence, "label": label, "domain": domain})
            count += 1
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    out = Path(__file__).with_name("reviews.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in make_reviews()), encoding="utf-8")
    print(f"wrote {out}")
