"""VADER Amazon product-review snippets (3,708 texts, 10+ ratings each on -4..+4), after "Product review:"."""

from condtune.bench.task import RatedTextTask

TASK = RatedTextTask(name="vader_amazon", header="Product review:", domains=["amazon"])
