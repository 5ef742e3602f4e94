"""Write the demo's sample dataset (src/finetune/demo/data/support.jsonl), deterministically.

A customer-service reply-format task written for this project: the assistant must answer in
the house format, naming the customer and the order and picking the right next step.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = "You are the support assistant of Acme. Reply in the house format."
NAMES = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jon",
    "Kemal",
    "Lena",
    "Mia",
    "Noah",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
ISSUES = {
    "damaged": (
        [
            "my order {order} arrived broken",
            "the box for order {order} was crushed and the item is damaged",
            "order {order} came with a cracked screen",
        ],
        "we are sending a replacement today",
    ),
    "late": (
        [
            "where is my order {order}? it is late",
            "order {order} still has not arrived",
            "my package {order} is a week overdue",
        ],
        "it ships within two days",
    ),
    "refund": (
        [
            "I want my money back for order {order}",
            "please refund order {order}",
            "can I get a refund on order {order}?",
        ],
        "your refund is on its way",
    ),
    "address": (
        [
            "I moved, please change the address on order {order}",
            "wrong address on order {order}, can you fix it?",
            "update the delivery address for order {order}",
        ],
        "we updated the delivery address",
    ),
    "cancel": (
        [
            "cancel order {order} please",
            "I no longer need order {order}, cancel it",
            "please stop order {order}",
        ],
        "the order is cancelled",
    ),
}


def example(rng: random.Random) -> dict[str, object]:
    name = rng.choice(NAMES)
    order = str(rng.randint(100, 999))
    topic = rng.choice(sorted(ISSUES))
    phrasings, action = ISSUES[topic]
    user = f"Hi, this is {name}. " + rng.choice(phrasings).format(order=order)
    reply = f"Hello {name}! Order {order}: {action}."
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
            {"role": "assistant", "content": reply},
        ]
    }


def main() -> None:
    rng = random.Random(2026)
    target = Path(__file__).resolve().parent.parent / "src/finetune/demo/data/support.jsonl"
    rows = [example(rng) for _ in range(400)]
    target.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    print(f"wrote {len(rows)} examples to {target}")


if __name__ == "__main__":
    main()
