"""Stand-in trainers: plain functions that return a metric, with no workflow code."""

from random import uniform


def train_model() -> float:
    """Pretend to train a model and report its accuracy, as in the classic example."""
    accuracy = uniform(0.1, 10.0)
    print(f"model's accuracy: {accuracy}")
    return accuracy


def report_metric(value: float) -> float:
    """Report a fixed metric, for pipelines whose outcome must be known in advance."""
    return value


def evaluate(learning_rate: float, depth: int) -> dict[str, float]:
    """Report several metrics that depend only on the hyperparameters (deterministic)."""
    accuracy = round(0.5 + depth / 40 - abs(learning_rate - 0.05), 4)
    return {"accuracy": accuracy, "loss": round(1 - accuracy, 4)}


def seeded_score(seed: int = 0) -> float:
    """A score that depends only on the seed, so that runs are repeatable."""
    return round((seed * 37 % 100) / 100, 2)


def parse_metric(text: str) -> float:
    """Report a metric written as text ("0.5", "nan", "inf"), so odd floats can be tested."""
    return float(text)
