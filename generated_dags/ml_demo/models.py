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
