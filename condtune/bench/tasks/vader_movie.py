"""VADER movie-review snippets (10,605 texts, 20+ ratings each on -4..+4), after "Movie review:"."""

from condtune.bench.task import RatedTextTask

TASK = RatedTextTask(name="vader_movie", header="Movie review:", domains=["movie"])
